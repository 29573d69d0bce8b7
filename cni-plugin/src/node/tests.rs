//! Unit tests of attach, its rollback, release and GC against the recording fakes: no root,
//! milliseconds. The end-to-end tests in `tests/` remain the proof against the real kernel.

use super::*;
use crate::fake_ovs::{block, FakeOvs};
use crate::fake_sys::{FakeKernel, HOST};
use crate::port_ids;
use simnode::{Layout, SimNodeSpec};

const POD: &str = "/run/netns/pod1";

/// A simulated node: its sysfs tree, the fake kernel holding its VF and representor links, a
/// fake OVS with `br-int`, a state directory and a fake IPAM plugin that logs its calls.
struct Bed {
    dir: tempfile::TempDir,
    layout: Layout,
    kernel: FakeKernel,
    ovs: FakeOvs,
    sysfs: sriov_host::Sysfs,
    state: StateDir,
}

const IPAM: &str = r#"#!/bin/sh
cat > /dev/null
echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME $CNI_NETNS" >> "$(dirname "$0")/ipam.log"
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","ips":[{"address":"10.16.0.5/16","gateway":"10.16.0.1"}],"routes":[{"dst":"0.0.0.0/0"}]}'
fi
"#;

impl Bed {
    fn new() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let spec = SimNodeSpec::new("ut0", 1, 2).with_sysfs_root(dir.path().join("sys"));
        std::fs::create_dir_all(dir.path().join("sys")).unwrap();
        let layout = Layout::plan(&spec);
        simnode::tree::write_tree(&layout).unwrap();
        let kernel = FakeKernel::default();
        kernel.add_ns(HOST);
        kernel.add_ns(POD);
        for vf in layout.vfs() {
            let n = vf.netdev.as_ref().unwrap();
            kernel.add_link(HOST, &n.name, &n.mac);
            let r = vf.representor.as_ref().unwrap();
            kernel.add_link(HOST, &r.name, &r.mac);
        }
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("fake-ipam"), IPAM).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("fake-ipam"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let sysfs = sriov_host::Sysfs::new(dir.path().join("sys"));
        let state = StateDir::new(dir.path().join("state"));
        let ovs = FakeOvs {
            bridges: vec!["br-int".into()],
            ..Default::default()
        };
        Bed {
            dir,
            layout,
            kernel,
            ovs,
            sysfs,
            state,
        }
    }

    fn node(&self) -> Node<'_, FakeKernel> {
        Node {
            kernel: &self.kernel,
            sysfs: &self.sysfs,
            state: &self.state,
        }
    }

    fn vf(&self, i: u32) -> (PciAddress, String, String) {
        let vf = self.layout.vf(0, i).unwrap();
        (
            vf.pci.to_string().parse().unwrap(),
            vf.netdev_name().unwrap().to_string(),
            vf.representor_name().unwrap().to_string(),
        )
    }

    fn request(&self, cid: &str, vf: u32) -> AttachRequest {
        AttachRequest {
            container_id: cid.into(),
            ifname: "eth0".into(),
            netns: POD.into(),
            pci: self.vf(vf).0,
            mac: Some("02:00:00:00:00:aa".parse().unwrap()),
            mtu: Some(1400),
            addressing: Addressing::Ipam(IpamFacts {
                plugin: "fake-ipam".into(),
                conf: serde_json::json!({"cniVersion": "1.0.0", "name": "net"}),
                args: String::new(),
                path: self.dir.path().join("bin").display().to_string(),
            }),
            port: PortRequest {
                bridge: "br-int".into(),
                iface_id: Some("pod1.default".into()),
                ..Default::default()
            },
            network: "net".into(),
            ovn_installed_timeout: Duration::from_secs(1),
            ovs_apply_timeout: Duration::from_secs(1),
        }
    }

    fn release_request(&self, cid: &str, netns: Option<&str>) -> ReleaseRequest {
        ReleaseRequest {
            container_id: cid.into(),
            ifname: "eth0".into(),
            netns: netns.map(PathBuf::from),
            pci: None,
            bridge: "br-int".into(),
            ipam: None,
            ovs_apply_timeout: Duration::from_secs(1),
            listed_phase: None,
        }
    }

    fn attach(&self, req: &AttachRequest) -> Result<Attachment, AttachError> {
        block(attach(self.node(), std::future::ready(Ok(&self.ovs)), req))
    }

    fn release(&self, req: &ReleaseRequest) -> Result<Released, ReleaseError> {
        block(release(self.node(), &self.ovs, req))
    }

    fn ipam_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bin/ipam.log")).unwrap_or_default()
    }

    /// The host as it was before any attach: VF and representor under their names, up,
    /// MTU 1500, no alias; nothing in the pod, no port, no record.
    fn assert_pristine(&self, vf: u32) {
        let (pci, vf_name, rep_name) = self.vf(vf);
        let l = self
            .kernel
            .link(HOST, &vf_name)
            .unwrap_or_else(|| panic!("VF {vf_name} not back: host has {:?}", self.kernel.names(HOST)));
        assert_eq!(
            (l.up, l.mtu, l.alias.as_deref()),
            (true, Some(1500), None),
            "{l:?}"
        );
        // A VF's MAC is restored when it had one (mlx5 VFs often start all-zero: nothing to restore).
        let want_mac: Option<crate::mac::MacAddr> = self
            .layout
            .vf(0, vf)
            .unwrap()
            .netdev
            .as_ref()
            .unwrap()
            .mac
            .parse()
            .ok();
        if want_mac.is_some() {
            assert_eq!(l.mac, want_mac);
        }
        let r = self.kernel.link(HOST, &rep_name).unwrap();
        assert_eq!((r.up, r.mtu), (true, Some(1500)));
        assert!(self.kernel.names(POD).is_empty(), "{:?}", self.kernel.names(POD));
        assert!(self.ovs.ports.borrow().is_empty());
        assert!(self.state.list().unwrap().is_empty());
        assert!(self.state.owner(&pci).unwrap().is_none());
    }
}

/// Makes `FakeOvs` usable where attach wants an owned connection.
impl Ovs for &FakeOvs {
    async fn bridge_exists(&self, b: &str) -> Result<bool, OvsError> {
        (*self).bridge_exists(b).await
    }
    async fn add_port(&self, s: &crate::traits::PortSpec) -> Result<(), OvsError> {
        (*self).add_port(s).await
    }
    async fn del_port(&self, b: &str, p: &str) -> Result<(), OvsError> {
        (*self).del_port(b, p).await
    }
    async fn port(&self, n: &str) -> Result<Option<crate::traits::PortState>, OvsError> {
        (*self).port(n).await
    }
    async fn find_ports(&self, k: &str, v: &str) -> Result<Vec<crate::traits::PortState>, OvsError> {
        (*self).find_ports(k, v).await
    }
    async fn wait_ofport(&self, n: &str, t: Duration) -> Result<i64, OvsError> {
        (*self).wait_ofport(n, t).await
    }
    async fn wait_applied(&self, t: Duration) -> Result<(), OvsError> {
        (*self).wait_applied(t).await
    }
    async fn wait_ovn_installed(&self, n: &str, t: Duration) -> Result<(), OvsError> {
        (*self).wait_ovn_installed(n, t).await
    }
}

use crate::sys::Namespaces;
use crate::traits::{Ovs, OvsError};

#[test]
fn attach_runs_its_steps_in_order_and_records_the_attachment() {
    let bed = Bed::new();
    let (pci, vf_name, rep_name) = bed.vf(0);
    let att = bed.attach(&bed.request("c1", 0)).unwrap();
    let calls = bed.kernel.calls();
    let at = |needle: &str| {
        calls
            .iter()
            .position(|c| c.starts_with(needle))
            .unwrap_or_else(|| panic!("{needle} not in {calls:#?}"))
    };
    let new_rep = &att.representor.name;
    let order = [
        at(&format!("host: set {vf_name} alias \"sriov-ovs:{pci}\"")),
        at(&format!("host: set {vf_name} down")),
        at(&format!("host: move {vf_name} {POD}")),
        at(&format!("{POD}: rename {vf_name} eth0")),
        at(&format!("{POD}: set eth0 mac 02:00:00:00:00:aa")),
        at(&format!("{POD}: set eth0 mtu 1400")),
        at(&format!("{POD}: set eth0 up")),
        at(&format!("{POD}: add-address eth0 10.16.0.5/16")),
        at(&format!("{POD}: add-route eth0 0.0.0.0/0")),
        at(&format!("host: set {rep_name} down")),
        at(&format!("host: rename {rep_name} {new_rep}")),
        at(&format!("host: set {new_rep} mtu 1400")),
        at(&format!("host: set {new_rep} up")),
        at(&format!("{POD}: sysctl net/ipv4/conf/eth0/arp_notify=1")),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?} {calls:#?}");
    assert_eq!(
        *bed.ovs.calls.borrow(),
        vec![
            "bridge_exists br-int".to_string(),
            format!("add_port br-int {new_rep}"),
            format!("wait_ofport {new_rep}"),
            format!("wait_ovn_installed {new_rep}"),
        ]
    );
    let port = bed.ovs.ports.borrow()[new_rep].clone();
    assert_eq!(port.external_ids[port_ids::IFACE_ID], "pod1.default");
    assert_eq!(port.external_ids[port_ids::IP], "10.16.0.5");
    assert_eq!(port.external_ids[port_ids::CONTAINER_ID], "c1");
    let pod = att.pod_interface.unwrap();
    assert_eq!((pod.name.as_str(), pod.mtu), ("eth0", Some(1400)));
    assert_eq!(pod.mac, Some("02:00:00:00:00:aa".parse().unwrap()));
    let rec = bed.state.load("c1", "eth0").unwrap().unwrap();
    assert_eq!(
        (rec.phase, rec.pci, rec.network.as_str()),
        (Phase::Added, pci, "net")
    );
    assert_eq!(rec.vf.unwrap().name, vf_name);
    assert_eq!(rec.representor.name, rep_name);
    assert_eq!(bed.ipam_log().lines().count(), 1);
}

/// Every step that changes the host, failed in turn: attach reports the failure and leaves
/// the host exactly as it was, IPAM released.
#[test]
fn every_failed_attach_step_is_rolled_back() {
    let probe = Bed::new();
    let (_, vf_name, rep_name) = probe.vf(0);
    let new_rep = crate::representor_name::representor_name("c1", "eth0");
    let kernel_steps = [
        format!("host: set {vf_name} alias"),
        format!("host: set {vf_name} down"),
        format!("host: move {vf_name}"),
        format!("{POD}: rename {vf_name} eth0"),
        format!("{POD}: set eth0 mac"),
        format!("{POD}: set eth0 mtu"),
        format!("{POD}: set eth0 up"),
        format!("{POD}: add-address"),
        format!("{POD}: add-route"),
        format!("host: set {rep_name} down"),
        format!("host: rename {rep_name}"),
        format!("host: set {new_rep} mtu"),
        format!("host: set {new_rep} up"),
    ];
    for step in &kernel_steps {
        let bed = Bed::new();
        bed.kernel.fail_at(step);
        let err = bed.attach(&bed.request("c1", 0)).unwrap_err();
        assert!(
            matches!(err, AttachError::Link(_) | AttachError::Addr(_)),
            "{step}: {err:?}"
        );
        bed.assert_pristine(0);
        let log = bed.ipam_log();
        assert_eq!(
            log.matches("ADD").count(),
            log.matches("DEL").count(),
            "{step}: {log}"
        );
    }
    for step in ["add_port", "wait_ofport", "wait_ovn_installed"] {
        let bed = Bed::new();
        bed.ovs.fail.replace(Some(step.into()));
        let err = bed.attach(&bed.request("c1", 0)).unwrap_err();
        assert!(matches!(err, AttachError::Ovs(_)), "{step}: {err:?}");
        bed.assert_pristine(0);
        assert!(bed.ipam_log().contains("DEL c1 eth0"), "{step}");
    }
    // IPAM itself failing: nothing to release there, the VF comes back.
    let bed = Bed::new();
    let mut req = bed.request("c1", 0);
    if let Addressing::Ipam(f) = &mut req.addressing {
        f.plugin = "false-ipam".into();
        std::os::unix::fs::symlink("/bin/false", bed.dir.path().join("bin/false-ipam")).unwrap();
    }
    assert!(matches!(bed.attach(&req).unwrap_err(), AttachError::Ipam(_)));
    bed.assert_pristine(0);
}

#[test]
fn invalid_requests_fail_before_touching_anything() {
    let bed = Bed::new();
    let mut req = bed.request("c1", 0);
    req.port.bridge = "br-none".into();
    assert!(matches!(
        bed.attach(&req).unwrap_err(),
        AttachError::NoBridge { .. }
    ));
    let mut req = bed.request("c1", 0);
    req.netns = "/run/netns/gone".into();
    assert!(matches!(bed.attach(&req).unwrap_err(), AttachError::Netns(_)));
    let mut req = bed.request("c1", 0);
    req.pci = "0000:ff:1f.7".parse().unwrap();
    assert!(matches!(bed.attach(&req).unwrap_err(), AttachError::Vf(_)));
    bed.kernel.add_link(POD, "eth0", "02:00:00:00:00:01");
    assert!(matches!(
        bed.attach(&bed.request("c1", 0)).unwrap_err(),
        AttachError::IfnameTaken { .. }
    ));
    assert!(bed.kernel.calls().is_empty(), "{:?}", bed.kernel.calls());
    assert!(bed.state.list().unwrap().is_empty());
}

#[test]
fn a_name_clash_in_the_pod_moves_the_vf_under_a_temporary_name() {
    let bed = Bed::new();
    let (pci, vf_name, _) = bed.vf(0);
    bed.kernel.add_link(POD, &vf_name, "02:00:00:00:00:01");
    let mut req = bed.request("c1", 0);
    req.ifname = "net1".into();
    bed.attach(&req).unwrap();
    let tmp = lookup::temp_name(&pci);
    assert!(bed
        .kernel
        .calls()
        .contains(&format!("host: rename {vf_name} {tmp}")));
    assert!(bed.kernel.link(POD, "net1").is_some());
}

#[test]
fn release_restores_everything_and_is_idempotent() {
    let bed = Bed::new();
    bed.attach(&bed.request("c1", 0)).unwrap();
    let mut req = bed.release_request("c1", Some(POD));
    assert_eq!(bed.release(&req).unwrap(), Released::Released);
    bed.assert_pristine(0);
    assert!(bed.ipam_log().contains("DEL c1 eth0 /run/netns/pod1"));
    // Again, with nothing recorded: nothing known, nothing touched.
    let before = bed.kernel.calls().len();
    assert_eq!(bed.release(&req).unwrap(), Released::NothingKnown);
    // With the VF given (as DEL's deviceID): a record is rebuilt, the host stays as it is.
    req.pci = Some(bed.vf(0).0);
    assert_eq!(bed.release(&req).unwrap(), Released::Released);
    bed.assert_pristine(0);
    let changes: Vec<String> = bed.kernel.calls()[before..]
        .iter()
        .filter(|c| c.contains(": rename") || c.contains(": move"))
        .cloned()
        .collect();
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn release_after_the_pod_namespace_vanished_finds_the_vf_on_the_host() {
    let bed = Bed::new();
    bed.attach(&bed.request("c1", 0)).unwrap();
    bed.kernel.remove_ns(POD);
    let req = bed.release_request("c1", Some(POD));
    assert_eq!(bed.release(&req).unwrap(), Released::Released);
    bed.kernel.add_ns(POD);
    bed.assert_pristine(0);
}

#[test]
fn a_failed_port_removal_keeps_the_record_and_the_representor_name() {
    let bed = Bed::new();
    let att = bed.attach(&bed.request("c1", 0)).unwrap();
    bed.ovs.fail.replace(Some("wait_applied".into()));
    let req = bed.release_request("c1", Some(POD));
    assert!(matches!(
        bed.release(&req).unwrap_err(),
        ReleaseError::Port { .. }
    ));
    assert!(bed.kernel.link(HOST, &att.representor.name).is_some());
    assert!(bed.state.load("c1", "eth0").unwrap().is_some());
    // The retry completes the release.
    assert_eq!(bed.release(&req).unwrap(), Released::Released);
    bed.assert_pristine(0);
}

#[test]
fn attach_takes_over_a_vf_whose_previous_pod_is_gone() {
    let bed = Bed::new();
    let mut old = bed.request("old", 0);
    old.netns = "/run/netns/old".into();
    bed.kernel.add_ns("/run/netns/old");
    bed.attach(&old).unwrap();
    bed.kernel.remove_ns("/run/netns/old");
    bed.attach(&bed.request("new", 0)).unwrap();
    assert!(bed.kernel.link(POD, "eth0").is_some());
    assert_eq!(
        bed.state.owner(&bed.vf(0).0).unwrap().unwrap().container_id,
        "new"
    );
    // The old attachment's record stays for its own DEL, which then leaves the VF alone.
    let req = bed.release_request("old", None);
    assert_eq!(bed.release(&req).unwrap(), Released::NewerOwner);
    assert!(bed.kernel.link(POD, "eth0").is_some());
}

#[test]
fn attach_refuses_a_vf_held_by_a_live_pod() {
    let bed = Bed::new();
    let mut old = bed.request("old", 0);
    let live = bed.dir.path().join("live-netns");
    std::fs::write(&live, "").unwrap();
    bed.kernel.add_ns(&live.display().to_string());
    old.netns = live;
    bed.attach(&old).unwrap();
    assert!(matches!(
        bed.attach(&bed.request("new", 0)).unwrap_err(),
        AttachError::VfBusy { .. }
    ));
}

#[test]
fn gc_releases_only_stale_attachments_of_its_network() {
    let bed = Bed::new();
    bed.kernel.add_ns("/run/netns/pod2");
    bed.attach(&bed.request("keep", 0)).unwrap();
    let mut stale = bed.request("stale", 1);
    stale.netns = "/run/netns/pod2".into();
    bed.attach(&stale).unwrap();
    let mut other = bed.state.load("keep", "eth0").unwrap().unwrap();
    other.container_id = "other-net".into();
    other.network = "another".into();
    bed.state.save(&other).unwrap();
    let conf = crate::netconf::NetConf::parse(
        br#"{"cniVersion":"1.1.0","name":"net","cni.dev/valid-attachments":[{"containerID":"keep","ifname":"eth0"}]}"#,
    )
    .unwrap();
    let req = crate::skel::Request {
        container_id: String::new(),
        netns: None,
        ifname: String::new(),
        args_raw: String::new(),
        args: Default::default(),
        path: String::new(),
        conf,
    };
    let released = block(crate::gc::gc(bed.node(), &bed.ovs, &req)).unwrap();
    assert_eq!(released, vec![("stale".to_string(), "eth0".to_string())]);
    bed.assert_pristine_vf_only(1);
    assert!(bed.state.load("keep", "eth0").unwrap().is_some());
    assert!(bed.state.load("other-net", "eth0").unwrap().is_some());
}

impl Bed {
    /// VF `vf` and its representor are back as they were (other VFs may be attached).
    fn assert_pristine_vf_only(&self, vf: u32) {
        let (pci, vf_name, rep_name) = self.vf(vf);
        let l = self.kernel.link(HOST, &vf_name).unwrap();
        assert_eq!((l.up, l.alias.as_deref()), (true, None));
        assert!(self.kernel.link(HOST, &rep_name).is_some());
        assert!(self.state.owner(&pci).unwrap().is_none());
    }
}

#[test]
fn remove_port_waits_for_vswitchd_and_leaves_a_newer_owners_port_alone() {
    let bed = Bed::new();
    let att = bed.attach(&bed.request("c1", 0)).unwrap();
    let rec = bed.state.load("c1", "eth0").unwrap().unwrap();
    let host = bed.kernel.host().unwrap();
    let steps = release::Steps {
        ovs: &bed.ovs,
        host: &host,
        pod: None,
        sysfs_names: &[],
        apply_timeout: Duration::from_secs(7),
    };
    let mut newer = rec.clone();
    newer.container_id = "c2".into();
    assert!(!block(steps.remove_port(&newer)).unwrap());
    assert!(bed.ovs.ports.borrow().contains_key(&att.representor.name));
    assert!(block(steps.remove_port(&rec)).unwrap());
    let calls = bed.ovs.calls.borrow();
    let del = calls
        .iter()
        .position(|c| *c == format!("del_port br-int {}", att.representor.name))
        .unwrap();
    assert_eq!(calls[del + 1], "wait_applied 7s", "{calls:?}");
    assert!(bed.ovs.ports.borrow().is_empty());
}
