//! Builds `Allocate` answers: environment, device nodes, device-info files.

use std::collections::BTreeMap;

use kubelet_proto::v1beta1::{ContainerAllocateResponse, DeviceSpec};
use serde_json::json;

use crate::device_info::{DeviceInfo, DeviceInfoDir, DeviceInfoError};
use crate::pool::{Pool, PoolDevice};

/// Allocation refused.
#[derive(Debug, thiserror::Error)]
pub enum AllocateError {
    /// The kubelet asked for a device this resource does not have.
    #[error("resource {resource}: unknown device {id:?}")]
    UnknownDevice {
        /// The resource.
        resource: String,
        /// The device ID.
        id: String,
    },
    /// The device is currently unhealthy.
    #[error("resource {resource}: device {id} is unhealthy")]
    UnhealthyDevice {
        /// The resource.
        resource: String,
        /// The device ID.
        id: String,
    },
    /// A device-info file could not be written.
    #[error("resource {resource}: cannot write device info for {id}")]
    DeviceInfo {
        /// The resource.
        resource: String,
        /// The device ID.
        id: String,
        /// The cause.
        #[source]
        source: DeviceInfoError,
    },
}

/// Checks every requested ID of every container of `resource` before
/// anything is written.
pub fn resolve(
    pool: &Pool,
    resource: &str,
    containers: &[Vec<String>],
) -> Result<Vec<Vec<PoolDevice>>, AllocateError> {
    let resource = resource.to_string();
    containers
        .iter()
        .map(|ids| {
            ids.iter()
                .map(|id| match pool.device(id) {
                    None => Err(AllocateError::UnknownDevice {
                        resource: resource.clone(),
                        id: id.clone(),
                    }),
                    Some(device) if !device.healthy => Err(AllocateError::UnhealthyDevice {
                        resource: resource.clone(),
                        id: id.clone(),
                    }),
                    Some(device) => Ok(device),
                })
                .collect()
        })
        .collect()
}

/// The response for one container's devices (in request order).
pub fn container_response(env_name: &str, devices: &[PoolDevice]) -> ContainerAllocateResponse {
    let ids: Vec<String> = devices.iter().map(|d| d.record.address.to_string()).collect();
    let mut specs: Vec<DeviceSpec> = Vec::new();
    let mut add_spec = |path: String| {
        if !specs.iter().any(|s| s.host_path == path) {
            specs.push(DeviceSpec {
                container_path: path.clone(),
                host_path: path,
                permissions: "rw".to_string(),
            });
        }
    };
    let mut info = serde_json::Map::new();
    for device in devices {
        let record = &device.record;
        let mut entry = serde_json::Map::new();
        entry.insert("generic".into(), json!({"deviceID": record.address.to_string()}));
        if record.driver.as_deref() == Some("vfio-pci") {
            add_spec("/dev/vfio/vfio".to_string());
            if let Some(group) = record.iommu_group {
                add_spec(format!("/dev/vfio/{group}"));
                entry.insert(
                    "vfio".into(),
                    json!({"mount": "/dev/vfio/vfio", "dev-mount": format!("/dev/vfio/{group}")}),
                );
            }
        }
        if record.need_vhost_net {
            add_spec("/dev/vhost-net".to_string());
            add_spec("/dev/net/tun".to_string());
            entry.insert("vhost".into(), json!({"mount": "/dev/vhost-net"}));
        }
        info.insert(record.address.to_string(), serde_json::Value::Object(entry));
    }
    let mut envs = BTreeMap::new();
    envs.insert(env_name.to_string(), ids.join(","));
    envs.insert(
        format!("{env_name}_INFO"),
        serde_json::Value::Object(info).to_string(),
    );
    ContainerAllocateResponse {
        envs,
        mounts: vec![],
        devices: specs,
        annotations: BTreeMap::new(),
        cdi_devices: vec![],
    }
}

/// Writes the device-info files of `devices`. On failure removes the ones
/// written by this call, so a refused allocation leaves nothing behind.
pub fn write_device_infos(
    dir: &DeviceInfoDir,
    resource: &str,
    devices: &[&PoolDevice],
) -> Result<(), AllocateError> {
    for (i, device) in devices.iter().enumerate() {
        let record = &device.record;
        let info = DeviceInfo::pci(
            &record.address,
            record.pf_address.as_ref(),
            record.representor.as_deref(),
        );
        if let Err(source) = dir.write(&record.address, &info) {
            for written in &devices[..i] {
                let _ = dir.remove(&written.record.address);
            }
            return Err(AllocateError::DeviceInfo {
                resource: resource.to_string(),
                id: record.address.to_string(),
                source,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::DeviceRecord;

    fn device(addr: &str, driver: &str, group: Option<u32>, vhost: bool) -> PoolDevice {
        PoolDevice {
            record: DeviceRecord {
                address: addr.parse().unwrap(),
                pf_address: Some("0000:84:00.0".parse().unwrap()),
                vf_index: Some(0),
                numa_node: None,
                driver: Some(driver.into()),
                iommu_group: group,
                uplink: Some("p0".into()),
                representor: Some("pf0vf0".into()),
                representor_ifindex: None,
                need_vhost_net: vhost,
            },
            healthy: true,
        }
    }

    #[test]
    fn env_lists_addresses_in_request_order() {
        let devices = [
            device("0000:84:00.3", "mlx5_core", None, false),
            device("0000:84:00.2", "mlx5_core", None, false),
        ];
        let r = container_response("PCIDEVICE_MELLANOX_COM_CX5", &devices);
        assert_eq!(r.envs["PCIDEVICE_MELLANOX_COM_CX5"], "0000:84:00.3,0000:84:00.2");
        let info: serde_json::Value =
            serde_json::from_str(&r.envs["PCIDEVICE_MELLANOX_COM_CX5_INFO"]).unwrap();
        assert_eq!(info["0000:84:00.2"]["generic"]["deviceID"], "0000:84:00.2");
        assert!(r.devices.is_empty());
    }

    #[test]
    fn vfio_and_vhost_devices_get_device_nodes_once() {
        let devices = [
            device("0000:84:00.2", "vfio-pci", Some(40), true),
            device("0000:84:00.3", "vfio-pci", Some(41), true),
        ];
        let r = container_response("E", &devices);
        let paths: Vec<&str> = r.devices.iter().map(|d| d.host_path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/dev/vfio/vfio",
                "/dev/vfio/40",
                "/dev/vhost-net",
                "/dev/net/tun",
                "/dev/vfio/41"
            ]
        );
        assert!(r
            .devices
            .iter()
            .all(|d| d.permissions == "rw" && d.container_path == d.host_path));
    }
}
