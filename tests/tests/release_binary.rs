//! The release `sriov-ovs` binary, built as the image ships it, carries no test hooks: the pause
//! logic (`SRIOV_OVS_PAUSE_AT`/`SRIOV_OVS_PAUSE_FILE`) exists only in builds with the
//! `test-hooks` feature, which the tests' own build has.

use std::path::Path;
use std::process::Command;

use integration_tests::binaries;

/// Strings only the pause hooks put into a binary.
const HOOK_STRINGS: [&str; 3] = [
    "SRIOV_OVS_PAUSE_AT",
    "SRIOV_OVS_PAUSE_FILE",
    "paused by test hook",
];

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn release_cni_binary_has_no_pause_hooks_and_the_test_build_has_them() {
    // The image's build (`scripts/build-image.sh`, binaries only, no podman): the very binary
    // the installer DaemonSet copies to nodes, and a build the image test shares.
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
    let release = std::fs::read(target_dir.join("x86_64-unknown-linux-gnu/release/sriov-ovs")).unwrap();
    for s in HOOK_STRINGS {
        assert!(!contains(&release, s), "the release sriov-ovs contains {s:?}");
    }
    // The check can see them: the build the tests run has every one.
    let tested = std::fs::read(binaries::binary(binaries::CNI_PLUGIN).unwrap()).unwrap();
    for s in HOOK_STRINGS {
        assert!(contains(&tested, s), "the test build of sriov-ovs lacks {s:?}");
    }
}
