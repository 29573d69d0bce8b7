//! inotify on directories, as an async stream of events: the device-plugin
//! directory (kubelet restarts, our sockets removed), the config file's
//! directory (ConfigMap updates swap a `..data` symlink), and sysfs
//! directories of the simulated tree (VF count, driver binds).
//!
//! Registering the inotify descriptor with tokio's reactor is the one unsafe
//! call of this crate.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// inotify could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// `inotify_init1` failed.
    #[error("cannot create an inotify instance")]
    Init(#[source] nix::Error),
    /// `inotify_add_watch` failed.
    #[error("cannot watch {}", path.display())]
    AddWatch {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// Registering with the runtime failed.
    #[error("cannot register the inotify descriptor with tokio")]
    Register(#[source] std::io::Error),
}

/// One change in a watched directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsEvent {
    /// The watched directory.
    pub dir: PathBuf,
    /// The entry that changed (`None` for the directory itself).
    pub name: Option<OsString>,
    /// What happened.
    pub mask: AddWatchFlags,
}

impl FsEvent {
    /// True when the entry appeared (created or moved in).
    pub fn created(&self) -> bool {
        self.mask
            .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
    }

    /// True when the entry went away (deleted or moved out).
    pub fn removed(&self) -> bool {
        self.mask
            .intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM)
    }

    /// True when the entry is named `name`.
    pub fn is(&self, name: &str) -> bool {
        self.name.as_deref().is_some_and(|n| n == name)
    }
}

/// Entries created, deleted, moved or written.
fn dir_changes() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_CLOSE_WRITE
}

struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A set of watched directories whose events are sent to a channel until
/// the watcher is dropped.
pub struct DirWatcher {
    task: JoinHandle<()>,
}

impl DirWatcher {
    /// Watches `dirs` for entries created, deleted, moved or written
    /// (missing directories are skipped with a debug log) and sends their
    /// events to `events`.
    pub fn start(dirs: &[PathBuf], events: mpsc::UnboundedSender<FsEvent>) -> Result<DirWatcher, WatchError> {
        let inotify =
            Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(WatchError::Init)?;
        let mut watches: HashMap<WatchDescriptor, PathBuf> = HashMap::new();
        for dir in dirs {
            match inotify.add_watch(dir.as_path(), dir_changes()) {
                Ok(wd) => {
                    watches.insert(wd, dir.clone());
                }
                Err(nix::Error::ENOENT) | Err(nix::Error::ENOTDIR) => {
                    tracing::debug!(dir = %dir.display(), "not watching missing directory");
                }
                Err(source) => {
                    return Err(WatchError::AddWatch {
                        path: dir.clone(),
                        source,
                    })
                }
            }
        }
        // SAFETY: `InotifyFd` owns the descriptor (it is `Inotify`'s own fd,
        // closed only when `Inotify` drops), it moves into the `AsyncFd` and
        // is never closed or replaced while registered; `as_raw_fd` always
        // returns that same descriptor.
        let fd =
            unsafe { AsyncFd::register(InotifyFd(inotify)) }.map_err(|e| WatchError::Register(e.into()))?;
        let task = tokio::spawn(async move {
            loop {
                let mut guard = match fd.readable().await {
                    Ok(guard) => guard,
                    Err(error) => {
                        tracing::error!(%error, "inotify descriptor failed");
                        return;
                    }
                };
                match guard.get_inner().0.read_events() {
                    Ok(batch) => {
                        for event in batch {
                            let Some(dir) = watches.get(&event.wd) else {
                                continue;
                            };
                            let fs_event = FsEvent {
                                dir: dir.clone(),
                                name: event.name,
                                mask: event.mask,
                            };
                            if events.send(fs_event).is_err() {
                                return;
                            }
                        }
                    }
                    Err(nix::Error::EAGAIN) => guard.clear_ready(),
                    Err(error) => {
                        tracing::error!(%error, "cannot read inotify events");
                        return;
                    }
                }
            }
        });
        Ok(DirWatcher { task })
    }
}

impl Drop for DirWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sysfs directories whose changes mean "discover again" in a simulated tree
/// (real sysfs does not emit inotify events; there uevents do the job).
pub fn sysfs_dirs(root: &Path, pfs: &[PathBuf], devices: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = vec![root.join("bus/pci/devices"), root.join("class/net")];
    for pf in pfs {
        dirs.push(pf.clone());
        dirs.push(pf.join("net"));
    }
    dirs.extend_from_slice(devices);
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_created_and_removed_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _watcher =
            DirWatcher::start(&[tmp.path().to_path_buf(), tmp.path().join("missing")], tx).unwrap();
        std::fs::write(tmp.path().join("kubelet.sock"), b"").unwrap();
        let event = rx.recv().await.unwrap();
        assert!(event.created() && event.is("kubelet.sock"), "{event:?}");
        std::fs::remove_file(tmp.path().join("kubelet.sock")).unwrap();
        loop {
            let event = rx.recv().await.unwrap();
            if event.removed() {
                assert!(event.is("kubelet.sock"));
                break;
            }
        }
    }
}
