//! Stand-in of Kube-OVN's CNI shim, `/opt/cni/bin/kube-ovn` (kube-ovn `cmd/cni/cni.go` with
//! `cmd/cni/sysctl.go`, `pkg/netconf/netconf.go` and `pkg/request/cniserver.go`, pinned to
//! v1.15.24 for the flat reply and v1.16.2, which is master 1533681d here, for the `ips` reply):
//! it reads the netconf and CNI environment, POSTs the request to the daemon's unix socket
//! `server_socket` and prints the CNI result built from the reply. The binary
//! `kube-ovn-shim` is a thin wrapper around [`run`].
//!
//! Which reply shape it reads is chosen by [`REPLY_ENV`] (`flat`, the default, as the guide's
//! release-1.12 shim, or `ips`): a real cluster runs one shim version, a test runs both.
//!
//! Behaviour kept from the real shim: ADD first sets `disable_ipv6=0` and `accept_ra=0` for
//! `all` and `default` in the pod's netns; RPC failures are CNI error 11 `RPC failed` with
//! `request ip return <status> <error>` (ADD, any status but 200) or `delete ip return <status>
//! <body>` (DEL, any status but 204) as details; DEL sends neither `routes`, `dns`, `vf_driver`
//! nor `vhost_user_socket_name`. Like CNI's `skel` (v1.3.0, which the shim's `main` runs), ADD and DEL
//! first require the CNI environment (`required env variables [...] missing`, code 4) and a netconf
//! `name` (`missing network name`, code 7). CHECK and GC have no function in the shim's
//! `CNIFuncs`, so `skel` answers success; the stand-in does so for them and STATUS without
//! `skel`'s version checks.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::protocol::{CniRequest, Dns, FlatReply, IpsReply, Route};
use super::result::{CniResult, ResultError};

/// Environment variable choosing the reply shape the shim reads: `flat` (v1.12 to v1.15) or
/// `ips` (v1.16 to master).
pub const REPLY_ENV: &str = "KUBE_OVN_SHIM_REPLY";

/// Kube-OVN's CNI type name (`util.CniTypeName`).
pub const CNI_TYPE: &str = "kube-ovn";

/// Which reply shape the shim decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyShape {
    /// `protocol`, `address`, `cidr`, `gateway` (v1.12 to v1.15).
    Flat,
    /// `ips: [{protocol, ip, cidr, gateway}]` (v1.16 to master).
    Ips,
}

impl ReplyShape {
    /// The value of [`REPLY_ENV`] selecting this shape.
    pub fn env_value(self) -> &'static str {
        match self {
            ReplyShape::Flat => "flat",
            ReplyShape::Ips => "ips",
        }
    }
}

/// What can fail, each with the CNI error code the real shim reports.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// stdin is not a netconf (code 6).
    #[error("failed to load netconf")]
    Decode(#[source] serde_json::Error),
    /// No `server_socket`, neither top-level nor under `ipam` (code 7).
    #[error("server_socket is required in cni.conf, {conf}")]
    NoServerSocket {
        /// The netconf as read.
        conf: String,
    },
    /// `CNI_ARGS` empty (code 7).
    #[error("CNI_ARGS is required")]
    NoCniArgs,
    /// A key missing from `CNI_ARGS` (code 7).
    #[error("{key} is required in CNI_ARGS")]
    MissingArg {
        /// `K8S_POD_NAME` or `K8S_POD_NAMESPACE`.
        key: &'static str,
    },
    /// `CNI_COMMAND` missing or unknown (code 4, as skel).
    #[error("unknown CNI_COMMAND {command:?}")]
    Command {
        /// What was given.
        command: String,
    },
    /// `skel`: CNI environment variables missing (code 4).
    #[error("required env variables [{}] missing", missing.join(","))]
    MissingEnv {
        /// The variables.
        missing: Vec<&'static str>,
    },
    /// `skel`: the netconf has no `name` (code 7).
    #[error("missing network name")]
    NoName,
    /// `KUBE_OVN_SHIM_REPLY` has a value other than `flat` or `ips` (code 7).
    #[error("{REPLY_ENV}={value:?}: expected flat or ips")]
    ReplyShape {
        /// What was given.
        value: String,
    },
    /// Entering the pod's netns to enable IPv6 failed (code 999).
    #[error("failed to enable IPv6 in {netns}")]
    Sysctl {
        /// `CNI_NETNS`.
        netns: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The request to the daemon failed (code 11, `RPC failed`).
    #[error("{details}")]
    Rpc {
        /// What the real shim puts in `details`.
        details: String,
    },
    /// The reply cannot be made a CNI result (code 999).
    #[error("failed to assign address")]
    Result(#[source] ResultError),
}

impl ShimError {
    /// The CNI error object the real shim prints (`types.Error`: `code`, `msg`, `details`).
    pub fn to_cni(&self) -> CniErrorJson {
        let (code, msg, details) = match self {
            ShimError::Decode(e) => (6, "failed to load netconf".into(), e.to_string()),
            ShimError::NoServerSocket { .. }
            | ShimError::NoCniArgs
            | ShimError::MissingArg { .. }
            | ShimError::ReplyShape { .. } => (7, "Invalid Configuration".into(), self.to_string()),
            ShimError::Command { .. } | ShimError::MissingEnv { .. } => (4, self.to_string(), String::new()),
            ShimError::NoName => (7, self.to_string(), String::new()),
            ShimError::Rpc { details } => (11, "RPC failed".into(), details.clone()),
            // skel turns a plain Go error into code 999 with the error text as msg.
            ShimError::Sysctl { .. } | ShimError::Result(_) => {
                (999, sriov_logging::error_chain(self), String::new())
            }
        };
        CniErrorJson { code, msg, details }
    }
}

/// CNI `types.Error` as printed on stdout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniErrorJson {
    /// Error code.
    pub code: u32,
    /// Message.
    pub msg: String,
    /// Details, `omitempty`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

/// Kube-OVN's `netconf.NetConf` (v1.16.2; same keys since v1.12), unknown keys ignored like Go.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct NetConf {
    #[serde(rename = "cniVersion")]
    cni_version: String,
    #[serde(rename = "type")]
    plugin_type: String,
    dns: Dns,
    server_socket: String,
    provider: String,
    routes: Option<Vec<Route>>,
    ipam: Option<IpamConf>,
    #[serde(rename = "deviceID")]
    device_id: String,
    vf_driver: String,
    vhost_user_socket_volume_name: String,
    vhost_user_socket_name: String,
    vhost_user_socket_consumption: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct IpamConf {
    server_socket: String,
    provider: String,
    routes: Option<Vec<Route>>,
}

/// `loadNetConf`: `ipam` supplies socket, provider and routes when the type is not `kube-ovn`;
/// the provider defaults to `ovn`.
fn load_netconf(stdin: &[u8]) -> Result<NetConf, ShimError> {
    let mut n: NetConf = serde_json::from_slice(stdin).map_err(ShimError::Decode)?;
    if n.plugin_type != CNI_TYPE {
        if let Some(ipam) = n.ipam.clone() {
            n.provider = ipam.provider;
            n.server_socket = ipam.server_socket;
            n.routes = ipam.routes;
        }
    }
    if n.server_socket.is_empty() {
        return Err(ShimError::NoServerSocket {
            conf: String::from_utf8_lossy(stdin).into_owned(),
        });
    }
    if n.provider.is_empty() {
        n.provider = "ovn".into();
    }
    Ok(n)
}

/// `parseValueFromArgs`: the first non-empty `KEY=value` of `CNI_ARGS`.
fn arg_value(key: &'static str, args: &str) -> Result<String, ShimError> {
    if args.is_empty() {
        return Err(ShimError::NoCniArgs);
    }
    args.split(';')
        .filter_map(|a| a.strip_prefix(key)?.strip_prefix('='))
        .find(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or(ShimError::MissingArg { key })
}

/// Runs one CNI command with the environment `env` and netconf `stdin`, writing the result or
/// the CNI error to `stdout`; returns the exit code (0 or 1).
pub fn run(env: &HashMap<String, String>, stdin: &[u8], stdout: &mut dyn Write) -> i32 {
    let var = |k: &str| env.get(k).cloned().unwrap_or_default();
    let outcome = dispatch(&var, stdin);
    let written = match &outcome {
        Ok(Some(json)) => stdout.write_all(json.as_bytes()),
        Ok(None) => Ok(()),
        Err(e) => {
            let err = e.to_cni();
            stdout.write_all(serde_json::to_string(&err).unwrap_or_default().as_bytes())
        }
    };
    i32::from(outcome.is_err() || written.is_err())
}

fn dispatch(var: &dyn Fn(&str) -> String, stdin: &[u8]) -> Result<Option<String>, ShimError> {
    let command = var("CNI_COMMAND");
    let shape = match var(REPLY_ENV).as_str() {
        "" | "flat" => ReplyShape::Flat,
        "ips" => ReplyShape::Ips,
        other => {
            return Err(ShimError::ReplyShape {
                value: other.to_string(),
            })
        }
    };
    match command.as_str() {
        "ADD" | "DEL" => {}
        "VERSION" => {
            return Ok(Some(
                r#"{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#
                    .into(),
            ))
        }
        "CHECK" | "STATUS" | "GC" => return Ok(None),
        _ => return Err(ShimError::Command { command }),
    }
    skel_checks(var, &command, stdin)?;
    let conf = load_netconf(stdin)?;
    let args = var("CNI_ARGS");
    let pod_name = arg_value("K8S_POD_NAME", &args)?;
    let pod_namespace = arg_value("K8S_POD_NAMESPACE", &args)?;
    let netns = var("CNI_NETNS");
    let mut req = CniRequest {
        cni_type: conf.plugin_type.clone(),
        pod_name,
        pod_namespace,
        container_id: var("CNI_CONTAINERID"),
        net_ns: netns.clone(),
        if_name: var("CNI_IFNAME"),
        provider: conf.provider.clone(),
        device_id: conf.device_id.clone(),
        vhost_user_socket_volume_name: conf.vhost_user_socket_volume_name.clone(),
        vhost_user_socket_consumption: conf.vhost_user_socket_consumption.clone(),
        ..CniRequest::default()
    };
    let socket = Path::new(&conf.server_socket);
    if command == "DEL" {
        let (status, body) = post(socket, "del", &req)?;
        if status != 204 {
            return Err(ShimError::Rpc {
                details: format!("delete ip return {status} {}", String::from_utf8_lossy(&body)),
            });
        }
        return Ok(None);
    }
    req.routes = conf.routes.clone();
    req.dns = conf.dns.clone();
    req.vf_driver = conf.vf_driver.clone();
    req.vhost_user_socket_name = conf.vhost_user_socket_name.clone();
    super::sysctl::enable_ipv6(Path::new(&netns)).map_err(|source| ShimError::Sysctl {
        netns: PathBuf::from(&netns),
        source,
    })?;
    let (status, body) = post(socket, "add", &req)?;
    // gorequest's EndStruct decodes the body before the status is looked at.
    let decode_err = |e: serde_json::Error| ShimError::Rpc {
        details: e.to_string(),
    };
    let result = match shape {
        ReplyShape::Flat => {
            let reply: FlatReply = serde_json::from_slice(&body).map_err(decode_err)?;
            check_status(status, &reply.error)?;
            CniResult::from_flat(&reply, &netns).map_err(ShimError::Result)?
        }
        ReplyShape::Ips => {
            let reply: IpsReply = serde_json::from_slice(&body).map_err(decode_err)?;
            check_status(status, &reply.error)?;
            CniResult::from_ips(&reply, &netns).map_err(ShimError::Result)?
        }
    };
    result
        .to_json(&conf.cni_version)
        .map(Some)
        .map_err(ShimError::Result)
}

/// What `skel` checks before calling ADD or DEL: the environment (`CNI_NETNS` optional for
/// DEL) and a netconf `name`.
fn skel_checks(var: &dyn Fn(&str) -> String, command: &str, stdin: &[u8]) -> Result<(), ShimError> {
    let mut required = vec!["CNI_CONTAINERID"];
    if command == "ADD" {
        required.push("CNI_NETNS");
    }
    required.extend(["CNI_IFNAME", "CNI_PATH"]);
    let missing: Vec<&'static str> = required.into_iter().filter(|k| var(k).is_empty()).collect();
    if !missing.is_empty() {
        return Err(ShimError::MissingEnv { missing });
    }
    #[derive(Deserialize)]
    struct Named {
        #[serde(default)]
        name: String,
    }
    let named: Named = serde_json::from_slice(stdin).map_err(ShimError::Decode)?;
    if named.name.is_empty() {
        return Err(ShimError::NoName);
    }
    Ok(())
}

fn check_status(status: u16, error: &str) -> Result<(), ShimError> {
    if status == 200 {
        return Ok(());
    }
    Err(ShimError::Rpc {
        details: format!("request ip return {status} {error}"),
    })
}

/// POSTs `req` as JSON to `http://dummy/api/v1/<verb>` over the unix socket `socket`.
fn post(socket: &Path, verb: &str, req: &CniRequest) -> Result<(u16, Vec<u8>), ShimError> {
    let url = format!("http://dummy/api/v1/{verb}");
    let body = serde_json::to_vec(req).map_err(|e| ShimError::Rpc {
        details: e.to_string(),
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ShimError::Rpc {
            details: format!("Post \"{url}\": {e}"),
        })?;
    rt.block_on(super::http::post_unix(socket, &url, body))
        .map_err(|e| ShimError::Rpc {
            details: format!("Post \"{url}\": {}", sriov_logging::error_chain(&e)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netconf_falls_back_to_ipam_and_default_provider() {
        let n = load_netconf(
            br#"{"type":"macvlan","ipam":{"type":"kube-ovn","server_socket":"/s","provider":"p.ns"}}"#,
        )
        .unwrap();
        assert_eq!((n.server_socket.as_str(), n.provider.as_str()), ("/s", "p.ns"));
        let n = load_netconf(br#"{"type":"kube-ovn","server_socket":"/s"}"#).unwrap();
        assert_eq!(n.provider, "ovn");
        let e = load_netconf(br#"{"type":"kube-ovn"}"#).unwrap_err();
        assert_eq!(e.to_cni().code, 7);
        assert_eq!(load_netconf(b"{").unwrap_err().to_cni().code, 6);
    }

    #[test]
    fn cni_args_values_as_kube_ovn_parses_them() {
        let args = "IgnoreUnknown=true;K8S_POD_NAME=;K8S_POD_NAME=p;K8S_POD_NAMESPACE=ns";
        assert_eq!(arg_value("K8S_POD_NAME", args).unwrap(), "p");
        assert!(matches!(
            arg_value("K8S_POD_INFRA_CONTAINER_ID", args),
            Err(ShimError::MissingArg { .. })
        ));
        assert!(matches!(arg_value("K8S_POD_NAME", ""), Err(ShimError::NoCniArgs)));
    }

    #[test]
    fn skel_requires_environment_and_network_name() {
        let env: HashMap<String, String> = [("CNI_COMMAND", "DEL"), ("CNI_IFNAME", "eth0")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut out = vec![];
        assert_eq!(run(&env, br#"{"name":"n","server_socket":"/s"}"#, &mut out), 1);
        let err: CniErrorJson = serde_json::from_slice(&out).unwrap();
        assert_eq!(err.code, 4);
        assert_eq!(
            err.msg,
            "required env variables [CNI_CONTAINERID,CNI_PATH] missing"
        );
        let mut env = env;
        env.insert("CNI_CONTAINERID".into(), "c".into());
        env.insert("CNI_PATH".into(), "/opt/cni/bin".into());
        let mut out = vec![];
        assert_eq!(run(&env, br#"{"server_socket":"/s"}"#, &mut out), 1);
        let err: CniErrorJson = serde_json::from_slice(&out).unwrap();
        assert_eq!((err.code, err.msg.as_str()), (7, "missing network name"));
    }
}
