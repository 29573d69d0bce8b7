//! Test fixture: a private `ovsdb-server` + `ovs-vswitchd` (userspace datapath) in a
//! temporary directory, optionally inside a network namespace. Dropping it kills both
//! daemons (by their pidfiles) and removes the directory and any namespace it created.
//!
//! Two `ovs-vswitchd`s cannot share a network namespace (both want the `ovs-netdev`
//! tap), so [`OvsInstance::start`] gives each instance its own namespace; put the
//! test's veth ends there (see [`OvsInstance::ip`]). Enabled by the `testing` feature.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Failures setting up or driving the fixture.
#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    /// The temporary directory could not be made.
    #[error("cannot create a temporary directory for OVS")]
    TempDir(#[source] std::io::Error),
    /// A program could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A program exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Exit status.
        status: std::process::ExitStatus,
        /// Its standard error.
        stderr: String,
    },
    /// A daemon's pidfile is missing or unreadable.
    #[error("no usable pidfile {path}")]
    Pidfile {
        /// The pidfile.
        path: PathBuf,
    },
}

/// Where the daemons run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Netns {
    /// A fresh namespace created for this instance and deleted with it.
    Private,
    /// An existing namespace (`ip netns` name), left in place.
    Existing(String),
    /// The caller's namespace (only one instance per namespace can run ovs-vswitchd).
    Current,
}

/// A running private Open vSwitch.
#[derive(Debug)]
pub struct OvsInstance {
    dir: tempfile::TempDir,
    netns: Option<String>,
    owns_netns: bool,
}

/// The two daemons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Daemon {
    /// `ovsdb-server`.
    OvsdbServer,
    /// `ovs-vswitchd`.
    Vswitchd,
}

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::OvsdbServer => "ovsdb-server",
            Daemon::Vswitchd => "ovs-vswitchd",
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call, `prefix` + pid + counter (keep `prefix`
/// short: link names are at most 15 characters).
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:x}{n:x}", std::process::id() % 0x10000)
}

fn run(mut cmd: Command) -> Result<String, TestingError> {
    let command = format!("{cmd:?}");
    let out: Output = cmd.output().map_err(|source| TestingError::Spawn {
        program: cmd.get_program().to_string_lossy().into_owned(),
        source,
    })?;
    if !out.status.success() {
        return Err(TestingError::Failed {
            command,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl OvsInstance {
    /// Starts OVS in a private network namespace.
    pub fn start() -> Result<OvsInstance, TestingError> {
        OvsInstance::start_with(Netns::Private)
    }

    /// Starts OVS inside the existing namespace `netns`.
    pub fn start_in_netns(netns: &str) -> Result<OvsInstance, TestingError> {
        OvsInstance::start_with(Netns::Existing(netns.to_string()))
    }

    /// Starts OVS as `where_` says.
    pub fn start_with(where_: Netns) -> Result<OvsInstance, TestingError> {
        let dir = tempfile::Builder::new()
            .prefix("ovst")
            .tempdir()
            .map_err(TestingError::TempDir)?;
        let (netns, owns_netns) = match where_ {
            Netns::Private => (Some(unique_name("ovst")), true),
            Netns::Existing(ns) => (Some(ns), false),
            Netns::Current => (None, false),
        };
        // From here on, Drop cleans up whatever was started.
        let ovs = OvsInstance {
            dir,
            netns,
            owns_netns,
        };
        if ovs.owns_netns {
            if let Some(ns) = &ovs.netns {
                let mut add = Command::new("ip");
                add.args(["netns", "add", ns]);
                run(add)?;
                ovs.ip(&["link", "set", "lo", "up"])?;
            }
        }
        let d = ovs.dir.path();
        let db = d.join("conf.db");
        let mut create = ovs.command("ovsdb-tool");
        create
            .arg("create")
            .arg(&db)
            .arg("/usr/share/openvswitch/vswitch.ovsschema");
        run(create)?;
        ovs.start_ovsdb_server()?;
        ovs.vsctl(&["--no-wait", "init"])?;
        let mut switchd = ovs.command("ovs-vswitchd");
        switchd
            .arg(ovs.endpoint())
            .arg(format!("--pidfile={}", ovs.pidfile(Daemon::Vswitchd).display()))
            .arg(format!("--log-file={}", d.join("ovs-vswitchd.log").display()))
            .arg("--detach");
        run(switchd)?;
        Ok(ovs)
    }

    /// Starts `ovsdb-server` on the instance's database (at start-up, or again after
    /// [`OvsInstance::stop`]); it is listening when this returns.
    pub fn start_ovsdb_server(&self) -> Result<(), TestingError> {
        let d = self.dir.path();
        let mut server = self.command("ovsdb-server");
        server
            .arg(format!("--remote=punix:{}", self.socket_path().display()))
            // As ovs-ctl does: also listen where Manager rows say.
            .arg("--remote=db:Open_vSwitch,Open_vSwitch,manager_options")
            .arg(format!(
                "--pidfile={}",
                self.pidfile(Daemon::OvsdbServer).display()
            ))
            .arg(format!("--log-file={}", d.join("ovsdb-server.log").display()))
            .arg("--detach")
            .arg(d.join("conf.db"));
        run(server).map(drop)
    }

    /// Restarts `ovsdb-server` as an upgrade of the ovs-ovn pod does: stopped with SIGTERM,
    /// started again on the same database. ovs-vswitchd reconnects by itself, with its back-off.
    pub fn restart_ovsdb_server(&self) -> Result<(), TestingError> {
        self.stop(Daemon::OvsdbServer, Signal::SIGTERM)?;
        self.start_ovsdb_server()
    }

    /// The private directory (database, sockets, logs, pidfiles).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The database socket path.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("db.sock")
    }

    /// `unix:<socket>`, for [`crate::connect`].
    pub fn endpoint(&self) -> String {
        format!("unix:{}", self.socket_path().display())
    }

    /// The network namespace the daemons run in (`None`: the caller's).
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The pidfile of `daemon`.
    pub fn pidfile(&self, daemon: Daemon) -> PathBuf {
        self.dir.path().join(format!("{}.pid", daemon.name()))
    }

    /// The pid of `daemon`, from its pidfile.
    pub fn pid(&self, daemon: Daemon) -> Result<i32, TestingError> {
        let path = self.pidfile(daemon);
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or(TestingError::Pidfile { path })
    }

    /// A command for `program` with `OVS_*DIR` set to the private directory, run
    /// inside the instance's namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        };
        for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"] {
            cmd.env(var, self.dir.path());
        }
        cmd
    }

    /// Runs `ovs-vsctl --db=<socket> args…` and returns its standard output.
    pub fn vsctl(&self, args: &[&str]) -> Result<String, TestingError> {
        let mut cmd = self.command("ovs-vsctl");
        cmd.arg(format!("--db={}", self.endpoint()))
            .arg("--timeout=30")
            .args(args);
        run(cmd)
    }

    /// Runs `ovs-appctl -t ovs-vswitchd args…`.
    pub fn appctl(&self, args: &[&str]) -> Result<String, TestingError> {
        let pid = self.pid(Daemon::Vswitchd)?;
        let ctl = self.dir.path().join(format!("ovs-vswitchd.{pid}.ctl"));
        let mut cmd = self.command("ovs-appctl");
        cmd.arg("-t").arg(ctl).args(args);
        run(cmd)
    }

    /// Runs `ip args…` in the instance's namespace.
    pub fn ip(&self, args: &[&str]) -> Result<String, TestingError> {
        let mut cmd = Command::new("ip");
        if let Some(ns) = &self.netns {
            cmd.args(["-n", ns]);
        }
        cmd.args(args);
        run(cmd)
    }

    /// Adds a userspace (`datapath_type=netdev`) bridge.
    pub fn add_bridge(&self, name: &str) -> Result<(), TestingError> {
        self.vsctl(&[
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
        ])
        .map(drop)
    }

    /// Sends `signal` to `daemon` and waits (up to 5 s, then SIGKILL) for it to exit.
    /// Does nothing when the daemon is already gone; never signals a process that is
    /// not that daemon (the pid is checked against `/proc/PID/comm`).
    pub fn stop(&self, daemon: Daemon, signal: Signal) -> Result<(), TestingError> {
        let raw = self.pid(daemon)?;
        let pid = Pid::from_raw(raw);
        let is_ours = || {
            std::fs::read_to_string(format!("/proc/{raw}/comm"))
                .is_ok_and(|comm| comm.trim() == daemon.name())
        };
        if is_ours() && kill(pid, signal).is_ok() {
            let start = Instant::now();
            while kill(pid, None) != Err(Errno::ESRCH) && is_ours() {
                if start.elapsed() > Duration::from_secs(5) {
                    let _ = kill(pid, Signal::SIGKILL);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // A stale pidfile must not lead a later stop to a recycled pid.
        let _ = std::fs::remove_file(self.pidfile(daemon));
        Ok(())
    }

    /// The last `lines` lines of a daemon's log, for failure messages.
    pub fn log_tail(&self, daemon: Daemon, lines: usize) -> String {
        let path = self.dir.path().join(format!("{}.log", daemon.name()));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for OvsInstance {
    fn drop(&mut self) {
        // The userspace datapath leaves its taps (`ovs-netdev`, one per bridge) behind;
        // a namespace we do not delete must not keep them.
        let taps: Vec<String> = if self.owns_netns {
            Vec::new()
        } else {
            let bridges = self.vsctl(&["--timeout=5", "list-br"]).unwrap_or_default();
            bridges
                .lines()
                .map(str::to_string)
                .chain(["ovs-netdev".to_string()])
                .collect()
        };
        for daemon in [Daemon::Vswitchd, Daemon::OvsdbServer] {
            let _ = self.stop(daemon, Signal::SIGTERM);
        }
        for tap in taps {
            let _ = self.ip(&["link", "del", &tap]);
        }
        if self.owns_netns {
            if let Some(ns) = &self.netns {
                let mut del = Command::new("ip");
                del.args(["netns", "del", ns]);
                let _ = run(del);
            }
        }
    }
}
