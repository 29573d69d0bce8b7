//! Harness self-tests: the simulated cluster's OVN setup carries real traffic between plain veth
//! "pods", without our binaries (overlay over Geneve, underlay over the provider network).

use std::time::Duration;

use integration_tests::cluster::{Cluster, ClusterSpec};
use integration_tests::fabric::UPSTREAM_REMOTE;
use integration_tests::logical::{Subnet, OVN_DEFAULT};

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

#[test]
fn overlay_veth_pods_talk_across_nodes_over_geneve() {
    init_tracing();
    let mut c = Cluster::start(ClusterSpec {
        nodes: 2,
        vfs_per_node: 0,
        underlay: None,
        sriov: false,
        kube_ovn: None,
    })
    .unwrap();
    assert_eq!(c.central().chassis_names().len(), 2);
    c.add_veth_pod(0, "va", OVN_DEFAULT).unwrap();
    c.add_veth_pod(1, "vb", OVN_DEFAULT).unwrap();
    c.wait_ports_ready(Duration::from_secs(30)).unwrap();
    let a = c.pod("va").unwrap();
    let b = c.pod("vb").unwrap();
    a.ping(b.ip()).unwrap();
    b.ping(a.ip()).unwrap();
    a.ping(a.addr.gateway).unwrap();
    a.tcp_to(b, 5201, 1 << 20).unwrap();
    b.tcp_to(a, 5202, 1 << 20).unwrap();
    let flows = c.node(0).datapath_flows().unwrap();
    assert!(flows.contains("tnl_push"), "no Geneve encapsulation in:\n{flows}");
    c.delete_pod("va").unwrap();
    assert!(c.node(0).interfaces_of("va.default").is_empty());
}

fn underlay_veth_pods(vlan: u16) {
    init_tracing();
    let sub = Subnet::vlan0(vlan);
    let mut c = Cluster::start(ClusterSpec {
        nodes: 2,
        vfs_per_node: 1,
        underlay: Some(sub.clone()),
        sriov: false,
        kube_ovn: None,
    })
    .unwrap();
    c.add_veth_pod(0, "ua", &sub.name).unwrap();
    c.add_veth_pod(1, "ub", &sub.name).unwrap();
    c.wait_ports_ready(Duration::from_secs(30)).unwrap();
    let a = c.pod("ua").unwrap();
    let b = c.pod("ub").unwrap();
    a.ping(sub.gateway).unwrap();
    b.ping(sub.gateway).unwrap();
    a.ping(UPSTREAM_REMOTE).unwrap();
    a.ping(b.ip()).unwrap();
    b.ping(a.ip()).unwrap();
    a.tcp_to(b, 5201, 1 << 20).unwrap();
    let flows = c.node(0).datapath_flows().unwrap();
    assert!(
        !flows.contains("tnl_push"),
        "underlay traffic must not be tunnelled:\n{flows}"
    );
}

#[test]
fn underlay_veth_pods_reach_gateway_and_each_other_untagged() {
    underlay_veth_pods(0);
}

#[test]
fn underlay_veth_pods_reach_gateway_and_each_other_on_vlan_100() {
    underlay_veth_pods(100);
}
