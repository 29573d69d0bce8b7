//! The physical network between simulated nodes: a "fabric" netns holding two Linux bridges
//! (management/tunnel network and the provider network) and the upstream router of the underlay.

use std::net::Ipv4Addr;
use std::path::Path;

use testbed::cmd::{ip_in, tx_off, CmdError};
use testbed::netns::Netns;
use testbed::ovs::{OvsError, OvsInstance, OvsNetns};

/// Bridge of the management network, carrying the nodes' IPs and Geneve.
pub const MGMT_BRIDGE: &str = "brmgmt";
/// Bridge of the provider (underlay) network, where the PF uplinks are cabled.
pub const PHYS_BRIDGE: &str = "brphys";

/// An address beyond the upstream router (on its loopback): reachable from underlay pods only
/// through their default route.
pub const UPSTREAM_REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// Errors of building the fabric.
#[derive(Debug, thiserror::Error)]
pub enum FabricError {
    /// A namespace could not be created.
    #[error("cannot create netns {netns}")]
    CreateNetns {
        /// The netns name.
        netns: String,
        /// Why.
        #[source]
        source: CmdError,
    },
    /// The OVS instance terminating a tagged VLAN did not start.
    #[error("OVS in {netns}")]
    Ovs {
        /// The netns.
        netns: String,
        /// Why.
        #[source]
        source: Box<OvsError>,
    },
    /// A bridge or a cable could not be set up.
    #[error("cannot set up {what} in {netns}")]
    Link {
        /// What was being set up.
        what: String,
        /// The netns.
        netns: String,
        /// Why.
        #[source]
        source: CmdError,
    },
}

/// Creates the netns `name` with `lo` up.
pub fn create_netns(name: &str) -> Result<Netns, FabricError> {
    Netns::create(name).map_err(|source| FabricError::CreateNetns {
        netns: name.to_string(),
        source,
    })
}

/// The upstream router: its netns and, for a tagged VLAN, the OVS instance terminating the VLAN
/// (this kernel has neither VLAN devices nor bridge VLAN filtering).
#[derive(Debug)]
struct Router {
    // The OVS instance stops before its netns goes.
    ovs: Option<OvsInstance>,
    netns: Netns,
}

/// The fabric: one netns with the two bridges, plus the upstream router's netns once added.
#[derive(Debug)]
pub struct Fabric {
    // Router before fabric on drop.
    router: Option<Router>,
    netns: Netns,
    prefix: String,
}

impl Fabric {
    /// Creates `<prefix>-fab` with both bridges up; `mtu` is the management network's MTU.
    pub fn create(prefix: &str, mtu: u32) -> Result<Fabric, FabricError> {
        let netns = create_netns(&format!("{prefix}-fab"))?;
        let ns = netns.name().to_string();
        for br in [MGMT_BRIDGE, PHYS_BRIDGE] {
            let link = |source| FabricError::Link {
                what: br.to_string(),
                netns: ns.clone(),
                source,
            };
            ip_in(&ns, ["link", "add", br, "type", "bridge"]).map_err(link)?;
            ip_in(&ns, ["link", "set", br, "up"]).map_err(link)?;
        }
        ip_in(&ns, ["link", "set", MGMT_BRIDGE, "mtu", &mtu.to_string()]).map_err(|source| {
            FabricError::Link {
                what: MGMT_BRIDGE.to_string(),
                netns: ns.clone(),
                source,
            }
        })?;
        Ok(Fabric {
            router: None,
            netns,
            prefix: prefix.to_string(),
        })
    }

    /// The fabric's netns name.
    pub fn netns(&self) -> &str {
        self.netns.name()
    }

    /// The upstream router's netns, once added.
    pub fn router_netns(&self) -> Option<&str> {
        self.router.as_ref().map(|r| r.netns.name())
    }

    /// Cables `node_if` in `node_netns` to `bridge` with a new veth (fabric end `fab_if`), MTU `mtu`,
    /// TX checksum offload off on both ends. The node end is left down and unaddressed.
    pub fn cable(
        &self,
        node_netns: &str,
        node_if: &str,
        fab_if: &str,
        bridge: &str,
        mtu: u32,
    ) -> Result<(), FabricError> {
        let ns = self.netns();
        let link = |source| FabricError::Link {
            what: format!("cable {node_netns}/{node_if} - {fab_if}"),
            netns: ns.to_string(),
            source,
        };
        let mtu = mtu.to_string();
        ip_in(
            ns,
            [
                "link", "add", fab_if, "mtu", &mtu, "type", "veth", "peer", "name", node_if, "mtu", &mtu,
                "netns", node_netns,
            ],
        )
        .map_err(link)?;
        self.attach(fab_if, bridge)?;
        tx_off(node_netns, node_if).map_err(link)?;
        Ok(())
    }

    /// Moves an existing link (e.g. a simulated PF's wire) from `from_netns` into the fabric and
    /// enslaves it to `bridge`.
    pub fn plug(&self, from_netns: &str, ifname: &str, bridge: &str) -> Result<(), FabricError> {
        ip_in(from_netns, ["link", "set", ifname, "netns", self.netns()]).map_err(|source| {
            FabricError::Link {
                what: format!("move {ifname}"),
                netns: from_netns.to_string(),
                source,
            }
        })?;
        self.attach(ifname, bridge)
    }

    fn attach(&self, ifname: &str, bridge: &str) -> Result<(), FabricError> {
        let ns = self.netns();
        let link = |source| FabricError::Link {
            what: format!("{ifname} on {bridge}"),
            netns: ns.to_string(),
            source,
        };
        ip_in(ns, ["link", "set", ifname, "master", bridge]).map_err(link)?;
        ip_in(ns, ["link", "set", ifname, "up"]).map_err(link)?;
        tx_off(ns, ifname).map_err(link)
    }

    /// Adds the upstream router of the provider network: a netns `<prefix>-gw` cabled to the
    /// provider bridge, answering `gateway/prefix_len` untagged (`vlan` 0) or on VLAN `vlan`, and
    /// owning [`UPSTREAM_REMOTE`]. A tagged VLAN is terminated by an OVS instance kept in `ovs_dir`.
    pub fn add_router(
        &mut self,
        gateway: Ipv4Addr,
        prefix_len: u8,
        vlan: u16,
        ovs_dir: &Path,
    ) -> Result<(), FabricError> {
        let netns = create_netns(&format!("{}-gw", self.prefix))?;
        let rns = netns.name().to_string();
        self.router = Some(Router { ovs: None, netns });
        self.cable(&rns, "up0", &format!("{}gw", self.prefix), PHYS_BRIDGE, 1500)?;
        let link = |what: &str| {
            let what = format!("upstream router: {what}");
            let netns = rns.clone();
            move |source| FabricError::Link { what, netns, source }
        };
        ip_in(&rns, ["link", "set", "up0", "up"]).map_err(link("up0"))?;
        let dev = if vlan == 0 {
            "up0".to_string()
        } else {
            let ovs = OvsInstance::start_with(OvsNetns::Existing(rns.clone()), Some(ovs_dir)).map_err(
                |source| FabricError::Ovs {
                    netns: rns.clone(),
                    source: Box::new(source),
                },
            )?;
            let tag = format!("tag={vlan}");
            ovs.vsctl([
                "add-br",
                "br-up",
                "--",
                "set",
                "bridge",
                "br-up",
                "datapath_type=netdev",
                "--",
                "add-port",
                "br-up",
                "up0",
                "--",
                "add-port",
                "br-up",
                "gw",
                &tag,
                "--",
                "set",
                "interface",
                "gw",
                "type=internal",
            ])
            .map_err(link("VLAN port"))?;
            if let Some(r) = self.router.as_mut() {
                r.ovs = Some(ovs);
            }
            ip_in(&rns, ["link", "set", "gw", "up"]).map_err(link("gw"))?;
            tx_off(&rns, "gw").map_err(link("gw"))?;
            "gw".to_string()
        };
        let addr = format!("{gateway}/{prefix_len}");
        ip_in(&rns, ["addr", "add", &addr, "dev", &dev]).map_err(link("address"))?;
        ip_in(
            &rns,
            ["addr", "add", &format!("{UPSTREAM_REMOTE}/32"), "dev", "lo"],
        )
        .map_err(link("address"))?;
        Ok(())
    }
}
