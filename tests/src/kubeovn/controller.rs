//! Stand-in of Kube-OVN's controller for pods (kube-ovn `pkg/controller/pod.go` at v1.12.35, the
//! guide's release-1.12; v1.16.2 writes the same annotations): for each pod in the API-server
//! stand-in it finds the Kube-OVN networks (`getPodKubeovnNets`: attachments whose NAD has a
//! `kube-ovn` plugin, provider `<nad>.<ns>.ovn`, plus the `ovn` provider unless
//! `v1.multus-cni.io/default-network` names another default network), allocates IP and MAC from
//! the Subnet, creates the logical switch port in the real OVN NB as `CreateLogicalSwitchPort`
//! does (`pkg/ovs/ovn-nb-logical_switch_port.go`), writes the annotations
//! (`reconcileAllocateSubnets`) and later `routed=true` (`reconcileRouteSubnets`). Both writes
//! come late on purpose, after configurable delays, so the node server's wait is exercised. On
//! pod deletion it deletes the ports and releases the addresses (`handleDeletePod`).
//!
//! Not mirrored: port groups and policy routes of `reconcileRouteSubnets`, IP CRs, security
//! groups, VIPs, DHCP options, static addresses, VM and migration handling.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::annotations as ann;
use super::nbctl::{NbCtl, NbError};
use super::podnets::{pod_nets, NetsError, PodNet};
use super::store::{annotation, meta_str, AnnotationPatch, EventType, Kind, Store, StoreError};
use crate::logical::{self, Ipam, LogicalError, PortAddress};
use crate::nad::Nad;

/// Whether the controller answers at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Allocate, create ports, annotate.
    Allocate,
    /// Never write anything (the node server's timeout path).
    Never,
}

/// What the stand-in knows and how late it is.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// NetworkAttachmentDefinitions (the real controller reads them from the API).
    pub nads: Vec<Nad>,
    /// Address pools, one per Subnet name (the Subnets themselves are read from the store).
    pub subnets: Vec<logical::Subnet>,
    /// The namespace's default subnet (`ovn-default`).
    pub default_subnet: String,
    /// Delay between seeing a pod and writing its allocation.
    pub alloc_delay: Duration,
    /// Further delay before `routed=true`.
    pub routed_delay: Duration,
    /// `--pod-nic-type` (default `veth-pair`), written as `<provider>.kubernetes.io/pod_nic_type`.
    pub pod_nic_type: String,
    /// Whether it answers.
    pub mode: Mode,
}

impl ControllerConfig {
    /// Answers after `alloc_delay`, `routed` `routed_delay` later; default subnet `ovn-default`.
    pub fn new(
        nads: Vec<Nad>,
        subnets: Vec<logical::Subnet>,
        alloc_delay: Duration,
        routed_delay: Duration,
    ) -> Self {
        ControllerConfig {
            nads,
            subnets,
            default_subnet: logical::OVN_DEFAULT.to_string(),
            alloc_delay,
            routed_delay,
            pod_nic_type: "veth-pair".into(),
            mode: Mode::Allocate,
        }
    }
}

/// Errors of handling one pod (logged; the real controller retries, the stand-in gives up).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The pod's networks cannot be determined.
    #[error(transparent)]
    Nets(#[from] NetsError),
    /// No address pool for the subnet.
    #[error("pod {pod}: no subnet {subnet} in the stand-in's pools")]
    NoSubnet {
        /// `ns/name`.
        pod: String,
        /// Subnet name.
        subnet: String,
    },
    /// Allocation failed.
    #[error("pod {pod}: allocating from {subnet}")]
    Allocate {
        /// `ns/name`.
        pod: String,
        /// Subnet.
        subnet: String,
        /// Why.
        #[source]
        source: LogicalError,
    },
    /// The NB write failed.
    #[error("pod {pod}: logical switch port {lsp}")]
    Port {
        /// `ns/name`.
        pod: String,
        /// The port.
        lsp: String,
        /// Why.
        #[source]
        source: NbError,
    },
}

/// An allocation the controller made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The network.
    pub net: PodNet,
    /// Logical switch port name.
    pub lsp: String,
    /// Address and MAC.
    pub addr: PortAddress,
}

#[derive(Default)]
struct State {
    pending: HashSet<(String, String)>,
    allocated: HashMap<(String, String), Vec<Allocation>>,
    pools: BTreeMap<String, Ipam>,
}

struct Shared {
    store: Arc<Store>,
    nb: NbCtl,
    config: ControllerConfig,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running controller stand-in; stops on drop (ports it created stay, like the real one's).
pub struct Controller {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Controller {
    /// Starts watching `store`'s pods, writing ports to the NB behind `nb`.
    pub fn start(store: Arc<Store>, nb: NbCtl, config: ControllerConfig) -> std::io::Result<Controller> {
        let pools = config
            .subnets
            .iter()
            .map(|s| (s.name.clone(), Ipam::new(s.clone())))
            .collect();
        let shared = Arc::new(Shared {
            store,
            nb,
            config,
            state: Mutex::new(State {
                pools,
                ..State::default()
            }),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let run = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("kube-ovn-controller".into())
            .spawn(move || rt.block_on(event_loop(run, stopped)))?;
        Ok(Controller {
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// What is allocated to pod `namespace/name` now.
    pub fn allocations(&self, namespace: &str, name: &str) -> Vec<Allocation> {
        self.shared
            .state()
            .allocated
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Handles the current pods, then every pod event until `stopped`.
async fn event_loop(run: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    let (backlog, _, mut rx) = run.store.subscribe_current(Kind::Pod);
    for e in backlog {
        on_pod(&run, e.event_type, &e.object);
    }
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            e = rx.recv() => match e {
                Ok(e) if e.kind == Kind::Pod => on_pod(&run, e.event_type, &e.object),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "controller stand-in lagged behind pod events");
                }
                Err(_) => break,
            },
        }
    }
}

fn on_pod(shared: &Arc<Shared>, event_type: EventType, pod: &Value) {
    if shared.config.mode == Mode::Never {
        return;
    }
    let key = (
        meta_str(pod, "namespace").to_string(),
        meta_str(pod, "name").to_string(),
    );
    if event_type == EventType::Deleted {
        shared.state().pending.remove(&key);
        let shared = Arc::clone(shared);
        tokio::task::spawn_blocking(move || release(&shared, &key));
        return;
    }
    let subnets = shared.store.list(Kind::Subnet, None, &|_| true).0;
    let nets = match pod_nets(pod, &shared.config.nads, &subnets, &shared.config.default_subnet) {
        Ok(n) => n,
        Err(e) => {
            let e = ControllerError::from(e);
            tracing::warn!(error = %sriov_logging::error_chain(&e), "controller stand-in skips pod");
            return;
        }
    };
    let needed: Vec<PodNet> = nets
        .into_iter()
        .filter(|n| annotation(pod, &ann::key(&n.provider, ann::ALLOCATED)) != Some("true"))
        .collect();
    if needed.is_empty() || !shared.state().pending.insert(key.clone()) {
        return;
    }
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.alloc_delay).await;
        let worker = Arc::clone(&shared);
        let k = key.clone();
        let done = tokio::task::spawn_blocking(move || allocate(&worker, &k, &needed)).await;
        shared.state().pending.remove(&key);
        let Ok(Ok(providers)) = done.map_err(|e| tracing::warn!(%e, "allocation task failed")) else {
            return;
        };
        tokio::time::sleep(shared.config.routed_delay).await;
        let (ns, name) = &key;
        // reconcileRouteSubnets only runs for scheduled pods.
        let scheduled = shared.store.pod(ns, name).is_some_and(|p| {
            p.pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty())
        });
        if !scheduled {
            return;
        }
        let patch: AnnotationPatch = providers
            .iter()
            .map(|p| (ann::key(p, ann::ROUTED), Some("true".to_string())))
            .collect();
        if let Err(e) = shared.store.patch_pod_annotations(ns, name, &patch) {
            tracing::debug!(error = %e, "pod gone before routed");
        }
    });
}

/// `reconcileAllocateSubnets`: address, port, then one annotation patch. Returns the providers.
fn allocate(shared: &Shared, key: &(String, String), nets: &[PodNet]) -> Result<Vec<String>, ()> {
    let (ns, name) = key;
    let Some(pod) = shared.store.pod(ns, name) else {
        return Err(());
    };
    let id = format!("{ns}/{name}");
    let mut patch: AnnotationPatch = vec![];
    let mut made = vec![];
    for net in nets {
        match allocate_one(shared, &pod, &id, net) {
            Ok((alloc, entries)) => {
                patch.extend(entries);
                made.push(alloc);
            }
            Err(e) => {
                tracing::warn!(error = %sriov_logging::error_chain(&e), "controller stand-in cannot allocate");
                undo(shared, &made);
                return Err(());
            }
        }
    }
    let providers = made.iter().map(|a| a.net.provider.clone()).collect();
    // Recorded before the patch so a deletion seen meanwhile releases them.
    shared
        .state()
        .allocated
        .entry(key.clone())
        .or_default()
        .extend(made);
    match shared.store.patch_pod_annotations(ns, name, &patch) {
        Ok(_) => Ok(providers),
        Err(StoreError::NotFound { .. }) | Err(StoreError::AlreadyExists { .. }) => {
            release(shared, key);
            Err(())
        }
    }
}

fn allocate_one(
    shared: &Shared,
    pod: &Value,
    id: &str,
    net: &PodNet,
) -> Result<(Allocation, AnnotationPatch), ControllerError> {
    let (ns, name) = (meta_str(pod, "namespace"), meta_str(pod, "name"));
    let no_subnet = || ControllerError::NoSubnet {
        pod: id.to_string(),
        subnet: net.subnet.clone(),
    };
    let subnet_obj = shared.store.subnet(&net.subnet).ok_or_else(no_subnet)?;
    let addr = {
        let mut state = shared.state();
        let pool = state.pools.get_mut(&net.subnet).ok_or_else(no_subnet)?;
        pool.allocate().map_err(|source| ControllerError::Allocate {
            pod: id.to_string(),
            subnet: net.subnet.clone(),
            source,
        })?
    };
    let lsp = logical::port_name(name, ns, &net.provider);
    let port_security = annotation(pod, &ann::key(&net.provider, ann::PORT_SECURITY)) == Some("true");
    if let Err(source) = shared
        .nb
        .create_pod_port(&net.subnet, &lsp, &addr, ns, name, port_security)
    {
        if let Some(p) = shared.state().pools.get_mut(&net.subnet) {
            p.release(addr.ip);
        }
        return Err(ControllerError::Port {
            pod: id.to_string(),
            lsp,
            source,
        });
    }
    let spec = |k: &str| {
        subnet_obj
            .pointer(&format!("/spec/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let p = &net.provider;
    let mut patch = vec![
        (ann::key(p, ann::IP_ADDRESS), Some(addr.ip.to_string())),
        (ann::key(p, ann::MAC_ADDRESS), Some(addr.mac.clone())),
        (ann::key(p, ann::CIDR), Some(spec("cidrBlock"))),
        (ann::key(p, ann::GATEWAY), Some(spec("gateway"))),
        (ann::key(p, ann::LOGICAL_SWITCH), Some(net.subnet.clone())),
        (ann::key(p, ann::ALLOCATED), Some("true".into())),
    ];
    if annotation(pod, &ann::key(p, ann::POD_NIC_TYPE))
        .unwrap_or_default()
        .is_empty()
    {
        patch.push((
            ann::key(p, ann::POD_NIC_TYPE),
            Some(shared.config.pod_nic_type.clone()),
        ));
    }
    let (vlan, vpc) = (spec("vlan"), spec("vpc"));
    if vlan.is_empty() && !vpc.is_empty() {
        patch.push((ann::key(p, ann::LOGICAL_ROUTER), Some(vpc)));
    }
    if !vlan.is_empty() {
        if let Some(u) = shared
            .config
            .subnets
            .iter()
            .find(|s| s.name == net.subnet)
            .and_then(|s| s.underlay.clone())
        {
            patch.push((ann::key(p, ann::VLAN_ID), Some(u.vlan_id.to_string())));
            patch.push((ann::key(p, ann::PROVIDER_NETWORK), Some(u.provider)));
        }
    }
    Ok((
        Allocation {
            net: net.clone(),
            lsp,
            addr,
        },
        patch,
    ))
}

fn undo(shared: &Shared, made: &[Allocation]) {
    for a in made {
        if let Err(e) = shared.nb.delete_port(&a.lsp) {
            tracing::warn!(error = %sriov_logging::error_chain(&e), lsp = a.lsp, "controller stand-in cannot delete port");
        }
        if let Some(p) = shared.state().pools.get_mut(&a.net.subnet) {
            p.release(a.addr.ip);
        }
    }
}

/// `handleDeletePod`: ports deleted, addresses released.
fn release(shared: &Shared, key: &(String, String)) {
    let made = shared.state().allocated.remove(key).unwrap_or_default();
    undo(shared, &made);
}

/// Where the NB is, for the controller thread (it cannot borrow the test's `OvnCentral`).
pub fn nb_of(central: &crate::ovn_central::OvnCentral) -> NbCtl {
    NbCtl::new(central.nb_sock(), PathBuf::from(central.dir()))
}
