//! The device plugin over real gRPC on Unix sockets, on a simulated node:
//! registration, every RPC, health, kubelet restarts, config reloads.

mod common;

use common::*;
use kubelet_proto::v1beta1::{
    AllocateRequest, ContainerAllocateRequest, ContainerPreferredAllocationRequest, Empty,
    PreStartContainerRequest, PreferredAllocationRequest, HEALTHY, UNHEALTHY,
};
use simnode::SimNodeSpec;
use sriov_device_plugin::device_info::DeviceInfo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_and_answers_every_rpc() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("rp"), 2, 4).with_numa_node(Some(1)));
    h.start(GUIDE_CONFIG);
    let reg = h.kubelet().next_registration().await;
    assert_eq!(reg.version, "v1beta1");
    assert_eq!(reg.endpoint, GUIDE_SOCKET);
    assert_eq!(reg.resource_name, "mellanox.com/cx5_sriov_switchdev");
    assert!(reg.options.as_ref().unwrap().get_preferred_allocation_available);

    let mut client = h.client(GUIDE_SOCKET).await;
    let options = client
        .get_device_plugin_options(Empty {})
        .await
        .unwrap()
        .into_inner();
    assert!(options.get_preferred_allocation_available);
    assert!(!options.pre_start_required);

    let mut stream = list_and_watch(&mut client).await;
    let list = next_list(&mut stream).await;
    let expected: Vec<String> = h.node.layout().vfs().map(|vf| vf.pci.to_string()).collect();
    let ids: Vec<String> = list.devices.iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids, expected);
    for device in &list.devices {
        assert_eq!(device.health, HEALTHY, "{device:?}");
        assert_eq!(device.topology.as_ref().unwrap().nodes[0].id, 1);
    }

    // Allocate two VFs of different PFs, in that order.
    let (a, b) = (h.node.vf(1, 2).clone(), h.node.vf(0, 0).clone());
    let response = client
        .allocate(AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: vec![a.pci.to_string(), b.pci.to_string()],
            }],
        })
        .await
        .unwrap()
        .into_inner();
    let envs = &response.container_responses[0].envs;
    assert_eq!(
        envs["PCIDEVICE_MELLANOX_COM_CX5_SRIOV_SWITCHDEV"],
        format!("{},{}", a.pci, b.pci)
    );
    let info: serde_json::Value =
        serde_json::from_str(&envs["PCIDEVICE_MELLANOX_COM_CX5_SRIOV_SWITCHDEV_INFO"]).unwrap();
    assert_eq!(info[a.pci.to_string()]["generic"]["deviceID"], a.pci.to_string());
    assert!(response.container_responses[0].devices.is_empty());
    let file = h
        .devinfo_dir()
        .join(format!("mellanox.com-cx5_sriov_switchdev-{}-device.json", a.pci));
    let written: DeviceInfo = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written.kind, "pci");
    assert_eq!(written.version, "1.1.0");
    assert_eq!(written.pci.pci_address, a.pci.to_string());
    assert_eq!(written.pci.pf_pci_address, Some(h.node.pf(1).pci.to_string()));
    assert_eq!(written.pci.representor_device.as_deref(), a.representor_name());

    // Unknown device: refused, nothing written.
    let before = std::fs::read_dir(h.devinfo_dir()).unwrap().count();
    let err = client
        .allocate(AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: vec![h.node.vf(0, 1).pci.to_string(), "0000:ff:1f.7".to_string()],
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("0000:ff:1f.7"), "{}", err.message());
    assert_eq!(std::fs::read_dir(h.devinfo_dir()).unwrap().count(), before);

    // Preferred allocation: stays on the PF of the must-include device.
    let must = h.node.vf(1, 3).pci.to_string();
    let answer = client
        .get_preferred_allocation(PreferredAllocationRequest {
            container_requests: vec![ContainerPreferredAllocationRequest {
                available_device_i_ds: expected.clone(),
                must_include_device_i_ds: vec![must.clone()],
                allocation_size: 3,
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.container_responses[0].device_i_ds,
        [
            must,
            h.node.vf(1, 0).pci.to_string(),
            h.node.vf(1, 1).pci.to_string()
        ]
    );

    client
        .pre_start_container(PreStartContainerRequest { devices_ids: vec![] })
        .await
        .unwrap();

    // Shutdown removes the socket and the device-info files; the stream ends.
    h.shutdown().await;
    assert!(!h.dp_dir().join(GUIDE_SOCKET).exists());
    assert!(!file.exists());
    let end = tokio::time::timeout(WAIT, stream.message()).await.unwrap();
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_uplink_and_representor_links() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("hl"), 2, 2));
    h.start(GUIDE_CONFIG);
    h.kubelet().next_registration().await;
    let mut client = h.client(GUIDE_SOCKET).await;
    let mut stream = list_and_watch(&mut client).await;
    let list = next_list(&mut stream).await;
    assert!(list.devices.iter().all(|d| d.health == HEALTHY));
    // No NUMA node: no topology.
    assert!(list.devices.iter().all(|d| d.topology.is_none()));

    let uplink = h.node.pf(0).uplink.name.clone();
    let pf0_vf = h.node.vf(0, 1).pci.to_string();
    let pf1_vf = h.node.vf(1, 1).pci.to_string();
    ip(&["link", "set", &uplink, "down"]);
    let list = wait_list(&mut stream, |l| health(l, &pf0_vf) == Some(UNHEALTHY)).await;
    assert_eq!(health(&list, &h.node.vf(0, 0).pci.to_string()), Some(UNHEALTHY));
    assert_eq!(health(&list, &pf1_vf), Some(HEALTHY));
    let err = client
        .allocate(AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: vec![pf0_vf.clone()],
            }],
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("unhealthy"), "{}", err.message());

    ip(&["link", "set", &uplink, "up"]);
    wait_list(&mut stream, |l| l.devices.iter().all(|d| d.health == HEALTHY)).await;

    // The wire side going down takes the uplink's carrier away too.
    let wire = h.node.pf(1).wire.name.clone();
    ip(&["link", "set", &wire, "down"]);
    wait_list(&mut stream, |l| health(l, &pf1_vf) == Some(UNHEALTHY)).await;
    ip(&["link", "set", &wire, "up"]);
    wait_list(&mut stream, |l| health(l, &pf1_vf) == Some(HEALTHY)).await;

    // A representor vanishing makes its VF unhealthy.
    let rep = h.node.vf(1, 1).representor_name().unwrap().to_string();
    ip(&["link", "del", &rep]);
    let list = wait_list(&mut stream, |l| health(l, &pf1_vf) == Some(UNHEALTHY)).await;
    assert_eq!(health(&list, &h.node.vf(1, 0).pci.to_string()), Some(HEALTHY));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_restart_recreates_sockets_and_registers_again() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("kr"), 1, 2));
    h.start(GUIDE_CONFIG);
    h.kubelet().next_registration().await;
    let socket = h.dp_dir().join(GUIDE_SOCKET);
    let mut client = h.client(GUIDE_SOCKET).await;
    let mut stream = list_and_watch(&mut client).await;
    next_list(&mut stream).await;

    // A restarting kubelet removes every socket, then creates kubelet.sock.
    h.kubelet.take().unwrap().stop();
    std::fs::remove_file(&socket).unwrap();
    let mut kubelet = Kubelet::registrar(&h.dp_dir()).unwrap();
    let reg = kubelet.next_registration().await;
    assert_eq!(reg.endpoint, GUIDE_SOCKET);
    assert!(socket.exists());
    // The old stream ended; a new one works.
    let end = tokio::time::timeout(WAIT, stream.message()).await.unwrap();
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    let mut client = h.client(GUIDE_SOCKET).await;
    let mut stream = list_and_watch(&mut client).await;
    assert_eq!(next_list(&mut stream).await.devices.len(), 2);

    // Only our socket removed: recreated and registered again.
    std::fs::remove_file(&socket).unwrap();
    let reg = kubelet.next_registration().await;
    assert_eq!(reg.resource_name, "mellanox.com/cx5_sriov_switchdev");
    wait_for("socket recreated", || socket.exists()).await;
    h.kubelet = Some(kubelet);
    h.shutdown().await;
    assert!(!socket.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_once_kubelet_appears() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("ka"), 1, 1));
    h.kubelet.take().unwrap().stop();
    h.start(GUIDE_CONFIG);
    wait_for("socket", || h.dp_dir().join(GUIDE_SOCKET).exists()).await;
    h.kubelet = Some(Kubelet::registrar(&h.dp_dir()).unwrap());
    assert_eq!(h.kubelet().next_registration().await.endpoint, GUIDE_SOCKET);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_add_remove_and_reselect_resources_live() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("cf"), 2, 4));
    h.start(GUIDE_CONFIG);
    h.kubelet().next_registration().await;
    let mut client = h.client(GUIDE_SOCKET).await;
    let mut stream = list_and_watch(&mut client).await;
    assert_eq!(next_list(&mut stream).await.devices.len(), 8);

    // PF 0's VFs 0 and 2-3 move to a new resource (named by PF netdev, any
    // case, with ranges); the first resource keeps the rest.
    let pf0 = h.node.pf(0).uplink.name.to_uppercase();
    let config = format!(
        r#"{{"resourceList": [
            {{"resourceName": "split", "selectors": {{"pfNames": ["{pf0}#0,2-3"]}}}},
            {{"resourcePrefix": "mellanox.com", "resourceName": "cx5_sriov_switchdev",
              "selectors": {{"vendors": ["15b3"], "devices": ["1018"]}}}}
        ]}}"#
    );
    h.write_config(&config);
    let reg = h.kubelet().next_registration().await;
    assert_eq!(reg.resource_name, "intel.com/split");
    assert_eq!(reg.endpoint, "intel.com_split.sock");
    let list = wait_list(&mut stream, |l| l.devices.len() == 5).await;
    assert!(list
        .devices
        .iter()
        .any(|d| d.id == h.node.vf(0, 1).pci.to_string()));
    let mut split = h.client("intel.com_split.sock").await;
    let mut split_stream = list_and_watch(&mut split).await;
    let ids: Vec<String> = next_list(&mut split_stream)
        .await
        .devices
        .into_iter()
        .map(|d| d.id)
        .collect();
    let expected: Vec<String> = [0, 2, 3]
        .iter()
        .map(|i| h.node.vf(0, *i).pci.to_string())
        .collect();
    assert_eq!(ids, expected);

    // An invalid config is refused; the running one stays.
    h.write_config(r#"{"resourceList": [{"resourceName": "bad name"}]}"#);
    // A valid one removing the first resource stops it.
    h.write_config(
        r#"{"resourceList": [{"resourceName": "split", "selectors": {"vendors": ["15b3"], "devices": ["1018"]}}]}"#,
    );
    let list = wait_list(&mut split_stream, |l| l.devices.len() == 8).await;
    assert!(list.devices.iter().all(|d| d.health == HEALTHY));
    wait_for("old socket removed", || !h.dp_dir().join(GUIDE_SOCKET).exists()).await;
    let end = tokio::time::timeout(WAIT, stream.message()).await.unwrap();
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_vf_leaves_the_list_and_driver_bind_is_rediscovered() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("rd"), 1, 3));
    // A resource matching nothing yet is served with zero devices.
    let config = GUIDE_CONFIG.replace(
        "}]\n}",
        "}, {\"resourceName\": \"dpdk\", \"selectors\": {\"drivers\": [\"vfio-pci\"]}}]\n}",
    );
    h.start(&config);
    let mut names = vec![
        h.kubelet().next_registration().await.resource_name,
        h.kubelet().next_registration().await.resource_name,
    ];
    names.sort();
    assert_eq!(names, ["intel.com/dpdk", "mellanox.com/cx5_sriov_switchdev"]);
    let mut client = h.client(GUIDE_SOCKET).await;
    let mut stream = list_and_watch(&mut client).await;
    assert_eq!(next_list(&mut stream).await.devices.len(), 3);
    let mut dpdk = h.client("intel.com_dpdk.sock").await;
    let mut dpdk_stream = list_and_watch(&mut dpdk).await;
    assert!(next_list(&mut dpdk_stream).await.devices.is_empty());

    // Lowering numvfs removes the last VF's PCI function (as the kernel does:
    // the virtfn link and the bus/pci/devices entry go away).
    let root = h.node.sysfs_root().to_path_buf();
    let pf = root.join("bus/pci/devices").join(h.node.pf(0).pci.to_string());
    let gone = h.node.vf(0, 2).pci.to_string();
    std::fs::remove_file(pf.join("virtfn2")).unwrap();
    std::fs::remove_file(root.join("bus/pci/devices").join(&gone)).unwrap();
    std::fs::write(pf.join("sriov_numvfs"), "2\n").unwrap();
    let list = wait_list(&mut stream, |l| l.devices.len() == 2).await;
    assert!(list.devices.iter().all(|d| d.id != gone));

    // Rebinding VF 1 from mlx5_core to vfio-pci moves it to the other
    // resource without a restart; binding it back returns it.
    let vf1_id = h.node.vf(0, 1).pci.to_string();
    let vf1 = root.join("bus/pci/devices").join(&vf1_id);
    let driver = std::fs::read_link(vf1.join("driver")).unwrap();
    std::fs::remove_file(vf1.join("driver")).unwrap();
    wait_list(&mut stream, |l| l.devices.len() == 1).await;
    std::os::unix::fs::symlink("../../../bus/pci/drivers/vfio-pci", vf1.join("driver")).unwrap();
    let list = wait_list(&mut dpdk_stream, |l| l.devices.len() == 1).await;
    assert_eq!(list.devices[0].id, vf1_id);
    std::fs::remove_file(vf1.join("driver")).unwrap();
    std::os::unix::fs::symlink(&driver, vf1.join("driver")).unwrap();
    wait_list(&mut stream, |l| l.devices.len() == 2).await;
    wait_list(&mut dpdk_stream, |l| l.devices.is_empty()).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_eswitch_vfs_are_unhealthy_and_vfio_vfs_get_device_nodes() {
    let mut h = Harness::node(
        SimNodeSpec::new(prefix("lg"), 1, 2)
            .with_eswitch(simnode::EswitchMode::Legacy)
            .with_first_bus(0x21),
    );
    h.start(GUIDE_CONFIG);
    h.kubelet().next_registration().await;
    let mut client = h.client(GUIDE_SOCKET).await;
    let list = next_list(&mut list_and_watch(&mut client).await).await;
    assert_eq!(list.devices.len(), 2);
    assert!(list.devices.iter().all(|d| d.health == UNHEALTHY), "{list:?}");
    h.shutdown().await;

    let mut h =
        Harness::node(SimNodeSpec::new(prefix("vf"), 1, 2).with_vf_driver(simnode::VfDriver::VfioPci));
    h.start(
        r#"{"resourceList": [{"resourceName": "dpdk", "selectors": [{"drivers": ["vfio-pci"], "needVhostNet": true}]}]}"#,
    );
    h.kubelet().next_registration().await;
    let mut client = h.client("intel.com_dpdk.sock").await;
    let list = next_list(&mut list_and_watch(&mut client).await).await;
    assert_eq!(list.devices.len(), 2);
    assert!(list.devices.iter().all(|d| d.health == HEALTHY), "{list:?}");
    let vf = h.node.vf(0, 1).clone();
    let response = client
        .allocate(AllocateRequest {
            container_requests: vec![ContainerAllocateRequest {
                devices_ids: vec![vf.pci.to_string()],
            }],
        })
        .await
        .unwrap()
        .into_inner();
    let paths: Vec<&str> = response.container_responses[0]
        .devices
        .iter()
        .map(|d| d.host_path.as_str())
        .collect();
    let group = format!("/dev/vfio/{}", vf.iommu_group);
    assert_eq!(
        paths,
        ["/dev/vfio/vfio", group.as_str(), "/dev/vhost-net", "/dev/net/tun"]
    );
    assert_eq!(
        response.container_responses[0].envs["PCIDEVICE_INTEL_COM_DPDK"],
        vf.pci.to_string()
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_watcher_mode_answers_get_info() {
    use kubelet_proto::pluginregistration::registration_client::RegistrationClient;
    use kubelet_proto::pluginregistration::InfoRequest;

    let mut h = Harness::node(SimNodeSpec::new(prefix("pw"), 1, 1));
    std::fs::create_dir_all(h.registry_dir()).unwrap();
    h.write_config(GUIDE_CONFIG);
    let settings = sriov_device_plugin::daemon::Settings {
        plugin_registry_path: Some(h.registry_dir()),
        ..h.settings()
    };
    h.start_with(settings);
    let reg_socket = h.registry_dir().join(GUIDE_SOCKET);
    let info = plugin_watcher_registers(&reg_socket).await;
    assert_eq!(info.r#type, "DevicePlugin");
    assert_eq!(info.name, "mellanox.com/cx5_sriov_switchdev");
    assert_eq!(info.supported_versions, ["v1beta1"]);
    assert_eq!(
        std::path::Path::new(&info.endpoint),
        h.dp_dir().join(GUIDE_SOCKET)
    );
    // The device plugin socket at the endpoint serves the resource.
    let mut client = h.client(GUIDE_SOCKET).await;
    assert_eq!(
        next_list(&mut list_and_watch(&mut client).await)
            .await
            .devices
            .len(),
        1
    );
    // Nothing registered through kubelet.sock.
    assert!(h.kubelet().registrations.try_recv().is_err());
    // A removed registration socket comes back, so the watcher sees it again.
    std::fs::remove_file(&reg_socket).unwrap();
    wait_for("registry socket recreated", || reg_socket.exists()).await;
    let channel = sriov_device_plugin::transport::connect(&reg_socket, WAIT)
        .await
        .unwrap();
    let info = RegistrationClient::new(channel)
        .get_info(InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "mellanox.com/cx5_sriov_switchdev");
    h.shutdown().await;
    assert!(!reg_socket.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_eight_pfs_with_127_vfs_each() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("bg"), 8, 127).with_numa_node(Some(0)));
    h.start(GUIDE_CONFIG);
    h.kubelet().next_registration().await;
    let mut client = h.client(GUIDE_SOCKET).await;
    let mut stream = list_and_watch(&mut client).await;
    let list = next_list(&mut stream).await;
    assert_eq!(list.devices.len(), 8 * 127);
    assert!(list.devices.iter().all(|d| d.health == HEALTHY));
    let ids: Vec<String> = h.node.layout().vfs().map(|v| v.pci.to_string()).collect();
    let answer = client
        .get_preferred_allocation(PreferredAllocationRequest {
            container_requests: vec![ContainerPreferredAllocationRequest {
                available_device_i_ds: ids.clone(),
                must_include_device_i_ds: vec![],
                allocation_size: 4,
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.container_responses[0].device_i_ds, ids[..4]);
    let uplink = h.node.pf(7).uplink.name.clone();
    ip(&["link", "set", &uplink, "down"]);
    let list = wait_list(&mut stream, |l| l.devices.iter().any(|d| d.health == UNHEALTHY)).await;
    let list = if list.devices.iter().filter(|d| d.health == UNHEALTHY).count() == 127 {
        list
    } else {
        wait_list(&mut stream, |l| {
            l.devices.iter().filter(|d| d.health == UNHEALTHY).count() == 127
        })
        .await
    };
    assert!(list.devices[..7 * 127].iter().all(|d| d.health == HEALTHY));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_symlink_swap_reloads_the_config() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("cm"), 1, 2));
    // A mounted ConfigMap: config.json -> ..data/config.json, ..data -> ..v1.
    let dir = h.tmp.path().join("config");
    let version = |name: &str, text: &str| {
        std::fs::create_dir(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("config.json"), text).unwrap();
    };
    version("..v1", GUIDE_CONFIG);
    std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/config.json", h.config_file()).unwrap();
    h.start_with(h.settings());
    h.kubelet().next_registration().await;

    version(
        "..v2",
        r#"{"resourceList": [{"resourceName": "swapped", "selectors": {"vendors": ["15b3"]}}]}"#,
    );
    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    let reg = h.kubelet().next_registration().await;
    assert_eq!(reg.resource_name, "intel.com/swapped");
    wait_for("old socket removed", || !h.dp_dir().join(GUIDE_SOCKET).exists()).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysfs_change_during_an_unchanged_or_rejected_config_reload_is_rediscovered() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("rr"), 1, 3));
    h.start(GUIDE_CONFIG);
    h.kubelet().next_registration().await;
    let mut client = h.client(GUIDE_SOCKET).await;
    let mut stream = list_and_watch(&mut client).await;
    assert_eq!(next_list(&mut stream).await.devices.len(), 3);
    let root = h.node.sysfs_root().to_path_buf();

    // A ConfigMap-style rewrite with identical content, then numvfs lowered
    // within the 30 ms debounce: the reload finds nothing to apply, but the
    // vanished VF must still leave the list.
    h.write_config(GUIDE_CONFIG);
    let pf = root.join("bus/pci/devices").join(h.node.pf(0).pci.to_string());
    let gone = h.node.vf(0, 2).pci.to_string();
    std::fs::remove_file(pf.join("virtfn2")).unwrap();
    std::fs::remove_file(root.join("bus/pci/devices").join(&gone)).unwrap();
    std::fs::write(pf.join("sriov_numvfs"), "2\n").unwrap();
    let list = wait_list(&mut stream, |l| l.devices.len() == 2).await;
    assert!(list.devices.iter().all(|d| d.id != gone));

    // Same with a rejected config: VF 1 unbound from its driver right after.
    h.write_config(r#"{"resourceList": [{"resourceName": "typo"}]}"#);
    let vf1 = root.join("bus/pci/devices").join(h.node.vf(0, 1).pci.to_string());
    std::fs::remove_file(vf1.join("driver")).unwrap();
    let list = wait_list(&mut stream, |l| l.devices.len() == 1).await;
    assert_eq!(list.devices[0].id, h.node.vf(0, 0).pci.to_string());
    assert!(
        h.dp_dir().join(GUIDE_SOCKET).exists(),
        "running config was dropped"
    );
    h.shutdown().await;
}
