//! Link state from netlink: an initial dump, then `RTM_NEWLINK` /
//! `RTM_DELLINK` events keep a [`LinkTable`] current, and every change is
//! signalled so device health is recomputed at once (no polling).
//!
//! Also answers which netdevs hold the IPv4 default route.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use futures::TryStreamExt;
use netlink_packet_core::{
    NetlinkBuffer, NetlinkMessage, NlasIterator, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkFlags, LinkHeader, LinkMessage};
use netlink_packet_route::route::{RouteAttribute, RouteHeader, RouteMessage, RouteType};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};
use rtnetlink::RouteMessageBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::links::{LinkState, LinkTable};

/// `RTMGRP_LINK`: link events.
const RTMGRP_LINK: u32 = 1;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
/// Receive buffer asked for, so bursts (hundreds of VFs created at once) fit.
const RECEIVE_BUFFER: usize = 8 << 20;

/// Netlink could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The netlink socket could not be opened or subscribed.
    #[error("cannot open a netlink socket subscribed to link events")]
    Connect(#[source] std::io::Error),
    /// The link dump could not be requested.
    #[error("cannot request a link dump over netlink")]
    RequestDump(#[source] std::io::Error),
    /// Reading the initial link dump failed.
    #[error("cannot read the link dump over netlink")]
    ReadDump(#[source] std::io::Error),
    /// The route socket could not be opened.
    #[error("cannot open a netlink route socket")]
    RouteSocket(#[source] std::io::Error),
    /// The route dump failed.
    #[error("cannot dump IPv4 routes over netlink")]
    DumpRoutes(#[source] rtnetlink::Error),
}

/// Watches links; cheap to share.
///
/// One netlink socket subscribed to `RTMGRP_LINK` also carries the link
/// dump, so dump replies and events arrive in kernel order. Messages are
/// read lazily (header and `IFLA_IFNAME` only), keeping memory flat even
/// with thousands of links.
pub struct LinkMonitor {
    table: Arc<RwLock<LinkTable>>,
    changes: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

/// Dump replies are collected here until `NLMSG_DONE`, then replace the table.
struct Reader {
    table: Arc<RwLock<LinkTable>>,
    dump: Option<(u32, LinkTable)>,
    next_seq: u32,
}

impl LinkMonitor {
    /// Subscribes to link events, then dumps the current links.
    pub async fn start() -> Result<LinkMonitor, HealthError> {
        let mut socket = TokioSocket::new(NETLINK_ROUTE).map_err(HealthError::Connect)?;
        socket
            .socket_mut()
            .bind(&SocketAddr::new(0, RTMGRP_LINK))
            .map_err(HealthError::Connect)?;
        if let Err(error) = socket.socket_mut().set_rx_buf_sz(RECEIVE_BUFFER) {
            tracing::debug!(%error, "cannot enlarge the netlink receive buffer");
        }
        let table = Arc::new(RwLock::new(LinkTable::default()));
        let mut reader = Reader {
            table: Arc::clone(&table),
            dump: None,
            next_seq: 1,
        };
        reader
            .request_dump(&socket)
            .await
            .map_err(HealthError::RequestDump)?;
        while reader.dump.is_some() {
            match socket.recv_from_full().await {
                Ok((datagram, _)) => {
                    reader.apply(&datagram);
                }
                // Events (another process creating hundreds of links, say)
                // overflowed the socket during the dump: part of it is lost,
                // so dump again.
                Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => {
                    tracing::debug!("netlink link events overflowed during the first dump; dumping again");
                    reader
                        .request_dump(&socket)
                        .await
                        .map_err(HealthError::RequestDump)?;
                }
                Err(error) => return Err(HealthError::ReadDump(error)),
            }
        }
        let (tx, changes) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            loop {
                match socket.recv_from_full().await {
                    Ok((datagram, _)) => {
                        if reader.apply(&datagram) {
                            tx.send_modify(|n| *n += 1);
                        }
                    }
                    Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => {
                        tracing::warn!("netlink link events overflowed; dumping links again");
                        if let Err(error) = reader.request_dump(&socket).await {
                            tracing::error!(%error, "cannot request a link dump");
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "netlink link events failed; device health no longer follows links");
                        return;
                    }
                }
            }
        });
        Ok(LinkMonitor { table, changes, task })
    }

    /// A copy of the current link table.
    pub fn snapshot(&self) -> LinkTable {
        self.with_table(LinkTable::clone)
    }

    /// Runs `f` on the current link table without copying it (thousands of
    /// links with 1016 VFs); netlink updates wait until `f` returns.
    pub fn with_table<R>(&self, f: impl FnOnce(&LinkTable) -> R) -> R {
        f(&self.table.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// A receiver that changes whenever a link changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Names of the links that carry an IPv4 default route of the main table.
    pub async fn default_route_netdevs(&self) -> Result<HashSet<String>, HealthError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(HealthError::RouteSocket)?;
        let connection = tokio::spawn(connection);
        let query = RouteMessageBuilder::<std::net::Ipv4Addr>::new().build();
        let routes: Result<Vec<RouteMessage>, _> = handle.route().get(query).execute().try_collect().await;
        connection.abort();
        let routes = routes.map_err(HealthError::DumpRoutes)?;
        Ok(self.with_table(|table| {
            routes
                .iter()
                .filter(|r| is_default(r))
                .flat_map(output_interfaces)
                .filter_map(|index| table.name_of(index).map(str::to_string))
                .collect()
        }))
    }
}

impl Drop for LinkMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Reader {
    async fn request_dump(&mut self, socket: &TokioSocket) -> std::io::Result<()> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let mut request = NetlinkMessage::from(RouteNetlinkMessage::GetLink(message));
        request.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        request.header.sequence_number = seq;
        request.finalize();
        let mut buffer = vec![0; request.buffer_len()];
        request.serialize(&mut buffer);
        socket.send_to(&buffer, &SocketAddr::new(0, 0)).await?;
        self.dump = Some((seq, LinkTable::default()));
        Ok(())
    }

    /// Applies every message of a datagram; true when the table changed.
    fn apply(&mut self, datagram: &[u8]) -> bool {
        let mut changed = false;
        let mut offset = 0;
        while offset < datagram.len() {
            let Ok(message) = NetlinkBuffer::new_checked(&datagram[offset..]) else {
                break;
            };
            let length = message.length() as usize;
            let seq = message.sequence_number();
            let in_dump = self.dump.as_ref().is_some_and(|(s, _)| *s == seq);
            match message.message_type() {
                RTM_NEWLINK | RTM_DELLINK => {
                    if let Some(update) = parse_link(message.message_type(), message.payload()) {
                        // Events during a dump go to both: the dump may
                        // already have passed that link.
                        if let Some((_, dump)) = &mut self.dump {
                            update.apply(dump);
                        }
                        if !in_dump {
                            let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
                            changed |= update.apply(&mut table);
                        }
                    }
                }
                NLMSG_DONE | NLMSG_ERROR if in_dump => {
                    if let Some((_, dump)) = self.dump.take() {
                        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
                        changed |= *table != dump;
                        *table = dump;
                    }
                }
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += (length + 3) & !3;
        }
        changed
    }
}

/// A link appeared, changed or went away.
struct LinkUpdate {
    index: u32,
    name: Option<String>,
    up: bool,
    master: Option<u32>,
    deleted: bool,
}

impl LinkUpdate {
    fn apply(&self, table: &mut LinkTable) -> bool {
        match (&self.name, self.deleted) {
            (_, true) => table.remove(self.index),
            (Some(name), false) => table.upsert(
                name,
                LinkState {
                    index: self.index,
                    up: self.up,
                    master: self.master,
                },
            ),
            (None, false) => false,
        }
    }
}

/// Reads the header, `IFLA_IFNAME` and `IFLA_MASTER` of an
/// `RTM_NEWLINK`/`RTM_DELLINK`.
fn parse_link(message_type: u16, payload: &[u8]) -> Option<LinkUpdate> {
    let header = LinkHeader::parse(payload).ok()?;
    let mut name = None;
    let mut master = None;
    for nla in NlasIterator::new(payload.get(16..).unwrap_or_default()).flatten() {
        let value = nla.value();
        match nla.kind() {
            IFLA_IFNAME => {
                let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
                name = Some(String::from_utf8_lossy(&value[..end]).into_owned());
            }
            IFLA_MASTER => {
                master = value
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_ne_bytes)
                    .filter(|m| *m != 0);
            }
            _ => {}
        }
    }
    let flags = header.flags;
    Some(LinkUpdate {
        index: header.index,
        name,
        up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp),
        master,
        deleted: message_type == RTM_DELLINK,
    })
}

fn is_default(route: &RouteMessage) -> bool {
    let table = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(route.header.table));
    route.header.destination_prefix_length == 0
        && route.header.kind == RouteType::Unicast
        && table == u32::from(RouteHeader::RT_TABLE_MAIN)
}

fn output_interfaces(route: &RouteMessage) -> Vec<u32> {
    let hops = route.attributes.iter().flat_map(|attribute| match attribute {
        RouteAttribute::Oif(index) => vec![*index],
        RouteAttribute::MultiPath(hops) => hops.iter().map(|h| h.interface_index).collect(),
        _ => Vec::new(),
    });
    hops.collect()
}
