//! `monitor_cond` (OVSDB's conditional monitoring extension, `update2` notifications):
//! be told when the matching rows change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value as Json;
use tokio::sync::mpsc;

use crate::client::Client;
use crate::connection::Command;
use crate::data::DecodeError;
use crate::error::Error;
use crate::ops::Condition;

/// What to monitor in one table.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MonitorRequest {
    /// Columns to report (all when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Only rows matching all of these (all rows when `None`).
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

/// A live monitor. Dropping it cancels the monitor on the server.
#[derive(Debug)]
pub struct Monitor {
    client: Client,
    key: String,
    id: Json,
    updates: mpsc::UnboundedReceiver<Json>,
}

static NEXT_MONITOR: AtomicU64 = AtomicU64::new(1);

impl Client {
    /// Starts `monitor_cond` on `db`, returning a [`Monitor`] that tells of later changes of
    /// the rows (callers read the rows themselves, after this returns).
    pub async fn monitor_cond(
        &self,
        db: &str,
        requests: BTreeMap<String, MonitorRequest>,
    ) -> Result<Monitor, Error> {
        let id = Json::from(format!(
            "ovsdb-client-{}",
            NEXT_MONITOR.fetch_add(1, Ordering::Relaxed)
        ));
        let key = id.to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        // Subscribe first: the session task handles commands in order, so no
        // notification sent after the reply can be missed.
        self.send(Command::Subscribe {
            monitor: key.clone(),
            updates: tx,
        })?;
        let monitor = Monitor {
            client: self.clone(),
            key,
            id: id.clone(),
            updates: rx,
        };
        let params = serde_json::to_value((db, &id, &requests)).map_err(|source| Error::Encode {
            method: "monitor_cond",
            source,
        })?;
        // The reply holds the rows matching now; callers read them after this returns.
        self.call("monitor_cond", params).await?;
        Ok(monitor)
    }
}

impl Monitor {
    /// Waits for the next `update2` notification: some monitored row changed.
    pub async fn next(&mut self) -> Result<(), Error> {
        match self.updates.recv().await {
            // `update2` params are `[monitor id, {table: {uuid: row update}}]`.
            Some(params) if params.get(1).is_some_and(Json::is_object) => Ok(()),
            Some(params) => Err(Error::Decode {
                method: "update2",
                source: DecodeError::unexpected("[monitor id, table updates object]", &params),
            }),
            None => Err(self
                .client
                .closed("monitor_cond", "the session ended while monitoring")),
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.client.send(Command::Cancel {
            monitor: std::mem::take(&mut self.key),
            id: self.id.take(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers `monitor_cond` and then sends `update2` with `bad_params`.
    async fn next_after(bad_params: &str) -> Result<(), Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let bad_params = bad_params.to_string();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (mut r, mut w) = stream.into_split();
            // The client sends no delimiter: read until the request parses.
            let mut buf = Vec::new();
            let request: Json = loop {
                r.read_buf(&mut buf).await.unwrap();
                if let Ok(request) = serde_json::from_slice(&buf) {
                    break request;
                }
            };
            let monitor = &request["params"][1];
            let reply = serde_json::json!({"id": request["id"], "result": {}, "error": null});
            let update = format!(r#"{{"id":null,"method":"update2","params":[{monitor},{bad_params}]}}"#);
            w.write_all(format!("{reply}\n{update}\n").as_bytes())
                .await
                .unwrap();
            w
        });
        let client = Client::connect(&format!("unix:{}", path.display()))
            .await
            .unwrap();
        let mut monitor = client.monitor_cond("db", BTreeMap::new()).await.unwrap();
        let got = monitor.next().await;
        drop(server.await.unwrap());
        got
    }

    #[tokio::test]
    async fn an_update_is_a_change_and_malformed_params_are_a_decode_error() {
        next_after(r#"{"T":{}}"#).await.unwrap();
        let err = next_after(r#""not an object""#).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Decode {
                    method: "update2",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
