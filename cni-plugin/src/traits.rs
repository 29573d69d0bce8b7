//! The OVSDB operations the plugin needs, as a trait so orchestration can be tested with a recording fake.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

/// A port to create on a bridge (Port + Interface in one transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// Bridge name.
    pub bridge: String,
    /// Port and interface name (the representor netdev).
    pub name: String,
    /// `external_ids` of the Interface (and Port).
    pub external_ids: BTreeMap<String, String>,
    /// Access VLAN tag.
    pub vlan: Option<u16>,
    /// Interface ingress policing: rate (kbit/s) and burst (kbit).
    pub ingress_policing: Option<(u64, u64)>,
    /// Port egress `linux-htb` max-rate, bit/s.
    pub egress_max_rate: Option<u64>,
}

/// What OVSDB holds for one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortState {
    /// Interface name.
    pub name: String,
    /// `external_ids` of the Interface.
    pub external_ids: BTreeMap<String, String>,
    /// `ofport`, when assigned and valid (> 0).
    pub ofport: Option<i64>,
}

/// Boxed cause from the OVSDB client.
pub type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// An OVSDB step failed.
#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    /// Connecting to the socket failed.
    #[error(
        "cannot connect to OVSDB at {endpoint} (network configuration key \"ovsdbSocket\"): \
         is ovsdb-server running on this node? With Kube-OVN, check this node's ovs-ovn pod \
         (kubectl -n kube-system get pods -l app=ovs -o wide) and that ovsdbSocket names the \
         socket it serves"
    )]
    Connect {
        /// The endpoint, e.g. `unix:/run/openvswitch/db.sock`.
        endpoint: String,
        /// Cause.
        #[source]
        source: Cause,
    },
    /// An OVSDB request failed.
    #[error("cannot {step}")]
    Request {
        /// What was asked, e.g. `add port P to bridge B`.
        step: String,
        /// Cause.
        #[source]
        source: Cause,
    },
    /// A wait ran out of time.
    #[error("{what} within {timeout:?}")]
    Timeout {
        /// What did not happen, e.g. `OVS interface P got no ofport`.
        what: String,
        /// Waited for.
        timeout: Duration,
        /// Cause (OVS error column or client error).
        #[source]
        source: Cause,
    },
}

impl crate::error::ErrorCode for OvsError {
    fn code(&self) -> u32 {
        match self {
            OvsError::Timeout { .. } => crate::error::code::TIMEOUT,
            _ => crate::error::code::OVSDB,
        }
    }
}

/// The OVSDB operations of the plugin.
pub trait Ovs {
    /// Whether `bridge` exists.
    fn bridge_exists(&self, bridge: &str) -> impl Future<Output = Result<bool, OvsError>>;
    /// Adds a port with its interface in one transaction.
    fn add_port(&self, spec: &PortSpec) -> impl Future<Output = Result<(), OvsError>>;
    /// Deletes a port; absent is success.
    fn del_port(&self, bridge: &str, port: &str) -> impl Future<Output = Result<(), OvsError>>;
    /// Reads an interface by name.
    fn port(&self, name: &str) -> impl Future<Output = Result<Option<PortState>, OvsError>>;
    /// Interfaces whose `external_ids[key] == value`.
    fn find_ports(&self, key: &str, value: &str) -> impl Future<Output = Result<Vec<PortState>, OvsError>>;
    /// Waits for a valid ofport.
    fn wait_ofport(&self, name: &str, timeout: Duration) -> impl Future<Output = Result<i64, OvsError>>;
    /// Waits until ovs-vswitchd has applied every committed change (`cur_cfg` catches up with a
    /// bumped `next_cfg`), e.g. has closed a deleted port's netdev before it is renamed.
    fn wait_applied(&self, timeout: Duration) -> impl Future<Output = Result<(), OvsError>>;
    /// Waits for `external_ids:ovn-installed=true`.
    fn wait_ovn_installed(&self, name: &str, timeout: Duration)
        -> impl Future<Output = Result<(), OvsError>>;
}
