//! Typed requests on the `Open_vSwitch` database: bridges, ports, interfaces.
//!
//! Port/Interface `external_ids` given to [`AddPort`] are written on both the
//! Interface (where OVN reads `iface-id`) and the Port (so ports can be found by
//! them, e.g. `vendor=sriov-ovs` for garbage collection).

mod add_port;
mod del_port;
mod info;
mod overview;
mod wait;

use std::time::Duration;

pub use add_port::{AddPort, AddedPort};
pub use del_port::DelPort;
pub use info::{InterfaceInfo, PortInfo};
pub use overview::Overview;

use info::{string_col, INTERFACE_COLUMNS, PORT_COLUMNS};

use crate::client::Client;
use crate::data::{Atom, Row, Uuid, Value};
use crate::ops::{Condition, Mutation, Operation, OperationResult};

/// Name of the Open vSwitch database, and of its root table (one row: `next_cfg`, `cur_cfg`, ...).
pub const DB: &str = "Open_vSwitch";

/// Errors of the `Open_vSwitch` requests.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name or tag that OVS would reject.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidInput {
        /// Which parameter.
        what: &'static str,
        /// The value given.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The bridge named does not exist; nothing was changed.
    #[error("OVS bridge {bridge} does not exist")]
    BridgeNotFound {
        /// The bridge.
        bridge: String,
    },
    /// A port of that name exists and the request said not to replace it.
    #[error("OVS port {port} already exists")]
    PortExists {
        /// The port.
        port: String,
    },
    /// An interface of that name exists (in some port) and the request said not to replace it.
    #[error("OVS interface {iface} already exists")]
    InterfaceExists {
        /// The interface.
        iface: String,
    },
    /// The port exists but is attached to another bridge than the one named.
    #[error("OVS port {port} is not on bridge {bridge}")]
    PortOnOtherBridge {
        /// The port.
        port: String,
        /// The bridge named in the request.
        bridge: String,
    },
    /// `ovs-vswitchd` did not assign an OpenFlow port number in time.
    #[error("OVS gave interface {iface} no ofport within {timeout:?}{}", last_error.as_deref().map(|e| format!(" (interface error: {e})")).unwrap_or_default())]
    OfportTimeout {
        /// The interface.
        iface: String,
        /// How long we waited.
        timeout: Duration,
        /// The Interface's `error` column when we gave up, if any.
        last_error: Option<String>,
    },
    /// `external_ids:key` did not become `value` in time.
    #[error(
        "interface {iface} did not get external_ids:{key}={value} within {timeout:?} (last value: {last:?})"
    )]
    ExternalIdTimeout {
        /// The interface.
        iface: String,
        /// The key.
        key: String,
        /// The value waited for.
        value: String,
        /// How long we waited.
        timeout: Duration,
        /// The value seen last (`None`: key absent or no such interface).
        last: Option<String>,
    },
    /// ovs-vswitchd did not apply the configuration in time (`cur_cfg` stayed below
    /// `next_cfg`): it is stopped, busy, or not (yet) reconnected to the server.
    #[error("ovs-vswitchd did not apply the configuration within {timeout:?} (cur_cfg {}, waiting for {next_cfg})", cur_cfg.map_or_else(|| "unknown".to_string(), |c| c.to_string()))]
    ApplyTimeout {
        /// How long we waited.
        timeout: Duration,
        /// The configuration number waited for.
        next_cfg: i64,
        /// The last `cur_cfg` seen (`None`: not read).
        cur_cfg: Option<i64>,
    },
    /// The OVSDB request failed (connection, transaction error, malformed reply).
    #[error("OVSDB request to {step} failed")]
    Ovsdb {
        /// What we were doing, e.g. `"add port abc_h"`.
        step: String,
        /// The client error.
        #[source]
        source: crate::Error,
    },
    /// The server's answer lacks something RFC 7047 promises (e.g. an inserted row's UUID).
    #[error("unexpected OVSDB reply to {step}: {reason}")]
    Reply {
        /// What we were doing.
        step: String,
        /// What was missing.
        reason: &'static str,
    },
}

impl Error {
    /// Whether the server could not be reached (connect failure, session closed, request timeout).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Ovsdb { source, .. } if source.is_unreachable())
    }
}

/// Typed access to the `Open_vSwitch` database through a [`Client`].
#[derive(Clone, Debug)]
pub struct Vswitch {
    client: Client,
}

impl Client {
    /// Requests on the `Open_vSwitch` database.
    pub fn vswitch(&self) -> Vswitch {
        Vswitch { client: self.clone() }
    }
}

fn rows(result: Option<&OperationResult>) -> &[Row] {
    result.and_then(|r| r.rows.as_deref()).unwrap_or_default()
}

fn count(result: Option<&OperationResult>) -> u64 {
    result.and_then(|r| r.count).unwrap_or(0)
}

/// Starts the comment each request writes to the database log (`ovsdb-tool show-log`).
const COMMENT_PREFIX: &str = "ovsdb-client:";

/// Removes port `port` from the `ports` of the bridge holding it (only bridge `bridge`, if named).
fn detach_port(port: &Uuid, bridge: Option<&str>) -> Operation {
    let port = Atom::Uuid(port.clone());
    let mut conditions = vec![Condition::includes("ports", port.clone())];
    conditions.extend(bridge.map(|b| Condition::eq("name", b)));
    Operation::Mutate {
        table: "Bridge".into(),
        conditions,
        mutations: vec![Mutation::delete("ports", Value::Set(vec![port]))],
    }
}

fn delete_uuid(table: &str, uuid: Uuid) -> Operation {
    Operation::Delete {
        table: table.into(),
        conditions: vec![Condition::eq("_uuid", Atom::Uuid(uuid))],
    }
}

/// `(name, port UUIDs)` of each row of a `select` of Bridge `name` and `ports`.
fn bridge_ports(result: Option<&OperationResult>) -> Vec<(String, Vec<Uuid>)> {
    rows(result)
        .iter()
        .filter_map(|b| {
            Some((
                string_col(b, "name")?,
                b.get("ports").map(Value::uuids).unwrap_or_default(),
            ))
        })
        .collect()
}

impl Vswitch {
    pub(crate) async fn transact(
        &self,
        step: impl FnOnce() -> String,
        ops: Vec<Operation>,
    ) -> Result<Vec<OperationResult>, Error> {
        self.client
            .transact(DB, ops)
            .await
            .map_err(|source| Error::Ovsdb { step: step(), source })
    }

    /// Whether a bridge named `name` exists.
    pub async fn bridge_exists(&self, name: &str) -> Result<bool, Error> {
        let ops = vec![Operation::select(
            "Bridge",
            vec![Condition::eq("name", name)],
            &["name"],
        )];
        let res = self.transact(|| format!("look up bridge {name}"), ops).await?;
        Ok(!rows(res.first()).is_empty())
    }

    /// The interface named `name`, if any.
    pub async fn interface(&self, name: &str) -> Result<Option<InterfaceInfo>, Error> {
        let found = self.interfaces_where(Condition::eq("name", name), || {
            format!("look up interface {name}")
        });
        Ok(found.await?.into_iter().next())
    }

    /// Interfaces whose `external_ids` has `key=value`.
    pub async fn find_interfaces_by_external_id(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<InterfaceInfo>, Error> {
        let condition = Condition::includes("external_ids", Value::string_map([(key, value)]));
        self.interfaces_where(condition, || format!("find interfaces with {key}={value}"))
            .await
    }

    async fn interfaces_where(
        &self,
        condition: Condition,
        step: impl FnOnce() -> String,
    ) -> Result<Vec<InterfaceInfo>, Error> {
        let ops = vec![Operation::select("Interface", vec![condition], INTERFACE_COLUMNS)];
        let res = self.transact(step, ops).await?;
        Ok(rows(res.first())
            .iter()
            .filter_map(InterfaceInfo::from_row)
            .collect())
    }

    /// Starts an [`AddPort`] request: port `port_name` (with one interface of the same
    /// name unless [`AddPort::iface_name`] says otherwise) on `bridge`.
    pub fn add_port(&self, bridge: &str, port_name: &str) -> AddPort {
        AddPort::new(self.clone(), bridge, port_name)
    }

    /// Starts a [`DelPort`] request removing `port_name` from `bridge`.
    pub fn del_port(&self, bridge: &str, port_name: &str) -> DelPort {
        DelPort::new(self.clone(), Some(bridge), port_name)
    }
}
