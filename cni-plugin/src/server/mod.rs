//! The Kube-OVN node server (`sriov-ovs-server`): answers Kube-OVN's CNI shim on a unix
//! socket so the guide's NetworkAttachmentDefinition (`type: kube-ovn`, `provider`,
//! `server_socket`) works with only `server_socket` changed. Kube-OVN's controller allocates
//! the address and the logical switch port; this server does the node's part through the same
//! node operations ([`crate::node`]) as the `sriov-ovs` CNI binary.

pub mod allocation;
pub mod cli;
pub mod cluster;
pub mod handler;
pub mod mtu;
pub mod protocol;

use crate::node::{Node, StateDir};
use crate::sys::Namespaces;
use bytes::Bytes;
use handler::{Failure, Handler, Settings};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use protocol::{CniRequest, CniResponse};
use sriov_host::Sysfs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The server could not start or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The socket cannot be created.
    #[error("cannot serve on {path}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The Kubernetes client cannot be built.
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    /// Another server answers on the socket path.
    #[error(
        "{0} is served by another running server: stop it first (two sriov-ovs-server \
         DaemonSets on one node?)"
    )]
    InUse(PathBuf),
    /// Something that is not a socket is at the socket path.
    #[error("{0} exists and is not a socket: remove it or choose another --socket")]
    NotASocket(PathBuf),
    /// Signals cannot be handled.
    #[error("cannot install the SIGTERM handler")]
    Signal(#[source] std::io::Error),
}

/// Everything a request needs, shared by all connections.
pub struct Shared<K> {
    /// Requests being worked on (SIGTERM waits for them).
    pub in_flight: std::sync::atomic::AtomicUsize,
    /// Namespaces and netlink.
    pub kernel: K,
    /// Sysfs.
    pub sysfs: Sysfs,
    /// Attachment records.
    pub state: StateDir,
    /// The Kubernetes API.
    pub cluster: cluster::Cluster,
    /// Settings.
    pub settings: Settings,
}

impl<K: Namespaces> Shared<K> {
    fn handler(&self) -> Handler<'_, K> {
        Handler {
            node: Node {
                kernel: &self.kernel,
                sysfs: &self.sysfs,
                state: &self.state,
            },
            cluster: &self.cluster,
            settings: &self.settings,
        }
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let empty = body.is_empty();
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    if !empty {
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
    }
    r
}

fn error_reply(status: u16, message: &str) -> Response<Full<Bytes>> {
    tracing::warn!(status, error = message, "request failed");
    let body = CniResponse {
        error: message.to_string(),
        ..Default::default()
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(status, serde_json::to_vec(&body).unwrap_or_default().into())
}

/// Counts a request in flight until dropped.
struct InFlight<K>(Arc<Shared<K>>);

impl<K> Drop for InFlight<K> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Routes one HTTP request: `POST /api/v1/add` (200 with the reply), `POST /api/v1/del` (204).
/// The work runs in its own task: a shim that gives up (its connection closed) must not cut
/// an ADD between two steps, where no rollback would run.
pub async fn route<K: Namespaces + 'static>(
    shared: Arc<Shared<K>>,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let add = match parts.uri.path() {
        "/api/v1/add" => true,
        "/api/v1/del" => false,
        other => {
            return error_reply(
                404,
                &format!("no such path {other:?}: this server answers POST /api/v1/add and /api/v1/del"),
            )
        }
    };
    if parts.method != Method::POST {
        return error_reply(405, &format!("{} {}: only POST", parts.method, parts.uri.path()));
    }
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error_reply(400, &format!("cannot read the request body: {e}")),
    };
    let cni: CniRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return error_reply(400, &format!("malformed request JSON: {e}")),
    };
    shared.in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let guard = InFlight(shared);
    let work = tokio::spawn(async move {
        let handler = guard.0.handler();
        let done = if add {
            handler.add(&cni).await.map(|resp| {
                let body = serde_json::to_vec(&resp).unwrap_or_default();
                reply(StatusCode::OK, body.into())
            })
        } else {
            handler
                .del(&cni)
                .await
                .map(|()| reply(StatusCode::NO_CONTENT, Bytes::new()))
        };
        done.unwrap_or_else(|Failure { status, message }| error_reply(status, &message))
    });
    work.await
        .unwrap_or_else(|e| error_reply(500, &format!("request task failed: {e}")))
}

/// How long SIGTERM waits for requests in flight.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// The socket this server created, told apart from one a newer instance put at the same path.
pub struct Socket {
    /// Accepts the shim's connections.
    pub listener: tokio::net::UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file at bind time.
    id: (u64, u64),
}

impl Socket {
    /// Removes the socket file if it is still the one this server created: in an overlapping
    /// rollout the new pod may already serve at the same path.
    fn remove(&self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.id => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(error = &e as &dyn std::error::Error, "cannot remove the socket");
                }
            }
            Ok(_) => {
                tracing::info!(socket = %self.path.display(), "the socket was replaced by another server; leaving it")
            }
            Err(_) => {}
        }
    }
}

/// Binds `path`, created 0600. What is already there must be a socket nobody answers on (a
/// previous run's, replaced); a live server or a file that is not a socket is an error and is
/// left alone.
pub fn bind(path: &Path) -> Result<Socket, ServerError> {
    let err = |source| ServerError::Socket {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
        Ok(m) if !m.file_type().is_socket() => return Err(ServerError::NotASocket(path.to_path_buf())),
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServerError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(err)?;
            tracing::info!(socket = %path.display(), "replaced a stale socket");
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    let m = std::fs::symlink_metadata(path).map_err(err)?;
    Ok(Socket {
        listener,
        path: path.to_path_buf(),
        id: (m.dev(), m.ino()),
    })
}

/// Serves on `socket` until SIGTERM or SIGINT, then removes it and waits for requests in flight.
pub async fn serve<K: Namespaces + 'static>(
    shared: Arc<Shared<K>>,
    socket: Socket,
) -> Result<(), ServerError> {
    let path = socket.path.clone();
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(ServerError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServerError::Signal)?;
    tracing::info!(socket = %path.display(), "serving Kube-OVN CNI requests");
    loop {
        tokio::select! {
            accepted = socket.listener.accept() => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = &e as &dyn std::error::Error, "accept failed");
                        continue;
                    }
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, std::convert::Infallible>(route(shared, req).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
                        tracing::debug!(error = &e as &dyn std::error::Error, "connection ended with an error");
                    }
                });
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!(socket = %path.display(), "stopping; removing the socket");
    socket.remove();
    // Let requests in flight finish (each ends in attached or rolled back), as long as an ADD
    // may take.
    let deadline = std::time::Instant::now() + DRAIN_TIMEOUT;
    while shared.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_socket(path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_the_new_one_is_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(is_socket(&path), "a dropped listener leaves its file");
        let socket = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        socket.remove();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_live_server_or_a_plain_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.sock");
        let _other = std::os::unix::net::UnixListener::bind(&live).unwrap();
        let e = bind(&live).err().unwrap();
        assert!(matches!(&e, ServerError::InUse(p) if p == &live), "{e}");
        assert!(is_socket(&live));

        let file = dir.path().join("file");
        std::fs::write(&file, "keep").unwrap();
        let e = bind(&file).err().unwrap();
        assert!(e.to_string().contains("is not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    }

    #[tokio::test]
    async fn exit_leaves_a_socket_a_newer_server_put_at_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let old = bind(&path).unwrap();
        // The newer instance finds the old one unresponsive (say, draining) and rebinds.
        std::fs::remove_file(&path).unwrap();
        let _newer = std::os::unix::net::UnixListener::bind(&path).unwrap();
        old.remove();
        assert!(is_socket(&path), "the newer server's socket must stay");
    }
}
