//! A private tmpfs under the sysfs root, so tens of thousands of tree entries are written and
//! dropped in a fraction of a second instead of seconds on a journaling disk.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Size limit of the tmpfs; the largest node (8 PFs x 127 VFs) uses about 80 MiB.
const TMPFS_OPTIONS: &str = "size=256m,mode=0755";

/// Mounting (`mount tmpfs on`) or unmounting (`unmount`) the tree's tmpfs failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} {path}")]
pub struct MountError {
    /// The step.
    pub step: &'static str,
    /// The mount point.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: nix::Error,
}

/// The mount source naming the instance, as `/proc/self/mountinfo` shows it.
pub fn source_name(prefix: &str) -> String {
    format!("simnode-{prefix}")
}

/// Mounts a tmpfs named for `prefix` on `root` (an existing empty directory).
pub fn mount_tmpfs(root: &Path, prefix: &str) -> Result<(), MountError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some(source_name(prefix).as_str()),
        root,
        Some("tmpfs"),
        flags,
        Some(TMPFS_OPTIONS),
    )
    .map_err(|source| MountError {
        step: "mount tmpfs on",
        path: root.to_path_buf(),
        source,
    })
}

/// Detaches the tmpfs on `root` (lazily, so an open file elsewhere cannot make it fail).
pub fn unmount(root: &Path) -> Result<(), MountError> {
    umount2(root, MntFlags::MNT_DETACH).map_err(|source| MountError {
        step: "unmount",
        path: root.to_path_buf(),
        source,
    })
}

/// Whether the tmpfs of instance `prefix` is mounted on `root` (read from mountinfo).
pub fn is_mounted(root: &Path, prefix: &str) -> bool {
    let Ok(root) = fs::canonicalize(root) else {
        return false;
    };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let source = source_name(prefix);
    info.lines().any(|line| {
        let mut halves = line.splitn(2, " - ");
        let (Some(left), Some(right)) = (halves.next(), halves.next()) else {
            return false;
        };
        let point = left.split(' ').nth(4);
        let mut right = right.split(' ');
        let (fstype, src) = (right.next(), right.next());
        point == root.to_str() && fstype == Some("tmpfs") && src == Some(source.as_str())
    })
}
