//! The three-party walk-through: every level of AAuth, from an unsigned
//! request to a delegate that rotates its key, against the real servers.
//!
//! [`run`] narrates each step through a callback and returns what happened,
//! so the same walk is the demo (`aauth-demo` prints it) and an end-to-end
//! test (which asserts on it).

use std::sync::Arc;
use std::time::Duration;

use aauth_agent::{self as agent, Agent};
use aauth_http::client::{Identity, Outgoing, Reply, SigningClient};
use aauth_protocol::challenge::Level;
use aauth_protocol::keys::{Algorithm, SigningKey};
use bytes::Bytes;
use http::Method;
use url::Url;

use crate::user::{Decision, Narrator, PlayedUser};
use crate::world::{ALICE, ALICE_PASSWORD, Options, World, WorldError};

/// The options the walk needs: short auth tokens (to show refresh) and small
/// rate limits (to show the tiers).
pub fn options() -> Options {
    Options {
        auth_token_lifetime: AUTH_TOKEN_LIFETIME,
        rate_limits: [3, 5, 100, 1000],
        rate_window: 60,
        ..Options::default()
    }
}

/// Auth token lifetime in the walk, seconds.
pub const AUTH_TOKEN_LIFETIME: u32 = 6;

/// One step's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What the step showed.
    pub title: &'static str,
    /// Whether it went as the protocol says it should.
    pub ok: bool,
    /// A one-line result.
    pub detail: String,
}

/// Narration and the collected outcomes.
struct Walk {
    say: Narrator,
    outcomes: Vec<Outcome>,
}

impl Walk {
    fn heading(&self, number: usize, title: &str) {
        (self.say)("");
        (self.say)(&format!("── {number}. {title}"));
    }

    fn line(&self, text: &str) {
        (self.say)(&format!("   {text}"));
    }

    /// Prints who called whom in a `/chain` answer; returns how many hops.
    fn hops(&self, json: &serde_json::Value) -> usize {
        let text = |value: Option<&serde_json::Value>| {
            value
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?")
                .to_owned()
        };
        let mut hop = Some(json);
        let mut depth = 0;
        while let Some(this) = hop.filter(|h| h.is_object()) {
            // E§3.9: `act` names whom the caller acts for, after a token
            // exchange; none means it acts for itself, with a token its auth
            // server gave it directly.
            let act = match this.get("act") {
                None | Some(serde_json::Value::Null) => {
                    "act: null, on its own behalf: its token was not exchanged".to_owned()
                }
                Some(act) => format!("act: {act}, on behalf of the callers named there"),
            };
            self.line(&format!(
                "{} was called by {} ({act})",
                text(this.get("resource")),
                text(this.get("caller")),
            ));
            hop = this.get("downstream");
            depth += 1;
        }
        depth
    }

    fn record(&mut self, title: &'static str, ok: bool, detail: String) {
        self.line(&format!("{} {detail}", if ok { "✔" } else { "✘" }));
        self.outcomes.push(Outcome { title, ok, detail });
    }
}

/// What the citations in the headings point at, said once at the start.
pub const REFERENCES: &str =
    "  The headings cite their sources: E§ is a section of the AAuth explainer, D§ of the
  draft-hardt-aauth Internet-Draft, SK0§ of the Signature-Key draft, and P-… a decision of this
  implementation's profile where those texts are silent or disagree (docs/profile.md). The exact
  versions and where to read them: docs/references.md.";

/// The parties of a multi-hop step, with their ports.
fn chain_parties(walk: &Walk, chain: &crate::chain::Chain) {
    walk.line(&format!(
        "agent {} calls R1 {} (behind AS1 {}), which calls R2 {}, which calls R3 {}",
        chain.agent_server.url(),
        chain.r1.url(),
        chain.as1.url(),
        chain.r2.url(),
        chain.r3.url(),
    ));
    walk.line(&format!("(R2 and R3 are behind AS2 {})", chain.as2.url()));
}

fn describe(reply: &Reply) -> String {
    let mut text = format!("{}", reply.status);
    if let Some(code) = reply.error_code() {
        text.push_str(&format!(" {code}"));
    }
    if let Some(challenge) = reply.agent_auth() {
        let value = crate::user::clip(&challenge.to_header_value(), 70);
        text.push_str(&format!(", Agent-Auth: {value}"));
    }
    text
}

fn body_line(reply: &Reply) -> String {
    let text = reply.text();
    let squeezed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::user::clip(&squeezed, 140)
}

/// Runs the walk against `world`, narrating through `say`.
pub async fn run(world: &World, say: Narrator) -> Result<Vec<Outcome>, WorldError> {
    let mut walk = Walk {
        say: say.clone(),
        outcomes: Vec::new(),
    };
    let resource = world.resource.url().to_owned();
    let url = |path: &str| {
        Url::parse(&format!("{resource}{path}")).map_err(|e| WorldError::Other(e.to_string()))
    };
    let steps: Narrator = {
        let say = say.clone();
        Arc::new(move |line: &str| say(&format!("   · {line}")))
    };
    let client = SigningClient::new().map_err(|e| WorldError::Other(e.to_string()))?;

    // 1. Unsigned.
    walk.heading(1, "Unsigned requests (E§4.5): allowed, then rate limited");
    let plain = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| WorldError::Other(e.to_string()))?;
    let mut statuses = Vec::new();
    let mut last_challenge = None;
    for _ in 0..4 {
        let response = plain
            .get(url("/public")?)
            .send()
            .await
            .map_err(|e| WorldError::Other(e.to_string()))?;
        statuses.push(response.status().as_u16());
        last_challenge = response
            .headers()
            .get("agent-auth")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
    }
    walk.line(&format!(
        "GET /public ×4 without a signature → {statuses:?}"
    ));
    let ok = statuses == [200, 200, 200, 429] && last_challenge.as_deref() == Some("httpsig");
    walk.record(
        "unsigned",
        ok,
        format!(
            "over the unsigned limit the resource asks for a signature: Agent-Auth: {}",
            last_challenge.unwrap_or_default()
        ),
    );

    // 2. Pseudonymous.
    walk.heading(
        2,
        "Pseudonymous (hwk, E§4.1): a key of its own, a higher limit",
    );
    let key = Arc::new(
        SigningKey::generate(Algorithm::Ed25519).map_err(|e| WorldError::Other(e.to_string()))?,
    );
    let hwk = Identity::Hwk(key);
    let mut replies = Vec::new();
    for _ in 0..6 {
        replies.push(
            client
                .send(&hwk, Outgoing::get(url("/public")?))
                .await
                .map_err(|e| WorldError::Other(e.to_string()))?,
        );
    }
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    walk.line(&format!(
        "GET /public ×6 signed with an inline key → {statuses:?}"
    ));
    let last = replies.last();
    let ok = statuses == [200, 200, 200, 200, 200, 429]
        && last.and_then(Reply::agent_auth).map(|c| c.level()) == Some(Level::Identified);
    walk.record(
        "pseudonymous",
        ok,
        format!(
            "over the pseudonymous limit: {}",
            last.map(describe).unwrap_or_default()
        ),
    );

    // 3. Identified.
    walk.heading(
        3,
        "Identified (jwks_uri, E§4.2): the agent server signs as itself",
    );
    let server_agent = world.server_agent(Arc::new(PlayedUser::new(
        ALICE,
        ALICE_PASSWORD,
        Decision::Approve,
        steps.clone(),
    )))?;
    let server_agent = server_agent.with_steps(steps.clone());
    let reply = server_agent
        .call(Method::GET, url("/whoami")?.as_str(), None, None)
        .await?;
    walk.line(&format!("/whoami answered: {}", body_line(&reply)));
    let ok = reply.status.as_u16() == 200 && reply.text().contains("\"identified\"");
    walk.record(
        "identified",
        ok,
        format!("GET /whoami → {}", describe(&reply)),
    );

    // 4. Autonomous authorization.
    walk.heading(
        4,
        "Authorized without a user (E§3.4): the auth server's policy lets the agent read",
    );
    let reply = server_agent
        .call(Method::GET, url("/data")?.as_str(), None, None)
        .await?;
    walk.line(&format!("/data answered: {}", body_line(&reply)));
    walk.record(
        "autonomous",
        reply.status.as_u16() == 200,
        format!("GET /data → {}", describe(&reply)),
    );

    // 5. User consent, through a delegate.
    walk.heading(
        5,
        "A delegate asks to write (E§3.6): Alice signs in and approves at the auth server",
    );
    let code = world.mint_code(None)?;
    walk.line(&format!("operator: aauth-agent-server mint-code → {code}"));
    let delegate = world.enroll_delegate_with(&code, "delegate").await?;
    walk.line(&format!(
        "delegate enrolled with a fresh key: sub {} (agent token from {})",
        delegate.record.sub, delegate.record.agent
    ));
    let user = PlayedUser::new(ALICE, ALICE_PASSWORD, Decision::Approve, steps.clone());
    let delegate_agent = world
        .delegate_agent(delegate.clone(), Arc::new(user.clone()))?
        .with_steps(steps.clone());
    let note = Bytes::from_static(br#"{"text":"Book the 9:40 train to Lyon"}"#);
    let reply = delegate_agent
        .call(
            Method::POST,
            url("/data")?.as_str(),
            Some(note),
            Some("application/json"),
        )
        .await?;
    walk.line(&format!("/data answered: {}", body_line(&reply)));
    walk.record(
        "consent",
        reply.status.is_success(),
        format!("POST /data → {}", describe(&reply)),
    );

    // 6. Refresh after expiry.
    walk.heading(
        6,
        "The auth token expires; the refresh token gets a new one (E§9.7)",
    );
    walk.line(&format!(
        "waiting {}s for the {AUTH_TOKEN_LIFETIME}s auth token to expire…",
        AUTH_TOKEN_LIFETIME + 1
    ));
    tokio::time::sleep(Duration::from_secs(u64::from(AUTH_TOKEN_LIFETIME) + 1)).await;
    let note = Bytes::from_static(br#"{"text":"And a window seat"}"#);
    let reply = delegate_agent
        .call(
            Method::POST,
            url("/data")?.as_str(),
            Some(note),
            Some("application/json"),
        )
        .await?;
    walk.record(
        "refresh",
        reply.status.is_success(),
        format!("POST /data after expiry → {}", describe(&reply)),
    );

    // 7. Key rotation.
    walk.heading(
        7,
        "The delegate rotates its key (P-DEL-2) and keeps access with the same sub",
    );
    let rotated = agent::renew(&client, &delegate).await?;
    walk.line(&format!(
        "new key {}, same sub {}",
        rotated.key.public_key().thumbprint(),
        rotated.record.sub
    ));
    let rotated_agent: Agent = world
        .delegate_agent(rotated.clone(), Arc::new(user))?
        .with_steps(steps.clone());
    let note = Bytes::from_static(br#"{"text":"Signed with the new key"}"#);
    let reply = rotated_agent
        .call(
            Method::POST,
            url("/data")?.as_str(),
            Some(note),
            Some("application/json"),
        )
        .await?;
    walk.line(&format!("/data answered: {}", body_line(&reply)));
    let ok = reply.status.is_success()
        && rotated.record.sub == delegate.record.sub
        && rotated.key.public_key() != delegate.key.public_key();
    walk.record(
        "rotation",
        ok,
        format!("POST /data with the new key → {}", describe(&reply)),
    );

    Ok(walk.outcomes)
}

/// The multi-hop step: the agent calls R1, which calls R2, which calls R3,
/// each resource exchanging the auth token it received (E§3.9, P-AS-7).
pub async fn run_chain(chain: &crate::chain::Chain, say: Narrator) -> Result<Outcome, WorldError> {
    let mut walk = Walk {
        say: say.clone(),
        outcomes: Vec::new(),
    };
    walk.heading(
        8,
        "Multi-hop (E§3.9, P-AS-7): agent → R1 → R2 → R3, across two auth servers",
    );
    chain_parties(&walk, chain);
    let steps: Narrator = {
        let say = say.clone();
        Arc::new(move |line: &str| say(&format!("   · {line}")))
    };
    let user = PlayedUser::new(ALICE, ALICE_PASSWORD, Decision::Approve, steps.clone());
    let agent = chain.server_agent(Arc::new(user))?.with_steps(steps);
    let reply = agent
        .call(
            Method::GET,
            &format!("{}/chain", chain.r1.url()),
            None,
            None,
        )
        .await?;
    let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    let depth = walk.hops(&json);
    let first_agent = json
        .pointer("/downstream/downstream/act/act/agent")
        .and_then(serde_json::Value::as_str);
    let ok =
        reply.status.as_u16() == 200 && depth == 3 && first_agent == Some(chain.agent_server.url());
    walk.record(
        "multi-hop",
        ok,
        format!(
            "GET R1/chain → {}; R3 sees the whole chain in act, nested twice",
            describe(&reply)
        ),
    );
    Ok(walk.outcomes.remove(0))
}

/// Where the user is needed in [`run_interaction`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// AS2 wants the user before R1 may call R2: R1 asks them itself.
    OneLevel,
    /// AS2 wants the user before R2 may call R3: R2 asks them, through R1.
    TwoLevels,
}

/// The user-interaction steps (E§9.9, P-UI-1..3): `chain` must be started
/// with [`crate::chain::ChainOptions::consent_for_r2`] for
/// [`Depth::OneLevel`], [`crate::chain::ChainOptions::consent_for_r3`] for
/// [`Depth::TwoLevels`].
pub async fn run_interaction(
    chain: &crate::chain::Chain,
    number: usize,
    depth: Depth,
    say: Narrator,
) -> Result<Outcome, WorldError> {
    let mut walk = Walk {
        say: say.clone(),
        outcomes: Vec::new(),
    };
    let (r1, r2, as2) = (chain.r1.url(), chain.r2.url(), chain.as2.url());
    let (title, expected) = match depth {
        Depth::OneLevel => {
            walk.heading(
                number,
                "User interaction one hop down (P-UI-1..3): AS2 wants the user before R1 may call R2",
            );
            chain_parties(&walk, chain);
            walk.line("R1 answers 401 with its own user_interaction URL; it asks the user at AS2");
            walk.line(
                "as an agent itself (request_type=auth, consent, code), then sends them back",
            );
            (
                "interaction 1",
                vec![
                    format!("{r1}/interaction"),
                    format!("{as2}/agent/auth"),
                    format!("{r1}/interaction/callback"),
                ],
            )
        }
        Depth::TwoLevels => {
            walk.heading(
                number,
                "User interaction two hops down (P-UI-3): AS2 wants the user before R2 may call R3",
            );
            chain_parties(&walk, chain);
            walk.line("R2 answers R1 with its user_interaction; R1 wraps it in its own, so the");
            walk.line(
                "browser goes agent → R1 → R2 → AS2 and back the same way, one hop at a time",
            );
            (
                "interaction 2",
                vec![
                    format!("{r1}/interaction"),
                    format!("{r2}/interaction"),
                    format!("{as2}/agent/auth"),
                    format!("{r2}/interaction/callback"),
                    format!("{r1}/interaction/callback"),
                ],
            )
        }
    };
    let steps: Narrator = {
        let say = say.clone();
        Arc::new(move |line: &str| say(&format!("   · {line}")))
    };
    let user = Arc::new(PlayedUser::new(
        ALICE,
        ALICE_PASSWORD,
        Decision::Approve,
        steps.clone(),
    ));
    let agent = chain.server_agent(user.clone())?.with_steps(steps);
    let reply = agent
        .call(Method::GET, &format!("{r1}/chain"), None, None)
        .await?;
    let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    let hops = walk.hops(&json);
    let path = user.stops();
    // The browser's last stop is the agent's own loopback callback.
    let back_at_agent = path
        .last()
        .is_some_and(|p| p.ends_with("/callback") && !p.ends_with("/interaction/callback"));
    let ok = reply.status.as_u16() == 200
        && hops == 3
        && path.len() == expected.len() + 1
        && path.starts_with(&expected)
        && back_at_agent;
    walk.line(&format!(
        "the browser went: {} → back to the agent",
        path.iter()
            .take(expected.len())
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" → ")
    ));
    walk.record(
        title,
        ok,
        format!(
            "GET R1/chain → 401 interaction_required, the user at {}, retry → {}",
            match depth {
                Depth::OneLevel => "R1 → AS2",
                Depth::TwoLevels => "R1 → R2 → AS2",
            },
            describe(&reply)
        ),
    );
    Ok(walk.outcomes.remove(0))
}
