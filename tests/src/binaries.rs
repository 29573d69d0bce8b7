//! Locating our binaries (`sriov-ovs`, `sriov-device-plugin`) next to the running test or demo
//! executable, building them with cargo when needed, and running the device plugin on a node.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use testbed::daemon::ChildGuard;

/// The CNI plugin binary.
pub const CNI_PLUGIN: &str = "sriov-ovs";
/// The device plugin binary.
pub const DEVICE_PLUGIN: &str = "sriov-device-plugin";
/// The Kube-OVN CNI shim stand-in (this crate's binary; see `kubeovn::shim`).
pub const KUBE_OVN_SHIM: &str = "kube-ovn-shim";
/// The Kube-OVN node server.
pub const NODE_SERVER: &str = "sriov-ovs-server";

/// Errors of finding or starting our binaries.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// The binary is not built and building it failed.
    #[error("binary {name} is not available: {reason}")]
    Missing {
        /// The binary.
        name: String,
        /// Why (cargo's output).
        reason: String,
    },
    /// The device plugin could not be started.
    #[error("cannot start {name}")]
    Start {
        /// The binary.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The `manifests/` directory shipped with the project.
pub fn manifests_dir() -> PathBuf {
    workspace_root().join("manifests")
}

/// The cargo profile directory (`target/debug`) of the running executable: its own directory,
/// or the parent of `deps/` for test executables.
pub fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf)
    } else {
        Some(dir.to_path_buf())
    }
}

fn package_of(name: &str) -> &str {
    match name {
        CNI_PLUGIN | NODE_SERVER => "sriov-ovs",
        DEVICE_PLUGIN => "sriov-device-plugin",
        KUBE_OVN_SHIM => "integration-tests",
        other => other,
    }
}

/// Cargo features the tests build `name` with: the CNI plugin's test hooks, as its own tests
/// build it (both write the same `target/<profile>/sriov-ovs`, so they must agree).
fn features_of(name: &str) -> &'static [&'static str] {
    match name {
        // One build of the sriov-ovs library serves both of its binaries.
        CNI_PLUGIN | NODE_SERVER => &["--features", "test-hooks"],
        _ => &[],
    }
}

/// Path of binary `name`: `$E2E_BIN_DIR/<name>` when set, else `<profile dir>/<name>` after a
/// `cargo build -p <package> --bin <name>` (with the features the tests need) of the same
/// profile and target dir (a no-op when up to date; skipped when `E2E_NO_BUILD` is set).
/// Built at most once per process.
pub fn binary(name: &str) -> Result<PathBuf, BinaryError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    let found = cache
        .entry(name.to_string())
        .or_insert_with(|| locate(name))
        .clone();
    found.map_err(|reason| BinaryError::Missing {
        name: name.to_string(),
        reason,
    })
}

fn locate(name: &str) -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("E2E_BIN_DIR") {
        let p = Path::new(&dir).join(name);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{} does not exist", p.display()))
        };
    }
    let profile = profile_dir().ok_or("cannot find the running executable's directory")?;
    let candidate = profile.join(name);
    if std::env::var_os("E2E_NO_BUILD").is_some() {
        return if candidate.is_file() {
            Ok(candidate)
        } else {
            Err(format!(
                "{} does not exist (E2E_NO_BUILD set)",
                candidate.display()
            ))
        };
    }
    let target_dir = profile.parent().ok_or("profile directory has no parent")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package_of(name), "--bin", name])
        .args(features_of(name))
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .stdin(Stdio::null());
    if profile.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if out.status.success() && candidate.is_file() {
        return Ok(candidate);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    Err(format!(
        "cargo build -p {} failed:\n{}",
        package_of(name),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    ))
}

/// Where a node's device plugin keeps its files.
#[derive(Clone, Debug)]
pub struct DevicePluginPaths {
    /// `--config-file`.
    pub config_file: PathBuf,
    /// `--device-plugin-path` (holds `kubelet.sock` and the plugin's socket).
    pub device_plugin_dir: PathBuf,
    /// `--device-info-dir`.
    pub device_info_dir: PathBuf,
    /// `--sysfs-root`.
    pub sysfs_root: PathBuf,
    /// Where its stderr goes.
    pub log_file: PathBuf,
}

/// Starts `sriov-device-plugin` inside `netns` (it reads link state there), logging to a file.
pub fn start_device_plugin(netns: &str, paths: &DevicePluginPaths) -> Result<ChildGuard, BinaryError> {
    let bin = binary(DEVICE_PLUGIN)?;
    let start = |source| BinaryError::Start {
        name: DEVICE_PLUGIN.to_string(),
        source,
    };
    let log = File::create(&paths.log_file).map_err(start)?;
    let child = Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(&bin)
        .arg("--config-file")
        .arg(&paths.config_file)
        .arg("--device-plugin-path")
        .arg(&paths.device_plugin_dir)
        .arg("--sysfs-root")
        .arg(&paths.sysfs_root)
        .arg("--device-info-dir")
        .arg(&paths.device_info_dir)
        .args(["--log-level", "debug"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(start)?)
        .stderr(log)
        .spawn()
        .map_err(start)?;
    Ok(ChildGuard::new(DEVICE_PLUGIN, child))
}

/// The `config.json` of the `sriovdp-config` ConfigMap in `manifests/`.
pub fn device_plugin_config() -> Result<String, String> {
    let path = manifests_dir().join("optional/sriovdp-config.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cm: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    cm.get("data")
        .and_then(|d| d.get("config.json"))
        .and_then(|c| c.as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("{}: no data.config.json", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_profile_dir_and_shipped_device_plugin_config() {
        let p = profile_dir().unwrap();
        assert!(p.join("deps").is_dir(), "{}", p.display());
        if manifests_dir().join("optional/sriovdp-config.yaml").exists() {
            let cfg = device_plugin_config().unwrap();
            assert!(cfg.contains("cx5_sriov_switchdev"));
        }
    }
}
