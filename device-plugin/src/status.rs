//! The plugin's HTTP endpoint (`/metrics`, `/healthz`, `/readyz`, `/livez`; see the README),
//! on `--metrics-address` and always on [`STATUS_SOCKET`], so `--probe` works with metrics off.
//! The daemon's event loop answers health (a [`StatusQuery`]), not this task: a stuck event
//! loop is not live even though the HTTP server still answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

use crate::metrics::{Metrics, CONTENT_TYPE};
use crate::transport::{bind_unix, file_identity, TransportError};

/// The status socket's file name in the device plugin directory. Not
/// `*.sock`: tools that take every `*.sock` there (but `kubelet.sock`) for a
/// device plugin's resource socket, as `sriov-ovs doctor` does without a
/// config, must not count it.
pub const STATUS_SOCKET: &str = "sriov-device-plugin.health";

/// How long a health request waits for the event loop.
pub const EVENT_LOOP_DEADLINE: Duration = Duration::from_secs(2);

/// The status endpoint could not be served.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// `--metrics-address` could not be bound.
    #[error("cannot listen on metrics address {address}")]
    BindTcp {
        /// The address.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The status socket could not be bound.
    #[error("cannot serve the status socket")]
    BindUnix(#[source] TransportError),
}

/// One resource as the event loop sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceStatus {
    /// `<prefix>/<name>`.
    pub resource: String,
    /// Its sockets are in place and served.
    pub serving: bool,
    /// The kubelet accepted its registration.
    pub registered: bool,
}

/// A question to the event loop; it answers with every resource's status.
#[derive(Debug)]
pub struct StatusQuery {
    reply: oneshot::Sender<Vec<ResourceStatus>>,
}

impl StatusQuery {
    /// Answers the query (the asker may have given up: nothing happens then).
    pub fn answer(self, status: Vec<ResourceStatus>) {
        let _ = self.reply.send(status);
    }
}

/// Why the resources are not all ready, one line per resource; `None` when
/// they are.
pub fn not_ready(status: &[ResourceStatus]) -> Option<String> {
    let lines: Vec<String> = status
        .iter()
        .filter_map(|r| match (r.serving, r.registered) {
            (true, true) => None,
            (false, _) => Some(format!(
                "resource {}: not serving (its socket is missing)",
                r.resource
            )),
            (true, false) => Some(format!(
                "resource {}: not registered with the kubelet",
                r.resource
            )),
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

struct State {
    metrics: Arc<Metrics>,
    queries: mpsc::Sender<StatusQuery>,
}

impl State {
    /// Asks the event loop; `None` when it does not answer in time.
    async fn ask(&self) -> Option<Vec<ResourceStatus>> {
        let (reply, answer) = oneshot::channel();
        let asked = async {
            self.queries.send(StatusQuery { reply }).await.ok()?;
            answer.await.ok()
        };
        tokio::time::timeout(EVENT_LOOP_DEADLINE, asked)
            .await
            .ok()
            .flatten()
    }

    async fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
        }
        let path = request.uri().path();
        match path {
            "/metrics" => respond(StatusCode::OK, CONTENT_TYPE, self.metrics.encode()),
            "/livez" => match self.ask().await {
                Some(_) => text(StatusCode::OK, "live: the event loop answered\n".into()),
                None => not_answered(),
            },
            "/healthz" | "/readyz" => match self.ask().await {
                None => not_answered(),
                Some(status) => match not_ready(&status) {
                    None => text(
                        StatusCode::OK,
                        format!("ready: {} resources registered and serving\n", status.len()),
                    ),
                    Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
                },
            },
            _ => text(
                StatusCode::NOT_FOUND,
                format!("no such path {path}: try /metrics, /healthz, /readyz, /livez\n"),
            ),
        }
    }
}

fn not_answered() -> Response<Full<Bytes>> {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the event loop did not answer within {EVENT_LOOP_DEADLINE:?}\n"),
    )
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body)
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// The running endpoint; stops serving and removes its socket when dropped.
pub struct StatusServer {
    state: Arc<State>,
    socket: PathBuf,
    identity: (u64, u64),
    unix: JoinHandle<()>,
    tcp: Option<JoinHandle<()>>,
}

impl StatusServer {
    /// Serves on `socket` and, when given, on `metrics_address`; health
    /// questions go to `queries`.
    pub async fn start(
        socket: &Path,
        metrics_address: Option<SocketAddr>,
        metrics: Arc<Metrics>,
        queries: mpsc::Sender<StatusQuery>,
    ) -> Result<StatusServer, StatusError> {
        let state = Arc::new(State { metrics, queries });
        let tcp = match metrics_address {
            Some(address) => {
                let listener = TcpListener::bind(address)
                    .await
                    .map_err(|source| StatusError::BindTcp { address, source })?;
                let bound = listener.local_addr().unwrap_or(address);
                tracing::info!(address = %bound, "serving metrics and health on /metrics, /healthz, /readyz, /livez");
                Some(tokio::spawn(accept(
                    TcpListenerStream::new(listener),
                    Arc::clone(&state),
                )))
            }
            None => None,
        };
        let (listener, identity) = bind_unix(socket).map_err(StatusError::BindUnix)?;
        let unix = tokio::spawn(accept(UnixListenerStream::new(listener), Arc::clone(&state)));
        Ok(StatusServer {
            state,
            socket: socket.to_path_buf(),
            identity,
            unix,
            tcp,
        })
    }

    /// The status socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// True while the socket file is the one we bound (the kubelet empties
    /// the device plugin directory when it restarts).
    pub fn socket_present(&self) -> bool {
        file_identity(&self.socket) == Some(self.identity)
    }

    /// Binds the status socket again (after it was removed).
    pub fn recreate_socket(&mut self) -> Result<(), StatusError> {
        let (listener, identity) = bind_unix(&self.socket).map_err(StatusError::BindUnix)?;
        self.unix.abort();
        self.unix = tokio::spawn(accept(UnixListenerStream::new(listener), Arc::clone(&self.state)));
        self.identity = identity;
        Ok(())
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.unix.abort();
        if let Some(task) = &self.tcp {
            task.abort();
        }
        if self.socket_present() {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

/// Serves every connection `incoming` yields (a TCP or Unix listener).
async fn accept<S>(mut incoming: impl Stream<Item = std::io::Result<S>> + Unpin, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    while let Some(accepted) = incoming.next().await {
        match accepted {
            Ok(stream) => {
                tokio::spawn(serve(stream, Arc::clone(&state)));
            }
            Err(error) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!(%error, "status endpoint cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve<S>(stream: S, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(state.respond(&request).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5))
        .serve_connection(TokioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!(%error, "status connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(resource: &str, serving: bool, registered: bool) -> ResourceStatus {
        ResourceStatus {
            resource: resource.into(),
            serving,
            registered,
        }
    }

    #[test]
    fn not_ready_names_each_resource_and_why() {
        assert_eq!(not_ready(&[status("intel.com/a", true, true)]), None);
        assert_eq!(not_ready(&[]), None);
        assert_eq!(
            not_ready(&[
                status("intel.com/a", true, true),
                status("intel.com/b", true, false),
                status("intel.com/c", false, true),
            ])
            .as_deref(),
            Some(
                "resource intel.com/b: not registered with the kubelet\n\
                 resource intel.com/c: not serving (its socket is missing)"
            )
        );
    }
}
