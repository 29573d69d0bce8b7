//! Creates and deletes the real links of a layout with `ip -batch` (test infrastructure only).
//!
//! Every link of an instance gets one link group, picked free at `up`, so `down` removes them all
//! with a single `ip link del group G` (one batched unregister in the kernel) and never touches
//! links of other instances. Switchdev VFs are veth pairs (VF netdev + representor); VFs without
//! a netdev (vfio-pci, unbound) keep a representor, a tap with no carrier; legacy-mode VFs are
//! macvlans on the uplink; each uplink is a veth whose peer is the "wire".

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tracing::debug;

use crate::ethtool::{EthtoolError, EthtoolSocket};
use crate::layout::{is_instance_link, Layout};
use sriov_host::EswitchMode;

/// Smallest link group `up` hands out: `ip link del group` must never see 0 (the default group).
pub const MIN_GROUP: u32 = 0x0001_0000;

/// Errors creating, inspecting or deleting links.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The target netns does not exist.
    #[error("netns {netns} does not exist (no /run/netns/{netns})")]
    NetnsMissing {
        /// The netns name.
        netns: String,
    },
    /// Running `ip` failed to start or to take its input.
    #[error("cannot run `ip {args}`")]
    Spawn {
        /// The arguments.
        args: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `ip` exited with an error.
    #[error("`ip {args}` failed ({status}): {stderr}")]
    IpFailed {
        /// The arguments.
        args: String,
        /// Exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// `ip -j link show` printed something that is not the expected JSON.
    #[error("cannot parse `ip -j link show` output")]
    ParseLinks(#[source] serde_json::Error),
    /// A link is not as the step expects: a name the instance needs `already exists`, a link
    /// the batch should have made `is missing after creation`, or one `is still there after
    /// deletion`.
    #[error("link {iface} {problem}")]
    Link {
        /// The name.
        iface: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// No free link group was found.
    #[error("no free link group found")]
    NoFreeGroup,
    /// Turning TX checksum offload off failed.
    #[error("cannot turn TX checksum offload off")]
    TxChecksum(#[source] EthtoolError),
    /// Refused to delete a group below [`MIN_GROUP`].
    #[error("refusing to delete links of group {group}")]
    ReservedGroup {
        /// The group.
        group: u32,
    },
}

/// One link as `ip -j link show` reports it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct LinkInfo {
    /// Interface index.
    pub ifindex: u32,
    /// Interface name.
    pub ifname: String,
    /// MAC address.
    pub address: String,
    /// Link group (a name such as `default` or a number).
    pub group: String,
}

/// Lists the links of a netns (`None`: the current one), optionally only those of `group`.
pub fn list(netns: Option<&str>, group: Option<u32>) -> Result<Vec<LinkInfo>, LinkError> {
    let group = group.map(|g| g.to_string());
    let mut args = vec!["-j", "link", "show"];
    if let Some(g) = &group {
        args.extend(["group", g.as_str()]);
    }
    let out = ip(netns, &args, None)?;
    if out.trim().is_empty() {
        return Ok(Vec::new());
    }
    let links: Vec<LinkInfo> = serde_json::from_str(&out).map_err(LinkError::ParseLinks)?;
    // `ip -j link show group G` prints `{}` for every link outside the group.
    Ok(links.into_iter().filter(|l| !l.ifname.is_empty()).collect())
}

/// Checks the netns exists (for `Some`).
pub fn check_netns(netns: Option<&str>) -> Result<(), LinkError> {
    match netns {
        Some(ns) if !Path::new("/run/netns").join(ns).exists() => Err(LinkError::NetnsMissing {
            netns: ns.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Picks a link group no link in the netns uses, seeded from the prefix, pid and clock.
pub fn pick_group(netns: Option<&str>, prefix: &str) -> Result<u32, LinkError> {
    let used: HashSet<String> = list(netns, None)?.into_iter().map(|l| l.group).collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut seed = u64::from(nanos) ^ u64::from(std::process::id()) << 32;
    for b in prefix.bytes() {
        seed = seed.rotate_left(5) ^ u64::from(b);
    }
    for _ in 0..64 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let group = MIN_GROUP + ((seed >> 33) as u32 % (0x7fff_ffff - MIN_GROUP));
        if !used.contains(&group.to_string()) {
            return Ok(group);
        }
    }
    Err(LinkError::NoFreeGroup)
}

/// Fails with `NameTaken` if any link name (or altname) of the layout is in use in its netns.
pub fn check_names_free(layout: &Layout) -> Result<(), LinkError> {
    let existing: HashSet<String> = list(layout.netns.as_deref(), None)?
        .into_iter()
        .map(|l| l.ifname)
        .collect();
    let altnames = layout.vfs().filter_map(|v| v.altname.clone());
    for name in layout.link_names().into_iter().chain(altnames) {
        if existing.contains(&name) {
            let problem = "already exists";
            return Err(LinkError::Link { iface: name, problem });
        }
    }
    Ok(())
}

/// The `ip -batch` script creating every link of the layout in `group`.
pub fn batch_script(layout: &Layout, group: u32) -> String {
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    for pf in &layout.pfs {
        let (up, wire) = (&pf.uplink.name, &pf.wire.name);
        line(format!(
            "link add {up} group {group} type veth peer name {wire} group {group}"
        ));
        for vf in &pf.vfs {
            match (&vf.netdev, &vf.representor, layout.eswitch) {
                (Some(n), Some(r), _) => line(format!(
                    "link add {} group {group} type veth peer name {} group {group}",
                    n.name, r.name
                )),
                (None, Some(r), _) => {
                    line(format!("tuntap add mode tap name {}", r.name));
                    line(format!("link set {} group {group}", r.name));
                }
                (Some(n), None, EswitchMode::Legacy) => line(format!(
                    "link add {} link {up} group {group} type macvlan mode bridge",
                    n.name
                )),
                _ => {}
            }
            if let (Some(n), Some(alt)) = (&vf.netdev, &vf.altname) {
                line(format!("link property add dev {} altname {alt}", n.name));
            }
            if let Some(r) = &vf.representor {
                line(format!("link set {} up", r.name));
            }
        }
        line(format!("link set {wire} up"));
        line(format!("link set {up} up"));
    }
    s
}

/// Creates every link of the layout in `group`, then turns TX checksum offload off on all of
/// them and records their ifindex and MAC in the layout. On error, links may be left in `group`:
/// the caller deletes the group.
pub fn create(layout: &mut Layout, group: u32) -> Result<(), LinkError> {
    let netns = layout.netns.clone();
    let script = batch_script(layout, group);
    let started = std::time::Instant::now();
    ip(netns.as_deref(), &["-batch", "-"], Some(&script))?;
    debug!(elapsed = ?started.elapsed(), "ip -batch done");
    let sock = EthtoolSocket::open(netns.as_deref()).map_err(LinkError::TxChecksum)?;
    let found: HashMap<String, LinkInfo> = list(netns.as_deref(), Some(group))?
        .into_iter()
        .map(|l| (l.ifname.clone(), l))
        .collect();
    // Legacy-mode VF netdevs are macvlans: their TX checksum flag is fixed, and the lower
    // device (the uplink veth, turned off here) completes checksums for them.
    let macvlans: HashSet<String> = match layout.eswitch {
        EswitchMode::Legacy => layout
            .vfs()
            .filter_map(|v| v.netdev_name().map(str::to_string))
            .collect(),
        EswitchMode::Switchdev => HashSet::new(),
    };
    for netdev in layout.netdevs_mut() {
        let info = found.get(&netdev.name).ok_or_else(|| LinkError::Link {
            iface: netdev.name.clone(),
            problem: "is missing after creation",
        })?;
        netdev.ifindex = info.ifindex;
        netdev.mac.clone_from(&info.address);
        if !macvlans.contains(&netdev.name) {
            sock.tx_checksum_off(&netdev.name)
                .map_err(LinkError::TxChecksum)?;
        }
    }
    debug!(elapsed = ?started.elapsed(), "links configured");
    Ok(())
}

/// Deletes every link of `group` in the netns. A missing netns or an empty group is fine.
pub fn delete_group(netns: Option<&str>, group: u32) -> Result<(), LinkError> {
    if group < MIN_GROUP {
        return Err(LinkError::ReservedGroup { group });
    }
    if check_netns(netns).is_err() {
        return Ok(());
    }
    if list(netns, Some(group))?.is_empty() {
        return Ok(());
    }
    ip(netns, &["link", "del", "group", &group.to_string()], None).map(|_| ())
}

/// Deletes links named like links of instance `prefix` (crash recovery without a state file).
pub fn delete_by_name(netns: Option<&str>, prefix: &str) -> Result<usize, LinkError> {
    if check_netns(netns).is_err() {
        return Ok(0);
    }
    let names: Vec<String> = list(netns, None)?
        .into_iter()
        .map(|l| l.ifname)
        .filter(|n| is_instance_link(prefix, n))
        .collect();
    if names.is_empty() {
        return Ok(0);
    }
    let script: String = names.iter().map(|n| format!("link del {n}\n")).collect();
    // -force keeps going past links already gone with their veth peer or macvlan lower
    // device; such failures are expected, so judge by what is left afterwards.
    if let Err(e) = ip(netns, &["-force", "-batch", "-"], Some(&script)) {
        debug!(error = %e, "some deletions failed; checking what is left");
    }
    let left = list(netns, None)?
        .into_iter()
        .find(|l| is_instance_link(prefix, &l.ifname));
    match left {
        Some(l) => Err(LinkError::Link {
            iface: l.ifname,
            problem: "is still there after deletion",
        }),
        None => Ok(names.len()),
    }
}

/// Runs `ip [-n NETNS] ARGS...`, feeding `stdin`, returning stdout.
fn ip(netns: Option<&str>, args: &[&str], stdin: Option<&str>) -> Result<String, LinkError> {
    let mut full: Vec<&str> = Vec::new();
    if let Some(ns) = netns {
        full.extend(["-n", ns]);
    }
    full.extend_from_slice(args);
    let shown = full.join(" ");
    let spawn_err = |source| LinkError::Spawn {
        args: shown.clone(),
        source,
    };
    let mut child = Command::new("ip")
        .args(&full)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        return Err(LinkError::IpFailed {
            args: shown,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
