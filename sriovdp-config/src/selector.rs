//! A validated selector and the facts about a device it is matched against.
//!
//! Keys are AND'ed; the values of one key are OR'ed; an empty key does not
//! filter.

use sriov_host::PciAddress;

use crate::range::PfSelector;

/// What a selector can ask about a device (a VF, or a PF without VFs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The device's address.
    pub address: PciAddress,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Bound driver.
    pub driver: Option<String>,
    /// Content of the device's `acpi_index`.
    pub acpi_index: Option<String>,
    /// The PF's address (the device itself when it is not a VF).
    pub pf_address: PciAddress,
    /// The PF's netdev name, when it has one.
    pub pf_name: Option<String>,
    /// VF index on the PF (`None` for a PF).
    pub vf_index: Option<u32>,
    /// Link type of the PF's netdev (`ether`, `infiniband`).
    pub link_type: Option<String>,
    /// True when the device has an RDMA (`infiniband/`) device.
    pub is_rdma: bool,
}

/// One validated selector object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// Vendor IDs.
    pub vendors: Vec<u16>,
    /// Device IDs.
    pub devices: Vec<u16>,
    /// Driver names.
    pub drivers: Vec<String>,
    /// Device addresses.
    pub pci_addresses: Vec<PciAddress>,
    /// ACPI indexes.
    pub acpi_indexes: Vec<String>,
    /// PFs by name or address, with optional VF ranges.
    pub pf_names: Vec<PfSelector>,
    /// PFs by address, with optional VF ranges.
    pub root_devices: Vec<PfSelector>,
    /// Link types, lower case.
    pub link_types: Vec<String>,
    /// Only devices with RDMA.
    pub is_rdma: bool,
    /// Devices matched by this selector also get `/dev/vhost-net` and `/dev/net/tun`.
    pub need_vhost_net: bool,
}

impl Selector {
    /// Does the device satisfy every key of this selector?
    pub fn matches(&self, c: &Candidate) -> bool {
        any_or_empty(&self.vendors, |v| *v == c.vendor)
            && any_or_empty(&self.devices, |d| *d == c.device)
            && any_or_empty(&self.drivers, |d| c.driver.as_deref() == Some(d.as_str()))
            && any_or_empty(&self.pci_addresses, |a| *a == c.address)
            && any_or_empty(&self.acpi_indexes, |i| {
                c.acpi_index.as_deref() == Some(i.as_str())
            })
            && any_or_empty(&self.pf_names, |p| {
                p.matches(c.pf_name.as_deref(), &c.pf_address, c.vf_index)
            })
            && any_or_empty(&self.root_devices, |p| p.matches(None, &c.pf_address, c.vf_index))
            && any_or_empty(&self.link_types, |t| {
                c.link_type.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(t))
            })
            && (!self.is_rdma || c.is_rdma)
    }
}

fn any_or_empty<T>(values: &[T], pred: impl Fn(&T) -> bool) -> bool {
    values.is_empty() || values.iter().any(pred)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vf() -> Candidate {
        Candidate {
            address: "0000:84:00.3".parse().unwrap(),
            vendor: 0x15b3,
            device: 0x1018,
            driver: Some("mlx5_core".into()),
            acpi_index: None,
            pf_address: "0000:84:00.0".parse().unwrap(),
            pf_name: Some("ens1f0np0".into()),
            vf_index: Some(1),
            link_type: Some("ether".into()),
            is_rdma: false,
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(Selector::default().matches(&vf()));
    }

    #[test]
    fn keys_are_anded_and_values_ored() {
        let s = Selector {
            vendors: vec![0x8086, 0x15b3],
            drivers: vec!["vfio-pci".into(), "mlx5_core".into()],
            ..Selector::default()
        };
        assert!(s.matches(&vf()));
        let s = Selector {
            vendors: vec![0x15b3],
            devices: vec![0x101e],
            ..Selector::default()
        };
        assert!(!s.matches(&vf()));
    }

    #[test]
    fn pf_names_root_devices_link_types_and_rdma() {
        let s = Selector {
            pf_names: vec![PfSelector::parse("ENS1F0NP0#1", false).unwrap()],
            root_devices: vec![PfSelector::parse("0000:84:00.0#0-3", true).unwrap()],
            link_types: vec!["ETHER".into()],
            ..Selector::default()
        };
        assert!(s.matches(&vf()));
        let rdma = Selector {
            is_rdma: true,
            ..Selector::default()
        };
        assert!(!rdma.matches(&vf()));
        assert!(rdma.matches(&Candidate {
            is_rdma: true,
            ..vf()
        }));
        let unbound = Selector {
            drivers: vec!["mlx5_core".into()],
            ..Selector::default()
        };
        assert!(!unbound.matches(&Candidate { driver: None, ..vf() }));
    }
}
