//! Finding a PF's uplink and a VF's representor on the PF's eswitch.
//!
//! A representor is the netdev on the same switch (equal `phys_switch_id`)
//! whose `phys_port_name` names the VF's PF and index. Netdevs that have no
//! such attributes (veth, virtio, bridges) are skipped, never an error.

use std::collections::BTreeMap;

use crate::address::PciAddress;
use crate::netdev::NetdevError;
use crate::pci::{PciError, PciFunction};
use crate::port_name::PhysPortName;
use crate::sysfs::{list_dir, SysDir, Sysfs};

/// Which representor names to accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepresentorView {
    /// A host with the NIC's eswitch: `pf<P>vf<N>` and bare `<N>`.
    Host,
    /// A BlueField DPU's Arm side: additionally `c<C>pf<P>vf<N>` for host VFs.
    Dpu,
}

/// The uplink representor of a PF: its own netdev in switchdev mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uplink {
    /// Netdev name (`enp132s0f0np0`).
    pub netdev: String,
    /// PF index on the NIC (from `p<P>`, else the PCI function number).
    pub pf_index: u32,
    /// The eswitch's `phys_switch_id`.
    pub switch_id: String,
}

/// A VF's representor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Representor {
    /// Netdev name in the host namespace.
    pub netdev: String,
    /// PF index the representor names (the uplink's when the name omits it).
    pub pf_index: u32,
    /// VF index.
    pub vf_index: u32,
    /// Controller, for BlueField host representors seen from the DPU.
    pub controller: Option<u32>,
    /// Its interface index (sysfs `ifindex`), to follow it through renames.
    pub ifindex: Option<u32>,
}

/// A representor or uplink lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum RepresentorError {
    /// The VF or PF could not be read.
    #[error("cannot read PCI device {address}")]
    Pci {
        /// The device.
        address: PciAddress,
        /// The cause.
        #[source]
        source: PciError,
    },
    /// The address is not a VF.
    #[error("PCI device {address} is not a VF (it has no physfn link)")]
    NotAVf {
        /// The device.
        address: PciAddress,
    },
    /// The PF has no netdev acting as eswitch uplink.
    #[error("PF {pf} has no uplink netdev with a phys_switch_id (netdevs: {netdevs:?}); is its eswitch in switchdev mode?")]
    NoUplink {
        /// The PF.
        pf: PciAddress,
        /// Its netdevs.
        netdevs: Vec<String>,
    },
    /// Reading a netdev attribute failed.
    #[error("cannot read netdev attribute")]
    Netdev(#[source] NetdevError),
    /// Listing `class/net` failed.
    #[error("cannot list {}", path.display())]
    ListNetdevs {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No netdev on the switch represents the VF.
    #[error(
        "no representor for VF {vf} (PF {pf} index {pf_index}, VF index {vf_index}) on switch {switch_id}"
    )]
    NotFound {
        /// The VF.
        vf: PciAddress,
        /// Its PF.
        pf: PciAddress,
        /// The PF index.
        pf_index: u32,
        /// The VF index.
        vf_index: u32,
        /// The switch searched.
        switch_id: String,
    },
}

impl Sysfs {
    /// The uplink representor of PF `pf`: among its netdevs, the one whose
    /// `phys_port_name` is `p<P>`; failing that (old kernels), one with a
    /// `phys_switch_id` and no port name.
    pub fn uplink(&self, pf: &PciAddress) -> Result<Uplink, RepresentorError> {
        self.uplink_of(&self.read_pci(pf)?)
    }

    /// [`Sysfs::uplink`] of a PF already read (by [`Sysfs::pci_functions`],
    /// say), without reading its PCI function again.
    pub fn uplink_of(&self, function: &PciFunction) -> Result<Uplink, RepresentorError> {
        self.uplink_with(function, &NetdevAttrs::of(self, function))
    }

    fn uplink_with(
        &self,
        function: &PciFunction,
        attrs: &NetdevAttrs<'_>,
    ) -> Result<Uplink, RepresentorError> {
        let pf = &function.address;
        let mut fallback = None;
        for netdev in &function.netdevs {
            let Some(switch_id) = attrs.get(netdev, "phys_switch_id")? else {
                continue;
            };
            match attrs.get(netdev, "phys_port_name")? {
                Some(name) => {
                    if let Ok(PhysPortName::Uplink { pf: pf_index }) = name.parse() {
                        return Ok(Uplink {
                            netdev: netdev.clone(),
                            pf_index,
                            switch_id,
                        });
                    }
                }
                None if fallback.is_none() => fallback = Some((netdev.clone(), switch_id)),
                None => {}
            }
        }
        match fallback {
            Some((netdev, switch_id)) => Ok(Uplink {
                netdev,
                pf_index: u32::from(pf.function),
                switch_id,
            }),
            None => Err(RepresentorError::NoUplink {
                pf: *pf,
                netdevs: function.netdevs.clone(),
            }),
        }
    }

    /// The representor of VF `vf` on its PF's eswitch.
    pub fn representor(
        &self,
        vf: &PciAddress,
        view: RepresentorView,
    ) -> Result<Representor, RepresentorError> {
        let function = self.read_pci(vf)?;
        let (Some(pf), Some(vf_index)) = (function.physfn, function.vf_index) else {
            return Err(RepresentorError::NotAVf { address: *vf });
        };
        let pf_function = self.read_pci(&pf)?;
        let uplink = self.uplink_of(&pf_function)?;
        let pf_netdevs = pf_function.netdevs;
        let dir = self.class_net_dir();
        let netdevs = list_dir(&dir).map_err(|source| RepresentorError::ListNetdevs { path: dir, source })?;
        for netdev in netdevs {
            if self.attr(&netdev, "phys_switch_id")?.as_deref() != Some(uplink.switch_id.as_str()) {
                continue;
            }
            let Some((pf_index, index, controller)) = vf_port(self.attr(&netdev, "phys_port_name")?, view)
            else {
                continue;
            };
            // A bare `<N>` name does not say which PF it belongs to; when both
            // ports of a card share a switch id only the netdev's own PCI
            // function (representors are netdevs of their PF) tells.
            let pf_matches = match pf_index {
                Some(p) => p == uplink.pf_index,
                None => pf_netdevs.contains(&netdev),
            };
            if index == vf_index && pf_matches {
                return Ok(Representor {
                    ifindex: self.netdev_ifindex(&netdev),
                    netdev,
                    pf_index: uplink.pf_index,
                    vf_index,
                    controller,
                });
            }
        }
        Err(RepresentorError::NotFound {
            vf: *vf,
            pf,
            pf_index: uplink.pf_index,
            vf_index,
            switch_id: uplink.switch_id,
        })
    }

    /// Every VF representor among PF `pf`'s own netdevs, by VF index, in one
    /// pass (mlx5 makes representors netdevs of their PF's PCI function).
    /// Callers that look up many VFs use this instead of one
    /// [`Sysfs::representor`] search of `class/net` per VF.
    pub fn pf_representors(
        &self,
        pf: &PciAddress,
        view: RepresentorView,
    ) -> Result<BTreeMap<u32, Representor>, RepresentorError> {
        self.pf_representors_of(&self.read_pci(pf)?, view)
    }

    /// [`Sysfs::pf_representors`] of a PF already read (by
    /// [`Sysfs::pci_functions`], say), without reading its PCI function
    /// again; attributes are read through the PF's `net/` directory.
    pub fn pf_representors_of(
        &self,
        function: &PciFunction,
        view: RepresentorView,
    ) -> Result<BTreeMap<u32, Representor>, RepresentorError> {
        let attrs = NetdevAttrs::of(self, function);
        let uplink = self.uplink_with(function, &attrs)?;
        let mut found = BTreeMap::new();
        for netdev in &function.netdevs {
            if *netdev == uplink.netdev
                || attrs.get(netdev, "phys_switch_id")?.as_deref() != Some(uplink.switch_id.as_str())
            {
                continue;
            }
            let Some((pf_index, vf, controller)) = vf_port(attrs.get(netdev, "phys_port_name")?, view) else {
                continue;
            };
            // Under the PF's own net/, a bare `<N>` can only be this PF's.
            let pf_matches = pf_index.is_none_or(|p| p == uplink.pf_index);
            if pf_matches && !found.contains_key(&vf) {
                let ifindex = attrs.get(netdev, "ifindex")?.and_then(|i| i.parse().ok());
                found.insert(
                    vf,
                    Representor {
                        netdev: netdev.clone(),
                        pf_index: uplink.pf_index,
                        vf_index: vf,
                        controller,
                        ifindex,
                    },
                );
            }
        }
        Ok(found)
    }

    fn read_pci(&self, address: &PciAddress) -> Result<PciFunction, RepresentorError> {
        self.pci_function(address)
            .map_err(|source| RepresentorError::Pci {
                address: *address,
                source,
            })
    }

    fn attr(&self, netdev: &str, attribute: &str) -> Result<Option<String>, RepresentorError> {
        self.netdev_attr(netdev, attribute)
            .map_err(RepresentorError::Netdev)
    }
}

/// The `(PF index, VF index, controller)` a VF representor's `phys_port_name` names, when
/// `view` accepts it (controller-qualified names only on a DPU).
fn vf_port(port_name: Option<String>, view: RepresentorView) -> Option<(Option<u32>, u32, Option<u32>)> {
    match port_name?.parse().ok()? {
        PhysPortName::Vf { controller, pf, vf } if controller.is_none() || view == RepresentorView::Dpu => {
            Some((pf, vf, controller))
        }
        _ => None,
    }
}

/// Attributes of a PCI function's netdevs, read through its `net/`
/// directory (one relative lookup each) rather than from `class/net` (a
/// symlink back into the device tree, resolved again for every read). A
/// netdev not found there (a virtio NIC's, under `virtio<N>/net/`) is read
/// from `class/net`.
struct NetdevAttrs<'a> {
    sysfs: &'a Sysfs,
    net: Option<SysDir>,
}

impl<'a> NetdevAttrs<'a> {
    fn of(sysfs: &'a Sysfs, function: &PciFunction) -> NetdevAttrs<'a> {
        let net = SysDir::open(&sysfs.pci_device_dir(&function.address).join("net"))
            .ok()
            .flatten();
        NetdevAttrs { sysfs, net }
    }

    /// Like [`Sysfs::netdev_attr`]: trimmed, `None` when missing or empty.
    fn get(&self, netdev: &str, attribute: &str) -> Result<Option<String>, RepresentorError> {
        if let Some(net) = &self.net {
            if let Ok(Some(value)) = net.read_attr(&format!("{netdev}/{attribute}")) {
                return Ok(Some(value).filter(|v| !v.is_empty()));
            }
        }
        // Not under net/, no such attribute, or unreadable: class/net
        // answers (and names the path in its error).
        self.sysfs
            .netdev_attr(netdev, attribute)
            .map_err(RepresentorError::Netdev)
    }
}
