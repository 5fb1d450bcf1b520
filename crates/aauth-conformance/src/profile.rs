//! Protocol profiles: the checks of one era of AAuth. The runner, the
//! client, the suite's own parties and the report know nothing of the
//! rules; a later draft is added as a second [`Profile`] beside the first.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use url::Url;

use crate::run::Run;

/// The checks of one profile for one role, run to the end.
pub type Checks<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A resource under test.
#[derive(Debug, Clone)]
pub struct ResourceTarget {
    /// Its origin.
    pub url: Url,
    /// A `GET` path that needs the identified level.
    pub identified_path: String,
    /// A `GET` path that needs an auth token with `scope`.
    pub authorized_path: String,
    /// The scope the authorized path needs.
    pub scope: String,
    /// A request (method, path) that needs a scope beyond `scope`, sent
    /// with a small JSON body: the token for `scope` must get 403
    /// `insufficient_scope`.
    pub beyond_scope: Option<(String, String)>,
    /// A path open to unsigned requests, and how many to send it at most
    /// to meet the rate limit of that tier (429 `rate_limited`); `None`
    /// sends none. Run last: it uses the tier up.
    pub rate_probe: Option<(String, u32)>,
}

/// An auth server under test.
#[derive(Debug, Clone)]
pub struct AuthServerTarget {
    /// Its origin.
    pub url: Url,
    /// A scope its policy grants with a user's consent.
    pub scope: String,
}

/// An agent server under test.
#[derive(Debug, Clone)]
pub struct AgentServerTarget {
    /// Its origin.
    pub url: Url,
    /// A one-time enrollment code its operator minted.
    pub code: String,
    /// Where delegates enroll (P-DEL-1).
    pub enroll_path: String,
    /// Where delegates renew their agent token with a new key (P-DEL-2).
    pub renew_path: String,
}

/// An agent under test: it calls the suite's own resource.
#[derive(Debug, Clone)]
pub struct AgentTarget {
    /// Where the suite's resource listens.
    pub listen: String,
    /// The auth server the resource names for the authorized level.
    pub auth_server: Option<Url>,
    /// How long to wait for the agent to finish the scenario.
    pub wait: Duration,
    /// Tells the person (or the test) running the agent where to point it.
    pub announce: fn(&str),
}

/// One era's checks.
pub trait Profile: Send + Sync {
    /// Its name on the command line and in reports.
    fn name(&self) -> &'static str;
    /// The spec versions it follows.
    fn about(&self) -> &'static str;
    /// Checks a resource.
    fn resource<'a>(&'a self, run: &'a mut Run, target: &'a ResourceTarget) -> Checks<'a>;
    /// Checks an auth server.
    fn auth_server<'a>(&'a self, run: &'a mut Run, target: &'a AuthServerTarget) -> Checks<'a>;
    /// Checks an agent server.
    fn agent_server<'a>(&'a self, run: &'a mut Run, target: &'a AgentServerTarget) -> Checks<'a>;
    /// Checks an agent, through the requests it sends the suite's resource.
    fn agent<'a>(&'a self, run: &'a mut Run, target: &'a AgentTarget) -> Checks<'a>;
}

/// Every profile, the default first.
pub fn all() -> Vec<Box<dyn Profile>> {
    vec![Box::new(crate::early::Early)]
}

/// The profile called `name`.
pub fn find(name: &str) -> Option<Box<dyn Profile>> {
    all().into_iter().find(|p| p.name() == name)
}
