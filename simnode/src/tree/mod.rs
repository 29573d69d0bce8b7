//! Writes (and removes) the mlx5-shaped sysfs tree of a layout, relative symlinks included.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::layout::{Decoy, Layout, PfLayout, VfLayout};
use crate::spec::Model;
use sriov_host::EswitchMode;
use sriov_host::PciAddress;

mod bond;
mod rdma;
mod writer;

pub use bond::write_bond;

use writer::{Function, NetdevFiles, Tree};

/// The top-level directories `up` creates under the sysfs root; `remove_tree` removes only these.
pub const TOP_DIRS: [&str; 4] = ["bus", "class", "devices", "kernel"];
/// Marker file naming the instance that owns a tree: lets a crash recovery check before deleting.
pub const MARKER: &str = ".simnode-prefix";

/// Errors writing or removing the tree.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The sysfs root exists and is not an empty directory.
    #[error("sysfs root {path} exists and is not an empty directory")]
    RootNotEmpty {
        /// The root.
        path: PathBuf,
    },
    /// A file system step failed: `read sysfs root`, `create directory`, `write` or `remove`.
    #[error("cannot {step} {path}")]
    Io {
        /// The step.
        step: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Creating a symlink failed.
    #[error("cannot link {link} -> {target}")]
    Symlink {
        /// The link.
        link: PathBuf,
        /// Its (relative) target.
        target: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Mirroring a netdev rename failed.
    #[error("cannot rename netdev {} to {to}", .link.display())]
    Rename {
        /// The netdev's `class/net/<name>` link.
        link: PathBuf,
        /// New name.
        to: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl TreeError {
    /// [`TreeError::Io`] of `step` on `path`.
    pub fn io(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> TreeError {
        let path = path.to_path_buf();
        move |source| TreeError::Io { step, path, source }
    }
}

/// Mirrors a kernel rename of netdev `from` to `to`: real sysfs shows a netdev under its current
/// name (its `net/<name>` directory and `class/net/<name>` link), the written tree only when told.
pub fn rename_netdev(root: &Path, from: &str, to: &str) -> Result<(), TreeError> {
    let class = Path::new("class/net");
    let old_link = root.join(class).join(from);
    let err = |source| TreeError::Rename {
        link: old_link.clone(),
        to: to.to_string(),
        source,
    };
    let target = fs::read_link(&old_link).map_err(err)?;
    let old_dir = root.join(class).join(&target);
    let new_target = target.with_file_name(to);
    fs::rename(&old_dir, root.join(class).join(&new_target)).map_err(err)?;
    fs::remove_file(&old_link).map_err(err)?;
    std::os::unix::fs::symlink(&new_target, root.join(class).join(to)).map_err(err)
}

/// Checks the root is absent or an empty directory. Returns whether it must be created.
pub fn check_root(root: &Path) -> Result<bool, TreeError> {
    match fs::read_dir(root) {
        Ok(mut entries) => match entries.next() {
            None => Ok(false),
            Some(_) => Err(TreeError::RootNotEmpty {
                path: root.to_path_buf(),
            }),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(source) => Err(TreeError::io("read sysfs root", root)(source)),
    }
}

/// Writes the whole tree of `layout` under `layout.sysfs_root` (which exists and is empty).
pub fn write_tree(layout: &Layout) -> Result<(), TreeError> {
    let t = Tree {
        root: &layout.sysfs_root,
    };
    t.file(Path::new(MARKER), &layout.prefix)?;
    for d in [
        "bus/pci/devices",
        "bus/pci/drivers",
        "class/net",
        "kernel/iommu_groups",
    ] {
        t.dir(Path::new(d))?;
    }
    for drv in ["mlx5_core", "vfio-pci", "virtio-pci", "nvme", "pcieport"] {
        t.dir(&Path::new("bus/pci/drivers").join(drv))?;
    }
    for pf in &layout.pfs {
        if pf.port == 0 {
            if let Some(bridge) = bridge_of(pf.pci.bus, pf.card) {
                t.function(&Function {
                    addr: bridge,
                    dir: parent_dir(bridge.bus, None).join(bridge.to_string()),
                    vendor: 0x8086,
                    device: 0x2030,
                    class: 0x060400,
                    driver: Some("pcieport"),
                    numa: layout.numa_node,
                    iommu_group: 100 + pf.card,
                })?;
            }
        }
        write_pf(&t, layout, pf)?;
    }
    for decoy in &layout.decoys {
        write_decoy(&t, decoy)?;
    }
    if layout.vfs().any(|vf| vf.rdma.is_some()) {
        rdma::write_class_files(&t)?;
    }
    Ok(())
}

/// Removes the tree written by `write_tree` (only the top directories and the marker), then the
/// root itself when `remove_root` (it was created by `up`). Missing parts are not an error.
pub fn remove_tree(root: &Path, remove_root: bool) -> Result<(), TreeError> {
    for d in TOP_DIRS {
        remove_if_present(root.join(d), fs::remove_dir_all)?;
    }
    remove_if_present(root.join(MARKER), fs::remove_file)?;
    if remove_root {
        remove_if_present(root.to_path_buf(), fs::remove_dir)?;
    }
    Ok(())
}

/// The prefix recorded in the tree's marker file, if the tree has one.
pub fn marker_prefix(root: &Path) -> Option<String> {
    fs::read_to_string(root.join(MARKER)).ok()
}

fn remove_if_present(path: PathBuf, remove: fn(PathBuf) -> io::Result<()>) -> Result<(), TreeError> {
    match remove(path.clone()) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(TreeError::io("remove", &path)(e)),
        _ => Ok(()),
    }
}

/// The root port above a card's bus, `None` when the card sits on a root bus itself.
fn bridge_of(bus: u8, card: u32) -> Option<PciAddress> {
    let root = root_bus(bus);
    (root != bus).then(|| PciAddress {
        domain: 0,
        bus: root,
        device: 0x10 + (card as u8 & 0x0f),
        function: 0,
    })
}

fn root_bus(bus: u8) -> u8 {
    bus & 0xe0
}

/// Root-relative directory holding the functions of `bus` (below the card's root port).
fn parent_dir(bus: u8, card: Option<u32>) -> PathBuf {
    let root = root_bus(bus);
    let host = PathBuf::from(format!("devices/pci0000:{root:02x}"));
    match card.and_then(|c| bridge_of(bus, c)) {
        Some(bridge) => host.join(bridge.to_string()),
        None => host,
    }
}

fn write_pf(t: &Tree, layout: &Layout, pf: &PfLayout) -> Result<(), TreeError> {
    let parent = parent_dir(pf.pci.bus, Some(pf.card));
    let dir = parent.join(pf.pci.to_string());
    t.function(&Function {
        addr: pf.pci,
        dir: dir.clone(),
        vendor: Model::VENDOR,
        device: layout.model.pf_device_id(),
        class: 0x020000,
        driver: Some("mlx5_core"),
        numa: layout.numa_node,
        iommu_group: pf.iommu_group,
    })?;
    let numvfs = pf.vfs.len().to_string();
    let offset = pf.vfs.first().map_or(0, |vf| vf.pci.rid() - pf.pci.rid());
    for (name, value) in [
        ("sriov_totalvfs", "127"),
        ("sriov_numvfs", numvfs.as_str()),
        ("sriov_offset", offset.to_string().as_str()),
        ("sriov_stride", "1"),
        ("sriov_drivers_autoprobe", "1"),
        (
            "sriov_vf_device",
            format!("{:x}", layout.model.vf_device_id()).as_str(),
        ),
    ] {
        t.file(&dir.join(name), value)?;
    }
    t.dir(&dir.join("net"))?;
    // In legacy mode mlx5 reports no switch ID (reading phys_switch_id fails); the uplink's
    // devlink port still names it `p<P>`.
    let switchdev = layout.eswitch == EswitchMode::Switchdev;
    let uplink = NetdevFiles {
        netdev: &pf.uplink,
        switch_id: switchdev.then_some(pf.switch_id.as_str()),
        port_name: Some(format!("p{}", pf.port)),
        up: true,
    };
    t.netdev(&dir, &uplink)?;
    let mode_dir = dir.join("net").join(&pf.uplink.name).join("compat/devlink");
    t.file(&mode_dir.join("mode"), layout.eswitch.as_str())?;
    for vf in &pf.vfs {
        write_vf(t, layout, pf, &parent, vf)?;
        if let (EswitchMode::Switchdev, Some(rep)) = (layout.eswitch, &vf.representor) {
            let files = NetdevFiles {
                netdev: rep,
                switch_id: Some(&pf.switch_id),
                port_name: vf.port_name.clone(),
                up: true,
            };
            t.netdev(&dir, &files)?;
        }
    }
    Ok(())
}

fn write_vf(t: &Tree, layout: &Layout, pf: &PfLayout, parent: &Path, vf: &VfLayout) -> Result<(), TreeError> {
    let pf_dir = parent.join(pf.pci.to_string());
    let dir = parent.join(vf.pci.to_string());
    t.function(&Function {
        addr: vf.pci,
        dir: dir.clone(),
        vendor: Model::VENDOR,
        device: layout.model.vf_device_id(),
        class: 0x020000,
        driver: vf.driver.as_deref(),
        numa: layout.numa_node,
        iommu_group: vf.iommu_group,
    })?;
    t.link(&pf_dir.join(format!("virtfn{}", vf.vf_index)), &dir)?;
    t.link(&dir.join("physfn"), &pf_dir)?;
    if vf.driver.is_some() {
        t.dir(&dir.join("net"))?;
    }
    if let Some(netdev) = &vf.netdev {
        let files = NetdevFiles {
            netdev,
            switch_id: None,
            port_name: None,
            up: false,
        };
        t.netdev(&dir, &files)?;
        if let Some((ibdev, number)) = &vf.rdma {
            rdma::write_device(t, &dir, ibdev, *number, &netdev.name)?;
        }
    }
    Ok(())
}

fn write_decoy(t: &Tree, decoy: &Decoy) -> Result<(), TreeError> {
    let dir = parent_dir(decoy.pci.bus, None).join(decoy.pci.to_string());
    t.function(&Function {
        addr: decoy.pci,
        dir: dir.clone(),
        vendor: decoy.vendor,
        device: decoy.device,
        class: decoy.class,
        driver: Some(&decoy.driver),
        numa: None,
        iommu_group: decoy.iommu_group,
    })?;
    if let Some(name) = &decoy.netdev {
        // virtio-net: the netdev belongs to the virtio device below the PCI function,
        // has no phys_port_name / phys_switch_id and no ifindex of a real link here.
        let virtio = dir.join("virtio0");
        let ndir = virtio.join("net").join(name);
        t.dir(&ndir)?;
        t.file(&ndir.join("address"), "52:54:00:12:34:56")?;
        t.file(&ndir.join("type"), "1")?;
        t.file(&ndir.join("operstate"), "up")?;
        t.link(&ndir.join("device"), &virtio)?;
        t.link(&Path::new("class/net").join(name), &ndir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_on_a_root_bus_have_no_bridge() {
        assert_eq!(bridge_of(0x84, 0).unwrap().to_string(), "0000:80:10.0");
        assert!(bridge_of(0xa0, 0).is_none());
        assert_eq!(parent_dir(0xa0, Some(0)), Path::new("devices/pci0000:a0"));
    }
}
