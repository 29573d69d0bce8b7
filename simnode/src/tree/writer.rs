//! Primitive writes under a sysfs root: files, directories, kernfs-style relative symlinks, and
//! the attribute sets of PCI functions and netdevs.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::TreeError;
use crate::layout::Netdev;
use sriov_host::PciAddress;

/// The common files and links of a PCI function.
pub(super) struct Function<'a> {
    pub(super) addr: PciAddress,
    /// Root-relative directory of the function.
    pub(super) dir: PathBuf,
    pub(super) vendor: u16,
    pub(super) device: u16,
    pub(super) class: u32,
    pub(super) driver: Option<&'a str>,
    pub(super) numa: Option<u32>,
    pub(super) iommu_group: u32,
}

/// A netdev to write below a function's `net/`.
pub(super) struct NetdevFiles<'a> {
    pub(super) netdev: &'a Netdev,
    pub(super) switch_id: Option<&'a str>,
    pub(super) port_name: Option<String>,
    pub(super) up: bool,
}

pub(super) struct Tree<'a> {
    pub(super) root: &'a Path,
}

impl Tree<'_> {
    pub(super) fn dir(&self, rel: &Path) -> Result<(), TreeError> {
        let path = self.root.join(rel);
        fs::create_dir_all(&path).map_err(TreeError::io("create directory", &path))
    }

    pub(super) fn file(&self, rel: &Path, contents: &str) -> Result<(), TreeError> {
        if let Some(parent) = rel.parent() {
            self.dir(parent)?;
        }
        let path = self.root.join(rel);
        fs::write(&path, format!("{contents}\n")).map_err(TreeError::io("write", &path))
    }

    /// Creates `link` pointing at `target` (both root-relative) with a relative target, as sysfs does.
    pub(super) fn link(&self, link: &Path, target: &Path) -> Result<(), TreeError> {
        let from = link.parent().unwrap_or(Path::new(""));
        self.dir(from)?;
        let rel = relative(from, target);
        let path = self.root.join(link);
        std::os::unix::fs::symlink(&rel, &path).map_err(|source| TreeError::Symlink {
            link: path,
            target: rel,
            source,
        })
    }

    pub(super) fn function(&self, f: &Function) -> Result<(), TreeError> {
        let d = &f.dir;
        self.file(&d.join("vendor"), &format!("{:#06x}", f.vendor))?;
        self.file(&d.join("device"), &format!("{:#06x}", f.device))?;
        self.file(&d.join("class"), &format!("{:#08x}", f.class))?;
        let numa = f.numa.map_or_else(|| "-1".to_string(), |n| n.to_string());
        self.file(&d.join("numa_node"), &numa)?;
        self.link(&d.join("subsystem"), Path::new("bus/pci"))?;
        let bdf = f.addr.to_string();
        self.link(&Path::new("bus/pci/devices").join(&bdf), d)?;
        if let Some(drv) = f.driver {
            let drv_dir = Path::new("bus/pci/drivers").join(drv);
            self.link(&d.join("driver"), &drv_dir)?;
            self.link(&drv_dir.join(&bdf), d)?;
        }
        let group = Path::new("kernel/iommu_groups").join(f.iommu_group.to_string());
        self.link(&d.join("iommu_group"), &group)?;
        self.link(&group.join("devices").join(&bdf), d)?;
        Ok(())
    }

    pub(super) fn netdev(&self, fn_dir: &Path, n: &NetdevFiles) -> Result<(), TreeError> {
        let dir = fn_dir.join("net").join(&n.netdev.name);
        self.dir(&dir)?;
        self.file(&dir.join("address"), &n.netdev.mac)?;
        self.file(&dir.join("ifindex"), &n.netdev.ifindex.to_string())?;
        self.file(&dir.join("iflink"), &n.netdev.ifindex.to_string())?;
        self.file(&dir.join("type"), "1")?;
        self.file(&dir.join("addr_len"), "6")?;
        self.file(&dir.join("mtu"), "1500")?;
        self.file(&dir.join("operstate"), if n.up { "up" } else { "down" })?;
        if let Some(id) = n.switch_id {
            self.file(&dir.join("phys_switch_id"), id)?;
        }
        if let Some(name) = &n.port_name {
            self.file(&dir.join("phys_port_name"), name)?;
        }
        self.link(&dir.join("device"), fn_dir)?;
        self.link(&Path::new("class/net").join(&n.netdev.name), &dir)
    }
}

/// The relative path from directory `from` to `to`, both relative to the same root, the way
/// kernfs writes it: up to the nearest *strict* ancestor of `to` (so a netdev's `device` link
/// reads `../../../0000:84:00.0`, not `../..`).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from
        .iter()
        .zip(&to)
        .take_while(|(a, b)| a == b)
        .count()
        .min(to.len().saturating_sub(1));
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for c in &to[common..] {
        rel.push(c);
    }
    rel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links_go_through_the_common_ancestor() {
        let r = relative(
            Path::new("bus/pci/devices"),
            Path::new("devices/pci0000:80/0000:80:10.0/0000:84:00.0"),
        );
        assert_eq!(
            r,
            Path::new("../../../devices/pci0000:80/0000:80:10.0/0000:84:00.0")
        );
        let r = relative(Path::new("devices/a/pf"), Path::new("devices/a/vf"));
        assert_eq!(r, Path::new("../vf"));
        let r = relative(Path::new("devices/a/pf/net/eth0"), Path::new("devices/a/pf"));
        assert_eq!(r, Path::new("../../../pf"));
    }
}
