//! Kernel uevents (`NETLINK_KOBJECT_UEVENT`): on a real host, sysfs changes
//! (VFs created or removed, drivers bound or unbound, netdevs added or
//! removed) are announced here, not through inotify.

use netlink_sys::{protocols::NETLINK_KOBJECT_UEVENT, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The uevent socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum UeventError {
    /// Opening or binding the socket failed.
    #[error("cannot open a kernel uevent socket")]
    Open(#[source] std::io::Error),
}

/// A uevent that may change what discovery finds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uevent {
    /// `add`, `remove`, `bind`, `unbind`, `change`, `move`.
    pub action: String,
    /// `pci` or `net`.
    pub subsystem: String,
    /// Kernel device path.
    pub devpath: String,
}

/// Parses one uevent datagram (`ACTION@DEVPATH\0KEY=VALUE\0...`); `None` for
/// events that cannot affect discovery.
pub fn parse(datagram: &[u8]) -> Option<Uevent> {
    let mut fields = datagram.split(|b| *b == 0).map(String::from_utf8_lossy);
    let header = fields.next()?;
    let (_, _) = header.split_once('@')?;
    let mut event = Uevent::default();
    for field in fields {
        match field.split_once('=') {
            Some(("ACTION", v)) => event.action = v.to_string(),
            Some(("SUBSYSTEM", v)) => event.subsystem = v.to_string(),
            Some(("DEVPATH", v)) => event.devpath = v.to_string(),
            _ => {}
        }
    }
    let relevant_subsystem = matches!(event.subsystem.as_str(), "pci" | "net");
    let relevant_action = matches!(
        event.action.as_str(),
        "add" | "remove" | "bind" | "unbind" | "move"
    );
    (relevant_subsystem && relevant_action).then_some(event)
}

/// Listens for uevents, sending the relevant ones to `events`.
pub struct UeventListener {
    task: JoinHandle<()>,
}

impl UeventListener {
    /// Opens the socket (kernel multicast group 1) and starts listening.
    pub fn start(events: mpsc::UnboundedSender<Uevent>) -> Result<UeventListener, UeventError> {
        let mut socket = TokioSocket::new(NETLINK_KOBJECT_UEVENT).map_err(UeventError::Open)?;
        socket
            .socket_mut()
            .bind(&SocketAddr::new(0, 1))
            .map_err(UeventError::Open)?;
        let task = tokio::spawn(async move {
            loop {
                match socket.recv_from_full().await {
                    Ok((datagram, _)) => {
                        if let Some(event) = parse(&datagram) {
                            if events.send(event).is_err() {
                                return;
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot read uevents");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(UeventListener { task })
    }
}

impl Drop for UeventListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pci_and_net_events_only() {
        let event = parse(b"unbind@/devices/pci0000:80/0000:80:01.0/0000:84:00.2\0ACTION=unbind\0DEVPATH=/devices/pci0000:80/0000:80:01.0/0000:84:00.2\0SUBSYSTEM=pci\0SEQNUM=9\0").unwrap();
        assert_eq!(event.action, "unbind");
        assert_eq!(event.subsystem, "pci");
        assert!(parse(b"add@/devices/virtual/block/loop0\0ACTION=add\0SUBSYSTEM=block\0").is_none());
        assert!(parse(b"libudev\0junk").is_none());
    }
}
