//! The RDMA devices of `isRdma` pools' VFs, remembered across discoveries.
//!
//! With the RDMA subsystem in exclusive network-namespace mode
//! (`rdma system set netns exclusive`), a VF's RDMA device moves into the
//! pod's namespace with its netdev, and its `infiniband/` entries leave the
//! host's sysfs. Rediscovering then must not drop the allocated VF from its
//! pool: the Go plugin asks devlink's `enable_rdma` parameter; this plugin
//! remembers what it saw while the VF was on the host, for as long as the
//! VF exists with the same driver.

use std::collections::{HashMap, HashSet};

use sriov_host::{PciAddress, RdmaCharDevices, RdmaIndex, Sysfs};

/// RDMA devices last seen per VF, with the driver bound then.
#[derive(Clone, Debug, Default)]
pub struct RdmaMemory {
    seen: HashMap<PciAddress, (Option<String>, Vec<RdmaCharDevices>)>,
}

impl RdmaMemory {
    /// The RDMA devices of `address` (bound to `driver`): read from sysfs
    /// when it shows them, else as remembered for the same driver.
    pub fn devices_of(
        &mut self,
        sysfs: &Sysfs,
        index: &RdmaIndex,
        address: &PciAddress,
        driver: Option<&str>,
    ) -> Vec<RdmaCharDevices> {
        let names = sysfs.rdma_devices(address).unwrap_or_default();
        if !names.is_empty() {
            let devices: Vec<RdmaCharDevices> = names.iter().map(|ibdev| index.get(ibdev)).collect();
            self.seen
                .insert(*address, (driver.map(str::to_string), devices.clone()));
            return devices;
        }
        match self.seen.get(address) {
            Some((seen_driver, devices)) if seen_driver.as_deref() == driver => devices.clone(),
            _ => Vec::new(),
        }
    }

    /// True when `address` had RDMA devices with `driver` bound.
    pub fn remembers(&self, address: &PciAddress, driver: Option<&str>) -> bool {
        self.seen
            .get(address)
            .is_some_and(|(seen_driver, _)| seen_driver.as_deref() == driver)
    }

    /// Forgets functions that no longer exist.
    pub fn retain(&mut self, existing: &HashSet<PciAddress>) {
        self.seen.retain(|address, _| existing.contains(address));
    }
}
