//! The attachment record: everything needed to undo an attachment, typed, and its versioned
//! on-disk form. Version 2 is written; version 1 (no `version` key, written by releases before
//! it) is still read, so an upgrade between ADD and DEL loses nothing.

use crate::mac::MacAddr;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sriov_host::PciAddress;
use std::path::PathBuf;

/// The on-disk version written by this release.
pub const VERSION: u32 = 2;

/// How far an attach got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Attach started changing the host; a crash leaves this behind for release.
    Adding,
    /// Attach completed.
    Added,
}

/// What the VF looked like on the host before the attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedVf {
    /// Host name.
    pub name: String,
    /// Host ifindex (may change when the kernel returns the VF).
    pub ifindex: u32,
    /// Original MAC (`None` when it had none worth restoring, e.g. all zeroes).
    pub mac: Option<MacAddr>,
    /// Original MTU.
    pub mtu: Option<u32>,
    /// Original alias.
    pub alias: Option<String>,
    /// Was administratively up.
    #[serde(default)]
    pub up: bool,
}

/// What the representor looked like before the attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedRepresentor {
    /// Original name.
    pub name: String,
    /// ifindex (stable: it never leaves the host namespace).
    pub ifindex: u32,
    /// Original MTU.
    pub mtu: Option<u32>,
    /// Kube-OVN style name given at attach (also the OVS port name).
    pub new_name: String,
    /// Was administratively up.
    #[serde(default)]
    pub up: bool,
}

/// The delegated IPAM plugin and what it must be called with again to release the addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpamFacts {
    /// Plugin type (`ipam.type`).
    pub plugin: String,
    /// The network configuration the plugin was called with.
    pub conf: Value,
    /// `CNI_ARGS` at attach.
    pub args: String,
    /// `CNI_PATH` at attach.
    pub path: String,
}

/// One attachment of a VF to a pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentRecord {
    /// Container ID.
    pub container_id: String,
    /// Pod interface name.
    pub ifname: String,
    /// Pod netns path at attach (empty when unknown).
    pub netns: PathBuf,
    /// The VF.
    #[serde(with = "pci_text")]
    pub pci: PciAddress,
    /// The VF netdev; `None` for VFs without one (vfio-pci).
    pub vf: Option<SavedVf>,
    /// The representor.
    pub representor: SavedRepresentor,
    /// OVS bridge.
    pub bridge: String,
    /// OVN logical switch port (`external_ids:iface-id`), when set.
    pub iface_id: Option<String>,
    /// Network name (GC releases only its own network's attachments).
    pub network: String,
    /// Delegated IPAM, when addresses came from an IPAM plugin.
    pub ipam: Option<IpamFacts>,
    /// Progress.
    pub phase: Phase,
}

impl AttachmentRecord {
    /// The alias set on the VF to find it again after renames and namespace moves.
    pub fn alias(&self) -> String {
        vf_alias(&self.pci)
    }
}

/// The alias that marks a VF as ours.
pub fn vf_alias(pci: &PciAddress) -> String {
    format!("sriov-ovs:{pci}")
}

/// Why a record on disk cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON of either version.
    #[error("not an attachment record")]
    Json(#[from] serde_json::Error),
    /// A newer release wrote it.
    #[error("attachment record version {0} is newer than this release's ({VERSION})")]
    Newer(u64),
    /// A version 1 record names no valid PCI address.
    #[error("invalid PCI address in version 1 record")]
    Pci(#[from] sriov_host::PciAddressError),
}

#[derive(Serialize)]
struct Versioned<'a> {
    version: u32,
    #[serde(flatten)]
    record: &'a AttachmentRecord,
}

/// The on-disk form.
pub fn encode(rec: &AttachmentRecord) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec_pretty(&Versioned {
        version: VERSION,
        record: rec,
    })
}

/// Reads either on-disk version.
pub fn decode(bytes: &[u8]) -> Result<AttachmentRecord, DecodeError> {
    let mut value: Value = serde_json::from_slice(bytes)?;
    match value.as_object_mut().and_then(|o| o.remove("version")) {
        None => Ok(serde_json::from_value::<v1::Record>(value)?.upgrade()?),
        Some(v) => match v.as_u64() {
            Some(n) if n > u64::from(VERSION) => Err(DecodeError::Newer(n)),
            _ => Ok(serde_json::from_value(value)?),
        },
    }
}

/// Version 1, as releases before version 2 wrote it (strings and the raw network configuration).
mod v1 {
    use super::{AttachmentRecord, IpamFacts, Phase, SavedRepresentor, SavedVf};
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Vf {
        name: String,
        ifindex: u32,
        mac: Option<String>,
        mtu: Option<u32>,
        alias: Option<String>,
        #[serde(default)]
        up: bool,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Record {
        container_id: String,
        ifname: String,
        netns: String,
        pci: String,
        vf: Option<Vf>,
        representor: SavedRepresentor,
        bridge: String,
        ovn_port: Option<String>,
        cni_path: String,
        cni_args: String,
        conf: Value,
        ipam_delegated: bool,
        phase: Phase,
    }

    impl Record {
        pub(super) fn upgrade(self) -> Result<AttachmentRecord, sriov_host::PciAddressError> {
            let plugin = self.conf["ipam"]["type"].as_str().map(str::to_string);
            Ok(AttachmentRecord {
                pci: self.pci.parse()?,
                network: self.conf["name"].as_str().unwrap_or_default().to_string(),
                ipam: plugin.filter(|_| self.ipam_delegated).map(|plugin| IpamFacts {
                    plugin,
                    conf: self.conf,
                    args: self.cni_args,
                    path: self.cni_path,
                }),
                container_id: self.container_id,
                ifname: self.ifname,
                netns: self.netns.into(),
                vf: self.vf.map(|v| SavedVf {
                    name: v.name,
                    ifindex: v.ifindex,
                    mac: v.mac.and_then(|m| m.parse().ok()),
                    mtu: v.mtu,
                    alias: v.alias,
                    up: v.up,
                }),
                representor: self.representor,
                bridge: self.bridge,
                iface_id: self.ovn_port,
                phase: self.phase,
            })
        }
    }
}

/// PCI addresses as their canonical text.
mod pci_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use sriov_host::PciAddress;

    pub fn serialize<S: Serializer>(pci: &PciAddress, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(pci)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PciAddress, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the release before version 2 wrote it (by its `StateDir::save`).
    const V1: &str = include_str!("../../tests/data/attachment-v1.json");

    #[test]
    fn reads_a_version_1_record() {
        let rec = decode(V1.as_bytes()).unwrap();
        assert_eq!(rec.pci.to_string(), "0000:84:00.2");
        assert_eq!(rec.alias(), "sriov-ovs:0000:84:00.2");
        assert_eq!(rec.network, "sriov-net");
        assert_eq!(
            rec.iface_id.as_deref(),
            Some("pod1.default.sriov-net.default.ovn")
        );
        assert_eq!(rec.netns, PathBuf::from("/var/run/netns/cni-1234"));
        let vf = rec.vf.as_ref().unwrap();
        assert_eq!(vf.mac, Some("02:00:00:00:00:07".parse().unwrap()));
        assert_eq!(
            (vf.name.as_str(), vf.ifindex, vf.mtu),
            ("enp132s0f0v0", 7, Some(1500))
        );
        let ipam = rec.ipam.as_ref().unwrap();
        assert_eq!(ipam.plugin, "host-local");
        assert_eq!(ipam.path, "/opt/cni/bin");
        assert_eq!(ipam.args, "K8S_POD_NAME=pod1");
        assert_eq!(rec.representor.new_name, "e2e0b3c4_net1_h");
        assert_eq!(rec.phase, Phase::Added);
    }

    #[test]
    fn version_2_round_trips_and_says_its_version() {
        let rec = decode(V1.as_bytes()).unwrap();
        let bytes = encode(&rec).unwrap();
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["version"], 2);
        assert_eq!(value["pci"], "0000:84:00.2");
        assert_eq!(decode(&bytes).unwrap(), rec);
    }

    #[test]
    fn a_zero_mac_in_version_1_is_not_restored_and_newer_versions_are_refused() {
        let mut v: Value = serde_json::from_str(V1).unwrap();
        v["vf"]["mac"] = "00:00:00:00:00:00".into();
        v["ipamDelegated"] = false.into();
        let rec = decode(v.to_string().as_bytes()).unwrap();
        assert_eq!(rec.vf.unwrap().mac, None);
        assert!(rec.ipam.is_none());
        let newer = serde_json::json!({"version": 3});
        assert!(matches!(
            decode(newer.to_string().as_bytes()),
            Err(DecodeError::Newer(3))
        ));
        assert!(matches!(decode(br#"{"pci":"nope"}"#), Err(DecodeError::Json(_))));
    }
}
