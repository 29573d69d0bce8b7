//! Unique, short names so parallel tests (and test processes) never share a netns, link, bridge
//! or directory: [`unique_name`] for one object, [`unique_prefix`] for a whole cluster.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of a generated prefix: a letter then four base-36 digits. Link names built on it
/// (`<prefix>n1u`, `<prefix>n1p0v15`) stay within the 15-byte limit.
pub const PREFIX_LEN: usize = 5;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call: `prefix`, then the pid and a counter in hex (keep
/// `prefix` short: link names are at most 15 bytes).
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:x}{n:x}", std::process::id() % 0x10000)
}

/// A fresh prefix like `e3k9x`, reserved by creating its directory `/tmp/e2e-<prefix>`
/// (atomically, so two processes never get the same one); no netns carries it yet.
pub fn unique_prefix() -> String {
    // Bounded: if /tmp is unusable, the last candidate is returned and creating files in its
    // directory fails later with a clear error.
    let mut last = String::new();
    for _ in 0..1000 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let seed = std::process::id()
            .wrapping_mul(2_654_435_761)
            .wrapping_add(n.wrapping_mul(40_503))
            .wrapping_add(nanos);
        let p = format!("e{}", base36(seed % 36u32.pow(4), 4));
        if Path::new("/run/netns").join(format!("{p}-fab")).exists() {
            continue;
        }
        if std::fs::create_dir(base_dir(&p)).is_ok() {
            return p;
        }
        last = p;
    }
    last
}

/// The private directory of the cluster with `prefix`.
pub fn base_dir(prefix: &str) -> String {
    format!("/tmp/e2e-{prefix}")
}

fn base36(mut v: u32, width: usize) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = digits[(v % 36) as usize];
        v /= 36;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_short_and_distinct() {
        let a = unique_prefix();
        let b = unique_prefix();
        for p in [&a, &b] {
            assert!(Path::new(&base_dir(p)).is_dir());
            std::fs::remove_dir(base_dir(p)).unwrap();
        }
        assert_eq!(a.len(), PREFIX_LEN);
        assert_ne!(a, b);
        assert!(a.starts_with('e') && a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(base36(35, 2), "0z");
        let (x, y) = (unique_name("br"), unique_name("br"));
        assert!(x.starts_with("br") && x.len() <= 15);
        assert_ne!(x, y);
    }
}
