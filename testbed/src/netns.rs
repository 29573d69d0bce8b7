//! A named network namespace (`ip netns add`), deleted on drop: the one namespace handle of the
//! tests (pods, simulated nodes, the fabric, private OVS instances).

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use crate::cmd::{Cmd, CmdError};
use crate::names::unique_name;

/// A network namespace `/run/netns/<name>`, deleted on drop (when it still exists).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name` with `lo` up.
    pub fn create(name: &str) -> Result<Netns, CmdError> {
        Cmd::new("ip").args(["netns", "add", name]).run()?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Creates `name` after deleting a namespace of that name left by an earlier, crashed run.
    pub fn recreate(name: &str) -> Result<Netns, CmdError> {
        Netns::delete(name);
        Netns::create(name)
    }

    /// Creates a namespace named [`unique_name`]`(prefix)`.
    pub fn unique(prefix: &str) -> Result<Netns, CmdError> {
        Netns::create(&unique_name(prefix))
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its path, as `CNI_NETNS` wants it.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Whether it still exists.
    pub fn exists(&self) -> bool {
        Path::new(&self.path()).exists()
    }

    /// `ip -n NAME ARGS...`.
    pub fn ip<I, S>(&self, args: I) -> Result<String, CmdError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Cmd::new("ip").args(["-n", &self.name]).args(args).run()
    }

    /// Runs `cmd` inside the namespace.
    pub fn exec(&self, cmd: Cmd) -> Result<String, CmdError> {
        cmd.netns(Some(&self.name)).run()
    }

    /// Emulates the kernel tearing the namespace down: the physical device `ifname` (a VF) goes
    /// back to the namespace `home`, then the namespace is deleted.
    pub fn vanish_returning(&self, ifname: &str, home: &str) -> Result<(), CmdError> {
        self.ip(["link", "set", ifname, "netns", home])?;
        Cmd::new("ip").args(["netns", "del", &self.name]).run().map(drop)
    }

    /// Like [`Netns::vanish_returning`] with the kernel's asynchronous cleanup: the namespace is
    /// gone at once, `ifname` comes back to `home` only after `delay` (it waits in a limbo
    /// namespace meanwhile). Join the returned thread to know it is back.
    pub fn vanish_returning_later(
        &self,
        ifname: &str,
        home: &str,
        delay: Duration,
    ) -> Result<std::thread::JoinHandle<Result<(), CmdError>>, CmdError> {
        let limbo = Netns::unique("limbo")?;
        self.ip(["link", "set", ifname, "netns", limbo.name()])?;
        Cmd::new("ip").args(["netns", "del", &self.name]).run()?;
        let (ifname, home) = (ifname.to_string(), home.to_string());
        Ok(std::thread::spawn(move || {
            std::thread::sleep(delay);
            limbo.vanish_returning(&ifname, &home)
        }))
    }

    /// Deletes the namespace `name` if it exists (best effort).
    fn delete(name: &str) {
        if Path::new("/run/netns").join(name).exists() {
            let _ = Cmd::new("ip").args(["netns", "del", name]).ok();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        Netns::delete(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_with_lo_up_and_deletes_on_drop() {
        let ns = Netns::unique("tbns").unwrap();
        let path = ns.path();
        assert!(ns.exists());
        let lo = ns.ip(["-o", "link", "show", "lo"]).unwrap();
        assert!(lo.contains("UP"), "{lo}");
        assert_eq!(ns.exec(Cmd::new("echo").arg("inside")).unwrap(), "inside\n");
        drop(ns);
        assert!(!Path::new(&path).exists());
    }

    #[test]
    fn vanishing_returns_the_device_home() {
        let home = Netns::unique("tbh").unwrap();
        let pod = Netns::unique("tbp").unwrap();
        home.ip(["link", "add", "tbv0", "type", "veth", "peer", "name", "tbv1"])
            .unwrap();
        home.ip(["link", "set", "tbv0", "netns", pod.name()]).unwrap();
        let back = pod
            .vanish_returning_later("tbv0", home.name(), Duration::from_millis(50))
            .unwrap();
        assert!(!pod.exists());
        back.join().unwrap().unwrap();
        home.ip(["link", "show", "tbv0"]).unwrap();
    }
}
