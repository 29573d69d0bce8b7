//! Attach: validate, move the VF into the pod, configure it, attach the representor to OVS;
//! roll back every step on failure.

mod error;
mod steps;

pub use error::AttachError;
pub use steps::OFPORT_TIMEOUT;

use super::lookup::{self, open_pod_ns};
use super::record::{vf_alias, AttachmentRecord, Phase, SavedRepresentor, SavedVf};
use super::rollback::{Rollback, Undo};
use super::state::{StateDir, VfOwner};
use super::{release, Addressing, AttachRequest, Attachment, Node};
use crate::ipam;
use crate::netconf::valid_ifname;
use crate::representor_name::representor_name;
use crate::sys::{Namespaces, Net};
use crate::traits::{Ovs, OvsError};
use crate::vf::{self, VfInfo};
use std::future::Future;
use std::time::Duration;

/// How long attach waits for another attach or release of the same VF.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Attaches the VF of `req` to the pod. `connect` opens OVSDB once the input is validated.
/// On failure every step taken is undone and the host is as it was.
pub async fn attach<K, O, F>(
    node: Node<'_, K>,
    connect: F,
    req: &AttachRequest,
) -> Result<Attachment, AttachError>
where
    K: Namespaces,
    O: Ovs,
    F: Future<Output = Result<O, OvsError>>,
{
    // Validate everything before touching the host.
    let new_rep = representor_name(&req.container_id, &req.ifname);
    if !valid_ifname(&new_rep) {
        return Err(AttachError::RepresentorName {
            name: new_rep,
            ifname: req.ifname.clone(),
        });
    }
    let mut vf = vf::resolve(node.sysfs, &req.pci)?;
    if let Addressing::Ipam(facts) = &req.addressing {
        ipam::find_plugin(&facts.plugin, &facts.path).map_err(AttachError::IpamLookup)?;
    }
    let pod = node.kernel.open(&req.netns)?;
    let host = node.kernel.host()?;
    let ovs = &connect.await?;
    if !ovs.bridge_exists(&req.port.bridge).await? {
        return Err(AttachError::NoBridge {
            bridge: req.port.bridge.clone(),
        });
    }
    let alias = vf_alias(&req.pci);
    if vf.has_kernel_netdev() {
        if let Some(l) = pod.link_by_name(&req.ifname).await? {
            if l.alias.as_deref() != Some(alias.as_str()) {
                return Err(AttachError::IfnameTaken {
                    ifname: req.ifname.clone(),
                    netns: pod.label().to_string(),
                });
            }
        }
    }
    tracing::debug!("validated");
    let state = node.state;
    let _lock = state.lock_vf(&req.pci, LOCK_TIMEOUT).await?;
    if let Some(restored) = take_over_stale(node, ovs, &host, &vf, req).await? {
        // The names read from sysfs above are the stale attachment's; it now has its own back.
        if let Some(name) = restored.vf {
            vf.netdevs.insert(0, name);
        }
        vf.representor = restored.representor;
    }
    tracing::debug!("locked");

    let (vf_link, rep_link) = match lookup::locate(&host, &alias, &vf).await? {
        (Some(v), Some(r)) => (v, r),
        // Names read before the lock can be stale (a release of this VF ran in between): read again.
        _ => {
            vf = vf::resolve(node.sysfs, &req.pci)?;
            let (v, r) = lookup::locate(&host, &alias, &vf).await?;
            let v = v.ok_or_else(|| AttachError::VfNetdevMissing {
                pci: req.pci,
                names: vf.netdevs.clone(),
            })?;
            let r = r.ok_or_else(|| AttachError::RepresentorMissing {
                pci: req.pci,
                name: vf.representor.clone(),
            })?;
            (v, r)
        }
    };

    let mut rec = AttachmentRecord {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
        netns: req.netns.clone(),
        pci: req.pci,
        vf: vf_link.as_ref().map(|l| SavedVf {
            name: l.name.clone(),
            ifindex: l.index,
            mac: l.mac.filter(|m| m.0 != [0; 6] && m.0[0] & 1 == 0),
            mtu: l.mtu,
            alias: l.alias.clone().filter(|a| a != &alias),
            up: l.up,
        }),
        representor: SavedRepresentor {
            name: rep_link.name.clone(),
            ifindex: rep_link.index,
            mtu: rep_link.mtu,
            new_name: new_rep,
            up: rep_link.up,
        },
        bridge: req.port.bridge.clone(),
        iface_id: req.port.iface_id.clone(),
        network: req.network.clone(),
        ipam: match &req.addressing {
            Addressing::Ipam(facts) => Some(facts.clone()),
            Addressing::Given(_) => None,
        },
        phase: Phase::Adding,
    };
    tracing::debug!("found VF and representor");
    let mut rb = Rollback::default();
    rb.push(Undo::StateFiles);
    let owner = VfOwner {
        container_id: rec.container_id.clone(),
        ifname: rec.ifname.clone(),
        netns: rec.netns.display().to_string(),
    };
    let saved = state.save(&rec).and_then(|()| state.set_owner(&req.pci, &owner));
    let outcome = match saved {
        Ok(()) => {
            tracing::debug!("state saved");
            let links = steps::Links {
                vf: vf_link,
                representor: rep_link,
            };
            steps::run(ovs, &host, &pod, links, req, &rec, &mut rb).await
        }
        Err(e) => Err(AttachError::State(e)),
    };
    let outcome = outcome.and_then(|attachment| {
        rec.phase = Phase::Added;
        state.save(&rec).map(|()| attachment).map_err(AttachError::State)
    });
    if let Err(e) = &outcome {
        tracing::warn!(error = e as &dyn std::error::Error, "attach failed; rolling back");
        let steps = release::Steps {
            ovs,
            host: &host,
            pod: Some(&pod),
            sysfs_names: &vf.netdevs,
            apply_timeout: req.ovs_apply_timeout,
        };
        rb.unwind(&steps, state, &rec).await;
    }
    outcome
}

/// The names a released stale attachment gave back to the VF and its representor.
struct Restored {
    vf: Option<String>,
    representor: String,
}

/// A previous attachment holds the VF: refuse if it is live, else release its host side and
/// say which names it restored.
async fn take_over_stale<K: Namespaces, O: Ovs>(
    node: Node<'_, K>,
    ovs: &O,
    host: &K::Net,
    vf: &VfInfo,
    req: &AttachRequest,
) -> Result<Option<Restored>, AttachError> {
    let state: &StateDir = node.state;
    let Some(owner) = state.owner(&vf.pci)? else {
        return Ok(None);
    };
    let ours = owner.container_id == req.container_id && owner.ifname == req.ifname;
    let old = state.load(&owner.container_id, &owner.ifname)?;
    if !ours && old.is_some() && std::path::Path::new(&owner.netns).exists() {
        return Err(AttachError::VfBusy {
            pci: vf.pci,
            container_id: owner.container_id,
            ifname: owner.ifname,
            netns: owner.netns,
        });
    }
    let mut restored = None;
    if let Some(old) = old {
        tracing::info!(pci = %vf.pci, previous = %owner.container_id, "releasing a stale attachment of this VF");
        let pod = open_pod_ns(node.kernel, &old.netns);
        let steps = release::Steps {
            ovs,
            host,
            pod: pod.as_ref(),
            sysfs_names: &vf.netdevs,
            apply_timeout: req.ovs_apply_timeout,
        };
        if let Err(e) = steps.release_all(&old, ours).await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "stale attachment only partly released"
            );
        }
        if ours {
            state.remove(&old.container_id, &old.ifname)?;
        }
        restored = Some(Restored {
            vf: old.vf.map(|v| v.name),
            representor: old.representor.name,
        });
    }
    state.clear_owner(&vf.pci)?;
    Ok(restored)
}
