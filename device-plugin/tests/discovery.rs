//! Discovery on a simulated node: selector semantics across resources and the
//! facts recorded for each device.

use std::collections::HashSet;

use simnode::{SimNode, SimNodeSpec};
use sriov_device_plugin::discovery::discover;
use sriov_device_plugin::rdma::RdmaMemory;
use sriov_host::Sysfs;
use sriovdp_config as config;

#[test]
fn resources_take_devices_in_order_and_never_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = format!("dpds{:05}", std::process::id() % 100_000);
    let node = SimNode::up(
        SimNodeSpec::new(prefix, 2, 4)
            .with_numa_node(Some(1))
            .with_sysfs_root(tmp.path().join("sys")),
    )
    .unwrap();
    let pf0 = node.pf(0).pci.to_string();
    let text = format!(
        r#"{{"resourceList": [
        {{"resourceName": "first", "selectors": [
            {{"pciAddresses": ["{}"]}},
            {{"rootDevices": ["{pf0}#1-2"], "needVhostNet": true}}]}},
        {{"resourceName": "second", "selectors": {{"vendors": ["15b3"], "linkTypes": ["ETHER"]}}}},
        {{"resourceName": "rest", "selectors": {{}}}},
        {{"resourceName": "none", "selectors": {{"drivers": ["vfio-pci"]}}}}
    ]}}"#,
        node.vf(1, 3).pci
    );
    let config = config::parse(&text, "intel.com").unwrap();
    let found = discover_on(&node, &config, &HashSet::new());
    let ids =
        |i: usize| -> Vec<String> { found.resources[i].iter().map(|d| d.address.to_string()).collect() };
    let vf = |p: u32, v: u32| node.vf(p, v).pci.to_string();

    assert_eq!(ids(0), [vf(0, 1), vf(0, 2), vf(1, 3)]);
    assert_eq!(ids(1), [vf(0, 0), vf(0, 3), vf(1, 0), vf(1, 1), vf(1, 2)]);
    // An empty selector takes every remaining network function: the virtio
    // decoy, but neither the NVMe drive nor PFs that have VFs.
    let decoys: Vec<String> = node
        .layout()
        .decoys
        .iter()
        .filter(|d| d.class >> 16 == 0x02)
        .map(|d| d.pci.to_string())
        .collect();
    assert_eq!(ids(2), decoys);
    assert!(ids(3).is_empty());

    // Facts kept for each VF.
    let record = found.resources[0]
        .iter()
        .find(|d| d.address.to_string() == vf(0, 2))
        .unwrap();
    let layout = node.vf(0, 2);
    assert_eq!(record.pf_address, Some(node.pf(0).pci));
    assert_eq!(record.vf_index, Some(2));
    assert_eq!(record.numa_node, Some(1));
    assert_eq!(record.driver.as_deref(), Some("mlx5_core"));
    assert_eq!(record.uplink.as_deref(), Some(node.pf(0).uplink.name.as_str()));
    assert_eq!(record.representor.as_deref(), layout.representor_name());
    assert!(record.need_vhost_net);
    let by_address = found.resources[0]
        .iter()
        .find(|d| d.address.to_string() == vf(1, 3))
        .unwrap();
    assert!(!by_address.need_vhost_net);

    // A netdev holding the default route is excluded.
    let excluded: HashSet<String> = [node.vf(1, 0).netdev_name().unwrap().to_string()].into();
    let found = discover_on(&node, &config, &excluded);
    assert!(found.resources[1]
        .iter()
        .all(|d| d.address.to_string() != vf(1, 0)));
    assert_eq!(found.pf_dirs.len(), 2);
    node.down().unwrap();
}

#[test]
fn old_kernel_representor_names_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = format!("dpdo{:05}", std::process::id() % 100_000);
    let node = SimNode::up(
        SimNodeSpec::new(prefix, 2, 2)
            .with_naming(simnode::RepresentorNaming::Legacy)
            .with_sysfs_root(tmp.path().join("sys")),
    )
    .unwrap();
    let config = config::parse(
        r#"{"resourceList":[{"resourceName":"a","selectors":{"vendors":["15b3"]}}]}"#,
        "x.io",
    )
    .unwrap();
    let found = discover_on(&node, &config, &HashSet::new());
    assert_eq!(found.resources[0].len(), 4);
    for record in &found.resources[0] {
        let layout = node.layout().vfs().find(|v| v.pci == record.address).unwrap();
        assert_eq!(
            record.representor.as_deref(),
            layout.representor_name(),
            "{record:?}"
        );
    }
    node.down().unwrap();
}

#[test]
fn a_resource_without_selectors_takes_no_device() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = format!("dpdn{:05}", std::process::id() % 100_000);
    let node = SimNode::up(SimNodeSpec::new(prefix, 1, 4).with_sysfs_root(tmp.path().join("sys"))).unwrap();
    // Validation rejects such a config; a Config built in code with no
    // selector must still not fall back to matching everything.
    let mut config = config::parse(
        r#"{"resourceList": [
            {"resourceName": "empty", "selectors": {}},
            {"resourcePrefix": "mellanox.com", "resourceName": "cx5", "selectors": {"vendors": ["15b3"]}}
        ]}"#,
        "intel.com",
    )
    .unwrap();
    config.resources[0].selectors.clear();
    let found = discover_on(&node, &config, &HashSet::new());
    assert!(found.resources[0].is_empty(), "{:?}", found.resources[0]);
    let ids: Vec<String> = found.resources[1].iter().map(|d| d.address.to_string()).collect();
    let vfs: Vec<String> = (0..4).map(|v| node.vf(0, v).pci.to_string()).collect();
    assert_eq!(ids, vfs);
    node.down().unwrap();
}

/// Discovers `node`'s devices with no RDMA devices remembered from an earlier pass.
fn discover_on(
    node: &SimNode,
    config: &sriovdp_config::Config,
    excluded: &HashSet<String>,
) -> sriov_device_plugin::discovery::Discovered {
    discover(
        &Sysfs::new(node.sysfs_root()),
        config,
        excluded,
        &mut RdmaMemory::default(),
    )
    .unwrap()
}
