//! The sysfs root every lookup starts from, and the few primitive reads
//! (attribute files, symlink names, directory listings) the model is built on.

use std::io;
use std::path::{Path, PathBuf};

use crate::address::PciAddress;

/// Environment variable that overrides the sysfs root in both binaries.
pub const SYSFS_ROOT_ENV: &str = "SRIOV_SYSFS_ROOT";

/// A sysfs tree, real (`/sys`) or simulated (a directory laid out the same way).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sysfs {
    root: PathBuf,
}

impl Sysfs {
    /// A sysfs tree rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs { root: root.into() }
    }

    /// The tree a value of `SRIOV_SYSFS_ROOT` names (from an injected environment), or `/sys`
    /// when it is unset or empty.
    pub fn from_env_value(value: Option<&std::ffi::OsStr>) -> Sysfs {
        match value {
            Some(root) if !root.is_empty() => Sysfs::new(root),
            _ => Sysfs::new("/sys"),
        }
    }

    /// The root directory of this tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/bus/pci/devices`.
    pub(crate) fn pci_devices_dir(&self) -> PathBuf {
        self.root.join("bus/pci/devices")
    }

    /// `<root>/bus/pci/devices/<address>`: the function's sysfs directory
    /// (its `driver` link and, for a PF, its `virtfn` links live there).
    pub fn pci_device_dir(&self, address: &PciAddress) -> PathBuf {
        self.pci_devices_dir().join(address.to_string())
    }

    /// `<root>/class/net`.
    pub(crate) fn class_net_dir(&self) -> PathBuf {
        self.root.join("class/net")
    }
}

/// Reads an attribute file, trimmed. `Ok(None)` when the file does not exist
/// or the kernel refuses the read because the device has no such attribute
/// (EOPNOTSUPP, as virtio does for `phys_port_name`; EINVAL on some drivers).
pub(crate) fn read_attr(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string())),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The file name a symlink points at (`driver -> ../../bus/pci/drivers/mlx5_core`
/// gives `mlx5_core`). Dangling links still name their target. `Ok(None)` when
/// there is no such link.
pub(crate) fn link_target_name(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read_link(path) {
        Ok(target) => Ok(target.file_name().map(|name| name.to_string_lossy().into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Names of the entries of a directory, sorted; empty when it does not exist.
pub(crate) fn list_dir(path: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// An open sysfs directory whose entries are read relative to it (`openat`,
/// `readlinkat`): one path lookup for the directory, then one component per
/// read, instead of resolving `<root>/bus/pci/devices/<address>` (a symlink
/// into `devices/`) again for every attribute. Discovery reads a dozen
/// entries of each of a thousand functions; this is what makes it cheap.
pub(crate) struct SysDir {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl SysDir {
    /// Opens `path`; `Ok(None)` when it does not exist.
    pub(crate) fn open(path: &Path) -> io::Result<Option<SysDir>> {
        SysDir::open_from(nix::fcntl::AT_FDCWD, path, path.to_path_buf())
    }

    /// Opens the subdirectory `name`; `Ok(None)` when it does not exist.
    pub(crate) fn open_at(&self, name: &str) -> io::Result<Option<SysDir>> {
        SysDir::open_from(&self.fd, name, self.path.join(name))
    }

    fn open_from<Fd: std::os::fd::AsFd>(
        at: Fd,
        name: &(impl nix::NixPath + ?Sized),
        path: PathBuf,
    ) -> io::Result<Option<SysDir>> {
        use nix::fcntl::OFlag;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(at, name, flags, nix::sys::stat::Mode::empty()) {
            Ok(fd) => Ok(Some(SysDir { fd, path })),
            Err(nix::Error::ENOENT) | Err(nix::Error::ENOTDIR) => Ok(None),
            Err(errno) => Err(errno.into()),
        }
    }

    /// The directory's path (for error messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Names of the entries, sorted (without `.` and `..`).
    pub(crate) fn entries(&self) -> io::Result<Vec<String>> {
        use nix::fcntl::OFlag;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir = nix::dir::Dir::openat(&self.fd, ".", flags, nix::sys::stat::Mode::empty())?;
        let mut names = Vec::new();
        for entry in dir {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// [`read_attr`] of the entry `name` (which may be `a/b`).
    pub(crate) fn read_attr(&self, name: &str) -> io::Result<Option<String>> {
        use nix::fcntl::OFlag;
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::openat(&self.fd, name, flags, nix::sys::stat::Mode::empty()) {
            Ok(fd) => fd,
            Err(errno) => {
                let error = io::Error::from(errno);
                return if is_absent(&error) { Ok(None) } else { Err(error) };
            }
        };
        // Attributes are short; sysfs returns a whole attribute in one read,
        // so a read shorter than the buffer is the end.
        let mut buffer = [0u8; 4096];
        let mut bytes = Vec::new();
        loop {
            match nix::unistd::read(&fd, &mut buffer) {
                Ok(0) => break,
                Ok(n) if n < buffer.len() && bytes.is_empty() => {
                    return Ok(Some(String::from_utf8_lossy(&buffer[..n]).trim().to_string()));
                }
                Ok(n) => bytes.extend_from_slice(&buffer[..n]),
                Err(nix::Error::EINTR) => {}
                Err(errno) => {
                    let error = io::Error::from(errno);
                    return if is_absent(&error) { Ok(None) } else { Err(error) };
                }
            }
        }
        Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string()))
    }

    /// [`link_target_name`] of the entry `name`.
    pub(crate) fn link_target_name(&self, name: &str) -> io::Result<Option<String>> {
        match nix::fcntl::readlinkat(&self.fd, name) {
            Ok(target) => Ok(Path::new(&target)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())),
            Err(nix::Error::ENOENT) => Ok(None),
            Err(errno) => Err(errno.into()),
        }
    }
}

fn is_absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || matches!(
            e.raw_os_error(),
            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(libc::ENODEV)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_env_value_defaults_to_sys() {
        assert_eq!(Sysfs::from_env_value(None).root(), Path::new("/sys"));
        assert_eq!(Sysfs::from_env_value(Some("".as_ref())).root(), Path::new("/sys"));
        assert_eq!(Sysfs::from_env_value(Some("/x".as_ref())).root(), Path::new("/x"));
    }

    #[test]
    fn directory_reads_match_the_path_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("dev/net/eth0")).unwrap();
        std::fs::write(root.join("dev/vendor"), "0x15b3\n").unwrap();
        std::fs::write(root.join("dev/net/eth0/ifindex"), "7\n").unwrap();
        std::fs::write(root.join("dev/big"), "x".repeat(10_000)).unwrap();
        std::os::unix::fs::symlink("../drivers/mlx5_core", root.join("dev/driver")).unwrap();
        assert!(SysDir::open(&root.join("nope")).unwrap().is_none());
        let dir = SysDir::open(&root.join("dev")).unwrap().unwrap();
        assert_eq!(dir.entries().unwrap(), ["big", "driver", "net", "vendor"]);
        // Listing twice works (each listing reads the directory afresh).
        assert_eq!(dir.entries().unwrap().len(), 4);
        assert_eq!(dir.read_attr("vendor").unwrap().as_deref(), Some("0x15b3"));
        assert_eq!(dir.read_attr("net/eth0/ifindex").unwrap().as_deref(), Some("7"));
        assert_eq!(dir.read_attr("big").unwrap().map(|v| v.len()), Some(10_000));
        assert_eq!(dir.read_attr("nope").unwrap(), None);
        assert_eq!(
            dir.link_target_name("driver").unwrap().as_deref(),
            Some("mlx5_core")
        );
        assert_eq!(dir.link_target_name("nope").unwrap(), None);
        let net = dir.open_at("net").unwrap().unwrap();
        assert_eq!(net.path(), root.join("dev/net"));
        assert_eq!(net.entries().unwrap(), ["eth0"]);
        assert!(dir.open_at("nope").unwrap().is_none());
    }

    #[test]
    fn primitives_tolerate_missing_entries() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_attr(&dir.path().join("nope")).unwrap(), None);
        assert_eq!(link_target_name(&dir.path().join("nope")).unwrap(), None);
        assert!(list_dir(&dir.path().join("nope")).unwrap().is_empty());
        std::os::unix::fs::symlink("../gone/mlx5_core", dir.path().join("driver")).unwrap();
        assert_eq!(
            link_target_name(&dir.path().join("driver")).unwrap().as_deref(),
            Some("mlx5_core")
        );
        std::fs::write(dir.path().join("attr"), " 0x15b3\n").unwrap();
        assert_eq!(
            read_attr(&dir.path().join("attr")).unwrap().as_deref(),
            Some("0x15b3")
        );
    }
}
