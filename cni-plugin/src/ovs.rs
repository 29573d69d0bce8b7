//! The real [`Ovs`]: the native `ovsdb-client` over the unix socket.

use crate::port_ids;
use crate::traits::{Cause, Ovs, OvsError, PortSpec, PortState};
use ovsdb_client::vswitch::DB;
use ovsdb_client::vswitch::{Error as VsError, InterfaceInfo, Vswitch};
use ovsdb_client::{
    Atom, Client, Endpoint, MonitorRequest, Mutation, Mutator, Operation, OperationResult, Row, RowChange,
    Value,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long one OVSDB request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An OVSDB session.
#[derive(Debug, Clone)]
pub struct OvsdbOvs {
    vs: Vswitch,
}

fn cause<E: std::error::Error + Send + Sync + 'static>(e: E) -> Cause {
    Box::new(e)
}

impl OvsdbOvs {
    /// Connects to the OVSDB server at `endpoint`. Must run inside a tokio runtime.
    pub async fn connect(endpoint: &Endpoint) -> Result<OvsdbOvs, OvsError> {
        let endpoint = endpoint.to_string();
        let client = Client::connect(&endpoint).await.map_err(|e| OvsError::Connect {
            endpoint: endpoint.clone(),
            source: cause(e),
        })?;
        let client = client.with_request_timeout(Some(REQUEST_TIMEOUT));
        Ok(OvsdbOvs { vs: client.vswitch() })
    }
}

fn int_of(res: Option<&OperationResult>, col: &str) -> Option<i64> {
    let rows = res?.rows.as_ref()?;
    match rows.first()?.get(col)? {
        Value::Atom(Atom::Integer(n)) => Some(*n),
        _ => None,
    }
}

/// Waits until `cur_cfg` is at least `want`: told by a `monitor_cond` on the column, or by
/// polling when the server has no `monitor_cond`.
async fn cur_cfg_reaches(client: &Client, want: i64) -> Result<(), ovsdb_client::Error> {
    let reached = |row: &Row| match row.get("cur_cfg") {
        Some(Value::Atom(Atom::Integer(cur))) => *cur >= want,
        _ => false,
    };
    let request = MonitorRequest {
        columns: Some(vec!["cur_cfg".into()]),
        conditions: None,
    };
    match client
        .monitor_cond(DB, BTreeMap::from([("Open_vSwitch".to_string(), request)]))
        .await
    {
        Ok((mut updates, mut monitor)) => loop {
            let done = updates.iter().any(|u| match &u.change {
                RowChange::Initial(row) | RowChange::Insert(row) | RowChange::Modify(row) => reached(row),
                RowChange::Delete => false,
            });
            if done {
                return Ok(());
            }
            updates = monitor.next().await?;
        },
        Err(ovsdb_client::Error::Rpc { .. }) => loop {
            let res = client
                .transact(DB, vec![Operation::select("Open_vSwitch", vec![], &["cur_cfg"])])
                .await?;
            if int_of(res.first(), "cur_cfg").is_some_and(|cur| cur >= want) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        },
        Err(e) => Err(e),
    }
}

fn state(i: InterfaceInfo) -> PortState {
    PortState {
        name: i.name,
        external_ids: i.external_ids,
        ofport: i.ofport.map(i64::from),
    }
}

impl Ovs for OvsdbOvs {
    async fn bridge_exists(&self, bridge: &str) -> Result<bool, OvsError> {
        self.vs
            .bridge_exists(bridge)
            .await
            .map_err(|e| OvsError::BridgeLookup {
                bridge: bridge.to_string(),
                source: cause(e),
            })
    }

    async fn add_port(&self, spec: &PortSpec) -> Result<(), OvsError> {
        let added = self
            .vs
            .add_port(&spec.bridge, &spec.name)
            .external_ids(spec.external_ids.clone())
            .tag(spec.vlan)
            .execute()
            .await
            .map_err(|e| OvsError::AddPort {
                bridge: spec.bridge.clone(),
                port: spec.name.clone(),
                source: cause(e),
            })?;
        for old in added.replaced {
            tracing::info!(port = %old.name, owner = ?old.external_ids.get(port_ids::CONTAINER_ID), "replaced a stale OVS port of the same name");
        }
        Ok(())
    }

    async fn del_port(&self, bridge: &str, port: &str) -> Result<(), OvsError> {
        self.vs
            .del_port(bridge, port)
            .any_bridge()
            .execute()
            .await
            .map(drop)
            .map_err(|e| OvsError::DelPort {
                bridge: bridge.to_string(),
                port: port.to_string(),
                source: cause(e),
            })
    }

    async fn port(&self, name: &str) -> Result<Option<PortState>, OvsError> {
        let found = self.vs.interface(name).await.map_err(|e| OvsError::ReadPort {
            port: name.to_string(),
            source: cause(e),
        })?;
        Ok(found.map(state))
    }

    async fn find_ports(&self, key: &str, value: &str) -> Result<Vec<PortState>, OvsError> {
        let found = self
            .vs
            .find_interfaces_by_external_id(key, value)
            .await
            .map_err(|e| OvsError::ReadPort {
                port: format!("{key}={value}"),
                source: cause(e),
            })?;
        Ok(found.into_iter().map(state).collect())
    }

    async fn wait_ofport(&self, name: &str, timeout: Duration) -> Result<i64, OvsError> {
        match self.vs.wait_for_ofport(name, timeout).await {
            Ok(p) => Ok(i64::from(p)),
            Err(e @ VsError::OfportTimeout { .. }) => Err(OvsError::OfportTimeout {
                port: name.to_string(),
                timeout,
                source: Some(cause(e)),
            }),
            Err(e) => Err(OvsError::ReadPort {
                port: name.to_string(),
                source: cause(e),
            }),
        }
    }

    async fn wait_applied(&self, timeout: Duration) -> Result<(), OvsError> {
        let client = self.vs.client();
        let fail = |e: Option<Cause>| OvsError::ApplyTimeout { timeout, source: e };
        let bump = vec![
            Operation::Mutate {
                table: "Open_vSwitch".into(),
                conditions: vec![],
                mutations: vec![Mutation {
                    column: "next_cfg".into(),
                    mutator: Mutator::Add,
                    value: Value::Atom(Atom::Integer(1)),
                }],
            },
            Operation::select("Open_vSwitch", vec![], &["next_cfg"]),
        ];
        let res = client
            .transact(DB, bump)
            .await
            .map_err(|e| fail(Some(cause(e))))?;
        let Some(want) = int_of(res.get(1), "next_cfg") else {
            return Ok(());
        };
        match tokio::time::timeout(timeout, cur_cfg_reaches(client, want)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(fail(Some(cause(e)))),
            Err(_) => Err(fail(None)),
        }
    }

    async fn wait_ovn_installed(&self, name: &str, timeout: Duration) -> Result<(), OvsError> {
        match self
            .vs
            .wait_for_external_id(name, port_ids::OVN_INSTALLED, "true", timeout)
            .await
        {
            Ok(()) => Ok(()),
            Err(e @ VsError::ExternalIdTimeout { .. }) => Err(OvsError::OvnInstalledTimeout {
                port: name.to_string(),
                timeout,
                source: Some(cause(e)),
            }),
            Err(e) => Err(OvsError::ReadPort {
                port: name.to_string(),
                source: cause(e),
            }),
        }
    }
}
