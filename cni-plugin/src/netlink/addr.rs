//! Addresses and routes on the pod interface.

use crate::ipnet::IpNet;
use crate::result::{IpConfig, Route};
use netlink_packet_route::route::{RouteAttribute, RouteMessage, RouteMetric, RouteScope};
use rtnetlink::RouteMessageBuilder;
use std::net::IpAddr;

/// An address or route step failed.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    /// A netlink request failed.
    #[error("cannot {step}")]
    Request {
        /// What was asked, e.g. `add address 10.0.0.2/24 to eth0`.
        step: String,
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

impl AddrError {
    /// Maps a netlink error to the failed request `cannot {step}`.
    pub(crate) fn failed(step: String) -> impl FnOnce(rtnetlink::Error) -> AddrError {
        move |source| AddrError::Request { step, source }
    }
}

impl crate::error::ErrorCode for AddrError {
    fn code(&self) -> u32 {
        match self {
            AddrError::MixedFamilies { .. } => crate::error::code::INVALID_CONFIG,
            _ => crate::error::code::NETLINK,
        }
    }
}

/// The `RTM_NEWROUTE` message for `route` through ifindex `index`; the gateway defaults to the
/// gateway of the first IP config of the same family (none: a link-scope route).
pub fn route_message(
    index: u32,
    route: &Route,
    ips: &[IpConfig],
) -> Result<(RouteMessage, Option<IpAddr>), AddrError> {
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
    Ok((msg, gw))
}
