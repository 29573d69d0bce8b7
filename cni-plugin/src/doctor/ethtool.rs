//! Reads a netdev's ethtool feature flags (what `ethtool -k DEV` shows) through the SIOCETHTOOL
//! ioctl: the feature names (`ETHTOOL_GSTRINGS` of `ETH_SS_FEATURES`), then their bits
//! (`ETHTOOL_GFEATURES`). Read-only; works in the caller's network namespace.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;
/// Far above the kernel's feature count (NETDEV_FEATURE_COUNT, 64 bits at most today).
const MAX_FEATURES: usize = 1024;

/// `struct ethtool_sset_info` asking for one string set: the kernel writes one `data` word.
#[repr(C)]
struct SsetInfo {
    cmd: u32,
    reserved: u32,
    sset_mask: u64,
    data: [u32; 1],
}

/// One feature's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    /// The device lets it be changed (`ethtool -k` shows no `[fixed]`).
    pub available: bool,
    /// It is on.
    pub active: bool,
}

/// Reading features failed.
#[derive(Debug, thiserror::Error)]
pub enum EthtoolError {
    /// The control socket could not be opened.
    #[error("cannot open an ethtool control socket")]
    Socket(#[source] nix::Error),
    /// The name does not fit `IFNAMSIZ`.
    #[error("interface name {iface:?} is too long")]
    NameTooLong {
        /// The interface.
        iface: String,
    },
    /// An ioctl failed (ENODEV: no such netdev here).
    #[error("ethtool {request} on {iface} failed")]
    Ioctl {
        /// The interface.
        iface: String,
        /// The request, e.g. `ETHTOOL_GFEATURES`.
        request: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `struct ifreq` with `ifr_data`, padded to the kernel's 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// The state of feature `name` (e.g. `hw-tc-offload`) on `iface`; `None` when the kernel has no
/// feature of that name.
pub fn feature(iface: &str, name: &str) -> Result<Option<Feature>, EthtoolError> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(EthtoolError::Socket)?;
    let count = feature_count(&fd, iface)?;
    // GSTRINGS writes as many names as the kernel has, whatever `len` says: never ask with a
    // buffer sized for none (the kernel would overrun it), nor trust an absurd count.
    if count == 0 || count > MAX_FEATURES {
        return Ok(None);
    }
    // ethtool_gstrings: cmd, string_set, len, then len * 32 bytes; u32 words keep it aligned.
    let mut strings = vec![0u32; 3 + count * ETH_GSTRING_LEN / 4];
    strings[0] = ETHTOOL_GSTRINGS;
    strings[1] = ETH_SS_FEATURES;
    strings[2] = count as u32;
    ioctl(&fd, iface, "ETHTOOL_GSTRINGS", strings.as_mut_ptr().cast())?;
    if strings[2] as usize != count {
        // The set changed size between the two requests: the names do not line up with bits.
        return Ok(None);
    }
    let bytes: Vec<u8> = strings[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
    let Some(index) = bytes.chunks(ETH_GSTRING_LEN).position(|s| {
        let end = s.iter().position(|b| *b == 0).unwrap_or(s.len());
        s.get(..end) == Some(name.as_bytes())
    }) else {
        return Ok(None);
    };
    // ethtool_gfeatures: cmd, size, then `size` blocks of {available, requested, active, never_changed}.
    let blocks = count.div_ceil(32);
    let mut features = vec![0u32; 2 + blocks * 4];
    features[0] = ETHTOOL_GFEATURES;
    features[1] = blocks as u32;
    ioctl(&fd, iface, "ETHTOOL_GFEATURES", features.as_mut_ptr().cast())?;
    let block = 2 + (index / 32) * 4;
    let bit = 1u32 << (index % 32);
    let word = |offset: usize| features.get(block + offset).copied().unwrap_or(0);
    Ok(Some(Feature {
        available: word(0) & bit != 0,
        active: word(2) & bit != 0,
    }))
}

/// How many names `ETH_SS_FEATURES` has (`ETHTOOL_GSSET_INFO`).
fn feature_count(fd: &OwnedFd, iface: &str) -> Result<usize, EthtoolError> {
    // One set in the mask, so the kernel writes at most one u32 after the header.
    let mut info = SsetInfo {
        cmd: ETHTOOL_GSSET_INFO,
        reserved: 0,
        sset_mask: 1 << ETH_SS_FEATURES,
        data: [0],
    };
    ioctl(
        fd,
        iface,
        "ETHTOOL_GSSET_INFO",
        (&mut info as *mut SsetInfo).cast(),
    )?;
    if info.sset_mask & (1 << ETH_SS_FEATURES) == 0 {
        return Ok(0);
    }
    Ok(info.data[0] as usize)
}

fn ioctl(
    fd: &OwnedFd,
    iface: &str,
    request: &'static str,
    data: *mut libc::c_void,
) -> Result<(), EthtoolError> {
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data,
        _pad: [0; 16],
    };
    let name = iface.as_bytes();
    if name.len() >= req.name.len() {
        return Err(EthtoolError::NameTooLong {
            iface: iface.to_string(),
        });
    }
    req.name[..name.len()].copy_from_slice(name);
    // SAFETY: `req` is a valid `struct ifreq` whose `ifr_data` points at a live, exclusively
    // borrowed buffer. What the kernel writes there: GSSET_INFO, one u32 per set asked for (one);
    // GFEATURES, at most the `size` blocks the caller put in the header; GSTRINGS, the set's own
    // count of names, ignoring `len` — for ETH_SS_FEATURES that count is a constant of the
    // running kernel, the very number GSSET_INFO returned and the buffer was sized from.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), SIOCETHTOOL as _, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(EthtoolError::Ioctl {
            iface: iface.to_string(),
            request,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_features_read_like_ethtool_k() {
        // `lo` exists in every namespace: loopback is fixed on, hw-tc-offload fixed off.
        let lo = feature("lo", "loopback").unwrap().unwrap();
        assert!(lo.active && !lo.available, "{lo:?}");
        let tc = feature("lo", "hw-tc-offload").unwrap().unwrap();
        assert!(!tc.active && !tc.available, "{tc:?}");
        assert_eq!(feature("lo", "no-such-feature").unwrap(), None);
        assert!(matches!(
            feature("nosuchdev0", "hw-tc-offload"),
            Err(EthtoolError::Ioctl { .. })
        ));
    }

    #[test]
    fn request_structs_have_the_kernels_layout() {
        // struct ethtool_sset_info: cmd at 0, sset_mask at 8, data[] at 16.
        assert_eq!(std::mem::offset_of!(SsetInfo, sset_mask), 8);
        assert_eq!(std::mem::offset_of!(SsetInfo, data), 16);
        // struct ifreq: the name, then the union (ifr_data first) padded to the largest member.
        assert_eq!(std::mem::offset_of!(IfReq, data), libc::IFNAMSIZ);
        assert!(std::mem::size_of::<IfReq>() >= std::mem::size_of::<libc::ifreq>());
    }
}
