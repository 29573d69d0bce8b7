//! `GetPreferredAllocation`: keep the must-include devices, then prefer VFs
//! of one PF, then of one NUMA node. Deterministic for a given input.

use std::collections::{BTreeMap, BTreeSet};

use sriov_host::PciAddress;

/// Where a device sits, as far as preference goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Its PF (the device itself for a PF).
    pub pf: PciAddress,
    /// Its NUMA node.
    pub numa: Option<u32>,
}

/// Free devices of one PF, sorted by address.
struct PfGroup<'a> {
    numa: Option<u32>,
    devices: Vec<(PciAddress, &'a String)>,
}

/// Picks `size` device IDs from `available`, starting with `must_include`.
///
/// `placement` describes known devices; unknown available IDs are used only
/// when nothing better is left. The answer lists the must-include IDs first,
/// then the chosen ones by address.
pub fn preferred(
    available: &[String],
    must_include: &[String],
    size: usize,
    placement: impl Fn(&str) -> Option<Placement>,
) -> Vec<String> {
    let mut chosen: Vec<String> = Vec::new();
    for id in must_include {
        if !chosen.contains(id) {
            chosen.push(id.clone());
        }
    }
    if chosen.len() >= size {
        return chosen;
    }
    let need = size - chosen.len();
    let placed: Vec<Placement> = chosen.iter().filter_map(|id| placement(id)).collect();
    let wanted_pfs: BTreeSet<PciAddress> = placed.iter().map(|p| p.pf).collect();
    let wanted_numa: BTreeSet<Option<u32>> = placed.iter().map(|p| p.numa).collect();

    // Free known devices grouped by PF, each group sorted by address.
    let mut by_pf: BTreeMap<PciAddress, PfGroup> = BTreeMap::new();
    let mut unknown: Vec<&String> = Vec::new();
    let mut seen = BTreeSet::new();
    for id in available {
        if chosen.contains(id) || !seen.insert(id) {
            continue;
        }
        match (placement(id), id.parse::<PciAddress>()) {
            (Some(p), Ok(address)) => by_pf
                .entry(p.pf)
                .or_insert(PfGroup {
                    numa: p.numa,
                    devices: Vec::new(),
                })
                .devices
                .push((address, id)),
            _ => unknown.push(id),
        }
    }
    for group in by_pf.values_mut() {
        group.devices.sort();
    }

    // Order PFs: the must-include PFs first, then those on the must-include
    // NUMA node; then a single PF that fits everything (the tightest fit),
    // then larger groups first; PF address breaks ties.
    let single_fit = |count: usize| count >= need;
    let mut pfs: Vec<(&PciAddress, &PfGroup)> = by_pf.iter().collect();
    pfs.sort_by_key(|(pf, PfGroup { numa, devices })| {
        (
            !wanted_pfs.contains(pf),
            !(wanted_numa.is_empty() || wanted_numa.contains(numa)),
            !single_fit(devices.len()),
            if single_fit(devices.len()) {
                devices.len()
            } else {
                usize::MAX - devices.len()
            },
            **pf,
        )
    });

    let picked: Vec<&String> = match pfs.first() {
        Some((_, PfGroup { devices, .. })) if devices.len() >= need => {
            devices.iter().take(need).map(|(_, id)| *id).collect()
        }
        _ => {
            // No single PF fits: stay on one NUMA node if one can hold it all.
            let mut per_numa: BTreeMap<Option<u32>, usize> = BTreeMap::new();
            for PfGroup { numa, devices } in by_pf.values() {
                *per_numa.entry(*numa).or_default() += devices.len();
            }
            let numa = per_numa
                .iter()
                .filter(|(_, count)| **count >= need)
                .min_by_key(|(numa, count)| (!wanted_numa.contains(*numa), **count, **numa))
                .map(|(numa, _)| *numa);
            let mut picked = Vec::new();
            for (_, group) in &pfs {
                if numa.is_some_and(|n| n != group.numa) {
                    continue;
                }
                picked.extend(group.devices.iter().map(|(_, id)| *id));
            }
            if numa.is_none() {
                picked.extend(unknown.iter().copied());
            }
            picked.truncate(need);
            picked
        }
    };
    let mut picked: Vec<String> = picked.into_iter().cloned().collect();
    picked.sort_by_key(|id| id.parse::<PciAddress>().ok());
    chosen.extend(picked);
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Devices `0000:<bus>:00.<fn>`: PF = bus, NUMA = bus / 0x80.
    fn place(id: &str) -> Option<Placement> {
        let a: PciAddress = id.parse().ok()?;
        Some(Placement {
            pf: PciAddress { function: 0, ..a },
            numa: Some(u32::from(a.bus) / 0x80),
        })
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefers_one_pf_with_the_tightest_fit() {
        let available = ids(&[
            "0000:03:00.1",
            "0000:04:00.1",
            "0000:04:00.2",
            "0000:05:00.1",
            "0000:05:00.2",
            "0000:05:00.3",
        ]);
        assert_eq!(
            preferred(&available, &[], 2, place),
            ids(&["0000:04:00.1", "0000:04:00.2"])
        );
        assert_eq!(
            preferred(&available, &[], 3, place),
            ids(&["0000:05:00.1", "0000:05:00.2", "0000:05:00.3"])
        );
    }

    #[test]
    fn honours_must_include_and_stays_on_its_pf() {
        let available = ids(&[
            "0000:04:00.1",
            "0000:04:00.2",
            "0000:05:00.1",
            "0000:05:00.2",
            "0000:05:00.3",
        ]);
        let must = ids(&["0000:05:00.3"]);
        assert_eq!(
            preferred(&available, &must, 2, place),
            ids(&["0000:05:00.3", "0000:05:00.1"])
        );
        assert_eq!(preferred(&available, &must, 1, place), must);
    }

    #[test]
    fn falls_back_to_one_numa_node_then_anything() {
        // NUMA 0: buses 04, 05 (2 + 1); NUMA 1: bus 84 (2).
        let available = ids(&[
            "0000:04:00.1",
            "0000:04:00.2",
            "0000:05:00.1",
            "0000:84:00.1",
            "0000:84:00.2",
        ]);
        assert_eq!(
            preferred(&available, &[], 3, place),
            ids(&["0000:04:00.1", "0000:04:00.2", "0000:05:00.1"])
        );
        assert_eq!(preferred(&available, &[], 5, place).len(), 5);
        // Same input, same answer.
        assert_eq!(
            preferred(&available, &[], 4, place),
            preferred(&available, &[], 4, place)
        );
    }
}
