//! The host-changing steps of attach, in order: VF into the pod, addresses, representor onto
//! OVS, announce. Each step pushes its undo before it changes anything.

use super::AttachError;
use crate::ipam::{self, IpamEnv};
use crate::netlink::errno;
use crate::netlink::link::{Link, LinkError};
use crate::node::lookup::temp_name;
use crate::node::record::AttachmentRecord;
use crate::node::rollback::{Rollback, Undo};
use crate::node::{Addresses, Addressing, AttachRequest, Attachment, LinkFacts};
use crate::port_ids::{external_ids, PortIdentity};
use crate::sys::{self, Net};
use crate::traits::{Ovs, PortSpec};

/// How long attach waits for the representor's ofport.
pub const OFPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The links found on the host for the VF (`None`: no kernel netdev) and its representor.
pub(super) struct Links {
    pub vf: Option<Link>,
    pub representor: Link,
}

/// Has the kernel announce the pod's addresses: gratuitous ARP for IPv4 (`arp_notify`) and
/// unsolicited neighbour advertisements for IPv6 (`ndisc_notify`), triggered by re-setting the
/// (unchanged) MAC, which notifies `NETDEV_CHANGEADDR`. Best-effort.
///
/// (A raw `AF_PACKET` socket would do too, but closing one waits for an RCU grace period.)
async fn announce<N: Net>(pod: &N, l: &Link, addresses: &Addresses) {
    let Some(mac) = l.mac else { return };
    let mut armed = false;
    for (v4, key) in [
        (true, "ipv4/conf/{}/arp_notify"),
        (false, "ipv6/conf/{}/ndisc_notify"),
    ] {
        if !addresses.ips.iter().any(|ip| ip.address.is_ipv4() == v4) {
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
        if let Err(e) = pod.set_mac(l, mac).await {
            tracing::warn!(error = &e as &dyn std::error::Error, "addresses not announced");
        }
    }
}

/// Moves the VF into the pod, handling a name clash on the way.
async fn move_vf_into_pod<N: Net>(
    host: &N,
    pod: &N,
    l: &Link,
    rec: &AttachmentRecord,
) -> Result<(), AttachError> {
    host.set_alias(l, &rec.alias()).await?;
    if l.up {
        host.set_up(l, false).await?;
    }
    tracing::debug!("VF alias set and down");
    match host.move_to(l, pod).await {
        Ok(()) => Ok(()),
        Err(LinkError::MoveToNetns { source, .. }) if errno(&source) == Some(libc::EEXIST) => {
            // The VF's name (or an altname) exists in the pod: move it under a temporary name.
            let tmp = temp_name(&rec.pci);
            host.rename(l, &tmp).await?;
            let l = Link {
                name: tmp,
                ..l.clone()
            };
            for alt in &l.altnames {
                host.del_altname(&l, alt).await?;
            }
            host.move_to(&l, pod).await.map_err(AttachError::Link)
        }
        Err(e) => Err(AttachError::Link(e)),
    }
}

/// The VF in the pod: moved, renamed, MAC, MTU, up. Returns the link as it is now.
async fn configure_pod_interface<N: Net>(
    host: &N,
    pod: &N,
    l: Link,
    req: &AttachRequest,
    rec: &AttachmentRecord,
    rb: &mut Rollback,
) -> Result<Link, AttachError> {
    let lost = || AttachError::VfLost {
        pci: rec.pci,
        netns: pod.label().to_string(),
    };
    rb.push(Undo::RestoreVf);
    move_vf_into_pod(host, pod, &l, rec).await?;
    tracing::debug!("VF moved into the pod");
    #[cfg(feature = "test-hooks")]
    crate::hooks::pause_point("after-vf-move").await;
    let moved = sys::link_by_alias(pod, &rec.alias()).await?.ok_or_else(lost)?;
    sys::rename_clearing_altname(pod, &moved, &req.ifname).await?;
    let moved = Link {
        name: req.ifname.clone(),
        ..moved
    };
    if let Some(mac) = req.mac {
        pod.set_mac(&moved, mac).await?;
    }
    if let Some(mtu) = req.mtu {
        pod.set_mtu(&moved, mtu).await?;
    }
    pod.set_up(&moved, true).await?;
    pod.link_by_index(moved.index).await?.ok_or_else(lost)
}

/// The addresses: given, or from the IPAM plugin (whose DEL then becomes an undo step).
fn acquire_addresses(req: &AttachRequest, rb: &mut Rollback) -> Result<Addresses, AttachError> {
    match &req.addressing {
        Addressing::Given(a) => Ok(a.clone()),
        Addressing::Ipam(facts) => {
            rb.push(Undo::IpamDel);
            let netns = req.netns.display().to_string();
            let env = IpamEnv {
                container_id: &req.container_id,
                netns: &netns,
                ifname: &req.ifname,
                args: &facts.args,
                path: &facts.path,
            };
            let r = ipam::add(&facts.plugin, &env, &facts.conf).map_err(AttachError::Ipam)?;
            Ok(Addresses {
                ips: r.ips,
                routes: r.routes,
                dns: r.dns,
            })
        }
    }
}

/// Runs every host-changing step; `rb` collects the undo of each step begun.
pub(super) async fn run<O: Ovs, N: Net>(
    ovs: &O,
    host: &N,
    pod: &N,
    links: Links,
    req: &AttachRequest,
    rec: &AttachmentRecord,
    rb: &mut Rollback,
) -> Result<Attachment, AttachError> {
    let pod_link = match links.vf {
        Some(l) => Some(configure_pod_interface(host, pod, l, req, rec, rb).await?),
        None => None,
    };
    let addresses = acquire_addresses(req, rb)?;
    if let Some(l) = &pod_link {
        for ip in &addresses.ips {
            pod.add_address(l, ip.address).await?;
        }
        for route in &addresses.routes {
            pod.add_route(l, route, &addresses.ips).await?;
        }
    }

    // Representor: rename Kube-OVN style, MTU and up, then attach. Up comes before the port
    // exists: ovs-vswitchd turns promiscuous mode on with a read-modify-write of the link flags
    // when it opens the netdev, which would clear an "up" set concurrently.
    #[cfg(feature = "test-hooks")]
    crate::hooks::pause_point("before-attach").await;
    let rep_link = links.representor;
    rb.push(Undo::RestoreRepresentor);
    if rep_link.up {
        host.set_up(&rep_link, false).await?;
    }
    sys::rename_clearing_altname(host, &rep_link, &rec.representor.new_name).await?;
    let rep = Link {
        name: rec.representor.new_name.clone(),
        ..rep_link
    };
    let netns = rec.netns.display().to_string();
    let pci = rec.pci.to_string();
    let spec = PortSpec {
        bridge: req.port.bridge.clone(),
        name: rep.name.clone(),
        external_ids: external_ids(&PortIdentity {
            iface_id: req.port.iface_id.as_deref(),
            pod_name: req.port.pod_name.as_deref(),
            pod_namespace: req.port.pod_namespace.as_deref(),
            netns: &netns,
            ips: addresses
                .ips
                .iter()
                .map(|ip| ip.address.addr.to_string())
                .collect(),
            container_id: &req.container_id,
            ifname: &req.ifname,
            pci: &pci,
        }),
        vlan: req.port.vlan,
        // As Kube-OVN's SetInterfaceBandwidth: kbit/s, burst 80% of the rate.
        ingress_policing: req
            .port
            .ingress_policing_mbps
            .map(|m| (m.saturating_mul(1000), m.saturating_mul(800))),
        egress_max_rate: req.port.egress_max_rate_mbps.map(|m| m.saturating_mul(1_000_000)),
    };
    if let Some(mtu) = req.mtu {
        host.set_mtu(&rep, mtu).await?;
    }
    host.set_up(&rep, true).await?;
    rb.push(Undo::DelPort);
    tracing::debug!("pod configured, representor renamed and up");
    ovs.add_port(&spec).await?;
    tracing::debug!("port added");
    #[cfg(feature = "test-hooks")]
    crate::hooks::pause_point("after-attach").await;
    let ofport = ovs.wait_ofport(&rep.name, OFPORT_TIMEOUT).await?;
    tracing::debug!(ofport, "ofport assigned");
    if req.port.iface_id.is_some() && !req.ovn_installed_timeout.is_zero() {
        ovs.wait_ovn_installed(&rep.name, req.ovn_installed_timeout)
            .await?;
    }
    let rep_now = host.link_by_index(rep.index).await?;
    // ovs-vswitchd has opened the netdev by now; make sure nothing left the representor down.
    if rep_now.as_ref().is_some_and(|l| !l.up) {
        tracing::warn!(representor = %rep.name, "representor went down while ovs-vswitchd opened it; setting it up again");
        host.set_up(&rep, true).await?;
    }
    // Announce the pod's addresses once the data path through the representor exists.
    if let Some(l) = &pod_link {
        announce(pod, l, &addresses).await;
    }
    tracing::info!(pci = %rec.pci, ifname = %req.ifname, representor = %rep.name, "attached");
    Ok(Attachment {
        pod_interface: pod_link.map(|l| LinkFacts {
            name: l.name,
            mac: l.mac,
            mtu: l.mtu,
        }),
        representor: LinkFacts {
            name: rep.name,
            mac: rep_now.as_ref().and_then(|l| l.mac),
            mtu: rep_now.and_then(|l| l.mtu),
        },
        addresses,
    })
}
