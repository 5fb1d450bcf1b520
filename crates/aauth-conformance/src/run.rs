//! What every profile's checks share: the expectation an answer is judged
//! against, and the [`Run`] that sends requests, judges answers and
//! records one [`Outcome`] per check.

use std::time::{Duration, Instant};

use aauth_http::client::SignerStyle;
use aauth_protocol::challenge::Level;

use crate::craft::{Draft, first_difference};
use crate::host::Host;
use crate::report::{Outcome, Report, Verdict};
use crate::wire::{Seen, Sent, Wire, cut};

/// A check's name: its id, the rule it tests, and what it checks.
#[derive(Debug, Clone)]
pub struct Case {
    /// Stable id, `role.group.name`.
    pub id: String,
    /// `E§…`, `D§…`, `SK0§…` or `P-…`.
    pub rule: &'static str,
    /// A few words.
    pub title: String,
    /// Counted among the hostile cases.
    pub hostile: bool,
}

/// A well-behaved check.
pub fn case(id: impl Into<String>, rule: &'static str, title: impl Into<String>) -> Case {
    Case {
        id: id.into(),
        rule,
        title: title.into(),
        hostile: false,
    }
}

/// A hostile check: the request is wrong on purpose.
pub fn hostile(id: impl Into<String>, rule: &'static str, title: impl Into<String>) -> Case {
    Case {
        hostile: true,
        ..case(id, rule, title)
    }
}

/// What an answer must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Any 2xx.
    Success,
    /// A refusal: this status and `error`; for 401, an `Agent-Auth`
    /// challenge at `level` when given; never a resource token when
    /// `no_resource_token` (P-ERR-4: a failed signature earns nothing).
    Refused {
        /// The status.
        status: u16,
        /// The `error` of the body (P-ERR-1).
        error: &'static str,
        /// The challenge's level, when the rule fixes it.
        level: Option<Level>,
        /// No resource token may come with it.
        no_resource_token: bool,
    },
    /// Exactly this status, whatever the body.
    Status(u16),
    /// Any 4xx: how a request that breaks a size or syntax limit may be
    /// refused (a 400, a 401, a 413 or a 431 are all a refusal).
    Rejected,
    /// Anything but a server error or no answer (the garbage sweep).
    Below500,
}

impl Expect {
    /// A refusal with `status` and `error`.
    pub fn refused(status: u16, error: &'static str) -> Self {
        Self::Refused {
            status,
            error,
            level: None,
            no_resource_token: false,
        }
    }

    /// `401 invalid_signature` with a challenge at `level` and no resource
    /// token: how every broken signature is answered (P-ERR-1, P-ERR-4).
    pub fn bad_signature(level: Level) -> Self {
        Self::Refused {
            status: 401,
            error: "invalid_signature",
            level: Some(level),
            no_resource_token: true,
        }
    }

    /// A 401 with `error`, a challenge at `level`, and no resource token.
    pub fn unauthorized(error: &'static str, level: Level) -> Self {
        Self::Refused {
            status: 401,
            error,
            level: Some(level),
            no_resource_token: true,
        }
    }

    /// In words, for the report.
    pub fn describe(&self) -> String {
        match self {
            Self::Success => "2xx".to_owned(),
            Self::Refused {
                status,
                error,
                level,
                no_resource_token,
            } => {
                let mut text = format!("{status} {error}");
                if let Some(level) = level {
                    text.push_str(&format!(" with Agent-Auth at level {}", level_name(*level)));
                }
                if *no_resource_token {
                    text.push_str(", no resource token");
                }
                text
            }
            Self::Status(status) => status.to_string(),
            Self::Rejected => "any 4xx".to_owned(),
            Self::Below500 => "any answer below 500".to_owned(),
        }
    }

    /// `Ok` when `seen` meets the expectation, else what is wrong.
    pub fn judge(&self, seen: &Seen) -> Result<(), String> {
        match self {
            Self::Success if (200..300).contains(&seen.status) => Ok(()),
            Self::Success => Err(format!("status {}", seen.status)),
            Self::Status(status) if seen.status == *status => Ok(()),
            Self::Status(_) => Err(format!("status {}", seen.status)),
            Self::Rejected if (400..500).contains(&seen.status) => Ok(()),
            Self::Rejected => Err(format!("status {}", seen.status)),
            Self::Below500 if seen.status < 500 => Ok(()),
            Self::Below500 => Err(format!("a server error, {}", seen.status)),
            Self::Refused {
                status,
                error,
                level,
                no_resource_token,
            } => {
                if seen.status != *status {
                    return Err(format!("status {}", seen.status));
                }
                match seen.error() {
                    Some(got) if got == *error => {}
                    Some(got) => return Err(format!("error {got:?}")),
                    None => return Err("no JSON error body".to_owned()),
                }
                if let Some(level) = level {
                    match seen.agent_auth() {
                        None => return Err("no Agent-Auth challenge".to_owned()),
                        Some(Err(e)) => return Err(format!("an unreadable Agent-Auth: {e}")),
                        Some(Ok(challenge)) if challenge.level() != *level => {
                            return Err(format!(
                                "a challenge at level {}",
                                level_name(challenge.level())
                            ));
                        }
                        Some(Ok(_)) => {}
                    }
                }
                if *no_resource_token && seen.resource_token().is_some() {
                    return Err("a resource token it must not give (P-ERR-4)".to_owned());
                }
                Ok(())
            }
        }
    }
}

/// The suite's signature base beside the target's, after the first line
/// where they differ (or a note that they are the same).
fn bases(ours: &str, theirs: &str) -> String {
    let verdict = first_difference(ours, theirs)
        .unwrap_or_else(|| "the target's signature base is the suite's".to_owned());
    let indent = |base: &str| {
        base.lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "{verdict}\nthe suite's base:\n{}\nthe target's base:\n{}",
        indent(ours),
        indent(theirs)
    )
}

/// `pseudonymous`, `identified` or `authorized`.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Pseudonymous => "pseudonymous",
        Level::Identified => "identified",
        Level::Authorized => "authorized",
    }
}

/// Options every role shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A user to sign in as on the target's consent pages.
    pub user: Option<String>,
    /// Their password.
    pub password: Option<String>,
    /// How long to wait for a person to consent when no user is given.
    pub consent_wait: Duration,
    /// The most the whole run may take.
    pub deadline: Duration,
    /// How the suite writes its well-formed requests: this profile's
    /// style, or a peer's (`--compat`), so that the hostile cases are
    /// judged on what they change and not on an encoding the target
    /// cannot read.
    pub style: SignerStyle,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            user: None,
            password: None,
            consent_wait: Duration::from_secs(300),
            deadline: Duration::from_secs(600),
            style: SignerStyle::strict(),
        }
    }
}

/// One run: the client, the suite's parties, and the outcomes so far.
#[derive(Debug)]
pub struct Run {
    /// The bounded client.
    pub wire: Wire,
    /// The suite's own agent server and resource.
    pub host: Host,
    /// Shared options.
    pub settings: Settings,
    outcomes: Vec<Outcome>,
    started: Instant,
    /// Printed as checks finish (the CLI shows progress on stderr).
    progress: Option<fn(&Outcome)>,
}

impl Run {
    /// A run with no outcomes yet.
    pub fn new(wire: Wire, host: Host, settings: Settings) -> Self {
        wire.allow(&host.url());
        Self {
            wire,
            host,
            settings,
            outcomes: Vec::new(),
            started: Instant::now(),
            progress: None,
        }
    }

    /// Calls `progress` with each outcome as it is recorded.
    pub fn with_progress(mut self, progress: fn(&Outcome)) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Whether the run's deadline has passed: the remaining checks are
    /// then skipped.
    pub fn out_of_time(&self) -> bool {
        self.started.elapsed() > self.settings.deadline
    }

    /// Records an outcome.
    pub fn record(&mut self, outcome: Outcome) {
        if let Some(progress) = self.progress {
            progress(&outcome);
        }
        self.outcomes.push(outcome);
    }

    /// Records a check judged without a request of its own (a claim of a
    /// token received earlier, a document's member).
    pub fn verdict(
        &mut self,
        case: Case,
        sent: impl Into<String>,
        expected: impl Into<String>,
        result: Result<String, String>,
    ) -> bool {
        let (verdict, got) = match result {
            Ok(got) => (Verdict::Pass, got),
            Err(got) => (Verdict::Fail, got),
        };
        self.record(Outcome {
            id: case.id,
            rule: case.rule.to_owned(),
            title: case.title,
            hostile: case.hostile,
            sent: sent.into(),
            expected: expected.into(),
            got,
            verdict,
            detail: None,
            elapsed: Duration::ZERO,
        });
        verdict == Verdict::Pass
    }

    /// Records a check that could not run, and why.
    pub fn skip(&mut self, case: Case, why: impl Into<String>) {
        self.record(Outcome {
            id: case.id,
            rule: case.rule.to_owned(),
            title: case.title,
            hostile: case.hostile,
            sent: String::new(),
            expected: String::new(),
            got: why.into(),
            verdict: Verdict::Skip,
            detail: None,
            elapsed: Duration::ZERO,
        });
    }

    /// Sends `sent`, judges the answer against `expect`, records the
    /// outcome, and returns the answer. `base` is the signature base the
    /// suite signed: on a signature refusal from a target that reports its
    /// own base (P-ERR-3), the first differing line goes in the detail.
    pub async fn exchange(
        &mut self,
        case: Case,
        sent: &Sent,
        expect: Expect,
        base: Option<&str>,
    ) -> Option<Seen> {
        let start = Instant::now();
        if self.out_of_time() {
            self.skip(case, "the run's deadline passed");
            return None;
        }
        let answer = self.wire.send(sent).await;
        let elapsed = start.elapsed();
        let (verdict, got, detail, seen) = match answer {
            Err(e) => (Verdict::Fail, e.to_string(), None, None),
            Ok(seen) => {
                let judged = expect.judge(&seen);
                let detail = match (base, seen.signature_base()) {
                    (Some(ours), Some(theirs)) if judged.is_err() => Some(bases(ours, theirs)),
                    _ => None,
                };
                let got = match &judged {
                    Ok(()) => seen.describe(),
                    Err(why) => format!("{why}: {}", seen.describe()),
                };
                let verdict = if judged.is_ok() {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                };
                (verdict, got, detail, Some(seen))
            }
        };
        self.record(Outcome {
            id: case.id,
            rule: case.rule.to_owned(),
            title: case.title,
            hostile: case.hostile,
            sent: sent.describe(),
            expected: expect.describe(),
            got: cut(&got, 600),
            verdict,
            detail,
            elapsed,
        });
        seen
    }

    /// Signs `draft` with the suite's own signer, then [`Run::exchange`]s
    /// it, the signed base kept for the diagnostics of a failure.
    pub async fn send(&mut self, case: Case, draft: &Draft, expect: Expect) -> Option<Seen> {
        let finished = draft.finish();
        self.exchange(case, &finished.sent, expect, Some(&finished.base))
            .await
    }

    /// The report of everything recorded.
    pub fn report(self, role: &str, target: &str, profile: &str) -> Report {
        Report {
            role: role.to_owned(),
            target: target.to_owned(),
            profile: profile.to_owned(),
            outcomes: self.outcomes,
            elapsed: self.started.elapsed(),
        }
    }
}
