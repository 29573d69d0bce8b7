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

/// `IB_UVERBS_MAJOR`, `IB_UMAD_MAJOR`: char major of verbs and MAD nodes.
const IB_MAJOR: u32 = 231;
/// First minor of `uverbsN` (`IB_UVERBS_BASE_MINOR`).
const UVERBS_BASE_MINOR: u32 = 192;
/// `uverbsN` with a fixed number (`IB_UVERBS_NUM_FIXED_MINOR`); later ones
/// take minors `N - 32` of a dynamic major.
const UVERBS_FIXED: u32 = 32;
/// `umadN`/`issmN` with fixed numbers (`IB_UMAD_NUM_FIXED_MINOR`, also the
/// first `issm` minor); later ones take minors of a dynamic major.
const UMAD_FIXED: u32 = 64;
/// `IB_UMAD_NUM_DYNAMIC_MINOR` (`RDMA_MAX_PORTS` - 64): the dynamic `issm`
/// minors follow the dynamic `umad` ones in one region.
const UMAD_DYNAMIC_MINORS: u32 = 8192 - UMAD_FIXED;
/// Stand-ins for the majors `alloc_chrdev_region` gives the
/// `infiniband_verbs` and `infiniband_mad` regions (the kernel hands them
/// out from 254 down at module load, so any free one is faithful).
const VERBS_DYNAMIC_MAJOR: u32 = 240;
const MAD_DYNAMIC_MAJOR: u32 = 241;

/// `major:minor` of `uverbsN`, `umadN` and `issmN` for device number `n`
/// (core/uverbs_main.c `ib_uverbs_add_one`, core/user_mad.c
/// `ib_umad_init_port`).
fn char_dev_numbers(n: u32) -> [String; 3] {
    let uverbs = if n < UVERBS_FIXED {
        (IB_MAJOR, UVERBS_BASE_MINOR + n)
    } else {
        (VERBS_DYNAMIC_MAJOR, n - UVERBS_FIXED)
    };
    let (umad, issm) = if n < UMAD_FIXED {
        ((IB_MAJOR, n), (IB_MAJOR, UMAD_FIXED + n))
    } else {
        let minor = n - UMAD_FIXED;
        (
            (MAD_DYNAMIC_MAJOR, minor),
            (MAD_DYNAMIC_MAJOR, UMAD_DYNAMIC_MINORS + minor),
        )
    };
    [uverbs, umad, issm].map(|(major, minor)| format!("{major}:{minor}"))
}

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
    let [uverbs, umad, issm] = char_dev_numbers(n);
    let char_devices = [
        ("infiniband_verbs", format!("uverbs{n}"), uverbs),
        ("infiniband_mad", format!("umad{n}"), umad),
        ("infiniband_mad", format!("issm{n}"), issm),
    ];
    for (class, name, numbers) in char_devices {
        let dir = fn_dir.join(class).join(&name);
        t.file(&dir.join("ibdev"), ibdev)?;
        t.file(&dir.join("dev"), &numbers)?;
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

#[cfg(test)]
mod tests {
    use super::char_dev_numbers;

    #[test]
    fn char_dev_numbers_leave_the_fixed_minors_where_the_kernel_does() {
        assert_eq!(char_dev_numbers(4), ["231:196", "231:4", "231:68"]);
        assert_eq!(char_dev_numbers(31), ["231:223", "231:31", "231:95"]);
        // uverbs32 and up: no fixed minor left (231:224 is not uverbs').
        assert_eq!(char_dev_numbers(32), ["240:0", "231:32", "231:96"]);
        // umad64 and up: issm64 would otherwise take umad's 231:128.
        assert_eq!(char_dev_numbers(64), ["240:32", "241:0", "241:8128"]);
    }
}
