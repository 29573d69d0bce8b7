//! Replacing a file atomically: a temporary file next to it, then a rename, so readers see the
//! old content or the new one, never a part. The one way the workspace writes files that others
//! read while they change (device-info files, CDI specs, CNI state, the installed plugin binary).

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Replacing a file failed; the file itself is untouched and no temporary file is left
/// (unless only the final `sync directory` failed: the new file is in place then).
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} {}", path.display())]
pub struct AtomicWriteError {
    /// What failed: `create temporary file`, `write`, `sync`, `set the mode of`,
    /// `rename the temporary file onto` or `sync directory`.
    pub step: &'static str,
    /// The temporary file (the destination, for the rename; the directory, for `sync
    /// directory`). One path only, so that errors wrapping this one stay small.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// Replaces `path` with `bytes` (not flushed to disk; default mode). The directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AtomicWriteError> {
    replace_with(path, None, |file| file.write_all(bytes))
}

/// The temporary file the calling thread uses to replace `path`: `.<name>.<pid>.<thread>.tmp`
/// next to it. Concurrent writers (other processes, other threads) never share one; a file
/// left by a crashed writer with the same identity (an installer is pid 1 in every container)
/// is overwritten by the next write rather than kept forever.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    // `ThreadId` has no stable number; its Debug form (`ThreadId(7)`) is unique all the same.
    let thread: String = format!("{:?}", std::thread::current().id())
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    parent_dir(path).join(format!(".{name}.{}.{thread}.tmp", std::process::id()))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Replaces `path` with what `fill` writes into [`temp_path`] (the directory must exist).
/// With a `mode` (an installed binary), the new file gets that mode and is flushed to disk
/// with its directory entry (survives a power loss, not only a crash); without, it gets the
/// default mode for new files (0666 less the umask) and is not flushed.
pub fn replace_with(
    path: &Path,
    mode: Option<u32>,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), AtomicWriteError> {
    let dir = parent_dir(path);
    let temp = temp_path(path);
    let fail = |step, path: &Path| {
        let path = path.to_path_buf();
        move |source| AtomicWriteError { step, path, source }
    };
    let mut open = OpenOptions::new();
    open.write(true).create(true).truncate(true);
    if mode.is_some() {
        // Nobody may run or read a partial file before its final mode is set.
        open.mode(0o600);
    }
    let mut file = open.open(&temp).map_err(fail("create temporary file", &temp))?;
    let guard = RemoveOnDrop(Some(temp.clone()));
    fill(&mut file).map_err(fail("write", &temp))?;
    if let Some(mode) = mode {
        file.sync_all().map_err(fail("sync", &temp))?;
        fs::set_permissions(&temp, Permissions::from_mode(mode)).map_err(fail("set the mode of", &temp))?;
    }
    drop(file);
    fs::rename(&temp, path).map_err(fail("rename the temporary file onto", path))?;
    guard.disarm();
    if mode.is_some() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail("sync directory", dir))?;
    }
    Ok(())
}

/// Removes the temporary file unless the rename happened.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `file` is all `dir` holds (no temporary file left behind).
    fn only(dir: &Path, file: &str) -> bool {
        let mut entries = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name());
        entries.next().is_some_and(|n| n == file) && entries.next().is_none()
    }

    #[test]
    fn replaces_by_rename_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, b"v1").unwrap();
        // A reader holding the old file keeps seeing the old content.
        let held = File::open(&path).unwrap();
        write_atomic(&path, b"v2").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"v2");
        assert_eq!(io::read_to_string(&held).unwrap(), "v1");
        assert!(only(dir.path(), "f.json"));
    }

    #[test]
    fn durable_write_with_mode_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        replace_with(&path, Some(0o755), |f| f.write_all(b"\x7fELF")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"\x7fELF");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o755);
        assert!(only(dir.path(), "bin"));
    }

    #[test]
    fn a_failed_fill_keeps_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"old").unwrap();
        let err = replace_with(&path, None, |f| {
            f.write_all(b"par")?;
            Err(io::Error::other("source vanished"))
        })
        .unwrap_err();
        assert_eq!(err.step, "write", "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert!(only(dir.path(), "f"));
    }

    #[test]
    fn a_temp_file_left_by_a_crashed_writer_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(temp_path(&path), b"half of an older write").unwrap();
        write_atomic(&path, b"whole").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"whole");
        assert!(only(dir.path(), "f"));
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic(&dir.path().join("no/f"), b"x").unwrap_err();
        assert_eq!(err.step, "create temporary file", "{err}");
        assert!(err.path.starts_with(dir.path().join("no")), "{err}");
    }
}
