//! A recording in-memory kernel for unit tests of node operations (test code only): network
//! namespaces holding links, addresses and routes, with the kernel's rules that matter here
//! (names unique per namespace, a move clashing with a name fails with `EEXIST`), and a
//! failure injected at any call.

use crate::ipnet::IpNet;
use crate::mac::MacAddr;
use crate::netlink::addr::AddrError;
use crate::netlink::link::{Link, LinkError};
use crate::netns::NetnsError;
use crate::result::{IpConfig, Route};
use crate::sys::{Namespaces, Net};
use std::collections::BTreeMap;
use std::num::NonZeroI32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The label of the host namespace.
pub const HOST: &str = "host";

#[derive(Debug, Default)]
struct World {
    /// Links by namespace label.
    links: BTreeMap<String, Vec<Link>>,
    /// Addresses by ifindex.
    addresses: BTreeMap<u32, Vec<IpNet>>,
    /// Routes as `ns dst`.
    routes: Vec<String>,
    /// Every call, as `ns: verb args`.
    calls: Vec<String>,
    /// A call whose record starts with this fails (once).
    fail: Option<String>,
}

/// The fake kernel; clones share it.
#[derive(Debug, Clone, Default)]
pub struct FakeKernel(Arc<Mutex<World>>);

/// One namespace of a [`FakeKernel`].
#[derive(Debug, Clone)]
pub struct FakeNet {
    label: String,
    kernel: FakeKernel,
}

fn errno(e: i32) -> rtnetlink::Error {
    let mut msg = netlink_packet_core::ErrorMessage::default();
    msg.code = NonZeroI32::new(-e);
    rtnetlink::Error::NetlinkError(msg)
}

impl FakeKernel {
    fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a namespace (the host exists from the start).
    pub fn add_ns(&self, label: &str) {
        self.world().links.entry(label.to_string()).or_default();
    }

    /// Removes a namespace; its links go back to the host as the kernel does (physical
    /// netdevs), under their current names.
    pub fn remove_ns(&self, label: &str) {
        let mut w = self.world();
        let links = w.links.remove(label).unwrap_or_default();
        w.links.entry(HOST.into()).or_default().extend(links);
    }

    /// Adds a link in `ns` and returns its ifindex.
    pub fn add_link(&self, ns: &str, name: &str, mac: &str) -> u32 {
        let mut w = self.world();
        let index = 2 + w.links.values().map(Vec::len).sum::<usize>() as u32;
        w.links.entry(ns.into()).or_default().push(Link {
            index,
            name: name.into(),
            mac: mac.parse().ok(),
            mtu: Some(1500),
            alias: None,
            altnames: Vec::new(),
            up: true,
        });
        index
    }

    /// The link named `name` in `ns`.
    pub fn link(&self, ns: &str, name: &str) -> Option<Link> {
        self.world()
            .links
            .get(ns)?
            .iter()
            .find(|l| l.name == name)
            .cloned()
    }

    /// Names of the links in `ns`.
    pub fn names(&self, ns: &str) -> Vec<String> {
        let w = self.world();
        w.links
            .get(ns)
            .map(|v| v.iter().map(|l| l.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Addresses of ifindex `index`.
    pub fn addresses(&self, index: u32) -> Vec<IpNet> {
        self.world().addresses.get(&index).cloned().unwrap_or_default()
    }

    /// Every call made so far.
    pub fn calls(&self) -> Vec<String> {
        self.world().calls.clone()
    }

    /// Makes the next call whose record starts with `prefix` fail.
    pub fn fail_at(&self, prefix: &str) {
        self.world().fail = Some(prefix.into());
    }

    /// Records `call` in `ns`; `Err` if it is the injected failure.
    fn record(&self, ns: &str, call: String) -> Result<(), rtnetlink::Error> {
        let mut w = self.world();
        let line = format!("{ns}: {call}");
        let fails = w.fail.as_deref().is_some_and(|p| line.starts_with(p));
        w.calls.push(line);
        if fails {
            w.fail = None;
            return Err(errno(libc::EIO));
        }
        Ok(())
    }

    /// Runs `f` on the link with `index` in `ns`.
    fn with_link<T>(
        &self,
        ns: &str,
        index: u32,
        f: impl FnOnce(&mut Link) -> T,
    ) -> Result<T, rtnetlink::Error> {
        let mut w = self.world();
        let link = w
            .links
            .get_mut(ns)
            .and_then(|v| v.iter_mut().find(|l| l.index == index))
            .ok_or_else(|| errno(libc::ENODEV))?;
        Ok(f(link))
    }
}

impl Namespaces for FakeKernel {
    type Net = FakeNet;

    fn host(&self) -> Result<FakeNet, NetnsError> {
        self.add_ns(HOST);
        Ok(FakeNet {
            label: HOST.into(),
            kernel: self.clone(),
        })
    }

    fn open(&self, path: &Path) -> Result<FakeNet, NetnsError> {
        let label = path.display().to_string();
        if !self.world().links.contains_key(&label) {
            return Err(NetnsError::Open {
                path: PathBuf::from(path),
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        Ok(FakeNet {
            label,
            kernel: self.clone(),
        })
    }
}

impl FakeNet {
    fn record(&self, call: String) -> Result<(), rtnetlink::Error> {
        self.kernel.record(&self.label, call)
    }

    fn change(&self, l: &Link, call: String, f: impl FnOnce(&mut Link)) -> Result<(), rtnetlink::Error> {
        self.record(call)?;
        self.kernel.with_link(&self.label, l.index, f)
    }
}

impl Net for FakeNet {
    fn label(&self) -> &str {
        &self.label
    }

    async fn links(&self) -> Result<Vec<Link>, LinkError> {
        let w = self.kernel.world();
        Ok(w.links.get(&self.label).cloned().unwrap_or_default())
    }

    async fn link_by_name(&self, name: &str) -> Result<Option<Link>, LinkError> {
        Ok(self.kernel.link(&self.label, name))
    }

    async fn link_by_index(&self, index: u32) -> Result<Option<Link>, LinkError> {
        let w = self.kernel.world();
        Ok(w.links
            .get(&self.label)
            .and_then(|v| v.iter().find(|l| l.index == index).cloned()))
    }

    async fn set_up(&self, l: &Link, up: bool) -> Result<(), LinkError> {
        let state = if up { "up" } else { "down" };
        self.change(l, format!("set {} {state}", l.name), |x| x.up = up)
            .map_err(LinkError::failed(format!(
                "set {} (ifindex {}) {state}",
                l.name, l.index
            )))
    }

    async fn rename(&self, l: &Link, to: &str) -> Result<(), LinkError> {
        let err = |source| LinkError::failed(format!("rename {} to {to}", l.name))(source);
        self.record(format!("rename {} {to}", l.name)).map_err(err)?;
        let clash = self.kernel.world().links[&self.label]
            .iter()
            .any(|x| x.index != l.index && (x.name == to || x.altnames.iter().any(|a| a == to)));
        if clash {
            return Err(err(errno(libc::EEXIST)));
        }
        self.kernel
            .with_link(&self.label, l.index, |x| x.name = to.into())
            .map_err(err)
    }

    async fn set_mac(&self, l: &Link, mac: MacAddr) -> Result<(), LinkError> {
        self.change(l, format!("set {} mac {mac}", l.name), |x| x.mac = Some(mac))
            .map_err(LinkError::failed(format!("set mac of {}", l.name)))
    }

    async fn set_mtu(&self, l: &Link, mtu: u32) -> Result<(), LinkError> {
        self.change(l, format!("set {} mtu {mtu}", l.name), |x| x.mtu = Some(mtu))
            .map_err(LinkError::failed(format!("set mtu of {}", l.name)))
    }

    async fn set_alias(&self, l: &Link, alias: &str) -> Result<(), LinkError> {
        let value = Some(alias.to_string()).filter(|a| !a.is_empty());
        self.change(l, format!("set {} alias {alias:?}", l.name), |x| x.alias = value)
            .map_err(LinkError::failed(format!("set alias of {}", l.name)))
    }

    async fn del_altname(&self, l: &Link, altname: &str) -> Result<(), LinkError> {
        self.change(l, format!("del-altname {} {altname}", l.name), |x| {
            x.altnames.retain(|a| a != altname)
        })
        .map_err(LinkError::failed(format!(
            "delete altname {altname} of {}",
            l.name
        )))
    }

    async fn move_to(&self, l: &Link, to: &FakeNet) -> Result<(), LinkError> {
        let err = |source| LinkError::MoveToNetns {
            iface: l.name.clone(),
            netns: to.label.clone(),
            source,
        };
        self.record(format!("move {} {}", l.name, to.label))
            .map_err(err)?;
        let mut w = self.kernel.world();
        let from = w
            .links
            .get_mut(&self.label)
            .ok_or_else(|| err(errno(libc::ENODEV)))?;
        let pos = from
            .iter()
            .position(|x| x.index == l.index)
            .ok_or_else(|| err(errno(libc::ENODEV)))?;
        let moving = from[pos].clone();
        let names: Vec<&String> = std::iter::once(&moving.name).chain(&moving.altnames).collect();
        let target = w.links.get(&to.label).ok_or_else(|| err(errno(libc::EINVAL)))?;
        if target
            .iter()
            .any(|x| names.contains(&&x.name) || x.altnames.iter().any(|a| names.contains(&a)))
        {
            return Err(err(errno(libc::EEXIST)));
        }
        let from = w
            .links
            .get_mut(&self.label)
            .ok_or_else(|| err(errno(libc::ENODEV)))?;
        let mut moved = from.remove(pos);
        // Moving takes a link down, as the kernel does.
        moved.up = false;
        w.links.entry(to.label.clone()).or_default().push(moved);
        Ok(())
    }

    async fn add_address(&self, l: &Link, addr: IpNet) -> Result<(), AddrError> {
        self.record(format!("add-address {} {addr}", l.name))
            .map_err(AddrError::failed(format!("add address {addr} to {}", l.name)))?;
        self.kernel
            .world()
            .addresses
            .entry(l.index)
            .or_default()
            .push(addr);
        Ok(())
    }

    async fn addresses(&self, l: &Link) -> Result<Vec<IpNet>, AddrError> {
        Ok(self.kernel.addresses(l.index))
    }

    async fn add_route(&self, l: &Link, route: &Route, _ips: &[IpConfig]) -> Result<(), AddrError> {
        self.record(format!("add-route {} {}", l.name, route.dst))
            .map_err(AddrError::failed(format!(
                "add route to {} via {:?} on {}",
                route.dst, route.gw, l.name
            )))?;
        let line = format!("{} {}", self.label, route.dst);
        self.kernel.world().routes.push(line);
        Ok(())
    }

    fn another_socket(&self) -> Result<FakeNet, NetnsError> {
        Ok(self.clone())
    }

    fn write_sysctl(&self, key: &str, value: &str) -> Result<(), NetnsError> {
        self.record(format!("sysctl {key}={value}"))
            .map_err(|e| NetnsError::Sysctl {
                path: PathBuf::from(key),
                source: std::io::Error::other(e),
            })
    }
}
