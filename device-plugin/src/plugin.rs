//! One served resource: its pool, its `DevicePlugin` socket, its
//! registration (with `kubelet.sock`, or through the plugin watcher) and its
//! device-info files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kubelet_proto::pluginregistration::registration_server::RegistrationServer;
use kubelet_proto::v1beta1::device_plugin_server::DevicePluginServer;
use kubelet_proto::v1beta1::KUBELET_SOCKET;
use sriov_host::PciAddress;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Server;

use crate::cdi::CdiSpecDir;
use crate::device_info::DeviceInfoDir;
use crate::plugin_watcher::PluginWatcherService;
use crate::pool::Pool;
use crate::registration::{register_unless_watched, register_until_done, Registrar};
use crate::server::DevicePluginService;
use crate::status::ResourceStatus;
use crate::transport::{SocketServer, TransportError};
use sriovdp_config::ResourceConfig;

/// Where a plugin lives on the node.
#[derive(Clone, Debug)]
pub struct PluginPaths {
    /// Kubelet device plugin directory (our socket, `kubelet.sock`).
    pub device_plugin_dir: PathBuf,
    /// Device-info directory.
    pub device_info_dir: PathBuf,
    /// CDI spec directory, with `--use-cdi`.
    pub cdi_spec_dir: Option<PathBuf>,
    /// How to register with the kubelet.
    pub registrar: Registrar,
}

/// A running resource.
pub struct Plugin {
    pool: Arc<Pool>,
    paths: PluginPaths,
    server: Option<SocketServer>,
    registry_server: Option<SocketServer>,
    registrar: Option<JoinHandle<()>>,
}

impl Plugin {
    /// A plugin for `pool`; not serving until [`Plugin::restart`].
    pub fn new(pool: Arc<Pool>, paths: PluginPaths) -> Plugin {
        Plugin {
            pool,
            paths,
            server: None,
            registry_server: None,
            registrar: None,
        }
    }

    /// The pool.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The socket file name in the device plugin directory.
    pub fn socket_name(&self) -> String {
        self.pool.config().socket_name()
    }

    /// The resource as the status endpoint reports it.
    pub fn status(&self) -> ResourceStatus {
        ResourceStatus {
            resource: self.pool.config().full_name(),
            serving: self.sockets_present(),
            registered: self.pool.metrics().is_registered(),
        }
    }

    /// True when our `DevicePlugin` (and plugin-watcher) sockets are in place.
    pub fn sockets_present(&self) -> bool {
        self.server.as_ref().is_some_and(SocketServer::socket_present)
            && (self.paths.registrar.registry_dir().is_none()
                || self
                    .registry_server
                    .as_ref()
                    .is_some_and(SocketServer::socket_present))
    }

    /// (Re)creates the sockets and registers again. Open `ListAndWatch`
    /// streams of the previous socket end.
    pub async fn restart(&mut self) -> Result<(), TransportError> {
        self.stop_serving().await;
        let config = self.pool.config();
        let socket = self.paths.device_plugin_dir.join(config.socket_name());
        let (stop, stopped) = watch::channel(false);
        let service = DevicePluginService::new(
            Arc::clone(&self.pool),
            self.paths.device_info_dir.clone(),
            stopped,
            self.paths.cdi_spec_dir.is_some(),
        );
        let router = Server::builder().add_service(DevicePluginServer::new(service));
        self.server = Some(SocketServer::start(&socket, router, stop)?);
        tracing::info!(resource = %config.full_name(), socket = %socket.display(), "serving");
        let kubelet = self.paths.device_plugin_dir.join(KUBELET_SOCKET);
        match &self.paths.registrar {
            Registrar::PluginWatcher { dir, grace, ignored } => {
                let path = dir.join(config.socket_name());
                let (service, queried) = PluginWatcherService::new(
                    config.full_name(),
                    socket.clone(),
                    self.pool.metrics().clone(),
                );
                let router = Server::builder().add_service(RegistrationServer::new(service));
                let (stop, _) = watch::channel(false);
                self.registry_server = Some(SocketServer::start(&path, router, stop)?);
                tracing::info!(resource = %config.full_name(), socket = %path.display(), "announced to the plugin watcher");
                if let Some(grace) = grace {
                    self.registrar = Some(tokio::spawn(register_unless_watched(
                        queried,
                        *grace,
                        Arc::clone(ignored),
                        kubelet,
                        config.full_name(),
                        config.socket_name(),
                        self.pool.metrics().clone(),
                    )));
                }
            }
            Registrar::KubeletSocket => {
                self.registrar = Some(tokio::spawn(register_until_done(
                    kubelet,
                    config.full_name(),
                    config.socket_name(),
                    self.pool.metrics().clone(),
                )));
            }
        }
        Ok(())
    }

    async fn stop_serving(&mut self) {
        if let Some(registrar) = self.registrar.take() {
            registrar.abort();
        }
        // A new socket needs a new registration.
        self.pool.metrics().unregistered();
        if let Some(server) = self.registry_server.take() {
            server.stop().await;
        }
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// Writes the resource's CDI spec from the pool's devices (with
    /// `--use-cdi`; the kubelet may allocate any device listed).
    pub fn write_cdi_spec(&self) {
        let Some(dir) = &self.paths.cdi_spec_dir else {
            return;
        };
        let records: Vec<_> = self.pool.devices().into_iter().map(|d| d.record).collect();
        if let Err(error) = CdiSpecDir::new(dir).write(&self.pool.config(), &records) {
            tracing::error!(error = %sriov_logging::error_chain(&error), "cannot write CDI spec; allocations naming its devices will fail in the runtime");
        }
    }

    /// Stops serving, removes our sockets, every device-info file of
    /// this resource and its CDI spec.
    pub async fn stop(mut self) {
        self.stop_serving().await;
        let config = self.pool.config();
        remove_device_infos(&self.paths.device_info_dir, &config);
        if let Some(dir) = &self.paths.cdi_spec_dir {
            if let Err(error) = CdiSpecDir::new(dir).remove(&config) {
                tracing::warn!(error = %sriov_logging::error_chain(&error), "cannot remove CDI spec");
            }
        }
    }
}

/// Removes `<prefix>-<name>-<pci>-device.json` files of `resource` in `dir`.
fn remove_device_infos(dir: &Path, resource: &ResourceConfig) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let files = DeviceInfoDir::new(dir, &resource.prefix, &resource.name);
    let head = format!("{}-{}-", resource.prefix, resource.name);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(address) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&head))
            .and_then(|n| n.strip_suffix("-device.json"))
            .and_then(|a| a.parse::<PciAddress>().ok())
        else {
            continue;
        };
        if let Err(error) = files.remove(&address) {
            tracing::warn!(error = %sriov_logging::error_chain(&error), "cannot remove device-info file");
        }
    }
}
