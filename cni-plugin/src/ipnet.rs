//! An IP address with a prefix length (`10.0.0.2/24`), as CNI writes addresses and routes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address plus prefix length; the host bits are kept (it is an interface address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

/// The text is not `ADDRESS/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {0:?}: want ADDRESS/PREFIX")]
pub struct InvalidCidr(pub String);

impl IpNet {
    /// Whether this is an IPv4 network.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        match self.addr {
            // A /0 shifts every bit out: `checked_shl` refuses that, the mask is then 0.
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix));
                IpAddr::V4((u32::from(a) & mask.unwrap_or(0)).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix));
                IpAddr::V6((u128::from(a) & mask.unwrap_or(0)).into())
            }
        }
    }
}

impl FromStr for IpNet {
    type Err = InvalidCidr;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidCidr(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad());
        }
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_and_v6_and_keeps_host_bits() {
        let n: IpNet = "10.1.2.3/24".parse().unwrap();
        assert_eq!(n.to_string(), "10.1.2.3/24");
        assert_eq!(n.network().to_string(), "10.1.2.0");
        let n: IpNet = "fd00::5/64".parse().unwrap();
        assert_eq!(n.network().to_string(), "fd00::");
        assert_eq!(
            "0.0.0.0/0".parse::<IpNet>().unwrap().network().to_string(),
            "0.0.0.0"
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["10.1.2.3", "10.1.2.3/33", "x/24", "fd00::/129", ""] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }
}
