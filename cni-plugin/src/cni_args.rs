//! `CNI_ARGS` (`K=V;K=V`): pod identity and the `MAC=` override.

/// The keys of `CNI_ARGS` this plugin reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    /// `K8S_POD_NAME`.
    pub pod_name: Option<String>,
    /// `K8S_POD_NAMESPACE`.
    pub pod_namespace: Option<String>,
    /// `MAC`.
    pub mac: Option<String>,
}

/// `CNI_ARGS` holds something that is not `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CNI_ARGS: {pair:?} is not KEY=VALUE")]
pub struct InvalidCniArgs {
    /// The offending pair.
    pub pair: String,
}

impl CniArgs {
    /// Parses `CNI_ARGS`; empty pairs and unknown keys are skipped.
    pub fn parse(raw: &str) -> Result<CniArgs, InvalidCniArgs> {
        let mut args = CniArgs::default();
        for pair in raw.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| InvalidCniArgs {
                pair: pair.to_string(),
            })?;
            let non_empty = (!value.is_empty()).then(|| value.to_string());
            match key {
                "K8S_POD_NAME" => args.pod_name = non_empty,
                "K8S_POD_NAMESPACE" => args.pod_namespace = non_empty,
                "MAC" => args.mac = non_empty,
                _ => {}
            }
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kubernetes_identity_and_mac() {
        let a = CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;MAC=02:00:00:00:00:09").unwrap();
        assert_eq!(a.pod_name.as_deref(), Some("web-0"));
        assert_eq!(a.pod_namespace.as_deref(), Some("ns1"));
        assert_eq!(a.mac.as_deref(), Some("02:00:00:00:00:09"));
    }

    #[test]
    fn podman_args_have_no_namespace() {
        let a = CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAME=ctr").unwrap();
        assert_eq!(a.pod_name.as_deref(), Some("ctr"));
        assert!(a.pod_namespace.is_none());
    }

    #[test]
    fn empty_is_fine_and_garbage_is_not() {
        assert_eq!(CniArgs::parse("").unwrap(), CniArgs::default());
        assert!(CniArgs::parse("IgnoreUnknown=1;garbage").is_err());
    }
}
