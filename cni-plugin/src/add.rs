//! ADD: validate, move the VF into the pod, configure it, attach the representor to OVS; roll back on failure.

use crate::error::{code, ErrorCode};
use crate::hooks::pause_point;
use crate::ipam::{self, IpamEnv, IpamError};
use crate::netconf::{valid_ifname, NetconfError};
use crate::netlink::addr::{self, AddrError};
use crate::netlink::link::{self, Link, LinkError};
use crate::netlink::errno;
use crate::netns::{Netns, NetnsError};
use crate::port_ids::{external_ids, PortIdentity};
use crate::release;
use crate::representor_name::representor_name;
use crate::result::{CniResult, Interface, IpConfig};
use crate::rollback::{Rollback, Undo, UndoCtx};
use crate::skel::Request;
use crate::state::{AttachmentRecord, Phase, SavedRepresentor, SavedVf, StateDir, StateError, VfOwner};
use crate::traits::{Ovs, OvsError, PortSpec};
use crate::vf::{self, VfError, VfInfo};
use sriov_host::Sysfs;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// How long ADD waits for another ADD/DEL of the same VF.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long ADD waits for the representor's ofport.
pub const OFPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// An ADD step failed.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// Neither `deviceID`, `pciBusID` nor `runtimeConfig.deviceID` is set.
    #[error("no VF given: set deviceID (or pciBusID, runtimeConfig.deviceID)")]
    NoDeviceId,
    /// The configuration cannot be honoured.
    #[error("invalid network configuration")]
    Netconf(#[source] NetconfError),
    /// The derived representor name is not a valid name.
    #[error("representor name {name:?} derived from CNI_IFNAME {ifname:?} is not a valid interface name")]
    RepresentorName {
        /// Derived name.
        name: String,
        /// Pod interface.
        ifname: String,
    },
    /// The VF is not usable.
    #[error("VF unusable")]
    Vf(#[source] VfError),
    /// The IPAM plugin is not in `CNI_PATH`.
    #[error("IPAM plugin unusable")]
    IpamLookup(#[source] IpamError),
    /// A namespace could not be opened.
    #[error("network namespace unusable")]
    Netns(#[source] NetnsError),
    /// OVSDB failed.
    #[error("OVSDB step failed")]
    Ovs(#[source] OvsError),
    /// The bridge does not exist.
    #[error("OVS bridge {bridge} does not exist")]
    NoBridge {
        /// Bridge.
        bridge: String,
    },
    /// State files failed.
    #[error("state step failed")]
    State(#[source] StateError),
    /// A live attachment holds the VF.
    #[error("VF {pci} is held by container {container_id} ({ifname}) whose namespace {netns} still exists")]
    VfBusy {
        /// VF.
        pci: String,
        /// Holder.
        container_id: String,
        /// Holder's interface.
        ifname: String,
        /// Holder's namespace.
        netns: String,
    },
    /// The VF netdev is not in the host namespace.
    #[error("VF {pci} has no netdev in the host namespace (sysfs names {names:?}); is it in use elsewhere?")]
    VfNetdevMissing {
        /// VF.
        pci: String,
        /// Names sysfs shows.
        names: Vec<String>,
    },
    /// The representor netdev is missing.
    #[error("representor {name} of VF {pci} not found in the host namespace")]
    RepresentorMissing {
        /// VF.
        pci: String,
        /// Name.
        name: String,
    },
    /// The pod interface name is taken in the pod namespace.
    #[error("interface {ifname} already exists in {netns}")]
    IfnameTaken {
        /// Name.
        ifname: String,
        /// Namespace.
        netns: String,
    },
    /// A link operation failed.
    #[error("link step failed")]
    Link(#[source] LinkError),
    /// The VF vanished after the move.
    #[error("VF {pci} not found in {netns} after moving it there")]
    VfLost {
        /// VF.
        pci: String,
        /// Namespace.
        netns: String,
    },
    /// IPAM failed.
    #[error("IPAM failed")]
    Ipam(#[source] IpamError),
    /// Addresses or routes failed.
    #[error("address or route step failed")]
    Addr(#[source] AddrError),
}

impl ErrorCode for AddError {
    fn code(&self) -> u32 {
        match self {
            AddError::NoDeviceId | AddError::RepresentorName { .. } => code::INVALID_CONFIG,
            AddError::Netconf(e) => e.code(),
            AddError::Vf(e) => e.code(),
            AddError::IpamLookup(e) | AddError::Ipam(e) => e.code(),
            AddError::Netns(e) => e.code(),
            AddError::Ovs(e) => e.code(),
            AddError::NoBridge { .. } | AddError::VfBusy { .. } | AddError::VfNetdevMissing { .. } => code::TRY_AGAIN_LATER,
            AddError::State(e) => e.code(),
            AddError::IfnameTaken { .. } => code::INVALID_CONFIG,
            AddError::RepresentorMissing { .. } => code::VF,
            AddError::Link(e) => e.code(),
            AddError::VfLost { .. } => code::NETLINK,
            AddError::Addr(e) => e.code(),
        }
    }
}

/// The alias that marks a VF as ours, to find it again after renames and namespace moves.
pub fn vf_alias(pci: &str) -> String {
    format!("sriov-ovs:{pci}")
}

/// Runs ADD and returns the result (version-neutral). `connect` opens OVSDB once the input is validated.
pub async fn add<O: Ovs, F: Future<Output = Result<O, OvsError>>>(connect: F, sysfs: &Sysfs, req: &Request) -> Result<CniResult, AddError> {
    let conf = &req.conf;
    for key in &conf.unknown_keys {
        tracing::warn!(key = %key, "unknown network configuration key ignored");
    }
    // Validate everything before touching the host.
    let pci_addr = conf.device_id.ok_or(AddError::NoDeviceId)?;
    let netns_path = req.netns.as_deref().unwrap_or(Path::new(""));
    let mac = conf.effective_mac(&req.args).map_err(AddError::Netconf)?;
    let new_rep = representor_name(&req.container_id, &req.ifname);
    if !valid_ifname(&new_rep) {
        return Err(AddError::RepresentorName { name: new_rep, ifname: req.ifname.clone() });
    }
    let vf = vf::resolve(sysfs, &pci_addr).map_err(AddError::Vf)?;
    let delegate_ipam = conf.ipam_type.is_some() && !conf.uses_runtime_ips();
    if let (true, Some(t)) = (delegate_ipam, &conf.ipam_type) {
        if ipam::find_plugin(t, &req.path).is_none() {
            return Err(AddError::IpamLookup(IpamError::NotFound { plugin: t.clone(), path: req.path.clone() }));
        }
    }
    let pod = Netns::open(netns_path).map_err(AddError::Netns)?;
    let host = Netns::host().map_err(AddError::Netns)?;
    let ovs = &connect.await.map_err(AddError::Ovs)?;
    if !ovs.bridge_exists(&conf.bridge).await.map_err(AddError::Ovs)? {
        return Err(AddError::NoBridge { bridge: conf.bridge.clone() });
    }
    if vf.has_kernel_netdev() {
        if let Some(l) = link::by_name(&pod.handle, &pod.label, &req.ifname).await.map_err(AddError::Link)? {
            if l.alias.as_deref() != Some(vf_alias(&vf.pci.to_string()).as_str()) {
                return Err(AddError::IfnameTaken { ifname: req.ifname.clone(), netns: pod.label.clone() });
            }
        }
    }
    tracing::debug!("validated");
    let state = StateDir::new(&conf.state_dir);
    let pci = vf.pci.to_string();
    let _lock = state.lock_vf(&pci, LOCK_TIMEOUT).map_err(AddError::State)?;
    take_over_stale(ovs, &state, &host, &vf, req).await?;
    tracing::debug!("locked");

    let alias = vf_alias(&pci);
    let vf_link = if vf.has_kernel_netdev() {
        let l = release::find_vf_on_host(&host, &alias, &vf.netdevs, None).await.map_err(AddError::Link)?;
        Some(l.ok_or_else(|| AddError::VfNetdevMissing { pci: pci.clone(), names: vf.netdevs.clone() })?)
    } else {
        None
    };
    let rep_link = link::by_name(&host.handle, &host.label, &vf.representor)
        .await
        .map_err(AddError::Link)?
        .ok_or_else(|| AddError::RepresentorMissing { pci: pci.clone(), name: vf.representor.clone() })?;

    let mut rec = AttachmentRecord {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
        netns: netns_path.display().to_string(),
        pci: pci.clone(),
        alias: alias.clone(),
        vf: vf_link.as_ref().map(|l| SavedVf {
            name: l.name.clone(),
            ifindex: l.index,
            mac: l.mac.map(|m| m.to_string()),
            mtu: l.mtu,
            alias: l.alias.clone().filter(|a| a != &alias),
            up: l.up,
        }),
        representor: SavedRepresentor { name: rep_link.name.clone(), ifindex: rep_link.index, mtu: rep_link.mtu, new_name: new_rep.clone(), up: rep_link.up },
        bridge: conf.bridge.clone(),
        ovn_port: conf.ovn_port_name(&req.args),
        cni_path: req.path.clone(),
        cni_args: req.args_raw.clone(),
        conf: conf.raw.clone(),
        ipam_delegated: delegate_ipam,
        phase: Phase::Adding,
        result: None,
    };
    tracing::debug!("found VF and representor");
    let mut rb = Rollback::new();
    rb.push(Undo::StateFiles);
    let owner = VfOwner { container_id: rec.container_id.clone(), ifname: rec.ifname.clone(), netns: rec.netns.clone() };
    let saved = state.save(&rec).and_then(|()| state.set_owner(&pci, &owner));
    let outcome = match saved {
        Ok(()) => {
            tracing::debug!("state saved");
            attach(ovs, &host, &pod, &vf, vf_link, rep_link, mac, req, &mut rec, &mut rb).await
        }
        Err(e) => Err(AddError::State(e)),
    };
    match outcome {
        Ok(result) => {
            rec.phase = Phase::Added;
            rec.result = Some(result.to_value(conf.cni_version));
            match state.save(&rec) {
                Ok(()) => Ok(result),
                Err(e) => {
                    unwind(rb, ovs, &host, &pod, &state, &rec, &vf).await;
                    Err(AddError::State(e))
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "ADD failed; rolling back");
            unwind(rb, ovs, &host, &pod, &state, &rec, &vf).await;
            Err(e)
        }
    }
}

async fn unwind<O: Ovs>(rb: Rollback, ovs: &O, host: &Netns, pod: &Netns, state: &StateDir, rec: &AttachmentRecord, vf: &VfInfo) {
    let ctx = UndoCtx { ovs, host, pod: Some(pod), state, rec, sysfs_names: &vf.netdevs };
    rb.unwind(&ctx).await;
}

/// Has the kernel send gratuitous ARPs for every IPv4 address of the pod interface: turn on
/// `arp_notify` and re-set the (unchanged) MAC, which notifies `NETDEV_CHANGEADDR`. Best-effort.
///
/// (A raw `AF_PACKET` socket would do too, but closing one waits for an RCU grace period.)
async fn announce(pod: &Netns, l: &Link, result: &CniResult) {
    let Some(mac) = l.mac else { return };
    if !result.ips.iter().any(|ip| ip.address.is_ipv4()) {
        return;
    }
    if let Err(e) = pod.write_sysctl(&format!("net/ipv4/conf/{}/arp_notify", l.name), "1") {
        tracing::warn!(error = %e, "gratuitous ARP not sent");
        return;
    }
    if let Err(e) = link::set_mac(&pod.handle, l, mac).await {
        tracing::warn!(error = %e, "gratuitous ARP not sent");
    }
}

/// A previous attachment holds the VF: refuse if it is live, else release its host side.
async fn take_over_stale<O: Ovs>(ovs: &O, state: &StateDir, host: &Netns, vf: &VfInfo, req: &Request) -> Result<(), AddError> {
    let pci = vf.pci.to_string();
    let Some(owner) = state.owner(&pci).map_err(AddError::State)? else { return Ok(()) };
    let ours = owner.container_id == req.container_id && owner.ifname == req.ifname;
    let old = state.load(&owner.container_id, &owner.ifname).map_err(AddError::State)?;
    if !ours && old.is_some() && Path::new(&owner.netns).exists() {
        return Err(AddError::VfBusy { pci, container_id: owner.container_id, ifname: owner.ifname, netns: owner.netns });
    }
    if let Some(old) = old {
        tracing::info!(pci = %pci, previous = %owner.container_id, "releasing a stale attachment of this VF");
        let pod = release::open_pod_ns(Some(Path::new(&old.netns)));
        if let Err(e) = release::release_all(ovs, host, pod.as_ref(), &old, &vf.netdevs, ours).await {
            tracing::warn!(error = %e, "stale attachment only partly released");
        }
        if ours {
            state.remove(&old.container_id, &old.ifname).map_err(AddError::State)?;
        }
    }
    state.clear_owner(&pci).map_err(AddError::State)
}

/// Moves the VF into the pod under `ifname`, handling a name clash on the way.
async fn move_vf_into_pod(host: &Netns, pod: &Netns, l: &Link, alias: &str, pci: &str) -> Result<(), AddError> {
    let h = &host.handle;
    link::set_alias(h, l, alias).await.map_err(AddError::Link)?;
    if l.up {
        link::set_up(h, l, false).await.map_err(AddError::Link)?;
    }
    tracing::debug!("VF alias set and down");
    let fd = pod.fd().ok_or_else(|| AddError::VfLost { pci: pci.to_string(), netns: pod.label.clone() })?;
    match link::move_to_netns(h, l, fd, &pod.label).await {
        Ok(()) => Ok(()),
        Err(LinkError::MoveToNetns { source, .. }) if errno(&source) == Some(libc::EEXIST) => {
            // The VF's name (or an altname) exists in the pod: move it under a temporary name.
            let tmp = release::temp_name(pci);
            link::rename(h, l, &tmp).await.map_err(AddError::Link)?;
            let l = Link { name: tmp, ..l.clone() };
            for alt in l.altnames.clone() {
                link::del_altname(h, &l, &alt).await.map_err(AddError::Link)?;
            }
            link::move_to_netns(h, &l, fd, &pod.label).await.map_err(AddError::Link)
        }
        Err(e) => Err(AddError::Link(e)),
    }
}

#[allow(clippy::too_many_arguments)]
async fn attach<O: Ovs>(
    ovs: &O,
    host: &Netns,
    pod: &Netns,
    vf: &VfInfo,
    vf_link: Option<Link>,
    rep_link: Link,
    mac: Option<crate::mac::MacAddr>,
    req: &Request,
    rec: &mut AttachmentRecord,
    rb: &mut Rollback,
) -> Result<CniResult, AddError> {
    let conf = &req.conf;
    let pci = rec.pci.clone();
    let mut pod_iface = Interface { name: req.ifname.clone(), sandbox: Some(rec.netns.clone()), pci_id: Some(pci.clone()), ..Default::default() };
    let mut pod_link = None;
    if let Some(l) = vf_link {
        rb.push(Undo::RestoreVf);
        move_vf_into_pod(host, pod, &l, &rec.alias, &pci).await?;
        tracing::debug!("VF moved into the pod");
        pause_point(&req.env, "after-vf-move").await;
        let ph = &pod.handle;
        let moved = link::by_alias(ph, &pod.label, &rec.alias).await.map_err(AddError::Link)?;
        let moved = moved.ok_or_else(|| AddError::VfLost { pci: pci.clone(), netns: pod.label.clone() })?;
        link::rename_clearing_altname(ph, &pod.label, &moved, &req.ifname).await.map_err(AddError::Link)?;
        let moved = Link { name: req.ifname.clone(), ..moved };
        if let Some(mac) = mac {
            link::set_mac(ph, &moved, mac).await.map_err(AddError::Link)?;
        }
        if let Some(mtu) = conf.mtu {
            link::set_mtu(ph, &moved, mtu).await.map_err(AddError::Link)?;
        }
        link::set_up(ph, &moved, true).await.map_err(AddError::Link)?;
        let now = link::by_index(ph, &pod.label, moved.index).await.map_err(AddError::Link)?;
        let now = now.ok_or_else(|| AddError::VfLost { pci: pci.clone(), netns: pod.label.clone() })?;
        pod_iface.mac = now.mac.map(|m| m.to_string());
        pod_iface.mtu = now.mtu;
        pod_link = Some(now);
    }

    // Addresses: runtimeConfig.ips, else the IPAM plugin.
    let mut result = if conf.uses_runtime_ips() {
        CniResult { ips: conf.runtime_ips.iter().map(|a| IpConfig { address: *a, gateway: None, interface: None }).collect(), ..Default::default() }
    } else if let (true, Some(t)) = (rec.ipam_delegated, &conf.ipam_type) {
        rb.push(Undo::IpamDel);
        let env = IpamEnv { container_id: &req.container_id, netns: &rec.netns, ifname: &req.ifname, args: &req.args_raw, path: &req.path };
        ipam::add(t, &env, &conf.raw).map_err(AddError::Ipam)?
    } else {
        CniResult::default()
    };
    if let Some(l) = &pod_link {
        let ph = &pod.handle;
        for ip in &result.ips {
            addr::add_address(ph, &l.name, l.index, ip.address).await.map_err(AddError::Addr)?;
        }
        for route in &result.routes {
            addr::add_route(ph, &l.name, l.index, route, &result.ips).await.map_err(AddError::Addr)?;
        }
    }

    // Representor: rename Kube-OVN style, attach, then MTU and up.
    pause_point(&req.env, "before-attach").await;
    let hh = &host.handle;
    rb.push(Undo::RestoreRepresentor);
    if rep_link.up {
        link::set_up(hh, &rep_link, false).await.map_err(AddError::Link)?;
    }
    link::rename_clearing_altname(hh, &host.label, &rep_link, &rec.representor.new_name).await.map_err(AddError::Link)?;
    let rep = Link { name: rec.representor.new_name.clone(), ..rep_link };
    let ips: Vec<String> = result.ips.iter().map(|ip| ip.address.addr.to_string()).collect();
    let spec = PortSpec {
        bridge: conf.bridge.clone(),
        name: rep.name.clone(),
        external_ids: external_ids(&PortIdentity {
            iface_id: rec.ovn_port.as_deref(),
            pod_name: req.args.pod_name.as_deref(),
            pod_namespace: req.args.pod_namespace.as_deref(),
            netns: &rec.netns,
            ips,
            container_id: &req.container_id,
            ifname: &req.ifname,
            pci: &pci,
        }),
        vlan: conf.vlan,
    };
    rb.push(Undo::DelPort);
    tracing::debug!("pod configured, representor renamed");
    ovs.add_port(&spec).await.map_err(AddError::Ovs)?;
    tracing::debug!("port added");
    pause_point(&req.env, "after-attach").await;
    if let Some(mtu) = conf.mtu {
        link::set_mtu(hh, &rep, mtu).await.map_err(AddError::Link)?;
    }
    link::set_up(hh, &rep, true).await.map_err(AddError::Link)?;
    let ofport = ovs.wait_ofport(&rep.name, OFPORT_TIMEOUT).await.map_err(AddError::Ovs)?;
    tracing::debug!(ofport, "ofport assigned");
    if rec.ovn_port.is_some() && !conf.ovn_installed_timeout.is_zero() {
        ovs.wait_ovn_installed(&rep.name, conf.ovn_installed_timeout).await.map_err(AddError::Ovs)?;
    }
    let rep_now = link::by_index(hh, &host.label, rep.index).await.map_err(AddError::Link)?;
    // Announce the pod's addresses once the data path through the representor exists.
    if let Some(l) = &pod_link {
        announce(pod, l, &result).await;
    }

    let has_pod_link = pod_link.is_some();
    let rep_iface = Interface { name: rep.name.clone(), mac: rep_now.as_ref().and_then(|l| l.mac).map(|m| m.to_string()), mtu: rep_now.and_then(|l| l.mtu), ..Default::default() };
    result.interfaces = vec![pod_iface, rep_iface];
    for ip in &mut result.ips {
        ip.interface = has_pod_link.then_some(0);
    }
    tracing::info!(pci = %pci, ifname = %req.ifname, representor = %rep.name, "ADD done");
    let _ = vf;
    Ok(result)
}
