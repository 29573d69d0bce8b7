//! Client of the unixctl control socket of an OVS or OVN daemon (what `ovs-appctl` talks to):
//! JSON-RPC over `<rundir>/<daemon>.<pid>.ctl`, each command a method whose params are its
//! string arguments and whose result is the text the command prints.
//!
//! The framing is the same as OVSDB's, so the session is the crate's [`Client`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;

use crate::client::Client;

/// Talking to a daemon's control socket failed.
#[derive(Debug, thiserror::Error)]
pub enum UnixctlError {
    /// Neither `<daemon>.pid` nor a single `<daemon>.*.ctl` was found in the run directory.
    #[error("no control socket of {daemon} in {}: no readable {daemon}.pid and no single {daemon}.*.ctl", rundir.display())]
    NoSocket {
        /// The daemon, e.g. `ovs-vswitchd`.
        daemon: String,
        /// The directory searched.
        rundir: PathBuf,
    },
    /// Connecting to the socket failed.
    #[error("cannot connect to the control socket {}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: crate::Error,
    },
    /// The command failed or the daemon did not answer.
    #[error("{command} on {} failed", path.display())]
    Command {
        /// The socket.
        path: PathBuf,
        /// The command.
        command: &'static str,
        /// The cause (the daemon's error text is in a [`crate::Error::Rpc`]).
        #[source]
        source: crate::Error,
    },
    /// The reply's result is not a string.
    #[error("{command} on {}: the reply {result} is not text", path.display())]
    NotText {
        /// The socket.
        path: PathBuf,
        /// The command.
        command: &'static str,
        /// The result, as JSON.
        result: String,
    },
}

/// A session with one daemon's control socket.
#[derive(Clone, Debug)]
pub struct Unixctl {
    path: PathBuf,
    client: Client,
}

/// The control socket of `daemon` in `rundir`: `<daemon>.<pid>.ctl` with the pid from
/// `<daemon>.pid` (as `ovs-appctl -t <daemon>` finds it), else the only `<daemon>.*.ctl` there.
pub fn find_socket(rundir: &Path, daemon: &str) -> Result<PathBuf, UnixctlError> {
    let pid = std::fs::read_to_string(rundir.join(format!("{daemon}.pid")))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    if let Some(pid) = pid {
        let path = rundir.join(format!("{daemon}.{pid}.ctl"));
        if path.exists() {
            return Ok(path);
        }
    }
    let prefix = format!("{daemon}.");
    let mut found: Vec<PathBuf> = std::fs::read_dir(rundir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".ctl"))
        })
        .collect();
    match (found.pop(), found.is_empty()) {
        (Some(path), true) => Ok(path),
        _ => Err(UnixctlError::NoSocket {
            daemon: daemon.to_string(),
            rundir: rundir.to_path_buf(),
        }),
    }
}

impl Unixctl {
    /// Connects to the control socket at `path`; requests give up after `timeout`.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Unixctl, UnixctlError> {
        let endpoint = format!("unix:{}", path.display());
        let client = Client::connect(&endpoint)
            .await
            .map_err(|source| UnixctlError::Connect {
                path: path.to_path_buf(),
                source,
            })?
            .with_request_timeout(Some(timeout));
        Ok(Unixctl {
            path: path.to_path_buf(),
            client,
        })
    }

    /// Runs `command args…` (as `ovs-appctl command args…` would) and returns its output.
    pub async fn run(&self, command: &'static str, args: &[&str]) -> Result<String, UnixctlError> {
        let params = Json::Array(args.iter().map(|a| Json::from(*a)).collect());
        let result = self
            .client
            .call(command, params)
            .await
            .map_err(|source| UnixctlError::Command {
                path: self.path.clone(),
                command,
                source,
            })?;
        match result {
            Json::String(text) => Ok(text),
            other => Err(UnixctlError::NotText {
                path: self.path.clone(),
                command,
                result: other.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_socket_prefers_the_pidfile_and_falls_back_to_a_single_ctl() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            find_socket(dir.path(), "ovs-vswitchd"),
            Err(UnixctlError::NoSocket { .. })
        ));
        std::fs::write(dir.path().join("ovs-vswitchd.77.ctl"), b"").unwrap();
        assert_eq!(
            find_socket(dir.path(), "ovs-vswitchd").unwrap(),
            dir.path().join("ovs-vswitchd.77.ctl")
        );
        std::fs::write(dir.path().join("ovs-vswitchd.78.ctl"), b"").unwrap();
        assert!(find_socket(dir.path(), "ovs-vswitchd").is_err());
        std::fs::write(dir.path().join("ovs-vswitchd.pid"), b"78\n").unwrap();
        assert_eq!(
            find_socket(dir.path(), "ovs-vswitchd").unwrap(),
            dir.path().join("ovs-vswitchd.78.ctl")
        );
    }
}
