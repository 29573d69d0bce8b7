//! `connect()` and the cheap, cloneable [`Client`] handle with the RFC 7047 methods.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};

use crate::connection::{Command, Connection, Failure};
use crate::data::DecodeError;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::ops::{Operation, OperationResult, RawResult};

/// Default time a request may wait for its reply.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a session with the OVSDB server at `endpoint` (`unix:PATH`, `PATH` or
/// `tcp:HOST:PORT`). The returned [`Connection`] must be driven (usually
/// `tokio::spawn(connection)`); the [`Client`] is the handle to talk through.
pub async fn connect(endpoint: &str) -> Result<(Connection, Client), Error> {
    let parsed = Endpoint::parse(endpoint)?;
    let name = parsed.to_string();
    let timeout = DEFAULT_REQUEST_TIMEOUT;
    let (tx, rx) = mpsc::unbounded_channel();
    let connection = match &parsed {
        Endpoint::Unix(path) => {
            let stream = connect_within(&name, timeout, tokio::net::UnixStream::connect(path)).await?;
            let (r, w) = stream.into_split();
            Connection::new(name.clone(), r, w, rx)
        }
        Endpoint::Tcp(addr) => {
            let stream = connect_within(&name, timeout, tokio::net::TcpStream::connect(addr)).await?;
            // Small JSON-RPC messages: do not wait for Nagle.
            let _ = stream.set_nodelay(true);
            let (r, w) = stream.into_split();
            Connection::new(name.clone(), r, w, rx)
        }
    };
    let client = Client {
        commands: tx,
        endpoint: Arc::from(name),
        request_timeout: Some(timeout),
    };
    Ok((connection, client))
}

/// Awaits a socket connect for at most `timeout`, naming the endpoint in either failure.
async fn connect_within<S>(
    endpoint: &str,
    timeout: Duration,
    connect: impl std::future::Future<Output = std::io::Result<S>>,
) -> Result<S, Error> {
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| Error::ConnectTimeout {
            endpoint: endpoint.to_string(),
            after: timeout,
        })?
        .map_err(|source| Error::Connect {
            endpoint: endpoint.to_string(),
            source,
        })
}

/// Handle to an OVSDB session. Cloning is cheap; all clones share the session.
#[derive(Clone, Debug)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    endpoint: Arc<str>,
    request_timeout: Option<Duration>,
}

impl Client {
    /// [`connect`]s and spawns the [`Connection`] on the current tokio runtime.
    pub async fn connect(endpoint: &str) -> Result<Client, Error> {
        let (connection, client) = connect(endpoint).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// The endpoint this client talks to, normalised (`unix:/…`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A handle whose requests give up after `timeout` (`None`: wait forever).
    /// The default is [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Client {
        self.request_timeout = timeout;
        self
    }

    pub(crate) fn closed(&self, method: &'static str, reason: impl Into<String>) -> Error {
        Error::ConnectionClosed {
            endpoint: self.endpoint.to_string(),
            method,
            reason: reason.into(),
        }
    }

    pub(crate) fn send(&self, cmd: Command) -> Result<(), Error> {
        self.commands
            .send(cmd)
            .map_err(|_| self.closed("request", "the session has ended"))
    }

    /// Sends a raw JSON-RPC request and returns its `result`.
    pub async fn call(&self, method: &'static str, params: Json) -> Result<Json, Error> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Request {
                method,
                params,
                reply: Some(reply),
            })
            .map_err(|_| self.closed(method, "the session has ended"))?;
        let outcome = match self.request_timeout {
            Some(after) => tokio::time::timeout(after, rx)
                .await
                .map_err(|_| Error::RequestTimeout {
                    endpoint: self.endpoint.to_string(),
                    method,
                    after,
                })?,
            None => rx.await,
        };
        match outcome {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(Failure::Rpc(error))) => Err(Error::Rpc {
                method,
                error: error.to_string(),
            }),
            Ok(Err(Failure::Closed(reason))) => Err(self.closed(method, reason)),
            Err(_) => Err(self.closed(method, "the session task stopped")),
        }
    }

    /// `transact`: runs `ops` atomically on `db`. On success there is one result per
    /// operation; otherwise [`Error::Transaction`] names the failed operation.
    pub async fn transact(&self, db: &str, ops: Vec<Operation>) -> Result<Vec<OperationResult>, Error> {
        let mut params = Vec::with_capacity(ops.len() + 1);
        params.push(Json::from(db));
        for op in &ops {
            params.push(serde_json::to_value(op).map_err(|source| Error::Encode {
                method: "transact",
                source,
            })?);
        }
        let got = self.call("transact", Json::Array(params)).await?;
        let decode = |source| Error::Decode {
            method: "transact",
            source,
        };
        let raw: Vec<Option<RawResult>> = Vec::deserialize(&got)
            .map_err(|_| decode(DecodeError::unexpected("an array of results", &got)))?;
        let mut results = Vec::with_capacity(ops.len());
        for (index, item) in raw.into_iter().enumerate() {
            let op = ops.get(index).map_or("commit", Operation::name);
            match item {
                Some(r) if r.error.is_some() => {
                    return Err(Error::Transaction {
                        index,
                        op,
                        error: r.error.unwrap_or_default(),
                        details: r.details,
                    })
                }
                Some(r) if index < ops.len() => results.push(r.into_result().map_err(decode)?),
                _ => {}
            }
        }
        if results.len() != ops.len() {
            return Err(decode(DecodeError::unexpected("one result per operation", &got)));
        }
        Ok(results)
    }
}
