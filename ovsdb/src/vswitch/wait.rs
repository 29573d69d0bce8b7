//! Waiting for OVSDB state: an Interface reaching a state (`ofport` assigned, an
//! `external_ids` value set by OVN), or ovs-vswitchd having applied the configuration
//! (`cur_cfg` catching up with `next_cfg`). One mechanism for all: `monitor_cond` on the
//! rows concerned, re-reading them on each change; short polling only when the server
//! lacks `monitor_cond`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tracing::debug;

use super::info::int_col;
use super::{rows, Error, InterfaceInfo, Vswitch, DB, INTERFACE_COLUMNS};
use crate::data::{Atom, Value};
use crate::monitor::MonitorRequest;
use crate::ops::{Condition, Mutation, Mutator, Operation};

const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What [`Vswitch::wait_until`] watches and how it reads it.
struct Watch<'a, F> {
    /// What we wait for, for errors (`"monitor interface abc_h"`).
    step: &'a str,
    /// The monitored table.
    table: &'a str,
    /// The monitored rows and columns.
    request: MonitorRequest,
    /// Reads the current state.
    read: F,
}

impl Vswitch {
    /// Waits until ovs-vswitchd assigns interface `iface` an OpenFlow port number and returns it.
    pub async fn wait_for_ofport(&self, iface: &str, timeout: Duration) -> Result<u32, Error> {
        let waited = self.wait_interface(iface, timeout, |i| i.as_ref()?.ofport).await;
        waited.map_err(|last| match last {
            Ok(last) => Error::OfportTimeout {
                iface: iface.to_string(),
                timeout,
                last_error: last.flatten().and_then(|i| i.error),
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
        let check = |i: &Option<InterfaceInfo>| {
            (i.as_ref()?.external_ids.get(key).map(String::as_str) == Some(value)).then_some(())
        };
        let waited = self.wait_interface(iface, timeout, check).await;
        waited.map_err(|last| match last {
            Ok(last) => Error::ExternalIdTimeout {
                iface: iface.to_string(),
                key: key.to_string(),
                value: value.to_string(),
                timeout,
                last: last.flatten().and_then(|mut i| i.external_ids.remove(key)),
            },
            Err(e) => e,
        })
    }

    /// Waits until ovs-vswitchd has applied every change committed so far, as `ovs-vsctl`
    /// does without `--no-wait`: increments `next_cfg`, then waits until ovs-vswitchd sets
    /// `cur_cfg` to at least that. Afterwards, e.g., ovs-vswitchd has closed the netdev of a
    /// port deleted before the call. Returns the configuration number reached.
    ///
    /// While ovs-vswitchd is disconnected from the server (it reconnects with a back-off
    /// of up to 8 s after an `ovsdb-server` restart), `cur_cfg` does not move: give
    /// `timeout` room for that.
    pub async fn wait_applied(&self, timeout: Duration) -> Result<i64, Error> {
        let bump = vec![
            Operation::Mutate {
                table: DB.into(),
                conditions: vec![],
                mutations: vec![Mutation {
                    column: "next_cfg".into(),
                    mutator: Mutator::Add,
                    value: Value::Atom(Atom::Integer(1)),
                }],
            },
            Operation::select(DB, vec![], &["next_cfg"]),
        ];
        let res = self.transact(|| "increment next_cfg".to_string(), bump).await?;
        let Some(want) = rows(res.get(1)).first().and_then(|r| int_col(r, "next_cfg")) else {
            return Err(Error::Reply {
                step: "increment next_cfg".to_string(),
                reason: "no Open_vSwitch row with an integer next_cfg",
            });
        };
        let watch = Watch {
            step: "monitor cur_cfg",
            table: DB,
            request: MonitorRequest {
                columns: Some(vec!["cur_cfg".into()]),
                conditions: None,
            },
            read: || self.cur_cfg(),
        };
        let check = |cur: &Option<i64>| cur.filter(|c| *c >= want);
        self.wait_until(watch, timeout, check)
            .await
            .map_err(|last| match last {
                Ok(last) => Error::ApplyTimeout {
                    timeout,
                    next_cfg: want,
                    cur_cfg: last.flatten(),
                },
                Err(e) => e,
            })
    }

    /// `cur_cfg` of the root row (`None`: no row yet).
    async fn cur_cfg(&self) -> Result<Option<i64>, Error> {
        let ops = vec![Operation::select(DB, vec![], &["cur_cfg"])];
        let res = self.transact(|| "read cur_cfg".to_string(), ops).await?;
        Ok(rows(res.first()).first().and_then(|r| int_col(r, "cur_cfg")))
    }

    /// Waits until `check` on the interface row (None: no such row) gives `Some`.
    async fn wait_interface<T>(
        &self,
        iface: &str,
        timeout: Duration,
        check: impl FnMut(&Option<InterfaceInfo>) -> Option<T>,
    ) -> Result<T, Result<Option<Option<InterfaceInfo>>, Error>> {
        let columns = INTERFACE_COLUMNS.iter().filter(|c| **c != "_uuid");
        let step = format!("monitor interface {iface}");
        let watch = Watch {
            step: &step,
            table: "Interface",
            request: MonitorRequest {
                columns: Some(columns.map(|c| c.to_string()).collect()),
                conditions: Some(vec![Condition::eq("name", iface)]),
            },
            read: || self.interface(iface),
        };
        self.wait_until(watch, timeout, check).await
    }

    /// Waits until `check` on what `watch.read` returns gives `Some`, re-reading after each
    /// change of the monitored rows. On timeout, returns `Err(Ok(last read))` (`None`: not
    /// read yet); on a request failure `Err(Err(e))`.
    async fn wait_until<R, T, F, Fut>(
        &self,
        watch: Watch<'_, F>,
        timeout: Duration,
        mut check: impl FnMut(&R) -> Option<T>,
    ) -> Result<T, Result<Option<R>, Error>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<R, Error>>,
    {
        let mut last: Option<R> = None;
        let failed = |source| Error::Ovsdb {
            step: watch.step.to_string(),
            source,
        };
        let waiting = async {
            let requests = BTreeMap::from([(watch.table.to_string(), watch.request.clone())]);
            // Monitor first, then read: a change between the two is not missed.
            let mut monitor = match self.client.monitor_cond(DB, requests).await {
                Ok(monitor) => Some(monitor),
                Err(crate::Error::Rpc { error, .. }) => {
                    debug!(%error, "monitor_cond refused, polling instead");
                    None
                }
                Err(source) => return Err(failed(source)),
            };
            loop {
                let state = (watch.read)().await?;
                let done = check(&state);
                last = Some(state);
                if let Some(t) = done {
                    return Ok(t);
                }
                match monitor.as_mut() {
                    Some(m) => m.next().await.map_err(failed)?,
                    None => tokio::time::sleep(POLL_INTERVAL).await,
                }
            }
        };
        match tokio::time::timeout(timeout, waiting).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(Err(e)),
            Err(_) => Err(Ok(last)),
        }
    }
}
