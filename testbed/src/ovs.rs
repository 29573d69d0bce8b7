//! A private Open vSwitch (`ovsdb-server` + `ovs-vswitchd`, userspace `netdev` datapath) with
//! all its files (database, sockets, logs, pidfiles) in one directory, running in a network
//! namespace. Dropping it stops both daemons (`ovs-vswitchd` first), removes the taps of the
//! userspace datapath, then the directory and namespace it created.
//!
//! Two `ovs-vswitchd`s cannot share a network namespace (both want the `ovs-netdev` tap), so
//! [`OvsInstance::start`] gives each instance its own; put the test's links there
//! ([`OvsInstance::ip`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::cmd::{Cmd, CmdError};
use crate::daemon::Daemon;
use crate::netns::Netns;

/// Errors of starting an OVS instance.
#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    /// The directory could not be created.
    #[error("cannot create {dir}")]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The private namespace could not be created.
    #[error("cannot create a network namespace for OVS")]
    Netns(#[source] CmdError),
    /// A step failed.
    #[error("OVS in {dir}: {step}")]
    Step {
        /// The instance directory.
        dir: PathBuf,
        /// What failed.
        step: &'static str,
        /// Why.
        #[source]
        source: CmdError,
    },
}

/// Where the daemons run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OvsNetns {
    /// A fresh namespace created for this instance and deleted with it.
    Private,
    /// An existing namespace (`ip netns` name), left in place.
    Existing(String),
    /// The caller's namespace (only one instance per namespace can run ovs-vswitchd).
    Current,
}

/// The two daemons of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OvsDaemon {
    /// `ovsdb-server`.
    OvsdbServer,
    /// `ovs-vswitchd`.
    Vswitchd,
}

impl OvsDaemon {
    fn name(self) -> &'static str {
        match self {
            OvsDaemon::OvsdbServer => "ovsdb-server",
            OvsDaemon::Vswitchd => "ovs-vswitchd",
        }
    }
}

/// The instance directory: a temporary one removed on drop, or one the caller keeps.
#[derive(Debug)]
enum Dir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

/// A running OVS instance; stops on drop.
#[derive(Debug)]
pub struct OvsInstance {
    vswitchd: Daemon,
    ovsdb: Daemon,
    netns: Option<String>,
    // Dropped after the daemons are stopped (see `Drop`): the directory, then the namespace.
    dir: Dir,
    own_netns: Option<Netns>,
}

impl OvsInstance {
    /// Starts OVS in a private network namespace, with a temporary directory.
    pub fn start() -> Result<OvsInstance, OvsError> {
        OvsInstance::start_with(OvsNetns::Private, None)
    }

    /// Starts OVS inside the existing namespace `netns`, with a temporary directory.
    pub fn start_in_netns(netns: &str) -> Result<OvsInstance, OvsError> {
        OvsInstance::start_with(OvsNetns::Existing(netns.to_string()), None)
    }

    /// Starts OVS where `netns` says, with its files in `dir` (created, and left in place on
    /// drop) or, when `None`, in a temporary directory removed on drop.
    pub fn start_with(netns: OvsNetns, dir: Option<&Path>) -> Result<OvsInstance, OvsError> {
        let dir = match dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|source| OvsError::CreateDir {
                    dir: d.to_path_buf(),
                    source,
                })?;
                Dir::Kept(d.to_path_buf())
            }
            None => Dir::Temp(
                tempfile::Builder::new()
                    .prefix("ovst")
                    .tempdir()
                    .map_err(|source| OvsError::CreateDir {
                        dir: std::env::temp_dir(),
                        source,
                    })?,
            ),
        };
        let (netns, own_netns) = match netns {
            OvsNetns::Private => {
                let ns = Netns::unique("ovst").map_err(OvsError::Netns)?;
                (Some(ns.name().to_string()), Some(ns))
            }
            OvsNetns::Existing(ns) => (Some(ns), None),
            OvsNetns::Current => (None, None),
        };
        let path = match &dir {
            Dir::Temp(t) => t.path().to_path_buf(),
            Dir::Kept(p) => p.clone(),
        };
        // From here on, Drop cleans up whatever was started.
        let ovs = OvsInstance {
            vswitchd: Daemon::new("ovs-vswitchd", path.join("ovs-vswitchd.pid")),
            ovsdb: Daemon::new("ovsdb-server", path.join("ovsdb-server.pid")),
            netns,
            dir,
            own_netns,
        };
        let d = ovs.dir().to_path_buf();
        ovs.step("create conf.db", || {
            Cmd::new("ovsdb-tool")
                .arg("create")
                .arg(d.join("conf.db"))
                .arg("/usr/share/openvswitch/vswitch.ovsschema")
                .run()
        })?;
        ovs.start_ovsdb_server()?;
        ovs.step("ovs-vsctl init", || ovs.vsctl(["--no-wait", "init"]))?;
        ovs.step("start ovs-vswitchd", || {
            ovs.command("ovs-vswitchd")
                .arg(ovs.endpoint())
                .arg(format!("--pidfile={}", ovs.vswitchd.pidfile().display()))
                .arg(format!("--log-file={}", d.join("ovs-vswitchd.log").display()))
                .args(["--detach", "--no-chdir"])
                .run()
        })?;
        Ok(ovs)
    }

    fn step<T>(&self, step: &'static str, f: impl FnOnce() -> Result<T, CmdError>) -> Result<T, OvsError> {
        f().map_err(|source| OvsError::Step {
            dir: self.dir().to_path_buf(),
            step,
            source,
        })
    }

    /// Starts `ovsdb-server` on the instance's database (at start-up, or again after
    /// [`OvsInstance::stop`]); it is listening when this returns.
    pub fn start_ovsdb_server(&self) -> Result<(), OvsError> {
        let d = self.dir();
        self.step("start ovsdb-server", || {
            self.command("ovsdb-server")
                .arg(format!("--remote=punix:{}", self.socket_path().display()))
                // As ovs-ctl does: also listen where Manager rows say.
                .arg("--remote=db:Open_vSwitch,Open_vSwitch,manager_options")
                .arg(format!("--pidfile={}", self.ovsdb.pidfile().display()))
                .arg(format!("--log-file={}", d.join("ovsdb-server.log").display()))
                .args(["--detach", "--no-chdir"])
                .arg(d.join("conf.db"))
                .run()
        })
        .map(drop)
    }

    /// Restarts `ovsdb-server` as an upgrade of the ovs-ovn pod does: stopped with SIGTERM,
    /// started again on the same database. `ovs-vswitchd` reconnects by itself, with its back-off.
    pub fn restart_ovsdb_server(&self) -> Result<(), OvsError> {
        self.stop(OvsDaemon::OvsdbServer);
        self.start_ovsdb_server()
    }

    /// Stops `daemon` (SIGTERM, then SIGKILL after a grace period); nothing when it is gone.
    pub fn stop(&self, daemon: OvsDaemon) {
        self.daemon(daemon).stop();
    }

    /// Kills `daemon` with SIGKILL at once (a crash), leaving its pidfile and sockets behind.
    pub fn crash(&self, daemon: OvsDaemon) {
        self.daemon(daemon).crash();
    }

    fn daemon(&self, daemon: OvsDaemon) -> &Daemon {
        match daemon {
            OvsDaemon::OvsdbServer => &self.ovsdb,
            OvsDaemon::Vswitchd => &self.vswitchd,
        }
    }

    /// The pid of `daemon`, from its pidfile.
    pub fn pid(&self, daemon: OvsDaemon) -> Option<i32> {
        self.daemon(daemon).pid()
    }

    /// Whether both daemons are alive.
    pub fn alive(&self) -> bool {
        self.ovsdb.alive() && self.vswitchd.alive()
    }

    /// The instance directory (database, sockets, logs, pidfiles; also its `OVS_RUNDIR`).
    pub fn dir(&self) -> &Path {
        match &self.dir {
            Dir::Temp(t) => t.path(),
            Dir::Kept(p) => p,
        }
    }

    /// The OVSDB socket.
    pub fn socket_path(&self) -> PathBuf {
        self.dir().join("db.sock")
    }

    /// `unix:<socket>`, the endpoint clients connect to.
    pub fn endpoint(&self) -> String {
        format!("unix:{}", self.socket_path().display())
    }

    /// The network namespace the daemons run in (`None`: the caller's).
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// A command for `program` with every OVS/OVN directory variable set to the instance
    /// directory, run inside the instance's namespace.
    pub fn command(&self, program: &str) -> Cmd {
        Cmd::new(program).ovs_dirs(self.dir()).netns(self.netns())
    }

    /// `ovs-vsctl ARGS` against this instance; returns its standard output.
    pub fn vsctl<I, S>(&self, args: I) -> Result<String, CmdError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Cmd::new("ovs-vsctl")
            .arg(format!("--db={}", self.endpoint()))
            .arg("--timeout=20")
            .args(args)
            .ovs_dirs(self.dir())
            .run()
    }

    /// `ovs-appctl -t ovs-vswitchd ARGS` (found by its pidfile in the instance directory).
    pub fn appctl<I, S>(&self, args: I) -> Result<String, CmdError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Cmd::new("ovs-appctl")
            .args(["-t", "ovs-vswitchd"])
            .args(args)
            .ovs_dirs(self.dir())
            .run()
    }

    /// `ip ARGS` in the instance's namespace.
    pub fn ip<I, S>(&self, args: I) -> Result<String, CmdError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let ip = match self.netns() {
            Some(ns) => Cmd::new("ip").args(["-n", ns]),
            None => Cmd::new("ip"),
        };
        ip.args(args).run()
    }

    /// Adds a userspace (`datapath_type=netdev`) bridge.
    pub fn add_bridge(&self, name: &str) -> Result<(), CmdError> {
        self.vsctl([
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

    /// The last `lines` lines of a daemon's log, for failure messages.
    pub fn log_tail(&self, daemon: OvsDaemon, lines: usize) -> String {
        let path = self.dir().join(format!("{}.log", daemon.name()));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for OvsInstance {
    fn drop(&mut self) {
        // The userspace datapath leaves its taps (`ovs-netdev`, one per bridge) behind; a
        // namespace we do not delete must not keep them.
        let taps: Vec<String> = match (&self.own_netns, self.ovsdb.alive()) {
            (None, true) => self
                .vsctl(["--timeout=5", "list-br"])
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .chain(["ovs-netdev".to_string()])
                .collect(),
            (None, false) => vec!["ovs-netdev".to_string()],
            (Some(_), _) => Vec::new(),
        };
        self.vswitchd.stop();
        self.ovsdb.stop();
        for tap in taps {
            let _ = self.ip(["link", "del", &tap]);
        }
    }
}
