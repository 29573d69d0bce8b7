//! A simulated cluster: OVN central, a fabric, N nodes (each optionally with the device plugin and
//! a kubelet stand-in), the Kube-OVN logical network, and pods. Dropping it removes everything,
//! also while unwinding from a failed test; every name carries a unique prefix.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::binaries::{self, BinaryError, DevicePluginPaths};
use crate::fabric::{Fabric, FabricError};
use crate::logical::{self, Ipam, LogicalError, Subnet};
use crate::multus::{MultusError, Nad};
use crate::node::{Node, NodeError, NodeSpec};
use crate::ovn_central::{CentralError, CentralOptions, OvnCentral};
use crate::pod::{Pod, PodError};
use testbed::daemon::ChildGuard;
use testbed::kubelet::{Kubelet, KubeletError};
use testbed::names;

pub use kubeovn::{KubeOvn, KubeOvnSpec, NodeServer};

mod diagnostics;
mod kubeovn;
mod pods;

/// MTU of the management network: room for Geneve around 1400-byte pod packets and more.
pub const MGMT_MTU: u32 = 1600;
/// Namespace of the pods the harness creates.
pub const POD_NAMESPACE: &str = "default";

/// Errors of building or driving the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// OVN central failed.
    #[error("OVN central")]
    Central(#[source] Box<CentralError>),
    /// The fabric failed.
    #[error("fabric")]
    Fabric(#[source] Box<FabricError>),
    /// A node failed.
    #[error("node")]
    Node(#[source] Box<NodeError>),
    /// Writing NB failed.
    #[error("logical network")]
    Logical(#[source] Box<LogicalError>),
    /// Plumbing a pod failed.
    #[error("pod")]
    Pod(#[source] Box<PodError>),
    /// A binary of ours is missing or did not start.
    #[error("binary")]
    Binary(#[source] Box<BinaryError>),
    /// The kubelet stand-in failed.
    #[error("kubelet")]
    Kubelet(#[source] Box<KubeletError>),
    /// The Multus stand-in failed.
    #[error("multus")]
    Multus(#[source] Box<MultusError>),
    /// Something the harness checks itself.
    #[error("{0}")]
    Harness(String),
}

/// What cluster to build.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Number of nodes.
    pub nodes: usize,
    /// VFs per node (one PF); 0 for nodes without a NIC.
    pub vfs_per_node: u32,
    /// The underlay subnet, if any (provider bridge, localnet, upstream router).
    pub underlay: Option<Subnet>,
    /// Start `sriov-device-plugin` and a kubelet stand-in on every node.
    pub sriov: bool,
    /// Run VF pods through the guide's Kube-OVN NAD and `sriov-ovs-server` (with the
    /// API-server and controller stand-ins) instead of the `type: sriov-ovs` NAD.
    pub kube_ovn: Option<KubeOvnSpec>,
}

macro_rules! boxed_from {
    ($($variant:ident($ty:ty)),+ $(,)?) => {
        $(impl From<$ty> for ClusterError {
            fn from(e: $ty) -> Self {
                ClusterError::$variant(Box::new(e))
            }
        })+
    };
}

boxed_from!(
    Central(CentralError),
    Fabric(FabricError),
    Node(NodeError),
    Logical(LogicalError),
    Pod(PodError),
    Binary(BinaryError),
    Kubelet(KubeletError),
    Multus(MultusError),
);

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            nodes: 2,
            vfs_per_node: 4,
            underlay: None,
            sriov: false,
            kube_ovn: None,
        }
    }
}

/// How a VF pod uses the `default/sriov` NAD.
#[derive(Clone, Debug)]
pub enum Attach {
    /// As the pod's default network (`v1.multus-cni.io/default-network`): interface `eth0`.
    DefaultNetwork,
    /// As a secondary network (`k8s.v1.cni.cncf.io/networks`): interface `net1`, with the
    /// selection element's `default-route`.
    Secondary {
        /// Gateways of `default-route`.
        default_route: Vec<Ipv4Addr>,
    },
}

#[derive(Debug)]
struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The running cluster.
#[derive(Debug)]
pub struct Cluster {
    pods: Vec<Pod>,
    kube_ovn: Option<KubeOvn>,
    device_plugins: Vec<Option<ChildGuard>>,
    kubelets: Vec<Option<Kubelet>>,
    nodes: Vec<Node>,
    fabric: Fabric,
    central: OvnCentral,
    ipams: HashMap<String, Ipam>,
    prefix: String,
    veth_count: usize,
    dir: DirGuard,
}

impl Cluster {
    /// Builds the cluster: central, fabric, nodes, `ovn-default`, and the underlay if asked.
    pub fn start(spec: ClusterSpec) -> Result<Cluster, ClusterError> {
        let prefix = names::unique_prefix();
        let dir = DirGuard(PathBuf::from(names::base_dir(&prefix)));
        tracing::info!(%prefix, dir = %dir.0.display(), "starting cluster");
        let central = OvnCentral::start(&dir.0.join("central"), CentralOptions::default())?;
        let fabric = Fabric::create(&prefix, MGMT_MTU)?;
        let mut c = Cluster {
            pods: vec![],
            kube_ovn: None,
            device_plugins: vec![],
            kubelets: vec![],
            nodes: vec![],
            fabric,
            central,
            ipams: HashMap::new(),
            prefix: prefix.clone(),
            veth_count: 0,
            dir,
        };
        let overlay = Subnet::ovn_default();
        logical::create_overlay(&c.central, &overlay)?;
        c.ipams.insert(overlay.name.clone(), Ipam::new(overlay));
        for i in 0..spec.nodes {
            let nspec = NodeSpec {
                name: format!("node{}", i + 1),
                index: i,
                ip: Ipv4Addr::new(172, 18, 0, 2 + i as u8),
                prefix_len: 24,
                mgmt_mtu: MGMT_MTU,
                vfs: spec.vfs_per_node,
            };
            let node = Node::start(
                &prefix,
                nspec,
                &c.dir.0.join(format!("n{i}")),
                &c.fabric,
                &c.central,
            )?;
            c.nodes.push(node);
        }
        if let Some(sub) = spec.underlay {
            if let Some(u) = &sub.underlay {
                for node in &c.nodes {
                    node.add_provider(&c.fabric, &u.provider)?;
                }
                let router_dir = c.dir.0.join("router");
                c.fabric
                    .add_router(sub.gateway, sub.prefix_len, u.vlan_id, &router_dir)?;
            }
            logical::create_underlay(&c.central, &sub)?;
            c.ipams.insert(sub.name.clone(), Ipam::new(sub));
        }
        if spec.sriov {
            for i in 0..c.nodes.len() {
                c.start_sriov(i)?;
            }
        }
        if let Some(k) = &spec.kube_ovn {
            c.start_kube_ovn(k)?;
        }
        Ok(c)
    }

    fn start_sriov(&mut self, i: usize) -> Result<(), ClusterError> {
        let node = &self.nodes[i];
        let Some(sysfs_root) = node.sysfs_root() else {
            self.kubelets.push(None);
            self.device_plugins.push(None);
            return Ok(());
        };
        let dp_dir = node.dir().join("device-plugins");
        let kubelet = Kubelet::start(&dp_dir)?;
        let config = binaries::device_plugin_config().map_err(ClusterError::Harness)?;
        let config_file = node.dir().join("sriovdp-config.json");
        std::fs::write(&config_file, config).map_err(|e| ClusterError::Harness(e.to_string()))?;
        let paths = DevicePluginPaths {
            config_file,
            device_plugin_dir: dp_dir,
            device_info_dir: node.dir().join("device-info"),
            sysfs_root: sysfs_root.to_path_buf(),
            log_file: node.dir().join("sriov-device-plugin.log"),
        };
        let dp = binaries::start_device_plugin(node.netns(), &paths)?;
        if let Some(pid) = dp.pid() {
            // Lets `cleanup::remove_prefix` find it when the cluster was kept.
            let _ = std::fs::write(node.dir().join("sriov-device-plugin.pid"), pid.to_string());
        }
        self.kubelets.push(Some(kubelet));
        self.device_plugins.push(Some(dp));
        Ok(())
    }

    /// Leaves everything running (the demo's `--keep`) and returns the prefix;
    /// `cleanup::remove_prefix` removes it later.
    pub fn keep(self) -> String {
        let prefix = self.prefix.clone();
        std::mem::forget(self);
        prefix
    }

    /// The cluster's name prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The cluster's private directory.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// OVN central.
    pub fn central(&self) -> &OvnCentral {
        &self.central
    }

    /// The fabric.
    pub fn fabric(&self) -> &Fabric {
        &self.fabric
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// All nodes.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The kubelet stand-in of node `i`, when SR-IOV is on.
    pub fn kubelet(&self, i: usize) -> Option<&Kubelet> {
        self.kubelets.get(i).and_then(Option::as_ref)
    }

    /// The running pods.
    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }

    /// The pod named `name`.
    pub fn pod(&self, name: &str) -> Option<&Pod> {
        self.pods.iter().find(|p| p.name == name)
    }

    /// The `default/sriov` NAD from `manifests/`.
    pub fn nad(&self) -> Result<Nad, ClusterError> {
        if let Some(k) = &self.kube_ovn {
            return Ok(k.nad.clone());
        }
        Nad::find(
            &binaries::manifests_dir().join("examples"),
            POD_NAMESPACE,
            "sriov",
        )
        .map_err(|e| MultusError::from(e).into())
    }

    /// Waits until every pod's port has `ovn-installed=true` on its node and its `Port_Binding`
    /// is on that node's chassis.
    pub fn wait_ports_ready(&self, timeout: Duration) -> Result<(), ClusterError> {
        for pod in &self.pods {
            let node = &self.nodes[pod.node];
            let ports = std::iter::once(pod.lsp.as_str()).chain(pod.primary.as_ref().map(|p| p.lsp.as_str()));
            for lsp in ports {
                let ready = || {
                    node.ovn_installed(lsp) && self.central.port_chassis(lsp).as_deref() == Some(node.name())
                };
                if testbed::daemon::wait_for(timeout, || ready().then_some(())).is_none() {
                    return Err(ClusterError::Harness(format!(
                        "port {lsp} of pod {} not ready on {} (ovn-installed={}, chassis={:?})",
                        pod.name,
                        node.name(),
                        node.ovn_installed(lsp),
                        self.central.port_chassis(lsp)
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        while let Some(pod) = self.pods.pop() {
            let name = pod.name.clone();
            if let Err(e) = self.teardown_pod(pod) {
                tracing::warn!(pod = %name, error = %sriov_logging::error_chain(&e), "pod teardown failed");
            }
        }
        // Remaining fields drop in declaration order: device plugins, kubelets, nodes, fabric,
        // central, then the directory.
    }
}
