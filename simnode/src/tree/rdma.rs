//! The RDMA side of an mlx5 function, as the kernel lays it out: the
//! `infiniband/mlx5_N` device (drivers/infiniband/core/device.c, parent the
//! PCI function), `infiniband_verbs/uverbsN` (core/uverbs_main.c) and
//! `infiniband_mad/umadN` + `issmN` (core/user_mad.c; `issm` only for ports
//! with an SMI on kernels since 6.10, for every port before), all with the
//! PCI function as parent and an `ibdev` file naming the RDMA device; and
//! the `rdma_cm` misc device of `rdma_ucm` (core/ucma.c).

use std::path::Path;

use super::writer::Tree;
use super::TreeError;

/// `IB_UVERBS_BASE_DEV`, `IB_UMAD_BASE_DEV`: char major of verbs and MAD nodes.
const IB_MAJOR: u32 = 231;
/// First minor of `uverbsN` (`IB_UVERBS_BASE_MINOR`).
const UVERBS_BASE_MINOR: u32 = 192;
/// First minor of `issmN` (`IB_UMAD_MINOR_BASE` + `IB_UMAD_NUM_FIXED_MINOR`).
const ISSM_BASE_MINOR: u32 = 64;

/// Writes the class-wide files: `abi_version` of the verbs and MAD classes
/// and the `rdma_cm` misc device.
pub(super) fn write_class_files(t: &Tree) -> Result<(), TreeError> {
    t.file(Path::new("class/infiniband_verbs/abi_version"), "6")?;
    t.file(Path::new("class/infiniband_mad/abi_version"), "5")?;
    t.dir(Path::new("class/infiniband"))?;
    let misc = Path::new("devices/virtual/misc/rdma_cm");
    t.file(&misc.join("dev"), "10:122")?;
    t.link(Path::new("class/misc/rdma_cm"), misc)
}

/// Writes RDMA device `ibdev` (number `n`) of the function at `fn_dir`,
/// whose port 1 carries netdev `netdev` (RoCE).
pub(super) fn write_device(
    t: &Tree,
    fn_dir: &Path,
    ibdev: &str,
    n: u32,
    netdev: &str,
) -> Result<(), TreeError> {
    let dev = fn_dir.join("infiniband").join(ibdev);
    t.file(&dev.join("node_type"), "1: CA")?;
    t.file(
        &dev.join("node_guid"),
        &format!("0c42:a103:00{:02x}:{:04x}", n >> 16, n & 0xffff),
    )?;
    let port = dev.join("ports/1");
    t.file(&port.join("link_layer"), "Ethernet")?;
    t.file(&port.join("state"), "4: ACTIVE")?;
    t.file(&port.join("gid_attrs/ndevs/0"), netdev)?;
    t.link(&dev.join("device"), fn_dir)?;
    t.link(&Path::new("class/infiniband").join(ibdev), &dev)?;
    let char_devices = [
        ("infiniband_verbs", format!("uverbs{n}"), UVERBS_BASE_MINOR + n),
        ("infiniband_mad", format!("umad{n}"), n),
        ("infiniband_mad", format!("issm{n}"), ISSM_BASE_MINOR + n),
    ];
    for (class, name, minor) in char_devices {
        let dir = fn_dir.join(class).join(&name);
        t.file(&dir.join("ibdev"), ibdev)?;
        t.file(&dir.join("dev"), &format!("{IB_MAJOR}:{minor}"))?;
        if class == "infiniband_mad" {
            t.file(&dir.join("port"), "1")?;
        } else {
            t.file(&dir.join("abi_version"), "1")?;
        }
        t.link(&dir.join("device"), fn_dir)?;
        t.link(&Path::new("class").join(class).join(&name), &dir)?;
    }
    Ok(())
}
