//! The NB writes of the controller stand-in, with `ovn-nbctl` (test code), shaped like kube-ovn
//! `CreateLogicalSwitchPort`/`buildLogicalSwitchPort` (`pkg/ovs/ovn-nb-logical_switch_port.go`,
//! identical at v1.12.35 and v1.16.2): `addresses` is the one string `"MAC IP..."`,
//! `port_security` the same string only when the pod asks for it, `external_ids` exactly
//! `pod=<ns>/<pod>`, `ls=<subnet>`, `vendor=kube-ovn`; an existing port on the same switch is
//! updated in place, one on another switch moved.

use std::path::PathBuf;

use crate::logical::PortAddress;
use testbed::cmd::{Cmd, CmdError};

/// A failed NB write.
#[derive(Debug, thiserror::Error)]
#[error("ovn-nbctl {step}")]
pub struct NbError {
    step: String,
    #[source]
    source: CmdError,
}

/// `ovn-nbctl` against one NB socket; cheap to clone into the controller's thread.
#[derive(Clone, Debug)]
pub struct NbCtl {
    sock: PathBuf,
    dir: PathBuf,
}

impl NbCtl {
    /// NB at unix socket `sock`, OVS run/log directories `dir` (OVN central's private directory).
    pub fn new(sock: PathBuf, dir: PathBuf) -> NbCtl {
        NbCtl { sock, dir }
    }

    fn run(&self, step: &str, args: &[&str]) -> Result<String, NbError> {
        Cmd::new("ovn-nbctl")
            .arg(format!("--db=unix:{}", self.sock.display()))
            .args(args)
            .ovs_dirs(&self.dir)
            .run()
            .map_err(|source| NbError {
                step: step.to_string(),
                source,
            })
    }

    /// The switch an existing port `lsp` records in `external_ids:ls`, `Some("")` for a port
    /// without it, `None` when there is no such port.
    fn port_switch(&self, lsp: &str) -> Result<Option<String>, NbError> {
        let name = format!("name=\"{lsp}\"");
        let out = self.run(
            "find port",
            &[
                "--bare",
                "--columns=_uuid,external_ids",
                "find",
                "logical_switch_port",
                &name,
            ],
        )?;
        if out.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(
            out.split_whitespace()
                .find_map(|kv| kv.strip_prefix("ls="))
                .unwrap_or_default()
                .to_string(),
        ))
    }

    /// Creates (or updates) the port of pod `namespace/pod` on switch `ls`.
    pub fn create_pod_port(
        &self,
        ls: &str,
        lsp: &str,
        addr: &PortAddress,
        namespace: &str,
        pod: &str,
        port_security: bool,
    ) -> Result<(), NbError> {
        let addresses = format!("{} {}", addr.mac, addr.ip);
        let ids = [
            format!("external_ids:pod={namespace}/{pod}"),
            format!("external_ids:ls={ls}"),
            "external_ids:vendor=kube-ovn".to_string(),
        ];
        let mut args: Vec<&str> = vec![];
        match self.port_switch(lsp)? {
            Some(old) if old == ls => {
                args.extend(["clear", "logical_switch_port", lsp, "external_ids", "--"]);
            }
            Some(_) => {
                args.extend(["lsp-del", lsp, "--", "lsp-add", ls, lsp, "--"]);
            }
            None => args.extend(["lsp-add", ls, lsp, "--"]),
        }
        args.extend([
            "lsp-set-addresses",
            lsp,
            &addresses,
            "--",
            "lsp-set-port-security",
            lsp,
        ]);
        if port_security {
            args.push(&addresses);
        }
        args.extend(["--", "set", "logical_switch_port", lsp]);
        args.extend(ids.iter().map(String::as_str));
        self.run(&format!("create port {lsp}"), &args).map(drop)
    }

    /// Deletes port `lsp` (idempotent).
    pub fn delete_port(&self, lsp: &str) -> Result<(), NbError> {
        self.run(&format!("delete port {lsp}"), &["--if-exists", "lsp-del", lsp])
            .map(drop)
    }

    /// `ovn-nbctl ARGS` (for tests reading what was written).
    pub fn nbctl(&self, args: &[&str]) -> Result<String, NbError> {
        self.run("query", args)
    }
}
