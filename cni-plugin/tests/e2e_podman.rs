//! Outside Kubernetes: podman's CNI backend runs a container on a network whose conflist is
//! sriov-ovs (fixed `deviceID`) then portmap. No `K8S_POD_NAMESPACE`: no OVN port name.

mod common;

use common::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn have_podman() -> bool {
    Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        && Path::new("/usr/bin/busybox").exists()
}

#[test]
fn podman_runs_a_container_on_a_sriov_ovs_network_and_cleans_up() {
    if !have_podman() {
        eprintln!("podman or busybox missing; skipped");
        return;
    }
    // libcni caches results under /var/lib/cni: remove what this test creates there.
    let cache_dirs: Vec<&Path> = [Path::new("/var/lib/cni"), Path::new("/var/lib/cni/results")]
        .into_iter()
        .filter(|p| !p.exists())
        .collect();
    let node = Node::new(1);
    let before = node.snapshot();
    let d = node.dir.path();
    let (root, runroot, netdir, rootfs) =
        (d.join("root"), d.join("runroot"), d.join("net"), d.join("rootfs"));
    for p in [&netdir, &rootfs.join("bin"), &d.join("tmp")] {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "ip", "cat"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let plugin_dir = Path::new(BIN).parent().unwrap();
    let conf = d.join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n[engine]\nruntime = \"runc\"\ntmp_dir = \"{}\"\n[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\", \"/usr/lib/cni\"]\nnetwork_config_dir = \"{}\"\n",
            d.join("tmp").display(),
            plugin_dir.display(),
            netdir.display()
        ),
    )
    .unwrap();
    let mut ours = node.conf("1.0.0", 0);
    ours.as_object_mut().unwrap().remove("cniVersion");
    ours.as_object_mut().unwrap().remove("name");
    ours["ifaceID"] = json!("podman-ctr.test");
    ours["ovnInstalledTimeout"] = json!(0);
    ours["ipam"]["subnet"] = json!("10.55.0.0/24");
    ours["ipam"]["gateway"] = json!("10.55.0.1");
    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": "sriovnet",
        "plugins": [ours, {"type": "portmap", "capabilities": {"portMappings": true}}],
    });
    std::fs::write(netdir.join("sriovnet.conflist"), conflist.to_string()).unwrap();
    let podman = |args: &[&str]| {
        // nsenter, not `ip netns exec`: the latter remounts /sys and hides the cgroup mounts.
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", node.ns()))
            .args(["podman", "--root"])
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .arg("--network-config-dir")
            .arg(&netdir)
            .args(args)
            .env("CONTAINERS_CONF", &conf)
            .env("SRIOV_SYSFS_ROOT", node.sim.sysfs_root());
        c.output().unwrap()
    };
    let tar = d.join("rootfs.tar");
    sh(
        "tar",
        &["-C", rootfs.to_str().unwrap(), "-cf", tar.to_str().unwrap(), "."],
    );
    let out = podman(&["import", tar.to_str().unwrap(), "localhost/sriovbb:1"]);
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = podman(&[
        "run",
        "--rm",
        "--network",
        "sriovnet",
        "-p",
        "18081:80",
        "localhost/sriovbb:1",
        "/bin/ip",
        "-o",
        "addr",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = podman(&["rmi", "-f", "localhost/sriovbb:1"]);
    let _ = Command::new("umount").arg("-R").arg(&root).output();
    for dir in cache_dirs.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
    assert!(out.status.success(), "podman run: {stdout} {stderr}");
    assert!(
        stdout.contains("eth0") && stdout.contains("10.55.0.2/24"),
        "{stdout}"
    );
    // podman ran DEL on exit: the node is as before.
    assert_eq!(node.snapshot(), before);
}
