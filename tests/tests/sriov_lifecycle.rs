//! Pod lifecycle and control-plane restarts on the simulated cluster: VFs go back to the pool and
//! are reused, traffic recovers after `ovn-controller` or `ovsdb-server` restarts, nothing leaks,
//! and a failing test still removes everything.

use std::time::Duration;

use integration_tests::cleanup::leftovers;
use integration_tests::cluster::{Attach, Cluster, ClusterSpec};
use integration_tests::logical::OVN_DEFAULT;
use integration_tests::pod::PodNic;
use integration_tests::scenarios::{self, resource, PORT_TIMEOUT, TCP_BYTES};
use testbed::cmd::ip_in;
use testbed::daemon::wait_for;

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn device_of(c: &Cluster, pod: &str) -> (String, String) {
    match &c.pod(pod).unwrap().nic {
        PodNic::Vf {
            device_id, vf_netdev, ..
        } => (device_id.clone(), vf_netdev.clone()),
        PodNic::Veth { .. } => panic!("{pod} has no VF"),
    }
}

#[test]
fn deleting_a_pod_frees_its_vf_and_a_new_pod_reuses_it() {
    init_tracing();
    let mut c = Cluster::start(ClusterSpec {
        nodes: 1,
        vfs_per_node: 2,
        underlay: None,
        sriov: true,
        kube_ovn: None,
    })
    .unwrap();
    let res = resource(&c).unwrap();
    scenarios::wait_for_vfs(&c, 2).unwrap();
    c.add_sriov_pod(0, "p1", OVN_DEFAULT, Attach::DefaultNetwork)
        .unwrap();
    c.add_sriov_pod(0, "p2", OVN_DEFAULT, Attach::DefaultNetwork)
        .unwrap();
    c.wait_ports_ready(PORT_TIMEOUT).unwrap();
    let kubelet = c.kubelet(0).unwrap();
    assert!(kubelet.available(&res).is_empty());
    let err = c
        .add_sriov_pod(0, "p3", OVN_DEFAULT, Attach::DefaultNetwork)
        .unwrap_err();
    assert!(
        sriov_logging::error_chain(&err).contains("0 device(s) available"),
        "{err:?}"
    );
    assert!(c.pod("p3").is_none());

    let (p1_vf, p1_netdev) = device_of(&c, "p1");
    let p1_lsp = c.pod("p1").unwrap().lsp.clone();
    c.delete_pod("p1").unwrap();
    let node = c.node(0);
    // The VF is back on the node under its original name, its representor off br-int, its port gone.
    ip_in(node.netns(), ["link", "show", "dev", &p1_netdev]).unwrap();
    assert!(node.interfaces_of(&p1_lsp).is_empty());
    assert!(c.central().port_chassis(&p1_lsp).is_none());
    let kubelet = c.kubelet(0).unwrap();
    let freed = wait_for(Duration::from_secs(20), || {
        (kubelet.available(&res) == vec![p1_vf.clone()]).then_some(())
    });
    assert!(
        freed.is_some(),
        "VF {p1_vf} not allocatable again: {:?}",
        kubelet.devices(&res)
    );

    c.add_sriov_pod(0, "p3", OVN_DEFAULT, Attach::DefaultNetwork)
        .unwrap();
    assert_eq!(device_of(&c, "p3"), (p1_vf, p1_netdev));
    c.wait_ports_ready(PORT_TIMEOUT).unwrap();
    let (p2, p3) = (c.pod("p2").unwrap(), c.pod("p3").unwrap());
    p3.ping(p2.ip()).unwrap();
    p3.ping(p3.addr.gateway).unwrap();
    p3.tcp_to(p2, 5401, TCP_BYTES).unwrap();
}

/// Everything that must not grow or vanish across a restart.
fn snapshot(c: &Cluster) -> Vec<String> {
    let mut out = vec![];
    for node in c.nodes() {
        let mut ports: Vec<String> = node
            .vsctl(["list-ports", "br-int"])
            .unwrap()
            .lines()
            .filter(|p| !p.starts_with("ovn-"))
            .map(str::to_string)
            .collect();
        ports.sort();
        out.push(format!("{} br-int: {}", node.name(), ports.join(",")));
        let tunnels = node
            .vsctl(["list-ports", "br-int"])
            .unwrap()
            .lines()
            .filter(|p| p.starts_with("ovn-"))
            .count();
        out.push(format!("{} tunnels: {tunnels}", node.name()));
    }
    let mut chassis = c.central().chassis_names();
    chassis.sort();
    out.push(format!("chassis: {}", chassis.join(",")));
    let bindings = c
        .central()
        .sbctl(["--bare", "--columns=logical_port", "list", "Port_Binding"])
        .unwrap();
    let mut bindings: Vec<&str> = bindings.split_whitespace().collect();
    bindings.sort();
    out.push(format!("bindings: {}", bindings.join(",")));
    out
}

fn assert_traffic(c: &Cluster) {
    c.wait_ports_ready(PORT_TIMEOUT).unwrap();
    let (a, b) = (c.pod("ra").unwrap(), c.pod("rb").unwrap());
    a.ping(b.ip()).unwrap();
    b.ping(a.ip()).unwrap();
    a.tcp_to(b, 5501, TCP_BYTES).unwrap();
    b.tcp_to(a, 5502, TCP_BYTES).unwrap();
}

#[test]
fn traffic_recovers_after_ovn_controller_and_ovsdb_server_restarts_without_leaks() {
    init_tracing();
    let mut c = Cluster::start(ClusterSpec {
        nodes: 2,
        vfs_per_node: 1,
        underlay: None,
        sriov: true,
        kube_ovn: None,
    })
    .unwrap();
    let prefix = c.prefix().to_string();
    scenarios::wait_for_vfs(&c, 1).unwrap();
    c.add_sriov_pod(0, "ra", OVN_DEFAULT, Attach::DefaultNetwork)
        .unwrap();
    c.add_sriov_pod(1, "rb", OVN_DEFAULT, Attach::DefaultNetwork)
        .unwrap();
    assert_traffic(&c);
    let before = snapshot(&c);

    c.node(0).restart_ovn_controller().unwrap();
    assert_traffic(&c);
    assert_eq!(snapshot(&c), before, "after ovn-controller restart");

    c.node(1).restart_ovsdb_server().unwrap();
    assert_traffic(&c);
    assert_eq!(snapshot(&c), before, "after ovsdb-server restart");
    assert!(c.nodes().iter().all(|n| n.daemons_alive()));
    drop(c);
    assert_eq!(leftovers(&prefix), Vec::<String>::new());
}

#[test]
fn a_failing_test_still_removes_its_cluster() {
    init_tracing();
    let prefix = std::sync::Mutex::new(String::new());
    let r = std::panic::catch_unwind(|| {
        let mut c = Cluster::start(ClusterSpec {
            nodes: 1,
            vfs_per_node: 1,
            underlay: None,
            sriov: false,
            kube_ovn: None,
        })
        .unwrap();
        *prefix.lock().unwrap() = c.prefix().to_string();
        c.add_veth_pod(0, "doomed", OVN_DEFAULT).unwrap();
        panic!("simulated test failure");
    });
    assert!(r.is_err());
    let prefix = prefix.into_inner().unwrap();
    assert!(!prefix.is_empty());
    assert_eq!(leftovers(&prefix), Vec::<String>::new());
}

#[test]
fn vfs_in_use_stay_healthy_and_allocatable() {
    init_tracing();
    let mut c = Cluster::start(ClusterSpec {
        nodes: 1,
        vfs_per_node: 2,
        underlay: None,
        sriov: true,
        kube_ovn: None,
    })
    .unwrap();
    let res = resource(&c).unwrap();
    scenarios::wait_for_vfs(&c, 2).unwrap();
    c.add_sriov_pod(0, "h1", OVN_DEFAULT, Attach::DefaultNetwork)
        .unwrap();
    let k = c.kubelet(0).unwrap();
    // Health is event-driven: give a wrong verdict a few seconds to show up.
    let dropped = wait_for(Duration::from_secs(5), || (k.allocatable(&res) < 2).then_some(()));
    assert!(dropped.is_none(), "{:?}", k.devices(&res));
}
