//! The seed guide's scenarios end to end: `sriov-device-plugin` advertises the simulated VFs to
//! the kubelet stand-in, `sriov-ovs` attaches them through the Multus stand-in using the NAD in
//! `manifests/`, and real OVN carries the traffic (overlay over Geneve, underlay over a VLAN
//! provider network).

use integration_tests::cleanup::leftovers;
use integration_tests::cluster::{Cluster, ClusterSpec};
use integration_tests::logical::Subnet;
use integration_tests::scenarios::{self, resource, Outcome};

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn progress(msg: &str) {
    eprintln!("  .. {msg}");
}

/// Fails the test with every failed check and, for whoever debugs it, a snapshot of the cluster.
fn assert_passed(c: &Cluster, out: &Outcome) {
    let failures = out.failures();
    assert!(
        failures.is_empty(),
        "{}: {} failed check(s):\n{}\n\ncluster state:\n{}",
        out.name,
        failures.len(),
        failures.join("\n"),
        c.diagnostics()
    );
    assert!(!out.checks.is_empty());
}

#[test]
fn overlay_vf_pods_ping_and_stream_tcp_across_nodes_over_geneve() {
    init_tracing();
    let mut c = Cluster::start(ClusterSpec {
        nodes: 2,
        vfs_per_node: 3,
        underlay: None,
        sriov: true,
        kube_ovn: None,
    })
    .unwrap();
    let prefix = c.prefix().to_string();
    scenarios::wait_for_vfs(&c, 3).unwrap();
    let out = scenarios::overlay(&mut c, &progress);
    assert_passed(&c, &out);
    assert_eq!(out.rows.len(), 4);
    let res = resource(&c).unwrap();
    for i in 0..2 {
        let k = c.kubelet(i).unwrap();
        assert_eq!(
            k.available(&res).len(),
            1,
            "node {i}: two VFs in use: {:?}",
            k.devices(&res)
        );
    }
    drop(c);
    assert_eq!(leftovers(&prefix), Vec::<String>::new());
}

fn underlay(vlan: u16) {
    init_tracing();
    let sub = Subnet::vlan0(vlan);
    let mut c = Cluster::start(ClusterSpec {
        nodes: 2,
        vfs_per_node: 2,
        underlay: Some(sub.clone()),
        sriov: true,
        kube_ovn: None,
    })
    .unwrap();
    let prefix = c.prefix().to_string();
    scenarios::wait_for_vfs(&c, 2).unwrap();
    let out = scenarios::underlay(&mut c, &sub.name, sub.gateway, &progress);
    assert_passed(&c, &out);
    for node in c.nodes() {
        let flows = node.datapath_flows().unwrap();
        assert!(
            !flows.contains("tnl_push"),
            "underlay traffic must not be tunnelled:\n{flows}"
        );
    }
    drop(c);
    assert_eq!(leftovers(&prefix), Vec::<String>::new());
}

#[test]
fn underlay_vf_pods_use_default_route_via_gateway_untagged() {
    underlay(0);
}

#[test]
fn underlay_vf_pods_use_default_route_via_gateway_on_vlan_100() {
    underlay(100);
}
