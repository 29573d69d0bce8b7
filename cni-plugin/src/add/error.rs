//! The errors of ADD, each naming the step that failed.

use crate::error::{code, ErrorCode};
use crate::ipam::IpamError;
use crate::netconf::NetconfError;
use crate::netlink::addr::AddrError;
use crate::netlink::link::LinkError;
use crate::netns::NetnsError;
use crate::state::StateError;
use crate::traits::OvsError;
use crate::vf::VfError;

/// An ADD step failed.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// Neither `deviceID`, `pciBusID` nor `runtimeConfig.deviceID` is set.
    #[error(
        "no VF given: the network configuration has no deviceID (nor pciBusID, \
         runtimeConfig.deviceID). Usual causes: (1) the NetworkAttachmentDefinition lacks the \
         annotation k8s.v1.cni.cncf.io/resourceName naming the device plugin resource; (2) the \
         pod does not request that resource in resources.requests/limits; (3) Multus runs as \
         the thin plugin, which does not pass deviceID: use the thick plugin \
         (multus-daemonset-thick.yml)"
    )]
    NoDeviceId,
    /// The configuration cannot be honoured.
    #[error("invalid network configuration")]
    Netconf(#[source] NetconfError),
    /// The derived representor name is not a valid name.
    #[error("representor name {name:?} derived from CNI_IFNAME {ifname:?} is not a valid interface name")]
    RepresentorName {
        /// Derived name.
        name: String,
        /// Pod interface.
        ifname: String,
    },
    /// The VF is not usable.
    #[error("VF unusable")]
    Vf(#[source] VfError),
    /// The IPAM plugin is not in `CNI_PATH`.
    #[error("IPAM plugin unusable")]
    IpamLookup(#[source] IpamError),
    /// A namespace could not be opened.
    #[error("network namespace unusable")]
    Netns(#[source] NetnsError),
    /// OVSDB failed.
    #[error("OVSDB step failed")]
    Ovs(#[source] OvsError),
    /// The bridge does not exist.
    #[error("OVS bridge {bridge} does not exist")]
    NoBridge {
        /// Bridge.
        bridge: String,
    },
    /// State files failed.
    #[error("state step failed")]
    State(#[source] StateError),
    /// A live attachment holds the VF.
    #[error("VF {pci} is held by container {container_id} ({ifname}) whose namespace {netns} still exists")]
    VfBusy {
        /// VF.
        pci: String,
        /// Holder.
        container_id: String,
        /// Holder's interface.
        ifname: String,
        /// Holder's namespace.
        netns: String,
    },
    /// The VF netdev is not in the host namespace.
    #[error("VF {pci} has no netdev in the host namespace (sysfs names {names:?}); is it in use elsewhere?")]
    VfNetdevMissing {
        /// VF.
        pci: String,
        /// Names sysfs shows.
        names: Vec<String>,
    },
    /// The representor netdev is missing.
    #[error("representor {name} of VF {pci} not found in the host namespace")]
    RepresentorMissing {
        /// VF.
        pci: String,
        /// Name.
        name: String,
    },
    /// The pod interface name is taken in the pod namespace.
    #[error("interface {ifname} already exists in {netns}")]
    IfnameTaken {
        /// Name.
        ifname: String,
        /// Namespace.
        netns: String,
    },
    /// A link operation failed.
    #[error("link step failed")]
    Link(#[source] LinkError),
    /// The VF vanished after the move.
    #[error("VF {pci} not found in {netns} after moving it there")]
    VfLost {
        /// VF.
        pci: String,
        /// Namespace.
        netns: String,
    },
    /// IPAM failed.
    #[error("IPAM failed")]
    Ipam(#[source] IpamError),
    /// Addresses or routes failed.
    #[error("address or route step failed")]
    Addr(#[source] AddrError),
}

impl ErrorCode for AddError {
    fn code(&self) -> u32 {
        match self {
            AddError::NoDeviceId | AddError::RepresentorName { .. } => code::INVALID_CONFIG,
            AddError::Netconf(e) => e.code(),
            AddError::Vf(e) => e.code(),
            AddError::IpamLookup(e) | AddError::Ipam(e) => e.code(),
            AddError::Netns(e) => e.code(),
            AddError::Ovs(e) => e.code(),
            AddError::NoBridge { .. } | AddError::VfBusy { .. } | AddError::VfNetdevMissing { .. } => {
                code::TRY_AGAIN_LATER
            }
            AddError::State(e) => e.code(),
            AddError::IfnameTaken { .. } => code::INVALID_CONFIG,
            AddError::RepresentorMissing { .. } => code::VF,
            AddError::Link(e) => e.code(),
            AddError::VfLost { .. } => code::NETLINK,
            AddError::Addr(e) => e.code(),
        }
    }
}
