//! The guide's final verification (`ovs-appctl dpctl/dump-flows -m type=offloaded`), per
//! representor on the bridge: how many datapath flows enter through it and how many of them
//! the NIC runs (`offloaded:yes`). Asked of ovs-vswitchd over its unixctl socket.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ovsdb_client::{unixctl, Unixctl, UnixctlError};

use super::ethtool;
use super::report::Check;

const CHECK: &str = "offload-flows";

/// Flows entering through one port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCount {
    /// Datapath flows with `in_port(<port>)`.
    pub flows: usize,
    /// Of those, the ones marked `offloaded:yes`.
    pub offloaded: usize,
}

/// Counts flows per `in_port` in `dpctl/dump-flows -m` output (one flow per line).
pub fn count_flows(dump: &str) -> BTreeMap<String, FlowCount> {
    let mut out: BTreeMap<String, FlowCount> = BTreeMap::new();
    for line in dump.lines() {
        let Some(port) = line
            .split_once("in_port(")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(port, _)| port)
        else {
            continue;
        };
        let count = out.entry(port.to_string()).or_default();
        count.flows += 1;
        if line.contains("offloaded:yes") {
            count.offloaded += 1;
        }
    }
    out
}

/// Asks ovs-vswitchd (control socket in `rundir`) for its datapath flows.
pub async fn dump(rundir: &Path) -> Result<BTreeMap<String, FlowCount>, UnixctlError> {
    let path = unixctl::find_socket(rundir, "ovs-vswitchd")?;
    let ctl = Unixctl::connect(&path, Duration::from_secs(10)).await?;
    let mut counts = count_flows(&ctl.run("dpctl/dump-flows", &["-m"]).await?);
    // The guide's own filter: what it lists marked `offloaded:yes` counts even if the full dump
    // (taken a moment earlier) missed the flow.
    if let Ok(offloaded) = ctl.run("dpctl/dump-flows", &["-m", "type=offloaded"]).await {
        for (port, c) in count_flows(&offloaded) {
            let entry = counts.entry(port).or_default();
            entry.offloaded = entry.offloaded.max(c.offloaded);
            entry.flows = entry.flows.max(c.flows);
        }
    }
    Ok(counts)
}

/// One line per representor on the bridge.
pub fn checks(
    representors: &[String],
    flows: &Result<BTreeMap<String, FlowCount>, UnixctlError>,
) -> Vec<Check> {
    let flows = match flows {
        Ok(f) => f,
        Err(e) => {
            let found = format!(
                "cannot dump datapath flows: {} (pass --ovs-rundir)",
                sriov_logging::error_chain(e)
            );
            return vec![Check::warn(CHECK, "ovs-vswitchd", found)];
        }
    };
    if representors.is_empty() {
        let found = "no representor is a port of the bridge yet: nothing to verify";
        return vec![Check::warn(CHECK, "bridge", found)];
    }
    representors
        .iter()
        .map(|rep| {
            let count = flows.get(rep).copied().unwrap_or_default();
            verdict(rep, count, ethtool::feature(rep, "hw-tc-offload").ok().flatten())
        })
        .collect()
}

/// The verdict on representor `rep` with flows `c`; `tc` is its `hw-tc-offload` feature
/// (`None`: unreadable here). A device that can offload is one whose feature is on or may be
/// turned on: `[fixed]` on counts as capable, only fixed off (a veth) does not.
pub fn verdict(rep: &str, c: FlowCount, tc: Option<ethtool::Feature>) -> Check {
    let found = format!("{} datapath flows, {} offloaded:yes", c.flows, c.offloaded);
    let capable = tc.is_some_and(|f| f.available || f.active);
    let warn = |why: &str| Check::warn(CHECK, rep, format!("{found}: {why}"));
    let fail = |why: &str| Check::fail(CHECK, rep, format!("{found}: {why}"));
    if c.flows == 0 {
        warn("no recent traffic to verify with")
    } else if c.offloaded == c.flows {
        Check::ok(CHECK, rep, &found)
    } else if tc.is_none() {
        warn(&format!(
            "cannot read hw-tc-offload of {rep} here (run the doctor in the host network namespace)"
        ))
    } else if !capable {
        warn(&format!("{rep} cannot offload TC flows (a veth: no NIC eswitch)"))
    } else if tc.is_some_and(|f| !f.active) {
        fail(&format!("hw-tc-offload is off on {rep}")).fix(format!("ethtool -K {rep} hw-tc-offload on"))
    } else if c.offloaded == 0 {
        fail("nothing is offloaded").fix(format!(
            "check the checks above, then `tc -s filter show dev {rep} ingress` and ovs-vswitchd.log for offload errors"
        ))
    } else {
        warn("some flows stay in software (e.g. actions the NIC cannot run)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_are_counted_per_in_port_with_offload_marks() {
        let dump = "\
ufid:91cc, skb_priority(0/0),recirc_id(0),in_port(5b45c61b307e_h),eth_type(0x0800), packets:941539, bytes:62142230, used:0.260s, offloaded:yes, dp:tc, actions:54235e5753b8_h
ufid:e007, recirc_id(0),in_port(54235e5753b8_h),eth_type(0x0800), packets:8, bytes:1, used:0.260s, dp:ovs, actions:5b45c61b307e_h
ufid:e008, recirc_id(0),in_port(54235e5753b8_h),eth_type(0x0806), packets:1, bytes:1, used:never, dp:ovs, actions:drop
flow-dump from the main thread:
";
        let c = count_flows(dump);
        assert_eq!(
            c["5b45c61b307e_h"],
            FlowCount {
                flows: 1,
                offloaded: 1
            }
        );
        assert_eq!(
            c["54235e5753b8_h"],
            FlowCount {
                flows: 2,
                offloaded: 0
            }
        );
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn each_representor_gets_a_line_and_a_device_without_tc_offload_only_warns() {
        use super::super::report::Status;
        let reps = vec!["lo".to_string(), "idle_h".to_string()];
        let mut flows = BTreeMap::new();
        flows.insert(
            "lo".to_string(),
            FlowCount {
                flows: 3,
                offloaded: 0,
            },
        );
        let out = checks(&reps, &Ok(flows.clone()));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].status, Status::Warn);
        assert!(
            out[0].found.contains("lo cannot offload TC flows"),
            "{:?}",
            out[0]
        );
        assert_eq!(out[1].status, Status::Warn);
        assert!(out[1].found.starts_with("0 datapath flows"), "{:?}", out[1]);
        flows.insert(
            "lo".to_string(),
            FlowCount {
                flows: 3,
                offloaded: 3,
            },
        );
        assert_eq!(checks(&reps, &Ok(flows))[0].status, Status::Ok);
        assert_eq!(checks(&[], &Ok(BTreeMap::new()))[0].subject, "bridge");
    }

    #[test]
    fn a_fixed_on_tc_offload_device_that_offloads_nothing_fails() {
        use super::super::report::Status;
        use ethtool::Feature;
        let none = FlowCount {
            flows: 4,
            offloaded: 0,
        };
        // `hw-tc-offload: on [fixed]`: it can offload, so nothing offloaded is a real failure.
        let fixed_on = Feature {
            available: false,
            active: true,
        };
        let c = verdict("pf0vf1", none, Some(fixed_on));
        assert_eq!(
            (c.status, c.found.as_str()),
            (
                Status::Fail,
                "4 datapath flows, 0 offloaded:yes: nothing is offloaded"
            )
        );
        // Switched off on the representor: the fix is the ethtool command.
        let off = Feature {
            available: true,
            active: false,
        };
        let c = verdict("pf0vf1", none, Some(off));
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.fix.as_deref(), Some("ethtool -K pf0vf1 hw-tc-offload on"));
        // Fixed off (a veth) or unreadable: a warning only.
        let fixed_off = Feature {
            available: false,
            active: false,
        };
        assert_eq!(verdict("v", none, Some(fixed_off)).status, Status::Warn);
        let unknown = verdict("v", none, None);
        assert_eq!(unknown.status, Status::Warn);
        assert!(
            unknown.found.contains("cannot read hw-tc-offload of v"),
            "{unknown:?}"
        );
        let some = FlowCount {
            flows: 4,
            offloaded: 3,
        };
        assert_eq!(verdict("pf0vf1", some, Some(fixed_on)).status, Status::Warn);
    }
}
