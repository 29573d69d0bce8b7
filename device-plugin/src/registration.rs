//! Registering a resource with the kubelet over `kubelet.sock`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kubelet_proto::v1beta1::registration_client::RegistrationClient;
use kubelet_proto::v1beta1::{RegisterRequest, VERSION};

use crate::error_chain;
use crate::server::plugin_options;
use crate::transport::{connect, TransportError};

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

/// The request registering `resource` served on socket file `endpoint`.
pub fn register_request(resource: &str, endpoint: &str) -> RegisterRequest {
    RegisterRequest {
        version: VERSION.to_string(),
        endpoint: endpoint.to_string(),
        resource_name: resource.to_string(),
        options: Some(plugin_options()),
    }
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
    RegistrationClient::new(channel)
        .register(register_request(resource, endpoint))
        .await
        .map_err(|source| RegistrationError::Register {
            socket: kubelet_socket.to_path_buf(),
            resource: resource.to_string(),
            source,
        })?;
    Ok(())
}

/// Registers, retrying with backoff (50 ms doubling to 2 s) until it works.
/// Cancel by aborting the task running it.
pub async fn register_until_done(kubelet_socket: PathBuf, resource: String, endpoint: String) {
    let mut delay = Duration::from_millis(50);
    loop {
        match register(&kubelet_socket, &resource, &endpoint).await {
            Ok(()) => {
                tracing::info!(%resource, %endpoint, "registered with the kubelet");
                return;
            }
            Err(error) => {
                tracing::warn!(%resource, error = %error_chain(&error), retry_in = ?delay, "registration failed");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
