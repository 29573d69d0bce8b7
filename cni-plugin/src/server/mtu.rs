//! The pod interface's MTU, chosen as Kube-OVN's daemon chooses it (kube-ovn v1.12.35
//! `pkg/daemon/handler.go` `handleAdd`): the Subnet's `spec.mtu`; else, on an underlay Subnet
//! (the pod has a `provider_network` annotation) that is neither `logicalGateway` nor
//! `u2oInterconnection`, the node's label `<provider network>.provider-network.kubernetes.io/mtu`,
//! and without that label the VF keeps its MTU; else the server's `--mtu`.

/// What of a Kube-OVN Subnet decides the MTU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubnetFacts {
    /// `spec.mtu`, when set and positive.
    pub mtu: Option<u32>,
    /// `spec.logicalGateway`.
    pub logical_gateway: bool,
    /// `spec.u2oInterconnection`.
    pub u2o_interconnection: bool,
}

/// Where the MTU comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// This MTU (`None`: leave the VF's).
    Fixed(Option<u32>),
    /// The node label with this key.
    NodeLabel(String),
}

/// The node label Kube-OVN's provider network writes with its MTU (`util.ProviderNetworkMtuTemplate`).
pub fn label_key(provider_network: &str) -> String {
    format!("{provider_network}.provider-network.kubernetes.io/mtu")
}

/// Where the MTU of a pod on `subnet` comes from; `provider_network` is the pod's annotation,
/// `default` the server's `--mtu`.
pub fn choose(subnet: &SubnetFacts, provider_network: Option<&str>, default: Option<u32>) -> Choice {
    if let Some(mtu) = subnet.mtu {
        return Choice::Fixed(Some(mtu));
    }
    match provider_network {
        Some(pn) if !subnet.logical_gateway && !subnet.u2o_interconnection => {
            Choice::NodeLabel(label_key(pn))
        }
        _ => Choice::Fixed(default),
    }
}

/// The node label's value is not an MTU.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("node label {key}={value:?} is not a positive MTU")]
pub struct BadLabel {
    /// The label.
    pub key: String,
    /// Its value.
    pub value: String,
}

/// The MTU a node label gives (absent or empty: leave the VF's).
pub fn from_label(key: &str, value: Option<&str>) -> Result<Option<u32>, BadLabel> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<u32>().ok().filter(|m| *m > 0).ok_or_else(|| BadLabel {
                key: key.into(),
                value: v.into(),
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_kube_ovn_decides() {
        let plain = SubnetFacts::default();
        let own = SubnetFacts {
            mtu: Some(9000),
            ..plain.clone()
        };
        let gw = SubnetFacts {
            logical_gateway: true,
            ..plain.clone()
        };
        let u2o = SubnetFacts {
            u2o_interconnection: true,
            ..plain.clone()
        };
        let label = Choice::NodeLabel("pn0.provider-network.kubernetes.io/mtu".into());
        assert_eq!(choose(&own, Some("pn0"), Some(1400)), Choice::Fixed(Some(9000)));
        assert_eq!(choose(&plain, None, Some(1400)), Choice::Fixed(Some(1400)));
        assert_eq!(choose(&plain, None, None), Choice::Fixed(None));
        assert_eq!(choose(&plain, Some("pn0"), Some(1400)), label);
        assert_eq!(choose(&gw, Some("pn0"), Some(1400)), Choice::Fixed(Some(1400)));
        assert_eq!(choose(&u2o, Some("pn0"), None), Choice::Fixed(None));
    }

    #[test]
    fn labels() {
        let key = label_key("pn0");
        assert_eq!(from_label(&key, Some("1450")), Ok(Some(1450)));
        assert_eq!(from_label(&key, None), Ok(None));
        assert_eq!(from_label(&key, Some("")), Ok(None));
        for bad in ["0", "-1", "jumbo"] {
            let e = from_label(&key, Some(bad)).unwrap_err();
            assert_eq!(e.value, bad);
            assert!(e.to_string().contains("pn0.provider-network.kubernetes.io/mtu"));
        }
    }
}
