//! Typed results of the node doctor and their two renderings: one text line per check, or JSON.

use serde::Serialize;

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// As the guide wants it.
    Ok,
    /// Could not be verified, or works but is not as the guide wants it.
    Warn,
    /// Offload (or pod networking) cannot work this way.
    Fail,
}

/// The result of one check on one subject (a PF, a VF, OVS, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable check name, e.g. `pf-eswitch-mode`.
    pub check: &'static str,
    /// What was checked, e.g. `0000:84:00.0 (enp132s0f0np0)`.
    pub subject: String,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub found: String,
    /// The command (or step) that fixes it; none for OK.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    /// An OK result.
    pub fn ok(check: &'static str, subject: impl Into<String>, found: impl Into<String>) -> Check {
        Check {
            check,
            subject: subject.into(),
            status: Status::Ok,
            found: found.into(),
            fix: None,
        }
    }

    /// A WARN result.
    pub fn warn(check: &'static str, subject: impl Into<String>, found: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            ..Check::ok(check, subject, found)
        }
    }

    /// A FAIL result.
    pub fn fail(check: &'static str, subject: impl Into<String>, found: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            ..Check::ok(check, subject, found)
        }
    }

    /// The same result with `fix` as the remedy.
    #[must_use]
    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// Every check's result, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The results.
    pub checks: Vec<Check>,
}

/// The JSON document `--json` prints.
#[derive(Serialize)]
struct JsonReport<'a> {
    ok: usize,
    warn: usize,
    fail: usize,
    checks: &'a [Check],
}

impl Report {
    /// Adds one result.
    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// Adds several results.
    pub fn extend(&mut self, checks: impl IntoIterator<Item = Check>) {
        self.checks.extend(checks);
    }

    /// How many results have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// 1 when any check failed, else 0.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.count(Status::Fail) > 0)
    }

    /// One line per check (`STATUS check subject: found; fix: command`), then a summary line.
    pub fn to_text(&self) -> String {
        let width = self.checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            let (check, subject, found) = (c.check, &c.subject, &c.found);
            let status = format!("{:?}", c.status).to_uppercase();
            let fix = c.fix.as_ref().map(|f| format!("; fix: {f}")).unwrap_or_default();
            out.push_str(&format!("{status:<4} {check:<width$} {subject}: {found}{fix}\n"));
        }
        let [ok, warn, fail] = [Status::Ok, Status::Warn, Status::Fail].map(|s| self.count(s));
        out.push_str(&format!("{ok} OK, {warn} WARN, {fail} FAIL\n"));
        out
    }

    /// `{"ok":N,"warn":N,"fail":N,"checks":[{check,subject,status,found,fix?}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(JsonReport {
            ok: self.count(Status::Ok),
            warn: self.count(Status::Warn),
            fail: self.count(Status::Fail),
            checks: &self.checks,
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = Report::default();
        r.push(Check::ok("kernel", "kernel", "6.1.0 (>= 5.7)"));
        r.push(
            Check::fail("pf-eswitch-mode", "0000:84:00.0 (p0)", "eswitch mode legacy")
                .fix("devlink dev eswitch set pci/0000:84:00.0 mode switchdev"),
        );
        r
    }

    #[test]
    fn text_has_one_line_per_check_with_its_fix_and_a_summary() {
        let text = sample().to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("OK   kernel "), "{text}");
        assert!(lines[1].starts_with("FAIL pf-eswitch-mode 0000:84:00.0 (p0): eswitch mode legacy; fix: devlink dev eswitch set pci/0000:84:00.0 mode switchdev"), "{text}");
        assert_eq!(lines[2], "1 OK, 0 WARN, 1 FAIL");
        assert_eq!(sample().exit_code(), 1);
        assert_eq!(Report::default().exit_code(), 0);
    }

    #[test]
    fn json_counts_statuses_and_omits_absent_fixes() {
        let json = sample().to_json();
        assert_eq!((json["ok"].as_u64(), json["fail"].as_u64()), (Some(1), Some(1)));
        assert_eq!(json["checks"][0]["status"], "OK");
        assert!(json["checks"][0].get("fix").is_none());
        assert_eq!(json["checks"][1]["status"], "FAIL");
        assert_eq!(json["checks"][1]["check"], "pf-eswitch-mode");
    }
}
