//! The layout of a simulated node: PCI functions, netdev names and switch IDs, planned from a spec.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::addr::Numbering;
use crate::spec::{Model, RepresentorNaming, SimNodeSpec, VfDriver};
use sriov_host::EswitchMode;
use sriov_host::PciAddress;

/// A netdev of the simulated node: its name and, once created, its ifindex and MAC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Netdev {
    /// Interface name.
    pub name: String,
    /// Kernel ifindex (0 until the link exists).
    pub ifindex: u32,
    /// MAC address as `aa:bb:cc:dd:ee:ff` (empty until the link exists).
    pub mac: String,
}

impl Netdev {
    fn planned(name: String) -> Netdev {
        Netdev {
            name,
            ifindex: 0,
            mac: String::new(),
        }
    }
}

/// One virtual function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfLayout {
    /// Index of the owning PF in [`Layout::pfs`].
    pub pf_index: u32,
    /// VF index (`virtfn<N>`).
    pub vf_index: u32,
    /// PCI address of the VF.
    pub pci: PciAddress,
    /// Driver name (`mlx5_core`, `vfio-pci`), `None` when unbound.
    pub driver: Option<String>,
    /// The VF netdev (one end of a veth, or a macvlan in legacy mode); `None` unless bound to mlx5_core.
    pub netdev: Option<Netdev>,
    /// The udev-like altname of the VF netdev, when asked for.
    pub altname: Option<String>,
    /// The representor netdev (other end of the veth, or a tap); `None` in legacy mode.
    pub representor: Option<Netdev>,
    /// The representor's `phys_port_name` (`pf0vf3`, `3`, `c1pf0vf3`).
    pub port_name: Option<String>,
    /// IOMMU group number.
    pub iommu_group: u32,
    /// The VF's RDMA device and the number of its character devices
    /// (`mlx5_<N>`, `uverbs<N>`, `umad<N>`, `issm<N>`), when simulated.
    #[serde(default)]
    pub rdma: Option<(String, u32)>,
}

impl VfLayout {
    /// Name of the VF netdev, if any.
    pub fn netdev_name(&self) -> Option<&str> {
        self.netdev.as_ref().map(|n| n.name.as_str())
    }

    /// Name of the representor, if any.
    pub fn representor_name(&self) -> Option<&str> {
        self.representor.as_ref().map(|n| n.name.as_str())
    }
}

/// One physical function (port).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PfLayout {
    /// Index of this PF on the node (0-based, across cards).
    pub index: u32,
    /// Card (0-based) this PF belongs to; each card is one PCI bus.
    pub card: u32,
    /// Port number on its card: the `P` of `p<P>` and `pf<P>vf<N>`.
    pub port: u32,
    /// PCI address of the PF.
    pub pci: PciAddress,
    /// The uplink netdev (PF netdev, `phys_port_name` `p<P>`).
    pub uplink: Netdev,
    /// The veth peer of the uplink: the "wire" a test can put on a bridge.
    pub wire: Netdev,
    /// `phys_switch_id` of the uplink and representors: one per card (both ports share it, like
    /// mlx5 on current kernels), one per PF with [`RepresentorNaming::Legacy`] (old kernels).
    pub switch_id: String,
    /// IOMMU group number.
    pub iommu_group: u32,
    /// The VFs of this PF in `virtfn` order.
    pub vfs: Vec<VfLayout>,
}

/// What a decoy PCI function stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecoyKind {
    /// A virtio NIC: its netdev hangs below `virtio0` and has no `phys_port_name`.
    VirtioNet,
    /// An NVMe controller: no network at all.
    Nvme,
}

/// A non-SR-IOV PCI function present to exercise discovery code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decoy {
    /// What it is.
    pub kind: DecoyKind,
    /// PCI address.
    pub pci: PciAddress,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Class code.
    pub class: u32,
    /// Bound driver.
    pub driver: String,
    /// Netdev name in the tree (sysfs only, no real link).
    pub netdev: Option<String>,
    /// IOMMU group number.
    pub iommu_group: u32,
}

/// The whole simulated node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Instance prefix.
    pub prefix: String,
    /// NIC model.
    pub model: Model,
    /// Eswitch mode of every PF.
    pub eswitch: EswitchMode,
    /// Representor naming scheme.
    pub naming: RepresentorNaming,
    /// NUMA node of every NIC function.
    pub numa_node: Option<u32>,
    /// Root of the simulated sysfs tree (export as `SRIOV_SYSFS_ROOT`).
    pub sysfs_root: PathBuf,
    /// Netns holding the links, `None` for the creator's netns.
    pub netns: Option<String>,
    /// PFs in order.
    pub pfs: Vec<PfLayout>,
    /// Non-SR-IOV functions.
    pub decoys: Vec<Decoy>,
}

impl Layout {
    /// Plans the layout of a validated spec (no links exist yet: ifindex 0, empty MACs).
    pub fn plan(spec: &SimNodeSpec) -> Layout {
        let p = &spec.prefix;
        let numbering = Numbering::new(spec.first_bus, spec.vfs_per_pf);
        let mut group = 16;
        let mut next_group = || {
            group += 1;
            group
        };
        let pfs = (0..spec.pfs)
            .map(|pf| {
                let port = numbering.port(pf);
                let card = numbering.card(pf);
                let pci = numbering.pf(pf);
                let iommu_group = next_group();
                let vfs = (0..spec.vfs_per_pf)
                    .map(|vf| {
                        let has_netdev = spec.vf_driver == VfDriver::Mlx5;
                        let switchdev = spec.eswitch == EswitchMode::Switchdev;
                        VfLayout {
                            pf_index: pf,
                            vf_index: vf,
                            pci: numbering.vf(pf, vf),
                            driver: spec.vf_driver.name().map(str::to_string),
                            netdev: has_netdev.then(|| Netdev::planned(format!("{p}p{pf}v{vf}"))),
                            altname: (has_netdev && spec.vf_altnames)
                                .then(|| format!("{p}enp{}s{}f{}v{vf}", pci.bus, pci.device, pci.function)),
                            representor: switchdev.then(|| Netdev::planned(format!("{p}p{pf}r{vf}"))),
                            port_name: switchdev.then(|| spec.naming.port_name(port, vf)),
                            iommu_group: next_group(),
                            // mlx5 probes the PFs first: they hold mlx5_0..; the VFs follow.
                            rdma: (spec.rdma && has_netdev).then(|| {
                                let n = spec.pfs + pf * spec.vfs_per_pf + vf;
                                (format!("mlx5_{n}"), n)
                            }),
                        }
                    })
                    .collect();
                PfLayout {
                    index: pf,
                    card,
                    port,
                    pci,
                    uplink: Netdev::planned(format!("{p}p{pf}")),
                    wire: Netdev::planned(format!("{p}w{pf}")),
                    // Current kernels derive the switch ID from the card's system image GUID
                    // (both ports share it); the old kernels that name representors by bare
                    // VF index used the PF's MAC, one switch per PF.
                    switch_id: match spec.naming {
                        RepresentorNaming::Legacy => switch_id(p, &[card, port]),
                        _ => switch_id(p, &[card]),
                    },
                    iommu_group,
                    vfs,
                }
            })
            .collect();
        Layout {
            prefix: p.clone(),
            model: spec.model,
            eswitch: spec.eswitch,
            naming: spec.naming,
            numa_node: spec.numa_node,
            sysfs_root: spec.sysfs_root.clone(),
            netns: spec.netns.clone(),
            pfs,
            decoys: decoys(p),
        }
    }

    /// Every VF of every PF, PF by PF.
    pub fn vfs(&self) -> impl Iterator<Item = &VfLayout> {
        self.pfs.iter().flat_map(|pf| pf.vfs.iter())
    }

    /// VF `vf` of PF `pf`.
    pub fn vf(&self, pf: u32, vf: u32) -> Option<&VfLayout> {
        self.pfs.get(pf as usize)?.vfs.get(vf as usize)
    }

    /// Mutable access to every real netdev (uplinks, wires, VF netdevs, representors).
    pub(crate) fn netdevs_mut(&mut self) -> impl Iterator<Item = &mut Netdev> {
        self.pfs.iter_mut().flat_map(|pf| {
            let vfs = pf
                .vfs
                .iter_mut()
                .flat_map(|vf| vf.netdev.iter_mut().chain(vf.representor.iter_mut()));
            [&mut pf.uplink, &mut pf.wire].into_iter().chain(vfs)
        })
    }

    /// Names of every real link the node creates (uplinks, wires, VF netdevs, representors).
    pub fn link_names(&self) -> Vec<String> {
        let netdevs = self.pfs.iter().flat_map(|pf| {
            let vfs = pf
                .vfs
                .iter()
                .flat_map(|vf| vf.netdev.iter().chain(&vf.representor));
            [&pf.uplink, &pf.wire].into_iter().chain(vfs)
        });
        netdevs.map(|n| n.name.clone()).collect()
    }
}

/// Whether `name` is one of the link names an instance with `prefix` creates
/// (`<prefix>p<P>`, `<prefix>w<P>`, `<prefix>p<P>v<N>`, `<prefix>p<P>r<N>`).
/// No name of another prefix matches, even when one prefix starts with the other.
pub fn is_instance_link(prefix: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(wire) = rest.strip_prefix('w') {
        return digits(wire);
    }
    let Some(rest) = rest.strip_prefix('p') else {
        return false;
    };
    match rest.split_once(['v', 'r']) {
        Some((pf, vf)) => digits(pf) && digits(vf),
        None => digits(rest),
    }
}

/// A 64-bit `phys_switch_id`, stable for a prefix (FNV-1a of prefix and `parts`).
fn switch_id(prefix: &str, parts: &[u32]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = parts.iter().flat_map(|p| p.to_le_bytes());
    for b in prefix.bytes().chain(bytes) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn decoys(prefix: &str) -> Vec<Decoy> {
    vec![
        Decoy {
            kind: DecoyKind::VirtioNet,
            pci: PciAddress::from_rid(0x0018),
            vendor: 0x1af4,
            device: 0x1041,
            class: 0x020000,
            driver: "virtio-pci".to_string(),
            netdev: Some(format!("{prefix}x0")),
            iommu_group: 1,
        },
        Decoy {
            kind: DecoyKind::Nvme,
            pci: PciAddress::from_rid(0x0020),
            vendor: 0x144d,
            device: 0xa808,
            class: 0x010802,
            driver: "nvme".to_string(),
            netdev: None,
            iommu_group: 2,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_names_within_ifnamsiz() {
        let spec = SimNodeSpec::new("abcdefghi", 8, 127).with_vf_altnames(true);
        let layout = Layout::plan(&spec);
        let names = layout.link_names();
        assert_eq!(names.len(), 8 * 2 + 8 * 127 * 2);
        assert!(names.iter().all(|n| n.len() <= 15 && n.starts_with("abcdefghi")));
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.iter().all(|n| is_instance_link("abcdefghi", n)));
    }

    #[test]
    fn instance_link_names_do_not_leak_across_prefixes() {
        assert!(is_instance_link("a", "ap0v3"));
        assert!(is_instance_link("a", "aw1"));
        assert!(!is_instance_link("a", "app0"));
        assert!(!is_instance_link("a", "ap0p0"));
        assert!(!is_instance_link("a", "ax0"));
        assert!(!is_instance_link("a", "ap"));
        assert!(!is_instance_link("ap", "ap0v3"));
    }

    #[test]
    fn ports_share_a_switch_id_unless_old_naming() {
        let layout = Layout::plan(&SimNodeSpec::new("sw", 3, 1));
        assert_eq!(layout.pfs[0].switch_id, layout.pfs[1].switch_id);
        assert_ne!(layout.pfs[0].switch_id, layout.pfs[2].switch_id);
        assert_eq!(layout.pfs[2].port, 0);
        let old = Layout::plan(&SimNodeSpec::new("sw", 2, 1).with_naming(RepresentorNaming::Legacy));
        assert_ne!(old.pfs[0].switch_id, old.pfs[1].switch_id);
    }

    #[test]
    fn legacy_and_vfio_leave_out_netdevs() {
        let legacy = Layout::plan(&SimNodeSpec::new("lg", 1, 2).with_eswitch(EswitchMode::Legacy));
        assert!(legacy
            .vfs()
            .all(|v| v.representor.is_none() && v.netdev.is_some()));
        let vfio = Layout::plan(&SimNodeSpec::new("vf", 1, 2).with_vf_driver(VfDriver::VfioPci));
        assert!(vfio.vfs().all(|v| v.representor.is_some() && v.netdev.is_none()));
    }
}
