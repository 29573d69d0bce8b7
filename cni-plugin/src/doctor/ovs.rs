//! OVS checks: `other_config:hw-offload=true`, the integration bridge, and `ovn-controller`'s
//! configuration (`external_ids`) and connection to the southbound database.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use ovsdb_client::{unixctl, Client, Unixctl};

use super::report::Check;

/// What the doctor reads from the `Open_vSwitch` database, in one transaction.
#[derive(Clone, Debug, Default)]
pub struct OvsFacts {
    /// `Open_vSwitch` `other_config`.
    pub other_config: BTreeMap<String, String>,
    /// `Open_vSwitch` `external_ids`.
    pub external_ids: BTreeMap<String, String>,
    /// The bridge's port names; `None` when there is no such bridge.
    pub bridge_ports: Option<Vec<String>>,
    /// Ports created by this plugin (`external_ids:vendor=sriov-ovs`).
    pub our_ports: HashSet<String>,
}

/// Reading the database failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the Open_vSwitch database at {endpoint}")]
pub struct OvsReadError {
    /// The endpoint.
    pub endpoint: String,
    /// The cause.
    #[source]
    pub source: ovsdb_client::vswitch::Error,
}

/// Reads the facts from `client` for bridge `bridge`.
pub async fn read(client: &Client, bridge: &str) -> Result<OvsFacts, OvsReadError> {
    let overview = client.vswitch().overview().await.map_err(|source| OvsReadError {
        endpoint: client.endpoint().to_string(),
        source,
    })?;
    let on_bridge: Vec<_> = overview
        .ports
        .iter()
        .filter(|p| p.bridge.as_deref() == Some(bridge))
        .collect();
    let our_ports = on_bridge
        .iter()
        .filter(|p| p.external_ids.get("vendor").map(String::as_str) == Some("sriov-ovs"))
        .map(|p| p.name.clone())
        .collect();
    let mut ports: Vec<String> = on_bridge.iter().map(|p| p.name.clone()).collect();
    ports.sort();
    Ok(OvsFacts {
        bridge_ports: overview.bridges.iter().any(|b| b == bridge).then_some(ports),
        other_config: overview.other_config,
        external_ids: overview.external_ids,
        our_ports,
    })
}

/// `other_config:hw-offload=true`.
pub fn hw_offload(facts: &OvsFacts) -> Check {
    const CHECK: &str = "ovs-hw-offload";
    // ovs-vswitchd reads it with smap_get_bool: "true" in any case.
    match facts.other_config.get("hw-offload").map(String::as_str) {
        Some(v) if v.eq_ignore_ascii_case("true") => {
            Check::ok(CHECK, "Open_vSwitch", format!("other_config:hw-offload={v}"))
        }
        other => Check::fail(
            CHECK,
            "Open_vSwitch",
            format!("other_config:hw-offload is {}", other.map(|v| format!("{v:?}")).unwrap_or_else(|| "unset".into())),
        )
        .fix("ovs-vsctl set Open_vSwitch . other_config:hw-offload=true, then restart ovs-vswitchd (Kube-OVN: delete this node's ovs-ovn pod)"),
    }
}

/// The integration bridge exists.
pub fn bridge(facts: &OvsFacts, bridge: &str) -> Check {
    const CHECK: &str = "ovs-bridge";
    match &facts.bridge_ports {
        Some(ports) => Check::ok(CHECK, bridge, format!("present, {} ports", ports.len())),
        None => Check::fail(CHECK, bridge, "no such bridge (ovn-controller creates it)").fix(format!(
            "ovs-vsctl --may-exist add-br {bridge}, and check ovn-controller runs"
        )),
    }
}

/// `ovn-controller` is configured (`external_ids` of `Open_vSwitch`) and connected to the
/// southbound database (its unixctl `connection-status`, found in `ovn_rundir`).
pub async fn ovn_controller(facts: &OvsFacts, ovn_rundir: &Path) -> Check {
    const CHECK: &str = "ovn-controller";
    let ids = &facts.external_ids;
    let chassis = ids.get("system-id").filter(|c| !c.is_empty());
    let subject = format!("chassis {}", chassis.map_or("?", String::as_str));
    let missing: Vec<&str> = ["system-id", "ovn-remote", "ovn-encap-type", "ovn-encap-ip"]
        .into_iter()
        .filter(|k| ids.get(*k).is_none_or(|v| v.is_empty()))
        .collect();
    if !missing.is_empty() {
        let fix = missing
            .iter()
            .map(|k| format!("external_ids:{k}=<{}>", placeholder(k)))
            .collect::<Vec<_>>()
            .join(" ");
        return Check::fail(
            CHECK,
            subject,
            format!("Open_vSwitch external_ids lack {}", missing.join(", ")),
        )
        .fix(format!("ovs-vsctl set Open_vSwitch . {fix}"));
    }
    let encap = format!(
        "encap {} {}",
        ids.get("ovn-encap-type").cloned().unwrap_or_default(),
        ids.get("ovn-encap-ip").cloned().unwrap_or_default()
    );
    let remote = ids.get("ovn-remote").cloned().unwrap_or_default();
    let status = async {
        let path = unixctl::find_socket(ovn_rundir, "ovn-controller")?;
        let ctl = Unixctl::connect(&path, Duration::from_secs(5)).await?;
        ctl.run("connection-status", &[]).await
    }
    .await;
    match status {
        Ok(s) if s.trim() == "connected" => {
            Check::ok(CHECK, subject, format!("{encap}, connected to {remote}"))
        }
        Ok(s) => Check::fail(CHECK, subject, format!("{encap}, {} to {remote}", s.trim())).fix(format!(
            "check that {remote} is reachable from this node and ovn-central runs"
        )),
        Err(e) => Check::warn(
            CHECK,
            subject,
            format!(
                "{encap}; connection unknown: {} (pass --ovn-rundir)",
                sriov_logging::error_chain(&e)
            ),
        ),
    }
}

fn placeholder(key: &str) -> &'static str {
    match key {
        "system-id" => "node name",
        "ovn-remote" => "tcp:OVN_SB_IP:6642",
        "ovn-encap-type" => "geneve",
        _ => "node IP",
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::Status;
    use super::*;

    fn with_hw_offload(value: Option<&str>) -> Check {
        let mut facts = OvsFacts::default();
        if let Some(v) = value {
            facts.other_config.insert("hw-offload".into(), v.into());
        }
        hw_offload(&facts)
    }

    #[test]
    fn hw_offload_is_true_in_any_case_as_vswitchd_reads_it() {
        assert_eq!(with_hw_offload(Some("true")).status, Status::Ok);
        assert_eq!(with_hw_offload(Some("True")).status, Status::Ok);
        let off = with_hw_offload(Some("false"));
        assert_eq!(
            (off.status, off.found.as_str()),
            (Status::Fail, "other_config:hw-offload is \"false\"")
        );
        let unset = with_hw_offload(None);
        assert_eq!(unset.found, "other_config:hw-offload is unset");
        assert!(unset.fix.unwrap().starts_with(
            "ovs-vsctl set Open_vSwitch . other_config:hw-offload=true, then restart ovs-vswitchd"
        ));
    }
}
