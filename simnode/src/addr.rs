//! PCI addresses of the simulated functions, numbered like a dual-port mlx5 card.
//!
//! Each card sits alone on its own bus. Its PFs are functions `.0` and `.1` of device 0; the VFs
//! follow the PFs by routing ID (PF0's VFs first, then PF1's): `00.2`..`00.7`, `01.0`, ... Two PFs
//! with 127 VFs each fill the 256 routing IDs of the bus exactly, so addresses never collide.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A PCI function address (`0000:84:00.2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PciAddr {
    /// PCI domain (segment).
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device number, 0..32.
    pub device: u8,
    /// Function number, 0..8.
    pub function: u8,
}

impl PciAddr {
    /// The function at routing ID `rid` (bus << 8 | device << 3 | function) in domain 0.
    pub fn from_rid(rid: u16) -> PciAddr {
        let [bus, devfn] = rid.to_be_bytes();
        PciAddr {
            domain: 0,
            bus,
            device: devfn >> 3,
            function: devfn & 7,
        }
    }

    /// The routing ID of this function.
    pub fn rid(&self) -> u16 {
        u16::from(self.bus) << 8 | u16::from(self.device) << 3 | u16::from(self.function)
    }
}

impl fmt::Display for PciAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// Routing IDs reserved for PFs on each card; VFs start right after them.
const PORTS_PER_CARD: u32 = 2;

/// Where the PFs of a spec go: card (bus) and port of each PF, addresses of PFs and VFs.
#[derive(Clone, Copy, Debug)]
pub struct Numbering {
    first_bus: u8,
    vfs_per_pf: u32,
}

impl Numbering {
    /// Numbering for PFs with `vfs_per_pf` VFs each, the first card on `first_bus`.
    /// The caller has validated that the buses fit (`first_bus + cards <= 0x100`) and
    /// `vfs_per_pf <= 127`.
    pub fn new(first_bus: u8, vfs_per_pf: u32) -> Numbering {
        Numbering {
            first_bus,
            vfs_per_pf,
        }
    }

    /// The card (0-based) holding PF `pf`.
    pub fn card(&self, pf: u32) -> u32 {
        pf / 2
    }

    /// The port number of PF `pf` on its card: the `P` in `p<P>` / `pf<P>vf<N>`.
    pub fn port(&self, pf: u32) -> u32 {
        pf % 2
    }

    /// PCI bus of a card.
    pub fn bus(&self, card: u32) -> u8 {
        // Validated by the spec: first_bus + cards <= 0x100.
        self.first_bus.wrapping_add(card as u8)
    }

    /// Address of PF `pf`.
    pub fn pf(&self, pf: u32) -> PciAddr {
        let base = u16::from(self.bus(self.card(pf))) << 8;
        PciAddr::from_rid(base + self.port(pf) as u16)
    }

    /// Address of VF `vf` of PF `pf`.
    pub fn vf(&self, pf: u32, vf: u32) -> PciAddr {
        let base = u16::from(self.bus(self.card(pf))) << 8;
        let offset = PORTS_PER_CARD + self.port(pf) * self.vfs_per_pf + vf;
        PciAddr::from_rid(base + offset as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn formats_like_sysfs() {
        let a = PciAddr::from_rid(0x8402);
        assert_eq!(a.to_string(), "0000:84:00.2");
        assert_eq!(PciAddr::from_rid(0x84ff).to_string(), "0000:84:1f.7");
        assert_eq!(a.rid(), 0x8402);
    }

    #[test]
    fn vfs_follow_the_pfs_like_mlx5() {
        let n = Numbering::new(0x84, 8);
        assert_eq!(n.pf(0).to_string(), "0000:84:00.0");
        assert_eq!(n.pf(1).to_string(), "0000:84:00.1");
        assert_eq!(n.vf(0, 0).to_string(), "0000:84:00.2");
        assert_eq!(n.vf(0, 5).to_string(), "0000:84:00.7");
        assert_eq!(n.vf(0, 6).to_string(), "0000:84:01.0");
        assert_eq!(n.vf(1, 0).to_string(), "0000:84:01.2");
        let single = Numbering::new(0x3b, 4);
        assert_eq!(single.vf(0, 0).to_string(), "0000:3b:00.2");
    }

    #[test]
    fn eight_pfs_of_127_vfs_never_collide() {
        let n = Numbering::new(0x84, 127);
        let mut seen = HashSet::new();
        for pf in 0..8 {
            assert!(seen.insert(n.pf(pf)));
            for vf in 0..127 {
                assert!(seen.insert(n.vf(pf, vf)), "pf {pf} vf {vf}");
            }
        }
        assert_eq!(seen.len(), 8 * 128);
        assert_eq!(n.vf(1, 126).to_string(), "0000:84:1f.7");
        assert_eq!(n.pf(7).to_string(), "0000:87:00.1");
    }
}
