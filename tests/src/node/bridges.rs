//! A node's bridges: `br-phy` with the node IP (userspace tunnelling), `br-int` and the
//! `ovn-controller` settings, and the provider bridge holding the PF uplink for underlay networks.

use super::{Node, NodeError, MGMT_IF, PROVIDER_BRIDGE};
use crate::fabric::{Fabric, PHYS_BRIDGE};
use testbed::cmd::{ip_in, tx_off};

impl Node {
    pub(super) fn setup_bridges(&self) -> Result<(), NodeError> {
        let ns = self.netns.name();
        let mtu = self.spec.mgmt_mtu.to_string();
        self.step("create br-phy", || {
            self.vsctl([
                "add-br",
                "br-phy",
                "--",
                "set",
                "bridge",
                "br-phy",
                "datapath_type=netdev",
                "--",
                "set",
                "interface",
                "br-phy",
                &format!("mtu_request={mtu}"),
                "--",
                "add-port",
                "br-phy",
                MGMT_IF,
            ])
        })?;
        let addr = format!("{}/{}", self.spec.ip, self.spec.prefix_len);
        self.step("address br-phy", || {
            ip_in(ns, ["link", "set", MGMT_IF, "up"])?;
            ip_in(ns, ["link", "set", "br-phy", "mtu", &mtu, "up"])?;
            ip_in(ns, ["addr", "add", &addr, "dev", "br-phy"])?;
            tx_off(ns, "br-phy")
        })?;
        self.step("create br-int", || {
            self.vsctl([
                "add-br",
                "br-int",
                "--",
                "set",
                "bridge",
                "br-int",
                "datapath_type=netdev",
                "fail_mode=secure",
                "other_config:disable-in-band=true",
            ])
        })?;
        let ip = self.spec.ip.to_string();
        self.step("configure ovn-controller", || {
            self.vsctl([
                "set".to_string(),
                "open_vswitch".to_string(),
                ".".to_string(),
                format!("external_ids:system-id={}", self.spec.name),
                format!("external_ids:hostname={}", self.spec.name),
                format!("external_ids:ovn-remote={}", self.sb_remote),
                "external_ids:ovn-encap-type=geneve".to_string(),
                format!("external_ids:ovn-encap-ip={ip}"),
                "external_ids:ovn-bridge-datapath-type=netdev".to_string(),
                "external_ids:ovn-remote-probe-interval=5000".to_string(),
            ])
        })
        .map(drop)
    }

    /// Puts the PF uplink on [`PROVIDER_BRIDGE`], maps OVN network `provider` to it, and cables the
    /// PF's wire to the fabric's provider bridge.
    pub fn add_provider(&self, fabric: &Fabric, provider: &str) -> Result<(), NodeError> {
        let Some(pf) = self.nic.as_ref().map(|nic| nic.pf(0).clone()) else {
            return Ok(());
        };
        let ns = self.netns.name();
        self.step("create provider bridge", || {
            self.vsctl([
                "add-br",
                PROVIDER_BRIDGE,
                "--",
                "set",
                "bridge",
                PROVIDER_BRIDGE,
                "datapath_type=netdev",
                "--",
                "add-port",
                PROVIDER_BRIDGE,
                &pf.uplink.name,
            ])?;
            ip_in(ns, ["link", "set", &pf.uplink.name, "up"])?;
            ip_in(ns, ["link", "set", PROVIDER_BRIDGE, "up"])?;
            tx_off(ns, &pf.uplink.name)?;
            self.vsctl([
                "set".to_string(),
                "open_vswitch".to_string(),
                ".".to_string(),
                format!("external_ids:ovn-bridge-mappings={provider}:{PROVIDER_BRIDGE}"),
            ])
        })?;
        fabric
            .plug(ns, &pf.wire.name, PHYS_BRIDGE)
            .map_err(|source| NodeError::Fabric {
                node: self.spec.name.clone(),
                source: Box::new(source),
            })
    }
}
