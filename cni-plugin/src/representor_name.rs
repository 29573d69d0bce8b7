//! Kube-OVN's host-side name for a pod's representor.

/// `<first 12 chars of container ID>_h` for `eth0`, else `<first 12-len(ifname) chars>_<ifname>_h`
/// (so the name fits in 15 bytes).
pub fn representor_name(container_id: &str, ifname: &str) -> String {
    if ifname == "eth0" {
        format!("{}_h", prefix(container_id, 12))
    } else {
        let keep = 12usize.saturating_sub(ifname.len());
        format!("{}_{}_h", prefix(container_id, keep), ifname)
    }
}

fn prefix(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
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
    }

    #[test]
    fn long_ifname_keeps_no_container_chars() {
        assert_eq!(
            representor_name("0123456789abcdef", "verylongname"),
            "_verylongname_h"
        );
    }
}
