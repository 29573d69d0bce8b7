//! The per-instance state file (`<state dir>/<prefix>/state.json`) that lets `down` work after a crash.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sriov_host::atomic::{write_atomic, AtomicWriteError};

use crate::layout::Layout;

/// Errors reading or writing instance state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// An instance with this prefix already exists (its state directory is present).
    #[error("instance {prefix:?} already exists ({dir}); run `simnode down --prefix {prefix}` first")]
    InstanceExists {
        /// The prefix.
        prefix: String,
        /// Its state directory.
        dir: PathBuf,
    },
    /// A file system step failed: `create state directory`, `read state file` or `remove state
    /// directory`.
    #[error("cannot {step} {}", path.display())]
    Io {
        /// The step.
        step: &'static str,
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing the state file failed.
    #[error("cannot write state file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: AtomicWriteError,
    },
    /// The state could not be serialized (`serialize state for`) or the state file is not
    /// valid JSON of the expected shape (`parse state file`).
    #[error("cannot {step} {}", path.display())]
    Json {
        /// The step.
        step: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// What `down` needs to undo an instance, written by `up` before it creates anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Instance prefix.
    pub prefix: String,
    /// Pid of the process that ran `up`.
    pub pid: u32,
    /// Link group holding every link of the instance.
    pub group: u32,
    /// Whether `up` created the sysfs root directory (and `down` must remove it).
    pub created_root: bool,
    /// Whether the tree lives on a tmpfs `up` mounted on the sysfs root.
    #[serde(default)]
    pub mounted: bool,
    /// The layout (complete once `up` finished; ifindex 0 while it runs).
    pub layout: Layout,
}

/// The state directory of instance `prefix`.
pub fn instance_dir(state_dir: &Path, prefix: &str) -> PathBuf {
    state_dir.join(prefix)
}

fn state_file(state_dir: &Path, prefix: &str) -> PathBuf {
    instance_dir(state_dir, prefix).join("state.json")
}

/// Creates the instance's state directory; fails if it exists (the prefix is taken).
pub fn claim(state_dir: &Path, prefix: &str) -> Result<(), StateError> {
    let create = "create state directory";
    fs::create_dir_all(state_dir).map_err(|source| StateError::Io {
        step: create,
        path: state_dir.to_path_buf(),
        source,
    })?;
    let dir = instance_dir(state_dir, prefix);
    match fs::create_dir(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(StateError::InstanceExists {
            prefix: prefix.to_string(),
            dir,
        }),
        Err(source) => Err(StateError::Io {
            step: create,
            path: dir,
            source,
        }),
    }
}

impl State {
    /// Writes the state file atomically (temp file + rename).
    pub fn write(&self, state_dir: &Path) -> Result<(), StateError> {
        let path = state_file(state_dir, &self.prefix);
        let text = serde_json::to_string_pretty(self).map_err(|source| StateError::Json {
            step: "serialize state for",
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, text.as_bytes()).map_err(|source| StateError::Write { path, source })
    }

    /// Reads the state of instance `prefix`, `None` when there is no state file.
    pub fn read(state_dir: &Path, prefix: &str) -> Result<Option<State>, StateError> {
        let path = state_file(state_dir, prefix);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                let step = "read state file";
                return Err(StateError::Io { step, path, source });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| StateError::Json {
                step: "parse state file",
                path,
                source,
            })
    }
}

/// Removes the instance's state directory and everything in it. Missing is fine.
pub fn release(state_dir: &Path, prefix: &str) -> Result<(), StateError> {
    let dir = instance_dir(state_dir, prefix);
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Io {
            step: "remove state directory",
            path: dir,
            source,
        }),
    }
}
