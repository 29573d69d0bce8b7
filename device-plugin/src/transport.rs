//! gRPC over Unix sockets: a client channel to a socket path, and a server
//! endpoint bound to one (removed again at stop if it is still ours).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::server::Router;
use tonic::transport::{Channel, Endpoint};

/// How long a stopping server may drain its connections. Short: after a
/// kubelet restart the new socket must be up and registered within 1 s.
const STOP_GRACE: Duration = Duration::from_millis(200);

/// Socket setup failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A stale socket file could not be removed.
    #[error("cannot remove stale socket {}", path.display())]
    RemoveStale {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Binding the socket failed.
    #[error("cannot listen on {}", path.display())]
    Bind {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Connecting failed.
    #[error("cannot connect to {}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
}

/// A gRPC channel to the server on the Unix socket `path`; fails if nobody
/// listens there within `timeout`.
pub async fn connect(path: &Path, timeout: Duration) -> Result<Channel, TransportError> {
    let socket = path.to_path_buf();
    // The URI is required by the API and ignored by the connector.
    Endpoint::from_static("http://localhost")
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move { UnixStream::connect(socket).await.map(TokioIo::new) }
        }))
        .await
        .map_err(|source| TransportError::Connect {
            path: path.to_path_buf(),
            source,
        })
}

/// A gRPC server listening on a Unix socket.
pub struct SocketServer {
    path: PathBuf,
    identity: (u64, u64),
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SocketServer {
    /// Binds `path` (replacing a stale file) and serves `router` on it until
    /// [`SocketServer::stop`]. `stop` is also handed to streaming handlers so
    /// they end when the server stops.
    pub fn start(
        path: &Path,
        router: Router,
        stop: watch::Sender<bool>,
    ) -> Result<SocketServer, TransportError> {
        let (listener, identity) = bind_unix(path)?;
        let mut stopped = stop.subscribe();
        let socket = path.to_path_buf();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(error) = router
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
                .await
            {
                // tonic's own text is just "transport error": log the causes.
                tracing::error!(socket = %socket.display(), error = %sriov_logging::error_chain(&error), "gRPC server failed");
            }
        });
        Ok(SocketServer {
            path: path.to_path_buf(),
            identity,
            stop,
            task: Some(task),
        })
    }

    /// True while the socket file at our path is the one we bound.
    pub fn socket_present(&self) -> bool {
        file_identity(&self.path) == Some(self.identity)
    }

    /// Stops serving (ending open streams) and removes the socket file if it
    /// is still ours.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(STOP_GRACE, task).await.is_err() {
                tracing::debug!(socket = %self.path.display(), "gRPC server still draining connections; aborting it");
                abort.abort();
            }
        }
        if self.socket_present() {
            if let Err(error) = std::fs::remove_file(&self.path) {
                tracing::warn!(socket = %self.path.display(), %error, "cannot remove socket");
            }
        }
    }
}

impl Drop for SocketServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            let _ = self.stop.send(true);
            task.abort();
            if self.socket_present() {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Binds a listener on `path`, replacing a stale file; returns it with the
/// socket file's identity (device, inode), to tell later whether the file at
/// `path` is still ours.
pub fn bind_unix(path: &Path) -> Result<(UnixListener, (u64, u64)), TransportError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(TransportError::RemoveStale {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    let listener = UnixListener::bind(path).map_err(|source| TransportError::Bind {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((listener, file_identity(path).unwrap_or_default()))
}

/// The (device, inode) of the file at `path`, not following a symlink.
pub fn file_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}
