//! Cross-check: the host model (`sriov-host`) reads back exactly the layout simnode reports.

mod common;

use common::{spec, up};
use simnode::{EswitchMode, Model, RepresentorNaming, SimNode, VfDriver};
use sriov_host::{PciAddress, RepresentorView, SriovCapability, Sysfs};

/// Every PF and VF of `node` as the host model sees it.
fn check_functions(node: &SimNode, sysfs: &Sysfs) {
    let all = sysfs.pci_functions().unwrap();
    let nic: Vec<_> = all.iter().filter(|f| f.vendor == Model::VENDOR).collect();
    assert_eq!(nic.len(), node.layout().pfs.len() + node.layout().vfs().count());
    assert!(all.iter().any(|f| f.vendor == 0x1af4 && f.sriov.is_none()));
    for pf in &node.layout().pfs {
        let f = sysfs.pci_function(&pf.pci).unwrap();
        assert_eq!(f.device, node.layout().model.pf_device_id());
        assert_eq!(f.driver.as_deref(), Some("mlx5_core"));
        assert_eq!(f.numa_node, node.layout().numa_node);
        assert_eq!(
            f.sriov,
            Some(SriovCapability {
                total_vfs: 127,
                num_vfs: pf.vfs.len() as u32
            })
        );
        let vfs: Vec<PciAddress> = pf.vfs.iter().map(|v| v.pci).collect();
        assert_eq!(f.vfs, vfs);
        assert!(f.netdevs.contains(&pf.uplink.name));
        for vf in &pf.vfs {
            let v = sysfs.pci_function(&vf.pci).unwrap();
            assert_eq!(v.physfn, Some(pf.pci));
            assert_eq!(v.vf_index, Some(vf.vf_index));
            assert_eq!(v.device, node.layout().model.vf_device_id());
            assert_eq!(v.driver, vf.driver);
            let netdevs: Vec<String> = vf.netdev_name().map(str::to_string).into_iter().collect();
            assert_eq!(v.netdevs, netdevs);
            if let Some(n) = vf.netdev_name() {
                assert_eq!(sysfs.pci_address_of_netdev(n), Some(vf.pci));
            }
        }
    }
}

fn check_representors(node: &SimNode, sysfs: &Sysfs, view: RepresentorView) {
    for pf in &node.layout().pfs {
        let pfa = pf.pci;
        assert_eq!(sysfs.eswitch_mode(&pfa).unwrap(), EswitchMode::Switchdev);
        let uplink = sysfs.uplink(&pfa).unwrap();
        assert_eq!(uplink.netdev, pf.uplink.name);
        assert_eq!(uplink.pf_index, pf.port);
        assert_eq!(uplink.switch_id, pf.switch_id);
        for vf in &pf.vfs {
            let rep = sysfs.representor(&vf.pci, view).unwrap();
            assert_eq!(Some(rep.netdev.as_str()), vf.representor_name(), "{}", vf.pci);
            assert_eq!(rep.pf_index, pf.port);
            assert_eq!(rep.vf_index, vf.vf_index);
            assert_eq!(sysfs.pci_address_of_netdev(&rep.netdev), Some(pfa));
        }
    }
}

#[test]
fn host_model_finds_every_representor_of_every_scheme() {
    let cases = [
        (RepresentorNaming::PfVf, RepresentorView::Host, Model::Cx5),
        (RepresentorNaming::Legacy, RepresentorView::Host, Model::Cx6),
        (RepresentorNaming::Dpu, RepresentorView::Dpu, Model::BlueField2),
    ];
    for (i, (naming, view, model)) in cases.into_iter().enumerate() {
        // Three PFs: two cards, the two ports of the first sharing one switch ID.
        let (_dir, spec) = spec(&format!("snthm{i}"), 3, 5);
        let node = up(spec
            .with_naming(naming)
            .with_model(model)
            .with_numa_node(Some(1))
            .with_vf_altnames(true));
        let sysfs = Sysfs::new(node.sysfs_root());
        check_functions(&node, &sysfs);
        check_representors(&node, &sysfs, view);
    }
}

#[test]
fn host_model_reads_vfio_and_unbound_vfs() {
    for (i, driver) in [VfDriver::VfioPci, VfDriver::Unbound].into_iter().enumerate() {
        let (_dir, spec) = spec(&format!("snthv{i}"), 2, 2);
        let node = up(spec.with_vf_driver(driver));
        let sysfs = Sysfs::new(node.sysfs_root());
        check_functions(&node, &sysfs);
        check_representors(&node, &sysfs, RepresentorView::Host);
    }
}

#[test]
fn host_model_sees_legacy_mode() {
    let (_dir, spec) = spec("snthl", 2, 2);
    let node = up(spec.with_eswitch(EswitchMode::Legacy));
    let sysfs = Sysfs::new(node.sysfs_root());
    check_functions(&node, &sysfs);
    let pf = node.pf(0).pci;
    assert_eq!(sysfs.eswitch_mode(&pf).unwrap(), EswitchMode::Legacy);
    assert!(sysfs.uplink(&pf).is_err());
    assert!(sysfs
        .representor(&node.vf(0, 0).pci, RepresentorView::Host)
        .is_err());
}

#[test]
fn mirrored_renames_show_in_the_host_model_like_kernel_renames() {
    let (_dir, spec) = spec("snthr", 1, 2);
    let node = up(spec);
    let sysfs = Sysfs::new(node.sysfs_root());
    let vf = node.vf(0, 1);
    let pci = vf.pci;
    let vf_name = vf.netdev_name().unwrap().to_string();
    let rep_name = vf.representor_name().unwrap().to_string();
    node.mirror_rename(&vf_name, "eth0").unwrap();
    node.mirror_rename(&rep_name, "0123456789ab_h").unwrap();
    assert_eq!(
        sysfs.pci_function(&pci).unwrap().netdevs,
        vec!["eth0".to_string()]
    );
    let rep = sysfs.representor(&pci, RepresentorView::Host).unwrap();
    assert_eq!(rep.netdev, "0123456789ab_h");
    assert!(node
        .sysfs_root()
        .join("class/net/0123456789ab_h/phys_port_name")
        .exists());
    assert!(!node.sysfs_root().join("class/net").join(&rep_name).exists());
    // And back, as a DEL that restores the names would leave it.
    node.mirror_rename("eth0", &vf_name).unwrap();
    node.mirror_rename("0123456789ab_h", &rep_name).unwrap();
    check_functions(&node, &sysfs);
    check_representors(&node, &sysfs, RepresentorView::Host);
    // An unknown netdev is a clear error.
    assert!(node.mirror_rename("nope0", "nope1").is_err());
}
