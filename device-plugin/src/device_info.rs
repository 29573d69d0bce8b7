//! Device-info files for the CNI plugin (the network-attachment "device info"
//! spec, version 1.1.0), written atomically at allocation.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sriov_host::atomic::{write_atomic, AtomicWriteError};
use sriov_host::PciAddress;

/// Writing or removing a device-info file failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceInfoError {
    /// The directory could not be created.
    #[error("cannot create device-info directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written (or put in place).
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: AtomicWriteError,
    },
    /// A file could not be removed.
    #[error("cannot remove {}", path.display())]
    Remove {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Content of a device-info file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeviceInfo {
    /// Always `pci`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Spec version, `1.1.0`.
    pub version: String,
    /// PCI details.
    pub pci: PciInfo,
}

/// The `pci` object of a device-info file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PciInfo {
    /// The VF's address.
    #[serde(rename = "pci-address")]
    pub pci_address: String,
    /// Its PF's address.
    #[serde(rename = "pf-pci-address", skip_serializing_if = "Option::is_none", default)]
    pub pf_pci_address: Option<String>,
    /// Its representor netdev.
    #[serde(
        rename = "representor-device",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub representor_device: Option<String>,
    /// Its RDMA devices, comma-separated (`mlx5_2`), for `isRdma` pools.
    #[serde(rename = "rdma-device", skip_serializing_if = "Option::is_none", default)]
    pub rdma_device: Option<String>,
}

impl DeviceInfo {
    /// Device info of a PCI device.
    pub fn pci(address: &PciAddress, pf: Option<&PciAddress>, representor: Option<&str>) -> DeviceInfo {
        DeviceInfo {
            kind: "pci".to_string(),
            version: "1.1.0".to_string(),
            pci: PciInfo {
                pci_address: address.to_string(),
                pf_pci_address: pf.map(|p| p.to_string()),
                representor_device: representor.map(str::to_string),
                rdma_device: None,
            },
        }
    }
}

/// Where device-info files of one resource go.
#[derive(Clone, Debug)]
pub struct DeviceInfoDir {
    dir: PathBuf,
    prefix: String,
    name: String,
}

impl DeviceInfoDir {
    /// Files of resource `<prefix>/<name>` in `dir`.
    pub fn new(dir: impl Into<PathBuf>, prefix: &str, name: &str) -> DeviceInfoDir {
        DeviceInfoDir {
            dir: dir.into(),
            prefix: prefix.to_string(),
            name: name.to_string(),
        }
    }

    /// `<dir>/<prefix>-<name>-<pci>-device.json`.
    pub fn path(&self, address: &PciAddress) -> PathBuf {
        self.dir
            .join(format!("{}-{}-{}-device.json", self.prefix, self.name, address))
    }

    /// Writes the file for `info` atomically (temporary file, then rename).
    pub fn write(&self, address: &PciAddress, info: &DeviceInfo) -> Result<(), DeviceInfoError> {
        let json = serde_json::to_vec(info).unwrap_or_default();
        write_atomically(&self.path(address), &json)
    }

    /// Removes the file of `address`; a missing file is fine.
    pub fn remove(&self, address: &PciAddress) -> Result<(), DeviceInfoError> {
        remove_file(&self.path(address))
    }
}

/// Writes `bytes` to `path` atomically ([`write_atomic`]), creating the directory when
/// missing, so readers see the old content or the new one, never a part.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), DeviceInfoError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|source| DeviceInfoError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    write_atomic(path, bytes).map_err(|source| DeviceInfoError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Removes `path`; a missing file is fine.
pub(crate) fn remove_file(path: &Path) -> Result<(), DeviceInfoError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DeviceInfoError::Remove {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_all_three_fields_atomically_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DeviceInfoDir::new(tmp.path().join("dp"), "mellanox.com", "cx5");
        let vf: PciAddress = "0000:84:00.2".parse().unwrap();
        let pf: PciAddress = "0000:84:00.0".parse().unwrap();
        dir.write(&vf, &DeviceInfo::pci(&vf, Some(&pf), Some("pf0vf0")))
            .unwrap();
        let path = dir.path(&vf);
        assert_eq!(
            path.file_name().unwrap(),
            "mellanox.com-cx5-0000:84:00.2-device.json"
        );
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"pci","version":"1.1.0","pci":{
                "pci-address":"0000:84:00.2","pf-pci-address":"0000:84:00.0","representor-device":"pf0vf0"}})
        );
        // Only the final file is left behind.
        assert_eq!(std::fs::read_dir(tmp.path().join("dp")).unwrap().count(), 1);
        dir.remove(&vf).unwrap();
        dir.remove(&vf).unwrap();
        assert!(!path.exists());
    }
}
