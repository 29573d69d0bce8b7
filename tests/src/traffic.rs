//! Real traffic between namespaces: `ping`, and TCP streams both ways from threads that entered a
//! netns with `setns` (no external tools needed).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

use testbed::cmd::{Cmd, CmdError};

/// Errors of a traffic check.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// `ping` got no reply.
    #[error("ping {from} -> {to} failed")]
    Ping {
        /// Source netns.
        from: String,
        /// Destination.
        to: Ipv4Addr,
        /// Why.
        #[source]
        source: CmdError,
    },
    /// Entering the netns failed.
    #[error("cannot enter netns {netns}: {reason}")]
    Setns {
        /// The netns.
        netns: String,
        /// Why.
        reason: String,
    },
    /// A TCP step failed.
    #[error("tcp {from} -> {to}: {step}")]
    Tcp {
        /// Client netns.
        from: String,
        /// Server address.
        to: SocketAddrV4,
        /// What failed.
        step: String,
    },
}

/// Pings `to` from `netns` (`count` echoes, each waiting up to 2 s) until one round succeeds or
/// `attempts` rounds failed.
pub fn ping(netns: &str, to: Ipv4Addr, attempts: u32) -> Result<(), TrafficError> {
    let mut last = None;
    for _ in 0..attempts.max(1) {
        let r = Cmd::new("ping")
            .args(["-c", "1", "-W", "2", "-n", "-q"])
            .arg(to.to_string())
            .netns(Some(netns))
            .run();
        match r {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(TrafficError::Ping {
        from: netns.to_string(),
        to,
        source: last.unwrap_or(CmdError::Failed {
            cmd: "ping".into(),
            detail: "not run".into(),
        }),
    })
}

/// Runs `f` on a new thread whose network namespace is `netns`.
pub fn in_netns<T, F>(netns: &str, f: F) -> Result<T, TrafficError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = format!("/run/netns/{netns}");
    let name = netns.to_string();
    let handle = thread::spawn(move || -> Result<T, TrafficError> {
        let err = |reason: String| TrafficError::Setns {
            netns: name.clone(),
            reason,
        };
        let file = File::open(&path).map_err(|e| err(e.to_string()))?;
        setns(file, CloneFlags::CLONE_NEWNET).map_err(|e| err(e.to_string()))?;
        Ok(f())
    });
    handle.join().map_err(|_| TrafficError::Setns {
        netns: netns.to_string(),
        reason: "thread panicked".into(),
    })?
}

/// Bytes of a test stream: a simple pattern the receiver checks.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Moves `len` bytes from a client in `client_ns` to a server listening on `server` in
/// `server_ns`, and `len` other bytes back, checking both streams byte for byte.
pub fn tcp_both_ways(
    server_ns: &str,
    client_ns: &str,
    server: SocketAddrV4,
    len: usize,
) -> Result<(), TrafficError> {
    let fail = |step: String| TrafficError::Tcp {
        from: client_ns.to_string(),
        to: server,
        step,
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    let server_ns_owned = server_ns.to_string();
    let server_thread = thread::spawn(move || {
        in_netns(&server_ns_owned, move || -> Result<(), String> {
            let listener = TcpListener::bind(server).map_err(|e| format!("bind: {e}"));
            let listener = match listener {
                Ok(l) => {
                    let _ = ready_tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.clone()));
                    return Err(e);
                }
            };
            // Give up after a while if no client comes (the test then reports the client error).
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            let mut waited = Duration::ZERO;
            let (mut conn, _) = loop {
                match listener.accept() {
                    Ok(c) => break c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if waited > Duration::from_secs(30) {
                            return Err("no client".into());
                        }
                        thread::sleep(Duration::from_millis(20));
                        waited += Duration::from_millis(20);
                    }
                    Err(e) => return Err(format!("accept: {e}")),
                }
            };
            conn.set_nonblocking(false).map_err(|e| e.to_string())?;
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .map_err(|e| e.to_string())?;
            let mut got = vec![0u8; len];
            conn.read_exact(&mut got)
                .map_err(|e| format!("server read: {e}"))?;
            if got != pattern(len, 1) {
                return Err("server received corrupted data".into());
            }
            conn.write_all(&pattern(len, 2))
                .map_err(|e| format!("server write: {e}"))?;
            conn.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
            Ok(())
        })
    });
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(fail(e)),
        Err(_) => return Err(fail("server did not start".into())),
    }
    let client = in_netns(client_ns, move || -> Result<(), String> {
        let mut conn = TcpStream::connect_timeout(&server.into(), Duration::from_secs(10))
            .map_err(|e| format!("connect: {e}"))?;
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        conn.write_all(&pattern(len, 1))
            .map_err(|e| format!("client write: {e}"))?;
        let mut got = Vec::with_capacity(len);
        conn.read_to_end(&mut got)
            .map_err(|e| format!("client read: {e}"))?;
        if got != pattern(len, 2) {
            return Err(format!(
                "client received {} bytes, not the expected {len}",
                got.len()
            ));
        }
        Ok(())
    })?;
    let server_result = server_thread
        .join()
        .map_err(|_| fail("server thread panicked".into()))?;
    client.map_err(fail)?;
    server_result?.map_err(fail)
}
