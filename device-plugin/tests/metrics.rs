//! `--metrics-address`: the Prometheus exposition moves with what happens on
//! the node and to the kubelet; `/healthz`, `/readyz`, `/livez` answer from
//! the daemon, on the metrics address and on the status socket.

mod common;

use common::*;
use kubelet_proto::v1beta1::{ContainerPreferredAllocationRequest, PreferredAllocationRequest};
use simnode::SimNodeSpec;
use sriov_device_plugin::daemon::Settings;
use sriov_device_plugin::status::STATUS_SOCKET;

const RESOURCE: &str = r#"resource="mellanox.com/cx5_sriov_switchdev""#;

fn series(name: &str, extra: &str) -> String {
    format!("sriov_device_plugin_{name}{{{RESOURCE}{extra}}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_when_a_pf_goes_down_an_allocate_happens_and_the_kubelet_restarts() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("me"), 2, 3));
    let address = free_tcp_address();
    h.write_config(GUIDE_CONFIG);
    h.start_with(Settings {
        metrics_address: Some(address),
        ..h.settings()
    });
    h.kubelet().next_registration().await;
    let healthy = series("devices", r#",health="healthy""#);
    let unhealthy = series("devices", r#",health="unhealthy""#);
    let registrations = series("kubelet_registrations_total", "");
    let text = wait_sample(address, &series("registered", ""), |v| v == 1.0).await;
    assert_eq!(sample(&text, &healthy), Some(6.0), "{text}");
    assert_eq!(sample(&text, &unhealthy), Some(0.0), "{text}");
    assert_eq!(sample(&text, &registrations), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, &series("kubelet_registration_failures_total", "")),
        Some(0.0)
    );
    let version = format!(
        r#"sriov_device_plugin_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &version), Some(1.0), "{text}");

    // A ListAndWatch stream is counted while open.
    let mut client = h.client(GUIDE_SOCKET).await;
    let mut stream = list_and_watch(&mut client).await;
    next_list(&mut stream).await;
    wait_sample(address, &series("list_and_watch_streams", ""), |v| v == 1.0).await;

    // PF 0 down: its 3 VFs turn unhealthy, 3 transitions.
    let uplink = h.node.pf(0).uplink.name.clone();
    ip(&["link", "set", &uplink, "down"]);
    let text = wait_sample(address, &unhealthy, |v| v == 3.0).await;
    assert_eq!(sample(&text, &healthy), Some(3.0), "{text}");
    let to_unhealthy = series("health_transitions_total", r#",to="unhealthy""#);
    let to_healthy = series("health_transitions_total", r#",to="healthy""#);
    assert_eq!(sample(&text, &to_unhealthy), Some(3.0), "{text}");
    assert_eq!(sample(&text, &to_healthy), Some(0.0), "{text}");
    ip(&["link", "set", &uplink, "up"]);
    let text = wait_sample(address, &healthy, |v| v == 6.0).await;
    assert_eq!(sample(&text, &to_healthy), Some(3.0), "{text}");

    // An Allocate of two VFs, and a GetPreferredAllocation.
    let ids = [h.node.vf(1, 0).pci.to_string(), h.node.vf(1, 2).pci.to_string()];
    allocate_one(&h, GUIDE_SOCKET, &ids).await;
    client
        .get_preferred_allocation(PreferredAllocationRequest {
            container_requests: vec![ContainerPreferredAllocationRequest {
                available_device_i_ds: ids.to_vec(),
                must_include_device_i_ds: vec![],
                allocation_size: 1,
            }],
        })
        .await
        .unwrap();
    let (_, text) = http_get_tcp(address, "/metrics").await;
    let inf_bucket =
        format!("sriov_device_plugin_allocate_duration_seconds_bucket{{le=\"+Inf\",{RESOURCE}}}");
    for (name, want) in [
        (series("allocated_devices_total", ""), 2.0),
        (series("allocate_duration_seconds_count", ""), 1.0),
        (inf_bucket, 1.0),
        (series("get_preferred_allocation_duration_seconds_count", ""), 1.0),
    ] {
        assert_eq!(sample(&text, &name), Some(want), "{name} in\n{text}");
    }
    // A refused Allocate takes time too but hands nothing out.
    let mut refused = h.client(GUIDE_SOCKET).await;
    let unknown = kubelet_proto::v1beta1::AllocateRequest {
        container_requests: vec![kubelet_proto::v1beta1::ContainerAllocateRequest {
            devices_ids: vec!["0000:ff:1f.7".into()],
        }],
    };
    refused.allocate(unknown).await.unwrap_err();
    let (_, text) = http_get_tcp(address, "/metrics").await;
    for (name, want) in [
        (series("allocated_devices_total", ""), 2.0),
        (series("allocate_duration_seconds_count", ""), 2.0),
    ] {
        assert_eq!(sample(&text, &name), Some(want), "{name} in\n{text}");
    }

    // The kubelet restarts: it empties the directory, then creates kubelet.sock.
    h.kubelet.take().unwrap().stop();
    for entry in std::fs::read_dir(h.dp_dir()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let mut kubelet = Kubelet::registrar(&h.dp_dir()).unwrap();
    kubelet.next_registration().await;
    let text = wait_sample(address, &registrations, |v| v == 2.0).await;
    assert_eq!(sample(&text, &series("registered", "")), Some(1.0), "{text}");
    // The old stream ended with the old socket (after the lists it had queued).
    while let Ok(Some(_)) = tokio::time::timeout(WAIT, stream.message()).await.unwrap() {}
    wait_sample(address, &series("list_and_watch_streams", ""), |v| v == 0.0).await;
    // The status socket the kubelet removed is back.
    let status_socket = h.dp_dir().join(STATUS_SOCKET);
    wait_for("status socket recreated", || status_socket.exists()).await;
    let (code, body) = http_get_unix(&status_socket, "/livez").await;
    assert_eq!(code, 200, "{body}");
    h.kubelet = Some(kubelet);
    h.shutdown().await;
    assert!(!status_socket.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_name_the_resource_not_registered_until_the_kubelet_accepts_it() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("hz"), 1, 1));
    h.kubelet.take().unwrap().stop();
    let address = free_tcp_address();
    h.write_config(GUIDE_CONFIG);
    h.start_with(Settings {
        metrics_address: Some(address),
        ..h.settings()
    });
    wait_for("resource socket", || h.dp_dir().join(GUIDE_SOCKET).exists()).await;
    let status_socket = h.dp_dir().join(STATUS_SOCKET);
    for path in ["/healthz", "/readyz"] {
        let (code, body) = http_get_tcp(address, path).await;
        assert_eq!(code, 503, "{path}: {body}");
        assert_eq!(
            body, "resource mellanox.com/cx5_sriov_switchdev: not registered with the kubelet\n",
            "{path}"
        );
        assert_eq!(http_get_unix(&status_socket, path).await, (code, body));
    }
    // Not registered yet, but live: the event loop answers.
    let (code, body) = http_get_tcp(address, "/livez").await;
    assert_eq!((code, body.as_str()), (200, "live: the event loop answered\n"));
    let (_, text) = http_get_tcp(address, "/metrics").await;
    assert!(
        sample(&text, &series("kubelet_registration_failures_total", "")).is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert_eq!(sample(&text, &series("registered", "")), Some(0.0), "{text}");

    h.kubelet = Some(Kubelet::registrar(&h.dp_dir()).unwrap());
    h.kubelet().next_registration().await;
    wait_sample(address, &series("registered", ""), |v| v == 1.0).await;
    for path in ["/healthz", "/readyz"] {
        let (code, body) = http_get_tcp(address, path).await;
        assert_eq!(
            (code, body.as_str()),
            (200, "ready: 1 resources registered and serving\n"),
            "{path}"
        );
    }
    let (code, body) = http_get_tcp(address, "/nope").await;
    assert_eq!(code, 404, "{body}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_socket_serves_health_and_metrics_without_a_metrics_address() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("mo"), 1, 1));
    h.start(GUIDE_CONFIG);
    h.kubelet().next_registration().await;
    let status_socket = h.dp_dir().join(STATUS_SOCKET);
    wait_for("status socket", || status_socket.exists()).await;
    let (code, text) = http_get_unix(&status_socket, "/metrics").await;
    assert_eq!(code, 200);
    assert!(text.contains("sriov_device_plugin_devices{"), "{text}");
    h.shutdown().await;
}
