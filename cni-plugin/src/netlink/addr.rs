//! Addresses and routes on the pod interface.

use crate::ipnet::IpNet;
use crate::result::{IpConfig, Route};
use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::route::{RouteAttribute, RouteMetric, RouteScope};
use rtnetlink::{Handle, RouteMessageBuilder};
use std::net::IpAddr;

/// An address or route step failed.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    /// Adding an address failed.
    #[error("cannot add address {addr} to {iface}")]
    AddAddress {
        /// Link.
        iface: String,
        /// Address.
        addr: IpNet,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// Adding a route failed.
    #[error("cannot add route to {dst} via {gw:?} on {iface}")]
    AddRoute {
        /// Link.
        iface: String,
        /// Destination.
        dst: IpNet,
        /// Gateway.
        gw: Option<IpAddr>,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// Listing addresses failed.
    #[error("cannot list addresses of {iface}")]
    ListAddresses {
        /// Link.
        iface: String,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// A route mixes families.
    #[error("route to {dst} has a gateway {gw} of the other address family")]
    MixedFamilies {
        /// Destination.
        dst: IpNet,
        /// Gateway.
        gw: IpAddr,
    },
}

impl crate::error::ErrorCode for AddrError {
    fn code(&self) -> u32 {
        match self {
            AddrError::MixedFamilies { .. } => crate::error::code::INVALID_CONFIG,
            _ => crate::error::code::NETLINK,
        }
    }
}

/// Adds an address (IPv6 without duplicate address detection, so it is usable at once).
pub async fn add_address(h: &Handle, iface: &str, index: u32, addr: IpNet) -> Result<(), AddrError> {
    let mut req = h.address().add(index, addr.addr, addr.prefix);
    if addr.addr.is_ipv6() {
        req.message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    req.execute().await.map_err(|source| AddrError::AddAddress {
        iface: iface.to_string(),
        addr,
        source,
    })
}

/// The addresses on a link.
pub async fn addresses(h: &Handle, iface: &str, index: u32) -> Result<Vec<IpNet>, AddrError> {
    let msgs: Vec<_> = h
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(|source| AddrError::ListAddresses {
            iface: iface.to_string(),
            source,
        })?;
    let mut out = Vec::new();
    for m in msgs {
        if m.header.index != index {
            continue;
        }
        let addr = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let addr = addr.or_else(|| {
            m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        });
        if let Some(addr) = addr {
            out.push(IpNet {
                addr,
                prefix: m.header.prefix_len,
            });
        }
    }
    Ok(out)
}

/// Adds a route; the gateway defaults to the gateway of the first IP config of the same family.
pub async fn add_route(
    h: &Handle,
    iface: &str,
    index: u32,
    route: &Route,
    ips: &[IpConfig],
) -> Result<(), AddrError> {
    let gw = route.gw.or_else(|| {
        ips.iter()
            .find(|ip| ip.address.is_ipv4() == route.dst.is_ipv4())
            .and_then(|ip| ip.gateway)
    });
    let dst = route.dst;
    let mut msg = match (dst.network(), gw) {
        (IpAddr::V4(d), gw) => {
            let mut b = RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .destination_prefix(d, dst.prefix)
                .output_interface(index);
            match gw {
                Some(IpAddr::V4(g)) => b = b.gateway(g),
                Some(g @ IpAddr::V6(_)) => return Err(AddrError::MixedFamilies { dst, gw: g }),
                None => b = b.scope(RouteScope::Link),
            }
            b.build()
        }
        (IpAddr::V6(d), gw) => {
            let mut b = RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .destination_prefix(d, dst.prefix)
                .output_interface(index);
            match gw {
                Some(IpAddr::V6(g)) => b = b.gateway(g),
                Some(g @ IpAddr::V4(_)) => return Err(AddrError::MixedFamilies { dst, gw: g }),
                None => b = b.scope(RouteScope::Link),
            }
            b.build()
        }
    };
    if let Some(mtu) = route.mtu {
        msg.attributes
            .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
    }
    if let Some(p) = route.priority {
        msg.attributes.push(RouteAttribute::Priority(p));
    }
    h.route()
        .add(msg)
        .execute()
        .await
        .map_err(|source| AddrError::AddRoute {
            iface: iface.to_string(),
            dst,
            gw,
            source,
        })
}
