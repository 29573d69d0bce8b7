//! `--probe`: the DaemonSet's liveness check. The image has no shell, so the
//! binary checks itself: every configured resource's socket must answer
//! `GetDevicePluginOptions` within the deadline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kubelet_proto::v1beta1::device_plugin_client::DevicePluginClient;
use kubelet_proto::v1beta1::Empty;

use crate::transport::{connect, TransportError};
use sriovdp_config::{self as config, ConfigError, UnknownKeys};

/// Why the plugin is not live.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The config the daemon would run with is invalid.
    #[error("config is invalid")]
    Config(#[source] ConfigError),
    /// A resource's socket does not accept connections.
    #[error("resource {resource}: nothing answers on {}", socket.display())]
    Connect {
        /// `<prefix>/<name>`.
        resource: String,
        /// The socket.
        socket: PathBuf,
        /// The cause.
        #[source]
        source: TransportError,
    },
    /// The server answered with an error or not in time.
    #[error("resource {resource}: GetDevicePluginOptions on {} failed: {status}", socket.display())]
    Rpc {
        /// `<prefix>/<name>`.
        resource: String,
        /// The socket.
        socket: PathBuf,
        /// The gRPC status.
        status: tonic::Status,
    },
}

/// Checks every resource of `config_file`; returns how many answered.
/// `unknown` must be what the daemon runs with (`--lenient-config`), or a
/// config the daemon accepts would fail the probe.
pub async fn probe(
    config_file: &Path,
    default_prefix: &str,
    device_plugin_path: &Path,
    deadline: Duration,
    unknown: UnknownKeys,
) -> Result<usize, ProbeError> {
    let config = config::load_with(config_file, default_prefix, unknown).map_err(ProbeError::Config)?;
    for resource in &config.resources {
        let socket = device_plugin_path.join(resource.socket_name());
        let channel = connect(&socket, deadline)
            .await
            .map_err(|source| ProbeError::Connect {
                resource: resource.full_name(),
                socket: socket.clone(),
                source,
            })?;
        let mut client = DevicePluginClient::new(channel);
        let call = client.get_device_plugin_options(Empty {});
        let rpc_error = |status| ProbeError::Rpc {
            resource: resource.full_name(),
            socket: socket.clone(),
            status,
        };
        tokio::time::timeout(deadline, call)
            .await
            .map_err(|_| rpc_error(tonic::Status::deadline_exceeded("no answer in time")))?
            .map_err(rpc_error)?;
    }
    Ok(config.resources.len())
}
