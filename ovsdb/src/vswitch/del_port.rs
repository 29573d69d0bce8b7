//! `DelPort`: idempotent removal of a port (and, by garbage collection, its interfaces).

use super::{count, delete_uuid, detach_port, rows, Error, Vswitch, COMMENT_PREFIX};
use crate::data::Atom;
use crate::ops::{Condition, Operation};

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
    with_qos: bool,
}

impl DelPort {
    pub(super) fn new(vs: Vswitch, bridge: Option<&str>, port_name: &str) -> DelPort {
        DelPort {
            vs,
            bridge: bridge.map(str::to_string),
            port_name: port_name.to_string(),
            with_qos: false,
        }
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

    /// Runs the request. `Ok(true)`: removed; `Ok(false)`: there was nothing to remove.
    pub async fn execute(self) -> Result<bool, Error> {
        let conditions = vec![Condition::eq("name", self.port_name.as_str())];
        let ops = vec![Operation::select("Port", conditions, &["_uuid", "qos"])];
        let res = self.vs.transact(|| self.step(), ops).await?;
        let found = rows(res.first()).first();
        let Some(uuid) = found.and_then(|r| r.get("_uuid")?.uuids().into_iter().next()) else {
            return Ok(false);
        };
        let mut deletes = vec![("Port", uuid)];
        let qos = found.and_then(|r| r.get("qos")?.uuids().into_iter().next());
        if let (true, Some(qos)) = (self.with_qos, qos) {
            let conditions = vec![Condition::eq("_uuid", Atom::Uuid(qos.clone()))];
            let ops = vec![Operation::select("QoS", conditions, &["queues"])];
            let res = self.vs.transact(|| self.step(), ops).await?;
            let queues = rows(res.first()).iter().filter_map(|r| r.get("queues")?.as_map());
            let queues: Vec<_> = queues
                .flatten()
                .filter_map(|(_, q)| q.as_uuid().cloned())
                .collect();
            deletes.push(("QoS", qos));
            deletes.extend(queues.into_iter().map(|q| ("Queue", q)));
        }
        let mut ops = vec![
            Operation::Comment {
                comment: format!("{COMMENT_PREFIX} {}", self.step()),
            },
            detach_port(&deletes[0].1, self.bridge.as_deref()),
        ];
        ops.extend(deletes.into_iter().map(|(table, uuid)| delete_uuid(table, uuid)));
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
