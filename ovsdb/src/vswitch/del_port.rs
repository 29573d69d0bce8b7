//! `DelPort`: idempotent removal of a port (and, by garbage collection, its interfaces).

use super::{count, rows, Error, Vswitch};
use crate::data::{Atom, Uuid, Value};
use crate::ops::{Condition, Mutation, Operation};

/// Removes a port from a bridge. Built by [`Vswitch::del_port`].
///
/// The port is resolved to its row UUID first and the removal targets that row only,
/// so a port of the same name re-created meanwhile (e.g. by a newer ADD) is left alone.
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until executed"]
pub struct DelPort {
    vs: Vswitch,
    bridge: Option<String>,
    port_name: String,
    required: Vec<(String, String)>,
    with_qos: bool,
}

impl DelPort {
    pub(super) fn new(vs: Vswitch, bridge: Option<&str>, port_name: &str) -> DelPort {
        DelPort {
            vs,
            bridge: bridge.map(str::to_string),
            port_name: port_name.to_string(),
            required: Vec::new(),
            with_qos: false,
        }
    }

    /// Only delete the port if its `external_ids` has `key=value` (e.g. the
    /// `iface-id` or `pod_netns` the caller attached it with); otherwise it is
    /// treated as someone else's and left alone (`Ok(false)`).
    pub fn only_if_external_id(mut self, key: &str, value: &str) -> DelPort {
        self.required.push((key.to_string(), value.to_string()));
        self
    }

    /// Also delete the port's QoS row and its queues (QoS and Queue are root tables: nothing
    /// removes them otherwise), as created for this port alone by [`super::AddPort::egress_max_rate`].
    pub fn with_qos(mut self) -> DelPort {
        self.with_qos = true;
        self
    }

    /// Remove the port from whichever bridge holds it.
    pub fn any_bridge(mut self) -> DelPort {
        self.bridge = None;
        self
    }

    fn step(&self) -> String {
        match &self.bridge {
            Some(b) => format!("delete port {} from bridge {b}", self.port_name),
            None => format!("delete port {}", self.port_name),
        }
    }

    /// Runs the request. `Ok(true)`: removed; `Ok(false)`: there was nothing (of ours) to remove.
    pub async fn execute(self) -> Result<bool, Error> {
        let mut conditions = vec![Condition::eq("name", self.port_name.as_str())];
        if !self.required.is_empty() {
            conditions.push(Condition::includes(
                "external_ids",
                Value::string_map(self.required.iter().map(|(k, v)| (k, v))),
            ));
        }
        let ops = vec![Operation::select("Port", conditions, &["_uuid", "qos"])];
        let res = self.vs.transact(|| self.step(), ops).await?;
        let found = rows(res.first());
        let uuids: Vec<Uuid> = found
            .iter()
            .filter_map(|r| r.get("_uuid").map(Value::uuids))
            .flatten()
            .collect();
        let Some(uuid) = uuids.into_iter().next() else {
            return Ok(false);
        };
        let mut qos_rows: Vec<(&str, Uuid)> = Vec::new();
        let qos = found
            .first()
            .and_then(|r| r.get("qos"))
            .map(Value::uuids)
            .unwrap_or_default();
        if let (true, Some(qos)) = (self.with_qos, qos.into_iter().next()) {
            let ops = vec![Operation::select(
                "QoS",
                vec![Condition::eq("_uuid", Atom::Uuid(qos.clone()))],
                &["queues"],
            )];
            let res = self.vs.transact(|| self.step(), ops).await?;
            for row in rows(res.first()) {
                if let Some(map) = row.get("queues").and_then(Value::as_map) {
                    qos_rows.extend(
                        map.iter()
                            .filter_map(|(_, q)| q.as_uuid().cloned().map(|q| ("Queue", q))),
                    );
                }
            }
            qos_rows.insert(0, ("QoS", qos));
        }
        let port = Atom::Uuid(uuid);
        let mut bridge_cond = vec![Condition::includes("ports", port.clone())];
        if let Some(b) = &self.bridge {
            bridge_cond.push(Condition::eq("name", b.as_str()));
        }
        let ops = vec![
            Operation::Comment {
                comment: format!("ovsdb-client: {}", self.step()),
            },
            Operation::Mutate {
                table: "Bridge".into(),
                conditions: bridge_cond,
                mutations: vec![Mutation::delete("ports", Value::Set(vec![port.clone()]))],
            },
            Operation::Delete {
                table: "Port".into(),
                conditions: vec![Condition::eq("_uuid", port)],
            },
        ];
        let mut ops = ops;
        ops.extend(qos_rows.into_iter().map(|(table, uuid)| Operation::Delete {
            table: table.into(),
            conditions: vec![Condition::eq("_uuid", Atom::Uuid(uuid))],
        }));
        match self.vs.client.transact(super::DB, ops).await {
            Ok(res) => Ok(count(res.get(2)) > 0),
            // The port is still referenced by another bridge than ours.
            Err(e)
                if e.transaction_error()
                    .is_some_and(|(i, err)| i == 3 && err == "referential integrity violation") =>
            {
                Err(Error::PortOnOtherBridge {
                    port: self.port_name.clone(),
                    bridge: self.bridge.clone().unwrap_or_default(),
                })
            }
            Err(source) => Err(Error::Ovsdb {
                step: self.step(),
                source,
            }),
        }
    }
}
