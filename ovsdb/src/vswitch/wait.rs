//! Waiting for an Interface to reach a state (`ofport` assigned, an `external_ids`
//! value set by OVN): `monitor_cond` on that one row, re-reading it on each change;
//! short polling only when the server lacks `monitor_cond`.

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::debug;

use super::{Error, InterfaceInfo, Vswitch, INTERFACE_COLUMNS};
use crate::monitor::{MonitorRequest, RowChange};
use crate::ops::Condition;

const POLL_INTERVAL: Duration = Duration::from_millis(20);

impl Vswitch {
    /// Waits until ovs-vswitchd assigns interface `iface` an OpenFlow port number and returns it.
    pub async fn wait_for_ofport(&self, iface: &str, timeout: Duration) -> Result<u32, Error> {
        let waited = self.wait_interface(iface, timeout, |i| i?.ofport).await;
        waited.map_err(|last| match last {
            Ok(last) => Error::OfportTimeout {
                iface: iface.to_string(),
                timeout,
                last_error: last.and_then(|i| i.error),
            },
            Err(e) => e,
        })
    }

    /// Waits until interface `iface` has `external_ids:key=value` (e.g. `ovn-installed=true`).
    pub async fn wait_for_external_id(
        &self,
        iface: &str,
        key: &str,
        value: &str,
        timeout: Duration,
    ) -> Result<(), Error> {
        let check = |i: Option<&InterfaceInfo>| {
            (i?.external_ids.get(key).map(String::as_str) == Some(value)).then_some(())
        };
        let waited = self.wait_interface(iface, timeout, check).await;
        waited.map_err(|last| match last {
            Ok(last) => Error::ExternalIdTimeout {
                iface: iface.to_string(),
                key: key.to_string(),
                value: value.to_string(),
                timeout,
                last: last.and_then(|mut i| i.external_ids.remove(key)),
            },
            Err(e) => e,
        })
    }

    /// Waits until `check` on the interface row (None: no such row) gives `Some`.
    /// On timeout, returns `Err(Ok(last row seen))`; on a request failure `Err(Err(e))`.
    async fn wait_interface<T>(
        &self,
        iface: &str,
        timeout: Duration,
        mut check: impl FnMut(Option<&InterfaceInfo>) -> Option<T>,
    ) -> Result<T, Result<Option<InterfaceInfo>, Error>> {
        let mut last: Option<InterfaceInfo> = None;
        let waiting = async {
            let request = MonitorRequest {
                columns: Some(
                    INTERFACE_COLUMNS
                        .iter()
                        .filter(|c| **c != "_uuid")
                        .map(|c| c.to_string())
                        .collect(),
                ),
                conditions: Some(vec![Condition::eq("name", iface)]),
            };
            let requests = BTreeMap::from([("Interface".to_string(), request)]);
            match self.client.monitor_cond(super::DB, requests).await {
                Ok((initial, mut monitor)) => {
                    last = initial.iter().find_map(|u| match &u.change {
                        RowChange::Initial(row) | RowChange::Insert(row) => {
                            InterfaceInfo::from_row(row, Some(&u.uuid))
                        }
                        _ => None,
                    });
                    loop {
                        if let Some(t) = check(last.as_ref()) {
                            return Ok(t);
                        }
                        monitor.next().await.map_err(|source| Error::Ovsdb {
                            step: format!("monitor interface {iface}"),
                            source,
                        })?;
                        last = self.interface(iface).await?;
                    }
                }
                Err(crate::Error::Rpc { error, .. }) => {
                    debug!(%error, "monitor_cond refused, polling instead");
                    loop {
                        last = self.interface(iface).await?;
                        if let Some(t) = check(last.as_ref()) {
                            return Ok(t);
                        }
                        tokio::time::sleep(POLL_INTERVAL).await;
                    }
                }
                Err(source) => Err(Error::Ovsdb {
                    step: format!("monitor interface {iface}"),
                    source,
                }),
            }
        };
        match tokio::time::timeout(timeout, waiting).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(Err(e)),
            Err(_) => Err(Ok(last)),
        }
    }
}
