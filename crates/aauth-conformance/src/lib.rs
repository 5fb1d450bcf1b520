//! # aauth-conformance
//!
//! A black-box conformance suite for AAuth implementations. It checks a
//! resource, an auth server or an agent server over HTTP, the way another
//! party of the protocol would meet it — or an agent, through the requests
//! it sends a resource the suite serves — and reports per check an id, the
//! spec rule it tests (`E§…`, `D§…`, `SK0§…`, `P-…`), what was sent, what
//! was expected, what came back, and the verdict.
//!
//! ```text
//! aauth-conformance resource     http://127.0.0.1:4003 [--identified-path /whoami] [--authorized-path /data] [--scope data.read]
//! aauth-conformance auth-server  http://127.0.0.1:4002 [--scope data.read] [--user alice --password …]
//! aauth-conformance agent-server http://127.0.0.1:4001 --code CODE
//! aauth-conformance agent [--listen 127.0.0.1:4004] [--auth-server http://127.0.0.1:4002] [--wait 300]
//!     [--json FILE] [--junit FILE] [--profile aauth-2026-01] [--compat strict|py-early]
//!     [--timeout 10] [--deadline 600]
//! ```
//!
//! For the identified and authorized levels the suite is itself an agent
//! server ([`host`]): it serves its metadata and JWKS on loopback (or on a
//! public URL it is given), mints agent tokens for its delegates, and is a
//! resource of its own for an auth server. Every request is bounded in time
//! and size ([`wire`]), and goes only to the target's origin, what the
//! target names on the same host, the suite's own listeners, and any origin
//! allowed with `--allow-origin`. How to run it and read it:
//! `docs/interop.md`.
//!
//! The checks live in a protocol [`profile`]; the runner ([`run`]), the
//! client, the suite's parties and the [`report`] (table, JSON, JUnit XML)
//! know nothing of the rules, so a later draft is a second profile.

pub mod browser;
pub mod craft;
pub mod early;
pub mod host;
pub mod jws;
pub mod profile;
pub mod report;
pub mod run;
pub mod wire;

use std::time::Duration;

use url::Url;

use crate::host::Host;
use crate::profile::{AgentServerTarget, AgentTarget, AuthServerTarget, Profile, ResourceTarget};
use crate::report::{Outcome, Report};
use crate::run::{Run, Settings};
use crate::wire::Wire;

/// The role under test and what the suite needs to know of it.
#[derive(Debug, Clone)]
pub enum Role {
    /// A resource.
    Resource(ResourceTarget),
    /// An auth server.
    AuthServer(AuthServerTarget),
    /// An agent server.
    AgentServer(AgentServerTarget),
    /// An agent.
    Agent(AgentTarget),
}

impl Role {
    /// `resource`, `auth-server` or `agent-server`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Resource(_) => "resource",
            Self::AuthServer(_) => "auth-server",
            Self::AgentServer(_) => "agent-server",
            Self::Agent(_) => "agent",
        }
    }

    /// What is under test: the target's URL, or for an agent the suite's
    /// own resource it calls.
    pub fn target(&self) -> String {
        match self {
            Self::Resource(t) => t.url.to_string(),
            Self::AuthServer(t) => t.url.to_string(),
            Self::AgentServer(t) => t.url.to_string(),
            Self::Agent(t) => format!("an agent calling the suite's resource on {}", t.listen),
        }
    }
}

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the suite's own agent server listens.
    pub listen: String,
    /// Its public URL, when something in front forwards to `listen`.
    pub public_url: Option<Url>,
    /// More origins the suite may contact.
    pub allow: Vec<Url>,
    /// The most one request may take.
    pub timeout: Duration,
    /// Users, consent, the run's deadline.
    pub settings: Settings,
    /// Called with each outcome as it is recorded.
    pub progress: Option<fn(&Outcome)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".to_owned(),
            public_url: None,
            allow: Vec::new(),
            timeout: Duration::from_secs(10),
            settings: Settings::default(),
            progress: None,
        }
    }
}

/// Runs `profile`'s checks for `role` and returns the report.
pub async fn check(
    profile: &dyn Profile,
    role: &Role,
    options: &Options,
) -> Result<Report, String> {
    let wire = Wire::new(options.timeout)?;
    for url in &options.allow {
        wire.allow(url);
    }
    // An agent calls the suite's resource on --listen; the suite's agent
    // server is then not needed there.
    let listen = match role {
        Role::Agent(_) => "127.0.0.1:0",
        _ => options.listen.as_str(),
    };
    let host = Host::start(listen, options.public_url.as_ref()).await?;
    let mut run = Run::new(wire, host, options.settings.clone());
    if let Some(progress) = options.progress {
        run = run.with_progress(progress);
    }
    let mut deadline = options.settings.deadline + Duration::from_secs(30);
    if let Role::Agent(t) = role {
        deadline += t.wait;
    }
    let work = async {
        match role {
            Role::Resource(t) => profile.resource(&mut run, t).await,
            Role::AuthServer(t) => profile.auth_server(&mut run, t).await,
            Role::AgentServer(t) => profile.agent_server(&mut run, t).await,
            Role::Agent(t) => profile.agent(&mut run, t).await,
        }
    };
    if tokio::time::timeout(deadline, work).await.is_err() {
        return Err(format!(
            "the run passed its deadline of {} s",
            deadline.as_secs()
        ));
    }
    Ok(run.report(role.name(), &role.target(), profile.name()))
}
