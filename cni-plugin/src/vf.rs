//! Resolving a VF PCI address into its PF, VF index, driver, netdev names and representor.

use crate::error::{code, ErrorCode};
use sriov_host::{EswitchError, EswitchMode, PciAddress, PciError, RepresentorError, RepresentorView, Sysfs};

/// Driver name of VFs bound for DPDK/VMs.
pub const VFIO_DRIVER: &str = "vfio-pci";

/// A usable VF of a switchdev PF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfInfo {
    /// The VF.
    pub pci: PciAddress,
    /// Bound driver.
    pub driver: String,
    /// Netdev names sysfs shows for the VF (empty while it is in a pod or bound to vfio-pci).
    pub netdevs: Vec<String>,
    /// The representor netdev name sysfs shows.
    pub representor: String,
}

impl VfInfo {
    /// Whether the VF has a kernel netdev (not bound to vfio-pci).
    pub fn has_kernel_netdev(&self) -> bool {
        self.driver != VFIO_DRIVER
    }
}

/// The device is not a VF we can use.
#[derive(Debug, thiserror::Error)]
pub enum VfError {
    /// No such PCI device.
    #[error("deviceID {pci}: no such PCI device")]
    Unknown {
        /// Address.
        pci: PciAddress,
        /// Cause.
        #[source]
        source: PciError,
    },
    /// Reading it failed.
    #[error("deviceID {pci}: cannot read the PCI device")]
    Read {
        /// Address.
        pci: PciAddress,
        /// Cause.
        #[source]
        source: PciError,
    },
    /// It is not a VF.
    #[error("deviceID {pci} is not a VF (no physfn); is it a PF?")]
    NotAVf {
        /// Address.
        pci: PciAddress,
    },
    /// The VF has no driver.
    #[error("VF {pci} is not bound to any driver")]
    NoDriver {
        /// Address.
        pci: PciAddress,
    },
    /// The eswitch mode cannot be read.
    #[error("cannot read the eswitch mode of PF {pf} of VF {pci}")]
    Eswitch {
        /// VF.
        pci: PciAddress,
        /// PF.
        pf: PciAddress,
        /// Cause.
        #[source]
        source: EswitchError,
    },
    /// The PF is in legacy mode.
    #[error("PF {pf} of VF {pci} is in legacy eswitch mode; switchdev is required")]
    Legacy {
        /// VF.
        pci: PciAddress,
        /// PF.
        pf: PciAddress,
    },
    /// No representor.
    #[error("cannot find the representor of VF {pci}")]
    Representor {
        /// VF.
        pci: PciAddress,
        /// Cause.
        #[source]
        source: RepresentorError,
    },
}

impl ErrorCode for VfError {
    fn code(&self) -> u32 {
        match self {
            VfError::Unknown { .. } | VfError::NotAVf { .. } | VfError::Legacy { .. } => code::INVALID_CONFIG,
            _ => code::VF,
        }
    }
}

/// Resolves `pci` and checks it is a VF of a switchdev PF with a driver and a representor.
pub fn resolve(sysfs: &Sysfs, pci: &PciAddress) -> Result<VfInfo, VfError> {
    let f = sysfs.pci_function(pci).map_err(|source| match source {
        PciError::NotFound { .. } => VfError::Unknown { pci: *pci, source },
        source => VfError::Read { pci: *pci, source },
    })?;
    let (Some(pf), Some(_)) = (f.physfn, f.vf_index) else {
        return Err(VfError::NotAVf { pci: *pci });
    };
    let mode = sysfs.eswitch_mode(&pf);
    if matches!(mode, Ok(EswitchMode::Legacy)) {
        return Err(VfError::Legacy { pci: *pci, pf });
    }
    mode.map_err(|source| VfError::Eswitch {
        pci: *pci,
        pf,
        source,
    })?;
    let driver = f.driver.ok_or(VfError::NoDriver { pci: *pci })?;
    let rep = sysfs
        .representor(pci, RepresentorView::Host)
        .map_err(|source| VfError::Representor { pci: *pci, source })?;
    Ok(VfInfo {
        pci: *pci,
        driver,
        netdevs: f.netdevs,
        representor: rep.netdev,
    })
}
