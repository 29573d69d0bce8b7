//! The `external_ids` this plugin writes on the representor's OVS interface.

use std::collections::BTreeMap;

/// OVN logical port name.
pub const IFACE_ID: &str = "iface-id";
/// Pod name.
pub const POD_NAME: &str = "pod_name";
/// Pod namespace.
pub const POD_NAMESPACE: &str = "pod_namespace";
/// Pod netns path.
pub const POD_NETNS: &str = "pod_netns";
/// Pod IPs, comma separated.
pub const IP: &str = "ip";
/// Always `sriov-ovs`.
pub const VENDOR: &str = "vendor";
/// Our value of `vendor`.
pub const VENDOR_VALUE: &str = "sriov-ovs";
/// Container ID (to tell our port from a newer attachment's).
pub const CONTAINER_ID: &str = "sriov-ovs_container_id";
/// Pod interface name.
pub const IFNAME: &str = "sriov-ovs_ifname";
/// VF PCI address.
pub const VF_PCI: &str = "sriov-ovs_vf";
/// Set by ovn-controller once flows are installed.
pub const OVN_INSTALLED: &str = "ovn-installed";

/// Inputs of [`external_ids`].
#[derive(Debug, Clone, Default)]
pub struct PortIdentity<'a> {
    /// OVN port name.
    pub iface_id: Option<&'a str>,
    /// Pod name.
    pub pod_name: Option<&'a str>,
    /// Pod namespace.
    pub pod_namespace: Option<&'a str>,
    /// Netns path.
    pub netns: &'a str,
    /// Pod IPs without prefix.
    pub ips: Vec<String>,
    /// Container ID.
    pub container_id: &'a str,
    /// Interface name.
    pub ifname: &'a str,
    /// VF PCI address.
    pub pci: &'a str,
}

/// The `external_ids` map for a port.
pub fn external_ids(id: &PortIdentity<'_>) -> BTreeMap<String, String> {
    let ips = id.ips.join(",");
    [
        (IFACE_ID, id.iface_id),
        (POD_NAME, id.pod_name),
        (POD_NAMESPACE, id.pod_namespace),
        (POD_NETNS, Some(id.netns)),
        (IP, Some(ips.as_str()).filter(|s| !s.is_empty())),
        (VENDOR, Some(VENDOR_VALUE)),
        (CONTAINER_ID, Some(id.container_id)),
        (IFNAME, Some(id.ifname)),
        (VF_PCI, Some(id.pci)),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_string(), v?.to_string())))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_ovn_keys_present_and_optional_ones_omitted() {
        let m = external_ids(&PortIdentity {
            iface_id: Some("p.ns"),
            pod_name: Some("p"),
            pod_namespace: Some("ns"),
            netns: "/run/netns/x",
            ips: vec!["10.0.0.2".into(), "fd00::2".into()],
            container_id: "c",
            ifname: "eth0",
            pci: "0000:84:00.2",
        });
        assert_eq!(m["iface-id"], "p.ns");
        assert_eq!(m["ip"], "10.0.0.2,fd00::2");
        assert_eq!(m["vendor"], "sriov-ovs");
        let m = external_ids(&PortIdentity {
            netns: "/n",
            container_id: "c",
            ifname: "eth0",
            pci: "x",
            ..Default::default()
        });
        assert!(!m.contains_key("iface-id") && !m.contains_key("ip") && !m.contains_key("pod_namespace"));
    }
}
