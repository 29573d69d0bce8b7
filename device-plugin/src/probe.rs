//! `--probe`: asks the running plugin, over its status socket in the device
//! plugin directory ([`crate::status`]), whether it is live (its event loop
//! answers) or ready (every resource registered and serving). The image has
//! no shell, so the binary is its own probe client.
//!
//! Nothing is read from the config file: a config edit the running plugin
//! rejects (and logs) must not fail the probe and restart a plugin that keeps
//! serving the last good config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use crate::status::STATUS_SOCKET;

/// What to ask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeKind {
    /// The daemon's event loop answers (`/livez`).
    #[default]
    Live,
    /// Every resource is registered with the kubelet and serving (`/readyz`).
    Ready,
}

impl ProbeKind {
    /// The HTTP path asked.
    pub fn path(self) -> &'static str {
        match self {
            ProbeKind::Live => "/livez",
            ProbeKind::Ready => "/readyz",
        }
    }
}

/// Why the probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Nothing listens on the status socket: the plugin is not running.
    #[error("cannot connect to the plugin's status socket {}; is the plugin running with this --device-plugin-path?", socket.display())]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("GET {path} on {} failed", socket.display())]
    Http {
        /// The socket.
        socket: PathBuf,
        /// The path asked.
        path: &'static str,
        /// The cause.
        #[source]
        source: hyper::Error,
    },
    /// No answer in time.
    #[error("GET {path} on {}: no answer within {deadline:?}", socket.display())]
    Timeout {
        /// The socket.
        socket: PathBuf,
        /// The path asked.
        path: &'static str,
        /// The deadline.
        deadline: Duration,
    },
    /// The plugin answered that it is not live or not ready.
    #[error("{path}: HTTP {status}: {body}")]
    NotOk {
        /// The path asked.
        path: &'static str,
        /// The HTTP status.
        status: u16,
        /// The plugin's reason.
        body: String,
    },
}

/// Asks the plugin serving `device_plugin_dir`; returns its answer when it
/// says yes.
pub async fn probe(
    device_plugin_dir: &Path,
    kind: ProbeKind,
    deadline: Duration,
) -> Result<String, ProbeError> {
    let socket = device_plugin_dir.join(STATUS_SOCKET);
    let path = kind.path();
    tokio::time::timeout(deadline, ask(&socket, path))
        .await
        .map_err(|_| ProbeError::Timeout {
            socket: socket.clone(),
            path,
            deadline,
        })?
}

async fn ask(socket: &Path, path: &'static str) -> Result<String, ProbeError> {
    let http = |source| ProbeError::Http {
        socket: socket.to_path_buf(),
        path,
        source,
    };
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| ProbeError::Connect {
            socket: socket.to_path_buf(),
            source,
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    let connection = tokio::spawn(connection);
    let mut request = Request::new(Empty::<Bytes>::new());
    *request.uri_mut() = hyper::Uri::from_static(path);
    request.headers_mut().insert(
        hyper::header::HOST,
        hyper::header::HeaderValue::from_static("localhost"),
    );
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(http)?.to_bytes();
    connection.abort();
    let body = String::from_utf8_lossy(&body).trim().to_string();
    if status.is_success() {
        Ok(body)
    } else {
        Err(ProbeError::NotOk {
            path,
            status: status.as_u16(),
            body,
        })
    }
}
