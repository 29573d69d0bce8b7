//! Parsing of OVSDB endpoints: `unix:PATH`, a plain path, or `tcp:HOST:PORT`.

use std::fmt;
use std::path::PathBuf;

/// Where the OVSDB server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix stream socket (`unix:/run/openvswitch/db.sock` or `/run/openvswitch/db.sock`).
    Unix(PathBuf),
    /// A TCP address (`tcp:127.0.0.1:6640`); IPv6 as `tcp:[::1]:6640`.
    Tcp(String),
}

impl Endpoint {
    /// Parses an endpoint string. Only `unix:`, `tcp:` and absolute or relative paths are accepted.
    pub fn parse(s: &str) -> Result<Endpoint, EndpointError> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(EndpointError::Empty {
                    endpoint: s.to_string(),
                });
            }
            Ok(Endpoint::Unix(PathBuf::from(path)))
        } else if let Some(addr) = s.strip_prefix("tcp:") {
            if addr.is_empty() || !addr.contains(':') {
                return Err(EndpointError::TcpWithoutPort {
                    endpoint: s.to_string(),
                });
            }
            Ok(Endpoint::Tcp(addr.to_string()))
        } else if s.is_empty() {
            Err(EndpointError::Empty {
                endpoint: s.to_string(),
            })
        } else if let Some((scheme, _)) = s.split_once(':').filter(|(p, _)| !p.contains('/')) {
            Err(EndpointError::UnsupportedScheme {
                endpoint: s.to_string(),
                scheme: scheme.to_string(),
            })
        } else {
            Ok(Endpoint::Unix(PathBuf::from(s)))
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = EndpointError;
    fn from_str(s: &str) -> Result<Endpoint, EndpointError> {
        Endpoint::parse(s)
    }
}

/// An endpoint string that cannot be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EndpointError {
    /// Nothing after the scheme, or an empty string.
    #[error("empty OVSDB endpoint {endpoint:?}")]
    Empty {
        /// The string given.
        endpoint: String,
    },
    /// `tcp:` needs `HOST:PORT`.
    #[error("OVSDB endpoint {endpoint:?} needs tcp:HOST:PORT")]
    TcpWithoutPort {
        /// The string given.
        endpoint: String,
    },
    /// `ssl:`, `punix:` and the like.
    #[error("OVSDB endpoint {endpoint:?}: scheme {scheme:?} is not supported (use unix: or tcp:)")]
    UnsupportedScheme {
        /// The string given.
        endpoint: String,
        /// The scheme found.
        scheme: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_accepted_forms() {
        assert_eq!(
            Endpoint::parse("unix:/run/openvswitch/db.sock").unwrap(),
            Endpoint::Unix("/run/openvswitch/db.sock".into())
        );
        assert_eq!(
            Endpoint::parse("/tmp/x/db.sock").unwrap(),
            Endpoint::Unix("/tmp/x/db.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp:127.0.0.1:6640").unwrap(),
            Endpoint::Tcp("127.0.0.1:6640".into())
        );
        assert!(Endpoint::parse("ssl:1.2.3.4:6640").is_err());
        assert!(Endpoint::parse("unix:").is_err());
        assert!(Endpoint::parse("tcp:host").is_err());
        assert!(Endpoint::parse("").is_err());
        assert_eq!(
            Endpoint::parse("unix:/a").unwrap().to_string(),
            "unix:/a".to_string()
        );
    }
}
