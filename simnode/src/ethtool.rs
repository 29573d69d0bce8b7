//! Turns TX checksum offload off on links (`ethtool -K DEV tx off`) through the SIOCETHTOOL ioctl.
//!
//! Userspace OVS never completes the partial checksums a veth leaves, so TCP through simulated
//! VFs only works with TX checksum offload off on both veth ends (see TESTBED.md). One ioctl per
//! link keeps `up` fast for a thousand links, where spawning `ethtool` would not.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// `ETHTOOL_STXCSUM` from `<linux/ethtool.h>`: set TX checksum offload.
const ETHTOOL_STXCSUM: u32 = 0x0000_0017;

/// `struct ethtool_value` from `<linux/ethtool.h>`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Errors of the ethtool ioctl and of opening its socket.
#[derive(Debug, thiserror::Error)]
pub enum EthtoolError {
    /// Opening `/run/netns/<name>` failed.
    #[error("cannot open netns {path}")]
    OpenNetns {
        /// The netns file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Entering the netns (in a helper thread) failed.
    #[error("cannot enter netns {path}")]
    EnterNetns {
        /// The netns file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// The helper thread that enters the netns panicked.
    #[error("netns helper thread for {path} panicked")]
    NetnsThread {
        /// The netns file.
        path: PathBuf,
    },
    /// Creating the control socket failed.
    #[error("cannot create ethtool control socket")]
    Socket(#[source] nix::Error),
    /// The interface name does not fit `IFNAMSIZ`.
    #[error("interface name {iface:?} is too long")]
    NameTooLong {
        /// The interface.
        iface: String,
    },
    /// The SIOCETHTOOL ioctl failed.
    #[error("cannot turn TX checksum offload off on {iface}")]
    TxCsumOff {
        /// The interface.
        iface: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// A control socket bound to one netns, for ethtool ioctls on the links of that netns.
#[derive(Debug)]
pub struct EthtoolSocket {
    fd: OwnedFd,
}

impl EthtoolSocket {
    /// Opens a socket in the named netns (`/run/netns/<name>`), or in the current one for `None`.
    ///
    /// A socket stays in the netns it was created in, so a short-lived thread enters the netns,
    /// creates it and exits; the calling thread never changes namespace.
    pub fn open(netns: Option<&str>) -> Result<EthtoolSocket, EthtoolError> {
        let Some(name) = netns else {
            return Ok(EthtoolSocket { fd: new_socket()? });
        };
        let path = PathBuf::from("/run/netns").join(name);
        let ns = File::open(&path).map_err(|source| EthtoolError::OpenNetns {
            path: path.clone(),
            source,
        })?;
        let thread_path = path.clone();
        let handle = std::thread::spawn(move || {
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|source| EthtoolError::EnterNetns {
                path: thread_path,
                source,
            })?;
            new_socket()
        });
        let fd = handle.join().map_err(|_| EthtoolError::NetnsThread { path })??;
        Ok(EthtoolSocket { fd })
    }

    /// `ethtool -K <iface> tx off`.
    pub fn tx_checksum_off(&self, iface: &str) -> Result<(), EthtoolError> {
        let name = iface.as_bytes();
        if name.len() >= libc::IFNAMSIZ {
            return Err(EthtoolError::NameTooLong {
                iface: iface.to_string(),
            });
        }
        let mut value = EthtoolValue {
            cmd: ETHTOOL_STXCSUM,
            data: 0,
        };
        // SAFETY: ifreq is plain old data; all-zero is a valid value (empty name, null union).
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(name) {
            *dst = *src as libc::c_char;
        }
        req.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
        // SAFETY: the fd is an open socket we own; `req` is a valid, NUL-terminated ifreq whose
        // data pointer refers to `value`, which outlives the call; SIOCETHTOOL reads and writes
        // only those two structs.
        let rc = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SIOCETHTOOL as _,
                &mut req as *mut libc::ifreq,
            )
        };
        if rc < 0 {
            return Err(EthtoolError::TxCsumOff {
                iface: iface.to_string(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

fn new_socket() -> Result<OwnedFd, EthtoolError> {
    socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(EthtoolError::Socket)
}
