//! PCI functions as sysfs shows them: identity, driver, NUMA node, IOMMU group,
//! SR-IOV capability, PF/VF relation and netdevs.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::address::PciAddress;
use crate::sysfs::{list_dir, read_attr, SysDir, Sysfs};

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
    /// The `acpi_index` attribute, when present and not empty.
    pub acpi_index: Option<String>,
    /// Names of the function's RDMA devices (entries of its `infiniband/`
    /// directory, e.g. `mlx5_2`); empty when it has none.
    pub rdma_devices: Vec<String>,
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
        let mut virtfn_cache = VirtfnCache::default();
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
        self.read_function(address, &mut VirtfnCache::default())
    }

    /// An optional attribute of the function at `address` (`acpi_index`,
    /// say), trimmed. `Ok(None)` when the file is missing, empty, or the
    /// kernel refuses the read as unsupported.
    pub fn pci_attr(&self, address: &PciAddress, attribute: &str) -> Result<Option<String>, PciError> {
        let path = self.pci_device_dir(address).join(attribute);
        let value = read_attr(&path).map_err(read_error(&path))?;
        Ok(value.filter(|v| !v.is_empty()))
    }

    /// Names of the RDMA devices of the function at `address` (entries of
    /// its `infiniband/` directory, e.g. `mlx5_2`); empty when it has none.
    pub fn rdma_devices(&self, address: &PciAddress) -> Result<Vec<String>, PciError> {
        let dir = self.pci_device_dir(address).join("infiniband");
        list_dir(&dir).map_err(read_error(&dir))
    }

    fn read_function(&self, address: &PciAddress, cache: &mut VirtfnCache) -> Result<PciFunction, PciError> {
        let path = self.pci_device_dir(address);
        let Some(dir) = SysDir::open(&path).map_err(read_error(&path))? else {
            return Err(PciError::NotFound {
                address: *address,
                path,
            });
        };
        let total_vfs = attr(&dir, "sriov_totalvfs")?;
        let vendor = required_id(&dir, address, "vendor")?;
        // Only a PF (its `virtfn` links) and a virtio NIC (its `virtio<N>`
        // directories) need the listing; for the others, a thousand VFs, an
        // absent entry costs one failed lookup, less than a listing.
        let listed = match total_vfs.is_some() || vendor == VIRTIO_VENDOR {
            true => Some(dir.entries().map_err(read_error(&path))?),
            false => None,
        };
        let has = |name: &str| {
            listed
                .as_ref()
                .is_none_or(|e| e.binary_search_by(|e| e.as_str().cmp(name)).is_ok())
        };
        let entries = listed.as_deref().unwrap_or_default();
        let own_virtfns = virtfns(&dir, entries)?;
        let vfs = own_virtfns.iter().map(|(_, vf)| *vf).collect();
        if !own_virtfns.is_empty() {
            // This PF's VFs, listed after it, find their PF and index here.
            cache.insert(*address, own_virtfns);
        }
        let (physfn, vf_index) = match has("physfn") {
            true => match cache.owner_of(address) {
                Some((pf, index)) => (Some(pf), Some(index)),
                None => match read_link_address(&dir, "physfn")? {
                    Some(pf) => (Some(pf), self.vf_index_on(&pf, address, cache)?),
                    None => (None, None),
                },
            },
            false => (None, None),
        };
        let sriov = match total_vfs {
            Some(total) => Some(SriovCapability {
                total_vfs: parse_u32(&dir.path().join("sriov_totalvfs"), &total)?,
                num_vfs: attr(&dir, "sriov_numvfs")?
                    .map_or(Ok(0), |n| parse_u32(&dir.path().join("sriov_numvfs"), &n))?,
            }),
            None => None,
        };
        let link = |name: &str| match has(name) {
            true => dir
                .link_target_name(name)
                .map_err(read_error(&dir.path().join(name))),
            false => Ok(None),
        };
        Ok(PciFunction {
            address: *address,
            vendor,
            device: required_id(&dir, address, "device")?,
            class: attr(&dir, "class")?.map_or(Ok(0), |v| parse_hex(&dir.path().join("class"), &v))?,
            driver: link("driver")?,
            numa_node: match has("numa_node") {
                true => numa_node(&dir)?,
                false => None,
            },
            iommu_group: link("iommu_group")?
                .map(|group| parse_u32(&dir.path().join("iommu_group"), &group))
                .transpose()?,
            sriov,
            physfn,
            vf_index,
            vfs,
            netdevs: netdevs_of(&dir, listed.as_deref())?,
            acpi_index: match has("acpi_index") {
                true => attr(&dir, "acpi_index")?.filter(|v| !v.is_empty()),
                false => None,
            },
            rdma_devices: match has("infiniband") {
                true => sub_entries(&dir, "infiniband")?,
                false => Vec::new(),
            },
        })
    }

    /// The index of VF `vf` on PF `pf`, from the PF's `virtfn` links (read
    /// once per PF).
    fn vf_index_on(
        &self,
        pf: &PciAddress,
        vf: &PciAddress,
        cache: &mut VirtfnCache,
    ) -> Result<Option<u32>, PciError> {
        if !cache.by_pf.contains_key(pf) {
            let path = self.pci_device_dir(pf);
            let links = match SysDir::open(&path).map_err(read_error(&path))? {
                Some(dir) => {
                    let entries = dir.entries().map_err(read_error(&path))?;
                    virtfns(&dir, &entries)?
                }
                None => Vec::new(),
            };
            cache.insert(*pf, links);
        }
        Ok(cache
            .owner_of(vf)
            .filter(|(owner, _)| owner == pf)
            .map(|(_, index)| index))
    }
}

/// PCI vendor ID of virtio devices.
const VIRTIO_VENDOR: u16 = 0x1af4;

/// Each PF's `virtfn` links, read once per PF, and the reverse map: a VF's PF
/// and index (so a VF listed after its PF needs no `physfn` readlink).
#[derive(Default)]
struct VirtfnCache {
    by_pf: HashMap<PciAddress, Vec<(u32, PciAddress)>>,
    owner: HashMap<PciAddress, (PciAddress, u32)>,
}

impl VirtfnCache {
    fn insert(&mut self, pf: PciAddress, links: Vec<(u32, PciAddress)>) {
        for (index, vf) in &links {
            self.owner.entry(*vf).or_insert((pf, *index));
        }
        self.by_pf.entry(pf).or_insert(links);
    }

    fn owner_of(&self, vf: &PciAddress) -> Option<(PciAddress, u32)> {
        self.owner.get(vf).copied()
    }
}

/// `virtfnN` links among a PF directory's `entries`, sorted by N. Links whose
/// target is not a PCI address are skipped.
fn virtfns(dir: &SysDir, entries: &[String]) -> Result<Vec<(u32, PciAddress)>, PciError> {
    let mut vfs = Vec::new();
    for name in entries {
        let Some(index) = name.strip_prefix("virtfn").and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(address) = read_link_address(dir, name)? {
            vfs.push((index, address));
        }
    }
    vfs.sort();
    Ok(vfs)
}

/// Netdev names of the function: under `net/`, and for virtio NICs under
/// `virtio<N>/net/` (the netdev hangs off the virtio device, not the PCI
/// function), so a virtio NIC holding the default route is still recognised.
/// `listed` is the function directory's listing, when it was read.
fn netdevs_of(dir: &SysDir, listed: Option<&[String]>) -> Result<Vec<String>, PciError> {
    let mut names = sub_entries(dir, "net")?;
    for entry in listed
        .unwrap_or_default()
        .iter()
        .filter(|e| e.starts_with("virtio"))
    {
        names.extend(sub_entries(dir, &format!("{entry}/net"))?);
    }
    names.sort();
    Ok(names)
}

/// Entries of the subdirectory `name` of `dir`; empty when it does not exist.
fn sub_entries(dir: &SysDir, name: &str) -> Result<Vec<String>, PciError> {
    let path = dir.path().join(name);
    match dir.open_at(name).map_err(read_error(&path))? {
        Some(sub) => sub.entries().map_err(read_error(&path)),
        None => Ok(Vec::new()),
    }
}

fn read_link_address(dir: &SysDir, name: &str) -> Result<Option<PciAddress>, PciError> {
    let path = dir.path().join(name);
    let Some(target) = dir.link_target_name(name).map_err(read_error(&path))? else {
        return Ok(None);
    };
    let address = target.parse();
    address
        .map(Some)
        .map_err(|_| bad_value(&path, &target, "a link to a PCI address"))
}

/// The attribute `name` of `dir`.
fn attr(dir: &SysDir, name: &str) -> Result<Option<String>, PciError> {
    dir.read_attr(name).map_err(read_error(&dir.path().join(name)))
}

/// A 16-bit hexadecimal ID file (`vendor`, `device`) that must exist.
fn required_id(dir: &SysDir, address: &PciAddress, attribute: &'static str) -> Result<u16, PciError> {
    let value = attr(dir, attribute)?.ok_or(PciError::MissingAttribute {
        address: *address,
        attribute,
    })?;
    let path = dir.path().join(attribute);
    u16::try_from(parse_hex(&path, &value)?).map_err(|_| bad_value(&path, &value, "a 16-bit hexadecimal ID"))
}

fn numa_node(dir: &SysDir) -> Result<Option<u32>, PciError> {
    let value = attr(dir, "numa_node")?.filter(|v| v != "-1");
    value
        .map(|v| parse_u32(&dir.path().join("numa_node"), &v))
        .transpose()
}

fn parse_hex(path: &Path, value: &str) -> Result<u32, PciError> {
    let digits = value.strip_prefix("0x").unwrap_or(value);
    u32::from_str_radix(digits, 16).map_err(|_| bad_value(path, value, "a hexadecimal number"))
}

fn parse_u32(path: &Path, value: &str) -> Result<u32, PciError> {
    value
        .parse()
        .map_err(|_| bad_value(path, value, "a decimal number"))
}

fn bad_value(path: &Path, value: &str, expected: &'static str) -> PciError {
    PciError::BadValue {
        path: path.to_path_buf(),
        value: value.to_string(),
        expected,
    }
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> PciError + '_ {
    move |source| PciError::Read {
        path: path.to_path_buf(),
        source,
    }
}
