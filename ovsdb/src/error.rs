//! Errors of the JSON-RPC client: connecting, the session, and `transact` results.

use std::time::Duration;

use crate::data::DecodeError;
use crate::endpoint::EndpointError;

/// What went wrong talking to an OVSDB server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint string is unusable.
    #[error("bad OVSDB endpoint")]
    Endpoint(#[from] EndpointError),
    /// Connecting to the socket failed (server not running, wrong path, permissions).
    #[error("cannot connect to OVSDB at {endpoint}")]
    Connect {
        /// The endpoint, e.g. `unix:/run/openvswitch/db.sock`.
        endpoint: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Connecting did not finish in time.
    #[error("connecting to OVSDB at {endpoint} timed out after {after:?}")]
    ConnectTimeout {
        /// The endpoint.
        endpoint: String,
        /// How long we waited.
        after: Duration,
    },
    /// The session ended (server stopped, socket closed, or a protocol error) before the reply came.
    #[error("OVSDB session with {endpoint} closed during {method}: {reason}")]
    ConnectionClosed {
        /// The endpoint.
        endpoint: String,
        /// The JSON-RPC method that was waiting.
        method: &'static str,
        /// Why the session ended, as known.
        reason: String,
    },
    /// No reply within the client's request timeout.
    #[error("OVSDB {method} to {endpoint} got no reply within {after:?}")]
    RequestTimeout {
        /// The endpoint.
        endpoint: String,
        /// The JSON-RPC method.
        method: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The server answered the request with a JSON-RPC `error` (unknown database, bad syntax, ...).
    #[error("OVSDB {method} failed: {error}")]
    Rpc {
        /// The JSON-RPC method.
        method: &'static str,
        /// The server's `error` member, as JSON text.
        error: String,
    },
    /// One operation of a transaction failed; the transaction was not committed.
    #[error("OVSDB transaction failed at operation {index} ({op}): {error}{}", details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Transaction {
        /// Index of the failed operation; `ops.len()` when the commit itself failed
        /// (e.g. a constraint or referential integrity violation).
        index: usize,
        /// Name of the failed operation (`"commit"` for the commit).
        op: &'static str,
        /// The OVSDB `error` string (e.g. `"constraint violation"`, `"timed out"`).
        error: String,
        /// The OVSDB `details` string.
        details: Option<String>,
    },
    /// A request could not be encoded as JSON.
    #[error("cannot encode OVSDB {method} request")]
    Encode {
        /// The JSON-RPC method.
        method: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A reply or notification that does not have the shape RFC 7047 gives it.
    #[error("malformed OVSDB {method} message")]
    Decode {
        /// The JSON-RPC method.
        method: &'static str,
        /// What did not match.
        #[source]
        source: DecodeError,
    },
}

impl Error {
    /// The OVSDB `error` string when this is a failed transaction operation.
    pub fn transaction_error(&self) -> Option<(usize, &str)> {
        match self {
            Error::Transaction { index, error, .. } => Some((*index, error)),
            _ => None,
        }
    }

    /// Whether the failure is about reaching the server (connect, closed, timeout)
    /// rather than about the request.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::ConnectTimeout { .. }
                | Error::ConnectionClosed { .. }
                | Error::RequestTimeout { .. }
        )
    }
}
