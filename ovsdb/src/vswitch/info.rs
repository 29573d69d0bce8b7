//! Typed views of `Interface` and `Port` rows.

use std::collections::BTreeMap;

use crate::data::{Row, Uuid, Value};

/// An `Interface` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Row UUID.
    pub uuid: Uuid,
    /// Interface (netdev) name.
    pub name: String,
    /// OpenFlow port number; `None` while not assigned or when it failed (`-1`).
    pub ofport: Option<u32>,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
    /// `error`: why ovs-vswitchd could not open the device, if it could not.
    pub error: Option<String>,
}

/// A `Port` row, with the bridge holding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// Row UUID.
    pub uuid: Uuid,
    /// Port name.
    pub name: String,
    /// Its interfaces' UUIDs.
    pub interfaces: Vec<Uuid>,
    /// Access VLAN tag.
    pub tag: Option<u16>,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
    /// The bridge whose `ports` contains it (`None`: orphan, about to be collected).
    pub bridge: Option<String>,
}

pub(super) const INTERFACE_COLUMNS: &[&str] = &["_uuid", "name", "ofport", "external_ids", "error"];
pub(super) const PORT_COLUMNS: &[&str] = &["_uuid", "name", "interfaces", "tag", "external_ids"];

pub(super) fn string_col(row: &Row, col: &str) -> Option<String> {
    Some(row.get(col)?.as_optional()?.as_str()?.to_string())
}

pub(super) fn int_col(row: &Row, col: &str) -> Option<i64> {
    row.get(col)?.as_optional()?.as_integer()
}

pub(super) fn map_col(row: &Row, col: &str) -> BTreeMap<String, String> {
    row.get(col).and_then(Value::to_string_map).unwrap_or_default()
}

impl InterfaceInfo {
    /// Reads a row selected with [`INTERFACE_COLUMNS`].
    pub(super) fn from_row(row: &Row) -> Option<InterfaceInfo> {
        let uuid = row.get("_uuid")?.as_optional()?.as_uuid()?.clone();
        Some(InterfaceInfo {
            uuid,
            name: string_col(row, "name")?,
            ofport: int_col(row, "ofport")
                .filter(|p| *p > 0)
                .and_then(|p| u32::try_from(p).ok()),
            external_ids: map_col(row, "external_ids"),
            error: string_col(row, "error").filter(|e| !e.is_empty()),
        })
    }
}

impl PortInfo {
    pub(super) fn from_row(row: &Row, bridges: &[(String, Vec<Uuid>)]) -> Option<PortInfo> {
        let uuid = row.get("_uuid")?.as_optional()?.as_uuid()?.clone();
        let bridge = bridges
            .iter()
            .find(|(_, ports)| ports.contains(&uuid))
            .map(|(name, _)| name.clone());
        Some(PortInfo {
            name: string_col(row, "name")?,
            interfaces: row.get("interfaces").map(Value::uuids).unwrap_or_default(),
            tag: int_col(row, "tag").and_then(|t| u16::try_from(t).ok()),
            external_ids: map_col(row, "external_ids"),
            bridge,
            uuid,
        })
    }
}
