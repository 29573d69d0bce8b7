//! How the daemon registers with the kubelet, decided like the Go plugin: the
//! plugin watcher when `<kubelet root>/plugins_registry` exists and the kubelet
//! queries it, else `kubelet.sock`; `--registration-mode` forces one.

mod common;

use std::time::{Duration, Instant};

use common::*;
use simnode::SimNodeSpec;
use sriov_device_plugin::daemon::Settings;
use sriov_device_plugin::registration::{RegistrationMode, PLUGIN_WATCHER_GRACE};

/// The kubelet's `plugins_registry`, next to the harness's device plugin directory.
fn kubelet_registry(h: &Harness) -> std::path::PathBuf {
    h.dp_dir().parent().unwrap().join("plugins_registry")
}

fn settings(h: &Harness, registration: RegistrationMode) -> Settings {
    Settings {
        registration,
        ..h.settings()
    }
}

/// Starts the daemon in `mode` and asserts it registers through `kubelet.sock`
/// before the plugin-watcher grace period could have passed.
async fn registers_with_kubelet_sock_at_once(h: &mut Harness, mode: RegistrationMode) {
    h.write_config(GUIDE_CONFIG);
    let started = Instant::now();
    h.start_with(settings(h, mode));
    let registration = h.kubelet().next_registration().await;
    let elapsed = started.elapsed();
    assert!(elapsed < PLUGIN_WATCHER_GRACE, "{elapsed:?}");
    assert_eq!(registration.endpoint, GUIDE_SOCKET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_uses_the_plugin_watcher_when_plugins_registry_exists() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("ra"), 1, 1));
    std::fs::create_dir_all(kubelet_registry(&h)).unwrap();
    h.write_config(GUIDE_CONFIG);
    h.start_with(settings(&h, RegistrationMode::Auto));
    let socket = kubelet_registry(&h).join(GUIDE_SOCKET);
    assert_eq!(
        plugin_watcher_registers(&socket).await.name,
        "mellanox.com/cx5_sriov_switchdev"
    );
    // Queried in time: no kubelet.sock registration after the grace period either.
    tokio::time::sleep(PLUGIN_WATCHER_GRACE + Duration::from_secs(1)).await;
    assert!(h.kubelet().registrations.try_recv().is_err());
    h.shutdown().await;
    assert!(!socket.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_falls_back_to_kubelet_sock_when_the_watcher_never_asks_and_stays_there() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("rf"), 1, 1));
    std::fs::create_dir_all(kubelet_registry(&h)).unwrap();
    h.write_config(GUIDE_CONFIG);
    let started = Instant::now();
    h.start_with(settings(&h, RegistrationMode::Auto));
    let socket = kubelet_registry(&h).join(GUIDE_SOCKET);
    wait_for("plugin-watcher socket", || socket.exists()).await;
    // A kubelet that does not watch plugins_registry (the directory came from a
    // hostPath mount) never calls GetInfo: after the grace period, kubelet.sock.
    let registration = h.kubelet().next_registration().await;
    assert!(
        started.elapsed() >= PLUGIN_WATCHER_GRACE,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(registration.resource_name, "mellanox.com/cx5_sriov_switchdev");
    assert_eq!(registration.endpoint, GUIDE_SOCKET);
    // Once ignored, a kubelet restart gets its registration at once, not after another wait.
    h.kubelet.take().unwrap().stop();
    let restarted = Instant::now();
    h.kubelet = Some(Kubelet::registrar(&h.dp_dir()).unwrap());
    let again = h.kubelet().next_registration().await;
    let elapsed = restarted.elapsed();
    assert!(elapsed < PLUGIN_WATCHER_GRACE, "{elapsed:?}");
    assert_eq!(again.endpoint, GUIDE_SOCKET);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_registers_with_kubelet_sock_when_plugins_registry_is_absent() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("rk"), 1, 1));
    registers_with_kubelet_sock_at_once(&mut h, RegistrationMode::Auto).await;
    assert!(!kubelet_registry(&h).exists());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_socket_mode_ignores_an_existing_plugins_registry() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("rs"), 1, 1));
    std::fs::create_dir_all(kubelet_registry(&h)).unwrap();
    registers_with_kubelet_sock_at_once(&mut h, RegistrationMode::KubeletSocket).await;
    assert_eq!(std::fs::read_dir(kubelet_registry(&h)).unwrap().count(), 0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_watcher_mode_never_falls_back_to_kubelet_sock() {
    let mut h = Harness::node(SimNodeSpec::new(prefix("rp"), 1, 1));
    std::fs::create_dir_all(kubelet_registry(&h)).unwrap();
    h.write_config(GUIDE_CONFIG);
    h.start_with(settings(&h, RegistrationMode::PluginWatcher));
    let socket = kubelet_registry(&h).join(GUIDE_SOCKET);
    wait_for("plugin-watcher socket", || socket.exists()).await;
    tokio::time::sleep(PLUGIN_WATCHER_GRACE + Duration::from_secs(1)).await;
    assert!(h.kubelet().registrations.try_recv().is_err());
    assert_eq!(
        plugin_watcher_registers(&socket).await.name,
        "mellanox.com/cx5_sriov_switchdev"
    );
    h.shutdown().await;
}
