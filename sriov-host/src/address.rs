//! PCI addresses (`domain:bus:device.function`) as the kernel names them.

use std::fmt;
use std::str::FromStr;

/// A PCI function address such as `0000:84:00.2`.
///
/// Displayed in the kernel's canonical form (4-digit domain, lower-case hex),
/// which is also the name of the function's directory in sysfs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PciAddress {
    /// PCI domain (segment).
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number, 0..=31.
    pub device: u8,
    /// Function number, 0..=7.
    pub function: u8,
}

/// A string that is not a PCI address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid PCI address {input:?}: expected [dddd:]bb:dd.f in hex, e.g. 0000:84:00.2")]
pub struct PciAddressError {
    /// The text that failed to parse.
    pub input: String,
}

impl PciAddress {
    /// The function at routing ID `rid` (bus << 8 | device << 3 | function) in domain 0.
    pub fn from_rid(rid: u16) -> PciAddress {
        let [bus, devfn] = rid.to_be_bytes();
        PciAddress {
            domain: 0,
            bus,
            device: devfn >> 3,
            function: devfn & 7,
        }
    }

    /// The routing ID of this function within its domain.
    pub fn rid(&self) -> u16 {
        u16::from(self.bus) << 8 | u16::from(self.device) << 3 | u16::from(self.function)
    }
}

impl FromStr for PciAddress {
    type Err = PciAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PciAddressError { input: s.to_string() };
        let (rest, function) = s.rsplit_once('.').ok_or_else(err)?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (domain, bus, device) = match parts.as_slice() {
            [domain, bus, device] => (*domain, *bus, *device),
            [bus, device] => ("0", *bus, *device),
            _ => return Err(err()),
        };
        let hex = |text: &str, max_len: usize| -> Result<u32, PciAddressError> {
            if text.is_empty() || text.len() > max_len || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            u32::from_str_radix(text, 16).map_err(|_| err())
        };
        let domain = hex(domain, 8)?;
        let bus = hex(bus, 2)?;
        let device = hex(device, 2)?;
        let function = hex(function, 1)?;
        if device > 0x1f || function > 7 {
            return Err(err());
        }
        Ok(PciAddress {
            domain,
            bus: bus as u8,
            device: device as u8,
            function: function as u8,
        })
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_short_forms() {
        let full: PciAddress = "0000:84:00.2".parse().unwrap();
        let short: PciAddress = "84:00.2".parse().unwrap();
        assert_eq!(full, short);
        assert_eq!(full.to_string(), "0000:84:00.2");
        let upper: PciAddress = "0000:AF:1F.7".parse().unwrap();
        assert_eq!(upper.to_string(), "0000:af:1f.7");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "84:00",
            "0000:84:00.8",
            "0000:84:20.0",
            "zz:00.0",
            "1:2:3:4.0",
            "84:00.",
            "0000:84:00.2 ",
        ] {
            assert!(bad.parse::<PciAddress>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn routing_ids_round_trip() {
        let a = PciAddress::from_rid(0x8402);
        assert_eq!(a.to_string(), "0000:84:00.2");
        assert_eq!(PciAddress::from_rid(0x84ff).to_string(), "0000:84:1f.7");
        assert_eq!(a.rid(), 0x8402);
    }

    #[test]
    fn orders_by_domain_bus_device_function() {
        let mut v: Vec<PciAddress> = ["0000:84:01.0", "0000:84:00.7", "0000:05:00.0"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        v.sort();
        let names: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["0000:05:00.0", "0000:84:00.7", "0000:84:01.0"]);
    }
}
