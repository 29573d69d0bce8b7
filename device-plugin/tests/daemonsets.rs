//! DaemonSets run as the kubelet would run them, on a simulated node: the Go
//! plugin's own (pinned in `go-daemonsets/`, its CDI variant included) with only the image swapped for
//! ours, and ours from `manifests/` on a node whose kubelet root is not
//! `/var/lib/kubelet`. The binary gets exactly the container's `args` and sees
//! its volumes at their mount paths: a private mount namespace binds a
//! temporary "host" directory per volume (overlays keep the real /etc, /var
//! and /run untouched); a kubelet stand-in takes the registration.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use kubelet_proto::pluginregistration::PluginInfo;
use kubelet_proto::v1beta1::device_plugin_client::DevicePluginClient;
use kubelet_proto::v1beta1::{AllocateRequest, ContainerAllocateRequest};
use serde_yaml_ng::Value as Yaml;
use simnode::SimNodeSpec;
use sriov_device_plugin::cdi::Spec;

const BIN: &str = env!("CARGO_BIN_EXE_sriov-device-plugin");

/// One volume mount of the container.
struct Mount {
    path: String,
    volume: Yaml,
    sub_path: Option<String>,
}

/// The container of a DaemonSet as the kubelet starts it.
struct Pod {
    command: Vec<String>,
    args: Vec<String>,
    mounts: Vec<Mount>,
}

fn strings(v: &Yaml) -> Vec<String> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The first DaemonSet of a YAML file.
fn daemonset(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    let found = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .find(|d: &Yaml| d["kind"].as_str() == Some("DaemonSet"));
    found.unwrap()
}

/// The first container of `ds`.
fn pod(ds: &Yaml) -> Pod {
    let spec = &ds["spec"]["template"]["spec"];
    let container = &spec["containers"][0];
    let volumes = spec["volumes"].as_sequence().unwrap();
    let mounts = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| Mount {
            path: m["mountPath"].as_str().unwrap().to_string(),
            volume: volumes.iter().find(|v| v["name"] == m["name"]).unwrap().clone(),
            sub_path: m["subPath"].as_str().map(str::to_string),
        })
        .collect();
    Pod {
        command: strings(&container["command"]),
        args: strings(&container["args"]),
        mounts,
    }
}

/// The directory standing in for a mount's host side: hostPath volumes under
/// `host` at their host path (`/sys` is the simulated node's tree), the
/// ConfigMap as a directory holding its items.
fn host_dir(host: &Path, sysfs: &Path, mount: &Mount) -> PathBuf {
    let dir = match mount.volume["hostPath"]["path"].as_str() {
        Some("/sys") => sysfs.to_path_buf(),
        Some(path) => host.join(path.trim_start_matches('/')),
        None => host
            .join("configmaps")
            .join(mount.volume["configMap"]["name"].as_str().unwrap()),
    };
    match &mount.sub_path {
        Some(sub) => dir.join(sub),
        None => dir,
    }
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
/// directory holding a mount path that does not exist (so it can be created),
/// bind the volumes, then exec our binary with the container's args.
fn script(host: &Path, sysfs: &Path, pod: &Pod) -> String {
    let mut lines = vec!["set -e".to_string()];
    let mut tops: Vec<String> = pod
        .mounts
        .iter()
        .filter(|m| !Path::new(&m.path).exists())
        .map(|m| top_dir(&m.path))
        .collect();
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
    for mount in &pod.mounts {
        let dir = host_dir(host, sysfs, mount);
        std::fs::create_dir_all(&dir).unwrap();
        lines.push(format!("mkdir -p {}", mount.path));
        lines.push(format!("mount --bind {} {}", dir.display(), mount.path));
    }
    let quoted: Vec<String> = pod.args.iter().map(|a| format!("'{a}'")).collect();
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

/// A pod of a DaemonSet running on a simulated node with 2 VFs.
struct Running {
    h: Harness,
    host: tempfile::TempDir,
    child: Kill,
    stderr: PathBuf,
}

impl Running {
    /// Starts `pod` with `sriovdp-config` holding the guide's config.
    fn start(pod: &Pod, tag: &str) -> Running {
        let h = Harness::node(SimNodeSpec::new(prefix(tag), 1, 2));
        let host = tempfile::tempdir().unwrap();
        let sysfs = h.node.sysfs_root().to_path_buf();
        let script = script(host.path(), &sysfs, pod);
        let config = pod.mounts.iter().find(|m| m.path == "/etc/pcidp").unwrap();
        std::fs::write(
            host_dir(host.path(), &sysfs, config).join("config.json"),
            GUIDE_CONFIG,
        )
        .unwrap();
        let stderr = host.path().join("stderr");
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c", &script])
            // Read only where the DaemonSet mounts no /sys (the Go one is privileged).
            .env("SRIOV_SYSFS_ROOT", &sysfs)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Running {
            h,
            host,
            child: Kill(child),
            stderr,
        }
    }

    /// The stand-in for host path `path`.
    fn host_path(&self, path: &str) -> PathBuf {
        self.host.path().join(path.trim_start_matches('/'))
    }

    /// Registers through the plugin watcher at host directory `registry`,
    /// checks the announced endpoint is the host path of our socket and that
    /// it serves both VFs.
    async fn registers_through(&self, registry: &str) -> PluginInfo {
        let info = plugin_watcher_registers(&self.host_path(registry).join(GUIDE_SOCKET)).await;
        assert_eq!(info.name, "mellanox.com/cx5_sriov_switchdev");
        // The kubelet dials this on the host: it must be the host's path.
        assert_eq!(
            info.endpoint,
            format!("/var/lib/kubelet/device-plugins/{GUIDE_SOCKET}")
        );
        let channel = connect_when_listening(&self.host_path(&info.endpoint)).await;
        let list = next_list(&mut list_and_watch(&mut DevicePluginClient::new(channel)).await).await;
        assert_eq!(list.devices.len(), 2);
        info
    }

    /// SIGTERM; returns the log after checking for a clean exit without colour codes.
    async fn stop(self) -> String {
        let Running {
            h,
            host,
            mut child,
            stderr,
        } = self;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.0.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = tokio::task::spawn_blocking(move || child.0.wait())
            .await
            .unwrap()
            .unwrap();
        let log = std::fs::read_to_string(&stderr).unwrap();
        assert_eq!(status.code(), Some(0), "{log}");
        assert!(!host
            .path()
            .join("var/lib/kubelet/device-plugins")
            .join(GUIDE_SOCKET)
            .exists());
        // Not a terminal: no colours.
        assert!(!log.contains('\u{1b}'), "{log}");
        drop(h);
        log
    }
}

/// Runs the pinned Go DaemonSet `file`, whose args must be `args`: registers,
/// serves the VFs and logs as its `--log-level=10` asks. With `--use-cdi`
/// among the args it also writes the resource's CDI spec into the
/// DaemonSet's `/var/run/cdi` volume and answers `Allocate` with CDI names.
async fn go_daemonset_registers(file: &str, args: &[&str], tag: &str) {
    let pinned = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/go-daemonsets")
        .join(file);
    let pod = pod(&daemonset(&pinned));
    assert_eq!(pod.args, args, "{file}: args changed upstream");
    // No command: the image's entrypoint runs, which is our binary in our image.
    assert!(pod.command.is_empty());
    let running = Running::start(&pod, tag);
    let mut kubelet = Kubelet::registrar(&running.host_path("/var/lib/kubelet/device-plugins")).unwrap();
    // plugins_registry is mounted, as on any recent kubelet: the plugin watcher is used.
    running
        .registers_through("/var/lib/kubelet/plugins_registry")
        .await;
    assert!(kubelet.registrations.try_recv().is_err(), "registered twice");
    if args.contains(&"--use-cdi") {
        running.serves_by_cdi_name().await;
    }
    let log = running.stop().await;
    // --log-dir: one warning; --log-level=10: debug lines.
    assert_eq!(log.matches("--log-dir").count(), 1, "{log}");
    assert!(
        log.lines().any(|l| l.contains("WARN") && l.contains("--log-dir")),
        "{log}"
    );
    assert!(log.contains("DEBUG") && log.contains("discovery done"), "{log}");
    kubelet.stop();
}

impl Running {
    /// The CDI spec of the guide's resource is in the host's `/var/run/cdi`
    /// (the Go CDI DaemonSet's `dynamic-cdi` volume), one device per VF, and
    /// `Allocate` names the VF by its CDI name instead of device nodes.
    async fn serves_by_cdi_name(&self) {
        let spec_file = self
            .host_path("/var/run/cdi")
            .join("sriov-dp-mellanox.com-net-pci-cx5_sriov_switchdev.json");
        wait_for("CDI spec", || spec_file.exists()).await;
        let spec: Spec = serde_json::from_slice(&std::fs::read(&spec_file).unwrap()).unwrap();
        assert_eq!(spec.kind, "mellanox.com/net-pci");
        let names: Vec<String> = spec.devices.iter().map(|d| d.name.clone()).collect();
        let vfs: Vec<String> = self.h.node.layout().vfs().map(|vf| vf.pci.to_string()).collect();
        assert_eq!(names, vfs);
        let channel = connect_when_listening(
            &self.host_path(&format!("/var/lib/kubelet/device-plugins/{GUIDE_SOCKET}")),
        )
        .await;
        let mut response = DevicePluginClient::new(channel)
            .allocate(AllocateRequest {
                container_requests: vec![ContainerAllocateRequest {
                    devices_ids: vec![vfs[0].clone()],
                }],
            })
            .await
            .unwrap()
            .into_inner();
        let container = response.container_responses.remove(0);
        let names: Vec<&str> = container.cdi_devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, [format!("mellanox.com/net-pci={}", vfs[0])]);
        assert!(container.devices.is_empty(), "{:?}", container.devices);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_v3_6_2_daemonset_with_our_image_registers() {
    go_daemonset_registers(
        "sriovdp-daemonset-v3.6.2.yaml",
        &["--log-dir=sriovdp", "--log-level=10"],
        "g6",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_latest_release_daemonset_with_our_image_registers() {
    go_daemonset_registers(
        "sriovdp-daemonset-v3.11.0.yaml",
        &["--log-dir=sriovdp", "--log-level=10"],
        "gl",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_latest_release_cdi_daemonset_with_our_image_registers_and_writes_cdi_specs() {
    go_daemonset_registers(
        "sriovdp-cdi-daemonset-v3.11.0.yaml",
        &["--log-dir=sriovdp", "--log-level=10", "--use-cdi"],
        "gc",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_daemonset_registers_on_a_k0s_kubelet_root() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/device-plugin-daemonset.yaml");
    let mut ds = daemonset(&manifest);
    // What kustomize's replacement does with kubelet-root.yaml set to k0s's root
    // (tests/tests/manifests.rs checks the replacement targets this volume).
    let volumes = ds["spec"]["template"]["spec"]["volumes"]
        .as_sequence_mut()
        .unwrap();
    let root = volumes
        .iter_mut()
        .find(|v| v["name"].as_str() == Some("kubelet-root"))
        .unwrap();
    root["hostPath"]["path"] = Yaml::from("/var/lib/k0s/kubelet");
    let pod = pod(&ds);
    assert_eq!(pod.command, ["/usr/bin/sriov-device-plugin"]);
    let running = Running::start(&pod, "ko");
    // The kubelet keeps kubelet.sock at /var/lib/kubelet/device-plugins whatever its root,
    // and watches <root>/plugins_registry.
    let mut kubelet = Kubelet::registrar(&running.host_path("/var/lib/kubelet/device-plugins")).unwrap();
    running
        .registers_through("/var/lib/k0s/kubelet/plugins_registry")
        .await;
    assert!(kubelet.registrations.try_recv().is_err(), "registered twice");
    let log = running.stop().await;
    assert!(!log.contains("WARN"), "{log}");
    kubelet.stop();
}
