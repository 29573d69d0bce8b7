//! RDMA character devices of an RDMA (`infiniband`) device, found the way
//! the Go plugin's `rdmamap` library finds them, but below the sysfs root.
//!
//! The kernel registers, with the PCI function as parent:
//! `infiniband/<ibdev>` (core/device.c), `infiniband_verbs/uverbsN`
//! (core/uverbs_main.c), `infiniband_mad/umadN` and, for ports with an SMI,
//! `issmN` (core/user_mad.c); each has an `ibdev` file naming its RDMA
//! device and a node `/dev/infiniband/<name>`. The `rdma_cm` node is the
//! misc device of `rdma_ucm` (core/ucma.c), `class/misc/rdma_cm` in sysfs,
//! shared by all RDMA devices.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use crate::sysfs::{list_dir, read_attr};
use crate::Sysfs;

/// Where the kernel puts the nodes of RDMA character devices.
pub const RDMA_DEV_DIR: &str = "/dev/infiniband";

/// Listing or reading below `class/<name>` failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}", path.display())]
pub struct RdmaError {
    /// The path.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// The character devices of one RDMA device (names as in `/dev/infiniband`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdmaCharDevices {
    /// The RDMA device (`mlx5_2`).
    pub ibdev: String,
    /// `ucmN` (old kernels' `infiniband_cm`).
    pub ucm: Option<String>,
    /// `issmN`.
    pub issm: Option<String>,
    /// `umadN`.
    pub umad: Option<String>,
    /// `uverbsN`.
    pub uverbs: Option<String>,
    /// `/dev/infiniband/rdma_cm` exists (`rdma_ucm` loaded).
    pub rdma_cm: bool,
}

impl RdmaCharDevices {
    /// Device node paths, in the order the Go plugin lists them
    /// (ucm, issm, umad, uverbs, rdma_cm).
    pub fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = [&self.ucm, &self.issm, &self.umad, &self.uverbs]
            .into_iter()
            .flatten()
            .map(|name| format!("{RDMA_DEV_DIR}/{name}"))
            .collect();
        if self.rdma_cm {
            paths.push(format!("{RDMA_DEV_DIR}/rdma_cm"));
        }
        paths
    }
}

/// Every RDMA character device of the host by RDMA device, read once
/// (one listing per class, one `ibdev` read per node) so that looking up
/// a thousand VFs does not list the classes a thousand times.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdmaIndex {
    by_ibdev: HashMap<String, RdmaCharDevices>,
    rdma_cm: bool,
}

impl RdmaIndex {
    /// The character devices of RDMA device `ibdev` (none found: only
    /// `rdma_cm`, when present).
    pub fn get(&self, ibdev: &str) -> RdmaCharDevices {
        self.by_ibdev
            .get(ibdev)
            .cloned()
            .unwrap_or_else(|| RdmaCharDevices {
                ibdev: ibdev.to_string(),
                rdma_cm: self.rdma_cm,
                ..RdmaCharDevices::default()
            })
    }
}

impl Sysfs {
    /// Reads the RDMA character device classes (`infiniband_cm`,
    /// `infiniband_mad`, `infiniband_verbs`) and `class/misc/rdma_cm`.
    /// An `ibdev` is compared whole: `rdmamap`'s substring match takes
    /// `mlx5_10`'s node for `mlx5_1`.
    pub fn rdma_index(&self) -> Result<RdmaIndex, RdmaError> {
        let mut index = RdmaIndex {
            by_ibdev: HashMap::new(),
            rdma_cm: self.root().join("class/misc/rdma_cm").exists(),
        };
        for class in ["infiniband_cm", "infiniband_mad", "infiniband_verbs"] {
            let dir = self.root().join("class").join(class);
            let read_error = |path: PathBuf| move |source| RdmaError { path, source };
            for name in list_dir(&dir).map_err(read_error(dir.clone()))? {
                let digits = name.trim_start_matches(|c: char| c.is_ascii_lowercase());
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    continue; // abi_version
                }
                let path = dir.join(&name).join("ibdev");
                let Some(ibdev) = read_attr(&path).map_err(read_error(path))? else {
                    continue;
                };
                let rdma_cm = index.rdma_cm;
                let entry = index
                    .by_ibdev
                    .entry(ibdev.clone())
                    .or_insert_with(|| RdmaCharDevices {
                        ibdev,
                        rdma_cm,
                        ..RdmaCharDevices::default()
                    });
                let slot = match &name[..name.len() - digits.len()] {
                    "ucm" => &mut entry.ucm,
                    "issm" => &mut entry.issm,
                    "umad" => &mut entry.umad,
                    "uverbs" => &mut entry.uverbs,
                    _ => continue,
                };
                slot.get_or_insert(name);
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_dev(root: &std::path::Path, class: &str, name: &str, ibdev: &str) {
        let dir = root.join("class").join(class).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ibdev"), format!("{ibdev}\n")).unwrap();
    }

    #[test]
    fn finds_nodes_by_exact_ibdev_in_go_order() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        class_dev(root, "infiniband_verbs", "uverbs1", "mlx5_10");
        class_dev(root, "infiniband_verbs", "uverbs2", "mlx5_1");
        class_dev(root, "infiniband_mad", "umad2", "mlx5_1");
        class_dev(root, "infiniband_mad", "issm2", "mlx5_1");
        std::fs::write(root.join("class/infiniband_mad/abi_version"), "5\n").unwrap();
        std::fs::create_dir_all(root.join("class/misc/rdma_cm")).unwrap();
        let devices = Sysfs::new(root).rdma_index().unwrap().get("mlx5_1");
        assert_eq!(
            devices.paths(),
            [
                "/dev/infiniband/issm2",
                "/dev/infiniband/umad2",
                "/dev/infiniband/uverbs2",
                "/dev/infiniband/rdma_cm"
            ]
        );
    }

    #[test]
    fn a_device_without_nodes_or_rdma_cm_has_no_paths() {
        let tmp = tempfile::tempdir().unwrap();
        class_dev(tmp.path(), "infiniband_verbs", "uverbs0", "mlx5_0");
        let devices = Sysfs::new(tmp.path()).rdma_index().unwrap().get("mlx5_3");
        assert!(devices.paths().is_empty());
    }
}
