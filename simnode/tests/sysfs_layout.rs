//! The simulated tree checked against the facts of a real mlx5 sysfs layout (TESTBED.md).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{link_target, read, spec, up};
use simnode::{EswitchMode, Model, RepresentorNaming, SimNode, VfDriver};

/// Directory of a PCI function, resolved through `bus/pci/devices/<BDF>`.
fn fn_dir(node: &SimNode, bdf: &str) -> PathBuf {
    let link = node.sysfs_root().join("bus/pci/devices").join(bdf);
    fs::canonicalize(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()))
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn pf_and_vf_functions_look_like_mlx5() {
    let (_dir, spec) = spec("sntpf", 2, 8);
    let node = up(spec.with_numa_node(Some(1)));
    let root = fs::canonicalize(node.sysfs_root()).unwrap();
    let pf = node.pf(0);
    assert_eq!(pf.pci.to_string(), "0000:84:00.0");
    assert_eq!(node.pf(1).pci.to_string(), "0000:84:00.1");

    // bus/pci/devices/<BDF> -> ../../../devices/pci0000:80/<root port>/<BDF>
    let target = link_target(root.join("bus/pci/devices/0000:84:00.0"));
    assert_eq!(
        target,
        Path::new("../../../devices/pci0000:80/0000:80:10.0/0000:84:00.0")
    );
    let d = fn_dir(&node, "0000:84:00.0");
    assert!(d.starts_with(root.join("devices/pci0000:80")));
    assert_eq!(read(d.join("vendor")), "0x15b3");
    assert_eq!(read(d.join("device")), "0x1017");
    assert_eq!(read(d.join("class")), "0x020000");
    assert_eq!(read(d.join("numa_node")), "1");
    assert_eq!(read(d.join("sriov_totalvfs")), "127");
    assert_eq!(read(d.join("sriov_numvfs")), "8");
    assert_eq!(
        fs::canonicalize(d.join("driver")).unwrap(),
        root.join("bus/pci/drivers/mlx5_core")
    );
    assert_eq!(
        link_target(d.join("driver")),
        Path::new("../../../../bus/pci/drivers/mlx5_core")
    );
    let group = fs::canonicalize(d.join("iommu_group")).unwrap();
    assert!(group.starts_with(root.join("kernel/iommu_groups")));
    assert_eq!(fs::canonicalize(group.join("devices/0000:84:00.0")).unwrap(), d);

    // VFs after the PFs: .2 .. .7, then 01.0; PF1's VFs after PF0's.
    let expect = [
        "0000:84:00.2",
        "0000:84:00.3",
        "0000:84:00.4",
        "0000:84:00.5",
        "0000:84:00.6",
        "0000:84:00.7",
        "0000:84:01.0",
        "0000:84:01.1",
    ];
    for (i, bdf) in expect.iter().enumerate() {
        let vf = node.vf(0, i as u32);
        assert_eq!(vf.pci.to_string(), *bdf);
        assert_eq!(
            link_target(d.join(format!("virtfn{i}"))),
            Path::new("..").join(bdf)
        );
        let vd = fn_dir(&node, bdf);
        assert_eq!(link_target(vd.join("physfn")), Path::new("../0000:84:00.0"));
        assert_eq!(read(vd.join("device")), "0x1018");
        assert_eq!(read(vd.join("vendor")), "0x15b3");
        assert_eq!(read(vd.join("numa_node")), "1");
        assert!(!vd.join("sriov_totalvfs").exists());
        assert_eq!(
            fs::canonicalize(vd.join("driver")).unwrap(),
            root.join("bus/pci/drivers/mlx5_core")
        );
        assert_ne!(
            fs::canonicalize(vd.join("iommu_group")).unwrap(),
            group,
            "each VF has its own IOMMU group"
        );
    }
    assert_eq!(node.vf(1, 0).pci.to_string(), "0000:84:01.2");
    assert_eq!(
        link_target(fn_dir(&node, "0000:84:00.1").join("virtfn0")),
        Path::new("../0000:84:01.2")
    );
}

#[test]
fn netdevs_representors_and_class_net_look_like_mlx5() {
    let (_dir, spec) = spec("sntnd", 2, 3);
    let node = up(spec);
    let root = fs::canonicalize(node.sysfs_root()).unwrap();
    for pf in &node.layout().pfs {
        let d = fn_dir(&node, &pf.pci.to_string());
        let mut expected: Vec<String> = vec![pf.uplink.name.clone()];
        expected.extend(pf.vfs.iter().map(|v| v.representor_name().unwrap().to_string()));
        expected.sort();
        assert_eq!(
            entries(&d.join("net")),
            expected,
            "representors under the PF's net/"
        );
        let up_dir = d.join("net").join(&pf.uplink.name);
        assert_eq!(read(up_dir.join("phys_port_name")), format!("p{}", pf.port));
        assert_eq!(read(up_dir.join("phys_switch_id")), pf.switch_id);
        assert_eq!(read(up_dir.join("compat/devlink/mode")), "switchdev");
        assert_eq!(
            read(
                root.join("class/net")
                    .join(&pf.uplink.name)
                    .join("compat/devlink/mode")
            ),
            "switchdev"
        );
        assert_eq!(
            link_target(up_dir.join("device")),
            Path::new("../../..").join(pf.pci.to_string())
        );
        for vf in &pf.vfs {
            let rep = vf.representor.as_ref().unwrap();
            let rd = d.join("net").join(&rep.name);
            assert_eq!(
                read(rd.join("phys_port_name")),
                format!("pf{}vf{}", pf.port, vf.vf_index)
            );
            assert_eq!(read(rd.join("phys_switch_id")), pf.switch_id);
            assert_eq!(fs::canonicalize(rd.join("device")).unwrap(), d);
            // The VF netdev: under the VF's net/, no phys_port_name / phys_switch_id.
            let net = vf.netdev.as_ref().unwrap();
            let vd = fn_dir(&node, &vf.pci.to_string());
            assert_eq!(entries(&vd.join("net")), [net.name.as_str()]);
            let nd = vd.join("net").join(&net.name);
            assert!(!nd.join("phys_port_name").exists());
            assert!(!nd.join("phys_switch_id").exists());
            assert_eq!(fs::canonicalize(nd.join("device")).unwrap(), vd);
            // class/net/<if> -> ../../devices/.../net/<if>
            for (name, dir) in [(&net.name, &nd), (&rep.name, &rd)] {
                let cl = root.join("class/net").join(name);
                assert!(link_target(&cl).starts_with("../../devices/pci0000:80/"));
                assert_eq!(fs::canonicalize(&cl).unwrap(), *dir);
            }
            // address / ifindex are the real link's.
            for n in [net, rep] {
                let real = common::link(None, &n.name).expect("link exists");
                let dir = root.join("class/net").join(&n.name);
                assert_eq!(read(dir.join("ifindex")), real["ifindex"].to_string());
                assert_eq!(read(dir.join("address")), real["address"].as_str().unwrap());
                assert_eq!(n.ifindex.to_string(), real["ifindex"].to_string());
            }
        }
    }
    // Both ports of a dual-port card share the switch ID, as on mlx5.
    assert_eq!(node.pf(0).switch_id, node.pf(1).switch_id);
}

#[test]
fn representor_names_follow_each_scheme() {
    for (i, (naming, want)) in [
        (RepresentorNaming::PfVf, "pf1vf2"),
        (RepresentorNaming::Legacy, "2"),
        (RepresentorNaming::Dpu, "c1pf1vf2"),
    ]
    .into_iter()
    .enumerate()
    {
        let (_dir, spec) = spec(&format!("sntnm{i}"), 2, 3);
        let node = up(spec.with_naming(naming));
        let rep = node.vf(1, 2).representor_name().unwrap();
        let path = node
            .sysfs_root()
            .join("class/net")
            .join(rep)
            .join("phys_port_name");
        assert_eq!(read(path), want, "{naming:?}");
        let uplink = node.sysfs_root().join("class/net").join(&node.pf(1).uplink.name);
        assert_eq!(read(uplink.join("phys_port_name")), "p1");
    }
}

#[test]
fn models_set_device_ids() {
    let cases = [
        (Model::Cx5, "0x1017", "0x1018"),
        (Model::Cx6, "0x101b", "0x101c"),
        (Model::Cx6Dx, "0x101d", "0x101e"),
        (Model::Cx7, "0x1021", "0x101e"),
        (Model::BlueField2, "0xa2d6", "0x101e"),
    ];
    for (i, (model, pf_id, vf_id)) in cases.into_iter().enumerate() {
        let (_dir, spec) = spec(&format!("sntmd{i}"), 1, 1);
        let node = up(spec.with_model(model));
        let pf = fn_dir(&node, &node.pf(0).pci.to_string());
        let vf = fn_dir(&node, &node.vf(0, 0).pci.to_string());
        assert_eq!(read(pf.join("device")), pf_id, "{model:?}");
        assert_eq!(read(vf.join("device")), vf_id, "{model:?}");
        assert_eq!(read(pf.join("numa_node")), "-1");
    }
}

#[test]
fn vfio_vfs_have_empty_net_and_keep_representors() {
    let (_dir, spec) = spec("sntvf", 1, 2);
    let node = up(spec.with_vf_driver(VfDriver::VfioPci));
    let root = fs::canonicalize(node.sysfs_root()).unwrap();
    for vf in &node.layout().pfs[0].vfs {
        let vd = fn_dir(&node, &vf.pci.to_string());
        assert_eq!(
            fs::canonicalize(vd.join("driver")).unwrap(),
            root.join("bus/pci/drivers/vfio-pci")
        );
        assert!(entries(&vd.join("net")).is_empty());
        assert!(vf.netdev.is_none());
        let rep = vf.representor_name().unwrap();
        assert!(
            common::link(None, rep).is_some(),
            "representor {rep} is a real link"
        );
        assert!(root.join("class/net").join(rep).join("phys_port_name").exists());
    }
}

#[test]
fn unbound_vfs_have_no_driver_link() {
    let (_dir, spec) = spec("sntub", 1, 2);
    let node = up(spec.with_vf_driver(VfDriver::Unbound));
    for vf in &node.layout().pfs[0].vfs {
        let vd = fn_dir(&node, &vf.pci.to_string());
        assert!(fs::symlink_metadata(vd.join("driver")).is_err());
        assert!(!vd.join("net").exists());
        assert!(vf.driver.is_none());
        assert!(vf.representor.is_some());
    }
}

#[test]
fn legacy_eswitch_has_no_representors() {
    let (_dir, spec) = spec("sntlg", 2, 2);
    let node = up(spec.with_eswitch(EswitchMode::Legacy));
    let root = node.sysfs_root();
    for pf in &node.layout().pfs {
        let d = fn_dir(&node, &pf.pci.to_string());
        assert_eq!(entries(&d.join("net")), [pf.uplink.name.as_str()]);
        let mode = root
            .join("class/net")
            .join(&pf.uplink.name)
            .join("compat/devlink/mode");
        assert_eq!(read(mode), "legacy");
        let uplink = root.join("class/net").join(&pf.uplink.name);
        assert!(
            !uplink.join("phys_switch_id").exists(),
            "no switch ID in legacy mode"
        );
        assert_eq!(read(uplink.join("phys_port_name")), format!("p{}", pf.port));
        for vf in &pf.vfs {
            assert!(vf.representor.is_none());
            let name = vf.netdev_name().unwrap();
            let real = common::link(None, name).expect("VF netdev is a real link");
            assert_eq!(real["linkinfo"]["info_kind"], "macvlan");
        }
    }
}

#[test]
fn decoys_are_present_without_sriov() {
    let (_dir, spec) = spec("sntdc", 1, 1);
    let node = up(spec);
    let root = fs::canonicalize(node.sysfs_root()).unwrap();
    let virtio = fn_dir(&node, "0000:00:03.0");
    assert_eq!(read(virtio.join("vendor")), "0x1af4");
    assert!(!virtio.join("sriov_totalvfs").exists());
    let nd = fs::canonicalize(root.join("class/net/sntdcx0")).unwrap();
    assert!(nd.starts_with(virtio.join("virtio0/net")));
    assert!(!nd.join("phys_port_name").exists());
    let nvme = fn_dir(&node, "0000:00:04.0");
    assert_eq!(read(nvme.join("class")), "0x010802");
    assert!(!nvme.join("net").exists());
    let bridge = fn_dir(&node, "0000:80:10.0");
    assert_eq!(read(bridge.join("class")), "0x060400");
}

#[test]
fn rdma_vfs_have_infiniband_verbs_and_mad_devices_of_their_pci_function() {
    let (_dir, spec) = spec("sntrd", 2, 2);
    let node = up(spec.with_rdma(true));
    let root = fs::canonicalize(node.sysfs_root()).unwrap();
    let vf = node.vf(1, 0);
    // PFs take mlx5_0 and mlx5_1; the VFs follow in PF order.
    let (ibdev, n) = vf.rdma.clone().unwrap();
    assert_eq!((ibdev.as_str(), n), ("mlx5_4", 4));
    let d = fn_dir(&node, &vf.pci.to_string());
    assert_eq!(entries(&d.join("infiniband")), [ibdev.as_str()]);
    assert_eq!(
        fs::canonicalize(root.join("class/infiniband").join(&ibdev)).unwrap(),
        d.join("infiniband").join(&ibdev)
    );
    assert_eq!(
        read(
            d.join("infiniband")
                .join(&ibdev)
                .join("ports/1/gid_attrs/ndevs/0")
        ),
        vf.netdev_name().unwrap()
    );
    for (class, name, dev) in [
        ("infiniband_verbs", "uverbs4", "231:196"),
        ("infiniband_mad", "umad4", "231:4"),
        ("infiniband_mad", "issm4", "231:68"),
    ] {
        let dir = d.join(class).join(name);
        assert_eq!(read(dir.join("ibdev")), ibdev, "{name}");
        assert_eq!(read(dir.join("dev")), dev, "{name}");
        assert_eq!(fs::canonicalize(dir.join("device")).unwrap(), d, "{name}");
        assert_eq!(
            fs::canonicalize(root.join("class").join(class).join(name)).unwrap(),
            dir
        );
    }
    assert_eq!(read(root.join("class/infiniband_verbs/abi_version")), "6");
    assert_eq!(read(root.join("class/misc/rdma_cm/dev")), "10:122");
    // The host model finds them the way the device plugin asks.
    let sysfs = sriov_host::Sysfs::new(node.sysfs_root());
    assert_eq!(
        sysfs.rdma_devices(&vf.pci.to_string().parse().unwrap()).unwrap(),
        [ibdev.as_str()]
    );
    assert_eq!(
        sysfs.rdma_index().unwrap().get(&ibdev).paths(),
        [
            "/dev/infiniband/issm4",
            "/dev/infiniband/umad4",
            "/dev/infiniband/uverbs4",
            "/dev/infiniband/rdma_cm"
        ]
    );
    node.down().unwrap();
}

#[test]
fn vfio_vfs_and_nodes_without_rdma_have_no_rdma_devices() {
    let (_dir, spec) = spec("sntnr", 1, 1);
    let node = up(spec.with_rdma(true).with_vf_driver(VfDriver::VfioPci));
    assert_eq!(node.vf(0, 0).rdma, None);
    assert!(!node.sysfs_root().join("class/infiniband_verbs").exists());
    node.down().unwrap();
}

#[test]
fn mirrored_bond_shows_mode_and_master_links() {
    let (_dir, spec) = spec("sntbd", 2, 1);
    let node = up(spec);
    let root = fs::canonicalize(node.sysfs_root()).unwrap();
    node.mirror_bond("sntbdbond", "802.3ad 4", 99, &[0, 1]).unwrap();
    let bond = root.join("devices/virtual/net/sntbdbond");
    assert_eq!(read(bond.join("bonding/mode")), "802.3ad 4");
    let (p0, p1) = (&node.pf(0).uplink.name, &node.pf(1).uplink.name);
    assert_eq!(read(bond.join("bonding/slaves")), format!("{p0} {p1}"));
    let p0_dir = fs::canonicalize(root.join("class/net").join(p0)).unwrap();
    assert_eq!(fs::canonicalize(p0_dir.join("master")).unwrap(), bond);
    assert_eq!(fs::canonicalize(p0_dir.join("upper_sntbdbond")).unwrap(), bond);
    assert_eq!(
        fs::canonicalize(bond.join(format!("lower_{p0}"))).unwrap(),
        p0_dir
    );
    let sysfs = sriov_host::Sysfs::new(node.sysfs_root());
    assert_eq!(sysfs.netdev_master(p1).as_deref(), Some("sntbdbond"));
    node.down().unwrap();
}
