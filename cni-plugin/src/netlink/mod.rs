//! rtnetlink operations on links, addresses and routes: the production [`Net`] of a [`Netns`].

pub mod addr;
pub mod link;

pub use link::{Link, LinkError};

use crate::ipnet::IpNet;
use crate::mac::MacAddr;
use crate::netns::{Netns, NetnsError};
use crate::result::{IpConfig, Route};
use crate::sys::Net;
use addr::AddrError;
use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::LinkMessage;
use rtnetlink::{LinkGetRequest, LinkUnspec};
use std::os::fd::AsRawFd;

/// The errno carried by a netlink error, if any.
pub fn errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}

impl Netns {
    /// One link by a targeted `RTM_GETLINK` (no dump); `None` when the kernel knows no such link.
    async fn get_one(
        &self,
        req: LinkGetRequest,
        what: impl FnOnce() -> String,
    ) -> Result<Option<Link>, LinkError> {
        match req.execute().try_next().await {
            Ok(msg) => Ok(msg.as_ref().map(Link::from_message)),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(LinkError::failed(format!(
                "look up link {} in {}",
                what(),
                self.label
            ))(e)),
        }
    }

    async fn change(&self, msg: LinkMessage) -> Result<(), rtnetlink::Error> {
        self.handle.link().change(msg).execute().await
    }

    async fn set_attr(&self, l: &Link, what: &'static str, msg: LinkMessage) -> Result<(), LinkError> {
        self.change(msg)
            .await
            .map_err(LinkError::failed(format!("set {what} of {}", l.name)))
    }
}

impl Net for Netns {
    fn label(&self) -> &str {
        &self.label
    }

    async fn links(&self) -> Result<Vec<Link>, LinkError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(LinkError::failed(format!("list links in {}", self.label)))?;
        Ok(msgs.iter().map(Link::from_message).collect())
    }

    async fn link_by_name(&self, name: &str) -> Result<Option<Link>, LinkError> {
        // The kernel also resolves altnames and rejects over-long names: neither is a primary name.
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Ok(None);
        }
        let req = self.handle.link().get().match_name(name);
        let found = self.get_one(req, || name.to_string()).await?;
        Ok(found.filter(|l| l.name == name))
    }

    async fn link_by_index(&self, index: u32) -> Result<Option<Link>, LinkError> {
        if index == 0 {
            return Ok(None);
        }
        let req = self.handle.link().get().match_index(index);
        self.get_one(req, || format!("ifindex {index}")).await
    }

    async fn set_up(&self, l: &Link, up: bool) -> Result<(), LinkError> {
        let b = LinkUnspec::new_with_index(l.index);
        let msg = if up { b.up() } else { b.down() }.build();
        let state = if up { "up" } else { "down" };
        self.change(msg).await.map_err(LinkError::failed(format!(
            "set {} (ifindex {}) {state}",
            l.name, l.index
        )))
    }

    async fn rename(&self, l: &Link, to: &str) -> Result<(), LinkError> {
        let msg = LinkUnspec::new_with_index(l.index).name(to.to_string()).build();
        self.change(msg)
            .await
            .map_err(LinkError::failed(format!("rename {} to {to}", l.name)))
    }

    async fn set_mac(&self, l: &Link, mac: MacAddr) -> Result<(), LinkError> {
        let msg = LinkUnspec::new_with_index(l.index)
            .address(mac.0.to_vec())
            .build();
        self.set_attr(l, "mac", msg).await
    }

    async fn set_mtu(&self, l: &Link, mtu: u32) -> Result<(), LinkError> {
        self.set_attr(l, "mtu", LinkUnspec::new_with_index(l.index).mtu(mtu).build())
            .await
    }

    async fn set_alias(&self, l: &Link, alias: &str) -> Result<(), LinkError> {
        let msg = LinkUnspec::new_with_index(l.index)
            .alias(alias.to_string())
            .build();
        self.set_attr(l, "alias", msg).await
    }

    async fn del_altname(&self, l: &Link, altname: &str) -> Result<(), LinkError> {
        let req = self.handle.link().property_del(l.index).alt_ifname(&[altname]);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::ENOENT) || errno(&e) == Some(libc::ENODATA) => Ok(()),
            Err(e) => Err(LinkError::failed(format!(
                "delete altname {altname} of {}",
                l.name
            ))(e)),
        }
    }

    async fn move_to(&self, l: &Link, to: &Netns) -> Result<(), LinkError> {
        let fd = to.file.as_raw_fd();
        let msg = LinkUnspec::new_with_index(l.index).setns_by_fd(fd).build();
        self.change(msg).await.map_err(|source| LinkError::MoveToNetns {
            iface: l.name.clone(),
            netns: to.label.clone(),
            source,
        })
    }

    async fn add_address(&self, l: &Link, a: IpNet) -> Result<(), AddrError> {
        let mut req = self.handle.address().add(l.index, a.addr, a.prefix);
        // IPv6 without duplicate address detection, so the address is usable at once.
        if a.addr.is_ipv6() {
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        req.execute()
            .await
            .map_err(AddrError::failed(format!("add address {a} to {}", l.name)))
    }

    async fn addresses(&self, l: &Link) -> Result<Vec<IpNet>, AddrError> {
        let req = self.handle.address().get().set_link_index_filter(l.index);
        let msgs: Vec<_> = req
            .execute()
            .try_collect()
            .await
            .map_err(AddrError::failed(format!("list addresses of {}", l.name)))?;
        let addr_of = |m: &netlink_packet_route::address::AddressMessage| {
            let find = |local: bool| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(ip) if local => Some(*ip),
                    AddressAttribute::Address(ip) if !local => Some(*ip),
                    _ => None,
                })
            };
            find(true).or_else(|| find(false))
        };
        Ok(msgs
            .iter()
            .filter(|m| m.header.index == l.index)
            .filter_map(|m| {
                addr_of(m).map(|addr| IpNet {
                    addr,
                    prefix: m.header.prefix_len,
                })
            })
            .collect())
    }

    async fn add_route(&self, l: &Link, route: &Route, ips: &[IpConfig]) -> Result<(), AddrError> {
        let (msg, gw) = addr::route_message(l.index, route, ips)?;
        self.handle
            .route()
            .add(msg)
            .execute()
            .await
            .map_err(AddrError::failed(format!(
                "add route to {} via {gw:?} on {}",
                route.dst, l.name
            )))
    }

    fn another_socket(&self) -> Result<Netns, NetnsError> {
        self.reopen()
    }

    fn write_sysctl(&self, key: &str, value: &str) -> Result<(), NetnsError> {
        self.write_sysctl_file(key, value)
    }
}
