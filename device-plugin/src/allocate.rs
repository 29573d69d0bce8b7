//! Builds `Allocate` answers: environment, device nodes, device-info files.

use std::collections::BTreeMap;

use kubelet_proto::v1beta1::{CdiDevice, ContainerAllocateResponse, DeviceSpec};
use serde_json::json;
use sriovdp_config::ResourceConfig;

use crate::cdi;
use crate::device_info::{DeviceInfo, DeviceInfoDir, DeviceInfoError};
use crate::discovery::DeviceRecord;
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
                .map(|id| match pool.with_device(id, PoolDevice::clone) {
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

/// Device nodes `device` needs in a container, host path = container path,
/// in the Go plugin's order (its info providers': vfio, rdma, vhost).
pub fn device_paths(record: &DeviceRecord) -> Vec<String> {
    let mut paths = Vec::new();
    if record.driver.as_deref() == Some("vfio-pci") {
        paths.push("/dev/vfio/vfio".to_string());
        if let Some(group) = record.iommu_group {
            paths.push(format!("/dev/vfio/{group}"));
        }
    }
    for rdma in &record.rdma {
        paths.extend(rdma.paths());
    }
    if record.need_vhost_net {
        paths.push(VHOST_NET.to_string());
        paths.push(TUN.to_string());
    }
    paths
}

/// The vhost-net node of `needVhostNet` devices.
const VHOST_NET: &str = "/dev/vhost-net";
/// The tun node that goes with it.
const TUN: &str = "/dev/net/tun";

/// The device's entry in `PCIDEVICE_<P>_<N>_INFO`, keyed like the Go
/// plugin's info providers: `generic`, `vfio`, `vhost`, `rdma`, `extra`.
fn info_entry(record: &DeviceRecord, config: &ResourceConfig) -> serde_json::Value {
    let mut entry = serde_json::Map::new();
    entry.insert("generic".into(), json!({"deviceID": record.address.to_string()}));
    if record.driver.as_deref() == Some("vfio-pci") {
        if let Some(group) = record.iommu_group {
            entry.insert(
                "vfio".into(),
                json!({"mount": "/dev/vfio/vfio", "dev-mount": format!("/dev/vfio/{group}")}),
            );
        }
    }
    if record.need_vhost_net {
        // Go's vhost-net info provider's keys.
        entry.insert("vhost".into(), json!({"net-mount": VHOST_NET, "tun-mount": TUN}));
    }
    if let Some(first) = record.rdma.first() {
        let mut rdma = serde_json::Map::new();
        for path in record.rdma.iter().flat_map(|r| r.paths()) {
            let key = ["uverbs", "umad", "issm", "rdma_cm"]
                .into_iter()
                .find(|k| path.rsplit('/').next().is_some_and(|name| name.starts_with(k)));
            if let Some(key) = key {
                rdma.insert(key.into(), json!(path));
            }
        }
        rdma.insert("rdma_dev".into(), json!(first.ibdev));
        entry.insert("rdma".into(), serde_json::Value::Object(rdma));
    }
    if config.additional_info.configured {
        entry.insert(
            "extra".into(),
            json!(config.additional_info.for_device(&record.address)),
        );
    }
    serde_json::Value::Object(entry)
}

/// The response for one container's devices (in request order). With CDI
/// the device nodes come from the CDI spec, named in `cdi_devices` and in
/// the annotation older kubelets pass to the runtime.
pub fn container_response(
    config: &ResourceConfig,
    devices: &[PoolDevice],
    cdi: bool,
) -> ContainerAllocateResponse {
    let env_name = config.env_name();
    let ids: Vec<String> = devices.iter().map(|d| d.record.address.to_string()).collect();
    let mut specs: Vec<DeviceSpec> = Vec::new();
    let mut info = serde_json::Map::new();
    for device in devices {
        for path in device_paths(&device.record) {
            if !specs.iter().any(|s| s.host_path == path) {
                specs.push(DeviceSpec {
                    container_path: path.clone(),
                    host_path: path,
                    permissions: "rw".to_string(),
                });
            }
        }
        info.insert(
            device.record.address.to_string(),
            info_entry(&device.record, config),
        );
    }
    let envs = BTreeMap::from([
        (
            format!("{env_name}_INFO"),
            serde_json::Value::Object(info).to_string(),
        ),
        (env_name, ids.join(",")),
    ]);
    let mut response = ContainerAllocateResponse {
        envs,
        devices: specs,
        ..ContainerAllocateResponse::default()
    };
    if cdi {
        response.devices.clear();
        response.cdi_devices = ids
            .iter()
            .map(|id| CdiDevice {
                name: cdi::qualified_name(&config.prefix, id),
            })
            .collect();
        let (key, value) = cdi::annotation(&config.prefix, &ids);
        response.annotations.insert(key, value);
    }
    response
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
        let mut info = DeviceInfo::pci(
            &record.address,
            record.pf_address.as_ref(),
            record.representor.as_deref(),
        );
        if !record.rdma.is_empty() {
            let names: Vec<&str> = record.rdma.iter().map(|r| r.ibdev.as_str()).collect();
            info.pci.rdma_device = Some(names.join(","));
        }
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
    use sriov_host::RdmaCharDevices;

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
                rdma: vec![],
                vf_lag_bond: None,
                dpu_host: false,
            },
            healthy: true,
        }
    }

    fn config(additional_info: &str) -> ResourceConfig {
        let text = format!(
            r#"{{"resourceList":[{{"resourcePrefix":"mellanox.com","resourceName":"cx5","selectors":{{}},"additionalInfo":{additional_info}}}]}}"#
        );
        sriovdp_config::parse(&text, "intel.com")
            .unwrap()
            .resources
            .remove(0)
    }

    fn info(r: &ContainerAllocateResponse) -> serde_json::Value {
        serde_json::from_str(&r.envs["PCIDEVICE_MELLANOX_COM_CX5_INFO"]).unwrap()
    }

    fn rdma_device(addr: &str) -> PoolDevice {
        let mut d = device(addr, "mlx5_core", None, false);
        d.record.rdma = vec![RdmaCharDevices {
            ibdev: "mlx5_2".into(),
            umad: Some("umad2".into()),
            uverbs: Some("uverbs2".into()),
            rdma_cm: true,
            ..RdmaCharDevices::default()
        }];
        d
    }

    #[test]
    fn env_lists_addresses_in_request_order() {
        let devices = [
            device("0000:84:00.3", "mlx5_core", None, false),
            device("0000:84:00.2", "mlx5_core", None, false),
        ];
        let r = container_response(&config("null"), &devices, false);
        assert_eq!(r.envs["PCIDEVICE_MELLANOX_COM_CX5"], "0000:84:00.3,0000:84:00.2");
        let info = info(&r);
        assert_eq!(info["0000:84:00.2"]["generic"]["deviceID"], "0000:84:00.2");
        assert!(info["0000:84:00.2"].get("extra").is_none());
        assert!(r.devices.is_empty());
    }

    #[test]
    fn an_empty_additional_info_gives_an_empty_extra_as_in_go() {
        let devices = [device("0000:84:00.2", "mlx5_core", None, false)];
        let info = info(&container_response(&config("{}"), &devices, false));
        assert_eq!(info["0000:84:00.2"]["extra"], serde_json::json!({}));
    }

    #[test]
    fn vfio_and_vhost_devices_get_device_nodes_once() {
        let devices = [
            device("0000:84:00.2", "vfio-pci", Some(40), true),
            device("0000:84:00.3", "vfio-pci", Some(41), true),
        ];
        let r = container_response(&config("null"), &devices, false);
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
        let entry = &info(&r)["0000:84:00.2"];
        assert_eq!(
            entry["vfio"],
            serde_json::json!({"mount": "/dev/vfio/vfio", "dev-mount": "/dev/vfio/40"})
        );
        // Go's keys: what DPDK apps written for the Go plugin look up.
        assert_eq!(
            entry["vhost"],
            serde_json::json!({"net-mount": "/dev/vhost-net", "tun-mount": "/dev/net/tun"})
        );
    }

    #[test]
    fn rdma_nodes_come_before_vhost_nodes_as_in_go() {
        let mut d = rdma_device("0000:84:00.2");
        d.record.need_vhost_net = true;
        let r = container_response(&config("null"), &[d], false);
        let paths: Vec<&str> = r.devices.iter().map(|d| d.host_path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/dev/infiniband/umad2",
                "/dev/infiniband/uverbs2",
                "/dev/infiniband/rdma_cm",
                "/dev/vhost-net",
                "/dev/net/tun"
            ]
        );
    }

    #[test]
    fn rdma_devices_get_their_nodes_and_an_rdma_info_entry() {
        let r = container_response(&config("null"), &[rdma_device("0000:84:00.2")], false);
        let paths: Vec<&str> = r.devices.iter().map(|d| d.host_path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/dev/infiniband/umad2",
                "/dev/infiniband/uverbs2",
                "/dev/infiniband/rdma_cm"
            ]
        );
        assert_eq!(
            info(&r)["0000:84:00.2"]["rdma"],
            serde_json::json!({
                "umad": "/dev/infiniband/umad2",
                "uverbs": "/dev/infiniband/uverbs2",
                "rdma_cm": "/dev/infiniband/rdma_cm",
                "rdma_dev": "mlx5_2"
            })
        );
    }

    #[test]
    fn additional_info_goes_to_extra_with_device_values_over_star() {
        let config = config(r#"{"*":{"a":"1","b":"1"},"0000:84:00.2":{"b":"2"}}"#);
        let devices = [
            device("0000:84:00.2", "mlx5_core", None, false),
            device("0000:84:00.3", "mlx5_core", None, false),
        ];
        let info = info(&container_response(&config, &devices, false));
        assert_eq!(
            info["0000:84:00.2"]["extra"],
            serde_json::json!({"a": "1", "b": "2"})
        );
        assert_eq!(
            info["0000:84:00.3"]["extra"],
            serde_json::json!({"a": "1", "b": "1"})
        );
    }

    #[test]
    fn cdi_answers_with_device_names_and_the_annotation_instead_of_nodes() {
        let devices = [rdma_device("0000:84:00.2"), rdma_device("0000:84:00.3")];
        let r = container_response(&config("null"), &devices, true);
        assert!(r.devices.is_empty());
        let names: Vec<&str> = r.cdi_devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mellanox.com/net-pci=0000:84:00.2",
                "mellanox.com/net-pci=0000:84:00.3"
            ]
        );
        assert_eq!(
            r.annotations["cdi.k8s.io/mellanox.com_net-pci"],
            "mellanox.com/net-pci=0000:84:00.2,mellanox.com/net-pci=0000:84:00.3"
        );
        // The environment is still the plugin's to give.
        assert_eq!(r.envs["PCIDEVICE_MELLANOX_COM_CX5"], "0000:84:00.2,0000:84:00.3");
    }
}
