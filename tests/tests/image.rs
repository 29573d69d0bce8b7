//! The container image: `scripts/setup-podman.sh` and `scripts/build-image.sh` build it with
//! podman, offline, `FROM scratch` with the three statically linked binaries; each then runs
//! inside it the way the DaemonSets run them (read-only root, no capabilities, no shell).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use integration_tests::binaries;

/// Removes the test's containers and image, even when the test fails.
struct Cleanup {
    image: String,
    containers: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = Command::new("podman").args(["rm", "-f", "--ignore", c]).output();
        }
        let _ = Command::new("podman").args(["rmi", "-f", &self.image]).output();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn script(name: &str) -> PathBuf {
    binaries::workspace_root().join("scripts").join(name)
}

impl Cleanup {
    /// `podman run --rm` of `image` under a name the cleanup knows, with the DaemonSets'
    /// restrictions: read-only root filesystem, every capability dropped, no new privileges,
    /// no network.
    fn run(&mut self, extra: &[&str], args: &[&str]) -> Output {
        // Unique across the tests of this process, which run in parallel.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("sriov-ovs-imgtest-{}-{n}", std::process::id());
        self.containers.push(name.clone());
        Command::new("podman")
            .args(["run", "--rm", "--name", &name, "--network", "none", "--read-only"])
            .args([
                "--cap-drop",
                "ALL",
                "--security-opt",
                "no-new-privileges",
                "--user",
                "0",
            ])
            .args(extra)
            .arg(&self.image)
            .args(args)
            .output()
            .unwrap()
    }
}

/// Runs `scripts/setup-podman.sh`, then `scripts/build-image.sh` into a fresh image tag; returns
/// the cleanup guard (owning the image) and the cargo target directory used.
fn build_image(tag: &str) -> (Cleanup, PathBuf) {
    let out = Command::new("bash")
        .arg(script("setup-podman.sh"))
        .output()
        .unwrap();
    assert!(out.status.success(), "setup-podman.sh: {}", text(&out));
    let image = format!("localhost/sriov-ovs-imgtest:{tag}-{}", std::process::id());
    let env = Cleanup {
        image: image.clone(),
        containers: Vec::new(),
    };
    // This test's own target directory; the static binaries go to
    // <target>/x86_64-unknown-linux-gnu/release, apart from the test build.
    let target_dir = binaries::profile_dir()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap();
    let out = Command::new("bash")
        .arg(script("build-image.sh"))
        .arg(&image)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "build-image.sh: {}", text(&out));
    (env, target_dir)
}

const OVS: [&str; 2] = ["--entrypoint", "/usr/bin/sriov-ovs"];
const SERVER: [&str; 2] = ["--entrypoint", "/usr/bin/sriov-ovs-server"];

#[test]
fn image_builds_from_scratch_and_runs_every_binary() {
    let (mut env, _) = build_image("run");

    // Small: three binaries and nothing else.
    let out = Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Size}}", &env.image])
        .output()
        .unwrap();
    let size: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(size < 40 << 20, "image is {size} bytes");

    // The device plugin (the image's entrypoint) documents the DaemonSet's flags.
    let out = env.run(&[], &["--help"]);
    assert!(out.status.success(), "sriov-device-plugin --help: {}", text(&out));
    for flag in [
        "--config-file",
        "--device-plugin-path",
        "--device-info-dir",
        "--sysfs-root",
    ] {
        assert!(text(&out).contains(flag), "{flag} missing: {}", text(&out));
    }

    // The CNI plugin runs: a CNI VERSION call, as a runtime makes it.
    let out = env.run(&[&OVS[..], &["-e", "CNI_COMMAND=VERSION"]].concat(), &[]);
    assert!(out.status.success(), "sriov-ovs VERSION: {}", text(&out));
    let version: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(version["supportedVersions"]
        .as_array()
        .is_some_and(|v| !v.is_empty()));

    // The node server runs (static: no loader in the image) and documents the DaemonSet's flags.
    let out = env.run(&SERVER, &["--help"]);
    assert!(out.status.success(), "sriov-ovs-server --help: {}", text(&out));
    for flag in ["--socket", "--state-dir", "--mtu"] {
        assert!(text(&out).contains(flag), "{flag} missing: {}", text(&out));
    }
}

#[test]
fn image_runs_the_cni_installer_like_the_daemonset() {
    let (mut env, target_dir) = build_image("install");
    let out = env.run(&OVS, &["--help"]);
    assert!(out.status.success(), "sriov-ovs --help: {}", text(&out));
    assert!(text(&out).contains("install"), "{}", text(&out));

    // The installer's init container: copies the binary into a host directory, as root without
    // capabilities, from a read-only image without a shell.
    let host_dir = tempfile::tempdir().unwrap();
    let volume = format!("{}:/host/opt/cni/bin", host_dir.path().display());
    let out = env.run(
        &[&OVS[..], &["-v", &volume]].concat(),
        &["install", "--dest", "/host/opt/cni/bin"],
    );
    assert!(out.status.success(), "sriov-ovs install: {}", text(&out));
    let installed = host_dir.path().join("sriov-ovs");
    let built = target_dir.join("x86_64-unknown-linux-gnu/release/sriov-ovs");
    assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&built).unwrap());
    let out = Command::new(&installed)
        .env("CNI_COMMAND", "VERSION")
        .output()
        .unwrap();
    assert!(out.status.success(), "installed copy: {}", text(&out));
}
