//! `phys_port_name` values of switchdev netdevs and what they say about the port.

use std::str::FromStr;

/// What a netdev's `phys_port_name` says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhysPortName {
    /// The uplink representor of PF `pf` (`p0`).
    Uplink {
        /// PF index on the NIC.
        pf: u32,
    },
    /// A VF representor: `pf0vf3` (current kernels), `3` (old kernels, no PF
    /// index), or `c1pf0vf3` (BlueField DPU view of a host VF, with controller).
    Vf {
        /// External controller number (`c<C>`), only on BlueField host representors.
        controller: Option<u32>,
        /// PF index, absent in the old bare-number form.
        pf: Option<u32>,
        /// VF index on its PF, 0-based.
        vf: u32,
    },
}

/// A `phys_port_name` this model does not understand (e.g. sub-function `pf0sf1`
/// or host-PF `c1pf0hpf` representors). Callers skip such netdevs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unrecognised phys_port_name {name:?}")]
pub struct PortNameError {
    /// The value that was read.
    pub name: String,
}

impl FromStr for PhysPortName {
    type Err = PortNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PortNameError { name: s.to_string() };
        if let Some(vf) = number(s) {
            return Ok(PhysPortName::Vf {
                controller: None,
                pf: None,
                vf,
            });
        }
        if let Some(pf) = s.strip_prefix('p').and_then(number) {
            return Ok(PhysPortName::Uplink { pf });
        }
        let (controller, rest) = match s.strip_prefix('c') {
            Some(rest) => {
                let end = rest.find('p').ok_or_else(err)?;
                (Some(number(&rest[..end]).ok_or_else(err)?), &rest[end..])
            }
            None => (None, s),
        };
        let rest = rest.strip_prefix("pf").ok_or_else(err)?;
        let (pf, vf) = rest.split_once("vf").ok_or_else(err)?;
        Ok(PhysPortName::Vf {
            controller,
            pf: Some(number(pf).ok_or_else(err)?),
            vf: number(vf).ok_or_else(err)?,
        })
    }
}

/// A plain non-empty decimal number (no sign, no spaces).
fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vf(controller: Option<u32>, pf: Option<u32>, vf: u32) -> PhysPortName {
        PhysPortName::Vf { controller, pf, vf }
    }

    #[test]
    fn parses_every_scheme() {
        assert_eq!("p0".parse(), Ok(PhysPortName::Uplink { pf: 0 }));
        assert_eq!("p1".parse(), Ok(PhysPortName::Uplink { pf: 1 }));
        assert_eq!("pf0vf3".parse(), Ok(vf(None, Some(0), 3)));
        assert_eq!("pf1vf126".parse(), Ok(vf(None, Some(1), 126)));
        assert_eq!("3".parse(), Ok(vf(None, None, 3)));
        assert_eq!("c1pf0vf3".parse(), Ok(vf(Some(1), Some(0), 3)));
    }

    #[test]
    fn rejects_other_port_kinds_and_garbage() {
        for bad in [
            "", "pf0sf1", "c1pf0hpf", "pf0hpf", "p", "pfvf", "pf0vf", "-1", "c1p0", "pf0vf3x", " 3",
        ] {
            assert!(bad.parse::<PhysPortName>().is_err(), "{bad:?} parsed");
        }
    }
}
