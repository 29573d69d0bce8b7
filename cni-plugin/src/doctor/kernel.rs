//! The guide's kernel prerequisite: upstream Linux 5.7 or later (CentOS 8 Stream backports it).

use super::report::Check;

/// Oldest upstream kernel the guide supports.
pub const MIN_KERNEL: (u32, u32) = (5, 7);

const CHECK: &str = "kernel";

/// `(major, minor)` of a release string such as `6.1.0-18-amd64` or `4.18.0-305.el8.x86_64`.
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Checks the running kernel's release (the text of `/proc/sys/kernel/osrelease`).
pub fn check(release: Result<String, std::io::Error>) -> Check {
    let release = match release {
        Ok(r) => r.trim().to_string(),
        Err(e) => return Check::warn(CHECK, "kernel", format!("cannot read the kernel release: {e}")),
    };
    let (min_major, min_minor) = MIN_KERNEL;
    match parse_release(&release) {
        Some(v) if v >= MIN_KERNEL => {
            Check::ok(CHECK, "kernel", format!("{release} (>= {min_major}.{min_minor})"))
        }
        Some(_) if release.contains(".el8") => Check::warn(
            CHECK,
            "kernel",
            format!(
                "{release}: below {min_major}.{min_minor}; only CentOS 8 Stream kernels carry the backports"
            ),
        )
        .fix("run a CentOS 8 Stream or upstream >= 5.7 kernel"),
        Some(_) => Check::fail(
            CHECK,
            "kernel",
            format!("{release}: below {min_major}.{min_minor}, which switchdev offload needs"),
        )
        .fix("install and boot a kernel >= 5.7"),
        None => Check::warn(CHECK, "kernel", format!("unrecognised release {release:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::Status;
    use super::*;

    #[test]
    fn releases_parse_and_compare_by_major_and_minor() {
        assert_eq!(parse_release("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_release("5.7"), Some((5, 7)));
        assert_eq!(parse_release("garbage"), None);
        assert_eq!(check(Ok("5.7.0\n".into())).status, Status::Ok);
        assert_eq!(check(Ok("6.12.1".into())).status, Status::Ok);
        assert_eq!(check(Ok("5.4.0-150-generic".into())).status, Status::Fail);
        assert_eq!(check(Ok("4.18.0-305.el8.x86_64".into())).status, Status::Warn);
    }
}
