//! PCI functions as sysfs shows them: identity, driver, NUMA node, IOMMU group,
//! SR-IOV capability, PF/VF relation and netdevs.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::address::PciAddress;
use crate::sysfs::{link_target_name, list_dir, read_attr, Sysfs};

/// SR-IOV capability of a PF (`sriov_totalvfs`, `sriov_numvfs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SriovCapability {
    /// Most VFs the device supports.
    pub total_vfs: u32,
    /// VFs currently enabled.
    pub num_vfs: u32,
}

/// One PCI function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciFunction {
    /// Its address.
    pub address: PciAddress,
    /// Vendor ID (`0x15b3` for Mellanox).
    pub vendor: u16,
    /// Device ID (`0x1018` for a ConnectX-5 VF).
    pub device: u16,
    /// Class code (`0x020000` for Ethernet).
    pub class: u32,
    /// Bound driver, `None` when unbound.
    pub driver: Option<String>,
    /// NUMA node, `None` when the platform reports `-1` or nothing.
    pub numa_node: Option<u32>,
    /// IOMMU group number, when the function has one.
    pub iommu_group: Option<u32>,
    /// SR-IOV capability, for functions that can have VFs.
    pub sriov: Option<SriovCapability>,
    /// The PF of a VF.
    pub physfn: Option<PciAddress>,
    /// The VF's index on its PF (`virtfn<N>` of the PF).
    pub vf_index: Option<u32>,
    /// The VFs of a PF, in `virtfn` order.
    pub vfs: Vec<PciAddress>,
    /// Netdev names under the function's `net/` (and `virtio<N>/net/` for
    /// virtio NICs), sorted. For a switchdev PF this includes the VF
    /// representors.
    pub netdevs: Vec<String>,
}

impl PciFunction {
    /// True for a virtual function.
    pub fn is_vf(&self) -> bool {
        self.physfn.is_some()
    }

    /// True for a PF with at least one VF enabled.
    pub fn has_vfs(&self) -> bool {
        !self.vfs.is_empty()
    }
}

/// Reading a PCI function failed.
#[derive(Debug, thiserror::Error)]
pub enum PciError {
    /// The function's directory does not exist.
    #[error("PCI device {address} not found under {}", path.display())]
    NotFound {
        /// The address asked for.
        address: PciAddress,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Listing `bus/pci/devices` failed.
    #[error("cannot list PCI devices in {}", path.display())]
    ListDevices {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file or link could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A required attribute file is missing.
    #[error("PCI device {address} has no {attribute} file")]
    MissingAttribute {
        /// The device.
        address: PciAddress,
        /// The attribute, e.g. `vendor`.
        attribute: &'static str,
    },
    /// An attribute holds something that is not what the kernel writes there.
    #[error("{} holds {value:?}, expected {expected}", path.display())]
    BadValue {
        /// The file.
        path: PathBuf,
        /// What it held.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

impl Sysfs {
    /// Every PCI function under `bus/pci/devices`, sorted by address.
    ///
    /// A function whose files cannot be read (a half-removed device, a
    /// garbage attribute) is skipped with a warning: one odd device must not
    /// hide the others.
    pub fn pci_functions(&self) -> Result<Vec<PciFunction>, PciError> {
        let dir = self.pci_devices_dir();
        let names = list_dir(&dir).map_err(|source| PciError::ListDevices {
            path: dir.clone(),
            source,
        })?;
        let mut functions = Vec::with_capacity(names.len());
        // Each VF's index comes from its PF's virtfn links; read them once per
        // PF, not once per VF (8 PFs x 127 VFs would read ~130k links).
        let mut virtfn_cache = HashMap::new();
        for name in names {
            let Ok(address) = name.parse::<PciAddress>() else {
                tracing::warn!(entry = %name, dir = %dir.display(), "skipping entry that is not a PCI address");
                continue;
            };
            match self.read_function(&address, &mut virtfn_cache) {
                Ok(function) => functions.push(function),
                // As an error value, so the subscriber prints its causes too.
                Err(error) => tracing::warn!(
                    %address,
                    error = &error as &dyn std::error::Error,
                    "skipping unreadable PCI device"
                ),
            }
        }
        functions.sort_by_key(|f| f.address);
        Ok(functions)
    }

    /// The PCI function at `address`.
    pub fn pci_function(&self, address: &PciAddress) -> Result<PciFunction, PciError> {
        self.read_function(address, &mut HashMap::new())
    }

    /// An optional attribute of the function at `address` (`acpi_index`,
    /// say), trimmed. `Ok(None)` when the file is missing, empty, or the
    /// kernel refuses the read as unsupported.
    pub fn pci_attr(&self, address: &PciAddress, attribute: &str) -> Result<Option<String>, PciError> {
        let value = read_attr_at(&self.pci_device_dir(address).join(attribute))?;
        Ok(value.filter(|v| !v.is_empty()))
    }

    /// Names of the RDMA devices of the function at `address` (entries of
    /// its `infiniband/` directory, e.g. `mlx5_2`); empty when it has none.
    pub fn rdma_devices(&self, address: &PciAddress) -> Result<Vec<String>, PciError> {
        list_entries(&self.pci_device_dir(address).join("infiniband"))
    }

    fn read_function(
        &self,
        address: &PciAddress,
        virtfn_cache: &mut HashMap<PciAddress, Vec<(u32, PciAddress)>>,
    ) -> Result<PciFunction, PciError> {
        let dir = self.pci_device_dir(address);
        if !dir.exists() {
            return Err(PciError::NotFound {
                address: *address,
                path: dir,
            });
        }
        // One listing serves both the `virtfn` links and the virtio netdevs.
        let entries = list_entries(&dir)?;
        let own_virtfns = virtfns(&dir, &entries)?;
        let vfs = own_virtfns.iter().map(|(_, vf)| *vf).collect();
        if !own_virtfns.is_empty() {
            // This PF's VFs, listed after it, find their index here.
            virtfn_cache.entry(*address).or_insert(own_virtfns);
        }
        let physfn = read_link_address(&dir.join("physfn"))?;
        let vf_index = match physfn {
            Some(pf) => {
                let vfs = match virtfn_cache.entry(pf) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let pf_dir = self.pci_device_dir(&pf);
                        e.insert(virtfns(&pf_dir, &list_entries(&pf_dir)?)?)
                    }
                };
                vfs.iter().find(|(_, vf)| vf == address).map(|(index, _)| *index)
            }
            None => None,
        };
        let sriov = match read_attr_at(&dir.join("sriov_totalvfs"))? {
            Some(total) => Some(SriovCapability {
                total_vfs: parse_u32(&dir.join("sriov_totalvfs"), &total)?,
                num_vfs: match read_attr_at(&dir.join("sriov_numvfs"))? {
                    Some(n) => parse_u32(&dir.join("sriov_numvfs"), &n)?,
                    None => 0,
                },
            }),
            None => None,
        };
        Ok(PciFunction {
            address: *address,
            vendor: required_id(&dir, address, "vendor")?,
            device: required_id(&dir, address, "device")?,
            class: match read_attr_at(&dir.join("class"))? {
                Some(v) => parse_hex(&dir.join("class"), &v)?,
                None => 0,
            },
            driver: link_target_name(&dir.join("driver")).map_err(read_error(&dir.join("driver")))?,
            numa_node: numa_node(&dir.join("numa_node"))?,
            iommu_group: match link_target_name(&dir.join("iommu_group"))
                .map_err(read_error(&dir.join("iommu_group")))?
            {
                Some(group) => Some(parse_u32(&dir.join("iommu_group"), &group)?),
                None => None,
            },
            sriov,
            physfn,
            vf_index,
            vfs,
            netdevs: netdevs_of(&dir, &entries)?,
        })
    }
}

/// `virtfnN` links among a PF directory's `entries`, sorted by N. Links whose
/// target is not a PCI address are skipped.
fn virtfns(dir: &Path, entries: &[String]) -> Result<Vec<(u32, PciAddress)>, PciError> {
    let mut vfs = Vec::new();
    for name in entries {
        let Some(index) = name.strip_prefix("virtfn").and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(address) = read_link_address(&dir.join(name))? {
            vfs.push((index, address));
        }
    }
    vfs.sort();
    Ok(vfs)
}

/// Netdev names of the function: under `net/`, and for virtio NICs under
/// `virtio<N>/net/` (the netdev hangs off the virtio device, not the PCI
/// function), so a virtio NIC holding the default route is still recognised.
fn netdevs_of(dir: &Path, entries: &[String]) -> Result<Vec<String>, PciError> {
    let mut names = list_entries(&dir.join("net"))?;
    for entry in entries.iter().filter(|e| e.starts_with("virtio")) {
        names.extend(list_entries(&dir.join(entry).join("net"))?);
    }
    names.sort();
    Ok(names)
}

fn list_entries(dir: &Path) -> Result<Vec<String>, PciError> {
    list_dir(dir).map_err(read_error(dir))
}

fn read_link_address(path: &Path) -> Result<Option<PciAddress>, PciError> {
    match link_target_name(path).map_err(read_error(path))? {
        Some(name) => name.parse().map(Some).map_err(|_| PciError::BadValue {
            path: path.to_path_buf(),
            value: name,
            expected: "a link to a PCI address",
        }),
        None => Ok(None),
    }
}

fn read_attr_at(path: &Path) -> Result<Option<String>, PciError> {
    read_attr(path).map_err(read_error(path))
}

/// A 16-bit hexadecimal ID file (`vendor`, `device`) that must exist.
fn required_id(dir: &Path, address: &PciAddress, attribute: &'static str) -> Result<u16, PciError> {
    let path = dir.join(attribute);
    let value = read_attr_at(&path)?.ok_or(PciError::MissingAttribute {
        address: *address,
        attribute,
    })?;
    u16::try_from(parse_hex(&path, &value)?).map_err(|_| PciError::BadValue {
        path,
        value,
        expected: "a 16-bit hexadecimal ID",
    })
}

fn numa_node(path: &Path) -> Result<Option<u32>, PciError> {
    match read_attr_at(path)? {
        None => Ok(None),
        Some(v) if v == "-1" => Ok(None),
        Some(v) => parse_u32(path, &v).map(Some),
    }
}

fn parse_hex(path: &Path, value: &str) -> Result<u32, PciError> {
    let digits = value.strip_prefix("0x").unwrap_or(value);
    u32::from_str_radix(digits, 16).map_err(|_| PciError::BadValue {
        path: path.to_path_buf(),
        value: value.to_string(),
        expected: "a hexadecimal number",
    })
}

fn parse_u32(path: &Path, value: &str) -> Result<u32, PciError> {
    value.parse().map_err(|_| PciError::BadValue {
        path: path.to_path_buf(),
        value: value.to_string(),
        expected: "a decimal number",
    })
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> PciError + '_ {
    move |source| PciError::Read {
        path: path.to_path_buf(),
        source,
    }
}
