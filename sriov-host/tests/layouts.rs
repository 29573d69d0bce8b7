//! The host model against hand-built sysfs trees shaped like real mlx5 hosts,
//! including the awkward parts (old and BlueField representor names, netdevs
//! without switch attributes, EOPNOTSUPP reads, garbage and dangling links).
//! The simulated node's own trees are covered in the workspace `tests/` crate.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use sriov_host::{
    EswitchError, EswitchMode, PciAddress, PciError, Representor, RepresentorError, RepresentorView, Sysfs,
};

/// A minimal sysfs tree writer for these tests.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let tree = Tree {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in [
            "bus/pci/devices",
            "bus/pci/drivers/mlx5_core",
            "bus/pci/drivers/vfio-pci",
            "class/net",
        ] {
            fs::create_dir_all(tree.root().join(d)).unwrap();
        }
        tree
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn sysfs(&self) -> Sysfs {
        Sysfs::new(self.root())
    }

    fn dev_dir(&self, bdf: &str) -> PathBuf {
        self.root().join("devices/pci0000:80/0000:80:08.0").join(bdf)
    }

    /// A PCI function with the given attribute files.
    fn function(&self, bdf: &str, vendor: &str, device: &str, driver: Option<&str>, numa: &str) {
        let dir = self.dev_dir(bdf);
        fs::create_dir_all(dir.join("net")).unwrap();
        fs::write(dir.join("vendor"), format!("{vendor}\n")).unwrap();
        fs::write(dir.join("device"), format!("{device}\n")).unwrap();
        fs::write(dir.join("class"), "0x020000\n").unwrap();
        fs::write(dir.join("numa_node"), format!("{numa}\n")).unwrap();
        if let Some(driver) = driver {
            symlink(
                format!("../../../../bus/pci/drivers/{driver}"),
                dir.join("driver"),
            )
            .unwrap();
        }
        symlink(
            format!("../../../devices/pci0000:80/0000:80:08.0/{bdf}"),
            self.root().join("bus/pci/devices").join(bdf),
        )
        .unwrap();
    }

    fn pf(&self, bdf: &str, totalvfs: u32, numvfs: u32) {
        self.function(bdf, "0x15b3", "0x1017", Some("mlx5_core"), "0");
        let dir = self.dev_dir(bdf);
        fs::write(dir.join("sriov_totalvfs"), format!("{totalvfs}\n")).unwrap();
        fs::write(dir.join("sriov_numvfs"), format!("{numvfs}\n")).unwrap();
        fs::create_dir_all(self.root().join("kernel/iommu_groups/7")).unwrap();
        symlink("../../../../kernel/iommu_groups/7", dir.join("iommu_group")).unwrap();
    }

    fn vf(&self, bdf: &str, pf: &str, index: u32, driver: Option<&str>) {
        self.function(bdf, "0x15b3", "0x1018", driver, "-1");
        symlink(format!("../{pf}"), self.dev_dir(bdf).join("physfn")).unwrap();
        symlink(
            format!("../{bdf}"),
            self.dev_dir(pf).join(format!("virtfn{index}")),
        )
        .unwrap();
    }

    /// A netdev of PCI function `bdf` with optional switch attributes.
    fn netdev(&self, bdf: &str, name: &str, switch_id: Option<&str>, port_name: Option<&str>) {
        let dir = self.dev_dir(bdf).join("net").join(name);
        fs::create_dir_all(&dir).unwrap();
        if let Some(id) = switch_id {
            fs::write(dir.join("phys_switch_id"), format!("{id}\n")).unwrap();
        }
        if let Some(port) = port_name {
            fs::write(dir.join("phys_port_name"), format!("{port}\n")).unwrap();
        }
        symlink(format!("../../../{bdf}"), dir.join("device")).unwrap();
        symlink(
            format!("../../devices/pci0000:80/0000:80:08.0/{bdf}/net/{name}"),
            self.root().join("class/net").join(name),
        )
        .unwrap();
    }

    fn mode(&self, netdev: &str, mode: &str) {
        let dir = self.root().join("class/net").join(netdev).join("compat/devlink");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("mode"), format!("{mode}\n")).unwrap();
    }

    /// A virtual netdev with no `device` link (veth, bridge).
    fn virtual_netdev(&self, name: &str) {
        let dir = self.root().join("devices/virtual/net").join(name);
        fs::create_dir_all(&dir).unwrap();
        symlink(
            format!("../../devices/virtual/net/{name}"),
            self.root().join("class/net").join(name),
        )
        .unwrap();
    }

    /// A switchdev PF `pf` (index `p`) with `n` VFs and representors named by `scheme`.
    fn switchdev_nic(
        &self,
        pf: &str,
        p: u32,
        switch_id: &str,
        uplink: &str,
        vfs: &[&str],
        scheme: fn(u32, u32) -> String,
    ) {
        self.pf(pf, 127, vfs.len() as u32);
        self.netdev(pf, uplink, Some(switch_id), Some(&format!("p{p}")));
        self.mode(uplink, "switchdev");
        for (i, vf) in vfs.iter().enumerate() {
            let i = i as u32;
            self.vf(vf, pf, i, Some("mlx5_core"));
            self.netdev(vf, &format!("{uplink}v{i}"), None, None);
            self.netdev(pf, &format!("{uplink}r{i}"), Some(switch_id), Some(&scheme(p, i)));
        }
    }
}

fn addr(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn rep(sysfs: &Sysfs, vf: &str, view: RepresentorView) -> Result<Representor, RepresentorError> {
    sysfs.representor(&addr(vf), view)
}

const PF0_VFS: [&str; 4] = ["0000:84:00.2", "0000:84:00.3", "0000:84:00.4", "0000:84:00.5"];
const PF1_VFS: [&str; 4] = ["0000:84:00.6", "0000:84:00.7", "0000:84:01.0", "0000:84:01.1"];

fn current(p: u32, v: u32) -> String {
    format!("pf{p}vf{v}")
}

#[test]
fn finds_every_representor_with_current_names_on_two_pfs() {
    let tree = Tree::new();
    tree.switchdev_nic(
        "0000:84:00.0",
        0,
        "aabbcc0001",
        "enp132s0f0np0",
        &PF0_VFS,
        current,
    );
    tree.switchdev_nic(
        "0000:84:00.1",
        1,
        "aabbcc0002",
        "enp132s0f1np1",
        &PF1_VFS,
        current,
    );
    let sysfs = tree.sysfs();
    for (pf, uplink, vfs) in [(0, "enp132s0f0np0", PF0_VFS), (1, "enp132s0f1np1", PF1_VFS)] {
        for (i, vf) in vfs.iter().enumerate() {
            let r = rep(&sysfs, vf, RepresentorView::Host).unwrap();
            assert_eq!(r.netdev, format!("{uplink}r{i}"), "VF {vf}");
            assert_eq!((r.pf_index, r.vf_index, r.controller), (pf, i as u32, None));
        }
    }
}

#[test]
fn pf_representors_lists_each_pfs_own_in_one_pass() {
    let tree = Tree::new();
    tree.switchdev_nic("0000:84:00.0", 0, "shared", "ens1f0", &PF0_VFS, |_, v| {
        v.to_string()
    });
    tree.switchdev_nic("0000:84:00.1", 1, "shared", "ens1f1", &PF1_VFS, current);
    let sysfs = tree.sysfs();
    for (pf, uplink) in [("0000:84:00.0", "ens1f0"), ("0000:84:00.1", "ens1f1")] {
        let reps = sysfs.pf_representors(&addr(pf), RepresentorView::Host).unwrap();
        let names: Vec<(u32, String)> = reps.into_iter().map(|(i, r)| (i, r.netdev)).collect();
        let want: Vec<(u32, String)> = (0..4).map(|i| (i, format!("{uplink}r{i}"))).collect();
        assert_eq!(names, want, "PF {pf}");
    }
    // Agrees with the per-VF search.
    let one = rep(&sysfs, PF1_VFS[2], RepresentorView::Host).unwrap();
    let all = sysfs
        .pf_representors(&addr("0000:84:00.1"), RepresentorView::Host)
        .unwrap();
    assert_eq!(all.get(&2), Some(&one));
}

#[test]
fn two_pfs_sharing_one_switch_id_still_resolve_by_pf_index() {
    // Multi-port eswitch / VF LAG: both PFs report the same switch id.
    let tree = Tree::new();
    tree.switchdev_nic("0000:84:00.0", 0, "shared", "ens1f0np0", &PF0_VFS, current);
    tree.switchdev_nic("0000:84:00.1", 1, "shared", "ens1f1np1", &PF1_VFS, current);
    let r = rep(&tree.sysfs(), PF1_VFS[2], RepresentorView::Host).unwrap();
    assert_eq!(r.netdev, "ens1f1np1r2");
}

#[test]
fn old_kernel_bare_numbers_resolve_on_the_right_switch() {
    let tree = Tree::new();
    tree.switchdev_nic("0000:84:00.0", 0, "sw-a", "ens1f0", &PF0_VFS, |_, v| {
        v.to_string()
    });
    tree.switchdev_nic("0000:84:00.1", 1, "sw-b", "ens1f1", &PF1_VFS, |_, v| {
        v.to_string()
    });
    let sysfs = tree.sysfs();
    assert_eq!(
        rep(&sysfs, PF0_VFS[3], RepresentorView::Host).unwrap().netdev,
        "ens1f0r3"
    );
    assert_eq!(
        rep(&sysfs, PF1_VFS[3], RepresentorView::Host).unwrap().netdev,
        "ens1f1r3"
    );
}

#[test]
fn old_kernel_bare_numbers_with_a_shared_switch_id_stay_on_their_pf() {
    let tree = Tree::new();
    tree.switchdev_nic("0000:84:00.0", 0, "shared", "ens1f0", &PF0_VFS, |_, v| {
        v.to_string()
    });
    tree.switchdev_nic("0000:84:00.1", 1, "shared", "ens1f1", &PF1_VFS, |_, v| {
        v.to_string()
    });
    let sysfs = tree.sysfs();
    for (i, vf) in PF1_VFS.iter().enumerate() {
        assert_eq!(
            rep(&sysfs, vf, RepresentorView::Host).unwrap().netdev,
            format!("ens1f1r{i}")
        );
    }
}

#[test]
fn bluefield_host_representors_only_in_dpu_view() {
    let tree = Tree::new();
    tree.switchdev_nic(
        "0000:03:00.0",
        0,
        "bf2",
        "p0",
        &["0000:03:00.2", "0000:03:00.3"],
        |p, v| format!("c1pf{p}vf{v}"),
    );
    let sysfs = tree.sysfs();
    let host = rep(&sysfs, "0000:03:00.3", RepresentorView::Host);
    assert!(
        matches!(host, Err(RepresentorError::NotFound { vf_index: 1, .. })),
        "{host:?}"
    );
    let dpu = rep(&sysfs, "0000:03:00.3", RepresentorView::Dpu).unwrap();
    assert_eq!(
        (dpu.netdev.as_str(), dpu.controller, dpu.vf_index),
        ("p0r1", Some(1), 1)
    );
}

#[test]
fn netdevs_without_switch_attributes_are_skipped() {
    let tree = Tree::new();
    tree.virtual_netdev("veth0");
    tree.virtual_netdev("br0");
    // A virtio NIC whose phys_port_name read fails with EOPNOTSUPP: borrow
    // the real kernel's file where this machine has one.
    tree.function("0000:00:03.0", "0x1af4", "0x1000", Some("virtio-pci"), "-1");
    tree.netdev("0000:00:03.0", "eth0", Some("zz"), None);
    if let Some(real) = eopnotsupp_attr() {
        symlink(real, tree.dev_dir("0000:00:03.0").join("net/eth0/phys_port_name")).unwrap();
    }
    // A representor-looking netdev on another switch must not be taken.
    tree.netdev("0000:00:03.0", "decoy", Some("other"), Some("pf0vf1"));
    tree.switchdev_nic("0000:84:00.0", 0, "sw", "ens1f0np0", &PF0_VFS, current);
    let r = rep(&tree.sysfs(), PF0_VFS[1], RepresentorView::Host).unwrap();
    assert_eq!(r.netdev, "ens1f0np0r1");
}

/// A real sysfs attribute whose read fails with EOPNOTSUPP (virtio's
/// `phys_port_name`), if this machine has one.
fn eopnotsupp_attr() -> Option<PathBuf> {
    let entries = fs::read_dir("/sys/class/net").ok()?;
    entries
        .flatten()
        .map(|e| e.path().join("phys_port_name"))
        .find(|p| matches!(fs::read(p), Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP)))
}

#[test]
fn reads_pci_function_details() {
    let tree = Tree::new();
    tree.switchdev_nic("0000:84:00.0", 0, "sw", "ens1f0np0", &PF0_VFS, current);
    let sysfs = tree.sysfs();
    let pf = sysfs.pci_function(&addr("0000:84:00.0")).unwrap();
    assert_eq!((pf.vendor, pf.device, pf.class), (0x15b3, 0x1017, 0x020000));
    assert_eq!(pf.driver.as_deref(), Some("mlx5_core"));
    assert_eq!((pf.numa_node, pf.iommu_group), (Some(0), Some(7)));
    assert_eq!(pf.sriov.map(|s| (s.total_vfs, s.num_vfs)), Some((127, 4)));
    assert_eq!(pf.vfs, PF0_VFS.map(addr).to_vec());
    assert!(pf.has_vfs() && !pf.is_vf());
    assert!(pf.netdevs.contains(&"ens1f0np0".to_string()) && pf.netdevs.len() == 5);
    let vf = sysfs.pci_function(&addr(PF0_VFS[2])).unwrap();
    assert_eq!(
        (vf.physfn, vf.vf_index, vf.numa_node),
        (Some(addr("0000:84:00.0")), Some(2), None)
    );
    assert_eq!(vf.netdevs, ["ens1f0np0v2"]);
    assert_eq!(
        sysfs.eswitch_mode(&addr("0000:84:00.0")).unwrap(),
        EswitchMode::Switchdev
    );
    assert_eq!(sysfs.uplink(&addr("0000:84:00.0")).unwrap().netdev, "ens1f0np0");
    assert_eq!(sysfs.pci_address_of_netdev("ens1f0np0v2"), Some(addr(PF0_VFS[2])));
    let all = sysfs.pci_functions().unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].address < w[1].address));
}

#[test]
fn virtio_netdevs_under_the_virtio_device_belong_to_the_function() {
    // Real virtio NICs: /sys/bus/pci/devices/0000:00:03.0/virtio2/net/eth0.
    let tree = Tree::new();
    tree.function("0000:00:03.0", "0x1af4", "0x1000", Some("virtio-pci"), "-1");
    fs::create_dir_all(tree.dev_dir("0000:00:03.0").join("virtio2/net/eth0")).unwrap();
    let f = tree.sysfs().pci_function(&addr("0000:00:03.0")).unwrap();
    assert_eq!(f.netdevs, ["eth0"]);
}

#[test]
fn unbound_and_vfio_vfs() {
    let tree = Tree::new();
    tree.pf("0000:84:00.0", 8, 2);
    tree.netdev("0000:84:00.0", "ens1f0np0", Some("sw"), Some("p0"));
    tree.vf("0000:84:00.2", "0000:84:00.0", 0, None);
    tree.vf("0000:84:00.3", "0000:84:00.0", 1, Some("vfio-pci"));
    let sysfs = tree.sysfs();
    let unbound = sysfs.pci_function(&addr("0000:84:00.2")).unwrap();
    assert_eq!(unbound.driver, None);
    assert!(unbound.netdevs.is_empty());
    let vfio = sysfs.pci_function(&addr("0000:84:00.3")).unwrap();
    assert_eq!(vfio.driver.as_deref(), Some("vfio-pci"));
}

#[test]
fn legacy_pf_has_no_representors() {
    let tree = Tree::new();
    tree.pf("0000:84:00.0", 8, 1);
    tree.netdev("0000:84:00.0", "ens1f0", None, None);
    tree.mode("ens1f0", "legacy");
    tree.vf("0000:84:00.2", "0000:84:00.0", 0, Some("mlx5_core"));
    let sysfs = tree.sysfs();
    assert_eq!(
        sysfs.eswitch_mode(&addr("0000:84:00.0")).unwrap(),
        EswitchMode::Legacy
    );
    let err = rep(&sysfs, "0000:84:00.2", RepresentorView::Host).unwrap_err();
    assert!(matches!(err, RepresentorError::NoUplink { .. }), "{err:?}");
    assert!(err.to_string().contains("0000:84:00.0"), "{err}");
}

#[test]
fn odd_trees_give_typed_errors_not_panics() {
    let tree = Tree::new();
    tree.switchdev_nic("0000:84:00.0", 0, "sw", "ens1f0np0", &PF0_VFS[..1], current);
    // Garbage vendor: skipped by enumeration, an error when asked for.
    tree.function("0000:85:00.0", "banana", "0x1018", None, "0");
    // Garbage NUMA node.
    tree.function("0000:86:00.0", "0x15b3", "0x1018", None, "lots");
    // Missing vendor file.
    tree.function("0000:87:00.0", "0x15b3", "0x1018", None, "0");
    fs::remove_file(tree.dev_dir("0000:87:00.0").join("vendor")).unwrap();
    // A dangling virtfn link and a stray entry in bus/pci/devices.
    symlink("../0000:84:07.7", tree.dev_dir("0000:84:00.0").join("virtfn9")).unwrap();
    fs::create_dir_all(tree.root().join("bus/pci/devices/not-a-device")).unwrap();
    // A garbage eswitch mode on a second PF.
    tree.pf("0000:88:00.0", 8, 0);
    tree.netdev("0000:88:00.0", "ens2f0", Some("sw2"), Some("p0"));
    tree.mode("ens2f0", "hybrid");
    tree.pf("0000:89:00.0", 8, 0);

    let sysfs = tree.sysfs();
    let all: Vec<String> = sysfs
        .pci_functions()
        .unwrap()
        .iter()
        .map(|f| f.address.to_string())
        .collect();
    assert_eq!(
        all,
        ["0000:84:00.0", "0000:84:00.2", "0000:88:00.0", "0000:89:00.0"]
    );
    let pf = sysfs.pci_function(&addr("0000:84:00.0")).unwrap();
    assert_eq!(pf.vfs, [addr("0000:84:00.2"), addr("0000:84:07.7")]);

    let err = sysfs.pci_function(&addr("0000:85:00.0")).unwrap_err();
    assert!(
        matches!(err, PciError::BadValue { .. }) && err.to_string().contains("vendor"),
        "{err}"
    );
    let err = sysfs.pci_function(&addr("0000:86:00.0")).unwrap_err();
    assert!(
        err.to_string().contains("numa_node") && err.to_string().contains("lots"),
        "{err}"
    );
    let err = sysfs.pci_function(&addr("0000:87:00.0")).unwrap_err();
    assert!(
        matches!(
            err,
            PciError::MissingAttribute {
                attribute: "vendor",
                ..
            }
        ),
        "{err}"
    );
    let err = sysfs.pci_function(&addr("0000:99:00.0")).unwrap_err();
    assert!(
        matches!(err, PciError::NotFound { .. }) && err.to_string().contains("0000:99:00.0"),
        "{err}"
    );

    let err = sysfs.eswitch_mode(&addr("0000:88:00.0")).unwrap_err();
    assert!(
        matches!(err, EswitchError::BadValue { ref value, .. } if value == "hybrid"),
        "{err}"
    );
    let err = sysfs.eswitch_mode(&addr("0000:89:00.0")).unwrap_err();
    assert!(matches!(err, EswitchError::NoModeFile { .. }), "{err}");

    let err = rep(&sysfs, "0000:84:00.0", RepresentorView::Host).unwrap_err();
    assert!(matches!(err, RepresentorError::NotAVf { .. }), "{err}");
    let err = rep(&sysfs, "0000:99:00.0", RepresentorView::Host).unwrap_err();
    assert!(matches!(err, RepresentorError::Pci { .. }), "{err}");
}

#[test]
fn missing_representor_is_not_found() {
    let tree = Tree::new();
    tree.switchdev_nic("0000:84:00.0", 0, "sw", "ens1f0np0", &PF0_VFS[..2], current);
    fs::remove_file(tree.root().join("class/net/ens1f0np0r1")).unwrap();
    let err = rep(&tree.sysfs(), PF0_VFS[1], RepresentorView::Host).unwrap_err();
    assert!(
        matches!(err, RepresentorError::NotFound { vf_index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(PF0_VFS[1]), "{err}");
}
