//! Container Device Interface (`--use-cdi`): one CDI spec per resource
//! naming each device's container edits, and the names `Allocate` answers
//! with, as the Go plugin writes them (spec version 0.5.0 of
//! container-device-interface v0.5.4, kind `<prefix>/net-pci`, file
//! `sriov-dp-<prefix>-net-pci-<resourceName>`, annotation
//! `cdi.k8s.io/<prefix>_net-pci`).

use std::path::{Path, PathBuf};

use serde::Serialize;
use sriovdp_config::ResourceConfig;

use crate::allocate::device_paths;
use crate::device_info::{remove_file, write_atomically, DeviceInfoError};
use crate::discovery::DeviceRecord;

/// Directory the runtimes read generated specs from.
pub const DEFAULT_CDI_SPEC_DIR: &str = "/var/run/cdi";
/// CDI spec version written (what the Go plugin's CDI library writes and
/// podman 4.3 reads).
pub const CDI_VERSION: &str = "0.5.0";
/// The device class: the Go plugin's pool type for PCI netdevs.
pub const CDI_CLASS: &str = "net-pci";
/// Prefix of every spec file this plugin writes.
const SPEC_PREFIX: &str = "sriov-dp-";

/// A CDI spec could not be written or removed.
#[derive(Debug, thiserror::Error)]
pub enum CdiError {
    /// Writing the spec of a resource failed.
    #[error("resource {resource}: cannot write CDI spec {}", path.display())]
    WriteSpec {
        /// `<prefix>/<name>`.
        resource: String,
        /// The spec file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: DeviceInfoError,
    },
    /// Removing a spec failed.
    #[error("cannot remove CDI spec {}", path.display())]
    RemoveSpec {
        /// The spec file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: DeviceInfoError,
    },
}

/// `<prefix>/net-pci=<id>`: a fully qualified CDI device name.
pub fn qualified_name(prefix: &str, id: &str) -> String {
    format!("{prefix}/{CDI_CLASS}={id}")
}

/// The CDI annotation (`cdi.k8s.io/<prefix>_net-pci`) naming `ids`, for
/// kubelets that pass annotations rather than `cdi_devices` to the runtime.
pub fn annotation(prefix: &str, ids: &[String]) -> (String, String) {
    let value: Vec<String> = ids.iter().map(|id| qualified_name(prefix, id)).collect();
    (format!("cdi.k8s.io/{prefix}_{CDI_CLASS}"), value.join(","))
}

/// A CDI spec (the subset written).
#[derive(Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Spec {
    /// Spec version.
    #[serde(rename = "cdiVersion")]
    pub version: String,
    /// `<vendor>/<class>`.
    pub kind: String,
    /// One per device of the resource.
    pub devices: Vec<Device>,
}

/// One CDI device.
#[derive(Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Device {
    /// The kubelet's device ID (PCI address).
    pub name: String,
    /// What the runtime adds to the container.
    #[serde(rename = "containerEdits")]
    pub edits: ContainerEdits,
}

/// Edits of one device.
#[derive(Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ContainerEdits {
    /// `NAME=value` variables.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub env: Vec<String>,
    /// Device nodes.
    #[serde(rename = "deviceNodes", skip_serializing_if = "Vec::is_empty", default)]
    pub device_nodes: Vec<DeviceNode>,
}

/// One device node.
#[derive(Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeviceNode {
    /// Path in the container.
    pub path: String,
    /// Path on the host.
    #[serde(rename = "hostPath")]
    pub host_path: String,
    /// `rw`.
    pub permissions: String,
}

/// The spec of `resource` with `devices`.
///
/// Each device also sets `<PCIDEVICE_P_N>_<BDF>=<BDF>` (BDF with `:` and
/// `.` as `_`): CDI rejects a device without edits, and a VF bound to
/// mlx5_core without RDMA needs no device node.
pub fn spec(resource: &ResourceConfig, devices: &[DeviceRecord]) -> Spec {
    let env_name = resource.env_name();
    Spec {
        version: CDI_VERSION.to_string(),
        kind: format!("{}/{CDI_CLASS}", resource.prefix),
        devices: devices
            .iter()
            .map(|record| {
                let id = record.address.to_string();
                let var = id.replace([':', '.'], "_").to_ascii_uppercase();
                Device {
                    edits: ContainerEdits {
                        env: vec![format!("{env_name}_{var}={id}")],
                        device_nodes: device_paths(record)
                            .into_iter()
                            .map(|path| DeviceNode {
                                host_path: path.clone(),
                                path,
                                permissions: "rw".to_string(),
                            })
                            .collect(),
                    },
                    name: id,
                }
            })
            .collect(),
    }
}

/// Where specs go.
#[derive(Clone, Debug)]
pub struct CdiSpecDir {
    dir: PathBuf,
}

impl CdiSpecDir {
    /// Specs in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> CdiSpecDir {
        CdiSpecDir { dir: dir.into() }
    }

    /// `<dir>/sriov-dp-<prefix>-net-pci-<name>.json`.
    pub fn path(&self, resource: &ResourceConfig) -> PathBuf {
        self.dir.join(format!(
            "{SPEC_PREFIX}{}-{CDI_CLASS}-{}.json",
            resource.prefix, resource.name
        ))
    }

    /// Writes (replaces) the spec of `resource`.
    pub fn write(&self, resource: &ResourceConfig, devices: &[DeviceRecord]) -> Result<(), CdiError> {
        let path = self.path(resource);
        let json = serde_json::to_vec_pretty(&spec(resource, devices)).unwrap_or_default();
        write_atomically(&path, &json).map_err(|source| CdiError::WriteSpec {
            resource: resource.full_name(),
            path: path.clone(),
            source,
        })
    }

    /// Removes the spec of `resource`.
    pub fn remove(&self, resource: &ResourceConfig) -> Result<(), CdiError> {
        remove_spec(&self.path(resource))
    }

    /// Removes every spec this plugin wrote (`sriov-dp-*`), as the Go
    /// plugin does at start, so a resource dropped while it was down
    /// leaves nothing behind.
    pub fn remove_all(&self) -> Result<(), CdiError> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(SPEC_PREFIX) {
                remove_spec(&entry.path())?;
            }
        }
        Ok(())
    }
}

fn remove_spec(path: &Path) -> Result<(), CdiError> {
    remove_file(path).map_err(|source| CdiError::RemoveSpec {
        path: path.to_path_buf(),
        source,
    })
}
