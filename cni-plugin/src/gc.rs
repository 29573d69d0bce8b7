//! GC: release attachments of this network that are not in `cni.dev/valid-attachments`, then IPAM GC.

use crate::add::LOCK_TIMEOUT;
use crate::error::ErrorCode;
use crate::ipam::{self, IpamEnv, IpamError};
use crate::netns::{Netns, NetnsError};
use crate::release;
use crate::skel::Request;
use crate::state::{Phase, StateDir, StateError};
use crate::traits::Ovs;
use crate::vf;
use sriov_host::Sysfs;

/// GC failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// State files failed.
    #[error("state step failed")]
    State(#[source] StateError),
    /// The host namespace could not be opened.
    #[error("cannot open the host namespace")]
    Netns(#[source] NetnsError),
    /// IPAM GC failed.
    #[error("IPAM GC failed")]
    Ipam(#[source] IpamError),
}

impl ErrorCode for GcError {
    fn code(&self) -> u32 {
        match self {
            GcError::State(e) => e.code(),
            GcError::Netns(e) => e.code(),
            GcError::Ipam(e) => e.code(),
        }
    }
}

/// Runs GC; returns the released attachments as `(containerID, ifname)`.
pub async fn gc<O: Ovs>(ovs: &O, sysfs: &Sysfs, req: &Request) -> Result<Vec<(String, String)>, GcError> {
    let conf = &req.conf;
    let valid = conf.valid_attachments.clone().unwrap_or_default();
    let state = StateDir::new(&conf.state_dir);
    let host = Netns::host().map_err(GcError::Netns)?;
    let mut released = Vec::new();
    let records = state.list().map_err(GcError::State)?;
    tracing::debug!(
        records = records.len(),
        valid = valid.len(),
        "GC listed attachments"
    );
    for rec in records {
        let same_network = rec.conf.get("name").and_then(|n| n.as_str()) == Some(conf.name.as_str());
        let keep = valid
            .iter()
            .any(|a| a.container_id == rec.container_id && a.ifname == rec.ifname);
        if !same_network || keep {
            continue;
        }
        let _lock = state.lock_vf(&rec.pci, LOCK_TIMEOUT).map_err(GcError::State)?;
        // The list was read before the lock: an ADD that was running then has finished now
        // (the runtime's valid list predates it), and a DEL may have removed the record.
        let rec = match state
            .load(&rec.container_id, &rec.ifname)
            .map_err(GcError::State)?
        {
            Some(now) if rec.phase == Phase::Adding && now.phase == Phase::Added => {
                tracing::info!(container = %rec.container_id, ifname = %rec.ifname, "attachment completed while GC waited; kept");
                continue;
            }
            Some(now) => now,
            None => continue,
        };
        tracing::info!(container = %rec.container_id, ifname = %rec.ifname, "GC releasing stale attachment");
        let owner = state.owner(&rec.pci).map_err(GcError::State)?;
        let ours = owner
            .as_ref()
            .is_none_or(|o| o.container_id == rec.container_id && o.ifname == rec.ifname);
        if ours {
            let names = rec
                .pci
                .parse()
                .ok()
                .and_then(|p| vf::resolve(sysfs, &p).ok())
                .map(|i| i.netdevs)
                .unwrap_or_default();
            let pod = release::open_pod_ns(Some(std::path::Path::new(&rec.netns)));
            if let Err(e) = release::release_all(
                ovs,
                &host,
                pod.as_ref(),
                &rec,
                &names,
                true,
                conf.ovs_apply_timeout,
            )
            .await
            {
                tracing::warn!(error = &e as &dyn std::error::Error, container = %rec.container_id, "GC could not release everything; kept for the next GC");
                continue;
            }
            state.clear_owner(&rec.pci).map_err(GcError::State)?;
        } else if let Err(e) = release::ipam_del(&rec, "") {
            tracing::warn!(error = &e as &dyn std::error::Error, container = %rec.container_id, "GC: IPAM DEL failed; kept for the next GC");
            continue;
        }
        state
            .remove(&rec.container_id, &rec.ifname)
            .map_err(GcError::State)?;
        released.push((rec.container_id.clone(), rec.ifname.clone()));
    }
    if let Some(t) = conf.ipam_type.as_deref() {
        let env = IpamEnv::network_wide(&req.args_raw, &req.path);
        ipam::gc(t, &env, &conf.raw).map_err(GcError::Ipam)?;
    }
    Ok(released)
}
