//! One consistent read of what a node check looks at: the root row's `other_config` and
//! `external_ids`, the bridges, and every port with the bridge holding it.

use std::collections::BTreeMap;

use super::info::{map_col, PORT_COLUMNS};
use super::{bridge_ports, rows, Error, PortInfo, Vswitch};
use crate::ops::Operation;

/// What [`Vswitch::overview`] reads, in one transaction.
#[derive(Clone, Debug, Default)]
pub struct Overview {
    /// The root row's `other_config` (e.g. `hw-offload`); empty without a root row.
    pub other_config: BTreeMap<String, String>,
    /// The root row's `external_ids` (e.g. `ovn-encap-ip`, `system-id`).
    pub external_ids: BTreeMap<String, String>,
    /// Names of the bridges.
    pub bridges: Vec<String>,
    /// Every port, with its bridge and `external_ids`.
    pub ports: Vec<PortInfo>,
}

impl Vswitch {
    /// Reads the node's switch configuration and ports in one transaction.
    pub async fn overview(&self) -> Result<Overview, Error> {
        let ops = vec![
            Operation::select(super::DB, vec![], &["other_config", "external_ids"]),
            Operation::select("Bridge", vec![], &["name", "ports"]),
            Operation::select("Port", vec![], PORT_COLUMNS),
        ];
        let res = self
            .transact(|| "read the switch overview".to_string(), ops)
            .await?;
        let root = rows(res.first()).first();
        let bridges = bridge_ports(res.get(1));
        Ok(Overview {
            other_config: root.map(|r| map_col(r, "other_config")).unwrap_or_default(),
            external_ids: root.map(|r| map_col(r, "external_ids")).unwrap_or_default(),
            ports: rows(res.get(2))
                .iter()
                .filter_map(|r| PortInfo::from_row(r, &bridges))
                .collect(),
            bridges: bridges.into_iter().map(|(name, _)| name).collect(),
        })
    }
}
