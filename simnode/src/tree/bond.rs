//! A bond's sysfs side, for nodes whose kernel has no bonding driver: the
//! bond under `devices/virtual/net/<bond>` with `bonding/mode` (e.g.
//! `802.3ad 4`) and `bonding/slaves`, `lower_<slave>` links, and each
//! slave's `master` and `upper_<bond>` links, as drivers/net/bonding and
//! net/core/dev.c (`netdev_upper_dev_link`) lay them out.

use std::fs;
use std::path::{Path, PathBuf};

use super::writer::Tree;
use super::TreeError;

/// Writes bond `bond` (mode `mode`, ifindex `ifindex`) with `slaves`
/// (netdevs already in the tree) enslaved to it.
pub fn write_bond(
    root: &Path,
    bond: &str,
    mode: &str,
    ifindex: u32,
    slaves: &[&str],
) -> Result<(), TreeError> {
    let t = Tree { root };
    let dir = Path::new("devices/virtual/net").join(bond);
    t.file(&dir.join("bonding/mode"), mode)?;
    t.file(&dir.join("bonding/slaves"), &slaves.join(" "))?;
    t.file(&dir.join("ifindex"), &ifindex.to_string())?;
    t.file(&dir.join("type"), "1")?;
    t.file(&dir.join("operstate"), "up")?;
    t.link(&Path::new("class/net").join(bond), &dir)?;
    for slave in slaves {
        let slave_dir = netdev_dir(root, slave)?;
        t.link(&slave_dir.join("master"), &dir)?;
        t.link(&slave_dir.join(format!("upper_{bond}")), &dir)?;
        t.link(&dir.join(format!("lower_{slave}")), &slave_dir)?;
    }
    Ok(())
}

/// Root-relative directory of netdev `name` (where `class/net/<name>` points).
fn netdev_dir(root: &Path, name: &str) -> Result<PathBuf, TreeError> {
    let link = root.join("class/net").join(name);
    let resolved = fs::canonicalize(&link).and_then(|dir| {
        let root = fs::canonicalize(root)?;
        dir.strip_prefix(&root)
            .map(Path::to_path_buf)
            .map_err(|_| std::io::Error::other("outside the tree"))
    });
    resolved.map_err(TreeError::io("read sysfs root", &link))
}
