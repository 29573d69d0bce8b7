//! The kubelet side of device plugin registration: the `Registration` service on `kubelet.sock`,
//! and the `ListAndWatch` follower started for each registered plugin.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use kubelet_proto::v1beta1::device_plugin_client::DevicePluginClient;
use kubelet_proto::v1beta1::registration_server::Registration;
use kubelet_proto::v1beta1::{Empty, RegisterRequest, VERSION};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Request, Response, Status};

use super::{lock, State};

pub(super) struct RegistrationService {
    pub(super) dir: PathBuf,
    pub(super) state: Arc<Mutex<State>>,
    /// Where accepted registrations go, for the test.
    pub(super) registered: mpsc::UnboundedSender<RegisterRequest>,
    /// Whether to follow each plugin's `ListAndWatch` (device manager) or only record.
    pub(super) manage: bool,
}

#[tonic::async_trait]
impl Registration for RegistrationService {
    async fn register(&self, req: Request<RegisterRequest>) -> Result<Response<Empty>, Status> {
        let req = req.into_inner();
        if req.version != VERSION {
            return Err(Status::invalid_argument(format!(
                "unsupported version {}",
                req.version
            )));
        }
        if req.resource_name.is_empty() || !req.resource_name.contains('/') {
            return Err(Status::invalid_argument(format!(
                "invalid resource name {:?}",
                req.resource_name
            )));
        }
        let endpoint = self.dir.join(&req.endpoint);
        tracing::info!(resource = %req.resource_name, endpoint = %endpoint.display(), "plugin registered");
        {
            let mut st = lock(&self.state);
            let r = st.resources.entry(req.resource_name.clone()).or_default();
            r.endpoint = endpoint.clone();
            r.options = req.options.unwrap_or_default();
            r.client = None;
            r.registrations += 1;
        }
        // A test that no longer reads registrations is no reason to refuse one.
        let _ = self.registered.send(req.clone());
        if self.manage {
            tokio::spawn(watch(self.state.clone(), req.resource_name, endpoint));
        }
        Ok(Response::new(Empty {}))
    }
}

pub(super) async fn connect(path: PathBuf) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_static("http://[::]:50051")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
}

/// Connects to a registered plugin and follows `ListAndWatch` until the stream ends.
async fn watch(state: Arc<Mutex<State>>, resource: String, endpoint: PathBuf) {
    let channel = match connect(endpoint.clone()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%resource, error = %e, "cannot connect to plugin");
            return;
        }
    };
    let mut client = DevicePluginClient::new(channel);
    let mut stream = match client.list_and_watch(Empty {}).await {
        Ok(s) => s.into_inner(),
        Err(e) => {
            tracing::warn!(%resource, error = %e, "ListAndWatch failed");
            return;
        }
    };
    {
        let mut st = lock(&state);
        if let Some(r) = st.resources.get_mut(&resource) {
            if r.endpoint == endpoint {
                r.client = Some(client);
            }
        }
    }
    while let Some(msg) = stream.next().await {
        let Ok(msg) = msg else { break };
        let mut st = lock(&state);
        let Some(r) = st.resources.get_mut(&resource) else {
            break;
        };
        if r.endpoint != endpoint {
            break;
        }
        r.devices = msg.devices.into_iter().map(|d| (d.id, d.health)).collect();
        r.updates += 1;
    }
    // Like the kubelet: a plugin whose stream ended has no healthy devices until it re-registers.
    let mut st = lock(&state);
    if let Some(r) = st.resources.get_mut(&resource) {
        if r.endpoint == endpoint {
            for h in r.devices.values_mut() {
                *h = "Unhealthy".to_string();
            }
            r.client = None;
        }
    }
}
