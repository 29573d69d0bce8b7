//! `--use-cdi` against a real CDI consumer: podman (4.3, installed by
//! `scripts/setup-podman.sh`) runs a container with the device names
//! `Allocate` answered, reading the spec the plugin wrote to /var/run/cdi.
//!
//! The host has no RDMA hardware: the test creates the VF's
//! `/dev/infiniband` nodes (numbers as the kernel gives them) so podman can
//! inject them, and removes them afterwards.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use simnode::SimNodeSpec;
use sriov_device_plugin::daemon::Settings;

/// Removes what the test made outside its temporary directory.
struct Cleanup {
    image: String,
    nodes: Vec<PathBuf>,
    /// The spec the plugin writes to the host's CDI directory: a failed
    /// assertion skips the plugin's own removal at shutdown.
    spec: Option<PathBuf>,
    dev_dir_created: bool,
    cdi_dir_created: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", "-f", &self.image]).output();
        for node in &self.nodes {
            let _ = std::fs::remove_file(node);
        }
        if let Some(spec) = &self.spec {
            let _ = std::fs::remove_file(spec);
        }
        if self.dev_dir_created {
            let _ = std::fs::remove_dir("/dev/infiniband");
        }
        if self.cdi_dir_created {
            let _ = std::fs::remove_dir("/var/run/cdi");
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A busybox image imported from a one-binary root filesystem.
fn import_busybox(dir: &Path, image: &str) {
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for applet in ["sh", "ls", "env", "cat"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let tar = Command::new("tar")
        .args(["-C"])
        .arg(dir.join("rootfs"))
        .args(["-cf"])
        .arg(dir.join("rootfs.tar"))
        .arg(".")
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", text(&tar));
    let out = Command::new("podman")
        .arg("import")
        .arg(dir.join("rootfs.tar"))
        .arg(image)
        .output()
        .unwrap();
    assert!(out.status.success(), "podman import: {}", text(&out));
}

/// `mknod <path> c <major:minor>` from a simulated `dev` file; false when
/// another process made the node first (it is then not ours to remove).
fn mknod(path: &Path, dev_file: &Path) -> bool {
    let numbers = std::fs::read_to_string(dev_file).unwrap();
    let (major, minor) = numbers.trim().split_once(':').unwrap();
    let out = Command::new("mknod")
        .arg(path)
        .args(["c", major, minor])
        .output()
        .unwrap();
    if !out.status.success() && path.exists() {
        return false;
    }
    assert!(out.status.success(), "mknod {}: {}", path.display(), text(&out));
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_runs_a_container_with_the_cdi_devices_allocate_names() {
    let setup = Command::new("bash")
        .arg(workspace_root().join("scripts/setup-podman.sh"))
        .output()
        .unwrap();
    assert!(setup.status.success(), "setup-podman.sh: {}", text(&setup));

    let mut h = Harness::node(SimNodeSpec::new(prefix("pc"), 1, 2).with_rdma(true));
    let vf = h.node.vf(0, 1).clone();
    let (_, n) = vf.rdma.clone().unwrap();
    let mut cleanup = Cleanup {
        image: format!("localhost/sriovdp-cditest:{}", std::process::id()),
        nodes: Vec::new(),
        spec: None,
        dev_dir_created: !Path::new("/dev/infiniband").exists(),
        cdi_dir_created: !Path::new("/var/run/cdi").exists(),
    };
    std::fs::create_dir_all("/dev/infiniband").unwrap();
    let sys = h.node.sysfs_root().to_path_buf();
    let vf_dir = sys.join("bus/pci/devices").join(vf.pci.to_string());
    for (name, dev_file) in [
        (
            format!("uverbs{n}"),
            vf_dir.join(format!("infiniband_verbs/uverbs{n}/dev")),
        ),
        (
            format!("umad{n}"),
            vf_dir.join(format!("infiniband_mad/umad{n}/dev")),
        ),
        (
            format!("issm{n}"),
            vf_dir.join(format!("infiniband_mad/issm{n}/dev")),
        ),
        ("rdma_cm".to_string(), sys.join("class/misc/rdma_cm/dev")),
    ] {
        let node = Path::new("/dev/infiniband").join(name);
        if node.exists() {
            continue;
        }
        if mknod(&node, &dev_file) {
            cleanup.nodes.push(node);
        }
    }
    import_busybox(h.tmp.path(), &cleanup.image);

    // A resource name of this run only: podman reads every spec in the
    // directory, and the kind's device names must not clash.
    let resource = format!("cditest{}", std::process::id());
    let spec = PathBuf::from(format!(
        "/var/run/cdi/sriov-dp-mellanox.com-net-pci-{resource}.json"
    ));
    cleanup.spec = Some(spec.clone());
    h.write_config(&format!(
        r#"{{"resourceList": [{{"resourcePrefix": "mellanox.com", "resourceName": "{resource}",
            "selectors": {{"devices": ["1018"], "isRdma": true}}}}]}}"#
    ));
    h.start_with(Settings {
        cdi_spec_dir: Some(PathBuf::from("/var/run/cdi")),
        ..h.settings()
    });
    h.kubelet().next_registration().await;
    wait_for("CDI spec", || spec.exists()).await;

    let socket = format!("mellanox.com_{resource}.sock");
    let response = allocate_one(&h, &socket, &[vf.pci.to_string()]).await;
    let name = response.cdi_devices[0].name.clone();

    let out = Command::new("podman")
        .args(["run", "--rm", "--network", "none", "--device", &name])
        .arg(&cleanup.image)
        .args(["sh", "-c", "ls /dev/infiniband; env"])
        .output()
        .unwrap();
    let output = text(&out);
    assert!(out.status.success(), "podman run: {output}");
    for node in [
        format!("uverbs{n}"),
        format!("umad{n}"),
        format!("issm{n}"),
        "rdma_cm".to_string(),
    ] {
        assert!(output.lines().any(|l| l == node), "{node} missing: {output}");
    }
    let bdf = vf.pci.to_string();
    let var = format!(
        "PCIDEVICE_MELLANOX_COM_{}_{}={bdf}",
        resource.to_ascii_uppercase(),
        bdf.replace([':', '.'], "_")
    );
    assert!(output.lines().any(|l| l == var), "{var} missing: {output}");

    h.shutdown().await;
    assert!(!spec.exists());
}
