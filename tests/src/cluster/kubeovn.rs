//! The cluster's Kube-OVN path (issue 11): the guide's NAD (`type: kube-ovn`, `server_socket`
//! naming our socket) run by the Multus stand-in through the kube-ovn shim stand-in to
//! `sriov-ovs-server` on each node, with the API-server and controller stand-ins allocating
//! addresses and logical switch ports as kube-ovn-controller does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use testbed::cmd::Cmd;
use testbed::daemon::{wait_for, ChildGuard};

use super::{Cluster, ClusterError};
use crate::binaries::{self, manifests_dir, BinaryError};
use crate::kubeovn::apiserver::ApiServer;
use crate::kubeovn::controller::{nb_of, Controller, ControllerConfig, Mode};
use crate::kubeovn::objects::SubnetSpec;
use crate::kubeovn::shim::{ReplyShape, REPLY_ENV};
use crate::kubeovn::{install_shim, store::Store};
use crate::multus::{CniEnv, Nad};
use crate::node::Node;

/// How the Kube-OVN stand-ins behave.
#[derive(Clone, Debug)]
pub struct KubeOvnSpec {
    /// Delay between a pod's creation and the controller's allocation.
    pub alloc_delay: Duration,
    /// Further delay before `routed=true`.
    pub routed_delay: Duration,
    /// Whether the controller answers at all.
    pub mode: Mode,
    /// `--wait-timeout` of the node servers.
    pub wait_timeout: Duration,
    /// The reply shape the kube-ovn shim reads (v1.12–v1.15 flat, or v1.16+ `ips`).
    pub reply: ReplyShape,
    /// `--ovn-installed-timeout` of the node servers (zero: don't wait).
    pub ovn_installed_timeout: Duration,
}

impl Default for KubeOvnSpec {
    fn default() -> Self {
        KubeOvnSpec {
            alloc_delay: Duration::from_millis(300),
            routed_delay: Duration::from_millis(300),
            mode: Mode::Allocate,
            wait_timeout: Duration::from_secs(30),
            reply: ReplyShape::Flat,
            ovn_installed_timeout: Duration::from_secs(30),
        }
    }
}

/// `sriov-ovs-server` on one node: in the node's netns, on a socket in the node's directory.
#[derive(Debug)]
pub struct NodeServer {
    child: ChildGuard,
    args: Vec<String>,
    netns: String,
    /// Its socket (the node's `server_socket`).
    pub socket: PathBuf,
    /// Its log.
    pub log: PathBuf,
}

impl NodeServer {
    fn start(
        node: &Node,
        kubeconfig: &std::path::Path,
        spec: &KubeOvnSpec,
    ) -> Result<NodeServer, ClusterError> {
        let socket = node.dir().join("sriov-ovs.sock");
        let mut args = vec![
            "--socket".to_string(),
            socket.display().to_string(),
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--ovsdb".into(),
            format!("unix:{}", node.db_sock().display()),
            "--state-dir".into(),
            node.dir().join("cni-state").display().to_string(),
            "--wait-timeout".into(),
            format!("{}ms", spec.wait_timeout.as_millis()),
            "--ovn-installed-timeout".into(),
            format!("{}ms", spec.ovn_installed_timeout.as_millis()),
            "--log-level".into(),
            "debug".into(),
            "--node-name".into(),
            node.name().to_string(),
        ];
        if let Some(root) = node.sysfs_root() {
            args.extend(["--sysfs-root".to_string(), root.display().to_string()]);
        }
        let log = node.dir().join("sriov-ovs-server.log");
        let child = spawn(node.netns(), &args, &log)?;
        let server = NodeServer {
            child,
            args,
            netns: node.netns().to_string(),
            socket,
            log,
        };
        server.wait_listening()?;
        Ok(server)
    }

    fn wait_listening(&self) -> Result<(), ClusterError> {
        wait_for(Duration::from_secs(20), || self.socket.exists().then_some(())).ok_or_else(|| {
            ClusterError::Harness(format!(
                "sriov-ovs-server did not create {}; log: {}",
                self.socket.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ))
        })
    }

    /// Stops the server (SIGTERM: it removes its socket) and starts it again, as a DaemonSet
    /// rollout does.
    pub fn restart(&mut self) -> Result<(), ClusterError> {
        self.child.stop();
        wait_for(Duration::from_secs(10), || (!self.socket.exists()).then_some(())).ok_or_else(|| {
            ClusterError::Harness("sriov-ovs-server left its socket behind on SIGTERM".into())
        })?;
        self.child = spawn(&self.netns, &self.args, &self.log)?;
        self.wait_listening()
    }
}

fn spawn(netns: &str, args: &[String], log: &std::path::Path) -> Result<ChildGuard, ClusterError> {
    let bin = binaries::binary(binaries::NODE_SERVER)?;
    let start = |source| BinaryError::Start {
        name: binaries::NODE_SERVER.to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(start)?;
    let mut cmd = Cmd::new(&bin).args(args).netns(Some(netns)).command();
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().map_err(start)?)
        .stderr(file)
        .spawn()
        .map_err(start)?;
    Ok(ChildGuard::new(binaries::NODE_SERVER, child))
}

/// The running Kube-OVN path.
pub struct KubeOvn {
    /// Node servers (stopped first on drop).
    pub servers: Vec<NodeServer>,
    /// The controller stand-in.
    pub controller: Controller,
    /// The API-server stand-in.
    pub api: ApiServer,
    /// Where the kube-ovn shim is installed (`CNI_PATH`).
    pub shim_dir: PathBuf,
    /// The guide's NAD from `manifests/`.
    pub nad: Nad,
    /// The reply shape the shim reads.
    pub reply: ReplyShape,
}

impl std::fmt::Debug for KubeOvn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeOvn")
            .field("servers", &self.servers)
            .field("api", &self.api.url())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts the Kube-OVN path: API server with the cluster's Subnets, the controller, the
    /// shim and a node server per node.
    pub(super) fn start_kube_ovn(&mut self, spec: &KubeOvnSpec) -> Result<(), ClusterError> {
        let harness = |e: &dyn std::error::Error| ClusterError::Harness(sriov_logging::error_chain(e));
        let api = ApiServer::start().map_err(|e| harness(&e))?;
        let subnets: Vec<crate::logical::Subnet> = self.ipams.values().map(|i| i.subnet().clone()).collect();
        for s in &subnets {
            api.store().put_subnet(&SubnetSpec::from_logical(s));
        }
        for node in &self.nodes {
            api.store().put_node(node.name(), &Default::default());
        }
        let nad = Nad::find(&manifests_dir(), super::POD_NAMESPACE, "sriov").map_err(|e| harness(&e))?;
        let mut config =
            ControllerConfig::new(vec![nad.clone()], subnets, spec.alloc_delay, spec.routed_delay);
        config.mode = spec.mode;
        let store: Arc<Store> = Arc::clone(api.store());
        let controller = Controller::start(store, nb_of(&self.central), config).map_err(|e| harness(&e))?;
        let shim_dir = self.dir.0.join("cni-bin");
        std::fs::create_dir_all(&shim_dir).map_err(|e| harness(&e))?;
        install_shim(&shim_dir).map_err(|e| harness(&e))?;
        let mut servers = Vec::new();
        for node in &self.nodes {
            let url = api.listen_in(node.netns()).map_err(|e| harness(&e))?;
            let kubeconfig = node.dir().join("kubeconfig");
            api.write_kubeconfig_for(&url, &kubeconfig)
                .map_err(|e| harness(&e))?;
            servers.push(NodeServer::start(node, &kubeconfig, spec)?);
        }
        self.kube_ovn = Some(KubeOvn {
            servers,
            controller,
            api,
            shim_dir,
            nad,
            reply: spec.reply,
        });
        Ok(())
    }

    /// The Kube-OVN path, when the cluster runs it.
    pub fn kube_ovn(&self) -> Option<&KubeOvn> {
        self.kube_ovn.as_ref()
    }

    /// The Kube-OVN path, mutably (to restart a node server).
    pub fn kube_ovn_mut(&mut self) -> Option<&mut KubeOvn> {
        self.kube_ovn.as_mut()
    }

    /// The CNI environment of node `i` on the Kube-OVN path: the kube-ovn shim and the
    /// reference plugins, `server_socket` pointing at the node's server.
    pub(super) fn kube_ovn_env(&self, k: &KubeOvn, i: usize) -> CniEnv {
        let mut local = Map::new();
        local.insert("server_socket".into(), json!(k.servers[i].socket));
        CniEnv {
            cni_path: vec![k.shim_dir.clone(), PathBuf::from("/usr/lib/cni")],
            node_netns: Some(self.nodes[i].netns().to_string()),
            env: vec![(REPLY_ENV.to_string(), k.reply.env_value().to_string())],
            node_local: vec![("kube-ovn".to_string(), local)],
        }
    }
}

/// The pod object the kubelet would run: the guide's annotations for `attach`.
pub(super) fn pod_object(
    name: &str,
    node: &str,
    nad: &Nad,
    provider: &str,
    subnet: &str,
    secondary: Option<&[std::net::Ipv4Addr]>,
) -> crate::kubeovn::objects::NewPod {
    let mut annotations = std::collections::BTreeMap::new();
    let nad_ref = format!("{}/{}", nad.namespace, nad.name);
    match secondary {
        None => {
            annotations.insert("v1.multus-cni.io/default-network".to_string(), nad_ref);
        }
        Some(gws) => {
            let mut sel = json!({"name": nad.name, "namespace": nad.namespace});
            if !gws.is_empty() {
                sel["default-route"] = Value::from(gws.iter().map(|g| g.to_string()).collect::<Vec<_>>());
            }
            annotations.insert(
                "k8s.v1.cni.cncf.io/networks".to_string(),
                json!([sel]).to_string(),
            );
        }
    }
    annotations.insert(
        format!("{provider}.kubernetes.io/logical_switch"),
        subnet.to_string(),
    );
    crate::kubeovn::objects::NewPod {
        namespace: super::POD_NAMESPACE.to_string(),
        name: name.to_string(),
        node_name: Some(node.to_string()),
        annotations,
    }
}
