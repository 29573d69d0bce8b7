//! Plugin-watcher registration: a `pluginregistration.v1` `Registration`
//! service on a socket in the kubelet's `plugins_registry` directory, which
//! the kubelet finds by itself (no call to `kubelet.sock`).

use std::path::PathBuf;
use std::sync::Arc;

use kubelet_proto::pluginregistration::registration_server::Registration;
use kubelet_proto::pluginregistration::{
    InfoRequest, PluginInfo, RegistrationStatus, RegistrationStatusResponse, DEVICE_PLUGIN_TYPE,
};
use kubelet_proto::v1beta1::VERSION;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::metrics::ResourceMetrics;

/// Answers the kubelet's plugin watcher for one resource.
#[derive(Clone, Debug)]
pub struct PluginWatcherService {
    resource: String,
    endpoint: PathBuf,
    /// Set on the first `GetInfo`: the kubelet watches this directory.
    queried: Arc<watch::Sender<bool>>,
    metrics: ResourceMetrics,
}

impl PluginWatcherService {
    /// Announces `resource`, served by the device plugin socket `endpoint`
    /// (absolute path), counting registrations into `metrics`. The receiver
    /// turns true once the kubelet asks.
    pub fn new(
        resource: String,
        endpoint: PathBuf,
        metrics: ResourceMetrics,
    ) -> (PluginWatcherService, watch::Receiver<bool>) {
        let (queried, seen) = watch::channel(false);
        let service = PluginWatcherService {
            resource,
            endpoint,
            queried: Arc::new(queried),
            metrics,
        };
        (service, seen)
    }
}

#[tonic::async_trait]
impl Registration for PluginWatcherService {
    async fn get_info(&self, _: Request<InfoRequest>) -> Result<Response<PluginInfo>, Status> {
        self.queried.send_replace(true);
        Ok(Response::new(PluginInfo {
            r#type: DEVICE_PLUGIN_TYPE.to_string(),
            name: self.resource.clone(),
            endpoint: self.endpoint.to_string_lossy().into_owned(),
            supported_versions: vec![VERSION.to_string()],
        }))
    }

    async fn notify_registration_status(
        &self,
        request: Request<RegistrationStatus>,
    ) -> Result<Response<RegistrationStatusResponse>, Status> {
        let status = request.into_inner();
        if status.plugin_registered {
            self.metrics.registered();
            tracing::info!(resource = %self.resource, "kubelet plugin watcher registered the resource");
        } else {
            self.metrics.registration_failed();
            self.metrics.unregistered();
            tracing::error!(resource = %self.resource, error = %status.error, "kubelet plugin watcher refused the resource");
        }
        Ok(Response::new(RegistrationStatusResponse {}))
    }
}
