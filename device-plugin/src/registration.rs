//! Registering a resource with the kubelet: over `kubelet.sock`, or through the
//! plugin watcher ([`crate::plugin_watcher`]), chosen like the Go plugin does.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kubelet_proto::v1beta1::registration_client::RegistrationClient;
use kubelet_proto::v1beta1::{RegisterRequest, VERSION};

use crate::metrics::ResourceMetrics;
use crate::server::plugin_options;
use crate::transport::{connect, TransportError};
use sriov_logging::error_chain;

/// How the plugin makes itself known to the kubelet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RegistrationMode {
    /// Like the Go plugin: the plugin watcher when the kubelet's
    /// `plugins_registry` directory exists, else `kubelet.sock`. Unlike Go,
    /// falls back to `kubelet.sock` when the kubelet does not query the
    /// plugin-watcher socket within [`PLUGIN_WATCHER_GRACE`] (a directory left
    /// by a hostPath mount, or a kubelet that does not watch it).
    #[default]
    Auto,
    /// Always the plugin watcher (`kubelet.sock` only when the directory is missing).
    PluginWatcher,
    /// Always `Register` on `kubelet.sock`.
    KubeletSocket,
}

/// How long [`RegistrationMode::Auto`] waits for the kubelet's plugin watcher
/// to call `GetInfo` before registering through `kubelet.sock`. The kubelet
/// sees new sockets through inotify and reconciles every second.
pub const PLUGIN_WATCHER_GRACE: Duration = Duration::from_secs(5);

/// The kubelet's plugin-watcher directory next to its device plugin
/// directory: `<kubelet root>/plugins_registry`.
pub fn default_registry_dir(device_plugin_dir: &Path) -> PathBuf {
    match device_plugin_dir.parent() {
        Some(root) => root.join("plugins_registry"),
        None => PathBuf::from("plugins_registry"),
    }
}

/// How one daemon registers its resources, decided once at start.
#[derive(Clone, Debug)]
pub enum Registrar {
    /// `Register` on `kubelet.sock`.
    KubeletSocket,
    /// A `Registration` socket per resource in `dir`; when `grace` is set and
    /// the kubelet has not called `GetInfo` by then, also `kubelet.sock`.
    PluginWatcher {
        /// The `plugins_registry` directory.
        dir: PathBuf,
        /// How long to wait for the plugin watcher.
        grace: Option<Duration>,
        /// Set when the kubelet ignored the plugin watcher last time (shared by
        /// every resource): later registrations, e.g. after a kubelet restart,
        /// go to `kubelet.sock` without waiting `grace` again.
        ignored: Arc<AtomicBool>,
    },
}

impl Registrar {
    /// Decides from `mode` and the registry directory `dir` (must exist for
    /// the plugin watcher to be used); logs the choice and why.
    pub fn choose(mode: RegistrationMode, dir: &Path) -> Registrar {
        let exists = dir.is_dir();
        let chosen = match (mode, exists) {
            (RegistrationMode::KubeletSocket, _) | (RegistrationMode::Auto, false) => {
                Registrar::KubeletSocket
            }
            (RegistrationMode::PluginWatcher, false) => {
                tracing::warn!(path = %dir.display(), "plugin registry directory does not exist; registering with kubelet.sock");
                Registrar::KubeletSocket
            }
            // Only `auto` falls back to kubelet.sock when the watcher stays silent.
            (mode, true) => Registrar::PluginWatcher {
                dir: dir.to_path_buf(),
                grace: (mode == RegistrationMode::Auto).then_some(PLUGIN_WATCHER_GRACE),
                ignored: Arc::default(),
            },
        };
        match &chosen {
            Registrar::KubeletSocket => {
                tracing::info!(?mode, registry = %dir.display(), registry_exists = exists, "registering with kubelet.sock")
            }
            Registrar::PluginWatcher { dir, grace, .. } => {
                tracing::info!(?mode, registry = %dir.display(), fallback_after = ?grace, "registering through the kubelet plugin watcher")
            }
        }
        chosen
    }

    /// The plugin-watcher directory, when used.
    pub fn registry_dir(&self) -> Option<&Path> {
        match self {
            Registrar::KubeletSocket => None,
            Registrar::PluginWatcher { dir, .. } => Some(dir),
        }
    }
}

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// Registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The kubelet socket does not answer.
    #[error("cannot reach the kubelet")]
    Connect(#[source] TransportError),
    /// The kubelet refused or the call failed.
    #[error("kubelet at {} refused to register {resource}", socket.display())]
    Register {
        /// The kubelet socket.
        socket: PathBuf,
        /// The resource.
        resource: String,
        /// The cause.
        #[source]
        source: tonic::Status,
    },
}

/// Registers `resource` (served on socket file `endpoint`, relative to the
/// kubelet socket's directory) with the kubelet at `kubelet_socket`.
pub async fn register(
    kubelet_socket: &Path,
    resource: &str,
    endpoint: &str,
) -> Result<(), RegistrationError> {
    let channel = connect(kubelet_socket, ATTEMPT_TIMEOUT)
        .await
        .map_err(RegistrationError::Connect)?;
    let request = RegisterRequest {
        version: VERSION.to_string(),
        endpoint: endpoint.to_string(),
        resource_name: resource.to_string(),
        options: Some(plugin_options()),
    };
    RegistrationClient::new(channel)
        .register(request)
        .await
        .map_err(|source| RegistrationError::Register {
            socket: kubelet_socket.to_path_buf(),
            resource: resource.to_string(),
            source,
        })?;
    Ok(())
}

/// Waits `grace` (none when `ignored` says the kubelet ignored the plugin
/// watcher before) for `queried` to turn true (the plugin watcher called
/// `GetInfo`); if it does not, registers through `kubelet_socket` instead and
/// sets `ignored`.
pub async fn register_unless_watched(
    mut queried: tokio::sync::watch::Receiver<bool>,
    grace: Duration,
    ignored: Arc<AtomicBool>,
    kubelet_socket: PathBuf,
    resource: String,
    endpoint: String,
    metrics: ResourceMetrics,
) {
    let grace = if ignored.load(Ordering::Relaxed) {
        Duration::ZERO
    } else {
        grace
    };
    if let Ok(Ok(_)) = tokio::time::timeout(grace, queried.wait_for(|q| *q)).await {
        ignored.store(false, Ordering::Relaxed);
        return;
    }
    ignored.store(true, Ordering::Relaxed);
    tracing::warn!(%resource, waited = ?grace, "the kubelet's plugin watcher did not query our socket; registering with kubelet.sock instead");
    register_until_done(kubelet_socket, resource, endpoint, metrics).await;
}

/// Registers, retrying with backoff (50 ms doubling to 2 s) until it works,
/// counting attempts into `metrics`. Cancel by aborting the task running it.
pub async fn register_until_done(
    kubelet_socket: PathBuf,
    resource: String,
    endpoint: String,
    metrics: ResourceMetrics,
) {
    let mut delay = Duration::from_millis(50);
    loop {
        let started = std::time::Instant::now();
        match register(&kubelet_socket, &resource, &endpoint).await {
            Ok(()) => {
                metrics.registered();
                tracing::debug!(phase = "register", elapsed = ?started.elapsed(), %resource, "start-up phase done");
                tracing::info!(%resource, %endpoint, "registered with the kubelet");
                return;
            }
            Err(error) => {
                metrics.registration_failed();
                tracing::warn!(%resource, error = %error_chain(&error), retry_in = ?delay, "registration failed");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
