//! `sriov-ovs`: a CNI plugin that moves a switchdev SR-IOV VF into a pod and attaches its
//! representor to an Open vSwitch bridge (Kube-OVN style), undoing every step on failure.
//!
//! [`run`] is the whole plugin with injected environment, stdin and stdout; `main.rs` only
//! wires the process's own.

// Errors carry the failed netlink message for diagnosis; they are built once per failed
// invocation, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod add;
pub mod check;
pub mod cni_args;
pub mod del;
pub mod doctor;
pub mod error;
#[cfg(test)]
mod fake_ovs;
#[cfg(test)]
mod fake_sys;
pub mod field_type;
pub mod gc;
#[cfg(feature = "test-hooks")]
pub mod hooks;
pub mod install;
pub mod ipam;
pub mod ipnet;
pub mod logging;
pub mod mac;
pub mod netconf;
pub mod netconf_keys;
pub mod netlink;
pub mod netns;
pub mod node;
pub mod ovs;
pub mod port_ids;
pub mod representor_name;
pub mod result;
pub mod server;
pub mod skel;
pub mod status;
pub mod sys;
pub mod traits;
pub mod version;
pub mod vf;

use crate::error::{code, CniError, ErrorCode};
use crate::skel::{Command, SkelError, Verb};
use crate::traits::OvsError;
use std::collections::HashMap;
use std::io::{Read, Write};

/// A failure of any verb, mapped onto a CNI error.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The invocation is malformed.
    #[error(transparent)]
    Skel(#[from] SkelError),
    /// OVSDB unreachable.
    #[error(transparent)]
    Ovs(#[from] OvsError),
    /// ADD failed.
    #[error(transparent)]
    Add(#[from] add::AddError),
    /// DEL failed.
    #[error(transparent)]
    Del(#[from] node::ReleaseError),
    /// CHECK failed.
    #[error(transparent)]
    Check(#[from] check::CheckError),
    /// STATUS failed.
    #[error(transparent)]
    Status(#[from] status::StatusError),
    /// GC failed.
    #[error(transparent)]
    Gc(#[from] gc::GcError),
    /// The tokio runtime could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

impl ErrorCode for PluginError {
    fn code(&self) -> u32 {
        match self {
            PluginError::Skel(e) => e.code(),
            PluginError::Ovs(e) => e.code(),
            PluginError::Add(e) => e.code(),
            PluginError::Del(e) => e.code(),
            PluginError::Check(e) => e.code(),
            PluginError::Status(e) => e.code(),
            PluginError::Gc(e) => e.code(),
            PluginError::Runtime(_) => code::IO_FAILURE,
        }
    }
}

/// Runs one CNI invocation: reads `stdin`, writes the result or the error JSON to `stdout`,
/// returns the exit code (0 or 1). Logs go to stderr or `logFile`.
pub fn run(env: &HashMap<String, String>, stdin: &mut dyn Read, stdout: &mut dyn Write) -> i32 {
    let mut input = Vec::new();
    let mut _guard = None;
    let mut error_version = None;
    let mut invoke = || -> Result<Option<serde_json::Value>, PluginError> {
        let verb = skel::verb(env)?;
        if verb == skel::Verb::Version {
            return Ok(serde_json::to_value(version::version_info()).ok());
        }
        stdin.read_to_end(&mut input).map_err(SkelError::Stdin)?;
        let conf = netconf::NetConf::parse(&input);
        // Log where the configuration says, even when the invocation is otherwise invalid.
        _guard = Some(match &conf {
            Ok(c) => logging::init(c.log_level, c.log_format, c.log_file.as_deref()),
            Err(_) => logging::init(sriov_logging::Level::Info, Default::default(), None),
        });
        error_version = conf.as_ref().ok().map(|c| c.cni_version);
        dispatch(env, skel::parse(env, verb, conf)?)
    };
    match invoke() {
        Ok(None) => 0,
        Ok(Some(json)) => i32::from(writeln!(stdout, "{json}").is_err()),
        Err(err) => {
            let version = error_version.map_or_else(|| skel::error_version(&input), |v| v.as_str());
            let cni = CniError::from_error(version, &err);
            let _stderr = _guard
                .is_none()
                .then(|| logging::init(sriov_logging::Level::Error, Default::default(), None));
            tracing::error!(code = cni.code, msg = %cni.msg, details = %cni.details, "failed");
            let _ = writeln!(stdout, "{}", serde_json::to_string(&cni).unwrap_or_default());
            1
        }
    }
}

fn dispatch(env: &HashMap<String, String>, cmd: Command) -> Result<Option<serde_json::Value>, PluginError> {
    let sysfs =
        sriov_host::Sysfs::from_env_value(env.get(sriov_host::SYSFS_ROOT_ENV).map(std::ffi::OsStr::new));
    // Two workers: a netlink request that moves a link between namespaces blocks its thread in
    // the kernel for a while; OVSDB traffic proceeds on the other meanwhile.
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        // Log from the workers (OVSDB and netlink connection tasks) where this thread logs.
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&dispatch)))
        .build()
        .map_err(PluginError::Runtime)?;
    let (verb, req) = cmd;
    let conf = &req.conf;
    let state = node::StateDir::new(&conf.state_dir);
    let node = node::Node {
        kernel: &netns::Kernel,
        sysfs: &sysfs,
        state: &state,
    };
    rt.block_on(async {
        // DEL and GC must not fail on an ovsdb-server that is restarting: they wait for it (and
        // reconnect to it) as long as they wait for OVS to apply a port removal.
        let reconnect_for = match verb {
            Verb::Del | Verb::Gc => conf.ovs_apply_timeout,
            _ => std::time::Duration::ZERO,
        };
        let connect = ovs::OvsdbOvs::connect(&conf.ovsdb, reconnect_for);
        match verb {
            Verb::Add => {
                tracing::info!(container = %req.container_id, ifname = %req.ifname, "ADD");
                let result = add::add(node, connect, &req).await?;
                Ok(Some(result.to_value(conf.cni_version)))
            }
            Verb::Del => {
                tracing::info!(container = %req.container_id, ifname = %req.ifname, "DEL");
                let outcome = del::del(node, &connect.await?, &req).await?;
                tracing::info!(?outcome, "DEL done");
                Ok(None)
            }
            Verb::Check => {
                check::check(node, &connect.await?, &req).await?;
                Ok(None)
            }
            Verb::Status => {
                let ovs = connect.await.map_err(status::StatusError::Ovsdb)?;
                status::status(&ovs, &conf.bridge).await?;
                status::ipam_status(&req)?;
                Ok(None)
            }
            Verb::Gc => {
                let released = gc::gc(node, &connect.await?, &req).await?;
                tracing::info!(?released, "GC done");
                Ok(None)
            }
            Verb::Version => Ok(serde_json::to_value(version::version_info()).ok()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ADD into a namespace that does not exist (every test fails before using it).
    const ADD_ENV: [(&str, &str); 4] = [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "c"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_NETNS", "/run/netns/none"),
    ];

    fn call(env: &[(&str, &str)], stdin: &str) -> (i32, serde_json::Value) {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut out = Vec::new();
        let code = run(&env, &mut stdin.as_bytes(), &mut out);
        let json = serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}): {:?}",
                String::from_utf8_lossy(&out)
            )
        });
        (code, json)
    }

    #[test]
    fn version_prints_supported_versions_and_exits_0() {
        let (code, json) = call(&[("CNI_COMMAND", "VERSION")], "");
        assert_eq!(code, 0);
        assert_eq!(json["supportedVersions"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn errors_are_cni_json_on_stdout_with_exit_1() {
        let add = ADD_ENV;
        let (code, json) = call(&add, "{garbage");
        assert_eq!((code, json["code"].as_u64()), (1, Some(6)));
        assert_eq!(json["cniVersion"], "1.1.0");
        let (code, json) = call(&add, r#"{"cniVersion":"0.4.0","name":"n","deviceID":"zz"}"#);
        assert_eq!(
            (code, json["code"].as_u64(), json["cniVersion"].as_str()),
            (1, Some(7), Some("0.4.0"))
        );
        let (code, json) = call(&[("CNI_COMMAND", "NOPE")], "{}");
        assert_eq!((code, json["code"].as_u64()), (1, Some(4)));
        let (code, json) = call(&[], "{}");
        assert_eq!((code, json["code"].as_u64()), (1, Some(4)));
    }

    #[test]
    fn add_without_device_id_fails_before_touching_anything() {
        let add = ADD_ENV;
        let (code, json) = call(
            &add,
            r#"{"cniVersion":"1.0.0","name":"n","ovsdbSocket":"unix:/nonexistent/db.sock"}"#,
        );
        assert_eq!((code, json["code"].as_u64()), (1, Some(7)), "{json}");
        let msg = json["msg"].as_str().unwrap();
        for cause in [
            "no deviceID",
            "k8s.v1.cni.cncf.io/resourceName",
            "does not request that resource",
            "thin plugin",
        ] {
            assert!(msg.contains(cause), "{msg}");
        }
    }

    #[test]
    fn log_format_json_writes_json_lines_to_log_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("cni.log");
        let add = ADD_ENV;
        let conf = serde_json::json!({
            "cniVersion": "1.0.0", "name": "n", "logFile": log,
            "logFormat": "json", "logLevel": "warning",
        });
        let (code, _) = call(&add, &conf.to_string());
        assert_eq!(code, 1);
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert!(
            lines
                .iter()
                .any(|l| l["level"] == "ERROR" && l["fields"]["code"] == 7),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn unreachable_ovsdb_names_the_endpoint_the_key_and_the_ovs_pod() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("db.sock");
        let del = [
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c"),
            ("CNI_IFNAME", "eth0"),
        ];
        let conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "n",
            "deviceID": "0000:84:00.2",
            "ovsdbSocket": format!("unix:{}", socket.display()),
            "stateDir": dir.path().join("state"),
            // DEL waits this long for a restarting ovsdb-server before it gives up.
            "ovsApplyTimeout": 1,
        });
        let (code, json) = call(&del, &conf.to_string());
        assert_eq!((code, json["code"].as_u64()), (1, Some(102)), "{json}");
        let text = format!(
            "{} {}",
            json["msg"].as_str().unwrap(),
            json["details"].as_str().unwrap_or("")
        );
        for part in [
            &format!("cannot connect to OVSDB at unix:{}", socket.display()),
            r#""ovsdbSocket""#,
            "ovs-ovn pod",
            "kubectl -n kube-system get pods -l app=ovs",
        ] {
            assert!(text.contains(part), "{part} not in {text}");
        }
    }
}
