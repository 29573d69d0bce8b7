//! HTTP/1 plumbing shared by the stand-ins: a one-shot POST over a unix socket (the shim's
//! request to the daemon) and the response body type of the servers.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// Response body of the stand-in servers: a whole body or a stream (watch).
pub type Body = BoxBody<Bytes, Infallible>;

/// A whole response body.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).boxed()
}

/// Why a POST over a unix socket failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// Connecting to the socket failed.
    #[error("dial unix {socket}")]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP exchange with {socket}")]
    Http {
        /// The socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: hyper::Error,
    },
    /// The request could not be built (bad URL).
    #[error("bad request for {url}")]
    Request {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: hyper::http::Error,
    },
}

/// POSTs `body` as `application/json` to `url` over the unix socket `socket` and returns the
/// status and the whole response body.
pub async fn post_unix(socket: &Path, url: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), PostError> {
    send_unix(hyper::Method::POST, socket, url, body).await
}

/// Sends `body` as `application/json` with `method` to `url` over the unix socket `socket` and
/// returns the status and the whole response body.
pub async fn send_unix(
    method: hyper::Method,
    socket: &Path,
    url: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), PostError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| PostError::Connect {
            socket: socket.to_path_buf(),
            source,
        })?;
    let http = |source| PostError::Http {
        socket: socket.to_path_buf(),
        source,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    let driver = tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header(hyper::header::HOST, "dummy")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|source| PostError::Request {
            url: url.to_string(),
            source,
        })?;
    let resp = sender.send_request(req).await.map_err(http)?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.map_err(http)?.to_bytes();
    driver.abort();
    Ok((status, bytes.to_vec()))
}
