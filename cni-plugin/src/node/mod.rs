//! Node operations: attach a VF to a pod ([`attach()`]) and release it ([`release()`]), typed,
//! free of CNI's formats; generic over kernel and OVSDB so every rollback path is unit-tested.

pub mod attach;
pub mod lookup;
pub mod record;
pub mod release;
pub mod rollback;
pub mod state;
#[cfg(test)]
mod tests;

pub use attach::{attach, AttachError, LOCK_TIMEOUT, OFPORT_TIMEOUT};
pub use record::{AttachmentRecord, IpamFacts, Phase};
pub use release::{release, ReleaseError, Released};
pub use state::StateDir;

use crate::ipnet::IpNet;
use crate::mac::MacAddr;
use crate::result::{Dns, IpConfig, Route};
use sriov_host::{PciAddress, Sysfs};
use std::path::PathBuf;
use std::time::Duration;

/// Where node operations act: the kernel's namespaces, sysfs and the state directory.
#[derive(Debug)]
pub struct Node<'a, K> {
    /// Network namespaces and netlink.
    pub kernel: &'a K,
    /// The sysfs root the VF is resolved in.
    pub sysfs: &'a Sysfs,
    /// Attachment records, VF locks and owners.
    pub state: &'a StateDir,
}

// By hand: derived impls would ask `K: Copy`, and only references are copied.
impl<K> Clone for Node<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for Node<'_, K> {}

/// Addresses, routes and DNS for the pod interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    /// Addresses with their gateways.
    pub ips: Vec<IpConfig>,
    /// Routes through the pod interface.
    pub routes: Vec<Route>,
    /// DNS settings (reported, not applied: the runtime writes resolv.conf).
    pub dns: Dns,
}

impl Addresses {
    /// Plain addresses without gateways or routes.
    pub fn from_ips(ips: &[IpNet]) -> Addresses {
        Addresses {
            ips: ips
                .iter()
                .map(|a| IpConfig {
                    address: *a,
                    gateway: None,
                    interface: None,
                })
                .collect(),
            ..Default::default()
        }
    }
}

/// Where the pod interface's addresses come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Addressing {
    /// Given by the caller (`runtimeConfig.ips`, Kube-OVN's annotations, or none).
    Given(Addresses),
    /// An IPAM plugin, called once the VF is in the pod, released with the attachment.
    Ipam(IpamFacts),
}

/// What OVS should know about the representor's port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortRequest {
    /// Bridge, e.g. `br-int`.
    pub bridge: String,
    /// OVN logical switch port (`external_ids:iface-id`).
    pub iface_id: Option<String>,
    /// Access VLAN tag.
    pub vlan: Option<u16>,
    /// Pod name (`external_ids:pod_name`).
    pub pod_name: Option<String>,
    /// Pod namespace (`external_ids:pod_namespace`).
    pub pod_namespace: Option<String>,
    /// Limit on what the pod sends, Mbit/s: the representor's Interface
    /// `ingress_policing_rate`/`_burst` (a TC police action, offloaded on a switchdev NIC).
    pub ingress_policing_mbps: Option<u64>,
    /// Limit on what the pod receives, Mbit/s: a `linux-htb` QoS queue `max-rate` on the port.
    pub egress_max_rate_mbps: Option<u64>,
}

/// Everything [`attach()`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachRequest {
    /// Container ID (with `ifname`, the attachment's identity).
    pub container_id: String,
    /// Interface name in the pod.
    pub ifname: String,
    /// The pod's network namespace.
    pub netns: PathBuf,
    /// The VF.
    pub pci: PciAddress,
    /// MAC for the pod interface.
    pub mac: Option<MacAddr>,
    /// MTU for the pod interface and the representor.
    pub mtu: Option<u32>,
    /// Addresses of the pod interface.
    pub addressing: Addressing,
    /// The OVS port.
    pub port: PortRequest,
    /// Network name (GC scope).
    pub network: String,
    /// How long to wait for `ovn-installed` (zero: don't).
    pub ovn_installed_timeout: Duration,
    /// How long a rollback waits for ovs-vswitchd to apply a port removal.
    pub ovs_apply_timeout: Duration,
}

/// A link's facts as reported to the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkFacts {
    /// Name.
    pub name: String,
    /// MAC address.
    pub mac: Option<MacAddr>,
    /// MTU.
    pub mtu: Option<u32>,
}

/// What [`attach()`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The pod interface; `None` for a VF without a kernel netdev (vfio-pci).
    pub pod_interface: Option<LinkFacts>,
    /// The representor, renamed and on the bridge.
    pub representor: LinkFacts,
    /// The addresses configured (from the caller or IPAM).
    pub addresses: Addresses,
}

/// Everything [`release()`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseRequest {
    /// Container ID.
    pub container_id: String,
    /// Interface name in the pod.
    pub ifname: String,
    /// The pod's network namespace, when still known (it may be gone).
    pub netns: Option<PathBuf>,
    /// The VF, when the caller knows it (used when no record exists).
    pub pci: Option<PciAddress>,
    /// Without a record: the bridge the port would be on.
    pub bridge: String,
    /// Without a record: the IPAM to release.
    pub ipam: Option<IpamFacts>,
    /// How long to wait for ovs-vswitchd to apply the port removal (and OVSDB to come back).
    pub ovs_apply_timeout: Duration,
    /// GC: the phase the caller listed the record in; an attachment that completed since
    /// is kept.
    pub listed_phase: Option<Phase>,
}
