//! STATUS: OVSDB reachable, the bridge present and the IPAM plugin ready, else code 50.

use crate::error::{code, ErrorCode};
use crate::ipam::{self, IpamError};
use crate::skel::Request;
use crate::traits::{Ovs, OvsError};

/// The plugin cannot serve ADDs right now.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// OVSDB is not reachable.
    #[error("OVSDB is not reachable")]
    Ovsdb(#[source] OvsError),
    /// The bridge is missing.
    #[error("OVS bridge {bridge} does not exist")]
    NoBridge {
        /// Bridge.
        bridge: String,
    },
    /// The delegated IPAM plugin is missing or not ready.
    #[error("IPAM plugin is not ready")]
    Ipam(#[source] IpamError),
}

impl ErrorCode for StatusError {
    fn code(&self) -> u32 {
        code::NOT_AVAILABLE
    }
}

/// Runs STATUS against an established OVSDB connection.
pub async fn status<O: Ovs>(ovs: &O, bridge: &str) -> Result<(), StatusError> {
    if ovs.bridge_exists(bridge).await.map_err(StatusError::Ovsdb)? {
        Ok(())
    } else {
        Err(StatusError::NoBridge {
            bridge: bridge.to_string(),
        })
    }
}

/// Forwards STATUS to the delegated IPAM plugin, as the CNI spec asks of plugins that
/// delegate IPAM (plugins older than CNI 1.1.0 cannot answer and are skipped).
pub fn ipam_status(req: &Request) -> Result<(), StatusError> {
    let Some(plugin) = req.conf.ipam_type.as_deref() else {
        return Ok(());
    };
    ipam::network_wide(plugin, "STATUS", req).map_err(StatusError::Ipam)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_ovs::{block, FakeOvs};

    #[test]
    fn status_is_code_50_without_bridge_or_ovsdb() {
        let ovs = FakeOvs {
            bridges: vec!["br-int".into()],
            ..Default::default()
        };
        assert!(block(status(&ovs, "br-int")).is_ok());
        assert_eq!(block(status(&ovs, "br-x")).unwrap_err().code(), 50);
        let down = FakeOvs {
            down: true,
            ..Default::default()
        };
        assert_eq!(block(status(&down, "br-int")).unwrap_err().code(), 50);
    }
}
