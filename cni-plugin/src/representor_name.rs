//! Kube-OVN's host-side name for a pod's representor.

/// Fewest container ID characters a Kube-OVN style name keeps; below that, two pods' names
/// would collide too often (one hex character: one pair in 16).
const MIN_ID_CHARS: usize = 6;

/// `<first 12 chars of container ID>_h` for `eth0`, else `<first 12-len(ifname) chars>_<ifname>_h`
/// (so the name fits in 15 bytes), as Kube-OVN names it. An ifname longer than 6 bytes would
/// leave too little of the ID to tell pods apart, so those get `<12 hex digits of a hash of
/// container ID and ifname>_h` instead (OVN binds by `iface-id`, never by this name).
pub fn representor_name(container_id: &str, ifname: &str) -> String {
    if ifname == "eth0" {
        format!("{}_h", prefix(container_id, 12))
    } else if ifname.len() + MIN_ID_CHARS <= 12 {
        let keep = 12 - ifname.len();
        format!("{}_{}_h", prefix(container_id, keep), ifname)
    } else {
        format!("{:012x}_h", fnv1a(&[container_id, ifname]) & 0xffff_ffff_ffff)
    }
}

fn prefix(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// FNV-1a over the parts, each followed by a 0 byte so ("ab", "c") and ("a", "bc") differ.
fn fnv1a(parts: &[&str]) -> u64 {
    parts
        .iter()
        .flat_map(|p| p.bytes().chain(std::iter::once(0)))
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eth0_uses_twelve_chars() {
        assert_eq!(representor_name("0123456789abcdef", "eth0"), "0123456789ab_h");
    }

    #[test]
    fn other_ifnames_shorten_the_prefix() {
        assert_eq!(representor_name("0123456789abcdef", "net1"), "01234567_net1_h");
        assert_eq!(representor_name("0123456789abcdef", "net1").len(), 15);
        assert_eq!(representor_name("abc", "net1"), "abc_net1_h");
        assert_eq!(representor_name("0123456789abcdef", "sriov1"), "012345_sriov1_h");
    }

    #[test]
    fn long_ifnames_get_a_hash_that_tells_pods_apart() {
        let a = representor_name("0123456789abcdef", "verylongname");
        let b = representor_name("0123456789abcdee", "verylongname");
        let c = representor_name("0123456789abcdef", "verylongnam2");
        assert_eq!(a.len(), 14);
        assert!(
            a.ends_with("_h") && a[..12].bytes().all(|x| x.is_ascii_hexdigit()),
            "{a}"
        );
        assert!(a != b && a != c && b != c);
        // Stable: DEL and CHECK of the same attachment find the same name.
        assert_eq!(a, representor_name("0123456789abcdef", "verylongname"));
        assert_ne!(
            representor_name("0123456789abcdef", "net1234"),
            representor_name("0123456789abcde", "fnet1234")
        );
    }
}
