//! PCI addresses of the simulated functions, numbered like a dual-port mlx5 card.
//!
//! Each card sits alone on its own bus. Its PFs are functions `.0` and `.1` of device 0; the VFs
//! follow the PFs by routing ID (PF0's VFs first, then PF1's): `00.2`..`00.7`, `01.0`, ... Two PFs
//! with 127 VFs each fill the 256 routing IDs of the bus exactly, so addresses never collide.

use sriov_host::PciAddress;

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
    pub fn pf(&self, pf: u32) -> PciAddress {
        let base = u16::from(self.bus(self.card(pf))) << 8;
        PciAddress::from_rid(base + self.port(pf) as u16)
    }

    /// Address of VF `vf` of PF `pf`.
    pub fn vf(&self, pf: u32, vf: u32) -> PciAddress {
        let base = u16::from(self.bus(self.card(pf))) << 8;
        let offset = PORTS_PER_CARD + self.port(pf) * self.vfs_per_pf + vf;
        PciAddress::from_rid(base + offset as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

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
