//! Host model of switchdev SR-IOV NICs, read from sysfs.
//!
//! Both the device plugin and the CNI plugin need the same view of the host:
//! which PCI functions exist, which are PFs and VFs, how they relate, which
//! netdev represents a VF on the eswitch, and whether a PF's eswitch is in
//! `switchdev` mode. Everything here reads files below a configurable sysfs
//! root ([`Sysfs`]), so tests point it at a simulated tree. [`atomic`] is how both binaries
//! replace the files they write.

mod address;
pub mod atomic;
mod eswitch;
mod netdev;
mod pci;
mod port_name;
mod rdma;
mod representor;
mod sysfs;

pub use address::{PciAddress, PciAddressError};
pub use eswitch::{EswitchError, EswitchMode, UnknownEswitchMode};
pub use netdev::NetdevError;
pub use pci::{PciError, PciFunction, SriovCapability};
pub use port_name::{PhysPortName, PortNameError};
pub use rdma::{RdmaCharDevices, RdmaError, RdmaIndex, RDMA_DEV_DIR};
pub use representor::{Representor, RepresentorError, RepresentorView, Uplink};
pub use sysfs::{Sysfs, SYSFS_ROOT_ENV};
