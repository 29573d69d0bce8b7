//! Undoing an attachment, step by step and best-effort: shared by DEL, ADD rollback, GC and takeover.

use crate::error::{code, ErrorCode};
use crate::ipam::{self, IpamEnv, IpamError};
use crate::netlink::link::{self, Link, LinkError};
use crate::netns::{host_ns_file, Netns, NetnsError};
use crate::port_ids;
use crate::state::AttachmentRecord;
use crate::traits::{Ovs, OvsError};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

/// A release step failed.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// A netlink step on the VF failed.
    #[error("cannot restore VF {pci}")]
    Vf {
        /// VF.
        pci: String,
        /// Cause.
        #[source]
        source: LinkError,
    },
    /// Opening the host namespace failed.
    #[error("cannot open the host network namespace")]
    HostNs {
        /// Cause.
        #[source]
        source: NetnsError,
    },
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
    Ipam {
        /// Cause.
        #[source]
        source: IpamError,
    },
}

impl ErrorCode for ReleaseError {
    fn code(&self) -> u32 {
        match self {
            ReleaseError::Vf { .. } | ReleaseError::Representor { .. } | ReleaseError::HostNs { .. } => {
                code::NETLINK
            }
            ReleaseError::Port { source, .. } => source.code(),
            ReleaseError::Ipam { source } => source.code(),
        }
    }
}

/// Opens the pod namespace for DEL; `None` when the path is empty, gone or no longer a namespace.
pub fn open_pod_ns(path: Option<&Path>) -> Option<Netns> {
    let path = path.filter(|p| !p.as_os_str().is_empty())?;
    match Netns::open(path) {
        Ok(ns) => Some(ns),
        Err(err) => {
            tracing::info!(netns = %path.display(), error = &err as &dyn std::error::Error, "pod namespace unusable; looking for the VF on the host");
            None
        }
    }
}

/// Finds the VF in the host namespace: by alias, by the names sysfs shows, by cached ifindex.
pub async fn find_vf_on_host(
    host: &Netns,
    alias: &str,
    sysfs_names: &[String],
    cached: Option<(u32, &[&str])>,
) -> Result<Option<Link>, LinkError> {
    let links = link::list(&host.handle, &host.label).await?;
    if let Some(l) = links.iter().find(|l| l.alias.as_deref() == Some(alias)) {
        return Ok(Some(l.clone()));
    }
    if let Some(l) = links.iter().find(|l| sysfs_names.contains(&l.name)) {
        return Ok(Some(l.clone()));
    }
    if let Some((index, names)) = cached {
        let plausible = |l: &Link| names.contains(&l.name.as_str()) || is_dev_n(&l.name);
        if let Some(l) = links.iter().find(|l| l.index == index && plausible(l)) {
            return Ok(Some(l.clone()));
        }
    }
    Ok(None)
}

fn is_dev_n(name: &str) -> bool {
    name.strip_prefix("dev")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Temporary name used while moving a VF between namespaces (unique per VF).
pub fn temp_name(pci: &str) -> String {
    let digits: String = pci.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let tail = &digits[digits.len().saturating_sub(10)..];
    format!("sov{tail}")
}

/// Brings the VF back to the host namespace under its original name, MAC, MTU, alias and state.
pub async fn restore_vf(
    host: &Netns,
    pod: Option<&Netns>,
    rec: &AttachmentRecord,
    sysfs_names: &[String],
) -> Result<(), ReleaseError> {
    let Some(saved) = &rec.vf else { return Ok(()) };
    let err = |source| ReleaseError::Vf {
        pci: rec.pci.clone(),
        source,
    };
    if let Some(pod) = pod {
        if let Some(l) = link::by_alias(&pod.handle, &pod.label, &rec.alias)
            .await
            .map_err(err)?
        {
            link::set_up(&pod.handle, &l, false).await.map_err(err)?;
            let tmp = temp_name(&rec.pci);
            link::rename_clearing_altname(&pod.handle, &pod.label, &l, &tmp)
                .await
                .map_err(err)?;
            let l = Link { name: tmp, ..l };
            let host_file = host_ns_file().map_err(|source| ReleaseError::HostNs { source })?;
            link::move_to_netns(&pod.handle, &l, host_file.as_raw_fd(), "host")
                .await
                .map_err(err)?;
        }
    }
    let names = [rec.ifname.as_str(), saved.name.as_str()];
    let Some(l) = find_vf_on_host(host, &rec.alias, sysfs_names, Some((saved.ifindex, &names)))
        .await
        .map_err(err)?
    else {
        tracing::warn!(pci = %rec.pci, "VF netdev not found in the pod or on the host; nothing to restore");
        return Ok(());
    };
    let h = &host.handle;
    if l.up {
        link::set_up(h, &l, false).await.map_err(err)?;
    }
    match link::rename_clearing_altname(h, &host.label, &l, &saved.name).await {
        Ok(()) => {}
        Err(e @ LinkError::NameTaken { .. }) => {
            // Another link took the name meanwhile: leave the VF under its current name, keep
            // the alias so the next ADD or DEL still finds it.
            tracing::warn!(error = &e as &dyn std::error::Error, current = %l.name, "VF back on the host but not under its original name");
            return Ok(());
        }
        Err(e) => return Err(err(e)),
    }
    let mut l = Link {
        name: saved.name.clone(),
        ..l
    };
    for stale in [rec.ifname.as_str(), temp_name(&rec.pci).as_str()] {
        if stale != saved.name && l.altnames.iter().any(|a| a == stale) {
            link::del_altname(h, &l, stale).await.map_err(err)?;
        }
    }
    l.altnames.clear();
    if let Some(mac) = saved.mac.as_deref().and_then(|m| m.parse().ok()) {
        if l.mac != Some(mac) {
            link::set_mac(h, &l, mac).await.map_err(err)?;
        }
    }
    if let Some(mtu) = saved.mtu {
        if l.mtu != Some(mtu) {
            link::set_mtu(h, &l, mtu).await.map_err(err)?;
        }
    }
    link::set_alias(h, &l, saved.alias.as_deref().unwrap_or(""))
        .await
        .map_err(err)?;
    if saved.up {
        link::set_up(h, &l, true).await.map_err(err)?;
    }
    tracing::info!(pci = %rec.pci, name = %saved.name, "VF restored on the host");
    Ok(())
}

/// Gives the representor back its original name and MTU.
pub async fn restore_representor(host: &Netns, rec: &AttachmentRecord) -> Result<(), ReleaseError> {
    let r = &rec.representor;
    let err = |source| ReleaseError::Representor {
        name: r.name.clone(),
        source,
    };
    let links = link::list(&host.handle, &host.label).await.map_err(err)?;
    let found = links
        .iter()
        .find(|l| l.index == r.ifindex && (l.name == r.new_name || l.name == r.name))
        .or_else(|| links.iter().find(|l| l.name == r.new_name))
        .or_else(|| links.iter().find(|l| l.name == r.name));
    let Some(l) = found.cloned() else {
        tracing::warn!(representor = %r.name, "representor not found; nothing to restore");
        return Ok(());
    };
    let h = &host.handle;
    // Renaming takes the link down first; otherwise it is as listed.
    let mut is_up = l.up;
    if l.name != r.name {
        if l.up {
            link::set_up(h, &l, false).await.map_err(err)?;
            is_up = false;
        }
        link::rename_clearing_altname(h, &host.label, &l, &r.name)
            .await
            .map_err(err)?;
    }
    let l = Link {
        name: r.name.clone(),
        ..l
    };
    if let Some(mtu) = r.mtu {
        if l.mtu != Some(mtu) {
            link::set_mtu(h, &l, mtu).await.map_err(err)?;
        }
    }
    if is_up != r.up {
        link::set_up(h, &l, r.up).await.map_err(err)?;
    }
    Ok(())
}

/// Removes our OVS port, unless a newer attachment (another container ID) has it. Returns
/// whether it deleted the port (and saw ovs-vswitchd apply that within `apply_timeout`).
pub async fn remove_port<O: Ovs>(
    ovs: &O,
    rec: &AttachmentRecord,
    apply_timeout: Duration,
) -> Result<bool, ReleaseError> {
    let port = &rec.representor.new_name;
    let err = |source| ReleaseError::Port {
        port: port.clone(),
        source,
    };
    tracing::trace!(port = %port, "looking up OVS port");
    let found = ovs.port(port).await.map_err(err)?;
    tracing::trace!(port = %port, "looked up OVS port");
    let mut deleted = false;
    if let Some(state) = found {
        match state.external_ids.get(port_ids::CONTAINER_ID) {
            Some(cid) if cid != &rec.container_id => {
                tracing::info!(port = %port, owner = %cid, "OVS port belongs to a newer attachment; left alone");
                return Ok(false);
            }
            _ => {
                ovs.del_port(&rec.bridge, port).await.map_err(err)?;
                tracing::debug!(port = %port, "port deleted");
                // ovs-vswitchd must close the netdev (and drop promiscuous mode) before it is renamed.
                ovs.wait_applied(apply_timeout).await.map_err(err)?;
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

/// When the representor still has the name ADD gave it, waits until ovs-vswitchd has applied
/// every pending change (so it has closed the netdev of a port deleted earlier).
async fn confirm_closed<O: Ovs>(
    ovs: &O,
    host: &Netns,
    rec: &AttachmentRecord,
    apply_timeout: Duration,
) -> Result<(), ReleaseError> {
    let r = &rec.representor;
    let renamed = link::by_name(&host.handle, &host.label, &r.new_name)
        .await
        .map_err(|source| ReleaseError::Representor {
            name: r.name.clone(),
            source,
        })?
        .is_some_and(|l| l.index == r.ifindex);
    if renamed {
        ovs.wait_applied(apply_timeout)
            .await
            .map_err(|source| ReleaseError::Port {
                port: r.new_name.clone(),
                source,
            })?;
    }
    Ok(())
}

/// IPAM DEL for the attachment, when IPAM was delegated.
pub fn ipam_del(rec: &AttachmentRecord, netns: &str) -> Result<(), ReleaseError> {
    if !rec.ipam_delegated {
        return Ok(());
    }
    let Some(plugin) = rec
        .conf
        .get("ipam")
        .and_then(|i| i.get("type"))
        .and_then(|t| t.as_str())
    else {
        return Ok(());
    };
    let env = IpamEnv {
        container_id: &rec.container_id,
        netns,
        ifname: &rec.ifname,
        args: &rec.cni_args,
        path: &rec.cni_path,
    };
    ipam::del(plugin, &env, &rec.conf).map_err(|source| ReleaseError::Ipam { source })
}

/// Every host-side release step, in order, continuing past failures; returns the first failure.
/// `apply_timeout` bounds the wait for OVS to confirm the port removal.
pub async fn release_all<O: Ovs>(
    ovs: &O,
    host: &Netns,
    pod: Option<&Netns>,
    rec: &AttachmentRecord,
    sysfs_names: &[String],
    ipam: bool,
    apply_timeout: Duration,
) -> Result<(), ReleaseError> {
    let mut first: Option<ReleaseError> = None;
    let mut note = |r: Result<(), ReleaseError>| {
        if let Err(e) = r {
            tracing::warn!(error = &e as &dyn std::error::Error, "release step failed");
            first.get_or_insert(e);
        }
    };
    if ipam {
        let netns = if pod.is_some() { rec.netns.as_str() } else { "" };
        note(ipam_del(rec, netns));
    }
    // The representor (OVS, then netlink) and the VF (netns move) are independent: overlap them.
    let representor = async {
        // Renaming a representor that may still be a port (or still open in ovs-vswitchd) would
        // strand the port or race vswitchd's flag restore: leave it to the retried DEL.
        let port = match remove_port(ovs, rec, apply_timeout).await {
            Ok(true) => Ok(()),
            // No port row: a DEL retried after vswitchd was too slow may find the representor
            // still renamed and open in vswitchd; confirm vswitchd caught up before renaming.
            Ok(false) => confirm_closed(ovs, host, rec, apply_timeout).await,
            Err(e) => Err(e),
        };
        let rep = match port {
            Ok(()) => restore_representor(host, rec).await,
            Err(_) => {
                tracing::warn!(representor = %rec.representor.new_name, "OVS port not confirmed gone; representor left as it is");
                Ok(())
            }
        };
        (port, rep)
    };
    // A netlink socket runs one dump at a time (EBUSY otherwise): the VF branch gets its own.
    let vf_host = match Netns::host() {
        Ok(ns) => ns,
        Err(source) => return Err(ReleaseError::HostNs { source }),
    };
    let ((port, rep), vf) = futures::join!(representor, restore_vf(&vf_host, pod, rec, sysfs_names));
    note(port);
    note(rep);
    note(vf);
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_ovs::{block, FakeOvs};
    use crate::state::{Phase, SavedRepresentor};

    const T: Duration = Duration::from_secs(1);

    fn rec(cid: &str) -> AttachmentRecord {
        AttachmentRecord {
            container_id: cid.into(),
            ifname: "eth0".into(),
            netns: "/run/netns/x".into(),
            pci: "0000:84:00.2".into(),
            alias: "sriov-ovs:0000:84:00.2".into(),
            vf: None,
            representor: SavedRepresentor {
                name: "pf0vf0".into(),
                ifindex: 9,
                mtu: None,
                new_name: "abc_h".into(),
                up: true,
            },
            bridge: "br-int".into(),
            ovn_port: None,
            cni_path: String::new(),
            cni_args: String::new(),
            conf: serde_json::json!({}),
            ipam_delegated: false,
            phase: Phase::Added,
            result: None,
        }
    }

    #[test]
    fn remove_port_deletes_ours_and_waits_for_vswitchd_as_long_as_configured() {
        let ovs = FakeOvs::default().with_port(
            "abc_h",
            &[(port_ids::CONTAINER_ID, "c1"), (port_ids::IFNAME, "eth0")],
        );
        assert!(block(remove_port(&ovs, &rec("c1"), T)).unwrap());
        assert!(ovs.ports.borrow().is_empty());
        let calls = ovs.calls.borrow();
        let del = calls.iter().position(|c| c == "del_port br-int abc_h").unwrap();
        assert_eq!(calls[del + 1], "wait_applied 1s", "{calls:?}");
    }

    #[test]
    fn remove_port_leaves_a_newer_owners_port_alone() {
        let ovs = FakeOvs::default().with_port(
            "abc_h",
            &[(port_ids::CONTAINER_ID, "newer"), (port_ids::IFNAME, "eth0")],
        );
        assert!(!block(remove_port(&ovs, &rec("c1"), T)).unwrap());
        assert!(ovs.ports.borrow().contains_key("abc_h"));
        assert!(!ovs.calls.borrow().iter().any(|c| c.starts_with("del_port")));
    }

    #[test]
    fn remove_port_also_drops_stale_ports_of_the_same_attachment() {
        let ovs = FakeOvs::default().with_port(
            "old_h",
            &[(port_ids::CONTAINER_ID, "c1"), (port_ids::IFNAME, "eth0")],
        );
        block(remove_port(&ovs, &rec("c1"), T)).unwrap();
        assert!(ovs.ports.borrow().is_empty());
    }

    #[test]
    fn remove_port_reports_ovsdb_down() {
        let ovs = FakeOvs {
            down: true,
            ..Default::default()
        };
        assert_eq!(
            block(remove_port(&ovs, &rec("c1"), T)).unwrap_err().code(),
            crate::error::code::OVSDB
        );
    }

    #[test]
    fn temp_names_fit_and_differ_per_vf() {
        assert!(temp_name("0000:84:00.2").len() <= 15);
        assert_ne!(temp_name("0000:84:00.2"), temp_name("0000:84:00.3"));
        assert!(is_dev_n("dev12") && !is_dev_n("dev") && !is_dev_n("devx"));
    }
}
