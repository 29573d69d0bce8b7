//! The private OVS instance against real `ovsdb-server` and `ovs-vswitchd` (root).

use testbed::names::unique_name;
use testbed::netns::Netns;
use testbed::ovs::{OvsDaemon, OvsInstance};

fn alive(pid: i32) -> bool {
    testbed::daemon::alive(pid)
}

#[test]
fn runs_in_a_given_netns_and_cleans_up() {
    let ns = Netns::unique("ovsn").unwrap();
    let ovs = OvsInstance::start_in_netns(ns.name()).unwrap();
    assert_eq!(ovs.netns(), Some(ns.name()));
    let br = unique_name("br");
    ovs.add_bridge(&br).unwrap();
    // The bridge's internal port is a tap inside that namespace.
    ovs.ip(["link", "show", &br]).unwrap();
    assert!(ovs.vsctl(["br-exists", &br]).is_ok());
    assert!(ovs.appctl(["version"]).unwrap().contains("ovs-vswitchd"));
    let pids = [
        ovs.pid(OvsDaemon::OvsdbServer).unwrap(),
        ovs.pid(OvsDaemon::Vswitchd).unwrap(),
    ];
    let dir = ovs.dir().to_path_buf();
    drop(ovs);
    assert!(pids.iter().all(|p| !alive(*p)));
    assert!(!dir.exists());
    // The taps of the userspace datapath are gone with it; the namespace, the caller's, is not.
    assert!(ns.ip(["link", "show", &br]).is_err());
    assert!(ns.exists());
}

#[test]
fn private_instance_owns_its_netns_and_restarts_its_database() {
    let ovs = OvsInstance::start().unwrap();
    let netns = ovs.netns().unwrap().to_string();
    let before = ovs.pid(OvsDaemon::OvsdbServer).unwrap();
    ovs.restart_ovsdb_server().unwrap();
    assert_ne!(ovs.pid(OvsDaemon::OvsdbServer), Some(before));
    assert!(ovs.alive());
    ovs.vsctl(["show"]).unwrap();
    ovs.crash(OvsDaemon::OvsdbServer);
    assert!(!ovs.alive());
    drop(ovs);
    assert!(!std::path::Path::new("/run/netns").join(netns).exists());
}

#[test]
fn a_kept_directory_survives_the_instance() {
    let dir = tempfile::tempdir().unwrap();
    let ns = Netns::unique("ovsk").unwrap();
    let ovs = OvsInstance::start_with(
        testbed::ovs::OvsNetns::Existing(ns.name().to_string()),
        Some(&dir.path().join("ovs")),
    )
    .unwrap();
    assert_eq!(ovs.socket_path(), dir.path().join("ovs/db.sock"));
    drop(ovs);
    assert!(dir.path().join("ovs/conf.db").exists());
}
