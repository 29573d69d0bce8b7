//! Go plugin features on a simulated node, over real gRPC: RDMA pools,
//! `additionalInfo`, CDI, strict config, and health per topology (VF LAG
//! bond, BlueField in DPU mode).

mod common;

use std::process::Command;

use common::*;
use kubelet_proto::v1beta1::{ListAndWatchResponse, HEALTHY, UNHEALTHY};
use simnode::{EswitchMode, Model, SimNodeSpec};
use sriov_device_plugin::cdi::Spec;
use sriov_device_plugin::daemon::{self, DaemonError, Settings};
use sriov_device_plugin::device_info::DeviceInfo;
use sriovdp_config::{ConfigError, UnknownKeys};

const RDMA_CONFIG: &str = r#"{"resourceList": [{
    "resourcePrefix": "mellanox.com",
    "resourceName": "cx5_rdma",
    "selectors": {"vendors": ["15b3"], "devices": ["1018"], "isRdma": true},
    "additionalInfo": {"*": {"network": "roce"}}
}]}"#;
const RDMA_SOCKET: &str = "mellanox.com_cx5_rdma.sock";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdma_pool_allocates_the_vf_rdma_nodes_and_names_its_rdma_device() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("rd"), 1, 2).with_rdma(true));
    h.start(RDMA_CONFIG);
    h.kubelet().next_registration().await;
    let mut client = h.client(RDMA_SOCKET).await;
    let list = next_list(&mut list_and_watch(&mut client).await).await;
    assert_eq!(list.devices.len(), 2);

    let vf = h.node.vf(0, 1).clone();
    let (ibdev, n) = vf.rdma.clone().unwrap();
    let response = allocate_one(&h, RDMA_SOCKET, &[vf.pci.to_string()]).await;
    let paths: Vec<&str> = response.devices.iter().map(|d| d.host_path.as_str()).collect();
    let (issm, umad, uverbs) = (
        format!("/dev/infiniband/issm{n}"),
        format!("/dev/infiniband/umad{n}"),
        format!("/dev/infiniband/uverbs{n}"),
    );
    assert_eq!(
        paths,
        [
            issm.as_str(),
            umad.as_str(),
            uverbs.as_str(),
            "/dev/infiniband/rdma_cm"
        ]
    );
    let info: serde_json::Value =
        serde_json::from_str(&response.envs["PCIDEVICE_MELLANOX_COM_CX5_RDMA_INFO"]).unwrap();
    let entry = &info[vf.pci.to_string()];
    assert_eq!(
        entry["rdma"],
        serde_json::json!({"issm": issm, "umad": umad, "uverbs": uverbs,
            "rdma_cm": "/dev/infiniband/rdma_cm", "rdma_dev": ibdev})
    );
    assert_eq!(entry["extra"], serde_json::json!({"network": "roce"}));

    let file = h
        .devinfo_dir()
        .join(format!("mellanox.com-cx5_rdma-{}-device.json", vf.pci));
    let written: DeviceInfo = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written.pci.rdma_device.as_deref(), Some(ibdev.as_str()));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_rdma_pool_without_rdma_devices_offers_nothing() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("rn"), 1, 2));
    h.start(RDMA_CONFIG);
    h.kubelet().next_registration().await;
    let mut client = h.client(RDMA_SOCKET).await;
    let list = next_list(&mut list_and_watch(&mut client).await).await;
    assert!(list.devices.is_empty(), "{list:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_cdi_writes_a_spec_per_resource_and_allocates_by_cdi_name() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("cd"), 1, 2).with_rdma(true));
    let cdi_dir = h.tmp.path().join("cdi");
    std::fs::create_dir_all(&cdi_dir).unwrap();
    // A spec left by an earlier run for a resource no longer configured.
    let stale = cdi_dir.join("sriov-dp-intel.com-net-pci-gone.json");
    std::fs::write(&stale, "{}").unwrap();
    let foreign = cdi_dir.join("vendor.com-gpu.json");
    std::fs::write(&foreign, "{}").unwrap();
    h.write_config(RDMA_CONFIG);
    h.start_with(Settings {
        cdi_spec_dir: Some(cdi_dir.clone()),
        ..h.settings()
    });
    h.kubelet().next_registration().await;
    let spec_file = cdi_dir.join("sriov-dp-mellanox.com-net-pci-cx5_rdma.json");
    wait_for("CDI spec", || spec_file.exists()).await;
    assert!(!stale.exists());
    assert!(foreign.exists());

    let spec: Spec = serde_json::from_slice(&std::fs::read(&spec_file).unwrap()).unwrap();
    assert_eq!(spec.version, "0.5.0");
    assert_eq!(spec.kind, "mellanox.com/net-pci");
    let names: Vec<String> = spec.devices.iter().map(|d| d.name.clone()).collect();
    let expected: Vec<String> = h.node.layout().vfs().map(|vf| vf.pci.to_string()).collect();
    assert_eq!(names, expected);
    let vf = h.node.vf(0, 0).clone();
    let (_, n) = vf.rdma.clone().unwrap();
    let nodes: Vec<&str> = spec.devices[0]
        .edits
        .device_nodes
        .iter()
        .map(|d| d.path.as_str())
        .collect();
    assert!(
        nodes.contains(&format!("/dev/infiniband/uverbs{n}").as_str()),
        "{nodes:?}"
    );
    assert!(spec.devices.iter().all(|d| !d.edits.env.is_empty()));

    let response = allocate_one(&h, RDMA_SOCKET, &[vf.pci.to_string()]).await;
    assert!(response.devices.is_empty(), "{:?}", response.devices);
    let qualified = format!("mellanox.com/net-pci={}", vf.pci);
    assert_eq!(response.cdi_devices.len(), 1);
    assert_eq!(response.cdi_devices[0].name, qualified);
    assert_eq!(response.annotations["cdi.k8s.io/mellanox.com_net-pci"], qualified);
    assert_eq!(
        response.envs["PCIDEVICE_MELLANOX_COM_CX5_RDMA"],
        vf.pci.to_string()
    );

    h.shutdown().await;
    assert!(!spec_file.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_that_cannot_serve_a_resource_leaves_no_cdi_spec_or_socket() {
    let h = Harness::node(SimNodeSpec::new(prefix("cf"), 1, 2));
    let cdi_dir = h.tmp.path().join("cdi");
    h.write_config(
        r#"{"resourceList": [
            {"resourcePrefix": "mellanox.com", "resourceName": "a", "selectors": {"devices": ["1018"]}},
            {"resourcePrefix": "mellanox.com", "resourceName": "b", "selectors": {"drivers": ["vfio-pci"]}}]}"#,
    );
    // A directory where resource b's socket goes: serving b fails.
    std::fs::create_dir_all(h.dp_dir().join("mellanox.com_b.sock")).unwrap();
    let settings = Settings {
        cdi_spec_dir: Some(cdi_dir.clone()),
        ..h.settings()
    };
    let error = daemon::run(settings, std::future::ready(())).await.unwrap_err();
    assert!(matches!(error, DaemonError::Serve(_)), "{error:?}");
    let left: Vec<_> = std::fs::read_dir(&cdi_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "CDI specs left: {left:?}");
    assert!(!h.dp_dir().join("mellanox.com_a.sock").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typo_in_a_selector_key_stops_start_up_unless_lenient() {
    let h = Harness::node(SimNodeSpec::new(prefix("st"), 1, 1));
    h.write_config(r#"{"resourceList": [{"resourceName": "cx5", "selectors": {"vendor": ["15b3"]}}]}"#);
    let error = daemon::run(h.settings(), std::future::ready(()))
        .await
        .unwrap_err();
    let DaemonError::Config(ConfigError::UnknownKey(key)) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(key.key, "vendor");
    assert_eq!(key.resource.as_deref(), Some("\"cx5\""));
    // Nothing touched: no socket.
    assert!(!h.dp_dir().join("intel.com_cx5.sock").exists());

    let lenient = Settings {
        unknown_keys: UnknownKeys::Warn,
        ..h.settings()
    };
    daemon::run(lenient, std::future::ready(())).await.unwrap();
}

/// A Linux bridge standing in for a bond on the netlink side (the kernel
/// here has no bonding driver): the uplinks get it as `IFLA_MASTER`.
struct Bridge(String);

impl Bridge {
    fn new(name: &str, ports: &[&str]) -> Bridge {
        ip(&["link", "add", name, "type", "bridge"]);
        let bridge = Bridge(name.to_string());
        for port in ports {
            ip(&["link", "set", port, "master", name]);
        }
        ip(&["link", "set", name, "up"]);
        bridge
    }

    fn ifindex(&self) -> u32 {
        let path = format!("/sys/class/net/{}/ifindex", self.0);
        std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

/// Starts the guide's config on `h` (2 PFs x 2 VFs) and returns its
/// `ListAndWatch` stream once every VF is listed healthy.
async fn start_guide_all_healthy(h: &mut Harness) -> tonic::Streaming<ListAndWatchResponse> {
    h.start(GUIDE_CONFIG);
    h.kubelet().next_registration().await;
    let mut client = h.client(GUIDE_SOCKET).await;
    let mut stream = list_and_watch(&mut client).await;
    wait_list(&mut stream, |l| {
        l.devices.len() == 4 && l.devices.iter().all(|d| d.health == HEALTHY)
    })
    .await;
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vf_lag_pf_follows_the_bond_carrier_not_its_own() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("lb"), 2, 2));
    let (up0, up1) = (h.node.pf(0).uplink.name.clone(), h.node.pf(1).uplink.name.clone());
    let bond = Bridge::new(&format!("{}bd", h.node.prefix()), &[&up0, &up1]);
    h.node
        .mirror_bond(&bond.0, "802.3ad 4", bond.ifindex(), &[0, 1])
        .unwrap();
    let mut stream = start_guide_all_healthy(&mut h).await;
    let pf0_vf = h.node.vf(0, 0).pci.to_string();
    let pf1_vf0 = h.node.vf(1, 0).pci.to_string();
    let pf1_vf1 = h.node.vf(1, 1).pci.to_string();

    // PF 0 loses its carrier; the bond keeps it over PF 1. A later change
    // (a representor removed) proves the carrier event was processed.
    ip(&["link", "set", &h.node.pf(0).wire.name, "down"]);
    ip(&["link", "del", h.node.vf(1, 1).representor_name().unwrap()]);
    let list = wait_list(&mut stream, |l| health(l, &pf1_vf1) == Some(UNHEALTHY)).await;
    assert_eq!(health(&list, &pf0_vf), Some(HEALTHY), "{list:?}");

    // Both ports down: the bond has no carrier, every VF is unhealthy.
    ip(&["link", "set", &h.node.pf(1).wire.name, "down"]);
    let list = wait_list(&mut stream, |l| health(l, &pf0_vf) == Some(UNHEALTHY)).await;
    assert_eq!(health(&list, &pf1_vf0), Some(UNHEALTHY));

    // PF 1 back: the bond is up again, so PF 0's VFs are too.
    ip(&["link", "set", &h.node.pf(1).wire.name, "up"]);
    wait_list(&mut stream, |l| health(l, &pf0_vf) == Some(HEALTHY)).await;

    // PF 0 released from the bond (netlink): its own carrier counts again.
    ip(&["link", "set", &up0, "nomaster"]);
    wait_list(&mut stream, |l| health(l, &pf0_vf) == Some(UNHEALTHY)).await;
    ip(&["link", "set", &h.node.pf(0).wire.name, "up"]);
    wait_list(&mut stream, |l| health(l, &pf0_vf) == Some(HEALTHY)).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pf_enslaved_to_a_vf_lag_bond_after_start_up_follows_the_bond() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("le"), 2, 2));
    // The bond exists before the plugin starts, without slaves yet: its
    // `master` links are taken off the uplinks until they are enslaved.
    let (up0, up1) = (h.node.pf(0).uplink.name.clone(), h.node.pf(1).uplink.name.clone());
    let bond = Bridge::new(&format!("{}bd", h.node.prefix()), &[]);
    h.node
        .mirror_bond(&bond.0, "802.3ad 4", bond.ifindex(), &[0, 1])
        .unwrap();
    let class_net = h.node.sysfs_root().join("class/net");
    let masters: Vec<(std::path::PathBuf, std::path::PathBuf)> = [&up0, &up1]
        .iter()
        .map(|uplink| {
            let link = std::fs::canonicalize(class_net.join(uplink))
                .unwrap()
                .join("master");
            let target = std::fs::read_link(&link).unwrap();
            std::fs::remove_file(&link).unwrap();
            (link, target)
        })
        .collect();
    let mut stream = start_guide_all_healthy(&mut h).await;

    // Enslaved while the plugin runs: as on a real host, no uevent and no
    // change in a directory the plugin watches; netlink tells.
    for (link, target) in &masters {
        std::os::unix::fs::symlink(target, link).unwrap();
    }
    ip(&["link", "set", &up0, "master", &bond.0]);
    ip(&["link", "set", &up1, "master", &bond.0]);

    let pf0_vf = h.node.vf(0, 0).pci.to_string();
    let pf1_vf1 = h.node.vf(1, 1).pci.to_string();
    ip(&["link", "set", &h.node.pf(0).wire.name, "down"]);
    // A representor removed after the carrier loss: its VF's health shows
    // the carrier event was processed too.
    ip(&["link", "del", h.node.vf(1, 1).representor_name().unwrap()]);
    wait_list(&mut stream, |l| {
        health(l, &pf1_vf1) == Some(UNHEALTHY) && health(l, &pf0_vf) == Some(HEALTHY)
    })
    .await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpu_mode_bluefield_vfs_are_healthy_by_link_alone() {
    let mut h = Harness::node(
        SimNodeSpec::new(prefix("du"), 1, 2)
            .with_model(Model::BlueField2)
            .with_eswitch(EswitchMode::Legacy)
            .with_first_bus(0x23),
    );
    h.start(
        r#"{"resourceList": [{"resourcePrefix": "nvidia.com", "resourceName": "bf2",
            "selectors": {"vendors": ["15b3"], "devices": ["101e"]}}]}"#,
    );
    h.kubelet().next_registration().await;
    let mut client = h.client("nvidia.com_bf2.sock").await;
    let mut stream = list_and_watch(&mut client).await;
    let list = wait_list(&mut stream, |l| l.devices.len() == 2).await;
    assert!(list.devices.iter().all(|d| d.health == HEALTHY), "{list:?}");
    let response = allocate_one(&h, "nvidia.com_bf2.sock", &[h.node.vf(0, 0).pci.to_string()]).await;
    assert_eq!(
        response.envs["PCIDEVICE_NVIDIA_COM_BF2"],
        h.node.vf(0, 0).pci.to_string()
    );

    // The link still counts.
    ip(&["link", "set", &h.node.pf(0).wire.name, "down"]);
    wait_list(&mut stream, |l| l.devices.iter().all(|d| d.health == UNHEALTHY)).await;
    ip(&["link", "set", &h.node.pf(0).wire.name, "up"]);
    wait_list(&mut stream, |l| l.devices.iter().all(|d| d.health == HEALTHY)).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdma_vf_whose_rdma_device_left_the_host_stays_in_its_pool() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("rx"), 1, 3).with_rdma(true));
    h.start(RDMA_CONFIG);
    h.kubelet().next_registration().await;
    let mut client = h.client(RDMA_SOCKET).await;
    let mut stream = list_and_watch(&mut client).await;
    wait_list(&mut stream, |l| l.devices.len() == 3).await;

    // Exclusive RDMA netns mode: VF 1's RDMA device follows it into a pod
    // and leaves the host's sysfs. In the same pass VF 2's function goes
    // away, so the list shows when the rediscovery has happened.
    let root = h.node.sysfs_root().to_path_buf();
    let devices = root.join("bus/pci/devices");
    let vf1 = h.node.vf(0, 1).clone();
    let (ibdev, n) = vf1.rdma.clone().unwrap();
    let vf1_dir = devices.join(vf1.pci.to_string());
    for dir in ["infiniband", "infiniband_verbs", "infiniband_mad"] {
        std::fs::remove_dir_all(vf1_dir.join(dir)).unwrap();
    }
    for link in [
        format!("class/infiniband/{ibdev}"),
        format!("class/infiniband_verbs/uverbs{n}"),
        format!("class/infiniband_mad/umad{n}"),
        format!("class/infiniband_mad/issm{n}"),
    ] {
        std::fs::remove_file(root.join(link)).unwrap();
    }
    let pf = devices.join(h.node.pf(0).pci.to_string());
    std::fs::remove_file(pf.join("virtfn2")).unwrap();
    std::fs::remove_file(devices.join(h.node.vf(0, 2).pci.to_string())).unwrap();
    std::fs::write(pf.join("sriov_numvfs"), "2\n").unwrap();

    let list = wait_list(&mut stream, |l| l.devices.len() == 2).await;
    assert!(
        list.devices.iter().any(|d| d.id == vf1.pci.to_string()),
        "{list:?}"
    );
    // Allocated again later (back on the host in reality): the remembered
    // nodes are still handed out.
    let response = allocate_one(&h, RDMA_SOCKET, &[vf1.pci.to_string()]).await;
    let uverbs = format!("/dev/infiniband/uverbs{n}");
    assert!(
        response.devices.iter().any(|d| d.host_path == uverbs),
        "{response:?}"
    );
    h.shutdown().await;
}
