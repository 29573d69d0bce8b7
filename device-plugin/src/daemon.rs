//! The device plugin daemon: loads the config, discovers devices, serves one
//! gRPC socket per resource and reacts to events until shut down.
//! What triggers what (link events, config and sysfs changes, uevents, kubelet restarts,
//! removed sockets) is the table in the crate's README.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kubelet_proto::v1beta1::KUBELET_SOCKET;
use sriov_host::atomic::parent_dir;
use sriov_host::Sysfs;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cdi::{CdiError, CdiSpecDir};
use crate::discovery::{
    discover, discover_from, exclude_netdevs, read_functions, Discovered, DiscoveryError,
};
use crate::health::{HealthError, LinkMonitor};
use crate::metrics::Metrics;
use crate::plugin::{Plugin, PluginPaths};
use crate::pool::Pool;
use crate::rdma::RdmaMemory;
use crate::registration::{default_registry_dir, Registrar, RegistrationMode};
use crate::status::{StatusError, StatusQuery, StatusServer, STATUS_SOCKET};
use crate::transport::TransportError;
use crate::uevent::UeventListener;
use crate::watch::{sysfs_dirs, DirWatcher, FsEvent, WatchError};
use sriov_logging::error_chain;
use sriovdp_config::{self as config, Config, ConfigError, UnknownKeys};

/// How long to wait for more events before reloading or rediscovering.
const DEBOUNCE: Duration = Duration::from_millis(30);

/// What the daemon needs to know.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The Go-format config file.
    pub config_file: PathBuf,
    /// Prefix for resources without `resourcePrefix`.
    pub resource_prefix: String,
    /// Kubelet device plugin directory.
    pub device_plugin_path: PathBuf,
    /// sysfs root.
    pub sysfs_root: PathBuf,
    /// Device-info directory.
    pub device_info_dir: PathBuf,
    /// Plugin-watcher directory; default `<kubelet root>/plugins_registry`
    /// (the parent of `device_plugin_path`).
    pub plugin_registry_path: Option<PathBuf>,
    /// How to register with the kubelet.
    pub registration: RegistrationMode,
    /// Listen to kernel uevents.
    pub watch_uevents: bool,
    /// Unknown resource/selector keys: error or warning (`--lenient-config`).
    pub unknown_keys: UnknownKeys,
    /// With `--use-cdi`: the directory CDI specs are written to.
    pub cdi_spec_dir: Option<PathBuf>,
    /// `--metrics-address`: where to serve metrics and health over TCP
    /// (health is always served on the status socket too).
    pub metrics_address: Option<SocketAddr>,
}

impl Settings {
    fn load_config(&self) -> Result<Config, ConfigError> {
        config::load_with(&self.config_file, &self.resource_prefix, self.unknown_keys)
    }
}

/// The daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config is unreadable or invalid (nothing was touched).
    #[error("invalid configuration")]
    Config(#[source] ConfigError),
    /// The device plugin directory could not be created.
    #[error("cannot create device plugin directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Netlink is unusable.
    #[error("cannot monitor links")]
    Links(#[source] HealthError),
    /// The first read of the IPv4 default route failed, so the netdev
    /// holding it could not be kept out of the resources.
    #[error("cannot read the IPv4 default route")]
    DefaultRoute(#[source] HealthError),
    /// inotify is unusable.
    #[error("cannot watch directories")]
    Watch(#[source] WatchError),
    /// The first discovery failed.
    #[error("cannot discover devices")]
    Discovery(#[source] DiscoveryError),
    /// A socket could not be served.
    #[error("cannot serve a plugin socket")]
    Serve(#[source] TransportError),
    /// Old CDI specs could not be removed.
    #[error("cannot clean the CDI spec directory")]
    Cdi(#[source] CdiError),
    /// The metrics and health endpoint could not be served.
    #[error("cannot serve metrics and health")]
    Status(#[source] StatusError),
}

/// Runs the daemon until `shutdown` completes, then stops every stream,
/// removes our sockets and device-info files and returns.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let mut phases = Phases::start();
    // Validate before touching anything.
    let config = settings.load_config().map_err(DaemonError::Config)?;
    phases.done("config");
    std::fs::create_dir_all(&settings.device_plugin_path).map_err(|source| DaemonError::CreateDir {
        path: settings.device_plugin_path.clone(),
        source,
    })?;
    if let Some(dir) = &settings.cdi_spec_dir {
        // Specs of resources dropped while the plugin was down go too.
        CdiSpecDir::new(dir).remove_all().map_err(DaemonError::Cdi)?;
    }
    let metrics = Metrics::new();
    let (queries_tx, queries) = mpsc::channel(16);
    let status = StatusServer::start(
        &settings.device_plugin_path.join(STATUS_SOCKET),
        settings.metrics_address,
        Arc::clone(&metrics),
        queries_tx,
    )
    .await
    .map_err(DaemonError::Status)?;
    phases.done("status endpoint");
    let mut daemon = Daemon::start(settings, config, metrics, status, queries, &mut phases).await?;
    let result = daemon.event_loop(shutdown).await;
    daemon.stop().await;
    result
}

struct Daemon {
    settings: Settings,
    registrar: Registrar,
    sysfs: Sysfs,
    config: Config,
    links: LinkMonitor,
    /// Netdevs holding the IPv4 default route, as last read; kept when a
    /// later read fails so discovery never offers them.
    excluded_netdevs: HashSet<String>,
    /// RDMA devices of VFs as last seen on the host.
    rdma: RdmaMemory,
    /// Netlink masters of the served VFs' uplinks at the last discovery.
    uplink_masters: crate::topology::UplinkMasters,
    plugins: BTreeMap<String, Plugin>,
    metrics: Arc<Metrics>,
    status: StatusServer,
    status_queries: mpsc::Receiver<StatusQuery>,
    fs_events: mpsc::UnboundedReceiver<FsEvent>,
    fs_sender: mpsc::UnboundedSender<FsEvent>,
    uevents: mpsc::UnboundedReceiver<crate::uevent::Uevent>,
    _static_watcher: DirWatcher,
    sysfs_watcher: Option<DirWatcher>,
    _uevent_listener: Option<UeventListener>,
}

impl Daemon {
    async fn start(
        settings: Settings,
        config: Config,
        metrics: Arc<Metrics>,
        status: StatusServer,
        status_queries: mpsc::Receiver<StatusQuery>,
        phases: &mut Phases,
    ) -> Result<Daemon, DaemonError> {
        // Discovery (sysfs only) runs on its own thread while netlink dumps
        // the links and the default route on this one; the default route's
        // netdevs are taken out of its result afterwards.
        let sysfs = Sysfs::new(&settings.sysfs_root);
        let discovery = tokio::task::spawn_blocking({
            let sysfs = sysfs.clone();
            let config = config.clone();
            move || {
                let started = std::time::Instant::now();
                let mut rdma = RdmaMemory::default();
                let functions = read_functions(&sysfs)?;
                let found = discover_from(&sysfs, &functions, &config, &mut rdma);
                tracing::debug!(elapsed = ?started.elapsed(), "discovery done (in parallel with netlink)");
                Ok::<_, DiscoveryError>((functions, found, rdma))
            }
        });
        let links = LinkMonitor::start().await.map_err(DaemonError::Links)?;
        phases.done("netlink link dump");
        let (fs_sender, fs_events) = mpsc::unbounded_channel();
        let mut dirs = vec![
            settings.device_plugin_path.clone(),
            parent_dir(&settings.config_file).to_path_buf(),
        ];
        let registry_dir = settings
            .plugin_registry_path
            .clone()
            .unwrap_or_else(|| default_registry_dir(&settings.device_plugin_path));
        let registrar = Registrar::choose(settings.registration, &registry_dir);
        if let Some(registry) = registrar.registry_dir() {
            dirs.push(registry.to_path_buf());
        }
        let static_watcher = DirWatcher::start(&dirs, fs_sender.clone()).map_err(DaemonError::Watch)?;
        let (uevent_sender, uevents) = mpsc::unbounded_channel();
        let uevent_listener = match settings
            .watch_uevents
            .then(|| UeventListener::start(uevent_sender))
        {
            Some(Ok(listener)) => Some(listener),
            Some(Err(error)) => {
                tracing::warn!(error = %error_chain(&error), "no kernel uevents; sysfs changes are seen through inotify only");
                None
            }
            None => None,
        };
        phases.done("watches");
        let mut daemon = Daemon {
            sysfs,
            settings,
            registrar,
            config,
            links,
            excluded_netdevs: HashSet::new(),
            rdma: RdmaMemory::default(),
            uplink_masters: Default::default(),
            plugins: BTreeMap::new(),
            metrics,
            status,
            status_queries,
            fs_events,
            fs_sender,
            uevents,
            _static_watcher: static_watcher,
            sysfs_watcher: None,
            _uevent_listener: uevent_listener,
        };
        // Nothing to fall back on yet: refuse to start rather than offer the
        // host's uplink.
        daemon.excluded_netdevs = daemon
            .links
            .default_route_netdevs()
            .await
            .map_err(DaemonError::DefaultRoute)?;
        phases.done("default route");
        let (functions, mut found, rdma) = match discovery.await {
            Ok(discovered) => discovered.map_err(DaemonError::Discovery)?,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        };
        daemon.rdma = rdma;
        exclude_netdevs(&mut found, &functions, &daemon.excluded_netdevs);
        phases.done("discovery (waited for)");
        let dirs_to_watch = (found.pf_dirs.clone(), found.device_dirs.clone());
        if let Err(error) = daemon.apply(found).await {
            // The resources already served leave nothing behind either.
            daemon.stop().await;
            return Err(DaemonError::Serve(error));
        }
        phases.done("socket serve");
        // After the sockets: registration runs meanwhile. A change between
        // discovery and these watches is missed either way.
        daemon.watch_sysfs(&dirs_to_watch.0, &dirs_to_watch.1);
        phases.done("sysfs watches");
        Ok(daemon)
    }

    fn paths(&self) -> PluginPaths {
        PluginPaths {
            device_plugin_dir: self.settings.device_plugin_path.clone(),
            device_info_dir: self.settings.device_info_dir.clone(),
            cdi_spec_dir: self.settings.cdi_spec_dir.clone(),
            registrar: self.registrar.clone(),
        }
    }

    /// Rereads the default route, then discovers devices.
    async fn discover(&mut self) -> Result<Discovered, DiscoveryError> {
        match self.links.default_route_netdevs().await {
            Ok(names) => self.excluded_netdevs = names,
            // Excluding nothing would offer the host's uplink: fail safe.
            Err(error) => tracing::warn!(
                error = %error_chain(&error),
                excluded = ?self.excluded_netdevs,
                "cannot read the default route; still excluding the netdevs that held it last"
            ),
        }
        let started = std::time::Instant::now();
        let found = discover(&self.sysfs, &self.config, &self.excluded_netdevs, &mut self.rdma)?;
        tracing::debug!(elapsed = ?started.elapsed(), "discovery done");
        self.watch_sysfs(&found.pf_dirs, &found.device_dirs);
        Ok(found)
    }

    /// Watches the sysfs directories discovery found (replacing the watches
    /// of the previous discovery).
    fn watch_sysfs(&mut self, pf_dirs: &[PathBuf], device_dirs: &[PathBuf]) {
        let dirs = sysfs_dirs(self.sysfs.root(), pf_dirs, device_dirs);
        match DirWatcher::start(&dirs, self.fs_sender.clone()) {
            Ok(watcher) => self.sysfs_watcher = Some(watcher),
            Err(error) => tracing::warn!(error = %error_chain(&error), "cannot watch sysfs"),
        }
    }

    /// Makes the running plugins match the config and what discovery found.
    async fn apply(&mut self, found: Discovered) -> Result<(), TransportError> {
        // A copy: the table must not stay locked across the awaits below.
        let links = self.links.snapshot();
        let uplinks = found
            .resources
            .iter()
            .flatten()
            .filter_map(|r| r.uplink.as_deref());
        self.uplink_masters.reset(uplinks, &links);
        let wanted: HashSet<String> = self.config.resources.iter().map(|r| r.full_name()).collect();
        let gone;
        (self.plugins, gone) = std::mem::take(&mut self.plugins)
            .into_iter()
            .partition(|(name, _)| wanted.contains(name));
        for (name, plugin) in gone {
            tracing::info!(resource = %name, "resource removed from config; stopping it");
            plugin.stop().await;
            self.metrics.forget(&name);
        }
        for (resource, devices) in self.config.resources.clone().into_iter().zip(found.resources) {
            let name = resource.full_name();
            if let Some(plugin) = self.plugins.get(&name) {
                plugin.pool().update(resource, devices, &links);
                plugin.write_cdi_spec();
                continue;
            }
            let pool = Pool::new(resource.clone(), self.metrics.resource(&name));
            pool.update(resource, devices, &links);
            let mut plugin = Plugin::new(pool, self.paths());
            plugin.write_cdi_spec();
            if let Err(error) = plugin.restart().await {
                // Not served: its CDI spec (and any socket made) goes.
                plugin.stop().await;
                return Err(error);
            }
            self.plugins.insert(name, plugin);
        }
        Ok(())
    }

    async fn event_loop(&mut self, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
        tokio::pin!(shutdown);
        let mut link_changes = self.links.changes();
        let mut links_alive = true;
        let mut reload_at: Option<Instant> = None;
        let mut rediscover_at: Option<Instant> = None;
        loop {
            let deadline = reload_at.into_iter().chain(rediscover_at).min();
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                changed = link_changes.changed(), if links_alive => {
                    if changed.is_err() {
                        // The monitor logged why; health stays as it is.
                        links_alive = false;
                        continue;
                    }
                    let plugins = &self.plugins;
                    let masters = &mut self.uplink_masters;
                    let enslaved_or_released = self.links.with_table(|links| {
                        for plugin in plugins.values() {
                            plugin.pool().refresh_health(links);
                        }
                        masters.changed(links)
                    });
                    if enslaved_or_released {
                        // A VF LAG bond's mode is read from sysfs.
                        rediscover_at = rediscover_at.or(Some(Instant::now() + DEBOUNCE));
                    }
                }
                Some(event) = self.fs_events.recv() => {
                    match self.classify(&event) {
                        Trigger::Reload => reload_at = reload_at.or(Some(Instant::now() + DEBOUNCE)),
                        Trigger::Rediscover => rediscover_at = rediscover_at.or(Some(Instant::now() + DEBOUNCE)),
                        Trigger::KubeletRestarted => self.kubelet_restarted().await,
                        Trigger::SocketRemoved => self.recreate_missing_sockets().await,
                        Trigger::None => {}
                    }
                }
                Some(query) = self.status_queries.recv() => {
                    // Answered here, not by the HTTP task: this is what
                    // tells that the event loop runs.
                    query.answer(self.plugins.values().map(Plugin::status).collect());
                }
                Some(event) = self.uevents.recv() => {
                    tracing::debug!(?event, "uevent");
                    rediscover_at = rediscover_at.or(Some(Instant::now() + DEBOUNCE));
                }
                () = sleep_until(deadline) => {
                    let now = Instant::now();
                    if reload_at.is_some_and(|t| t <= now) {
                        reload_at = None;
                        // An unchanged or rejected config rediscovers nothing:
                        // a pending sysfs rediscovery must then still run.
                        if self.reload().await {
                            rediscover_at = None;
                        }
                    } else if rediscover_at.is_some_and(|t| t <= now) {
                        rediscover_at = None;
                        self.rediscover().await;
                    }
                }
            }
        }
    }

    fn classify(&self, event: &FsEvent) -> Trigger {
        let settings = &self.settings;
        if event.dir == settings.device_plugin_path {
            if event.is(KUBELET_SOCKET) {
                return if event.created() {
                    Trigger::KubeletRestarted
                } else {
                    Trigger::None
                };
            }
            if event.removed()
                && (event.is(STATUS_SOCKET) || self.plugins.values().any(|p| event.is(&p.socket_name())))
            {
                return Trigger::SocketRemoved;
            }
        }
        if self.registrar.registry_dir() == Some(event.dir.as_path())
            && event.removed()
            && self.plugins.values().any(|p| event.is(&p.socket_name()))
        {
            return Trigger::SocketRemoved;
        }
        if event.dir == parent_dir(&settings.config_file) {
            let file = settings.config_file.file_name();
            if event.name.as_deref() == file || event.is("..data") {
                return Trigger::Reload;
            }
        }
        if event.dir.starts_with(self.sysfs.root()) {
            return Trigger::Rediscover;
        }
        Trigger::None
    }

    async fn kubelet_restarted(&mut self) {
        tracing::info!("kubelet.sock created: kubelet restarted; recreating sockets and registering again");
        for (name, plugin) in &mut self.plugins {
            if let Err(error) = plugin.restart().await {
                tracing::error!(resource = %name, error = %error_chain(&error), "cannot recreate socket");
            }
        }
    }

    async fn recreate_missing_sockets(&mut self) {
        if !self.status.socket_present() {
            tracing::info!(socket = %self.status.socket().display(), "status socket was removed; recreating it");
            if let Err(error) = self.status.recreate_socket() {
                tracing::error!(error = %error_chain(&error), "cannot recreate the status socket; --probe fails until the plugin restarts");
            }
        }
        for (name, plugin) in &mut self.plugins {
            if plugin.sockets_present() {
                continue;
            }
            tracing::info!(resource = %name, "our socket was removed; recreating it and registering again");
            if let Err(error) = plugin.restart().await {
                tracing::error!(resource = %name, error = %error_chain(&error), "cannot recreate socket");
            }
        }
    }

    /// Reloads the config file; returns true when it changed and devices
    /// were rediscovered.
    async fn reload(&mut self) -> bool {
        let config = match self.settings.load_config() {
            Ok(config) => config,
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "new config rejected; keeping the running one");
                return false;
            }
        };
        if config == self.config {
            tracing::debug!("config unchanged");
            return false;
        }
        tracing::info!(resources = config.resources.len(), "config changed; applying it");
        self.config = config;
        self.rediscover().await;
        true
    }

    async fn rediscover(&mut self) {
        match self.discover().await {
            Ok(found) => {
                if let Err(error) = self.apply(found).await {
                    tracing::error!(error = %error_chain(&error), "cannot serve a resource");
                }
            }
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "rediscovery failed; keeping devices")
            }
        }
    }

    async fn stop(&mut self) {
        tracing::info!("shutting down: stopping streams, removing sockets and device-info files");
        let plugins = std::mem::take(&mut self.plugins);
        for (_, plugin) in plugins {
            plugin.stop().await;
        }
    }
}

enum Trigger {
    Reload,
    Rediscover,
    KubeletRestarted,
    SocketRemoved,
    None,
}

/// Start-up phases in the debug log, each with its own time and the time
/// since the daemon started (what the kubelet waits for is exec to
/// `Register`; the registration task logs that call's own time).
struct Phases {
    started: std::time::Instant,
    last: std::time::Instant,
}

impl Phases {
    fn start() -> Phases {
        let now = std::time::Instant::now();
        Phases {
            started: now,
            last: now,
        }
    }

    fn done(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        let elapsed = now - std::mem::replace(&mut self.last, now);
        tracing::debug!(phase, ?elapsed, since_start = ?(now - self.started), "start-up phase done");
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
