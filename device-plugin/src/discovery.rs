//! Finds the devices each configured resource offers (the rules are in the README), reading
//! sysfs through the host model.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use sriov_host::{PciAddress, PciError, PciFunction, RdmaCharDevices, RdmaIndex, RepresentorView, Sysfs};

use sriovdp_config::{Candidate, Config};

use crate::rdma::RdmaMemory;
use crate::topology;

/// A device as the plugin serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// PCI address; the kubelet's device ID.
    pub address: PciAddress,
    /// The PF of a VF; `None` for a PF offered itself.
    pub pf_address: Option<PciAddress>,
    /// Index of a VF on its PF.
    pub vf_index: Option<u32>,
    /// NUMA node.
    pub numa_node: Option<u32>,
    /// Bound driver.
    pub driver: Option<String>,
    /// IOMMU group (for `vfio-pci` device nodes).
    pub iommu_group: Option<u32>,
    /// Netdev whose link state decides health: the PF uplink for a VF, the
    /// function's own netdev for a PF.
    pub uplink: Option<String>,
    /// The VF's representor in the host namespace, when the eswitch has one.
    pub representor: Option<String>,
    /// The representor's interface index when discovered: the CNI renames
    /// representors (`<container>_h`), and a static sysfs tree keeps the old
    /// name, so health follows the index as well as the name.
    pub representor_ifindex: Option<u32>,
    /// Add `/dev/vhost-net` and `/dev/net/tun` at allocation.
    pub need_vhost_net: bool,
    /// RDMA devices and their character devices, for devices of an
    /// `isRdma` selector (empty otherwise).
    pub rdma: Vec<RdmaCharDevices>,
    /// The SR-IOV VF LAG bond the uplink is enslaved to (sysfs `master`
    /// with a `bonding/mode` of active-backup, balance-xor or 802.3ad):
    /// while netlink confirms the uplink's master, health follows the bond.
    pub vf_lag_bond: Option<String>,
    /// A VF of a BlueField PF in DPU mode: its representors live on the
    /// DPU's Arm cores, so health follows the uplink (or bond) alone.
    pub dpu_host: bool,
}

impl DeviceRecord {
    /// True for a VF (health then also needs its representor).
    pub fn is_vf(&self) -> bool {
        self.pf_address.is_some()
    }
}

/// Discovery failed as a whole (single unreadable devices are skipped).
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// `bus/pci/devices` could not be listed.
    #[error("cannot list PCI functions under {}", root.display())]
    ListFunctions {
        /// The sysfs root.
        root: PathBuf,
        /// The cause.
        #[source]
        source: PciError,
    },
}

/// Per-PF facts shared by its VFs.
#[derive(Default)]
struct PfFacts {
    /// The PF's netdev: its uplink representor in switchdev mode, else its
    /// first netdev. VFs' health follows it.
    name: Option<String>,
    link_type: Option<String>,
    /// VF index -> representor and its interface index, from the PF's own
    /// netdevs.
    representors: HashMap<u32, (String, Option<u32>)>,
    switchdev: bool,
    /// VF LAG bond of the PF netdev.
    vf_lag_bond: Option<String>,
    /// BlueField PF without any VF representor here: DPU mode.
    dpu_host: bool,
}

/// What one discovery pass found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovered {
    /// Devices per resource, in the order of `config.resources`.
    pub resources: Vec<Vec<DeviceRecord>>,
    /// sysfs directories of SR-IOV PFs (their `virtfnN` links and
    /// `sriov_numvfs` change when VFs come and go).
    pub pf_dirs: Vec<PathBuf>,
    /// sysfs directories of every offerable device (its `driver` link
    /// changes on bind/unbind).
    pub device_dirs: Vec<PathBuf>,
}

/// Finds the devices of every resource of `config`.
///
/// `excluded_netdevs` are netdevs that must never be offered (the one with
/// the IPv4 default route). `rdma` is kept across calls: a VF whose RDMA
/// device left the host's sysfs (exclusive RDMA netns mode, VF in a pod)
/// stays in its `isRdma` pool.
pub fn discover(
    sysfs: &Sysfs,
    config: &Config,
    excluded_netdevs: &HashSet<String>,
    rdma: &mut RdmaMemory,
) -> Result<Discovered, DiscoveryError> {
    let functions = read_functions(sysfs)?;
    let mut found = discover_from(sysfs, &functions, config, rdma);
    exclude_netdevs(&mut found, &functions, excluded_netdevs);
    Ok(found)
}

/// Every PCI function of `sysfs`: the bulk of discovery's reads, which need
/// neither the config nor netlink (start-up runs them while netlink dumps).
pub fn read_functions(sysfs: &Sysfs) -> Result<Vec<PciFunction>, DiscoveryError> {
    sysfs
        .pci_functions()
        .map_err(|source| DiscoveryError::ListFunctions {
            root: sysfs.root().to_path_buf(),
            source,
        })
}

/// [`discover`] on `functions` already read by [`read_functions`],
/// before [`exclude_netdevs`]: it needs nothing from netlink, so start-up
/// runs it while netlink dumps links and routes.
pub fn discover_from(
    sysfs: &Sysfs,
    functions: &[PciFunction],
    config: &Config,
    rdma: &mut RdmaMemory,
) -> Discovered {
    let by_address: HashMap<PciAddress, &PciFunction> = functions.iter().map(|f| (f.address, f)).collect();
    let mut found = Discovered::default();
    let mut pf_facts: HashMap<PciAddress, PfFacts> = HashMap::new();
    let mut candidates = Vec::new();
    for function in functions {
        if function.sriov.is_some() {
            found.pf_dirs.push(sysfs.pci_device_dir(&function.address));
        }
        if !offerable(function) {
            continue;
        }
        found.device_dirs.push(sysfs.pci_device_dir(&function.address));
        let pf_address = function.physfn.unwrap_or(function.address);
        let facts = pf_facts
            .entry(pf_address)
            .or_insert_with(|| match by_address.get(&pf_address) {
                Some(pf) => pf_facts_of(sysfs, pf),
                None => PfFacts::default(),
            });
        let (mut candidate, record) = build_candidate(sysfs, function, facts);
        candidate.is_rdma |= rdma.remembers(&function.address, function.driver.as_deref());
        candidates.push((candidate, record));
    }
    rdma.retain(&by_address.keys().copied().collect());

    let wants_rdma = config
        .resources
        .iter()
        .flat_map(|r| &r.selectors)
        .any(|s| s.is_rdma);
    let rdma_index = match wants_rdma.then(|| sysfs.rdma_index()) {
        Some(Err(error)) => {
            tracing::warn!(error = %sriov_logging::error_chain(&error), "cannot read the RDMA character devices; isRdma devices get none");
            RdmaIndex::default()
        }
        read => read.and_then(Result::ok).unwrap_or_default(),
    };
    let mut taken: HashSet<PciAddress> = HashSet::new();
    for resource in &config.resources {
        let mut devices = Vec::new();
        // No selector selects nothing (validation rejects that config);
        // only an explicit `{}` matches every device.
        for selector in &resource.selectors {
            for (candidate, record) in &candidates {
                if taken.contains(&candidate.address) || !selector.matches(candidate) {
                    continue;
                }
                taken.insert(candidate.address);
                devices.push(DeviceRecord {
                    need_vhost_net: selector.need_vhost_net,
                    rdma: if selector.is_rdma {
                        rdma.devices_of(
                            sysfs,
                            &rdma_index,
                            &candidate.address,
                            candidate.driver.as_deref(),
                        )
                    } else {
                        Vec::new()
                    },
                    ..record.clone()
                });
            }
        }
        devices.sort_by_key(|d| d.address);
        if devices.is_empty() {
            tracing::warn!(resource = %resource.full_name(), "no device matches the resource's selectors; serving it with zero devices");
        }
        found.resources.push(devices);
    }
    found
}

/// Removes from every resource the devices with a netdev in
/// `excluded_netdevs` (the IPv4 default route's). The same as never offering
/// them: a device is taken by one resource at most, so removing it from
/// that one gives no other resource a different device.
pub fn exclude_netdevs(
    found: &mut Discovered,
    functions: &[PciFunction],
    excluded_netdevs: &HashSet<String>,
) {
    if excluded_netdevs.is_empty() {
        return;
    }
    let excluded: HashMap<PciAddress, &String> = functions
        .iter()
        .filter_map(|f| {
            let name = f.netdevs.iter().find(|n| excluded_netdevs.contains(*n))?;
            Some((f.address, name))
        })
        .collect();
    for devices in &mut found.resources {
        devices.retain(|device| match excluded.get(&device.address) {
            Some(name) => {
                tracing::info!(address = %device.address, netdev = %name, "not offering the device holding the default route");
                false
            }
            None => true,
        });
    }
}

/// Network functions (class 0x02, or unknown class) that are not PFs with VFs.
fn offerable(function: &PciFunction) -> bool {
    let network = function.class == 0 || function.class >> 16 == 0x02;
    network && !function.has_vfs()
}

fn pf_facts_of(sysfs: &Sysfs, pf: &PciFunction) -> PfFacts {
    let uplink = sysfs.uplink_of(pf).ok();
    let name = uplink
        .as_ref()
        .map(|u| u.netdev.clone())
        .or_else(|| pf.netdevs.first().cloned());
    // One pass over the PF's own netdevs instead of a class/net search per VF.
    let representors = match &uplink {
        Some(_) => sysfs
            .pf_representors_of(pf, RepresentorView::Host)
            .map(|reps| {
                reps.into_iter()
                    .map(|(vf, r)| (vf, (r.netdev, r.ifindex)))
                    .collect()
            })
            .unwrap_or_default(),
        None => HashMap::new(),
    };
    let dpu_host = pf.has_vfs() && representors.is_empty() && topology::is_bluefield(pf);
    PfFacts {
        link_type: name
            .as_deref()
            .and_then(|n| sysfs.netdev_attr(n, "type").ok().flatten())
            .map(|t| link_type_name(&t)),
        vf_lag_bond: name.as_deref().and_then(|n| topology::vf_lag_bond(sysfs, n)),
        name,
        representors,
        switchdev: uplink.is_some(),
        dpu_host,
    }
}

fn build_candidate(sysfs: &Sysfs, function: &PciFunction, facts: &PfFacts) -> (Candidate, DeviceRecord) {
    let representor = match (function.vf_index, facts.switchdev) {
        (Some(index), true) => facts.representors.get(&index).cloned().or_else(|| {
            // Not under the PF's net/: fall back to searching the switch.
            sysfs
                .representor(&function.address, RepresentorView::Host)
                .map(|r| (r.netdev, r.ifindex))
                .ok()
        }),
        _ => None,
    };
    let (representor, representor_ifindex) = representor.unzip();
    // The netdev a selector's `pfNames` matches and health follows.
    let pf_netdev = if function.is_vf() {
        facts.name.clone()
    } else {
        function.netdevs.first().cloned()
    };
    let candidate = Candidate {
        address: function.address,
        vendor: function.vendor,
        device: function.device,
        driver: function.driver.clone(),
        acpi_index: function.acpi_index.clone(),
        pf_address: function.physfn.unwrap_or(function.address),
        pf_name: pf_netdev.clone(),
        vf_index: function.vf_index,
        link_type: facts.link_type.clone(),
        is_rdma: !function.rdma_devices.is_empty(),
    };
    let record = DeviceRecord {
        address: function.address,
        pf_address: function.physfn,
        vf_index: function.vf_index,
        numa_node: function.numa_node,
        driver: function.driver.clone(),
        iommu_group: function.iommu_group,
        uplink: pf_netdev,
        representor_ifindex: representor_ifindex.flatten(),
        representor,
        need_vhost_net: false,
        rdma: Vec::new(),
        vf_lag_bond: facts.vf_lag_bond.clone(),
        dpu_host: function.is_vf() && facts.dpu_host,
    };
    (candidate, record)
}

/// `ARPHRD_*` number of `class/net/<if>/type` to the name `linkTypes` uses.
fn link_type_name(number: &str) -> String {
    match number {
        "1" => "ether".to_string(),
        "32" => "infiniband".to_string(),
        other => other.to_string(),
    }
}
