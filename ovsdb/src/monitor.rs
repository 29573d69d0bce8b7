//! `monitor_cond` (OVSDB's conditional monitoring extension, `update2` notifications):
//! get the matching rows now and be told when they change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value as Json;
use tokio::sync::mpsc;

use crate::client::Client;
use crate::connection::Command;
use crate::data::{row_from_json, DecodeError, Row, Uuid};
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

/// How a row changed, from an `update2` notification (or the initial reply).
#[derive(Clone, Debug, PartialEq)]
pub enum RowChange {
    /// Present when the monitor started: the whole row.
    Initial(Row),
    /// Inserted: the whole row.
    Insert(Row),
    /// Modified: an `update2` diff (for sets and maps, the elements that toggled).
    Modify(Row),
    /// Deleted.
    Delete,
}

/// One changed row.
#[derive(Clone, Debug, PartialEq)]
pub struct RowUpdate {
    /// Table name.
    pub table: String,
    /// Row UUID.
    pub uuid: Uuid,
    /// The change.
    pub change: RowChange,
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
    /// Starts `monitor_cond` on `db`, returning the rows that match now and a
    /// [`Monitor`] delivering later changes.
    pub async fn monitor_cond(
        &self,
        db: &str,
        requests: BTreeMap<String, MonitorRequest>,
    ) -> Result<(Vec<RowUpdate>, Monitor), Error> {
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
        let initial = self.call("monitor_cond", params).await?;
        let rows = parse_table_updates2(&initial).map_err(|source| Error::Decode {
            method: "monitor_cond",
            source,
        })?;
        Ok((rows, monitor))
    }
}

impl Monitor {
    /// Waits for the next `update2` notification.
    pub async fn next(&mut self) -> Result<Vec<RowUpdate>, Error> {
        let Some(params) = self.updates.recv().await else {
            return Err(self
                .client
                .closed("monitor_cond", "the session ended while monitoring"));
        };
        let updates = params.get(1).unwrap_or(&Json::Null);
        parse_table_updates2(updates).map_err(|source| Error::Decode {
            method: "update2",
            source,
        })
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

/// Decodes `<table-updates2>`: `{table: {uuid: {"initial"|"insert"|"modify": row} | {"delete": null}}}`.
pub fn parse_table_updates2(json: &Json) -> Result<Vec<RowUpdate>, DecodeError> {
    let Some(tables) = json.as_object() else {
        return Err(DecodeError::unexpected("<table-updates2>", json));
    };
    let mut out = Vec::new();
    for (table, rows) in tables {
        let Some(rows) = rows.as_object() else {
            return Err(DecodeError::unexpected("<table-update2>", rows));
        };
        for (uuid, update) in rows {
            let uuid = Uuid::parse(uuid)?;
            let (kind, body) = match update.as_object().map(|o| o.iter().next()) {
                Some(Some((k, v))) => (k.as_str(), v),
                _ => return Err(DecodeError::unexpected("<row-update2>", update)),
            };
            let row = || row_from_json(body);
            let change = match kind {
                "initial" => RowChange::Initial(row()?),
                "insert" => RowChange::Insert(row()?),
                "modify" => RowChange::Modify(row()?),
                "delete" => RowChange::Delete,
                _ => return Err(DecodeError::unexpected("<row-update2>", update)),
            };
            out.push(RowUpdate {
                table: table.clone(),
                uuid,
                change,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_update2() {
        let u = "36e2ef1c-02f5-4e64-8a6e-4f2c1a9f2b00";
        let got = parse_table_updates2(&json!({"Interface": {u: {"modify": {"ofport": 3}}}})).unwrap();
        assert_eq!(got.len(), 1);
        assert!(matches!(&got[0].change, RowChange::Modify(r) if r.contains_key("ofport")));
        let got = parse_table_updates2(&json!({"Interface": {u: {"delete": null}}})).unwrap();
        assert_eq!(got[0].change, RowChange::Delete);
        assert!(parse_table_updates2(&json!({"Interface": {u: {}}})).is_err());
        assert!(parse_table_updates2(&json!([1])).is_err());
    }
}
