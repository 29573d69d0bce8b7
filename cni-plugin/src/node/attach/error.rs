//! The errors of attach, each naming the step that failed.

use crate::error::{code, ErrorCode};
use crate::ipam::IpamError;
use crate::netlink::addr::AddrError;
use crate::netlink::link::LinkError;
use crate::netns::NetnsError;
use crate::node::state::StateError;
use crate::traits::OvsError;
use crate::vf::VfError;
use sriov_host::PciAddress;

/// An attach step failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The derived representor name is not a valid name.
    #[error(
        "representor name {name:?} derived from interface name {ifname:?} is not a valid interface name"
    )]
    RepresentorName {
        /// Derived name.
        name: String,
        /// Pod interface.
        ifname: String,
    },
    /// The VF is not usable.
    #[error("VF unusable")]
    Vf(#[from] VfError),
    /// The IPAM plugin is not in `CNI_PATH`.
    #[error("IPAM plugin unusable")]
    IpamLookup(#[source] IpamError),
    /// A namespace could not be opened.
    #[error("network namespace unusable")]
    Netns(#[from] NetnsError),
    /// OVSDB failed.
    #[error("OVSDB step failed")]
    Ovs(#[from] OvsError),
    /// The bridge does not exist.
    #[error("OVS bridge {bridge} does not exist")]
    NoBridge {
        /// Bridge.
        bridge: String,
    },
    /// State files failed.
    #[error("state step failed")]
    State(#[from] StateError),
    /// A live attachment holds the VF.
    #[error("VF {pci} is held by container {container_id} ({ifname}) whose namespace {netns} still exists")]
    VfBusy {
        /// VF.
        pci: PciAddress,
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
        pci: PciAddress,
        /// Names sysfs shows.
        names: Vec<String>,
    },
    /// The representor netdev is missing.
    #[error("representor {name} of VF {pci} not found in the host namespace")]
    RepresentorMissing {
        /// VF.
        pci: PciAddress,
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
    Link(#[from] LinkError),
    /// The VF vanished after the move.
    #[error("VF {pci} not found in {netns} after moving it there")]
    VfLost {
        /// VF.
        pci: PciAddress,
        /// Namespace.
        netns: String,
    },
    /// IPAM failed.
    #[error("IPAM failed")]
    Ipam(#[source] IpamError),
    /// Addresses or routes failed.
    #[error("address or route step failed")]
    Addr(#[from] AddrError),
}

impl ErrorCode for AttachError {
    fn code(&self) -> u32 {
        match self {
            AttachError::RepresentorName { .. } | AttachError::IfnameTaken { .. } => code::INVALID_CONFIG,
            AttachError::Vf(e) => e.code(),
            AttachError::IpamLookup(e) | AttachError::Ipam(e) => e.code(),
            AttachError::Netns(e) => e.code(),
            AttachError::Ovs(e) => e.code(),
            AttachError::NoBridge { .. }
            | AttachError::VfBusy { .. }
            | AttachError::VfNetdevMissing { .. } => code::TRY_AGAIN_LATER,
            AttachError::State(e) => e.code(),
            AttachError::RepresentorMissing { .. } => code::VF,
            AttachError::Link(e) => e.code(),
            AttachError::VfLost { .. } => code::NETLINK,
            AttachError::Addr(e) => e.code(),
        }
    }
}
