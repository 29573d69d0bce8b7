//! A recording in-memory [`Ovs`] for unit tests of the orchestration (test code only).

use crate::traits::{Ovs, OvsError, PortSpec, PortState};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

/// Records every call and keeps ports in memory.
#[derive(Debug, Default)]
pub struct FakeOvs {
    /// Bridges that exist.
    pub bridges: Vec<String>,
    /// Ports by name.
    pub ports: RefCell<BTreeMap<String, PortState>>,
    /// Calls made, in order.
    pub calls: RefCell<Vec<String>>,
    /// Make every call fail as if OVSDB were down.
    pub down: bool,
    /// The next call whose record starts with this fails.
    pub fail: RefCell<Option<String>>,
}

impl FakeOvs {
    fn record(&self, call: String) -> Result<(), OvsError> {
        let injected = self.fail.borrow().as_deref().is_some_and(|p| call.starts_with(p));
        self.calls.borrow_mut().push(call);
        if injected {
            self.fail.replace(None);
            return Err(OvsError::Request {
                step: "have ovs-vswitchd confirm the configuration".into(),
                source: "injected failure".into(),
            });
        }
        if self.down {
            return Err(OvsError::Connect {
                endpoint: "unix:/fake".into(),
                source: "down".into(),
            });
        }
        Ok(())
    }

    /// Adds a port as if someone had attached it.
    pub fn with_port(self, name: &str, ids: &[(&str, &str)]) -> FakeOvs {
        let external_ids = ids.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.ports.borrow_mut().insert(
            name.into(),
            PortState {
                name: name.into(),
                external_ids,
                ofport: Some(1),
            },
        );
        self
    }
}

impl Ovs for FakeOvs {
    async fn bridge_exists(&self, bridge: &str) -> Result<bool, OvsError> {
        self.record(format!("bridge_exists {bridge}"))?;
        Ok(self.bridges.iter().any(|b| b == bridge))
    }
    async fn add_port(&self, spec: &PortSpec) -> Result<(), OvsError> {
        self.record(format!("add_port {} {}", spec.bridge, spec.name))?;
        self.ports.borrow_mut().insert(
            spec.name.clone(),
            PortState {
                name: spec.name.clone(),
                external_ids: spec.external_ids.clone(),
                ofport: None,
            },
        );
        Ok(())
    }
    async fn del_port(&self, bridge: &str, port: &str) -> Result<(), OvsError> {
        self.record(format!("del_port {bridge} {port}"))?;
        self.ports.borrow_mut().remove(port);
        Ok(())
    }
    async fn port(&self, name: &str) -> Result<Option<PortState>, OvsError> {
        self.record(format!("port {name}"))?;
        Ok(self.ports.borrow().get(name).cloned())
    }
    async fn find_ports(&self, key: &str, value: &str) -> Result<Vec<PortState>, OvsError> {
        self.record(format!("find_ports {key}={value}"))?;
        Ok(self
            .ports
            .borrow()
            .values()
            .filter(|p| p.external_ids.get(key).map(String::as_str) == Some(value))
            .cloned()
            .collect())
    }
    async fn wait_ofport(&self, name: &str, _timeout: Duration) -> Result<i64, OvsError> {
        self.record(format!("wait_ofport {name}"))?;
        if let Some(p) = self.ports.borrow_mut().get_mut(name) {
            p.ofport = Some(1);
        }
        Ok(1)
    }
    async fn wait_applied(&self, timeout: Duration) -> Result<(), OvsError> {
        self.record(format!("wait_applied {timeout:?}"))
    }
    async fn wait_ovn_installed(&self, name: &str, _timeout: Duration) -> Result<(), OvsError> {
        self.record(format!("wait_ovn_installed {name}"))
    }
}

/// Runs a future to completion on a fresh current-thread runtime (unit tests of async steps).
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
