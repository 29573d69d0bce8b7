//! Supported CNI spec versions and the VERSION answer.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A CNI spec version this plugin speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    /// 0.3.1
    V0_3_1,
    /// 0.4.0 (adds CHECK)
    V0_4_0,
    /// 1.0.0 (drops `ips[].version`)
    V1_0_0,
    /// 1.1.0 (adds STATUS, GC, interface `mtu`/`pciID`)
    V1_1_0,
}

/// Every version, oldest first, as listed by VERSION.
pub const SUPPORTED: [CniVersion; 4] = [
    CniVersion::V0_3_1,
    CniVersion::V0_4_0,
    CniVersion::V1_0_0,
    CniVersion::V1_1_0,
];

impl CniVersion {
    /// The newest version we speak.
    pub const LATEST: CniVersion = CniVersion::V1_1_0;

    /// The version as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            CniVersion::V0_3_1 => "0.3.1",
            CniVersion::V0_4_0 => "0.4.0",
            CniVersion::V1_0_0 => "1.0.0",
            CniVersion::V1_1_0 => "1.1.0",
        }
    }

    /// Results of this version carry `ips[].version` ("4"/"6").
    pub fn ips_have_version(self) -> bool {
        self < CniVersion::V1_0_0
    }

    /// CHECK exists from 0.4.0 on.
    pub fn has_check(self) -> bool {
        self >= CniVersion::V0_4_0
    }

    /// STATUS and GC exist from 1.1.0 on.
    pub fn has_status_and_gc(self) -> bool {
        self >= CniVersion::V1_1_0
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version string is not one we speak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported CNI version {0:?} (supported: 0.3.1, 0.4.0, 1.0.0, 1.1.0)")]
pub struct UnsupportedVersion(pub String);

impl FromStr for CniVersion {
    type Err = UnsupportedVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SUPPORTED
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnsupportedVersion(s.to_string()))
    }
}

/// The answer to VERSION.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// The version of this answer's format.
    pub cni_version: &'static str,
    /// Every version the plugin speaks.
    pub supported_versions: Vec<&'static str>,
}

/// Builds the VERSION answer.
pub fn version_info() -> VersionInfo {
    VersionInfo {
        cni_version: CniVersion::LATEST.as_str(),
        supported_versions: SUPPORTED.iter().map(|v| v.as_str()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_supported_version_and_rejects_others() {
        for v in SUPPORTED {
            assert_eq!(v.as_str().parse::<CniVersion>().unwrap(), v);
        }
        assert!("0.2.0".parse::<CniVersion>().is_err());
        assert!("1.2.0".parse::<CniVersion>().is_err());
        assert!("".parse::<CniVersion>().is_err());
    }

    #[test]
    fn version_lists_all_four() {
        let json = serde_json::to_value(version_info()).unwrap();
        assert_eq!(
            json["supportedVersions"],
            serde_json::json!(["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
        );
        assert_eq!(json["cniVersion"], "1.1.0");
    }

    #[test]
    fn feature_gates_follow_the_spec() {
        assert!(CniVersion::V0_3_1.ips_have_version());
        assert!(!CniVersion::V1_0_0.ips_have_version());
        assert!(!CniVersion::V0_3_1.has_check());
        assert!(CniVersion::V0_4_0.has_check());
        assert!(CniVersion::V1_1_0.has_status_and_gc());
        assert!(!CniVersion::V1_0_0.has_status_and_gc());
    }
}
