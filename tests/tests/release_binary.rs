//! The release binaries, built as the image ships them, carry no test hooks: the pause logic
//! (`SRIOV_OVS_PAUSE_AT`/`SRIOV_OVS_PAUSE_FILE`) exists only in builds with the `test-hooks`
//! feature, which the tests' own build has. The per-pod CNI binary links no Kubernetes client:
//! that lives in `sriov-ovs-server` alone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use integration_tests::binaries;

/// Strings only the pause hooks put into a binary.
const HOOK_STRINGS: [&str; 3] = [
    "SRIOV_OVS_PAUSE_AT",
    "SRIOV_OVS_PAUSE_FILE",
    "paused by test hook",
];

/// Strings only the Kubernetes client stack (kube-rs's client crate, rustls) puts into a binary.
const KUBE_STRINGS: [&str; 2] = ["kube_client", "rustls"];

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// `binary` as `scripts/build-image.sh` builds it (binaries only, no podman): the very binaries
/// the image ships, and a build the image test shares. The script refuses dynamic binaries.
fn release_binary(binary: &str) -> Vec<u8> {
    // Built once per test process; the tests run in parallel.
    static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = BIN_DIR.get_or_init(|| {
        let target_dir = binaries::profile_dir()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap();
        let out = Command::new("bash")
            .arg(binaries::workspace_root().join("scripts/build-image.sh"))
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("BINARIES_ONLY", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "build-image.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        target_dir.join("x86_64-unknown-linux-gnu/release")
    });
    std::fs::read(dir.join(binary)).unwrap()
}

#[test]
fn release_cni_binary_has_no_pause_hooks_and_the_test_build_has_them() {
    for binary in [binaries::CNI_PLUGIN, binaries::NODE_SERVER] {
        let release = release_binary(binary);
        for s in HOOK_STRINGS {
            assert!(!contains(&release, s), "the release {binary} contains {s:?}");
        }
    }
    // The check can see them: the build the tests run has every one.
    let tested = std::fs::read(binaries::binary(binaries::CNI_PLUGIN).unwrap()).unwrap();
    for s in HOOK_STRINGS {
        assert!(contains(&tested, s), "the test build of sriov-ovs lacks {s:?}");
    }
}

#[test]
fn release_cni_binary_links_no_kubernetes_client_and_the_server_does() {
    let cni = release_binary(binaries::CNI_PLUGIN);
    let server = release_binary(binaries::NODE_SERVER);
    for s in KUBE_STRINGS {
        assert!(!contains(&cni, s), "the release sriov-ovs contains {s:?}");
        // The check can see them: the server links the client.
        assert!(contains(&server, s), "the release sriov-ovs-server lacks {s:?}");
    }
    println!(
        "release sizes: sriov-ovs {} bytes, sriov-ovs-server {} bytes",
        cni.len(),
        server.len()
    );
}
