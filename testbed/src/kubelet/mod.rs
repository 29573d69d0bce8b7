//! The kubelet stand-in: serves `Registration` on `kubelet.sock` and hands each registration to
//! the test ([`Kubelet::next_registration`]). Started with [`Kubelet::start`] it is also the
//! device manager: it connects to each registered plugin, tracks its devices from
//! `ListAndWatch`, and allocates devices to pods with `GetPreferredAllocation` and `Allocate`
//! like the kubelet does; [`Kubelet::registrar`] only records registrations, for tests that
//! talk to the plugin themselves.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kubelet_proto::v1beta1::device_plugin_client::DevicePluginClient;
use kubelet_proto::v1beta1::registration_server::RegistrationServer;
use kubelet_proto::v1beta1::{
    AllocateRequest, ContainerAllocateRequest, ContainerPreferredAllocationRequest, DevicePluginOptions,
    PreStartContainerRequest, PreferredAllocationRequest, RegisterRequest, HEALTHY, KUBELET_SOCKET,
};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Channel;
use tonic::Status;

use crate::daemon::wait_for;

mod registration;
use registration::RegistrationService;

/// Errors of the kubelet stand-in.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The tokio runtime could not be built.
    #[error("cannot build the kubelet runtime")]
    Runtime(#[source] std::io::Error),
    /// The registration socket could not be bound.
    #[error("cannot listen on {path}")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No plugin registered the resource, or it has too few healthy devices.
    #[error("resource {resource}: {available} device(s) available, {wanted} wanted")]
    Insufficient {
        /// The resource.
        resource: String,
        /// Healthy, unallocated devices.
        available: usize,
        /// Devices asked for.
        wanted: usize,
    },
    /// The plugin did not register in time.
    #[error("no device plugin registered {resource} with {wanted} device(s) in time")]
    NotRegistered {
        /// The resource.
        resource: String,
        /// Devices waited for.
        wanted: usize,
    },
    /// A gRPC call to the plugin failed.
    #[error("{call} on {resource} failed")]
    Rpc {
        /// The RPC.
        call: &'static str,
        /// The resource.
        resource: String,
        /// Why.
        #[source]
        source: Box<Status>,
    },
    /// The plugin answered something the kubelet would refuse.
    #[error("{call} on {resource}: {problem}")]
    BadAnswer {
        /// The RPC.
        call: &'static str,
        /// The resource.
        resource: String,
        /// What was wrong.
        problem: String,
    },
}

/// One registered resource.
#[derive(Debug, Default)]
pub(crate) struct Resource {
    endpoint: PathBuf,
    options: DevicePluginOptions,
    /// Device ID to health.
    devices: BTreeMap<String, String>,
    client: Option<DevicePluginClient<Channel>>,
    /// Number of `ListAndWatch` updates received.
    updates: u64,
    /// Number of registrations seen (a plugin restart registers again).
    registrations: u64,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    resources: HashMap<String, Resource>,
    /// Pod key to (resource, device IDs).
    allocations: HashMap<String, Vec<(String, Vec<String>)>>,
}

/// What `Allocate` gave a pod's container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The resource.
    pub resource: String,
    /// Device IDs (for SR-IOV: VF PCI addresses), as Multus reads them from the kubelet.
    pub device_ids: Vec<String>,
    /// Environment variables of the container (`PCIDEVICE_...`).
    pub envs: BTreeMap<String, String>,
}

/// How long [`Kubelet::next_registration`] waits.
pub const REGISTRATION_WAIT: Duration = Duration::from_secs(15);

/// The running kubelet stand-in; stops serving (and removes `kubelet.sock`) on drop.
#[derive(Debug)]
pub struct Kubelet {
    /// Every registration accepted, in order.
    pub registrations: mpsc::UnboundedReceiver<RegisterRequest>,
    dir: PathBuf,
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
    rt: Option<tokio::runtime::Runtime>,
}

pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Kubelet {
    /// Serves `Registration` on `<device_plugin_dir>/kubelet.sock` (the directory is created)
    /// and acts as the device manager of every plugin that registers.
    pub fn start(device_plugin_dir: &Path) -> Result<Kubelet, KubeletError> {
        Kubelet::serve(device_plugin_dir, true)
    }

    /// Serves `Registration` only: registrations are recorded, plugins are not contacted.
    pub fn registrar(device_plugin_dir: &Path) -> Result<Kubelet, KubeletError> {
        Kubelet::serve(device_plugin_dir, false)
    }

    fn serve(device_plugin_dir: &Path, manage: bool) -> Result<Kubelet, KubeletError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(KubeletError::Runtime)?;
        let sock = device_plugin_dir.join(KUBELET_SOCKET);
        let listen = |source| KubeletError::Listen {
            path: sock.clone(),
            source,
        };
        std::fs::create_dir_all(device_plugin_dir).map_err(listen)?;
        let _ = std::fs::remove_file(&sock);
        let listener = {
            let _guard = rt.enter();
            UnixListener::bind(&sock).map_err(listen)?
        };
        let state = Arc::new(Mutex::new(State::default()));
        let (registered, registrations) = mpsc::unbounded_channel();
        let svc = RegistrationService {
            dir: device_plugin_dir.to_path_buf(),
            state: state.clone(),
            registered,
            manage,
        };
        let (tx, rx) = oneshot::channel::<()>();
        rt.spawn(async move {
            let r = tonic::transport::Server::builder()
                .add_service(RegistrationServer::new(svc))
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "kubelet registration server failed");
            }
        });
        Ok(Kubelet {
            registrations,
            dir: device_plugin_dir.to_path_buf(),
            state,
            shutdown: Some(tx),
            rt: Some(rt),
        })
    }

    /// The next registration, in the order they came.
    ///
    /// # Panics
    /// When none comes within [`REGISTRATION_WAIT`]: the test has failed.
    pub async fn next_registration(&mut self) -> RegisterRequest {
        match tokio::time::timeout(REGISTRATION_WAIT, self.registrations.recv()).await {
            Ok(Some(request)) => request,
            Ok(None) => panic!("kubelet stand-in gone"),
            Err(_) => panic!("no registration within {REGISTRATION_WAIT:?}"),
        }
    }

    /// Stops serving and removes `kubelet.sock` (a kubelet restart, when another starts).
    pub fn stop(self) {
        drop(self);
    }

    /// The device plugin directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Healthy devices of `resource` (the node's allocatable count).
    pub fn allocatable(&self, resource: &str) -> usize {
        let st = lock(&self.state);
        st.resources
            .get(resource)
            .map_or(0, |r| r.devices.values().filter(|h| *h == HEALTHY).count())
    }

    /// Healthy devices of `resource` not allocated to any pod.
    pub fn available(&self, resource: &str) -> Vec<String> {
        let st = lock(&self.state);
        available(&st, resource)
    }

    /// How many times a plugin registered `resource`.
    pub fn registration_count(&self, resource: &str) -> u64 {
        lock(&self.state)
            .resources
            .get(resource)
            .map_or(0, |r| r.registrations)
    }

    /// All devices of `resource` with their health, as last listed.
    pub fn devices(&self, resource: &str) -> BTreeMap<String, String> {
        lock(&self.state)
            .resources
            .get(resource)
            .map(|r| r.devices.clone())
            .unwrap_or_default()
    }

    /// Waits until `resource` has at least `n` healthy devices and a live `ListAndWatch`.
    pub fn wait_for_devices(&self, resource: &str, n: usize, timeout: Duration) -> Result<(), KubeletError> {
        wait_for(timeout, || {
            let st = lock(&self.state);
            let r = st.resources.get(resource)?;
            let healthy = r.devices.values().filter(|h| *h == HEALTHY).count();
            (r.client.is_some() && healthy >= n).then_some(())
        })
        .ok_or_else(|| KubeletError::NotRegistered {
            resource: resource.to_string(),
            wanted: n,
        })
    }

    /// Allocates `n` devices of `resource` to `pod` (a key such as the pod UID).
    pub fn allocate(&self, pod: &str, resource: &str, n: usize) -> Result<Allocation, KubeletError> {
        let (mut client, options, free) = {
            let st = lock(&self.state);
            let free = available(&st, resource);
            let r = st.resources.get(resource);
            match r.and_then(|r| r.client.clone().map(|c| (c, r.options))) {
                Some((c, o)) if free.len() >= n => (c, o, free),
                _ => {
                    return Err(KubeletError::Insufficient {
                        resource: resource.to_string(),
                        available: free.len(),
                        wanted: n,
                    })
                }
            }
        };
        let rpc = |call: &'static str| {
            let resource = resource.to_string();
            move |s: Status| KubeletError::Rpc {
                call,
                resource,
                source: Box::new(s),
            }
        };
        let bad = |call: &'static str, problem: String| KubeletError::BadAnswer {
            call,
            resource: resource.to_string(),
            problem,
        };
        let rt = self.runtime();
        let mut chosen: Vec<String> = free.iter().take(n).cloned().collect();
        if options.get_preferred_allocation_available {
            let req = PreferredAllocationRequest {
                container_requests: vec![ContainerPreferredAllocationRequest {
                    available_device_i_ds: free.clone(),
                    must_include_device_i_ds: vec![],
                    allocation_size: n as i32,
                }],
            };
            let resp = rt
                .block_on(client.get_preferred_allocation(req))
                .map_err(rpc("GetPreferredAllocation"))?
                .into_inner();
            let preferred = resp
                .container_responses
                .into_iter()
                .next()
                .map(|c| c.device_i_ds)
                .unwrap_or_default();
            // The kubelet takes the preference only when it is a valid choice.
            if preferred.len() == n && preferred.iter().all(|d| free.contains(d)) {
                chosen = preferred;
            } else {
                return Err(bad(
                    "GetPreferredAllocation",
                    format!("unusable preference {preferred:?}"),
                ));
            }
        }
        let req = AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: chosen.clone(),
            }],
        };
        let resp = rt
            .block_on(client.allocate(req))
            .map_err(rpc("Allocate"))?
            .into_inner();
        let container = resp
            .container_responses
            .into_iter()
            .next()
            .ok_or_else(|| bad("Allocate", "no container response".into()))?;
        if options.pre_start_required {
            rt.block_on(client.pre_start_container(PreStartContainerRequest {
                devices_ids: chosen.clone(),
            }))
            .map_err(rpc("PreStartContainer"))?;
        }
        lock(&self.state)
            .allocations
            .entry(pod.to_string())
            .or_default()
            .push((resource.to_string(), chosen.clone()));
        Ok(Allocation {
            resource: resource.to_string(),
            device_ids: chosen,
            envs: container.envs.into_iter().collect(),
        })
    }

    /// Frees every device allocated to `pod` (the pod was deleted).
    pub fn release(&self, pod: &str) {
        lock(&self.state).allocations.remove(pod);
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        // Set in start() and only taken in drop().
        self.rt
            .as_ref()
            .unwrap_or_else(|| unreachable!("kubelet runtime present until drop"))
    }
}

fn available(st: &State, resource: &str) -> Vec<String> {
    let Some(r) = st.resources.get(resource) else {
        return vec![];
    };
    let used: Vec<&String> = st
        .allocations
        .values()
        .flatten()
        .filter(|(res, _)| res == resource)
        .flat_map(|(_, ids)| ids)
        .collect();
    r.devices
        .iter()
        .filter(|(id, h)| *h == HEALTHY && !used.contains(id))
        .map(|(id, _)| id.clone())
        .collect()
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.rt.take() {
            // Not waiting: the stand-in may be dropped inside an async test.
            rt.shutdown_background();
        }
        let _ = std::fs::remove_file(self.dir.join(KUBELET_SOCKET));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubelet_proto::v1beta1::registration_client::RegistrationClient;
    use kubelet_proto::v1beta1::VERSION;

    #[test]
    fn registrar_hands_over_registrations_and_refuses_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut kubelet = Kubelet::registrar(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let channel = registration::connect(dir.path().join(KUBELET_SOCKET))
                .await
                .unwrap();
            let mut client = RegistrationClient::new(channel);
            let good = RegisterRequest {
                version: VERSION.into(),
                endpoint: "r.sock".into(),
                resource_name: "example.com/r".into(),
                options: None,
            };
            client.register(good.clone()).await.unwrap();
            let bad = RegisterRequest {
                resource_name: "no-domain".into(),
                ..good
            };
            assert!(client.register(bad).await.is_err());
            assert_eq!(kubelet.next_registration().await.resource_name, "example.com/r");
            assert!(kubelet.registrations.try_recv().is_err());
        });
        // Only recorded: no device manager behind it.
        assert_eq!(kubelet.registration_count("example.com/r"), 1);
        assert_eq!(kubelet.allocatable("example.com/r"), 0);
        kubelet.stop();
        assert!(!dir.path().join(KUBELET_SOCKET).exists());
    }
}
