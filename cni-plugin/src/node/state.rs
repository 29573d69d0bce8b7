//! The state directory: attachment records (atomic writes), the per-VF lock and owner record.

use super::record::{self, AttachmentRecord, DecodeError};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sriov_host::PciAddress;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Who holds a VF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VfOwner {
    /// Container ID.
    pub container_id: String,
    /// Interface name.
    pub ifname: String,
    /// Netns path.
    pub netns: String,
}

/// A state file step failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file system step failed.
    #[error("cannot {step} {path}")]
    Io {
        /// What failed, e.g. `write state file`.
        step: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Replacing a file failed.
    #[error("cannot write state file {path}")]
    Persist {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: sriov_host::atomic::AtomicWriteError,
    },
    /// A file holds garbage.
    #[error("state file {path} is corrupt")]
    Corrupt {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: DecodeError,
    },
    /// The lock stayed busy.
    #[error("VF lock {path} still held by another sriov-ovs after {waited:?}")]
    LockBusy {
        /// Path.
        path: PathBuf,
        /// Waited for.
        waited: Duration,
    },
    /// flock failed.
    #[error("cannot lock {path}")]
    Lock {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: Errno,
    },
}

/// The [`StateError::Io`] of `step` on `path`.
fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.to_path_buf();
    move |source| StateError::Io { step, path, source }
}

impl crate::error::ErrorCode for StateError {
    fn code(&self) -> u32 {
        match self {
            StateError::LockBusy { .. } => crate::error::code::TRY_AGAIN_LATER,
            _ => crate::error::code::STATE,
        }
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// An exclusive lock on one VF, released on drop.
pub type VfLock = Flock<File>;

fn sanitize(s: &str) -> String {
    s.replace(|c: char| !c.is_ascii_alphanumeric() && !"-_.".contains(c), "_")
}

impl StateDir {
    /// A state directory at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    fn attachments_dir(&self) -> PathBuf {
        self.root.join("attachments")
    }

    fn vfs_dir(&self) -> PathBuf {
        self.root.join("vfs")
    }

    fn attachment_path(&self, container_id: &str, ifname: &str) -> PathBuf {
        self.attachments_dir()
            .join(format!("{}.{}.json", sanitize(container_id), sanitize(ifname)))
    }

    fn owner_path(&self, pci: &PciAddress) -> PathBuf {
        self.vfs_dir()
            .join(format!("{}.owner.json", sanitize(&pci.to_string())))
    }

    fn ensure(&self, dir: &Path) -> Result<(), StateError> {
        fs::create_dir_all(dir).map_err(io("create state directory", dir))
    }

    /// Takes the VF's lock, waiting up to `timeout` without blocking the thread (the node
    /// server runs many requests on few threads; another process may hold the lock).
    pub async fn lock_vf(&self, pci: &PciAddress, timeout: Duration) -> Result<VfLock, StateError> {
        let dir = self.vfs_dir();
        self.ensure(&dir)?;
        let path = dir.join(format!("{}.lock", sanitize(&pci.to_string())));
        let start = Instant::now();
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io("open VF lock", &path))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(lock),
                Err((_, Errno::EWOULDBLOCK)) if start.elapsed() < timeout => {
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(StateError::LockBusy {
                        path,
                        waited: start.elapsed(),
                    })
                }
                Err((_, source)) => return Err(StateError::Lock { path, source }),
            }
        }
    }

    /// Writes the attachment record atomically.
    pub fn save(&self, rec: &AttachmentRecord) -> Result<(), StateError> {
        let path = self.attachment_path(&rec.container_id, &rec.ifname);
        self.write(&self.attachments_dir(), &path, record::encode(rec))
    }

    /// Writes `bytes` to `path` in `dir` atomically.
    // No fsync: the records must survive a crash of the plugin (the page cache does), not a power
    // loss, after which every pod namespace and VF assignment is gone anyway; a record torn by one
    // reads as corrupt and release then falls back to the VF given.
    fn write(&self, dir: &Path, path: &Path, bytes: serde_json::Result<Vec<u8>>) -> Result<(), StateError> {
        self.ensure(dir)?;
        let bytes = bytes.map_err(|e| io("write state file", path)(e.into()))?;
        sriov_host::atomic::write_atomic(path, &bytes).map_err(|source| StateError::Persist {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads an attachment record; `None` when absent.
    pub fn load(&self, container_id: &str, ifname: &str) -> Result<Option<AttachmentRecord>, StateError> {
        read_with(&self.attachment_path(container_id, ifname), record::decode)
    }

    /// Removes an attachment record; absent is fine.
    pub fn remove(&self, container_id: &str, ifname: &str) -> Result<(), StateError> {
        remove(&self.attachment_path(container_id, ifname))
    }

    /// Every attachment record (corrupt ones are skipped with a warning).
    pub fn list(&self) -> Result<Vec<AttachmentRecord>, StateError> {
        let dir = self.attachments_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("read state file", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match read_with(&path, record::decode) {
                Ok(Some(rec)) => out.push(rec),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = &err as &dyn std::error::Error, "skipping unreadable state file")
                }
            }
        }
        Ok(out)
    }

    /// Reads the VF's owner record.
    pub fn owner(&self, pci: &PciAddress) -> Result<Option<VfOwner>, StateError> {
        read_with(&self.owner_path(pci), |b| {
            serde_json::from_slice(b).map_err(DecodeError::Json)
        })
    }

    /// Writes the VF's owner record.
    pub fn set_owner(&self, pci: &PciAddress, owner: &VfOwner) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(owner);
        self.write(&self.vfs_dir(), &self.owner_path(pci), bytes)
    }

    /// Removes the VF's owner record.
    pub fn clear_owner(&self, pci: &PciAddress) -> Result<(), StateError> {
        remove(&self.owner_path(pci))
    }
}

fn read_with<T>(
    path: &Path,
    decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
) -> Result<Option<T>, StateError> {
    match fs::read(path) {
        Ok(bytes) => decode(&bytes).map(Some).map_err(|source| StateError::Corrupt {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read state file", path)(e)),
    }
}

fn remove(path: &Path) -> Result<(), StateError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove state file", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cid: &str) -> AttachmentRecord {
        let mut rec = record::decode(include_bytes!("../../tests/data/attachment-v1.json")).unwrap();
        rec.container_id = cid.into();
        rec
    }

    fn pci(s: &str) -> PciAddress {
        s.parse().unwrap()
    }

    #[test]
    fn save_load_list_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path().join("state"));
        assert!(s.load("c1", "net1").unwrap().is_none());
        s.save(&record("c1")).unwrap();
        s.save(&record("c/2")).unwrap();
        assert_eq!(s.load("c1", "net1").unwrap().unwrap(), record("c1"));
        assert_eq!(s.list().unwrap().len(), 2);
        s.remove("c1", "net1").unwrap();
        s.remove("c1", "net1").unwrap();
        assert_eq!(s.list().unwrap().len(), 1);
    }

    #[test]
    fn a_version_1_file_in_the_state_dir_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        fs::create_dir_all(dir.path().join("attachments")).unwrap();
        fs::copy(
            "tests/data/attachment-v1.json",
            dir.path().join("attachments/e2e0b3c4d5.net1.json"),
        )
        .unwrap();
        let rec = s.load("e2e0b3c4d5", "net1").unwrap().unwrap();
        assert_eq!(rec.pci, pci("0000:84:00.2"));
        assert_eq!(s.list().unwrap(), vec![rec]);
    }

    #[test]
    fn lock_is_exclusive_and_times_out_with_try_again_later() {
        use crate::error::ErrorCode;
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        let lock = |p: &str, ms: u64| crate::fake_ovs::block(s.lock_vf(&pci(p), Duration::from_millis(ms)));
        let held = lock("0000:84:00.2", 1000).unwrap();
        let err = lock("0000:84:00.2", 20).unwrap_err();
        assert_eq!(err.code(), 11);
        let _other = lock("0000:84:00.3", 20).unwrap();
        drop(held);
        lock("0000:84:00.2", 20).unwrap();
    }

    #[test]
    fn owner_record_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        let o = VfOwner {
            container_id: "c".into(),
            ifname: "eth0".into(),
            netns: "/n".into(),
        };
        s.set_owner(&pci("0000:84:00.2"), &o).unwrap();
        assert_eq!(s.owner(&pci("0000:84:00.2")).unwrap().unwrap(), o);
        s.clear_owner(&pci("0000:84:00.2")).unwrap();
        assert!(s.owner(&pci("0000:84:00.2")).unwrap().is_none());
    }
}
