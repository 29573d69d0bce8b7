//! The real [`Ovs`]: the native `ovsdb-client` over the unix socket, reconnecting to an
//! `ovsdb-server` that restarts under it.

use crate::port_ids;
use crate::traits::{Ovs, OvsError, PortSpec, PortState};
use ovsdb_client::vswitch::{Error as VsError, InterfaceInfo, Vswitch};
use ovsdb_client::{Client, Endpoint};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long one OVSDB request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause between attempts to reach an `ovsdb-server` that is not listening (yet).
const REDIAL_INTERVAL: Duration = Duration::from_millis(100);

/// An OVSDB session. Clones share it; when the server closes it (a restart), the next
/// operation reconnects, as long as the allowance given at connect time lasts.
#[derive(Debug, Clone)]
pub struct OvsdbOvs {
    endpoint: String,
    /// The current session and how many times it was replaced.
    session: Arc<Mutex<(u64, Vswitch)>>,
    /// How long an operation keeps trying to reach a restarting server (zero: fail at once).
    reconnect_for: Duration,
}

/// Maps a client error to the failed request `cannot {step}`.
fn failed<E: std::error::Error + Send + Sync + 'static>(step: String) -> impl FnOnce(E) -> OvsError {
    move |e| OvsError::Request {
        step,
        source: Box::new(e),
    }
}

/// A wait for `what` (its error's `{what} within {timeout}`) that timed out or failed.
fn waited<T>(
    result: Result<T, VsError>,
    what: impl FnOnce() -> String,
    timeout: Duration,
    step: impl FnOnce() -> String,
) -> Result<T, OvsError> {
    result.map_err(|e| match e {
        VsError::OfportTimeout { .. } | VsError::ApplyTimeout { .. } | VsError::ExternalIdTimeout { .. } => {
            OvsError::Timeout {
                what: what(),
                timeout,
                source: Box::new(e),
            }
        }
        e => failed(step())(e),
    })
}

/// Connects to `endpoint`, retrying while the server is unreachable until `deadline`.
async fn dial(endpoint: &str, deadline: Instant) -> Result<Vswitch, ovsdb_client::Error> {
    loop {
        match Client::connect(endpoint).await {
            Ok(c) => return Ok(c.with_request_timeout(Some(REQUEST_TIMEOUT)).vswitch()),
            Err(e) if e.is_unreachable() && Instant::now() + REDIAL_INTERVAL < deadline => {
                tracing::debug!(
                    error = &e as &dyn std::error::Error,
                    "OVSDB not reachable yet; retrying"
                );
                tokio::time::sleep(REDIAL_INTERVAL).await;
            }
            Err(e) => return Err(e),
        }
    }
}

impl OvsdbOvs {
    /// Connects to `endpoint`, waiting up to `reconnect_for` for a restarting server (zero: fail
    /// at once); idempotent operations later reconnect and retry within the same allowance.
    pub async fn connect(endpoint: &Endpoint, reconnect_for: Duration) -> Result<OvsdbOvs, OvsError> {
        let endpoint = endpoint.to_string();
        let vs = dial(&endpoint, Instant::now() + reconnect_for)
            .await
            .map_err(|e| OvsError::Connect {
                endpoint: endpoint.clone(),
                source: Box::new(e),
            })?;
        Ok(OvsdbOvs {
            endpoint,
            session: Arc::new(Mutex::new((0, vs))),
            reconnect_for,
        })
    }

    fn current(&self) -> (u64, Vswitch) {
        self.session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces session `generation` with a new one (unless a clone already did).
    async fn reconnect(&self, generation: u64, deadline: Instant) -> Result<(), ovsdb_client::Error> {
        if self.current().0 != generation {
            return Ok(());
        }
        let vs = dial(&self.endpoint, deadline).await?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        if session.0 == generation {
            *session = (generation + 1, vs);
        }
        Ok(())
    }

    /// Runs the idempotent `op`, reconnecting and running it again while it fails because the
    /// server went away, until `deadline`.
    async fn retrying<T, Fut>(&self, deadline: Instant, op: impl Fn(Vswitch) -> Fut) -> Result<T, VsError>
    where
        Fut: Future<Output = Result<T, VsError>>,
    {
        loop {
            let (generation, vs) = self.current();
            match op(vs).await {
                Err(e) if e.is_unreachable() && Instant::now() < deadline => {
                    tracing::info!(endpoint = %self.endpoint, error = &e as &dyn std::error::Error, "OVSDB session lost; reconnecting");
                    if let Err(dial_err) = self.reconnect(generation, deadline).await {
                        tracing::warn!(endpoint = %self.endpoint, error = &dial_err as &dyn std::error::Error, "cannot reconnect to OVSDB");
                        return Err(e);
                    }
                }
                done => return done,
            }
        }
    }

    /// [`OvsdbOvs::retrying`] within the connect-time allowance.
    async fn idempotent<T, Fut>(&self, op: impl Fn(Vswitch) -> Fut) -> Result<T, VsError>
    where
        Fut: Future<Output = Result<T, VsError>>,
    {
        self.retrying(Instant::now() + self.reconnect_for, op).await
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
        self.idempotent(|vs| async move { vs.bridge_exists(bridge).await })
            .await
            .map_err(failed(format!("look up bridge {bridge} in OVSDB")))
    }

    async fn add_port(&self, spec: &PortSpec) -> Result<(), OvsError> {
        // Not retried: the session is whatever connect (or the last retried operation) left.
        let mut add = self
            .current()
            .1
            .add_port(&spec.bridge, &spec.name)
            .external_ids(spec.external_ids.clone())
            .tag(spec.vlan);
        if let Some((rate, burst)) = spec.ingress_policing {
            add = add.ingress_policing(rate, burst);
        }
        if let Some(bps) = spec.egress_max_rate {
            add = add.egress_max_rate(bps);
        }
        let added = add.execute().await.map_err(failed(format!(
            "add port {} to bridge {}",
            spec.name, spec.bridge
        )))?;
        for old in added.replaced {
            tracing::info!(port = %old.name, owner = ?old.external_ids.get(port_ids::CONTAINER_ID), "replaced a stale OVS port of the same name");
        }
        Ok(())
    }

    async fn del_port(&self, bridge: &str, port: &str) -> Result<(), OvsError> {
        // Idempotent: the port is resolved to its row first, absent is success.
        self.idempotent(|vs| async move { vs.del_port(bridge, port).any_bridge().with_qos().execute().await })
            .await
            .map(drop)
            .map_err(failed(format!("delete port {port} from bridge {bridge}")))
    }

    async fn port(&self, name: &str) -> Result<Option<PortState>, OvsError> {
        let found = self
            .idempotent(|vs| async move { vs.interface(name).await })
            .await
            .map_err(failed(format!("read OVS interface {name}")))?;
        Ok(found.map(state))
    }

    async fn find_ports(&self, key: &str, value: &str) -> Result<Vec<PortState>, OvsError> {
        let found = self
            .idempotent(|vs| async move { vs.find_interfaces_by_external_id(key, value).await })
            .await
            .map_err(failed(format!("read OVS interface {key}={value}")))?;
        Ok(found.into_iter().map(state).collect())
    }

    async fn wait_ofport(&self, name: &str, timeout: Duration) -> Result<i64, OvsError> {
        let ofport = self.current().1.wait_for_ofport(name, timeout).await;
        waited(
            ofport,
            || format!("OVS interface {name} got no ofport"),
            timeout,
            || format!("read OVS interface {name}"),
        )
        .map(i64::from)
    }

    async fn wait_applied(&self, timeout: Duration) -> Result<(), OvsError> {
        // The whole allowance covers reaching a restarting server as well as ovs-vswitchd
        // reconnecting to it (with a back-off of up to 8 s) and applying the change. Retried
        // although it increments next_cfg: a second increment only asks ovs-vswitchd for one
        // more reconfiguration, and what is awaited (every change committed before) is the same.
        let deadline = Instant::now() + timeout;
        let applied = self
            .retrying(deadline, |vs| async move {
                vs.wait_applied(deadline.saturating_duration_since(Instant::now()))
                    .await
            })
            .await;
        let cfg = waited(
            applied,
            || "ovs-vswitchd did not apply the configuration".into(),
            timeout,
            || "have ovs-vswitchd confirm the configuration".into(),
        )?;
        tracing::debug!(cfg, "ovs-vswitchd applied the configuration");
        Ok(())
    }

    async fn wait_ovn_installed(&self, name: &str, timeout: Duration) -> Result<(), OvsError> {
        let installed = self
            .current()
            .1
            .wait_for_external_id(name, port_ids::OVN_INSTALLED, "true", timeout)
            .await;
        waited(
            installed,
            || format!("OVS interface {name} not marked ovn-installed"),
            timeout,
            || format!("read OVS interface {name}"),
        )
    }
}
