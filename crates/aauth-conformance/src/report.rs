//! What a run found: one [`Outcome`] per check, and the three ways of
//! writing them out — a table for a person, JSON for a program, JUnit XML
//! for a CI server.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The target did what the rule asks.
    Pass,
    /// It did not.
    Fail,
    /// The check could not be run (a step it needs failed, or the role has
    /// nothing to check); the reason is in `got`.
    Skip,
}

impl Verdict {
    /// `pass`, `fail` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

/// One check as run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Stable identifier, e.g. `resource.sig.created-future`.
    pub id: String,
    /// The rule it tests: `E§…`, `D§…`, `SK0§…` or `P-…`.
    pub rule: String,
    /// What it checks, in a few words.
    pub title: String,
    /// Whether it counts among the hostile cases.
    pub hostile: bool,
    /// What was sent.
    pub sent: String,
    /// What was expected.
    pub expected: String,
    /// What came back.
    pub got: String,
    /// The verdict.
    pub verdict: Verdict,
    /// More to read on a failure: e.g. the first line where the target's
    /// signature base differs from the suite's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How long the check took.
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A whole run against one target in one role.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The role checked: `resource`, `auth-server`, `agent-server`, `agent`.
    pub role: String,
    /// The target's URL (for `agent`, the suite's own resource).
    pub target: String,
    /// The protocol profile the checks come from.
    pub profile: String,
    /// Every check, in the order run.
    pub outcomes: Vec<Outcome>,
    /// The whole run.
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

/// Counts of each verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Checks run.
    pub total: usize,
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
    /// Hostile cases among them.
    pub hostile: usize,
}

impl Report {
    /// The counts.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary {
            total: self.outcomes.len(),
            ..Summary::default()
        };
        for outcome in &self.outcomes {
            match outcome.verdict {
                Verdict::Pass => summary.passed += 1,
                Verdict::Fail => summary.failed += 1,
                Verdict::Skip => summary.skipped += 1,
            }
            if outcome.hostile {
                summary.hostile += 1;
            }
        }
        summary
    }

    /// The one-line summary.
    pub fn summary_line(&self) -> String {
        let s = self.summary();
        format!(
            "{role} {target}: {passed} passed, {failed} failed, {skipped} skipped of {total} checks \
             ({hostile} hostile) in {secs:.1} s [profile {profile}]",
            role = self.role,
            target = self.target,
            passed = s.passed,
            failed = s.failed,
            skipped = s.skipped,
            total = s.total,
            hostile = s.hostile,
            secs = self.elapsed.as_secs_f64(),
            profile = self.profile,
        )
    }

    /// The table a person reads: one line per check, and under each failure
    /// what was sent, expected and received.
    pub fn table(&self) -> String {
        let id_width = self
            .outcomes
            .iter()
            .map(|o| o.id.chars().count())
            .max()
            .unwrap_or(2)
            .max(2);
        let rule_width = self
            .outcomes
            .iter()
            .map(|o| o.rule.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<6} {:<id_width$} {:<rule_width$} check",
            "result", "id", "rule"
        );
        for o in &self.outcomes {
            let _ = writeln!(
                out,
                "{:<6} {:<id_width$} {:<rule_width$} {}",
                o.verdict.as_str().to_uppercase(),
                o.id,
                o.rule,
                o.title
            );
            if o.verdict != Verdict::Pass {
                let indent = " ".repeat(7);
                if o.verdict == Verdict::Fail {
                    let _ = writeln!(out, "{indent}sent:     {}", o.sent);
                    let _ = writeln!(out, "{indent}expected: {}", o.expected);
                }
                let _ = writeln!(out, "{indent}got:      {}", o.got);
                if let Some(detail) = &o.detail {
                    for line in detail.lines() {
                        let _ = writeln!(out, "{indent}  {line}");
                    }
                }
            }
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    /// The JSON document of `--json`.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "role": self.role,
            "target": self.target,
            "profile": self.profile,
            "summary": self.summary(),
            "elapsed_ms": u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX),
            "checks": self.outcomes,
        })
    }

    /// JUnit XML (the Ant schema most CI servers read): one `testsuite`
    /// for the role, one `testcase` per check, `failure` and `skipped`
    /// elements for the verdicts.
    pub fn junit(&self) -> String {
        let s = self.summary();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let suite = format!("aauth-conformance.{}", self.role);
        let _ = writeln!(
            out,
            "<testsuites name=\"aauth-conformance\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
            s.total,
            s.failed,
            s.skipped,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
            xml(&suite),
            s.total,
            s.failed,
            s.skipped,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(out, "    <properties>");
        for (name, value) in [
            ("target", self.target.as_str()),
            ("profile", self.profile.as_str()),
        ] {
            let _ = writeln!(
                out,
                "      <property name=\"{name}\" value=\"{}\"/>",
                xml(value)
            );
        }
        let _ = writeln!(out, "    </properties>");
        for o in &self.outcomes {
            let classname = match o.id.rsplit_once('.') {
                Some((group, _)) => format!("{suite}.{group}"),
                None => suite.clone(),
            };
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{} ({}): {}\" time=\"{:.3}\"",
                xml(&classname),
                xml(&o.id),
                xml(&o.rule),
                xml(&o.title),
                o.elapsed.as_secs_f64()
            );
            let text = format!(
                "sent: {}\nexpected: {}\ngot: {}{}",
                o.sent,
                o.expected,
                o.got,
                o.detail
                    .as_ref()
                    .map(|d| format!("\n{d}"))
                    .unwrap_or_default()
            );
            match o.verdict {
                Verdict::Pass => {
                    let _ = writeln!(out, "/>");
                }
                Verdict::Fail => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        xml(&format!("expected {}; got {}", o.expected, o.got)),
                        xml(&o.rule),
                        xml(&text)
                    );
                }
                Verdict::Skip => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(&o.got)
                    );
                }
            }
        }
        let _ = writeln!(out, "  </testsuite>");
        let _ = writeln!(out, "</testsuites>");
        out
    }
}

/// Text escaped for XML attributes and content. Characters XML 1.0 cannot
/// carry at all (most C0 controls) become U+FFFD.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(id: &str, verdict: Verdict) -> Outcome {
        Outcome {
            id: id.to_owned(),
            rule: "P-SIG-2".to_owned(),
            title: "created in the future <&> \"quoted\"".to_owned(),
            hostile: true,
            sent: "GET /whoami\u{1}".to_owned(),
            expected: "401 invalid_signature".to_owned(),
            got: "200".to_owned(),
            verdict,
            detail: Some("line 1\nline 2".to_owned()),
            elapsed: Duration::from_millis(12),
        }
    }

    fn report() -> Report {
        Report {
            role: "resource".to_owned(),
            target: "http://127.0.0.1:1".to_owned(),
            profile: "aauth-2026-01".to_owned(),
            outcomes: vec![
                outcome("resource.sig.a", Verdict::Pass),
                outcome("resource.sig.b", Verdict::Fail),
                outcome("resource.sig.c", Verdict::Skip),
            ],
            elapsed: Duration::from_secs(2),
        }
    }

    #[test]
    fn the_summary_counts_each_verdict() {
        let s = report().summary();
        assert_eq!(
            (s.total, s.passed, s.failed, s.skipped, s.hostile),
            (3, 1, 1, 1, 3)
        );
        assert!(
            report()
                .summary_line()
                .contains("1 passed, 1 failed, 1 skipped of 3")
        );
    }

    #[test]
    fn the_table_shows_what_was_sent_only_for_failures() {
        let table = report().table();
        assert!(table.contains("PASS   resource.sig.a"), "{table}");
        assert_eq!(table.matches("sent:").count(), 1, "{table}");
        assert!(table.contains("  line 2"), "{table}");
    }

    #[test]
    fn junit_is_well_formed_xml_with_one_testcase_per_check() {
        let xml_text = report().junit();
        let mut reader = quick_xml::Reader::from_str(&xml_text);
        let (mut cases, mut failures, mut skipped) = (0, 0, 0);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                    match e.name().as_ref() {
                        b"testcase" => cases += 1,
                        b"failure" => failures += 1,
                        b"skipped" => skipped += 1,
                        _ => {}
                    }
                }
                Ok(_) => {}
                Err(e) => panic!(
                    "not well-formed at {}: {e}\n{xml_text}",
                    reader.error_position()
                ),
            }
        }
        assert_eq!((cases, failures, skipped), (3, 1, 1));
        assert!(!xml_text.contains('\u{1}'));
    }

    #[test]
    fn json_carries_every_column() {
        let value = report().json();
        let first = &value["checks"][0];
        for key in ["id", "rule", "title", "sent", "expected", "got", "verdict"] {
            assert!(first.get(key).is_some(), "{key}: {value}");
        }
        assert_eq!(value["summary"]["failed"], 1);
    }
}
