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
    /// The route cannot be expressed as a netlink message.
    #[error("invalid route")]
    Route(#[source] crate::traits::Cause),
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
            AddrError::MixedFamilies { .. } | AddrError::Route(_) => crate::error::code::INVALID_CONFIG,
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
    if let Some(gw) = gw.filter(|g| g.is_ipv4() != dst.is_ipv4()) {
        return Err(AddrError::MixedFamilies { dst, gw });
    }
    let b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(dst.network(), dst.prefix)
        .map(|b| b.output_interface(index));
    let b = match gw {
        Some(g) => b.and_then(|b| b.gateway(g)),
        None => b.map(|b| b.scope(RouteScope::Link)),
    };
    let mut msg = b.map_err(|e| AddrError::Route(e.into()))?.build();
    if let Some(mtu) = route.mtu {
        msg.attributes
            .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
    }
    if let Some(p) = route.priority {
        msg.attributes.push(RouteAttribute::Priority(p));
    }
    Ok((msg, gw))
}
