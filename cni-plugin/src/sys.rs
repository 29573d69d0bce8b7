//! The seams between node operations and the kernel: netlink in one namespace ([`Net`]) and
//! opening namespaces ([`Namespaces`]), so unit tests can use a recording fake without root.

use crate::ipnet::IpNet;
use crate::mac::MacAddr;
use crate::netlink::addr::AddrError;
use crate::netlink::link::{Link, LinkError};
use crate::netns::NetnsError;
use crate::result::{IpConfig, Route};
use std::future::Future;
use std::path::Path;

/// Netlink operations (and sysctl writes) in one network namespace.
pub trait Net: Send + Sync {
    /// The namespace's label for logs and errors (`host` or its path).
    fn label(&self) -> &str;
    /// Every link.
    fn links(&self) -> impl Future<Output = Result<Vec<Link>, LinkError>> + Send;
    /// The link whose primary name is `name`.
    fn link_by_name(&self, name: &str) -> impl Future<Output = Result<Option<Link>, LinkError>> + Send;
    /// The link with this ifindex.
    fn link_by_index(&self, index: u32) -> impl Future<Output = Result<Option<Link>, LinkError>> + Send;
    /// Sets the link up or down.
    fn set_up(&self, link: &Link, up: bool) -> impl Future<Output = Result<(), LinkError>> + Send;
    /// Renames the link (it must be down); no clash handling.
    fn rename(&self, link: &Link, to: &str) -> impl Future<Output = Result<(), LinkError>> + Send;
    /// Sets the MAC address.
    fn set_mac(&self, link: &Link, mac: MacAddr) -> impl Future<Output = Result<(), LinkError>> + Send;
    /// Sets the MTU.
    fn set_mtu(&self, link: &Link, mtu: u32) -> impl Future<Output = Result<(), LinkError>> + Send;
    /// Sets (or with `""` clears) the alias.
    fn set_alias(&self, link: &Link, alias: &str) -> impl Future<Output = Result<(), LinkError>> + Send;
    /// Deletes one altname; absent is success.
    fn del_altname(&self, link: &Link, altname: &str) -> impl Future<Output = Result<(), LinkError>> + Send;
    /// Moves the link into the namespace `to`.
    fn move_to(&self, link: &Link, to: &Self) -> impl Future<Output = Result<(), LinkError>> + Send;
    /// Adds an address to the link.
    fn add_address(&self, link: &Link, addr: IpNet) -> impl Future<Output = Result<(), AddrError>> + Send;
    /// The link's addresses.
    fn addresses(&self, link: &Link) -> impl Future<Output = Result<Vec<IpNet>, AddrError>> + Send;
    /// Adds a route through the link; the gateway defaults to that of the first `ips` entry
    /// of the same family.
    fn add_route(
        &self,
        link: &Link,
        route: &Route,
        ips: &[IpConfig],
    ) -> impl Future<Output = Result<(), AddrError>> + Send;
    /// Another netlink socket in the same namespace, for a concurrent dump (a socket runs
    /// one at a time).
    fn another_socket(&self) -> Result<Self, NetnsError>
    where
        Self: Sized;
    /// Writes `/proc/sys/<key>` as seen from this namespace.
    fn write_sysctl(&self, key: &str, value: &str) -> Result<(), NetnsError>;
}

/// Opening network namespaces.
pub trait Namespaces: Send + Sync {
    /// A namespace's netlink operations.
    type Net: Net;
    /// The host namespace.
    fn host(&self) -> Result<Self::Net, NetnsError>;
    /// The namespace at `path` (a pod's).
    fn open(&self, path: &Path) -> Result<Self::Net, NetnsError>;
}

/// The link whose alias is `alias`.
pub async fn link_by_alias<N: Net>(net: &N, alias: &str) -> Result<Option<Link>, LinkError> {
    Ok(net
        .links()
        .await?
        .into_iter()
        .find(|l| l.alias.as_deref() == Some(alias)))
}

/// Renames the link to `to`, first deleting `to` where it is an altname (of this or another
/// link). Fails with [`LinkError::NameTaken`] when another link's primary name is `to`.
pub async fn rename_clearing_altname<N: Net>(net: &N, link: &Link, to: &str) -> Result<(), LinkError> {
    if link.name == to {
        return Ok(());
    }
    for other in net.links().await? {
        if other.name == to && other.index != link.index {
            return Err(LinkError::NameTaken {
                iface: link.name.clone(),
                to: to.to_string(),
                holder: other.index,
                netns: net.label().to_string(),
            });
        }
        if other.altnames.iter().any(|a| a == to) {
            tracing::info!(iface = %other.name, altname = to, netns = net.label(), "deleting altname that clashes with the new name");
            net.del_altname(&other, to).await?;
        }
    }
    net.rename(link, to).await
}
