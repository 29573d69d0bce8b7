//! A private Open vSwitch instance (`ovsdb-server` + `ovs-vswitchd`, netdev datapath) running in
//! a netns, with all its files in one directory.

use std::path::{Path, PathBuf};

use crate::cmd::{Cmd, CmdError};
use crate::daemon::Daemon;

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

/// A running OVS instance; stops on drop (`ovs-vswitchd` first).
#[derive(Debug)]
pub struct Ovs {
    vswitchd: Daemon,
    ovsdb: Daemon,
    dir: PathBuf,
    netns: String,
}

impl Ovs {
    /// Creates `conf.db` under `dir` and starts both daemons inside `netns`.
    pub fn start(dir: &Path, netns: &str) -> Result<Ovs, OvsError> {
        std::fs::create_dir_all(dir).map_err(|source| OvsError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let ovs = Ovs {
            vswitchd: Daemon::new("ovs-vswitchd", dir.join("ovs-vswitchd.pid")),
            ovsdb: Daemon::new("ovsdb-server", dir.join("ovsdb-server.pid")),
            dir: dir.to_path_buf(),
            netns: netns.to_string(),
        };
        ovs.step("create conf.db", || {
            Cmd::new("ovsdb-tool")
                .arg("create")
                .arg(dir.join("conf.db"))
                .arg("/usr/share/openvswitch/vswitch.ovsschema")
                .run()
        })?;
        ovs.start_ovsdb()?;
        ovs.step("ovs-vsctl init", || ovs.vsctl(["--no-wait", "init"]))?;
        ovs.step("start ovs-vswitchd", || {
            Cmd::new("ovs-vswitchd")
                .arg(format!("unix:{}", ovs.db_sock().display()))
                .arg(format!("--pidfile={}", ovs.vswitchd.pidfile().display()))
                .arg(format!("--log-file={}", dir.join("ovs-vswitchd.log").display()))
                .arg(format!("--unixctl={}", dir.join("ovs-vswitchd.ctl").display()))
                .args(["--detach", "--no-chdir"])
                .ovs_dirs(dir)
                .netns(Some(netns))
                .run()
        })?;
        Ok(ovs)
    }

    fn step<T>(&self, step: &'static str, f: impl FnOnce() -> Result<T, CmdError>) -> Result<T, OvsError> {
        f().map_err(|source| OvsError::Step {
            dir: self.dir.clone(),
            step,
            source,
        })
    }

    fn start_ovsdb(&self) -> Result<(), OvsError> {
        self.step("start ovsdb-server", || {
            Cmd::new("ovsdb-server")
                .arg(format!("--remote=punix:{}", self.db_sock().display()))
                .arg("--remote=db:Open_vSwitch,Open_vSwitch,manager_options")
                .arg(format!("--pidfile={}", self.ovsdb.pidfile().display()))
                .arg(format!(
                    "--log-file={}",
                    self.dir.join("ovsdb-server.log").display()
                ))
                .arg(format!(
                    "--unixctl={}",
                    self.dir.join("ovsdb-server.ctl").display()
                ))
                .args(["--detach", "--no-chdir"])
                .arg(self.dir.join("conf.db"))
                .ovs_dirs(&self.dir)
                .netns(Some(&self.netns))
                .run()
        })
        .map(drop)
    }

    /// Stops `ovsdb-server` and starts it again on the same database (`ovs-vswitchd` reconnects).
    pub fn restart_ovsdb(&self) -> Result<(), OvsError> {
        self.ovsdb.stop();
        self.start_ovsdb()
    }

    /// The instance directory (also its `OVS_RUNDIR`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The OVSDB socket.
    pub fn db_sock(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// Whether both daemons are alive.
    pub fn alive(&self) -> bool {
        self.ovsdb.alive() && self.vswitchd.alive()
    }

    /// `ovs-vsctl ARGS` against this instance.
    pub fn vsctl<I, S>(&self, args: I) -> Result<String, CmdError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        Cmd::new("ovs-vsctl")
            .arg(format!("--db=unix:{}", self.db_sock().display()))
            .arg("--timeout=20")
            .args(args)
            .ovs_dirs(&self.dir)
            .run()
    }

    /// `ovs-appctl -t ovs-vswitchd ARGS`.
    pub fn appctl<I, S>(&self, args: I) -> Result<String, CmdError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        Cmd::new("ovs-appctl")
            .arg("-t")
            .arg(self.dir.join("ovs-vswitchd.ctl"))
            .args(args)
            .ovs_dirs(&self.dir)
            .run()
    }
}
