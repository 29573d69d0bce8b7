//! One resource's devices and their health, published to `ListAndWatch`
//! streams as a new full list on every change.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use kubelet_proto::v1beta1::{Device, ListAndWatchResponse, NumaNode, TopologyInfo, HEALTHY, UNHEALTHY};
use sriov_host::PciAddress;
use tokio::sync::watch;

use crate::discovery::DeviceRecord;
use crate::links::LinkTable;
use crate::metrics::ResourceMetrics;
use sriovdp_config::ResourceConfig;

/// A device of the pool with its current health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolDevice {
    /// What discovery found.
    pub record: DeviceRecord,
    /// Whether the kubelet may hand it out.
    pub healthy: bool,
}

/// Why a device is unhealthy, for logs. Borrowed from the record, so that
/// recomputing the health of 1016 VFs on every link event allocates nothing
/// unless a device's health changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
enum Unhealthy<'a> {
    #[error("PF has no uplink netdev")]
    NoUplink,
    #[error("uplink {0} is down")]
    UplinkDown(&'a str),
    #[error("VF LAG bond {0} of uplink {1} is down")]
    BondDown(&'a str, &'a str),
    #[error("uplink {0} does not exist")]
    UplinkMissing(&'a str),
    #[error("representor {0} does not exist")]
    RepresentorMissing(&'a str),
    #[error("no representor (eswitch not in switchdev mode?)")]
    NoRepresentor,
}

/// Whether a device is healthy, by the rules the README's "Health" gives (uplink up, or its
/// VF LAG bond; representor present unless DPU mode). A PF offered itself is always healthy:
/// its netdev legitimately leaves the host namespace when a pod gets it.
fn health_of<'a>(record: &'a DeviceRecord, links: &LinkTable) -> Result<(), Unhealthy<'a>> {
    if !record.is_vf() {
        return Ok(());
    }
    let Some(uplink) = &record.uplink else {
        return Err(Unhealthy::NoUplink);
    };
    let bond = record
        .vf_lag_bond
        .as_deref()
        .filter(|bond| links.master_of(uplink) == Some(*bond));
    let (carrier, down) = match bond {
        Some(bond) => (bond, Unhealthy::BondDown(bond, uplink)),
        None => (uplink.as_str(), Unhealthy::UplinkDown(uplink)),
    };
    match links.get(carrier) {
        Some(state) if state.up => {}
        Some(_) => return Err(down),
        None => return Err(Unhealthy::UplinkMissing(carrier)),
    }
    if record.dpu_host {
        return Ok(());
    }
    let renamed = |index: Option<u32>| index.is_some_and(|i| links.name_of(i).is_some());
    match &record.representor {
        Some(representor) if links.exists(representor) || renamed(record.representor_ifindex) => Ok(()),
        Some(representor) => Err(Unhealthy::RepresentorMissing(representor)),
        None => Err(Unhealthy::NoRepresentor),
    }
}

/// Logs, once per update that adds them, the devices whose health follows
/// another rule than the plain switchdev one.
fn log_topologies(name: &str, added: &[&DeviceRecord]) {
    let dpu: Vec<String> = added
        .iter()
        .filter(|r| r.dpu_host)
        .map(|r| r.address.to_string())
        .collect();
    if !dpu.is_empty() {
        tracing::info!(resource = %name, count = dpu.len(), devices = %summary(&dpu), "BlueField in DPU mode: the VFs' representors are on the DPU, not this host; their health follows the PF (or bond) link alone");
    }
    let mut bonds: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for record in added {
        if let Some(bond) = &record.vf_lag_bond {
            bonds.entry(bond).or_default().push(record.address.to_string());
        }
    }
    for (bond, devices) in bonds {
        tracing::info!(resource = %name, %bond, count = devices.len(), devices = %summary(&devices), "PF enslaved to an SR-IOV VF LAG bond: while it stays enslaved, the VFs' health follows the bond's link");
    }
}

struct Inner {
    config: ResourceConfig,
    devices: BTreeMap<PciAddress, PoolDevice>,
}

/// A resource's devices, shared by its gRPC server and the daemon.
pub struct Pool {
    inner: RwLock<Inner>,
    tx: watch::Sender<Arc<ListAndWatchResponse>>,
    metrics: ResourceMetrics,
}

impl Pool {
    /// A pool for `config` with no devices yet, counting into `metrics`.
    pub fn new(config: ResourceConfig, metrics: ResourceMetrics) -> Arc<Pool> {
        let (tx, _) = watch::channel(Arc::new(ListAndWatchResponse::default()));
        Arc::new(Pool {
            inner: RwLock::new(Inner {
                config,
                devices: BTreeMap::new(),
            }),
            tx,
            metrics,
        })
    }

    /// The resource's metrics.
    pub fn metrics(&self) -> &ResourceMetrics {
        &self.metrics
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The resource's configuration.
    pub fn config(&self) -> ResourceConfig {
        self.read().config.clone()
    }

    /// Replaces configuration and devices (after discovery) and publishes
    /// the list if it changed. Returns true when it did.
    pub fn update(&self, config: ResourceConfig, records: Vec<DeviceRecord>, links: &LinkTable) -> bool {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let name = config.full_name();
        inner.config = config;
        let mut devices = BTreeMap::new();
        let (mut healed, mut failed) = (0, 0);
        for record in records {
            let healthy = health_of(&record, links).is_ok();
            match inner.devices.get(&record.address) {
                Some(old) if old.healthy && !healthy => failed += 1,
                Some(old) if !old.healthy && healthy => healed += 1,
                _ => {}
            }
            devices.insert(record.address, PoolDevice { record, healthy });
        }
        self.metrics.health_changed(healed, failed);
        let added: Vec<&DeviceRecord> = devices
            .values()
            .filter(|d| !inner.devices.contains_key(&d.record.address))
            .map(|d| &d.record)
            .collect();
        let removed: Vec<String> = inner
            .devices
            .keys()
            .filter(|a| !devices.contains_key(*a))
            .map(ToString::to_string)
            .collect();
        if !added.is_empty() {
            let addresses: Vec<String> = added.iter().map(|r| r.address.to_string()).collect();
            tracing::info!(resource = %name, count = added.len(), devices = %summary(&addresses), "devices added");
            log_topologies(&name, &added);
        }
        if !removed.is_empty() {
            tracing::info!(resource = %name, count = removed.len(), devices = %summary(&removed), "devices removed");
        }
        inner.devices = devices;
        self.publish(&inner)
    }

    /// Recomputes health from `links`; publishes and returns true on change.
    pub fn refresh_health(&self, links: &LinkTable) -> bool {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let mut healed = Vec::new();
        let mut failed: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for device in inner.devices.values_mut() {
            let health = health_of(&device.record, links);
            if health.is_ok() == device.healthy {
                continue;
            }
            device.healthy = health.is_ok();
            let address = device.record.address.to_string();
            match health {
                Ok(()) => healed.push(address),
                Err(reason) => failed.entry(reason.to_string()).or_default().push(address),
            }
        }
        if healed.is_empty() && failed.is_empty() {
            return false;
        }
        let name = inner.config.full_name();
        self.metrics
            .health_changed(healed.len(), failed.values().map(Vec::len).sum());
        if !healed.is_empty() {
            tracing::info!(resource = %name, count = healed.len(), devices = %summary(&healed), "devices healthy again");
        }
        for (reason, devices) in &failed {
            tracing::warn!(resource = %name, count = devices.len(), devices = %summary(devices), %reason, "devices unhealthy");
        }
        self.publish(&inner)
    }

    fn publish(&self, inner: &Inner) -> bool {
        let healthy = inner.devices.values().filter(|d| d.healthy).count();
        self.metrics.set_devices(healthy, inner.devices.len() - healthy);
        let response = Arc::new(list_response(inner));
        self.tx.send_if_modified(|current| {
            if **current == *response {
                false
            } else {
                *current = response;
                true
            }
        })
    }

    /// Runs `f` on the device with ID `id` without copying it.
    pub fn with_device<R>(&self, id: &str, f: impl FnOnce(&PoolDevice) -> R) -> Option<R> {
        let address: PciAddress = id.parse().ok()?;
        self.read().devices.get(&address).map(f)
    }

    /// Every device, by address.
    pub fn devices(&self) -> Vec<PoolDevice> {
        self.read().devices.values().cloned().collect()
    }

    /// A receiver seeing the current list first, then each new one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ListAndWatchResponse>> {
        self.tx.subscribe()
    }
}

/// The first few items of a list, for one log line.
fn summary(items: &[String]) -> String {
    const SHOWN: usize = 4;
    if items.len() <= SHOWN {
        items.join(",")
    } else {
        format!("{},... ({} more)", items[..SHOWN].join(","), items.len() - SHOWN)
    }
}

fn list_response(inner: &Inner) -> ListAndWatchResponse {
    let devices = inner
        .devices
        .values()
        .map(|d| Device {
            id: d.record.address.to_string(),
            health: if d.healthy { HEALTHY } else { UNHEALTHY }.to_string(),
            topology: match d.record.numa_node {
                Some(node) if !inner.config.exclude_topology => Some(TopologyInfo {
                    nodes: vec![NumaNode { id: i64::from(node) }],
                }),
                _ => None,
            },
        })
        .collect();
    ListAndWatchResponse { devices }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::LinkState;

    fn config(exclude_topology: bool) -> ResourceConfig {
        ResourceConfig {
            prefix: "mellanox.com".into(),
            name: "cx5".into(),
            exclude_topology,
            selectors: vec![],
            additional_info: Default::default(),
        }
    }

    fn current(pool: &Pool) -> Arc<ListAndWatchResponse> {
        pool.subscribe().borrow().clone()
    }

    fn pool() -> Arc<Pool> {
        Pool::new(
            config(false),
            crate::metrics::Metrics::new().resource("mellanox.com/cx5"),
        )
    }

    fn vf(addr: &str, numa: Option<u32>) -> DeviceRecord {
        DeviceRecord {
            address: addr.parse().unwrap(),
            pf_address: Some("0000:84:00.0".parse().unwrap()),
            vf_index: Some(0),
            numa_node: numa,
            driver: Some("mlx5_core".into()),
            iommu_group: None,
            uplink: Some("p0".into()),
            representor: Some("p0_0".into()),
            representor_ifindex: Some(2),
            need_vhost_net: false,
            rdma: vec![],
            vf_lag_bond: None,
            dpu_host: false,
        }
    }

    fn links(uplink_up: bool, rep: bool) -> LinkTable {
        let mut t = LinkTable::default();
        t.upsert(
            "p0",
            LinkState {
                index: 1,
                up: uplink_up,
                master: None,
            },
        );
        if rep {
            t.upsert(
                "p0_0",
                LinkState {
                    index: 2,
                    up: false,
                    master: None,
                },
            );
        }
        t
    }

    #[test]
    fn list_has_topology_unless_excluded() {
        let pool = pool();
        assert!(pool.update(
            config(false),
            vec![vf("0000:84:00.2", Some(1))],
            &links(true, true)
        ));
        let list = current(&pool);
        assert_eq!(list.devices[0].id, "0000:84:00.2");
        assert_eq!(list.devices[0].health, HEALTHY);
        assert_eq!(list.devices[0].topology.as_ref().unwrap().nodes[0].id, 1);
        assert!(pool.update(
            config(true),
            vec![vf("0000:84:00.2", Some(1))],
            &links(true, true)
        ));
        assert_eq!(current(&pool).devices[0].topology, None);
        // Nothing changed: nothing published.
        assert!(!pool.update(
            config(true),
            vec![vf("0000:84:00.2", Some(1))],
            &links(true, true)
        ));
    }

    #[test]
    fn pf_offered_itself_is_healthy_without_links() {
        let pf = DeviceRecord {
            pf_address: None,
            vf_index: None,
            representor: None,
            representor_ifindex: None,
            ..vf("0000:03:00.0", None)
        };
        let pool = pool();
        pool.update(config(false), vec![pf], &LinkTable::default());
        assert_eq!(current(&pool).devices[0].health, HEALTHY);
    }

    #[test]
    fn uplink_down_or_missing_representor_is_unhealthy() {
        let pool = pool();
        pool.update(config(false), vec![vf("0000:84:00.2", None)], &links(true, true));
        assert!(pool.refresh_health(&links(false, true)));
        assert_eq!(current(&pool).devices[0].health, UNHEALTHY);
        assert!(pool.refresh_health(&links(true, true)));
        assert_eq!(current(&pool).devices[0].health, HEALTHY);
        assert!(pool.refresh_health(&links(true, false)));
        assert_eq!(current(&pool).devices[0].health, UNHEALTHY);
        assert!(!pool.refresh_health(&links(true, false)));
    }

    #[test]
    fn representor_renamed_by_the_cni_stays_healthy() {
        let pool = pool();
        let mut table = links(true, true);
        pool.update(config(false), vec![vf("0000:84:00.2", None)], &table);
        // sriov-ovs renames the representor to `<container>_h`; the index stays.
        table.upsert(
            "0123456789ab_h",
            LinkState {
                index: 2,
                up: true,
                master: None,
            },
        );
        assert!(!table.exists("p0_0"));
        assert!(!pool.refresh_health(&table));
        assert_eq!(current(&pool).devices[0].health, HEALTHY);
        table.remove(2);
        assert!(pool.refresh_health(&table));
        assert_eq!(current(&pool).devices[0].health, UNHEALTHY);
    }

    fn state(index: u32, up: bool, master: Option<u32>) -> LinkState {
        LinkState { index, up, master }
    }

    #[test]
    fn vf_lag_uplink_follows_the_bond_while_netlink_confirms_its_master() {
        let record = DeviceRecord {
            vf_lag_bond: Some("bond1".into()),
            ..vf("0000:84:00.2", None)
        };
        let pool = pool();
        let mut t = LinkTable::default();
        t.upsert("bond1", state(9, true, None));
        t.upsert("p0", state(1, false, Some(9)));
        t.upsert("p0_0", state(2, true, None));
        pool.update(config(false), vec![record], &t);
        // Own carrier lost, the bond still up over the other port.
        assert_eq!(current(&pool).devices[0].health, HEALTHY);
        t.upsert("bond1", state(9, false, None));
        assert!(pool.refresh_health(&t));
        assert_eq!(current(&pool).devices[0].health, UNHEALTHY);
        // Released from the bond (netlink): its own carrier counts again.
        t.upsert("bond1", state(9, true, None));
        t.upsert("p0", state(1, false, None));
        assert!(!pool.refresh_health(&t));
        assert_eq!(current(&pool).devices[0].health, UNHEALTHY);
        t.upsert("p0", state(1, true, None));
        assert!(pool.refresh_health(&t));
        assert_eq!(current(&pool).devices[0].health, HEALTHY);
    }

    #[test]
    fn dpu_host_vf_without_representor_follows_the_link_alone() {
        let dpu = DeviceRecord {
            representor: None,
            representor_ifindex: None,
            dpu_host: true,
            ..vf("0000:84:00.2", None)
        };
        let plain = DeviceRecord {
            address: "0000:84:00.3".parse().unwrap(),
            representor: None,
            representor_ifindex: None,
            ..vf("0000:84:00.3", None)
        };
        let pool = pool();
        pool.update(config(false), vec![dpu, plain], &links(true, false));
        let list = current(&pool);
        assert_eq!(list.devices[0].health, HEALTHY);
        // Everything else as before: no representor, unhealthy.
        assert_eq!(list.devices[1].health, UNHEALTHY);
        assert!(pool.refresh_health(&links(false, false)));
        assert_eq!(current(&pool).devices[0].health, UNHEALTHY);
    }

    /// Log lines written while `f` runs.
    fn logs_of(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn dpu_mode_and_vf_lag_pools_say_so_in_the_log_once() {
        let dpu = DeviceRecord {
            representor: None,
            dpu_host: true,
            ..vf("0000:84:00.2", None)
        };
        let lag = DeviceRecord {
            address: "0000:84:00.3".parse().unwrap(),
            vf_lag_bond: Some("bond1".into()),
            ..vf("0000:84:00.3", None)
        };
        let pool = pool();
        let records = vec![dpu, lag];
        let logs = logs_of(|| {
            pool.update(config(false), records.clone(), &links(true, true));
        });
        assert!(
            logs.contains("BlueField in DPU mode") && logs.contains("0000:84:00.2"),
            "{logs}"
        );
        assert!(
            logs.contains("SR-IOV VF LAG bond") && logs.contains("bond=bond1"),
            "{logs}"
        );
        // Nothing new: nothing said again.
        let logs = logs_of(|| {
            pool.update(config(false), records, &links(true, true));
        });
        assert!(!logs.contains("DPU") && !logs.contains("VF LAG"), "{logs}");
    }
}
