//! `monitor_cond` (OVSDB's conditional monitoring extension, `update2` notifications):
//! be told when the matching rows change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value as Json;
use tokio::sync::mpsc;

use crate::client::Client;
use crate::connection::Command;
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
            Some(_) => Ok(()),
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
