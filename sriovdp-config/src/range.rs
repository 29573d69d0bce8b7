//! `pfNames` / `rootDevices` entries: `<PF name or address>[#<i>,<a>-<b>,...]`
//! with 0-based, inclusive VF index ranges.

use sriov_host::PciAddress;

/// An inclusive range of VF indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfRange {
    /// First index.
    pub first: u32,
    /// Last index (inclusive).
    pub last: u32,
}

/// The PF an entry names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PfTarget {
    /// A netdev name, compared case-insensitively.
    Name(String),
    /// A PCI address.
    Address(PciAddress),
}

/// One parsed `pfNames` / `rootDevices` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PfSelector {
    /// The PF.
    pub target: PfTarget,
    /// VF index ranges; `None` selects every VF of the PF (and the PF itself
    /// when it has no VFs).
    pub ranges: Option<Vec<VfRange>>,
}

impl PfSelector {
    /// Parses an entry. `addresses_only` (for `rootDevices`) refuses names.
    pub fn parse(entry: &str, addresses_only: bool) -> Result<PfSelector, String> {
        let (target, ranges) = match entry.split_once('#') {
            Some((target, ranges)) => (target, Some(parse_ranges(ranges)?)),
            None => (entry, None),
        };
        let target = target.trim();
        if target.is_empty() {
            return Err("no PF before '#'".to_string());
        }
        let target = match target.parse::<PciAddress>() {
            Ok(address) => PfTarget::Address(address),
            Err(_) if addresses_only => {
                return Err(format!("{target:?} is not a PCI address"));
            }
            Err(_) => PfTarget::Name(target.to_string()),
        };
        Ok(PfSelector { target, ranges })
    }

    /// Does this entry select the device on PF (`pf_name`, `pf_address`)
    /// with VF index `vf_index` (`None` for a PF offered itself)?
    pub fn matches(&self, pf_name: Option<&str>, pf_address: &PciAddress, vf_index: Option<u32>) -> bool {
        let pf_matches = match &self.target {
            PfTarget::Name(name) => pf_name.is_some_and(|n| n.eq_ignore_ascii_case(name)),
            PfTarget::Address(address) => address == pf_address,
        };
        pf_matches
            && match (&self.ranges, vf_index) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(ranges), Some(index)) => ranges.iter().any(|r| (r.first..=r.last).contains(&index)),
            }
    }
}

fn parse_ranges(text: &str) -> Result<Vec<VfRange>, String> {
    text.split(',').map(parse_range).collect()
}

fn parse_range(part: &str) -> Result<VfRange, String> {
    let part = part.trim();
    let index = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s:?} in range {part:?} is not a VF index"))
    };
    match part.split_once('-') {
        Some((first, last)) => {
            let (first, last) = (index(first)?, index(last)?);
            if first > last {
                return Err(format!("range {part:?} starts after it ends"));
            }
            Ok(VfRange { first, last })
        }
        None => {
            let i = index(part)?;
            Ok(VfRange { first: i, last: i })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> PciAddress {
        s.parse().unwrap()
    }

    #[test]
    fn parses_names_addresses_and_ranges() {
        let s = PfSelector::parse("ens1f0#0,3-5", false).unwrap();
        assert_eq!(s.target, PfTarget::Name("ens1f0".into()));
        assert_eq!(
            s.ranges.as_deref(),
            Some(&[VfRange { first: 0, last: 0 }, VfRange { first: 3, last: 5 }][..])
        );
        let s = PfSelector::parse("0000:84:00.0", true).unwrap();
        assert_eq!(s.target, PfTarget::Address(addr("0000:84:00.0")));
        assert_eq!(s.ranges, None);
    }

    #[test]
    fn rejects_malformed_ranges() {
        assert_eq!(
            PfSelector::parse("ens1f0#3-1", false).unwrap_err(),
            r#"range "3-1" starts after it ends"#
        );
        assert!(PfSelector::parse("ens1f0#", false).is_err());
        assert!(PfSelector::parse("ens1f0#a-2", false).is_err());
        assert!(PfSelector::parse("ens1f0#-1", false).is_err());
        assert!(PfSelector::parse("#1", false).is_err());
        assert!(PfSelector::parse("ens1f0", true).is_err());
    }

    #[test]
    fn matches_names_case_insensitively_and_ranges_inclusively() {
        let pf = addr("0000:84:00.0");
        let s = PfSelector::parse("ENS1F0#0,3-5", false).unwrap();
        assert!(s.matches(Some("ens1f0"), &pf, Some(0)));
        assert!(!s.matches(Some("ens1f0"), &pf, Some(1)));
        assert!(s.matches(Some("ens1f0"), &pf, Some(3)));
        assert!(s.matches(Some("ens1f0"), &pf, Some(5)));
        assert!(!s.matches(Some("ens1f0"), &pf, Some(6)));
        assert!(!s.matches(Some("ens1f0"), &pf, None));
        assert!(!s.matches(Some("ens1f1"), &pf, Some(0)));
        let by_address = PfSelector::parse("84:00.0", false).unwrap();
        assert!(by_address.matches(None, &pf, Some(7)));
        assert!(!by_address.matches(None, &addr("0000:84:00.1"), Some(7)));
    }
}
