//! Netlink sockets (and sysctl writes) in a network namespace given by path. A socket belongs
//! to its creator thread's namespace, so a short-lived thread `setns`es, creates it and exits.

use crate::sys::Namespaces;
use nix::sched::{setns, CloneFlags};
use std::fs::File;
use std::os::fd::AsFd;
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

/// The [`NetnsError::Open`] of `path`.
fn open_failed(path: &Path) -> impl FnOnce(std::io::Error) -> NetnsError {
    let path = path.to_path_buf();
    move |source| NetnsError::Open { path, source }
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
    pub(crate) label: String,
    /// rtnetlink handle; its connection runs on the current tokio runtime.
    pub(crate) handle: rtnetlink::Handle,
    /// The namespace file, to move links into it (the host's too: links come back to it).
    pub(crate) file: File,
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
        let file = File::open(&path).map_err(open_failed(&path))?;
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
        let file = File::open(path).map_err(open_failed(path))?;
        let ns_fd = file.try_clone().map_err(open_failed(path))?;
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

    /// Another socket in the same namespace.
    pub(crate) fn reopen(&self) -> Result<Netns, NetnsError> {
        if self.is_host {
            Netns::host()
        } else {
            Netns::open(Path::new(&self.label))
        }
    }

    /// Writes `/proc/sys/<key>` as seen from this namespace.
    pub(crate) fn write_sysctl_file(&self, key: &str, value: &str) -> Result<(), NetnsError> {
        let path = PathBuf::from("/proc/sys").join(key);
        if self.is_host {
            return std::fs::write(&path, value.as_bytes())
                .map_err(|source| NetnsError::Sysctl { path, source });
        }
        let ns_fd = self
            .file
            .try_clone()
            .map_err(open_failed(Path::new(&self.label)))?;
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
