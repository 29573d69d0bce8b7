//! `AddPort`: Interface + Port + Bridge.ports in one transaction, guarded by `wait`
//! preconditions, optionally replacing a stale port of the same name atomically.

use std::collections::BTreeMap;

use tracing::{debug, info};

use super::{
    bridge_ports, delete_uuid, detach_port, rows, Error, PortInfo, Vswitch, COMMENT_PREFIX, PORT_COLUMNS,
};
use crate::data::{Atom, Row, Uuid, Value};
use crate::ops::{Condition, Mutation, Operation, WaitUntil};

/// Adds a port with one interface to a bridge. Built by [`Vswitch::add_port`]. A port or
/// interface of the same name is deleted in the same transaction ([`AddedPort::replaced`]).
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until executed"]
pub struct AddPort {
    vs: Vswitch,
    bridge: String,
    port_name: String,
    iface_name: String,
    iface_type: Option<String>,
    external_ids: BTreeMap<String, String>,
    tag: Option<u16>,
    ingress_policing: Option<(u64, u64)>,
    egress_max_rate: Option<u64>,
}

/// What [`AddPort::execute`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedPort {
    /// The new Port row.
    pub port: Uuid,
    /// The new Interface row.
    pub interface: Uuid,
    /// Ports removed to make room (same port name, or holding the same interface name).
    pub replaced: Vec<PortInfo>,
}

impl AddPort {
    pub(super) fn new(vs: Vswitch, bridge: &str, port_name: &str) -> AddPort {
        AddPort {
            vs,
            bridge: bridge.to_string(),
            port_name: port_name.to_string(),
            iface_name: port_name.to_string(),
            iface_type: None,
            external_ids: BTreeMap::new(),
            tag: None,
            ingress_policing: None,
            egress_max_rate: None,
        }
    }

    /// Interface (netdev) name, when it differs from the port name.
    pub fn iface_name(mut self, name: &str) -> AddPort {
        self.iface_name = name.to_string();
        self
    }

    /// Interface `type` (default: empty, a system netdev).
    pub fn interface_type(mut self, kind: &str) -> AddPort {
        self.iface_type = Some(kind.to_string());
        self
    }

    /// Adds one `external_ids` pair (on the Interface and the Port).
    pub fn external_id(mut self, key: &str, value: &str) -> AddPort {
        self.external_ids.insert(key.to_string(), value.to_string());
        self
    }

    /// Adds `external_ids` pairs (on the Interface and the Port).
    pub fn external_ids<K: Into<String>, V: Into<String>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> AddPort {
        self.external_ids
            .extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Access VLAN tag (0–4095).
    pub fn tag(mut self, tag: Option<u16>) -> AddPort {
        self.tag = tag;
        self
    }

    /// Polices what the interface receives (traffic from its netdev into the bridge): the
    /// Interface columns `ingress_policing_rate` (kbit/s) and `ingress_policing_burst` (kbit).
    /// On a switchdev representor OVS offloads this as a TC police action.
    pub fn ingress_policing(mut self, rate_kbps: u64, burst_kb: u64) -> AddPort {
        self.ingress_policing = Some((rate_kbps, burst_kb));
        self
    }

    /// Shapes what the port sends (traffic from the bridge out of its netdev): a `linux-htb`
    /// QoS row on the Port with one Queue whose `other_config:max-rate` is `bps`, both
    /// carrying the port's `external_ids`. [`DelPort::with_qos`] removes them with the port.
    pub fn egress_max_rate(mut self, bps: u64) -> AddPort {
        self.egress_max_rate = Some(bps);
        self
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |what, value: &str, reason| {
            Err(Error::InvalidInput {
                what,
                value: value.to_string(),
                reason,
            })
        };
        for (what, v) in [
            ("bridge", &self.bridge),
            ("port name", &self.port_name),
            ("interface name", &self.iface_name),
        ] {
            if v.is_empty() {
                return bad(what, v, "must not be empty");
            }
        }
        if let Some(tag) = self.tag.filter(|t| *t > 4095) {
            return bad("VLAN tag", &tag.to_string(), "must be 0-4095");
        }
        Ok(())
    }

    /// Runs the request: one transaction in the common case, two round trips more when
    /// a stale port has to be replaced.
    pub async fn execute(self) -> Result<AddedPort, Error> {
        self.validate()?;
        match self.try_add(&[]).await {
            Err(Error::PortExists { .. } | Error::InterfaceExists { .. }) => {
                let stale = self.stale_ports().await?;
                debug!(port = %self.port_name, stale = stale.len(), "replacing stale OVS port");
                let added = self.try_add(&stale).await?;
                for r in &added.replaced {
                    info!(port = %r.name, bridge = ?r.bridge, external_ids = ?r.external_ids,
                          "replaced stale OVS port");
                }
                Ok(added)
            }
            other => other,
        }
    }

    fn step(&self) -> String {
        format!("add port {} to bridge {}", self.port_name, self.bridge)
    }

    /// Ports holding our port name or our interface name.
    async fn stale_ports(&self) -> Result<Vec<PortInfo>, Error> {
        let ops = vec![
            Operation::select(
                "Port",
                vec![Condition::eq("name", self.port_name.as_str())],
                PORT_COLUMNS,
            ),
            Operation::select(
                "Interface",
                vec![Condition::eq("name", self.iface_name.as_str())],
                &["_uuid"],
            ),
            Operation::select("Bridge", vec![], &["name", "ports"]),
        ];
        let res = self.vs.transact(|| self.step(), ops).await?;
        let bridges = bridge_ports(res.get(2));
        let mut stale: Vec<PortInfo> = rows(res.first())
            .iter()
            .filter_map(|r| PortInfo::from_row(r, &bridges))
            .collect();
        let iface_uuids: Vec<Uuid> = rows(res.get(1))
            .iter()
            .filter_map(|r| r.get("_uuid").map(Value::uuids))
            .flatten()
            .collect();
        for iface in iface_uuids {
            if stale.iter().any(|p| p.interfaces.contains(&iface)) {
                continue;
            }
            let ops = vec![Operation::select(
                "Port",
                vec![Condition::includes("interfaces", Atom::Uuid(iface))],
                PORT_COLUMNS,
            )];
            let res = self.vs.transact(|| self.step(), ops).await?;
            stale.extend(
                rows(res.first())
                    .iter()
                    .filter_map(|r| PortInfo::from_row(r, &bridges)),
            );
        }
        Ok(stale)
    }

    async fn try_add(&self, stale: &[PortInfo]) -> Result<AddedPort, Error> {
        let mut ops = vec![
            Operation::Comment {
                comment: format!("{COMMENT_PREFIX} {}", self.step()),
            },
            exists_wait("Bridge", &self.bridge, true),
        ];
        for port in stale {
            ops.push(detach_port(&port.uuid, None));
            ops.push(delete_uuid("Port", port.uuid.clone()));
            for iface in &port.interfaces {
                ops.push(delete_uuid("Interface", iface.clone()));
            }
        }
        let port_wait = ops.len();
        ops.push(exists_wait("Port", &self.port_name, false));
        ops.push(exists_wait("Interface", &self.iface_name, false));
        if let Some(bps) = self.egress_max_rate {
            let ids = Value::string_map(&self.external_ids);
            let max_rate = Value::string_map([("max-rate", bps.to_string())]);
            ops.push(Operation::Insert {
                table: "Queue".into(),
                row: Row::from([
                    ("other_config".to_string(), max_rate.clone()),
                    ("external_ids".to_string(), ids.clone()),
                ]),
                uuid_name: Some("new_queue".into()),
            });
            let queues = Value::Map(vec![(Atom::Integer(0), Atom::NamedUuid("new_queue".into()))]);
            ops.push(Operation::Insert {
                table: "QoS".into(),
                row: Row::from([
                    ("type".to_string(), Value::from("linux-htb")),
                    ("queues".to_string(), queues),
                    ("other_config".to_string(), max_rate),
                    ("external_ids".to_string(), ids),
                ]),
                uuid_name: Some("new_qos".into()),
            });
        }
        let insert_iface = ops.len();
        ops.push(Operation::Insert {
            table: "Interface".into(),
            row: self.interface_row(),
            uuid_name: Some("new_iface".into()),
        });
        ops.push(Operation::Insert {
            table: "Port".into(),
            row: self.port_row(),
            uuid_name: Some("new_port".into()),
        });
        ops.push(Operation::Mutate {
            table: "Bridge".into(),
            conditions: vec![Condition::eq("name", self.bridge.as_str())],
            mutations: vec![Mutation::insert(
                "ports",
                Value::Set(vec![Atom::NamedUuid("new_port".into())]),
            )],
        });
        let res = match self.vs.client.transact(super::DB, ops).await {
            Ok(res) => res,
            Err(source) => {
                return Err(match source.transaction_error() {
                    Some((1, "timed out")) => Error::BridgeNotFound {
                        bridge: self.bridge.clone(),
                    },
                    Some((i, "timed out")) if i == port_wait => Error::PortExists {
                        port: self.port_name.clone(),
                    },
                    Some((i, "timed out")) if i == port_wait + 1 => Error::InterfaceExists {
                        iface: self.iface_name.clone(),
                    },
                    _ => Error::Ovsdb {
                        step: self.step(),
                        source,
                    },
                })
            }
        };
        let uuid_at = |i: usize| {
            res.get(i)
                .and_then(|r| r.uuid.clone())
                .ok_or_else(|| Error::Reply {
                    step: self.step(),
                    reason: "insert result without uuid",
                })
        };
        Ok(AddedPort {
            interface: uuid_at(insert_iface)?,
            port: uuid_at(insert_iface + 1)?,
            replaced: stale.to_vec(),
        })
    }

    fn interface_row(&self) -> Row {
        let mut row = Row::new();
        row.insert("name".into(), self.iface_name.as_str().into());
        if let Some(kind) = &self.iface_type {
            row.insert("type".into(), kind.as_str().into());
        }
        if let Some((rate, burst)) = self.ingress_policing {
            let int = |v: u64| Value::from(i64::try_from(v).unwrap_or(i64::MAX));
            row.insert("ingress_policing_rate".into(), int(rate));
            row.insert("ingress_policing_burst".into(), int(burst));
        }
        if !self.external_ids.is_empty() {
            row.insert("external_ids".into(), Value::string_map(&self.external_ids));
        }
        row
    }

    fn port_row(&self) -> Row {
        let mut row = Row::new();
        row.insert("name".into(), self.port_name.as_str().into());
        row.insert(
            "interfaces".into(),
            Value::Set(vec![Atom::NamedUuid("new_iface".into())]),
        );
        if let Some(tag) = self.tag {
            row.insert("tag".into(), Value::from(i64::from(tag)));
        }
        if self.egress_max_rate.is_some() {
            row.insert("qos".into(), Value::Atom(Atom::NamedUuid("new_qos".into())));
        }
        if !self.external_ids.is_empty() {
            row.insert("external_ids".into(), Value::string_map(&self.external_ids));
        }
        row
    }
}

/// A `wait` that succeeds at once iff a row named `name` exists (or does not).
fn exists_wait(table: &str, name: &str, exists: bool) -> Operation {
    let named = Row::from([("name".to_string(), Value::from(name))]);
    Operation::Wait {
        table: table.into(),
        conditions: vec![Condition::eq("name", name)],
        columns: vec!["name".into()],
        until: WaitUntil::Equal,
        rows: if exists { vec![named] } else { vec![] },
        timeout: Some(0),
    }
}
