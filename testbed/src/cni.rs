//! Running a CNI plugin binary the way a container runtime (or Multus) does: the verb and the
//! `CNI_*` variables in the environment, the network configuration on stdin, the result or
//! error object on stdout.

use std::path::Path;

use serde_json::Value;

use crate::cmd::{Cmd, CmdError};

/// Where runtimes look for plugins unless told otherwise (the Debian package's directory).
pub const DEFAULT_CNI_PATH: &str = "/usr/lib/cni";

/// One CNI invocation: the verb and the `CNI_*` environment (plus any other variables).
#[derive(Clone, Debug)]
pub struct CniCall {
    /// `CNI_COMMAND`: `ADD`, `DEL`, `CHECK`, `STATUS`, `VERSION`, `GC`.
    pub verb: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`.
    pub netns: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS`.
    pub args: String,
    /// `CNI_PATH`.
    pub path: String,
    /// Further environment variables.
    pub extra_env: Vec<(String, String)>,
}

impl CniCall {
    /// A call as the kubelet's runtime makes it for pod `pod-<container_id>` in namespace
    /// `default` (`CNI_ARGS` with `IgnoreUnknown=1` and the `K8S_*` keys).
    pub fn new(verb: &str, container_id: &str, netns: &str, ifname: &str) -> CniCall {
        CniCall {
            verb: verb.into(),
            container_id: container_id.into(),
            netns: netns.into(),
            ifname: ifname.into(),
            args: format!(
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-{container_id};K8S_POD_INFRA_CONTAINER_ID={container_id}"
            ),
            path: DEFAULT_CNI_PATH.into(),
            extra_env: Vec::new(),
        }
    }

    /// The same call with another verb.
    pub fn verb(&self, verb: &str) -> CniCall {
        CniCall {
            verb: verb.into(),
            ..self.clone()
        }
    }

    /// The same call with one more environment variable.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> CniCall {
        self.extra_env.push((key.into(), value.into()));
        self
    }

    /// `cmd` (the plugin, or a wrapper running it) with this call's environment.
    pub fn apply(&self, cmd: Cmd) -> Cmd {
        let cmd = cmd
            .env("CNI_COMMAND", &self.verb)
            .env("CNI_CONTAINERID", &self.container_id)
            .env("CNI_NETNS", &self.netns)
            .env("CNI_IFNAME", &self.ifname)
            .env("CNI_ARGS", &self.args)
            .env("CNI_PATH", &self.path);
        self.extra_env.iter().fold(cmd, |c, (k, v)| c.env(k, v))
    }

    /// Runs `plugin` (inside `node_netns` when given) with `stdin` as the network configuration.
    pub fn run(&self, plugin: &Path, node_netns: Option<&str>, stdin: &[u8]) -> Result<Outcome, CmdError> {
        let out = self
            .apply(Cmd::new(plugin))
            .netns(node_netns)
            .stdin(stdin)
            .output()?;
        Ok(Outcome {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// What one plugin run printed, and whether it exited 0.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status 0.
    pub ok: bool,
    /// Standard output: the result, or the error object.
    pub stdout: String,
    /// Standard error: the plugin's log lines.
    pub stderr: String,
}

impl Outcome {
    /// Standard output as JSON (panics, with both outputs, when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout not JSON ({e}): {:?} stderr: {}", self.stdout, self.stderr))
    }

    /// The CNI error code of a failed run (panics when the run succeeded).
    pub fn code(&self) -> u64 {
        assert!(!self.ok, "expected failure, got {}", self.stdout);
        self.json()["code"].as_u64().unwrap_or_default()
    }

    /// Panics, with both outputs, unless the run succeeded.
    #[track_caller]
    pub fn expect_ok(&self) -> &Self {
        assert!(self.ok, "plugin failed: {} stderr: {}", self.stdout, self.stderr);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An executable shell script `name` in `dir`.
    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn runs_a_plugin_with_the_cni_environment_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = script(
            dir.path(),
            "echo-plugin",
            r#"printf '{"verb":"%s","id":"%s","args":"%s","x":"%s","conf":%s}' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_ARGS" "$X" "$(cat)""#,
        );
        let call = CniCall::new("ADD", "c1", "/run/netns/p", "eth0").env("X", "y");
        let out = call.run(&plugin, None, br#"{"a":1}"#).unwrap();
        let json = out.expect_ok().json();
        assert_eq!(json["verb"], "ADD");
        assert_eq!(json["id"], "c1");
        assert_eq!(json["x"], "y");
        assert_eq!(json["conf"]["a"], 1);
        assert!(json["args"].as_str().unwrap().contains("K8S_POD_NAME=pod-c1"));
        let del = call.verb("DEL").run(&plugin, None, b"{}").unwrap();
        assert_eq!(del.json()["verb"], "DEL");
    }

    #[test]
    fn a_failed_run_reports_its_error_code() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = script(dir.path(), "failing", r#"echo '{"code":7,"msg":"bad"}'; exit 1"#);
        let out = CniCall::new("ADD", "c1", "/run/netns/p", "eth0")
            .run(&plugin, None, b"{}")
            .unwrap();
        assert_eq!(out.code(), 7);
    }
}
