//! Netlink sockets (and sysctl writes) in a network namespace given by path.
//!
//! A socket belongs to the namespace of the thread that created it, so a short-lived dedicated
//! thread joins the namespace with `setns`, creates the socket and exits; the process's own
//! threads never change namespace. Per-namespace sysctls are written the same way.

use crate::ipnet::IpNet;
use crate::mac::MacAddr;
use crate::netlink::addr::{self, AddrError};
use crate::netlink::link::{self, Link, LinkError};
use crate::result::{IpConfig, Route};
use crate::sys::{Namespaces, Net};
use nix::sched::{setns, CloneFlags};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

/// A namespace step failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace file cannot be opened.
    #[error("cannot open network namespace {path}")]
    Open {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// `setns` refused the file (not a network namespace?).
    #[error("cannot enter network namespace {path}")]
    Enter {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: nix::Error,
    },
    /// The netlink socket could not be created.
    #[error("cannot open a netlink socket in {path}")]
    Netlink {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A sysctl could not be written.
    #[error("cannot write sysctl {path}")]
    Sysctl {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The helper thread died.
    #[error("namespace helper thread for {path} panicked")]
    Thread {
        /// Path.
        path: PathBuf,
    },
}

impl crate::error::ErrorCode for NetnsError {
    fn code(&self) -> u32 {
        match self {
            NetnsError::Open { .. } | NetnsError::Enter { .. } => crate::error::code::INVALID_ENV,
            _ => crate::error::code::NETLINK,
        }
    }
}

/// Sockets in one network namespace: the production [`Net`].
#[derive(Debug)]
pub struct Netns {
    /// Namespace label for logs and errors (`host` or the path).
    label: String,
    /// rtnetlink handle; its connection runs on the current tokio runtime.
    handle: rtnetlink::Handle,
    /// The namespace file, to move links into it (the host's too: links come back to it).
    file: File,
    /// Whether this is the host namespace (sysctls are written from the current thread).
    is_host: bool,
}

/// The production [`Namespaces`]: namespaces of the running kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kernel;

impl Namespaces for Kernel {
    type Net = Netns;

    fn host(&self) -> Result<Netns, NetnsError> {
        Netns::host()
    }

    fn open(&self, path: &Path) -> Result<Netns, NetnsError> {
        Netns::open(path)
    }
}

impl Netns {
    /// The current (host) namespace. Must be called inside a tokio runtime.
    pub fn host() -> Result<Netns, NetnsError> {
        let path = PathBuf::from("/proc/thread-self/ns/net");
        let file = File::open(&path).map_err(|source| NetnsError::Open {
            path: path.clone(),
            source,
        })?;
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|source| NetnsError::Netlink { path, source })?;
        tokio::spawn(conn);
        Ok(Netns {
            label: "host".into(),
            handle,
            file,
            is_host: true,
        })
    }

    /// The namespace at `path`. Must be called inside a tokio runtime.
    pub fn open(path: &Path) -> Result<Netns, NetnsError> {
        let file = File::open(path).map_err(|source| NetnsError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let ns_fd = file.try_clone().map_err(|source| NetnsError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let runtime = tokio::runtime::Handle::current();
        let owned = path.to_path_buf();
        let joined = std::thread::spawn(move || {
            setns(ns_fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter {
                path: owned.clone(),
                source,
            })?;
            let _enter = runtime.enter();
            let (conn, handle, _) = rtnetlink::new_connection().map_err(|source| NetnsError::Netlink {
                path: owned.clone(),
                source,
            })?;
            Ok::<_, NetnsError>((conn, handle))
        })
        .join()
        .map_err(|_| NetnsError::Thread {
            path: path.to_path_buf(),
        })?;
        let (conn, handle) = joined?;
        tokio::spawn(conn);
        Ok(Netns {
            label: path.display().to_string(),
            handle,
            file,
            is_host: false,
        })
    }
}

impl Net for Netns {
    fn label(&self) -> &str {
        &self.label
    }

    async fn links(&self) -> Result<Vec<Link>, LinkError> {
        link::list(&self.handle, &self.label).await
    }

    async fn link_by_name(&self, name: &str) -> Result<Option<Link>, LinkError> {
        link::by_name(&self.handle, &self.label, name).await
    }

    async fn link_by_index(&self, index: u32) -> Result<Option<Link>, LinkError> {
        link::by_index(&self.handle, &self.label, index).await
    }

    async fn set_up(&self, l: &Link, up: bool) -> Result<(), LinkError> {
        link::set_up(&self.handle, l, up).await
    }

    async fn rename(&self, l: &Link, to: &str) -> Result<(), LinkError> {
        link::rename(&self.handle, l, to).await
    }

    async fn set_mac(&self, l: &Link, mac: MacAddr) -> Result<(), LinkError> {
        link::set_mac(&self.handle, l, mac).await
    }

    async fn set_mtu(&self, l: &Link, mtu: u32) -> Result<(), LinkError> {
        link::set_mtu(&self.handle, l, mtu).await
    }

    async fn set_alias(&self, l: &Link, alias: &str) -> Result<(), LinkError> {
        link::set_alias(&self.handle, l, alias).await
    }

    async fn del_altname(&self, l: &Link, altname: &str) -> Result<(), LinkError> {
        link::del_altname(&self.handle, l, altname).await
    }

    async fn move_to(&self, l: &Link, to: &Netns) -> Result<(), LinkError> {
        link::move_to_netns(&self.handle, l, to.file.as_raw_fd(), &to.label).await
    }

    async fn add_address(&self, l: &Link, a: IpNet) -> Result<(), AddrError> {
        addr::add_address(&self.handle, &l.name, l.index, a).await
    }

    async fn addresses(&self, l: &Link) -> Result<Vec<IpNet>, AddrError> {
        addr::addresses(&self.handle, &l.name, l.index).await
    }

    async fn add_route(&self, l: &Link, route: &Route, ips: &[IpConfig]) -> Result<(), AddrError> {
        addr::add_route(&self.handle, &l.name, l.index, route, ips).await
    }

    fn another_socket(&self) -> Result<Netns, NetnsError> {
        if self.is_host {
            Netns::host()
        } else {
            Netns::open(Path::new(&self.label))
        }
    }

    fn write_sysctl(&self, key: &str, value: &str) -> Result<(), NetnsError> {
        let path = PathBuf::from("/proc/sys").join(key);
        if self.is_host {
            return std::fs::write(&path, value.as_bytes())
                .map_err(|source| NetnsError::Sysctl { path, source });
        }
        let ns_fd = self.file.try_clone().map_err(|source| NetnsError::Open {
            path: PathBuf::from(&self.label),
            source,
        })?;
        let (label, target, value) = (PathBuf::from(&self.label), path.clone(), value.to_string());
        std::thread::spawn(move || {
            setns(ns_fd.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|source| NetnsError::Enter { path: label, source })?;
            std::fs::write(&target, value.as_bytes())
                .map_err(|source| NetnsError::Sysctl { path: target, source })
        })
        .join()
        .map_err(|_| NetnsError::Thread { path })?
    }
}
