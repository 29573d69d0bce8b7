//! OVN central: the NB and SB `ovsdb-server`s and `ovn-northd`, in a private directory, on unix sockets.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::Duration;

use testbed::cmd::{Cmd, CmdError};
use testbed::daemon::{wait_for, Daemon};

const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";

/// Errors of starting OVN central.
#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    /// The private directory could not be created.
    #[error("cannot create {dir}")]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `ovsdb-tool create` failed.
    #[error("cannot create the {db} database")]
    CreateDb {
        /// `nb` or `sb`.
        db: &'static str,
        /// Why.
        #[source]
        source: CmdError,
    },
    /// A daemon did not start.
    #[error("cannot start {daemon}")]
    Start {
        /// Which daemon.
        daemon: &'static str,
        /// Why.
        #[source]
        source: CmdError,
    },
    /// `ovn-northd` did not connect to both databases in time.
    #[error("ovn-northd did not become active; see {log}")]
    NorthdNotActive {
        /// Its log file.
        log: PathBuf,
    },
}

/// Where central listens besides its unix sockets.
#[derive(Clone, Copy, Debug, Default)]
pub struct CentralOptions {
    /// Also serve NB on this TCP address (loopback or a namespace's own address).
    pub nb_tcp: Option<SocketAddrV4>,
    /// Also serve SB on this TCP address.
    pub sb_tcp: Option<SocketAddrV4>,
}

/// A running OVN central; stops its daemons on drop.
#[derive(Debug)]
pub struct OvnCentral {
    dir: PathBuf,
    // Drop order: northd first, then the databases.
    northd: Daemon,
    sb: Daemon,
    nb: Daemon,
}

impl OvnCentral {
    /// Creates both databases under `dir` (created if missing) and starts the servers and `ovn-northd`.
    pub fn start(dir: &Path, opts: CentralOptions) -> Result<OvnCentral, CentralError> {
        std::fs::create_dir_all(dir).map_err(|source| CentralError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let nb = start_db(dir, "nb", NB_SCHEMA, opts.nb_tcp)?;
        let sb = start_db(dir, "sb", SB_SCHEMA, opts.sb_tcp)?;
        let northd = Daemon::new("ovn-northd", dir.join("northd.pid"));
        Cmd::new("ovn-northd")
            .arg(format!("--ovnnb-db=unix:{}", dir.join("nb.sock").display()))
            .arg(format!("--ovnsb-db=unix:{}", dir.join("sb.sock").display()))
            .arg(format!("--pidfile={}", northd.pidfile().display()))
            .arg(format!("--log-file={}", dir.join("northd.log").display()))
            .arg(format!("--unixctl={}", dir.join("northd.ctl").display()))
            .args(["--detach", "--no-chdir"])
            .ovs_dirs(dir)
            .run()
            .map_err(|source| CentralError::Start {
                daemon: "ovn-northd",
                source,
            })?;
        let central = OvnCentral {
            dir: dir.to_path_buf(),
            northd,
            sb,
            nb,
        };
        let ctl = dir.join("northd.ctl");
        let active = wait_for(Duration::from_secs(20), || {
            let out = Cmd::new("ovn-appctl")
                .arg("-t")
                .arg(&ctl)
                .arg("status")
                .ovs_dirs(dir)
                .run()
                .ok()?;
            out.contains("active").then_some(())
        });
        if active.is_none() {
            return Err(CentralError::NorthdNotActive {
                log: dir.join("northd.log"),
            });
        }
        Ok(central)
    }

    /// The private directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The NB socket path.
    pub fn nb_sock(&self) -> PathBuf {
        self.dir.join("nb.sock")
    }

    /// The SB socket path.
    pub fn sb_sock(&self) -> PathBuf {
        self.dir.join("sb.sock")
    }

    /// `unix:<sb socket>`, as a node's `ovn-remote`.
    pub fn sb_remote(&self) -> String {
        format!("unix:{}", self.sb_sock().display())
    }

    /// `ovn-nbctl ARGS` against this NB.
    pub fn nbctl<I, S>(&self, args: I) -> Result<String, CmdError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        Cmd::new("ovn-nbctl")
            .arg(format!("--db=unix:{}", self.nb_sock().display()))
            .args(args)
            .ovs_dirs(&self.dir)
            .run()
    }

    /// `ovn-sbctl ARGS` against this SB.
    pub fn sbctl<I, S>(&self, args: I) -> Result<String, CmdError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        Cmd::new("ovn-sbctl")
            .arg(format!("--db=unix:{}", self.sb_sock().display()))
            .args(args)
            .ovs_dirs(&self.dir)
            .run()
    }

    /// Name of the chassis the `Port_Binding` of `logical_port` is bound to, if bound.
    pub fn port_chassis(&self, logical_port: &str) -> Option<String> {
        let uuid = self
            .sbctl([
                "--bare",
                "--columns=chassis",
                "find",
                "Port_Binding",
                &format!("logical_port=\"{logical_port}\""),
            ])
            .ok()?;
        let uuid = uuid.trim();
        if uuid.is_empty() {
            return None;
        }
        let name = self
            .sbctl(["--bare", "--columns=name", "list", "Chassis", uuid])
            .ok()?;
        Some(name.trim().to_string()).filter(|n| !n.is_empty())
    }

    /// Names of the chassis registered in SB.
    pub fn chassis_names(&self) -> Vec<String> {
        self.sbctl(["--bare", "--columns=name", "list", "Chassis"])
            .map(|out| out.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Stops northd and both databases (also done on drop).
    pub fn stop(&self) {
        self.northd.stop();
        self.sb.stop();
        self.nb.stop();
    }
}

fn start_db(
    dir: &Path,
    db: &'static str,
    schema: &str,
    tcp: Option<SocketAddrV4>,
) -> Result<Daemon, CentralError> {
    let file = dir.join(format!("{db}.db"));
    Cmd::new("ovsdb-tool")
        .arg("create")
        .arg(&file)
        .arg(schema)
        .run()
        .map_err(|source| CentralError::CreateDb { db, source })?;
    let daemon = Daemon::new(
        if db == "nb" {
            "ovsdb-server(nb)"
        } else {
            "ovsdb-server(sb)"
        },
        dir.join(format!("{db}.pid")),
    );
    let mut cmd = Cmd::new("ovsdb-server")
        .arg(format!(
            "--remote=punix:{}",
            dir.join(format!("{db}.sock")).display()
        ))
        .arg(format!("--pidfile={}", daemon.pidfile().display()))
        .arg(format!("--log-file={}", dir.join(format!("{db}.log")).display()))
        .arg(format!("--unixctl={}", dir.join(format!("{db}.ctl")).display()))
        .args(["--detach", "--no-chdir"]);
    if let Some(addr) = tcp {
        cmd = cmd.arg(format!("--remote=ptcp:{}:{}", addr.port(), addr.ip()));
    }
    cmd.arg(&file)
        .ovs_dirs(dir)
        .run()
        .map_err(|source| CentralError::Start {
            daemon: if db == "nb" {
                "ovsdb-server(nb)"
            } else {
                "ovsdb-server(sb)"
            },
            source,
        })?;
    Ok(daemon)
}
