//! CHECK: the VF is in the pod as the result says, and the representor is on the bridge as ours.

use crate::error::{code, ErrorCode};
use crate::ipam::{self, IpamEnv, IpamError};
use crate::netlink::addr::AddrError;
use crate::netlink::link::LinkError;
use crate::netns::NetnsError;
use crate::node::state::StateError;
use crate::node::Node;
use crate::port_ids;
use crate::result::{CniResult, DecodeResult};
use crate::skel::Request;
use crate::sys::{Namespaces, Net};
use crate::traits::{Ovs, OvsError};
use std::path::Path;

/// CHECK found a difference or could not look.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// No attachment is recorded.
    #[error("no attachment recorded for container {container_id} interface {ifname}")]
    UnknownAttachment {
        /// Container.
        container_id: String,
        /// Interface.
        ifname: String,
    },
    /// `prevResult` is missing.
    #[error("CHECK needs prevResult")]
    NoPrevResult,
    /// `prevResult` is unreadable.
    #[error("prevResult is unreadable")]
    PrevResult(#[from] DecodeResult),
    /// State files failed.
    #[error("state step failed")]
    State(#[from] StateError),
    /// A namespace could not be opened.
    #[error("cannot open network namespace")]
    Netns(#[from] NetnsError),
    /// Netlink failed.
    #[error("link lookup failed")]
    Link(#[from] LinkError),
    /// Address listing failed.
    #[error("address lookup failed")]
    Addr(#[from] AddrError),
    /// OVSDB failed.
    #[error("OVSDB lookup failed")]
    Ovs(#[from] OvsError),
    /// Something differs.
    #[error("CHECK failed: {what}")]
    Mismatch {
        /// What differs.
        what: String,
    },
    /// IPAM CHECK failed.
    #[error("IPAM CHECK failed")]
    Ipam(#[from] IpamError),
}

impl ErrorCode for CheckError {
    fn code(&self) -> u32 {
        match self {
            CheckError::UnknownAttachment { .. } => code::UNKNOWN_CONTAINER,
            CheckError::NoPrevResult | CheckError::PrevResult(_) => code::INVALID_CONFIG,
            CheckError::State(e) => e.code(),
            CheckError::Netns(e) => e.code(),
            CheckError::Link(e) => e.code(),
            CheckError::Addr(e) => e.code(),
            CheckError::Ovs(e) => e.code(),
            CheckError::Mismatch { .. } => code::VF,
            CheckError::Ipam(e) => e.code(),
        }
    }
}

fn mismatch(what: impl Into<String>) -> CheckError {
    CheckError::Mismatch { what: what.into() }
}

/// Runs CHECK.
pub async fn check<K: Namespaces, O: Ovs>(
    node: Node<'_, K>,
    ovs: &O,
    req: &Request,
) -> Result<(), CheckError> {
    let conf = &req.conf;
    let prev = CniResult::from_value(conf.prev_result.as_ref().ok_or(CheckError::NoPrevResult)?)?;
    let rec =
        node.state
            .load(&req.container_id, &req.ifname)?
            .ok_or_else(|| CheckError::UnknownAttachment {
                container_id: req.container_id.clone(),
                ifname: req.ifname.clone(),
            })?;
    let netns = req.netns.as_deref().unwrap_or(Path::new(""));
    if rec.vf.is_some() {
        let pod = node.kernel.open(netns)?;
        let l = pod
            .link_by_name(&req.ifname)
            .await?
            .ok_or_else(|| mismatch(format!("no interface {} in {}", req.ifname, pod.label())))?;
        if l.alias.as_deref() != Some(rec.alias().as_str()) {
            return Err(mismatch(format!(
                "{} in the pod is not VF {}",
                req.ifname, rec.pci
            )));
        }
        let want = prev
            .interfaces
            .iter()
            .position(|i| i.name == req.ifname && i.sandbox.is_some());
        if let Some(iface) = want.map(|i| &prev.interfaces[i]) {
            let have = l.mac.map(|m| m.to_string());
            if iface.mac.is_some() && iface.mac != have {
                return Err(mismatch(format!(
                    "{} has MAC {:?}, result says {:?}",
                    req.ifname, have, iface.mac
                )));
            }
        }
        let have = pod.addresses(&l).await?;
        for ip in prev
            .ips
            .iter()
            .filter(|ip| ip.interface.is_none() || ip.interface == want)
        {
            if !have.contains(&ip.address) {
                return Err(mismatch(format!("{} lacks address {}", req.ifname, ip.address)));
            }
        }
    }
    let port = &rec.representor.new_name;
    let p = ovs
        .port(port)
        .await?
        .ok_or_else(|| mismatch(format!("OVS interface {port} missing")))?;
    if p.external_ids.get(port_ids::VENDOR).map(String::as_str) != Some(port_ids::VENDOR_VALUE)
        || p.external_ids.get(port_ids::CONTAINER_ID) != Some(&rec.container_id)
    {
        return Err(mismatch(format!(
            "OVS interface {port} does not carry our external_ids"
        )));
    }
    if let Some(id) = &rec.iface_id {
        if p.external_ids.get(port_ids::IFACE_ID) != Some(id) {
            return Err(mismatch(format!(
                "OVS interface {port} has iface-id {:?}, want {id}",
                p.external_ids.get(port_ids::IFACE_ID)
            )));
        }
    }
    if p.ofport.is_none() {
        return Err(mismatch(format!("OVS interface {port} has no ofport")));
    }
    if let Some(facts) = &rec.ipam {
        let ns = netns.display().to_string();
        let env = IpamEnv {
            container_id: &req.container_id,
            netns: &ns,
            ifname: &req.ifname,
            args: &req.args_raw,
            path: &req.path,
        };
        ipam::check(&facts.plugin, &env, &conf.raw)?;
    }
    Ok(())
}
