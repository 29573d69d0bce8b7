//! ADD: validate, move the VF into the pod, configure it, attach the representor to OVS; roll back on failure.

mod attach;
mod error;

pub use attach::OFPORT_TIMEOUT;
pub use error::AddError;

use crate::ipam::{self, IpamError};
use crate::netconf::valid_ifname;
use crate::netlink::link::{self, Link};
use crate::netns::Netns;
use crate::release;
use crate::representor_name::representor_name;
use crate::result::CniResult;
use crate::rollback::{Rollback, Undo, UndoCtx};
use crate::skel::Request;
use crate::state::{AttachmentRecord, Phase, SavedRepresentor, SavedVf, StateDir, VfOwner};
use crate::traits::{Ovs, OvsError};
use crate::vf::{self, VfInfo};
use sriov_host::Sysfs;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// How long ADD waits for another ADD/DEL of the same VF.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The alias that marks a VF as ours, to find it again after renames and namespace moves.
pub fn vf_alias(pci: &str) -> String {
    format!("sriov-ovs:{pci}")
}

/// Runs ADD and returns the result (version-neutral). `connect` opens OVSDB once the input is validated.
pub async fn add<O: Ovs, F: Future<Output = Result<O, OvsError>>>(
    connect: F,
    sysfs: &Sysfs,
    req: &Request,
) -> Result<CniResult, AddError> {
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
        return Err(AddError::RepresentorName {
            name: new_rep,
            ifname: req.ifname.clone(),
        });
    }
    let mut vf = vf::resolve(sysfs, &pci_addr).map_err(AddError::Vf)?;
    let delegate_ipam = conf.ipam_type.is_some() && !conf.uses_runtime_ips();
    if let (true, Some(t)) = (delegate_ipam, &conf.ipam_type) {
        if ipam::find_plugin(t, &req.path).is_none() {
            return Err(AddError::IpamLookup(IpamError::NotFound {
                plugin: t.clone(),
                path: req.path.clone(),
            }));
        }
    }
    let pod = Netns::open(netns_path).map_err(AddError::Netns)?;
    let host = Netns::host().map_err(AddError::Netns)?;
    let ovs = &connect.await.map_err(AddError::Ovs)?;
    if !ovs.bridge_exists(&conf.bridge).await.map_err(AddError::Ovs)? {
        return Err(AddError::NoBridge {
            bridge: conf.bridge.clone(),
        });
    }
    if vf.has_kernel_netdev() {
        if let Some(l) = link::by_name(&pod.handle, &pod.label, &req.ifname)
            .await
            .map_err(AddError::Link)?
        {
            if l.alias.as_deref() != Some(vf_alias(&vf.pci.to_string()).as_str()) {
                return Err(AddError::IfnameTaken {
                    ifname: req.ifname.clone(),
                    netns: pod.label.clone(),
                });
            }
        }
    }
    tracing::debug!("validated");
    let state = StateDir::new(&conf.state_dir);
    let pci = vf.pci.to_string();
    let _lock = state.lock_vf(&pci, LOCK_TIMEOUT).map_err(AddError::State)?;
    if let Some(restored) = take_over_stale(ovs, &state, &host, &vf, req).await? {
        // The names read from sysfs above are the stale attachment's; it now has its own back.
        if let Some(name) = restored.vf {
            vf.netdevs.insert(0, name);
        }
        vf.representor = restored.representor;
    }
    tracing::debug!("locked");

    let alias = vf_alias(&pci);
    let (vf_link, rep_link) = match locate(&host, &alias, &vf).await? {
        (Some(v), Some(r)) => (v, r),
        // Names read before the lock can be stale (a DEL of this VF ran in between): read again.
        _ => {
            vf = vf::resolve(sysfs, &pci_addr).map_err(AddError::Vf)?;
            let (v, r) = locate(&host, &alias, &vf).await?;
            let v = v.ok_or_else(|| AddError::VfNetdevMissing {
                pci: pci.clone(),
                names: vf.netdevs.clone(),
            })?;
            let r = r.ok_or_else(|| AddError::RepresentorMissing {
                pci: pci.clone(),
                name: vf.representor.clone(),
            })?;
            (v, r)
        }
    };

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
        representor: SavedRepresentor {
            name: rep_link.name.clone(),
            ifindex: rep_link.index,
            mtu: rep_link.mtu,
            new_name: new_rep.clone(),
            up: rep_link.up,
        },
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
    let owner = VfOwner {
        container_id: rec.container_id.clone(),
        ifname: rec.ifname.clone(),
        netns: rec.netns.clone(),
    };
    let saved = state.save(&rec).and_then(|()| state.set_owner(&pci, &owner));
    let outcome = match saved {
        Ok(()) => {
            tracing::debug!("state saved");
            attach::attach(ovs, &host, &pod, vf_link, rep_link, mac, req, &mut rec, &mut rb).await
        }
        Err(e) => Err(AddError::State(e)),
    };
    let outcome = outcome.and_then(|result| {
        rec.phase = Phase::Added;
        rec.result = Some(result.to_value(conf.cni_version));
        state.save(&rec).map(|()| result).map_err(AddError::State)
    });
    if let Err(e) = &outcome {
        tracing::warn!(error = e as &dyn std::error::Error, "ADD failed; rolling back");
        let ctx = UndoCtx {
            ovs,
            apply_timeout: conf.ovs_apply_timeout,
            host: &host,
            pod: Some(&pod),
            state: &state,
            rec: &rec,
            sysfs_names: &vf.netdevs,
        };
        rb.unwind(&ctx).await;
    }
    outcome
}

/// Finds the VF's netdev (`Some(None)`: bound to vfio-pci, it has none) and its representor on
/// the host; `None` for what is not there under the names `vf` gives.
async fn locate(
    host: &Netns,
    alias: &str,
    vf: &VfInfo,
) -> Result<(Option<Option<Link>>, Option<Link>), AddError> {
    let vf_link = if vf.has_kernel_netdev() {
        release::find_vf_on_host(host, alias, &vf.netdevs, None)
            .await
            .map_err(AddError::Link)?
            .map(Some)
    } else {
        Some(None)
    };
    let rep_link = link::by_name(&host.handle, &host.label, &vf.representor)
        .await
        .map_err(AddError::Link)?;
    Ok((vf_link, rep_link))
}

/// The names a released stale attachment gave back to the VF and its representor.
struct Restored {
    vf: Option<String>,
    representor: String,
}

/// A previous attachment holds the VF: refuse if it is live, else release its host side and
/// say which names it restored.
async fn take_over_stale<O: Ovs>(
    ovs: &O,
    state: &StateDir,
    host: &Netns,
    vf: &VfInfo,
    req: &Request,
) -> Result<Option<Restored>, AddError> {
    let pci = vf.pci.to_string();
    let Some(owner) = state.owner(&pci).map_err(AddError::State)? else {
        return Ok(None);
    };
    let ours = owner.container_id == req.container_id && owner.ifname == req.ifname;
    let old = state
        .load(&owner.container_id, &owner.ifname)
        .map_err(AddError::State)?;
    if !ours && old.is_some() && Path::new(&owner.netns).exists() {
        return Err(AddError::VfBusy {
            pci,
            container_id: owner.container_id,
            ifname: owner.ifname,
            netns: owner.netns,
        });
    }
    let mut restored = None;
    if let Some(old) = old {
        tracing::info!(pci = %pci, previous = %owner.container_id, "releasing a stale attachment of this VF");
        let pod = release::open_pod_ns(Some(Path::new(&old.netns)));
        if let Err(e) = release::release_all(
            ovs,
            host,
            pod.as_ref(),
            &old,
            &vf.netdevs,
            ours,
            req.conf.ovs_apply_timeout,
        )
        .await
        {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "stale attachment only partly released"
            );
        }
        if ours {
            state
                .remove(&old.container_id, &old.ifname)
                .map_err(AddError::State)?;
        }
        restored = Some(Restored {
            vf: old.vf.map(|v| v.name),
            representor: old.representor.name,
        });
    }
    state.clear_owner(&pci).map_err(AddError::State)?;
    Ok(restored)
}
