//! Release: undo an attachment, step by step and best-effort, also when the pod's namespace or
//! the record is gone. The steps are shared by release, attach's rollback and its takeover of
//! a stale attachment.

use super::lookup::{find_vf_on_host, open_pod_ns, temp_name};
use super::record::{AttachmentRecord, IpamFacts, Phase, SavedRepresentor, SavedVf};
use super::state::StateError;
use super::{Node, ReleaseRequest, LOCK_TIMEOUT};
use crate::error::{code, ErrorCode};
use crate::ipam::{self, IpamEnv, IpamError};
use crate::netlink::link::{Link, LinkError};
use crate::netns::NetnsError;
use crate::port_ids;
use crate::representor_name::representor_name;
use crate::sys::{self, Namespaces, Net};
use crate::traits::{Ovs, OvsError};
use crate::vf;
use std::time::{Duration, Instant};

/// A release step failed.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// A netlink step on the VF failed.
    #[error("cannot restore VF {pci}")]
    Vf {
        /// VF.
        pci: sriov_host::PciAddress,
        /// Cause.
        #[source]
        source: LinkError,
    },
    /// Opening the host namespace failed.
    #[error("cannot open the host network namespace")]
    HostNs(#[from] NetnsError),
    /// A netlink step on the representor failed.
    #[error("cannot restore representor {name}")]
    Representor {
        /// Original name.
        name: String,
        /// Cause.
        #[source]
        source: LinkError,
    },
    /// Removing the OVS port failed.
    #[error("cannot remove OVS port {port}")]
    Port {
        /// Port.
        port: String,
        /// Cause.
        #[source]
        source: OvsError,
    },
    /// IPAM DEL failed.
    #[error("IPAM DEL failed")]
    Ipam(#[from] IpamError),
    /// State files failed.
    #[error("state step failed")]
    State(#[from] StateError),
}

impl ErrorCode for ReleaseError {
    fn code(&self) -> u32 {
        match self {
            ReleaseError::Vf { .. } | ReleaseError::Representor { .. } | ReleaseError::HostNs(_) => {
                code::NETLINK
            }
            ReleaseError::Port { source, .. } => source.code(),
            ReleaseError::Ipam(source) => source.code(),
            ReleaseError::State(e) => e.code(),
        }
    }
}

/// What [`release()`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// Released the VF, representor and port.
    Released,
    /// A newer attachment owns the VF: only IPAM and our record were cleaned.
    NewerOwner,
    /// Nothing known about this attachment: IPAM release only.
    NothingKnown,
    /// Everything released but the VF, still on its way back from the pod's vanished namespace:
    /// its record stays, so the next attach or GC of this VF restores it.
    VfPending,
    /// The attachment completed after the caller listed it (GC): kept.
    Completed,
}

/// How long release waits for the kernel to hand a VF back from a pod namespace that is gone.
pub const VF_RETURN_TIMEOUT: Duration = Duration::from_secs(5);

/// Releases the attachment `req` names: its record's, or one rebuilt from sysfs when the
/// record is gone. Idempotent: releasing twice, or what was never attached, succeeds.
pub async fn release<K: Namespaces, O: Ovs>(
    node: Node<'_, K>,
    ovs: &O,
    req: &ReleaseRequest,
) -> Result<Released, ReleaseError> {
    let state = node.state;
    let load = || match state.load(&req.container_id, &req.ifname) {
        Ok(rec) => Ok(rec),
        Err(e @ StateError::Corrupt { .. }) => {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "state file unreadable; falling back to the VF given"
            );
            Ok(None)
        }
        Err(e) => Err(ReleaseError::State(e)),
    };
    let rec = load()?;
    let Some(pci) = rec.as_ref().map(|r| r.pci).or(req.pci) else {
        ipam_release(req.ipam.as_ref(), &req.container_id, &req.ifname, "")?;
        return Ok(Released::NothingKnown);
    };
    let _lock = state.lock_vf(&pci, LOCK_TIMEOUT).await?;
    // Read again under the lock: an attach or release of this VF may have run meanwhile.
    let rec = if rec.is_some() { load()? } else { None };
    match (req.listed_phase, rec.as_ref().map(|r| r.phase)) {
        (Some(_), None) => return Ok(Released::NothingKnown),
        (Some(Phase::Adding), Some(Phase::Added)) => {
            tracing::info!(container = %req.container_id, ifname = %req.ifname, "attachment completed meanwhile; kept");
            return Ok(Released::Completed);
        }
        _ => {}
    }
    let owner = state.owner(&pci)?;
    let newer = owner.is_some_and(|o| o.container_id != req.container_id || o.ifname != req.ifname);
    if newer {
        tracing::info!(pci = %pci, "a newer attachment owns the VF; leaving it alone");
        let facts = rec.as_ref().map_or(req.ipam.as_ref(), |r| r.ipam.as_ref());
        ipam_release(facts, &req.container_id, &req.ifname, "")?;
        state.remove(&req.container_id, &req.ifname)?;
        return Ok(Released::NewerOwner);
    }
    // The VF's PCI function exists (it has not been destroyed with numvfs lowered, say).
    let info = vf::resolve(node.sysfs, &pci).ok();
    let vf_exists = info.is_some();
    let (rec, names) = match (rec, info) {
        (Some(r), info) => (r, info.map(|i| i.netdevs).unwrap_or_default()),
        (None, Some(info)) => (rebuilt_record(req, &info), info.netdevs.clone()),
        (None, None) => {
            tracing::warn!(pci = %pci, "no record and the VF cannot be resolved; IPAM release only");
            ipam_release(req.ipam.as_ref(), &req.container_id, &req.ifname, "")?;
            return Ok(Released::NothingKnown);
        }
    };
    let host = node.kernel.host()?;
    let pod = req.netns.as_deref().and_then(|p| open_pod_ns(node.kernel, p));
    let vf_pending = pod.is_none() && vf_exists && !vf_returned(&host, &rec, &names).await?;
    let steps = Steps {
        ovs,
        host: &host,
        pod: pod.as_ref(),
        sysfs_names: &names,
        apply_timeout: req.ovs_apply_timeout,
    };
    steps.release_all(&rec, true).await?;
    if vf_pending {
        tracing::warn!(pci = %pci, timeout = ?VF_RETURN_TIMEOUT, "the VF has not come back from the pod's namespace; its record is kept so the next attach or GC of this VF restores it");
        return Ok(Released::VfPending);
    }
    state.clear_owner(&pci)?;
    state.remove(&req.container_id, &req.ifname)?;
    Ok(Released::Released)
}

/// Whether the VF is in the host namespace, waiting up to [`VF_RETURN_TIMEOUT`]: once a pod's
/// namespace is gone the kernel moves its physical netdevs back asynchronously, when it cleans
/// the namespace up, under their pod name or `dev<N>`.
async fn vf_returned<N: Net>(
    host: &N,
    rec: &AttachmentRecord,
    names: &[String],
) -> Result<bool, ReleaseError> {
    let Some(saved) = &rec.vf else { return Ok(true) };
    let cached = [rec.ifname.as_str(), saved.name.as_str()];
    let deadline = Instant::now() + VF_RETURN_TIMEOUT;
    loop {
        let found = find_vf_on_host(host, &rec.alias(), names, Some((saved.ifindex, &cached)))
            .await
            .map_err(|source| ReleaseError::Vf { pci: rec.pci, source })?;
        if found.is_some() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// IPAM release of the attachment `container_id`/`ifname` with `facts`, `netns` as `CNI_NETNS`
/// (empty once the pod's namespace is gone).
fn ipam_release(
    facts: Option<&IpamFacts>,
    container_id: &str,
    ifname: &str,
    netns: &str,
) -> Result<(), ReleaseError> {
    let Some(facts) = facts else { return Ok(()) };
    let env = IpamEnv {
        container_id,
        netns,
        ifname,
        args: &facts.args,
        path: &facts.path,
    };
    Ok(ipam::del(&facts.plugin, &env, &facts.conf)?)
}

/// A record rebuilt from the request and sysfs when the record is gone.
fn rebuilt_record(req: &ReleaseRequest, info: &vf::VfInfo) -> AttachmentRecord {
    AttachmentRecord {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
        netns: req.netns.clone().unwrap_or_default(),
        pci: info.pci,
        vf: info.has_kernel_netdev().then(|| SavedVf {
            name: info
                .netdevs
                .first()
                .cloned()
                .unwrap_or_else(|| temp_name(&info.pci)),
            ifindex: 0,
            mac: None,
            mtu: None,
            alias: None,
            up: false,
        }),
        representor: SavedRepresentor {
            name: info.representor.clone(),
            ifindex: 0,
            mtu: None,
            new_name: representor_name(&req.container_id, &req.ifname),
            up: true,
        },
        bridge: req.bridge.clone(),
        iface_id: None,
        network: String::new(),
        ipam: req.ipam.clone(),
        phase: Phase::Adding,
    }
}

/// The release steps of one attachment and what they act on.
pub struct Steps<'a, O, N> {
    /// OVSDB.
    pub ovs: &'a O,
    /// The host namespace.
    pub host: &'a N,
    /// The pod namespace, when it still exists.
    pub pod: Option<&'a N>,
    /// Names sysfs shows for the VF.
    pub sysfs_names: &'a [String],
    /// How long to wait for OVS to confirm a port removal.
    pub apply_timeout: Duration,
}

impl<O: Ovs, N: Net> Steps<'_, O, N> {
    /// Brings the VF back to the host namespace under its original name, MAC, MTU, alias and state.
    pub async fn restore_vf(&self, host: &N, rec: &AttachmentRecord) -> Result<(), ReleaseError> {
        let Some(saved) = &rec.vf else { return Ok(()) };
        let err = |source| ReleaseError::Vf { pci: rec.pci, source };
        let alias = rec.alias();
        if let Some(pod) = self.pod {
            if let Some(l) = sys::link_by_alias(pod, &alias).await.map_err(err)? {
                pod.set_up(&l, false).await.map_err(err)?;
                let tmp = temp_name(&rec.pci);
                sys::rename_clearing_altname(pod, &l, &tmp).await.map_err(err)?;
                let l = Link { name: tmp, ..l };
                pod.move_to(&l, host).await.map_err(err)?;
            }
        }
        let names = [rec.ifname.as_str(), saved.name.as_str()];
        let Some(l) = find_vf_on_host(host, &alias, self.sysfs_names, Some((saved.ifindex, &names)))
            .await
            .map_err(err)?
        else {
            tracing::warn!(pci = %rec.pci, "VF netdev not found in the pod or on the host; nothing to restore");
            return Ok(());
        };
        if l.alias.as_deref() != Some(alias.as_str()) && l.name == saved.name {
            // Neither marked nor renamed by us: never moved (or already restored). Leave it.
            return Ok(());
        }
        if l.up {
            host.set_up(&l, false).await.map_err(err)?;
        }
        match sys::rename_clearing_altname(host, &l, &saved.name).await {
            Ok(()) => {}
            Err(e @ LinkError::NameTaken { .. }) => {
                // Another link took the name meanwhile: leave the VF under its current name, keep
                // the alias so the next attach or release still finds it.
                tracing::warn!(error = &e as &dyn std::error::Error, current = %l.name, "VF back on the host but not under its original name");
                return Ok(());
            }
            Err(e) => return Err(err(e)),
        }
        let mut l = Link {
            name: saved.name.clone(),
            ..l
        };
        for stale in [rec.ifname.clone(), temp_name(&rec.pci)] {
            if stale != saved.name && l.altnames.contains(&stale) {
                host.del_altname(&l, &stale).await.map_err(err)?;
            }
        }
        l.altnames.clear();
        if let Some(mac) = saved.mac.filter(|m| l.mac != Some(*m)) {
            host.set_mac(&l, mac).await.map_err(err)?;
        }
        if let Some(mtu) = saved.mtu.filter(|m| l.mtu != Some(*m)) {
            host.set_mtu(&l, mtu).await.map_err(err)?;
        }
        host.set_alias(&l, saved.alias.as_deref().unwrap_or(""))
            .await
            .map_err(err)?;
        if saved.up {
            host.set_up(&l, true).await.map_err(err)?;
        }
        tracing::info!(pci = %rec.pci, name = %saved.name, "VF restored on the host");
        Ok(())
    }

    /// Gives the representor back its original name, MTU and state.
    pub async fn restore_representor(&self, rec: &AttachmentRecord) -> Result<(), ReleaseError> {
        let r = &rec.representor;
        let host = self.host;
        let err = |source| ReleaseError::Representor {
            name: r.name.clone(),
            source,
        };
        let links = host.links().await.map_err(err)?;
        let found = links
            .iter()
            .find(|l| l.index == r.ifindex && (l.name == r.new_name || l.name == r.name))
            .or_else(|| links.iter().find(|l| l.name == r.new_name))
            .or_else(|| links.iter().find(|l| l.name == r.name));
        let Some(l) = found.cloned() else {
            tracing::warn!(representor = %r.name, "representor not found; nothing to restore");
            return Ok(());
        };
        // Renaming takes the link down first; otherwise it is as listed.
        let mut is_up = l.up;
        if l.name != r.name {
            if l.up {
                host.set_up(&l, false).await.map_err(err)?;
                is_up = false;
            }
            sys::rename_clearing_altname(host, &l, &r.name)
                .await
                .map_err(err)?;
        }
        let l = Link {
            name: r.name.clone(),
            ..l
        };
        if let Some(mtu) = r.mtu.filter(|m| l.mtu != Some(*m)) {
            host.set_mtu(&l, mtu).await.map_err(err)?;
        }
        if is_up != r.up {
            host.set_up(&l, r.up).await.map_err(err)?;
        }
        Ok(())
    }

    /// Removes our OVS port, unless a newer attachment (another container ID) has it. Returns
    /// whether it deleted the port (and saw ovs-vswitchd apply that in time).
    pub async fn remove_port(&self, rec: &AttachmentRecord) -> Result<bool, ReleaseError> {
        let ovs = self.ovs;
        let port = &rec.representor.new_name;
        let err = |source| ReleaseError::Port {
            port: port.clone(),
            source,
        };
        let mut deleted = false;
        if let Some(state) = ovs.port(port).await.map_err(err)? {
            match state.external_ids.get(port_ids::CONTAINER_ID) {
                Some(cid) if cid != &rec.container_id => {
                    tracing::info!(port = %port, owner = %cid, "OVS port belongs to a newer attachment; left alone");
                    return Ok(false);
                }
                _ => {
                    ovs.del_port(&rec.bridge, port).await.map_err(err)?;
                    tracing::debug!(port = %port, "port deleted");
                    // ovs-vswitchd must close the netdev (and drop promiscuous mode) before it is renamed.
                    ovs.wait_applied(self.apply_timeout).await.map_err(err)?;
                    tracing::debug!("ovs-vswitchd applied the deletion");
                    deleted = true;
                }
            }
        }
        for stale in ovs
            .find_ports(port_ids::CONTAINER_ID, &rec.container_id)
            .await
            .map_err(err)?
        {
            if stale.external_ids.get(port_ids::IFNAME) == Some(&rec.ifname) {
                ovs.del_port(&rec.bridge, &stale.name).await.map_err(err)?;
            }
        }
        Ok(deleted)
    }

    /// When the representor still has the name attach gave it, waits until ovs-vswitchd has
    /// applied every pending change (so it has closed the netdev of a port deleted earlier).
    async fn confirm_closed(&self, rec: &AttachmentRecord) -> Result<(), ReleaseError> {
        let r = &rec.representor;
        let renamed = self
            .host
            .link_by_name(&r.new_name)
            .await
            .map_err(|source| ReleaseError::Representor {
                name: r.name.clone(),
                source,
            })?
            .is_some_and(|l| l.index == r.ifindex);
        if renamed {
            self.ovs
                .wait_applied(self.apply_timeout)
                .await
                .map_err(|source| ReleaseError::Port {
                    port: r.new_name.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// IPAM release for the attachment, when its addresses came from an IPAM plugin.
    pub fn ipam_del(&self, rec: &AttachmentRecord) -> Result<(), ReleaseError> {
        let netns = match self.pod {
            Some(_) => rec.netns.display().to_string(),
            None => String::new(),
        };
        ipam_release(rec.ipam.as_ref(), &rec.container_id, &rec.ifname, &netns)
    }

    /// Every host-side release step, in order, continuing past failures; returns the first
    /// failure. `ipam`: whether to release the addresses too.
    pub async fn release_all(&self, rec: &AttachmentRecord, ipam: bool) -> Result<(), ReleaseError> {
        let mut first: Option<ReleaseError> = None;
        let mut note = |r: Result<(), ReleaseError>| {
            if let Err(e) = r {
                tracing::warn!(error = &e as &dyn std::error::Error, "release step failed");
                first.get_or_insert(e);
            }
        };
        if ipam {
            note(self.ipam_del(rec));
        }
        // The representor (OVS, then netlink) and the VF (netns move) are independent: overlap them.
        let representor = async {
            // Renaming a representor that may still be a port (or still open in ovs-vswitchd)
            // would strand the port or race vswitchd's flag restore: leave it to the retried release.
            let port = match self.remove_port(rec).await {
                Ok(true) => Ok(()),
                // No port row: a release retried after vswitchd was too slow may find the
                // representor still renamed and open in vswitchd; confirm vswitchd caught up.
                Ok(false) => self.confirm_closed(rec).await,
                Err(e) => Err(e),
            };
            let rep = match port {
                Ok(()) => self.restore_representor(rec).await,
                Err(_) => {
                    tracing::warn!(representor = %rec.representor.new_name, "OVS port not confirmed gone; representor left as it is");
                    Ok(())
                }
            };
            (port, rep)
        };
        // A netlink socket runs one dump at a time (EBUSY otherwise): the VF branch gets its own.
        let vf_host = self.host.another_socket()?;
        let ((port, rep), vf) = futures::join!(representor, self.restore_vf(&vf_host, rec));
        note(port);
        note(rep);
        note(vf);
        first.map_or(Ok(()), Err)
    }
}
