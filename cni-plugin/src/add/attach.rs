//! The host-changing steps of ADD: VF into the pod, addresses, representor onto OVS, announce.

use super::AddError;
use crate::ipam::{self, IpamEnv};
use crate::netlink::addr;
use crate::netlink::errno;
use crate::netlink::link::{self, Link, LinkError};
use crate::netns::Netns;
use crate::port_ids::{external_ids, PortIdentity};
use crate::release;
use crate::result::{CniResult, Interface, IpConfig};
use crate::rollback::{Rollback, Undo};
use crate::skel::Request;
use crate::state::AttachmentRecord;
use crate::traits::{Ovs, PortSpec};

/// How long ADD waits for the representor's ofport.
pub const OFPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Has the kernel announce the pod's addresses: gratuitous ARP for IPv4 (`arp_notify`) and
/// unsolicited neighbour advertisements for IPv6 (`ndisc_notify`), triggered by re-setting the
/// (unchanged) MAC, which notifies `NETDEV_CHANGEADDR`. Best-effort.
///
/// (A raw `AF_PACKET` socket would do too, but closing one waits for an RCU grace period.)
async fn announce(pod: &Netns, l: &Link, result: &CniResult) {
    let Some(mac) = l.mac else { return };
    let mut armed = false;
    for (v4, key) in [
        (true, "ipv4/conf/{}/arp_notify"),
        (false, "ipv6/conf/{}/ndisc_notify"),
    ] {
        if !result.ips.iter().any(|ip| ip.address.is_ipv4() == v4) {
            continue;
        }
        match pod.write_sysctl(&format!("net/{}", key.replace("{}", &l.name)), "1") {
            Ok(()) => armed = true,
            Err(e) => tracing::warn!(
                error = &e as &dyn std::error::Error,
                "address announcement not armed"
            ),
        }
    }
    if armed {
        if let Err(e) = link::set_mac(&pod.handle, l, mac).await {
            tracing::warn!(error = &e as &dyn std::error::Error, "addresses not announced");
        }
    }
}

/// Moves the VF into the pod under `ifname`, handling a name clash on the way.
async fn move_vf_into_pod(
    host: &Netns,
    pod: &Netns,
    l: &Link,
    alias: &str,
    pci: &str,
) -> Result<(), AddError> {
    let h = &host.handle;
    link::set_alias(h, l, alias).await.map_err(AddError::Link)?;
    if l.up {
        link::set_up(h, l, false).await.map_err(AddError::Link)?;
    }
    tracing::debug!("VF alias set and down");
    let fd = pod.fd().ok_or_else(|| AddError::VfLost {
        pci: pci.to_string(),
        netns: pod.label.clone(),
    })?;
    match link::move_to_netns(h, l, fd, &pod.label).await {
        Ok(()) => Ok(()),
        Err(LinkError::MoveToNetns { source, .. }) if errno(&source) == Some(libc::EEXIST) => {
            // The VF's name (or an altname) exists in the pod: move it under a temporary name.
            let tmp = release::temp_name(pci);
            link::rename(h, l, &tmp).await.map_err(AddError::Link)?;
            let l = Link {
                name: tmp,
                ..l.clone()
            };
            for alt in l.altnames.clone() {
                link::del_altname(h, &l, &alt).await.map_err(AddError::Link)?;
            }
            link::move_to_netns(h, &l, fd, &pod.label)
                .await
                .map_err(AddError::Link)
        }
        Err(e) => Err(AddError::Link(e)),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn attach<O: Ovs>(
    ovs: &O,
    host: &Netns,
    pod: &Netns,
    vf_link: Option<Link>,
    rep_link: Link,
    mac: Option<crate::mac::MacAddr>,
    req: &Request,
    rec: &mut AttachmentRecord,
    rb: &mut Rollback,
) -> Result<CniResult, AddError> {
    let conf = &req.conf;
    let pci = rec.pci.clone();
    let mut pod_iface = Interface {
        name: req.ifname.clone(),
        sandbox: Some(rec.netns.clone()),
        pci_id: Some(pci.clone()),
        ..Default::default()
    };
    let mut pod_link = None;
    if let Some(l) = vf_link {
        rb.push(Undo::RestoreVf);
        move_vf_into_pod(host, pod, &l, &rec.alias, &pci).await?;
        tracing::debug!("VF moved into the pod");
        #[cfg(feature = "test-hooks")]
        crate::hooks::pause_point("after-vf-move").await;
        let ph = &pod.handle;
        let moved = link::by_alias(ph, &pod.label, &rec.alias)
            .await
            .map_err(AddError::Link)?;
        let moved = moved.ok_or_else(|| AddError::VfLost {
            pci: pci.clone(),
            netns: pod.label.clone(),
        })?;
        link::rename_clearing_altname(ph, &pod.label, &moved, &req.ifname)
            .await
            .map_err(AddError::Link)?;
        let moved = Link {
            name: req.ifname.clone(),
            ..moved
        };
        if let Some(mac) = mac {
            link::set_mac(ph, &moved, mac).await.map_err(AddError::Link)?;
        }
        if let Some(mtu) = conf.mtu {
            link::set_mtu(ph, &moved, mtu).await.map_err(AddError::Link)?;
        }
        link::set_up(ph, &moved, true).await.map_err(AddError::Link)?;
        let now = link::by_index(ph, &pod.label, moved.index)
            .await
            .map_err(AddError::Link)?;
        let now = now.ok_or_else(|| AddError::VfLost {
            pci: pci.clone(),
            netns: pod.label.clone(),
        })?;
        pod_iface.mac = now.mac.map(|m| m.to_string());
        pod_iface.mtu = now.mtu;
        pod_link = Some(now);
    }

    // Addresses: runtimeConfig.ips, else the IPAM plugin.
    let mut result = if conf.uses_runtime_ips() {
        CniResult {
            ips: conf
                .runtime_ips
                .iter()
                .map(|a| IpConfig {
                    address: *a,
                    gateway: None,
                    interface: None,
                })
                .collect(),
            ..Default::default()
        }
    } else if let (true, Some(t)) = (rec.ipam_delegated, &conf.ipam_type) {
        rb.push(Undo::IpamDel);
        let env = IpamEnv::for_request(req, &rec.netns);
        ipam::add(t, &env, &conf.raw).map_err(AddError::Ipam)?
    } else {
        CniResult::default()
    };
    if let Some(l) = &pod_link {
        let ph = &pod.handle;
        for ip in &result.ips {
            addr::add_address(ph, &l.name, l.index, ip.address)
                .await
                .map_err(AddError::Addr)?;
        }
        for route in &result.routes {
            addr::add_route(ph, &l.name, l.index, route, &result.ips)
                .await
                .map_err(AddError::Addr)?;
        }
    }

    // Representor: rename Kube-OVN style, MTU and up, then attach. Up comes before the port
    // exists: ovs-vswitchd turns promiscuous mode on with a read-modify-write of the link flags
    // when it opens the netdev, which would clear an "up" set concurrently.
    #[cfg(feature = "test-hooks")]
    crate::hooks::pause_point("before-attach").await;
    let hh = &host.handle;
    rb.push(Undo::RestoreRepresentor);
    if rep_link.up {
        link::set_up(hh, &rep_link, false).await.map_err(AddError::Link)?;
    }
    link::rename_clearing_altname(hh, &host.label, &rep_link, &rec.representor.new_name)
        .await
        .map_err(AddError::Link)?;
    let rep = Link {
        name: rec.representor.new_name.clone(),
        ..rep_link
    };
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
    if let Some(mtu) = conf.mtu {
        link::set_mtu(hh, &rep, mtu).await.map_err(AddError::Link)?;
    }
    link::set_up(hh, &rep, true).await.map_err(AddError::Link)?;
    rb.push(Undo::DelPort);
    tracing::debug!("pod configured, representor renamed and up");
    ovs.add_port(&spec).await.map_err(AddError::Ovs)?;
    tracing::debug!("port added");
    #[cfg(feature = "test-hooks")]
    crate::hooks::pause_point("after-attach").await;
    let ofport = ovs
        .wait_ofport(&rep.name, OFPORT_TIMEOUT)
        .await
        .map_err(AddError::Ovs)?;
    tracing::debug!(ofport, "ofport assigned");
    if rec.ovn_port.is_some() && !conf.ovn_installed_timeout.is_zero() {
        ovs.wait_ovn_installed(&rep.name, conf.ovn_installed_timeout)
            .await
            .map_err(AddError::Ovs)?;
    }
    let rep_now = link::by_index(hh, &host.label, rep.index)
        .await
        .map_err(AddError::Link)?;
    // ovs-vswitchd has opened the netdev by now; make sure nothing left the representor down.
    if rep_now.as_ref().is_some_and(|l| !l.up) {
        tracing::warn!(representor = %rep.name, "representor went down while ovs-vswitchd opened it; setting it up again");
        link::set_up(hh, &rep, true).await.map_err(AddError::Link)?;
    }
    // Announce the pod's addresses once the data path through the representor exists.
    if let Some(l) = &pod_link {
        announce(pod, l, &result).await;
    }

    let has_pod_link = pod_link.is_some();
    let rep_iface = Interface {
        name: rep.name.clone(),
        mac: rep_now.as_ref().and_then(|l| l.mac).map(|m| m.to_string()),
        mtu: rep_now.and_then(|l| l.mtu),
        ..Default::default()
    };
    result.interfaces = vec![pod_iface, rep_iface];
    for ip in &mut result.ips {
        ip.interface = has_pod_link.then_some(0);
    }
    tracing::info!(pci = %pci, ifname = %req.ifname, representor = %rep.name, "ADD done");
    Ok(result)
}
