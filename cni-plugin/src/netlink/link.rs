//! Finding and changing links: by name, alias or ifindex; rename with altname clash handling; netns moves.

use crate::mac::MacAddr;
use crate::netlink::errno;
use futures::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, Prop};
use rtnetlink::{Handle, LinkGetRequest, LinkUnspec};
use std::os::fd::RawFd;

/// What we need to know about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// ifindex.
    pub index: u32,
    /// Name.
    pub name: String,
    /// MAC address.
    pub mac: Option<MacAddr>,
    /// MTU.
    pub mtu: Option<u32>,
    /// `IFLA_IFALIAS`.
    pub alias: Option<String>,
    /// Alternative names.
    pub altnames: Vec<String>,
    /// Administratively up.
    pub up: bool,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mac: None,
            mtu: None,
            alias: None,
            altnames: Vec::new(),
            up: msg.header.flags.contains(LinkFlags::Up),
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Address(a) => link.mac = MacAddr::from_bytes(a),
                LinkAttribute::Mtu(m) => link.mtu = Some(*m),
                LinkAttribute::IfAlias(a) if !a.is_empty() => link.alias = Some(a.clone()),
                LinkAttribute::PropList(props) => {
                    for p in props {
                        if let Prop::AltIfName(n) = p {
                            link.altnames.push(n.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// A link operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Listing links failed.
    #[error("cannot list links in {netns}")]
    List {
        /// Namespace.
        netns: String,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// Looking up one link failed.
    #[error("cannot look up link {link} in {netns}")]
    Get {
        /// Name or `ifindex N`.
        link: String,
        /// Namespace.
        netns: String,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// Setting a link up or down failed.
    #[error("cannot set {iface} (ifindex {index}) {state}")]
    SetState {
        /// Link.
        iface: String,
        /// ifindex.
        index: u32,
        /// `up` or `down`.
        state: &'static str,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// Renaming failed.
    #[error("cannot rename {iface} to {to}")]
    Rename {
        /// Link.
        iface: String,
        /// New name.
        to: String,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// The new name is another link's name.
    #[error("cannot rename {iface} to {to}: another link (ifindex {holder}) has that name in {netns}")]
    NameTaken {
        /// Link.
        iface: String,
        /// Wanted name.
        to: String,
        /// ifindex of the holder.
        holder: u32,
        /// Namespace.
        netns: String,
    },
    /// Setting an attribute failed.
    #[error("cannot set {what} of {iface}")]
    SetAttr {
        /// Link.
        iface: String,
        /// `mac`, `mtu` or `alias`.
        what: &'static str,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// Moving to another namespace failed.
    #[error("cannot move {iface} into network namespace {netns}")]
    MoveToNetns {
        /// Link.
        iface: String,
        /// Target namespace.
        netns: String,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// Deleting an altname failed.
    #[error("cannot delete altname {altname} of {iface}")]
    DelAltname {
        /// Link.
        iface: String,
        /// Altname.
        altname: String,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
}

impl crate::error::ErrorCode for LinkError {
    fn code(&self) -> u32 {
        crate::error::code::NETLINK
    }
}

/// Every link of the namespace.
pub async fn list(h: &Handle, netns: &str) -> Result<Vec<Link>, LinkError> {
    let msgs: Vec<LinkMessage> =
        h.link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|source| LinkError::List {
                netns: netns.to_string(),
                source,
            })?;
    Ok(msgs.iter().map(Link::from_message).collect())
}

/// One link by a targeted `RTM_GETLINK` (no dump); `None` when the kernel knows no such link.
async fn get_one(
    req: LinkGetRequest,
    netns: &str,
    what: impl FnOnce() -> String,
) -> Result<Option<Link>, LinkError> {
    match req.execute().try_next().await {
        Ok(msg) => Ok(msg.as_ref().map(Link::from_message)),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(source) => Err(LinkError::Get {
            link: what(),
            netns: netns.to_string(),
            source,
        }),
    }
}

/// The link named `name` (primary name only).
pub async fn by_name(h: &Handle, netns: &str, name: &str) -> Result<Option<Link>, LinkError> {
    // The kernel also resolves altnames and rejects over-long names: neither is a primary name.
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Ok(None);
    }
    let found = get_one(h.link().get().match_name(name), netns, || name.to_string()).await?;
    Ok(found.filter(|l| l.name == name))
}

/// The link with this ifindex.
pub async fn by_index(h: &Handle, netns: &str, index: u32) -> Result<Option<Link>, LinkError> {
    if index == 0 {
        return Ok(None);
    }
    get_one(h.link().get().match_index(index), netns, || {
        format!("ifindex {index}")
    })
    .await
}

async fn change(h: &Handle, msg: LinkMessage) -> Result<(), rtnetlink::Error> {
    h.link().change(msg).execute().await
}

/// Sets the link up or down.
pub async fn set_up(h: &Handle, link: &Link, up: bool) -> Result<(), LinkError> {
    let b = LinkUnspec::new_with_index(link.index);
    let msg = if up { b.up() } else { b.down() }.build();
    change(h, msg).await.map_err(|source| LinkError::SetState {
        iface: link.name.clone(),
        index: link.index,
        state: if up { "up" } else { "down" },
        source,
    })
}

/// Renames the link (must be down), without clash handling.
pub async fn rename(h: &Handle, link: &Link, to: &str) -> Result<(), LinkError> {
    let msg = LinkUnspec::new_with_index(link.index)
        .name(to.to_string())
        .build();
    change(h, msg).await.map_err(|source| LinkError::Rename {
        iface: link.name.clone(),
        to: to.to_string(),
        source,
    })
}

/// Sets the MAC address.
pub async fn set_mac(h: &Handle, link: &Link, mac: MacAddr) -> Result<(), LinkError> {
    let msg = LinkUnspec::new_with_index(link.index)
        .address(mac.0.to_vec())
        .build();
    change(h, msg).await.map_err(|source| LinkError::SetAttr {
        iface: link.name.clone(),
        what: "mac",
        source,
    })
}

/// Sets the MTU.
pub async fn set_mtu(h: &Handle, link: &Link, mtu: u32) -> Result<(), LinkError> {
    let msg = LinkUnspec::new_with_index(link.index).mtu(mtu).build();
    change(h, msg).await.map_err(|source| LinkError::SetAttr {
        iface: link.name.clone(),
        what: "mtu",
        source,
    })
}

/// Sets (or with an empty string, clears) the alias.
pub async fn set_alias(h: &Handle, link: &Link, alias: &str) -> Result<(), LinkError> {
    let msg = LinkUnspec::new_with_index(link.index)
        .alias(alias.to_string())
        .build();
    change(h, msg).await.map_err(|source| LinkError::SetAttr {
        iface: link.name.clone(),
        what: "alias",
        source,
    })
}

/// Moves the link into the namespace whose file descriptor is `fd`.
pub async fn move_to_netns(h: &Handle, link: &Link, fd: RawFd, netns: &str) -> Result<(), LinkError> {
    let msg = LinkUnspec::new_with_index(link.index).setns_by_fd(fd).build();
    change(h, msg).await.map_err(|source| LinkError::MoveToNetns {
        iface: link.name.clone(),
        netns: netns.to_string(),
        source,
    })
}

/// Deletes one altname.
pub async fn del_altname(h: &Handle, link: &Link, altname: &str) -> Result<(), LinkError> {
    match h
        .link()
        .property_del(link.index)
        .alt_ifname(&[altname])
        .execute()
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::ENOENT) || errno(&e) == Some(libc::ENODATA) => Ok(()),
        Err(source) => Err(LinkError::DelAltname {
            iface: link.name.clone(),
            altname: altname.to_string(),
            source,
        }),
    }
}
