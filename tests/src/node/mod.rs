//! A simulated Kubernetes node: a netns with its own `ovsdb-server`, `ovs-vswitchd` (netdev datapath),
//! `ovn-controller`, `br-int`, `br-phy` holding the management NIC and the node IP (userspace
//! tunnelling), an optional provider bridge holding the PF uplink, and a simulated SR-IOV NIC.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use simnode::{SimNode, SimNodeSpec, VfLayout};

use crate::fabric::{create_netns, Fabric, FabricError, MGMT_BRIDGE};
use crate::ovn_central::OvnCentral;
use testbed::cmd::{Cmd, CmdError};
use testbed::daemon::{wait_for, Daemon};
use testbed::netns::Netns;
use testbed::ovs::{OvsError, OvsInstance, OvsNetns};

mod bridges;

/// Name of the node's management NIC (the one holding the node IP, through `br-phy`).
pub const MGMT_IF: &str = "mgmt0";
/// The provider bridge that holds the PF uplink for underlay networks.
pub const PROVIDER_BRIDGE: &str = "br-provider";

/// Errors of starting or driving a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node's directory could not be created.
    #[error("cannot create {dir}")]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The netns or its cables could not be set up.
    #[error("node {node}: network plumbing")]
    Fabric {
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: Box<FabricError>,
    },
    /// A setup step failed.
    #[error("node {node}: {step}")]
    Step {
        /// The node.
        node: String,
        /// What was being done.
        step: &'static str,
        /// Why.
        #[source]
        source: CmdError,
    },
    /// `ovn-controller` did not register its chassis in SB in time.
    #[error("node {node}: chassis not registered in SB; see {log}")]
    ChassisMissing {
        /// The node.
        node: String,
        /// The controller log.
        log: PathBuf,
    },
    /// The node's OVS did not start.
    #[error("node {node}: Open vSwitch")]
    Ovs {
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: Box<OvsError>,
    },
    /// The simulated NIC could not be brought up.
    #[error("node {node}: simulated NIC")]
    Nic {
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: Box<simnode::SimError>,
    },
}

/// What a node looks like.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Node (and chassis, `system-id`) name, e.g. `node1`.
    pub name: String,
    /// Index in the cluster, for link and netns names.
    pub index: usize,
    /// Node IP on the management network (Geneve endpoint).
    pub ip: Ipv4Addr,
    /// Prefix length of the management network.
    pub prefix_len: u8,
    /// MTU of the management network (leaves room for Geneve above the pods' MTU).
    pub mgmt_mtu: u32,
    /// VFs of the simulated NIC's single PF; 0 for no NIC.
    pub vfs: u32,
}

/// A running node. Dropping it stops its daemons and removes its links and netns.
#[derive(Debug)]
pub struct Node {
    // Fields drop in order: daemons, then the NIC's links, then the netns.
    controller: Daemon,
    ovs: OvsInstance,
    nic: Option<SimNode>,
    netns: Netns,
    spec: NodeSpec,
    prefix: String,
    dir: PathBuf,
    sb_remote: String,
}

impl Node {
    /// Starts a node of cluster `prefix` under `dir`, cabled to `fabric`, controlled by `central`.
    pub fn start(
        prefix: &str,
        spec: NodeSpec,
        dir: &Path,
        fabric: &Fabric,
        central: &OvnCentral,
    ) -> Result<Node, NodeError> {
        let node = spec.name.clone();
        std::fs::create_dir_all(dir).map_err(|source| NodeError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let fab = |source| NodeError::Fabric {
            node: node.clone(),
            source: Box::new(source),
        };
        let netns = create_netns(&format!("{prefix}-n{}", spec.index)).map_err(fab)?;
        fabric
            .cable(
                netns.name(),
                MGMT_IF,
                &format!("{prefix}n{}m", spec.index),
                MGMT_BRIDGE,
                spec.mgmt_mtu,
            )
            .map_err(fab)?;
        let ovs = OvsInstance::start_with(OvsNetns::Existing(netns.name().to_string()), Some(dir)).map_err(
            |source| NodeError::Ovs {
                node: node.clone(),
                source: Box::new(source),
            },
        )?;
        let mut n = Node {
            controller: Daemon::new("ovn-controller", dir.join("ovn-controller.pid")),
            ovs,
            nic: None,
            netns,
            prefix: prefix.to_string(),
            dir: dir.to_path_buf(),
            sb_remote: central.sb_remote(),
            spec,
        };
        let ns = n.netns.name().to_string();
        n.setup_bridges()?;
        n.start_controller()?;
        let registered = wait_for(Duration::from_secs(30), || {
            central.chassis_names().contains(&n.spec.name).then_some(())
        });
        if registered.is_none() {
            return Err(NodeError::ChassisMissing {
                node: n.spec.name.clone(),
                log: n.dir.join("ovn-controller.log"),
            });
        }
        if n.spec.vfs > 0 {
            let sim = SimNodeSpec::new(format!("{prefix}n{}", n.spec.index), 1, n.spec.vfs)
                .with_netns(&ns)
                .with_sysfs_root(n.dir.join("sys"))
                .with_state_dir(n.dir.join("simnode"));
            n.nic = Some(SimNode::up(sim).map_err(|source| NodeError::Nic {
                node: n.spec.name.clone(),
                source: Box::new(source),
            })?);
        }
        Ok(n)
    }

    pub(crate) fn step<T>(
        &self,
        step: &'static str,
        f: impl FnOnce() -> Result<T, CmdError>,
    ) -> Result<T, NodeError> {
        f().map_err(|source| NodeError::Step {
            node: self.spec.name.clone(),
            step,
            source,
        })
    }

    fn start_controller(&self) -> Result<(), NodeError> {
        self.step("start ovn-controller", || {
            Cmd::new("ovn-controller")
                .arg(format!("unix:{}", self.db_sock().display()))
                .arg(format!("--pidfile={}", self.controller.pidfile().display()))
                .arg(format!(
                    "--log-file={}",
                    self.dir.join("ovn-controller.log").display()
                ))
                .args(["--detach", "--no-chdir"])
                .ovs_dirs(&self.dir)
                .netns(Some(self.netns.name()))
                .run()
        })
        .map(drop)
    }

    /// The node name (= chassis name).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The node's spec.
    pub fn spec(&self) -> &NodeSpec {
        &self.spec
    }

    /// The node's netns name.
    pub fn netns(&self) -> &str {
        self.netns.name()
    }

    /// The node's private directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The OVSDB socket of the node's `ovsdb-server`.
    pub fn db_sock(&self) -> PathBuf {
        self.ovs.socket_path()
    }

    /// The simulated NIC, if the node has one.
    pub fn nic(&self) -> Option<&SimNode> {
        self.nic.as_ref()
    }

    /// Root of the node's simulated sysfs tree.
    pub fn sysfs_root(&self) -> Option<&Path> {
        self.nic.as_ref().map(SimNode::sysfs_root)
    }

    /// The VF with PCI address `pci` (as text), if the node's NIC has it.
    pub fn vf_by_pci(&self, pci: &str) -> Option<&VfLayout> {
        self.nic
            .as_ref()?
            .layout()
            .vfs()
            .find(|vf| vf.pci.to_string() == pci)
    }

    /// `ovs-vsctl ARGS` against this node's database.
    pub fn vsctl<I, S>(&self, args: I) -> Result<String, CmdError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        self.ovs.vsctl(args)
    }

    /// `ovs-appctl -t ovs-vswitchd ARGS`.
    pub fn appctl<I, S>(&self, args: I) -> Result<String, CmdError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        self.ovs.appctl(args)
    }

    /// `ovs-ofctl ARGS` (OpenFlow 1.5) against a bridge's management socket.
    pub fn ofctl(&self, cmd: &str, bridge: &str) -> Result<String, CmdError> {
        Cmd::new("ovs-ofctl")
            .args(["-O", "OpenFlow15", cmd])
            .arg(format!(
                "unix:{}",
                self.dir.join(format!("{bridge}.mgmt")).display()
            ))
            .ovs_dirs(&self.dir)
            .run()
    }

    /// The datapath flows (`ovs-appctl dpctl/dump-flows -m`), as the seed's verification step shows them.
    pub fn datapath_flows(&self) -> Result<String, CmdError> {
        self.appctl(["dpctl/dump-flows", "-m"])
    }

    /// The `Interface` names on `br-int` whose `external_ids:iface-id` is `lsp`.
    pub fn interfaces_of(&self, lsp: &str) -> Vec<String> {
        self.vsctl([
            "--bare",
            "--columns=name",
            "find",
            "Interface",
            &format!("external_ids:iface-id=\"{lsp}\""),
        ])
        .map(|o| o.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
    }

    /// Whether the OVS interface bound to `lsp` has `external_ids:ovn-installed=true`.
    pub fn ovn_installed(&self, lsp: &str) -> bool {
        self.vsctl([
            "--bare",
            "--columns=external_ids",
            "find",
            "Interface",
            &format!("external_ids:iface-id=\"{lsp}\""),
        ])
        .is_ok_and(|o| o.contains("ovn-installed=\"true\"") || o.contains("ovn-installed=true"))
    }

    /// Kills `ovn-controller` and starts it again (pods keep running).
    pub fn restart_ovn_controller(&self) -> Result<(), NodeError> {
        self.controller.stop();
        self.start_controller()
    }

    /// Kills the node's `ovsdb-server` and starts it again on the same database file.
    pub fn restart_ovsdb_server(&self) -> Result<(), NodeError> {
        self.ovs.restart_ovsdb_server().map_err(|source| NodeError::Ovs {
            node: self.spec.name.clone(),
            source: Box::new(source),
        })
    }

    /// Whether all three daemons are alive.
    pub fn daemons_alive(&self) -> bool {
        self.ovs.alive() && self.controller.alive()
    }

    /// Runs `cmd` inside the node's netns.
    pub fn exec(&self, cmd: Cmd) -> Result<String, CmdError> {
        cmd.netns(Some(self.netns.name())).run()
    }
}
