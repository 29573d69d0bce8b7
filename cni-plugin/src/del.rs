//! DEL: idempotent, best-effort undo of ADD, also with the pod namespace or the state file gone.

use crate::add::{vf_alias, LOCK_TIMEOUT};
use crate::error::{code, ErrorCode};
use crate::ipam::{self, IpamEnv};
use crate::netns::{Netns, NetnsError};
use crate::release::{self, ReleaseError};
use crate::representor_name::representor_name;
use crate::skel::Request;
use crate::state::{AttachmentRecord, Phase, SavedRepresentor, SavedVf, StateDir, StateError};
use crate::traits::Ovs;
use crate::vf;
use sriov_host::Sysfs;
use std::time::{Duration, Instant};

/// A DEL step failed (DEL is retried by the runtime; every step is idempotent).
#[derive(Debug, thiserror::Error)]
pub enum DelError {
    /// State files failed.
    #[error("state step failed")]
    State(#[source] StateError),
    /// The host namespace could not be opened.
    #[error("cannot open the host namespace")]
    Netns(#[source] NetnsError),
    /// A release step failed.
    #[error("DEL could not undo everything")]
    Release(#[source] ReleaseError),
    /// IPAM DEL failed.
    #[error("IPAM DEL failed")]
    Ipam(#[source] ipam::IpamError),
}

impl ErrorCode for DelError {
    fn code(&self) -> u32 {
        match self {
            DelError::State(e) => e.code(),
            DelError::Netns(_) => code::NETLINK,
            DelError::Release(e) => e.code(),
            DelError::Ipam(e) => e.code(),
        }
    }
}

/// What DEL decided to do with the VF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelOutcome {
    /// Released the VF, representor and port.
    Released,
    /// A newer attachment owns the VF: only IPAM and our state were cleaned.
    NewerOwner,
    /// Nothing known about this attachment: IPAM DEL only.
    NothingKnown,
    /// Everything released but the VF, still on its way back from the pod's vanished namespace:
    /// its record stays, so the next ADD or GC of this VF restores it.
    VfPending,
}

/// How long DEL waits for the kernel to hand a VF back from a pod namespace that is gone.
pub const VF_RETURN_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs DEL.
pub async fn del<O: Ovs>(ovs: &O, sysfs: &Sysfs, req: &Request) -> Result<DelOutcome, DelError> {
    let conf = &req.conf;
    let state = StateDir::new(&conf.state_dir);
    let rec = match state.load(&req.container_id, &req.ifname) {
        Ok(rec) => rec,
        Err(e @ StateError::Corrupt { .. }) => {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "state file unreadable; falling back to deviceID"
            );
            None
        }
        Err(e) => return Err(DelError::State(e)),
    };
    let pci = rec
        .as_ref()
        .map(|r| r.pci.clone())
        .or_else(|| conf.device_id.map(|d| d.to_string()));
    let Some(pci) = pci else {
        ipam_del_from_conf(req)?;
        return Ok(DelOutcome::NothingKnown);
    };
    let _lock = state.lock_vf(&pci, LOCK_TIMEOUT).map_err(DelError::State)?;
    let owner = state.owner(&pci).map_err(DelError::State)?;
    let newer = owner
        .as_ref()
        .is_some_and(|o| o.container_id != req.container_id || o.ifname != req.ifname);
    if newer {
        tracing::info!(pci = %pci, "a newer attachment owns the VF; leaving it alone");
        match &rec {
            Some(r) => release::ipam_del(r, "").map_err(DelError::Release)?,
            None => ipam_del_from_conf(req)?,
        }
        state
            .remove(&req.container_id, &req.ifname)
            .map_err(DelError::State)?;
        return Ok(DelOutcome::NewerOwner);
    }
    let sysfs_names = conf
        .device_id
        .or_else(|| pci.parse().ok())
        .and_then(|d| vf::resolve(sysfs, &d).ok());
    // The VF's PCI function exists (it has not been destroyed with numvfs lowered, say).
    let vf_exists = sysfs_names.is_some();
    let (rec, names) = match (rec, sysfs_names) {
        (Some(r), info) => (r, info.map(|i| i.netdevs).unwrap_or_default()),
        (None, Some(info)) => (synthetic_record(req, &info), info.netdevs.clone()),
        (None, None) => {
            tracing::warn!(pci = %pci, "no state and the VF cannot be resolved; IPAM DEL only");
            ipam_del_from_conf(req)?;
            return Ok(DelOutcome::NothingKnown);
        }
    };
    let host = Netns::host().map_err(DelError::Netns)?;
    let pod = release::open_pod_ns(req.netns.as_deref());
    let vf_pending = pod.is_none() && vf_exists && !vf_returned(&host, &rec, &names).await?;
    release::release_all(
        ovs,
        &host,
        pod.as_ref(),
        &rec,
        &names,
        true,
        conf.ovs_apply_timeout,
    )
    .await
    .map_err(DelError::Release)?;
    if vf_pending {
        tracing::warn!(pci = %pci, timeout = ?VF_RETURN_TIMEOUT, "the VF has not come back from the pod's namespace; its record is kept so the next ADD or GC of this VF restores it");
        return Ok(DelOutcome::VfPending);
    }
    state.clear_owner(&pci).map_err(DelError::State)?;
    state
        .remove(&req.container_id, &req.ifname)
        .map_err(DelError::State)?;
    Ok(DelOutcome::Released)
}

/// Whether the VF is in the host namespace, waiting up to [`VF_RETURN_TIMEOUT`]: once a pod's
/// namespace is gone the kernel moves its physical netdevs back asynchronously, when it cleans
/// the namespace up, under their pod name or `dev<N>`.
async fn vf_returned(host: &Netns, rec: &AttachmentRecord, names: &[String]) -> Result<bool, DelError> {
    let Some(saved) = &rec.vf else { return Ok(true) };
    let cached = [rec.ifname.as_str(), saved.name.as_str()];
    let deadline = Instant::now() + VF_RETURN_TIMEOUT;
    loop {
        let found = release::find_vf_on_host(host, &rec.alias, names, Some((saved.ifindex, &cached)))
            .await
            .map_err(|source| {
                DelError::Release(ReleaseError::Vf {
                    pci: rec.pci.clone(),
                    source,
                })
            })?;
        if found.is_some() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ipam_del_from_conf(req: &Request) -> Result<(), DelError> {
    let conf = &req.conf;
    let Some(t) = conf.ipam_type.as_deref().filter(|_| !conf.uses_runtime_ips()) else {
        return Ok(());
    };
    let netns = req
        .netns
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let env = IpamEnv::for_request(req, &netns);
    ipam::del(t, &env, &conf.raw).map_err(DelError::Ipam)
}

/// A record rebuilt from the configuration and sysfs when the state file is gone.
fn synthetic_record(req: &Request, info: &vf::VfInfo) -> AttachmentRecord {
    let conf = &req.conf;
    let pci = info.pci.to_string();
    AttachmentRecord {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
        netns: req
            .netns
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        alias: vf_alias(&pci),
        pci,
        vf: info.has_kernel_netdev().then(|| SavedVf {
            name: info
                .netdevs
                .first()
                .cloned()
                .unwrap_or_else(|| release::temp_name(&info.pci.to_string())),
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
        bridge: conf.bridge.clone(),
        ovn_port: None,
        cni_path: req.path.clone(),
        cni_args: req.args_raw.clone(),
        conf: conf.raw.clone(),
        ipam_delegated: conf.ipam_type.is_some() && !conf.uses_runtime_ips(),
        phase: Phase::Adding,
        result: None,
    }
}
