//! Which PFs and VFs the doctor looks at: with a sriovdp config, the PFs whose VFs a resource
//! selects (the pool decides the driver a VF must have); without one, every SR-IOV PF.

use std::collections::BTreeMap;

use sriov_host::{PciAddress, PciError, PciFunction, Sysfs};
use sriovdp_config::{Candidate, Config, Selector};

/// The pool a VF belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// `<prefix>/<name>`.
    pub resource: String,
    /// Drivers the selector accepts (empty: any).
    pub drivers: Vec<String>,
}

/// A VF to check.
#[derive(Clone, Debug)]
pub struct VfTarget {
    /// The VF.
    pub function: PciFunction,
    /// Its pool (`None` without a config).
    pub pool: Option<Pool>,
}

/// A PF to check, with its VFs that matter.
#[derive(Clone, Debug)]
pub struct PfTarget {
    /// The PF.
    pub function: PciFunction,
    /// Its netdev: the uplink representor in switchdev mode, else its first netdev.
    pub netdev: Option<String>,
    /// VFs to check (all of them without a config; the pooled ones with one).
    pub vfs: Vec<VfTarget>,
    /// VFs its `virtfn` links name whose own sysfs entry could not be read (skipped by the
    /// PCI listing): reported, never silently dropped.
    pub unreadable: Vec<PciAddress>,
}

impl PfTarget {
    /// Where its `sriov_numvfs` is written, as the guide spells it.
    pub fn numvfs_path(&self) -> String {
        match &self.netdev {
            Some(n) => format!("/sys/class/net/{n}/device/sriov_numvfs"),
            None => format!("/sys/bus/pci/devices/{}/sriov_numvfs", self.function.address),
        }
    }

    /// `0000:84:00.0 (enp132s0f0np0)`.
    pub fn label(&self) -> String {
        match &self.netdev {
            Some(n) => format!("{} ({n})", self.function.address),
            None => self.function.address.to_string(),
        }
    }
}

/// Listing PCI functions failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list PCI functions under {}", root.display())]
pub struct ScopeError {
    /// The sysfs root.
    pub root: std::path::PathBuf,
    /// The cause.
    #[source]
    pub source: PciError,
}

/// The PFs (and VFs) to check.
pub fn targets(sysfs: &Sysfs, config: Option<&Config>) -> Result<Vec<PfTarget>, ScopeError> {
    let functions = sysfs.pci_functions().map_err(|source| ScopeError {
        root: sysfs.root().to_path_buf(),
        source,
    })?;
    let mut pfs: BTreeMap<PciAddress, PfTarget> = functions
        .iter()
        .filter(|f| f.sriov.is_some())
        .map(|f| {
            let netdev = sysfs
                .uplink_of(f)
                .ok()
                .map(|u| u.netdev)
                .or_else(|| f.netdevs.first().cloned());
            (
                f.address,
                PfTarget {
                    function: f.clone(),
                    netdev,
                    vfs: Vec::new(),
                    unreadable: f
                        .vfs
                        .iter()
                        .filter(|vf| !functions.iter().any(|g| g.address == **vf))
                        .copied()
                        .collect(),
                },
            )
        })
        .collect();
    for vf in functions.iter().filter(|f| f.is_vf()) {
        let Some(pf) = vf.physfn.and_then(|a| pfs.get_mut(&a)) else {
            continue;
        };
        // With a config, a VF no resource pools is not checked.
        let pool = match config.map(|config| pool_of(sysfs, config, vf, pf)) {
            Some(None) => continue,
            pool => pool.flatten(),
        };
        pf.vfs.push(VfTarget {
            function: vf.clone(),
            pool,
        });
    }
    Ok(pfs
        .into_values()
        .filter(|pf| match config {
            None => true,
            Some(config) => !pf.vfs.is_empty() || names_pf(config, pf) || would_pool(sysfs, config, pf),
        })
        .collect())
}

/// A PF with no VFs at all (`sriov_numvfs` 0, the usual state after a reboot) whose VFs a
/// selector would pool once created: matched on what a VF would inherit from it (vendor, the
/// VF device ID of `sriov_vf_device`, link type), so the doctor reports the missing VFs
/// instead of skipping the PF.
fn would_pool(sysfs: &Sysfs, config: &Config, pf: &PfTarget) -> bool {
    if !pf.function.vfs.is_empty() {
        return false;
    }
    let address = pf.function.address;
    let vf_device = sysfs
        .pci_attr(&address, "sriov_vf_device")
        .ok()
        .flatten()
        .and_then(|d| u16::from_str_radix(d.trim_start_matches("0x"), 16).ok());
    let candidate = Candidate {
        address,
        vendor: pf.function.vendor,
        device: vf_device.unwrap_or(pf.function.device),
        driver: None,
        acpi_index: None,
        pf_address: address,
        pf_name: pf.netdev.clone(),
        vf_index: None,
        link_type: link_type(sysfs, pf),
        is_rdma: false,
    };
    config
        .resources
        .iter()
        .flat_map(|r| &r.selectors)
        .any(|selector| {
            // Keys only an existing VF has (its address, driver, ACPI index, RDMA device) cannot
            // rule it out; nor can `devices` when the kernel does not say the VF device ID.
            let hypothetical = Selector {
                drivers: Vec::new(),
                pci_addresses: Vec::new(),
                acpi_indexes: Vec::new(),
                is_rdma: false,
                devices: vf_device.map_or(Vec::new(), |_| selector.devices.clone()),
                ..selector.clone()
            };
            selector.pf_names.is_empty()
                && selector.root_devices.is_empty()
                && hypothetical.matches(&candidate)
        })
}

/// The PF netdev's link type as selectors spell it (`ether`, `infiniband`).
fn link_type(sysfs: &Sysfs, pf: &PfTarget) -> Option<String> {
    pf.netdev
        .as_deref()
        .and_then(|n| sysfs.netdev_attr(n, "type").ok().flatten())
        .map(|t| match t.as_str() {
            "1" => "ether".to_string(),
            "32" => "infiniband".to_string(),
            _ => t,
        })
}

/// The first resource whose selector matches `vf` on every key but `drivers` (the driver is
/// what the doctor checks, so an unbound VF must still land in its pool).
fn pool_of(sysfs: &Sysfs, config: &Config, vf: &PciFunction, pf: &PfTarget) -> Option<Pool> {
    let candidate = Candidate {
        address: vf.address,
        vendor: vf.vendor,
        device: vf.device,
        driver: vf.driver.clone(),
        acpi_index: sysfs.pci_attr(&vf.address, "acpi_index").ok().flatten(),
        pf_address: pf.function.address,
        pf_name: pf.netdev.clone(),
        vf_index: vf.vf_index,
        link_type: link_type(sysfs, pf),
        is_rdma: sysfs.rdma_devices(&vf.address).is_ok_and(|d| !d.is_empty()),
    };
    config.resources.iter().find_map(|resource| {
        resource.selectors.iter().find_map(|selector| {
            let any_driver = Selector {
                drivers: Vec::new(),
                ..selector.clone()
            };
            any_driver.matches(&candidate).then(|| Pool {
                resource: resource.full_name(),
                drivers: selector.drivers.clone(),
            })
        })
    })
}

/// A PF named by a selector's `pfNames`/`rootDevices` matters even with no VFs yet.
fn names_pf(config: &Config, pf: &PfTarget) -> bool {
    let address = &pf.function.address;
    let name = pf.netdev.as_deref();
    config.resources.iter().flat_map(|r| &r.selectors).any(|s| {
        s.pf_names
            .iter()
            .chain(&s.root_devices)
            .any(|p| p.matches(name, address, None) || p.matches(name, address, Some(0)))
    })
}
