//! The Go plugin's own DaemonSets (pinned in `go-daemonsets/`) with only the
//! image swapped for ours: the binary gets exactly their `args`, sees their
//! volumes at their mount paths (a private mount namespace binds a temporary
//! "host" directory per volume; overlays keep the real /etc, /var and /run
//! untouched) and registers with a kubelet stand-in.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use kubelet_proto::v1beta1::device_plugin_client::DevicePluginClient;
use serde_yaml_ng::Value as Yaml;
use simnode::SimNodeSpec;

const BIN: &str = env!("CARGO_BIN_EXE_sriov-device-plugin");

/// The first DaemonSet of a pinned file: (container args, [(mountPath, volume)]).
fn daemonset(file: &str) -> (Vec<String>, Vec<(String, Yaml)>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/go-daemonsets")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    let ds = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .find(|d: &Yaml| d["kind"].as_str() == Some("DaemonSet"))
        .unwrap();
    let spec = &ds["spec"]["template"]["spec"];
    let container = &spec["containers"][0];
    let args = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let volumes = spec["volumes"].as_sequence().unwrap();
    let mounts = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| {
            let volume = volumes.iter().find(|v| v["name"] == m["name"]).unwrap().clone();
            (m["mountPath"].as_str().unwrap().to_string(), volume)
        })
        .collect();
    (args, mounts)
}

/// The directory standing in for a volume's host side under `host`: hostPath
/// volumes at their host path, the ConfigMap as a directory holding its items.
fn host_dir(host: &Path, volume: &Yaml) -> PathBuf {
    if let Some(path) = volume["hostPath"]["path"].as_str() {
        return host.join(path.trim_start_matches('/'));
    }
    let name = volume["configMap"]["name"].as_str().unwrap();
    host.join("configmaps").join(name)
}

/// The top-level directory a mount path lives in, symlinks resolved (`/var/run` is `/run`).
fn top_dir(mount_path: &str) -> String {
    let mut path = PathBuf::new();
    for part in Path::new(mount_path).components() {
        path.push(part);
        match std::fs::canonicalize(&path) {
            Ok(real) => path = real,
            Err(_) => break,
        }
    }
    let top = path.components().nth(1).unwrap();
    format!("/{}", top.as_os_str().to_str().unwrap())
}

/// A shell script for a private mount namespace: overlay each top-level
/// directory the mounts need (so mount points can be created), bind the
/// volumes, then exec the binary with `args`.
fn script(host: &Path, mounts: &[(String, Yaml)], args: &[String]) -> String {
    let mut lines = vec!["set -e".to_string()];
    let mut tops: Vec<String> = mounts.iter().map(|(m, _)| top_dir(m)).collect();
    tops.sort();
    tops.dedup();
    for (i, top) in tops.iter().enumerate() {
        let (upper, work) = (
            host.join(format!("overlay{i}/u")),
            host.join(format!("overlay{i}/w")),
        );
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        lines.push(format!(
            "mount -t overlay overlay -o lowerdir={top},upperdir={},workdir={} {top}",
            upper.display(),
            work.display()
        ));
    }
    for (mount_path, volume) in mounts {
        let dir = host_dir(host, volume);
        std::fs::create_dir_all(&dir).unwrap();
        lines.push(format!("mkdir -p {mount_path}"));
        lines.push(format!("mount --bind {} {mount_path}", dir.display()));
    }
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    lines.push(format!("exec {BIN} {}", quoted.join(" ")));
    lines.join("\n")
}

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the DaemonSet of `file` on a simulated node and checks that it
/// registers, serves the VFs and logs as its `--log-level=10` asks.
async fn go_daemonset_registers(file: &str, tag: &str) {
    let (args, mounts) = daemonset(file);
    assert_eq!(
        args,
        ["--log-dir=sriovdp", "--log-level=10"],
        "{file}: args changed upstream"
    );
    let h = Harness::node(SimNodeSpec::new(prefix(tag), 1, 2));
    let host = tempfile::tempdir().unwrap();
    let script = script(host.path(), &mounts, &args);
    let config = host_dir(
        host.path(),
        &mounts.iter().find(|(m, _)| m == "/etc/pcidp").unwrap().1,
    );
    std::fs::write(config.join("config.json"), GUIDE_CONFIG).unwrap();
    let dp = host.path().join("var/lib/kubelet/device-plugins");
    let registry = host.path().join("var/lib/kubelet/plugins_registry");
    let mut kubelet = TestKubelet::start(&dp);
    let stderr = host.path().join("stderr");
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c", &script])
        .env("SRIOV_SYSFS_ROOT", h.node.sysfs_root())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut child = Kill(child);

    // plugins_registry is mounted, as on any recent kubelet: the plugin watcher is used.
    let info = plugin_watcher_registers(&registry.join(GUIDE_SOCKET)).await;
    assert_eq!(info.name, "mellanox.com/cx5_sriov_switchdev");
    // The endpoint is the container's path, which is the host's (same mount path).
    assert_eq!(
        info.endpoint,
        format!("/var/lib/kubelet/device-plugins/{GUIDE_SOCKET}")
    );
    let channel = connect_when_listening(&dp.join(GUIDE_SOCKET)).await;
    let list = next_list(&mut list_and_watch(&mut DevicePluginClient::new(channel)).await).await;
    assert_eq!(list.devices.len(), 2);
    assert!(kubelet.registrations.try_recv().is_err(), "registered twice");

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.0.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .unwrap()
        .unwrap();
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!dp.join(GUIDE_SOCKET).exists());
    // --log-dir: one warning; --log-level=10: debug lines; not a terminal: no colours.
    assert_eq!(log.matches("--log-dir").count(), 1, "{log}");
    assert!(
        log.lines().any(|l| l.contains("WARN") && l.contains("--log-dir")),
        "{log}"
    );
    assert!(log.contains("DEBUG") && log.contains("discovery done"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log}");
    kubelet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_v3_6_2_daemonset_with_our_image_registers() {
    go_daemonset_registers("sriovdp-daemonset-v3.6.2.yaml", "g6").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_latest_release_daemonset_with_our_image_registers() {
    go_daemonset_registers("sriovdp-daemonset-v3.11.0.yaml", "gl").await;
}
