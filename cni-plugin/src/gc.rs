//! CNI GC: release attachments of this network that are not in `cni.dev/valid-attachments`,
//! then IPAM GC.

use crate::error::ErrorCode;
use crate::ipam::{self, IpamError};
use crate::node::state::StateError;
use crate::node::{self, Node, ReleaseRequest, Released};
use crate::skel::Request;
use crate::sys::Namespaces;
use crate::traits::Ovs;

/// GC failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// State files failed.
    #[error("state step failed")]
    State(#[from] StateError),
    /// IPAM GC failed.
    #[error("IPAM GC failed")]
    Ipam(#[from] IpamError),
}

impl ErrorCode for GcError {
    fn code(&self) -> u32 {
        match self {
            GcError::State(e) => e.code(),
            GcError::Ipam(e) => e.code(),
        }
    }
}

/// Runs GC; returns the released attachments as `(containerID, ifname)`.
pub async fn gc<K: Namespaces, O: Ovs>(
    node: Node<'_, K>,
    ovs: &O,
    req: &Request,
) -> Result<Vec<(String, String)>, GcError> {
    let conf = &req.conf;
    let valid = conf.valid_attachments.clone().unwrap_or_default();
    let records = node.state.list()?;
    tracing::debug!(
        records = records.len(),
        valid = valid.len(),
        "GC listed attachments"
    );
    let mut released = Vec::new();
    for rec in records {
        let keep = valid
            .iter()
            .any(|a| a.container_id == rec.container_id && a.ifname == rec.ifname);
        if rec.network != conf.name || keep {
            continue;
        }
        tracing::info!(container = %rec.container_id, ifname = %rec.ifname, "GC releasing stale attachment");
        let stale = ReleaseRequest {
            container_id: rec.container_id.clone(),
            ifname: rec.ifname.clone(),
            netns: Some(rec.netns.clone()),
            pci: Some(rec.pci),
            bridge: rec.bridge.clone(),
            ipam: rec.ipam.clone(),
            ovs_apply_timeout: conf.ovs_apply_timeout,
            listed_phase: Some(rec.phase),
        };
        match node::release(node, ovs, &stale).await {
            Ok(Released::Completed | Released::VfPending | Released::NothingKnown) => {}
            Ok(_) => released.push((rec.container_id, rec.ifname)),
            Err(e) => {
                tracing::warn!(error = &e as &dyn std::error::Error, container = %rec.container_id, "GC could not release everything; kept for the next GC");
            }
        }
    }
    if let Some(t) = conf.ipam_type.as_deref() {
        ipam::network_wide(t, "GC", req)?;
    }
    Ok(released)
}
