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

use std::io;
use std::path::PathBuf;

use crate::sysfs::{list_dir, read_attr};
use crate::Sysfs;

/// Where the kernel puts the nodes of RDMA character devices.
pub const RDMA_DEV_DIR: &str = "/dev/infiniband";

/// A class directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RdmaError {
    /// Listing or reading below `class/<name>` failed.
    #[error("cannot read {}", path.display())]
    ReadClass {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
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

impl Sysfs {
    /// The character devices of RDMA device `ibdev`.
    pub fn rdma_char_devices(&self, ibdev: &str) -> Result<RdmaCharDevices, RdmaError> {
        Ok(RdmaCharDevices {
            ibdev: ibdev.to_string(),
            ucm: self.class_device_of("infiniband_cm", "ucm", ibdev)?,
            issm: self.class_device_of("infiniband_mad", "issm", ibdev)?,
            umad: self.class_device_of("infiniband_mad", "umad", ibdev)?,
            uverbs: self.class_device_of("infiniband_verbs", "uverbs", ibdev)?,
            rdma_cm: self.root().join("class/misc/rdma_cm").exists(),
        })
    }

    /// The entry `<prefix>N` of `class/<class>` whose `ibdev` is `ibdev`.
    /// Compared whole: `rdmamap`'s substring match takes `mlx5_10`'s node
    /// for `mlx5_1`.
    fn class_device_of(&self, class: &str, prefix: &str, ibdev: &str) -> Result<Option<String>, RdmaError> {
        let dir = self.root().join("class").join(class);
        let read_error = |path: PathBuf| move |source| RdmaError::ReadClass { path, source };
        let entries = list_dir(&dir).map_err(read_error(dir.clone()))?;
        for name in entries {
            let numbered = name
                .strip_prefix(prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !numbered {
                continue;
            }
            let path = dir.join(&name).join("ibdev");
            if read_attr(&path).map_err(read_error(path))?.as_deref() == Some(ibdev) {
                return Ok(Some(name));
            }
        }
        Ok(None)
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
        let devices = Sysfs::new(root).rdma_char_devices("mlx5_1").unwrap();
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
        let devices = Sysfs::new(tmp.path()).rdma_char_devices("mlx5_3").unwrap();
        assert!(devices.paths().is_empty());
    }
}
