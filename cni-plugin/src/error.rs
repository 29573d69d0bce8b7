//! The CNI error object (`{cniVersion, code, msg, details}`) and the codes it carries.

use serde::{Deserialize, Serialize};
use std::error::Error as StdError;

/// Well-known CNI error codes (spec section "Error") and this plugin's own (100+).
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO_FAILURE: u32 = 5;
    /// Failed to decode content.
    pub const DECODE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin is not available.
    pub const NOT_AVAILABLE: u32 = 50;
    /// Ours: the VF could not be resolved or used (sysfs, eswitch mode, netdev).
    pub const VF: u32 = 100;
    /// Ours: a netlink operation failed.
    pub const NETLINK: u32 = 101;
    /// Ours: an OVSDB operation failed.
    pub const OVSDB: u32 = 102;
    /// Ours: the IPAM plugin could not be run or returned garbage.
    pub const IPAM: u32 = 103;
    /// Ours: the state directory could not be read or written.
    pub const STATE: u32 = 104;
    /// Ours: a wait (ofport, ovn-installed) timed out.
    pub const TIMEOUT: u32 = 105;
}

/// Anything that maps onto a CNI error code.
pub trait ErrorCode {
    /// The CNI error code for this error.
    fn code(&self) -> u32;
}

/// The error object printed on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniError {
    /// Version of the request (or the newest supported one).
    #[serde(default)]
    pub cni_version: String,
    /// Error code.
    pub code: u32,
    /// Short message.
    pub msg: String,
    /// Longer details: the chain of causes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    /// Builds the CNI error for `err`: its code, its message and its chain of causes.
    pub fn from_error<E: StdError + ErrorCode + ?Sized>(cni_version: &str, err: &E) -> CniError {
        CniError {
            cni_version: cni_version.to_string(),
            code: err.code(),
            msg: err.to_string(),
            // The causes, outermost first (not `err` itself).
            details: std::iter::successors(err.source(), |&e| e.source())
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(": "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer step failed")]
    struct Outer {
        #[source]
        source: std::io::Error,
    }
    impl ErrorCode for Outer {
        fn code(&self) -> u32 {
            code::IO_FAILURE
        }
    }

    #[test]
    fn error_json_has_code_msg_and_cause_chain() {
        let err = Outer {
            source: std::io::Error::other("disk on fire"),
        };
        let cni = CniError::from_error("1.0.0", &err);
        let json = serde_json::to_value(&cni).unwrap();
        assert_eq!(json["cniVersion"], "1.0.0");
        assert_eq!(json["code"], 5);
        assert_eq!(json["msg"], "outer step failed");
        assert_eq!(json["details"], "disk on fire");
    }
}
