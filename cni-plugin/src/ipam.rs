//! Delegation to the IPAM plugin named by `ipam.type`, found in `CNI_PATH`.

use crate::error::{code, CniError, ErrorCode};
use crate::result::{CniResult, DecodeResult};
use crate::skel::Request;
use crate::version::CniVersion;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The CNI environment handed to the IPAM plugin.
#[derive(Debug, Clone)]
pub struct IpamEnv<'a> {
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
    /// `CNI_NETNS`.
    pub netns: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_ARGS`.
    pub args: &'a str,
    /// `CNI_PATH`.
    pub path: &'a str,
}

/// An IPAM step failed.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// No such plugin in `CNI_PATH`.
    #[error("IPAM plugin {plugin:?} not found in CNI_PATH {path:?}")]
    NotFound {
        /// Plugin type.
        plugin: String,
        /// `CNI_PATH`.
        path: String,
    },
    /// The plugin could not be run.
    #[error("cannot run IPAM plugin {binary}")]
    Spawn {
        /// Binary.
        binary: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The plugin returned a CNI error.
    #[error("IPAM plugin {plugin} {command} failed: {msg}")]
    Failed {
        /// Plugin type.
        plugin: String,
        /// Verb.
        command: &'static str,
        /// Its code.
        code: u32,
        /// Its message.
        msg: String,
        /// Its details.
        details: String,
    },
    /// The plugin printed something that is not a result.
    #[error("IPAM plugin {plugin} returned an unreadable result")]
    BadResult {
        /// Plugin type.
        plugin: String,
        /// Cause.
        #[source]
        source: DecodeResult,
    },
}

impl ErrorCode for IpamError {
    fn code(&self) -> u32 {
        match self {
            IpamError::Failed { code, .. } => *code,
            IpamError::NotFound { .. } => code::INVALID_CONFIG,
            _ => code::IPAM,
        }
    }
}

/// Finds `plugin` in the `:`-separated `path`.
pub fn find_plugin(plugin: &str, path: &str) -> Result<PathBuf, IpamError> {
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| IpamError::NotFound {
            plugin: plugin.to_string(),
            path: path.to_string(),
        })
}

/// Our configuration with `cniVersion` lowered to the newest version the plugin speaks, when it
/// does not speak ours (e.g. host-local v1.1 and CNI 1.1.0); `None` when there is nothing to lower to.
fn lowered(binary: &Path, conf: &Value) -> Option<Value> {
    let ours = conf["cniVersion"].as_str()?.parse::<CniVersion>().ok()?;
    let supported = supported_versions(binary);
    if supported.contains(&ours) {
        return None;
    }
    let best = supported.into_iter().filter(|v| *v < ours).max()?;
    tracing::debug!(binary = %binary.display(), from = %ours, to = %best, "lowering cniVersion for the IPAM plugin");
    let mut conf = conf.clone();
    conf["cniVersion"] = Value::from(best.as_str());
    Some(conf)
}

/// The versions (of those we know) the plugin lists in its VERSION answer; empty when it cannot tell.
fn supported_versions(binary: &Path) -> Vec<CniVersion> {
    let out = Command::new(binary)
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    out.ok()
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|v| v.get("supportedVersions").cloned())
        .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
        .map(|vs| vs.iter().filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default()
}

/// Runs `command` with our configuration; only when the plugin refuses its `cniVersion`
/// (code 1, answered before it acts) asks it for its versions and retries with a lower one.
/// That saves a VERSION call on every invocation where the versions agree.
fn exec(plugin: &str, command: &'static str, env: &IpamEnv<'_>, conf: &Value) -> Result<Vec<u8>, IpamError> {
    let binary = find_plugin(plugin, env.path)?;
    let first = run_plugin(&binary, plugin, command, env, conf);
    if let Err(IpamError::Failed {
        code: code::INCOMPATIBLE_VERSION,
        ..
    }) = &first
    {
        if let Some(conf) = lowered(&binary, conf) {
            return run_plugin(&binary, plugin, command, env, &conf);
        }
    }
    first
}

fn run_plugin(
    binary: &Path,
    plugin: &str,
    command: &'static str,
    env: &IpamEnv<'_>,
    conf: &Value,
) -> Result<Vec<u8>, IpamError> {
    let spawn_err = |source| IpamError::Spawn {
        binary: binary.to_path_buf(),
        source,
    };
    let mut child = Command::new(binary)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", env.container_id)
        .env("CNI_NETNS", env.netns)
        .env("CNI_IFNAME", env.ifname)
        .env("CNI_ARGS", env.args)
        .env("CNI_PATH", env.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    let stdin_bytes = conf.to_string();
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(stdin_bytes.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.stderr.is_empty() {
        tracing::debug!(plugin, command, stderr = %String::from_utf8_lossy(&out.stderr), "IPAM plugin stderr");
    }
    if out.status.success() {
        return Ok(out.stdout);
    }
    let (code, msg, details) = match serde_json::from_slice::<CniError>(&out.stdout) {
        Ok(e) => (e.code, e.msg, e.details),
        Err(_) => (
            code::IPAM,
            format!("exited with {}", out.status),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
    };
    Err(IpamError::Failed {
        plugin: plugin.to_string(),
        command,
        code,
        msg,
        details,
    })
}

/// IPAM ADD.
pub fn add(plugin: &str, env: &IpamEnv<'_>, conf: &Value) -> Result<CniResult, IpamError> {
    let out = exec(plugin, "ADD", env, conf)?;
    CniResult::from_slice(&out).map_err(|source| IpamError::BadResult {
        plugin: plugin.to_string(),
        source,
    })
}

/// IPAM DEL.
pub fn del(plugin: &str, env: &IpamEnv<'_>, conf: &Value) -> Result<(), IpamError> {
    exec(plugin, "DEL", env, conf).map(drop)
}

/// IPAM CHECK.
pub fn check(plugin: &str, env: &IpamEnv<'_>, conf: &Value) -> Result<(), IpamError> {
    exec(plugin, "CHECK", env, conf).map(drop)
}

/// A network-wide verb CNI 1.1.0 introduced (STATUS, GC) for `req`'s IPAM plugin, with no
/// container, netns or interface; a plugin that does not list 1.1.0 cannot answer it and is
/// taken as fine.
pub fn network_wide(plugin: &str, command: &'static str, req: &Request) -> Result<(), IpamError> {
    let path = req.path.as_str();
    let binary = find_plugin(plugin, path)?;
    if !supported_versions(&binary).contains(&CniVersion::V1_1_0) {
        tracing::info!(plugin, command, "IPAM plugin predates CNI 1.1.0; skipped");
        return Ok(());
    }
    let env = IpamEnv {
        container_id: "",
        netns: "",
        ifname: "",
        args: &req.args_raw,
        path,
    };
    exec(plugin, command, &env, &req.conf.raw).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference host-local plugin the test node has (v1.1: up to CNI 1.0.0).
    fn host_local() -> PathBuf {
        find_plugin("host-local", "/usr/lib/cni").expect("host-local in /usr/lib/cni")
    }

    #[test]
    fn version_is_lowered_only_when_the_plugin_lacks_ours() {
        let bin = host_local();
        let conf = |v: &str| serde_json::json!({"cniVersion": v, "name": "n"});
        assert_eq!(lowered(&bin, &conf("1.0.0")), None);
        let lowered = lowered(&bin, &conf("1.1.0")).unwrap();
        assert_eq!(lowered["cniVersion"], "1.0.0");
        assert_eq!(lowered["name"], "n");
    }
}
