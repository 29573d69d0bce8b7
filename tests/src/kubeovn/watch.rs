//! Watch streams of the API-server stand-in: newline-delimited `{"type", "object"}` events,
//! starting with the current objects as `ADDED` (no `resourceVersion`, `"0"`, or
//! `sendInitialEvents=true`, then a `BOOKMARK` with `k8s.io/initial-events-end`) or with what
//! happened after the given `resourceVersion`, then every later change.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Response;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use super::http::Body;
use super::store::{Event, Kind, Store};

/// The query parameters that shape a watch.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `timeoutSeconds` (default 30 min).
    pub timeout: Option<Duration>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: bool,
}

fn event_line(event_type: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": event_type, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// Starts a watch of `kind` objects `matches` accepts: the response streams one JSON event per
/// line until `timeoutSeconds` or the client goes. `Err` is the message of a 400.
pub fn watch(
    store: &Arc<Store>,
    kind: Kind,
    query: &WatchOptions,
    matches: impl Fn(&Value) -> bool + Send + Sync + 'static,
) -> Result<Response<Body>, String> {
    let from: Option<u64> = match query.resource_version.as_deref() {
        None | Some("") | Some("0") => None,
        Some(v) => match v.parse() {
            Ok(n) => Some(n),
            Err(_) => return Err(format!("invalid resource version {v:?}")),
        },
    };
    // Without a resourceVersion (or with sendInitialEvents) the server starts with the current
    // state as ADDED events; with one it replays what happened after it.
    let initial = from.is_none() || query.send_initial_events;
    let (backlog, rv_now, rx) = if initial {
        store.subscribe_current(kind)
    } else {
        let (past, rx) = store.subscribe_after(from.unwrap_or(0));
        (past, store.resource_version(), rx)
    };
    let end_bookmark = (query.send_initial_events && query.bookmarks).then(|| {
        json!({"kind": kind.kind(), "apiVersion": kind.api_version(),
               "metadata": {"resourceVersion": rv_now.to_string(),
                            "annotations": {"k8s.io/initial-events-end": "true"}}})
    });
    let (tx, body_rx) = mpsc::channel::<Bytes>(64);
    let timeout = query.timeout.unwrap_or(Duration::from_secs(1800));
    tokio::spawn(async move {
        let _ = tokio::time::timeout(timeout, pump(kind, backlog, end_bookmark, rx, tx, matches)).await;
    });
    let stream = ReceiverStream::new(body_rx).map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b)));
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

async fn pump(
    kind: Kind,
    backlog: Vec<Event>,
    end_bookmark: Option<Value>,
    mut rx: broadcast::Receiver<Event>,
    tx: mpsc::Sender<Bytes>,
    matches: impl Fn(&Value) -> bool,
) {
    for e in backlog.iter().filter(|e| e.kind == kind && matches(&e.object)) {
        if tx
            .send(event_line(e.event_type.as_str(), &e.object))
            .await
            .is_err()
        {
            return;
        }
    }
    if let Some(b) = end_bookmark {
        if tx.send(event_line("BOOKMARK", &b)).await.is_err() {
            return;
        }
    }
    // The receiver was subscribed with the backlog under the store's lock: it holds exactly
    // the later events.
    loop {
        // A lagging watcher is cut off; clients re-watch from their last resourceVersion.
        let Ok(e) = rx.recv().await else { return };
        if e.kind != kind || !matches(&e.object) {
            continue;
        }
        if tx
            .send(event_line(e.event_type.as_str(), &e.object))
            .await
            .is_err()
        {
            return;
        }
    }
}
