//! A stand-in for Multus (thick): reads NetworkAttachmentDefinitions, resolves their
//! `k8s.v1.cni.cncf.io/resourceName`, injects the allocated `deviceID` into every plugin of the
//! conflist, and runs the chain (ADD with `prevResult` chaining, DEL in reverse) the way libcni does,
//! then applies the network-selection element's `default-route`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

pub use crate::nad::{Nad, NadError, NetworkSelection, RESOURCE_ANNOTATION};
use testbed::cmd::{ip_in, CmdError};
use testbed::cni::CniCall;

/// Errors of the Multus stand-in.
#[derive(Debug, thiserror::Error)]
pub enum MultusError {
    /// The NAD is unusable.
    #[error("network attachment definition")]
    Nad(#[from] NadError),
    /// No executable for a plugin type in `CNI_PATH`.
    #[error("plugin {plugin:?} not found in {path:?}")]
    PluginNotFound {
        /// The plugin type.
        plugin: String,
        /// The directories searched.
        path: Vec<PathBuf>,
    },
    /// A plugin failed.
    #[error("{command} {plugin} failed: {msg}")]
    Plugin {
        /// ADD or DEL.
        command: &'static str,
        /// The plugin type.
        plugin: String,
        /// The CNI error (code, msg, details) or raw output.
        msg: String,
    },
    /// The plugin could not be executed at all.
    #[error("cannot run plugin {plugin}")]
    Exec {
        /// The plugin type.
        plugin: String,
        /// Why.
        #[source]
        source: CmdError,
    },
    /// Setting the requested default route failed.
    #[error("default route via {gateway} on {ifname}")]
    DefaultRoute {
        /// The gateway.
        gateway: Ipv4Addr,
        /// The interface.
        ifname: String,
        /// Why.
        #[source]
        source: CmdError,
    },
}

/// Identity and sandbox of the pod being attached.
#[derive(Clone, Debug)]
pub struct PodRef {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod UID.
    pub uid: String,
    /// Infra container ID (`CNI_CONTAINERID`).
    pub container_id: String,
    /// Netns path (`CNI_NETNS`).
    pub netns_path: String,
    /// Netns name, for the default route.
    pub netns: String,
}

/// Where and how plugins run on a node.
#[derive(Clone, Debug, Default)]
pub struct CniEnv {
    /// Directories searched for plugin binaries, in order (`CNI_PATH`).
    pub cni_path: Vec<PathBuf>,
    /// The node netns the plugins run in (the kubelet's and Multus' netns on a real node).
    pub node_netns: Option<String>,
    /// Extra environment for every plugin (e.g. `SRIOV_SYSFS_ROOT` of a simulated node).
    pub env: Vec<(String, String)>,
    /// Node-local keys added to the netconf of plugins of a given type: on a real node these are
    /// the defaults (`/run/openvswitch/db.sock`, `/var/lib/cni/...`); simulated nodes share one
    /// host, so each gets its own.
    pub node_local: Vec<(String, Map<String, Value>)>,
}

/// A done ADD: what DEL needs.
#[derive(Clone, Debug)]
pub struct Attachment {
    /// The NAD.
    pub nad: Nad,
    /// Interface name in the pod.
    pub ifname: String,
    /// The pod.
    pub pod: PodRef,
    /// `CNI_ARGS` used.
    pub cni_args: String,
    /// The netconf of each plugin as sent (without `prevResult`).
    pub confs: Vec<Map<String, Value>>,
    /// The final result of the chain.
    pub result: Value,
    /// Wall time of the ADD chain.
    pub add_time: Duration,
}

impl CniEnv {
    fn find_plugin(&self, plugin: &str) -> Result<PathBuf, MultusError> {
        self.cni_path
            .iter()
            .map(|d| d.join(plugin))
            .find(|p| p.is_file())
            .ok_or_else(|| MultusError::PluginNotFound {
                plugin: plugin.to_string(),
                path: self.cni_path.clone(),
            })
    }

    fn exec(
        &self,
        command: &'static str,
        conf: &Map<String, Value>,
        pod: &PodRef,
        ifname: &str,
        cni_args: &str,
    ) -> Result<Value, MultusError> {
        let plugin = conf
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let bin = self.find_plugin(&plugin)?;
        let path = std::env::join_paths(&self.cni_path).unwrap_or_default();
        let call = CniCall {
            verb: command.to_string(),
            container_id: pod.container_id.clone(),
            netns: pod.netns_path.clone(),
            ifname: ifname.to_string(),
            args: cni_args.to_string(),
            path: path.to_string_lossy().into_owned(),
            extra_env: self.env.clone(),
        };
        let conf = Value::Object(conf.clone()).to_string();
        let out = call
            .run(&bin, self.node_netns.as_deref(), conf.as_bytes())
            .map_err(|source| MultusError::Exec {
                plugin: plugin.clone(),
                source,
            })?;
        let stdout = out.stdout.as_str();
        if !out.ok {
            return Err(MultusError::Plugin {
                command,
                plugin,
                msg: format!("{} {}", stdout.trim(), out.stderr.trim())
                    .trim()
                    .to_string(),
            });
        }
        if stdout.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(stdout).map_err(|e| MultusError::Plugin {
            command,
            plugin,
            msg: format!("unparsable result ({e}): {stdout}"),
        })
    }

    /// Runs ADD of `nad`'s chain for `pod` on `ifname`, injecting `device_id`, then applies the
    /// selection's default route. On a failure, runs DEL of the whole chain (as Multus does).
    pub fn add(
        &self,
        nad: &Nad,
        sel: &NetworkSelection,
        pod: &PodRef,
        ifname: &str,
        device_id: Option<&str>,
    ) -> Result<Attachment, MultusError> {
        let version = nad.cni_version();
        let mut cni_args = format!(
            "IgnoreUnknown=true;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
            pod.namespace, pod.name, pod.container_id, pod.uid
        );
        if let Some(mac) = &sel.mac {
            cni_args.push_str(&format!(";MAC={mac}"));
        }
        if !sel.ips.is_empty() {
            cni_args.push_str(&format!(";IP={}", sel.ips.join(",")));
        }
        let name = nad.config.get("name").cloned().unwrap_or_else(|| json!(nad.name));
        let mut confs = vec![];
        for mut conf in nad.plugins()? {
            conf.insert("name".into(), name.clone());
            conf.insert("cniVersion".into(), json!(version));
            if let Some(id) = device_id {
                conf.insert("deviceID".into(), json!(id));
            }
            let plugin = conf
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            for (ty, keys) in &self.node_local {
                if *ty == plugin {
                    conf.extend(keys.clone());
                }
            }
            let rc = runtime_config(&conf, sel);
            if !rc.is_empty() {
                conf.insert("runtimeConfig".into(), Value::Object(rc));
            }
            confs.push(conf);
        }
        let started = Instant::now();
        let mut prev: Option<Value> = None;
        let mut failure = None;
        for conf in &confs {
            let mut c = conf.clone();
            if let Some(p) = &prev {
                c.insert("prevResult".into(), p.clone());
            }
            match self.exec("ADD", &c, pod, ifname, &cni_args) {
                Ok(r) => prev = Some(r),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let add_time = started.elapsed();
        let att = Attachment {
            nad: nad.clone(),
            ifname: ifname.to_string(),
            pod: pod.clone(),
            cni_args,
            confs,
            result: prev.unwrap_or(Value::Null),
            add_time,
        };
        if let Some(e) = failure {
            let _ = self.del(&att);
            return Err(e);
        }
        if let Some(gw) = sel.default_route.first() {
            let gateway = gw.to_string();
            ip_in(
                &pod.netns,
                ["route", "replace", "default", "via", &gateway, "dev", ifname],
            )
            .map_err(|source| MultusError::DefaultRoute {
                gateway: *gw,
                ifname: ifname.to_string(),
                source,
            })?;
        }
        Ok(att)
    }

    /// Runs DEL of the chain in reverse order; every plugin is called even if one fails, and the
    /// first error is returned. `prevResult` is passed from CNI 0.4.0 on, as libcni does.
    pub fn del(&self, att: &Attachment) -> Result<(), MultusError> {
        let with_prev = version_at_least(&att.nad.cni_version(), (0, 4, 0)) && !att.result.is_null();
        let mut first_err = None;
        for conf in att.confs.iter().rev() {
            let mut c = conf.clone();
            if with_prev {
                c.insert("prevResult".into(), att.result.clone());
            }
            if let Err(e) = self.exec("DEL", &c, &att.pod, &att.ifname, &att.cni_args) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The `runtimeConfig` libcni builds: only keys whose capability the plugin declares.
fn runtime_config(conf: &Map<String, Value>, sel: &NetworkSelection) -> Map<String, Value> {
    let caps = conf.get("capabilities").and_then(Value::as_object);
    let has = |c: &str| {
        caps.and_then(|m| m.get(c))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let mut rc = Map::new();
    if has("ips") && !sel.ips.is_empty() {
        rc.insert("ips".into(), json!(sel.ips));
    }
    if has("mac") {
        if let Some(mac) = &sel.mac {
            rc.insert("mac".into(), json!(mac));
        }
    }
    rc
}

fn version_at_least(v: &str, min: (u32, u32, u32)) -> bool {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let parsed = (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    );
    parsed >= min
}

/// The IPv4 address and MAC of `ifname` in a CNI result (0.3.x/0.4.0/1.x share this shape).
pub fn result_address(result: &Value, ifname: &str) -> (Option<String>, Option<String>) {
    let ifaces = result
        .get("interfaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let idx = ifaces
        .iter()
        .position(|i| i.get("name").and_then(Value::as_str) == Some(ifname) && i.get("sandbox").is_some());
    let mac = idx
        .and_then(|i| ifaces[i].get("mac"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let ip = result
        .get("ips")
        .and_then(Value::as_array)
        .and_then(|ips| {
            ips.iter().find(|ip| {
                idx.is_none() || ip.get("interface").and_then(Value::as_u64) == idx.map(|i| i as u64)
            })
        })
        .and_then(|ip| ip.get("address"))
        .and_then(Value::as_str)
        .map(str::to_string);
    (ip, mac)
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const NAD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
data: {}
---
apiVersion: "k8s.cni.cncf.io/v1"
kind: NetworkAttachmentDefinition
metadata:
  name: sriov
  namespace: default
  annotations:
    k8s.v1.cni.cncf.io/resourceName: mellanox.com/cx5_sriov_switchdev
spec:
  config: '{
    "cniVersion": "0.3.1",
    "name": "sriov-ovs",
    "plugins":[
        {"type":"sriov-ovs","provider":"sriov.default.ovn","capabilities":{"ips":true,"mac":true}},
        {"type":"portmap","capabilities":{"portMappings":true}}
    ]
}'
"#;

    #[test]
    fn parses_nad_and_resolves_resource_name() {
        let nads = Nad::parse_all(NAD, Path::new("x.yaml")).unwrap();
        assert_eq!(nads.len(), 1);
        let nad = &nads[0];
        assert_eq!(nad.id(), "default/sriov");
        assert_eq!(
            nad.resource_name.as_deref(),
            Some("mellanox.com/cx5_sriov_switchdev")
        );
        assert_eq!(nad.cni_version(), "0.3.1");
        let plugins = nad.plugins().unwrap();
        assert_eq!(plugins[0]["type"], "sriov-ovs");
        assert_eq!(plugins[1]["type"], "portmap");
    }

    #[test]
    fn runtime_config_only_carries_declared_capabilities() {
        let sel = NetworkSelection {
            ips: vec!["10.16.0.5/16".into()],
            mac: Some("00:00:00:16:00:05".into()),
            ..NetworkSelection::default()
        };
        let nad = &Nad::parse_all(NAD, Path::new("x.yaml")).unwrap()[0];
        let p = nad.plugins().unwrap();
        let rc = runtime_config(&p[0], &sel);
        assert_eq!(rc["ips"], json!(["10.16.0.5/16"]));
        assert_eq!(rc["mac"], "00:00:00:16:00:05");
        assert!(runtime_config(&p[1], &sel).is_empty());
    }

    #[test]
    fn selection_element_reads_default_route() {
        let sel: NetworkSelection = serde_json::from_str(
            r#"{"name":"sriov","namespace":"default","default-route":["10.10.204.254"]}"#,
        )
        .unwrap();
        assert_eq!(sel.default_route, vec![Ipv4Addr::new(10, 10, 204, 254)]);
        assert!(version_at_least("1.0.0", (0, 4, 0)) && !version_at_least("0.3.1", (0, 4, 0)));
    }

    #[test]
    fn finds_result_address_of_pod_interface() {
        let r = json!({"cniVersion":"0.3.1","interfaces":[{"name":"rep_h"},{"name":"net1","mac":"aa:bb:cc:dd:ee:ff","sandbox":"/run/netns/x"}],
            "ips":[{"version":"4","interface":1,"address":"10.10.204.101/24"}]});
        let (ip, mac) = result_address(&r, "net1");
        assert_eq!(ip.as_deref(), Some("10.10.204.101/24"));
        assert_eq!(mac.as_deref(), Some("aa:bb:cc:dd:ee:ff"));
    }
}
