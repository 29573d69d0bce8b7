//! rtnetlink operations on links, addresses and routes.

pub mod addr;
pub mod link;

pub use link::{Link, LinkError};

/// The errno carried by a netlink error, if any.
pub fn errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}
