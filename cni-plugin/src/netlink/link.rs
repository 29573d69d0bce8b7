//! Finding and changing links: by name, alias or ifindex; rename with altname clash handling; netns moves.

use crate::mac::MacAddr;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, Prop};

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
    pub(crate) fn from_message(msg: &LinkMessage) -> Link {
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
    /// A netlink request failed.
    #[error("cannot {step}")]
    Request {
        /// What was asked, e.g. `rename eth0 to pod0`.
        step: String,
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
}

impl LinkError {
    /// Maps a netlink error to the failed request `cannot {step}`.
    pub(crate) fn failed(step: String) -> impl FnOnce(rtnetlink::Error) -> LinkError {
        move |source| LinkError::Request { step, source }
    }
}

impl crate::error::ErrorCode for LinkError {
    fn code(&self) -> u32 {
        crate::error::code::NETLINK
    }
}
