//! Interaction with the host beyond sysfs: the netdev holding the IPv4
//! default route is never offered; kernel uevents are received and make the
//! plugin rediscover what inotify on the (simulated) tree cannot see.

mod common;

use std::process::{Command, Stdio};

use common::*;
use kubelet_proto::v1beta1::{HEALTHY, UNHEALTHY};
use simnode::SimNodeSpec;
use sriov_device_plugin::daemon::Settings;
use sriov_device_plugin::uevent::UeventListener;
use testbed::daemon::ChildGuard;
use testbed::netns::Netns;

const BIN: &str = env!("CARGO_BIN_EXE_sriov-device-plugin");

/// A veth pair `<name>`/`<name>b`, deleted on drop; creating it raises a
/// `net` add uevent.
struct Veth(String);

impl Veth {
    fn new(name: &str) -> Veth {
        ip(&[
            "link",
            "add",
            name,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{name}b"),
        ]);
        Veth(name.to_string())
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netdev_with_the_default_route_is_not_offered() {
    let ns = Netns::unique("dpdr").unwrap();
    let mut h = Harness::node(SimNodeSpec::new(prefix("dr"), 1, 3).with_netns(ns.name()));
    // VF 1's netdev carries the namespace's default route.
    let vf = h.node.vf(0, 1).clone();
    let netdev = vf.netdev_name().unwrap().to_string();
    ip(&["-n", ns.name(), "link", "set", &netdev, "up"]);
    ip(&["-n", ns.name(), "addr", "add", "192.0.2.2/24", "dev", &netdev]);
    ip(&[
        "-n",
        ns.name(),
        "route",
        "add",
        "default",
        "via",
        "192.0.2.1",
        "dev",
        &netdev,
    ]);
    h.write_config(GUIDE_CONFIG);
    let _child = ChildGuard::new(
        "sriov-device-plugin",
        Command::new("ip")
            .args(["netns", "exec", ns.name(), BIN])
            .args(h.plugin_flags())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    h.kubelet().next_registration().await;
    let mut client = h.client(GUIDE_SOCKET).await;
    let list = next_list(&mut list_and_watch(&mut client).await).await;
    let ids: Vec<String> = list.devices.iter().map(|d| d.id.clone()).collect();
    assert_eq!(
        ids,
        [h.node.vf(0, 0).pci.to_string(), h.node.vf(0, 2).pci.to_string()]
    );
    // Health is read in the plugin's own namespace, where the links are.
    assert!(
        list.devices
            .iter()
            .all(|d| d.health == kubelet_proto::v1beta1::HEALTHY),
        "{list:?}"
    );
    drop(_child);
    h.shutdown().await;
    drop(h);
    drop(ns);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uevents_announce_new_net_devices() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _listener = UeventListener::start(tx).unwrap();
    let name = format!("dpue{}", std::process::id() % 100_000);
    let _veth = Veth::new(&name);
    loop {
        let event = tokio::time::timeout(WAIT, rx.recv()).await.unwrap().unwrap();
        if event.subsystem == "net" && event.action == "add" && event.devpath.ends_with(&format!("/{name}")) {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_uevent_triggers_rediscovery() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("ue"), 1, 2));
    let vf = h.node.vf(0, 1).pci.to_string();
    let rep = h.node.vf(0, 1).representor_name().unwrap().to_string();
    // A representor's attributes live in a directory no inotify watch covers
    // (on a real host nothing in sysfs raises inotify events at all): only a
    // uevent can tell the plugin to look again.
    let port_file = h
        .node
        .sysfs_root()
        .join("class/net")
        .join(&rep)
        .join("phys_port_name");
    let good = std::fs::read_to_string(&port_file).unwrap();
    std::fs::write(&port_file, "garbage\n").unwrap();
    h.write_config(GUIDE_CONFIG);
    h.start_with(Settings {
        watch_uevents: true,
        ..h.settings()
    });
    h.kubelet().next_registration().await;
    let mut client = h.client(GUIDE_SOCKET).await;
    let mut stream = list_and_watch(&mut client).await;
    wait_list(&mut stream, |l| health(l, &vf) == Some(UNHEALTHY)).await;

    std::fs::write(&port_file, good).unwrap();
    // Any net/pci add or remove uevent makes the plugin rediscover; a new
    // link is the one this kernel lets a test raise.
    let _veth = Veth::new(&format!("dpuv{}", std::process::id() % 100_000));
    wait_list(&mut stream, |l| health(l, &vf) == Some(HEALTHY)).await;
    h.shutdown().await;
}
