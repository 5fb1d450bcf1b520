//! Who called: the binding a resource keys its interaction sessions and the
//! grants they lead to by. Its own module, so that `downstream` (which keeps
//! the grants) and `interaction` (which keeps the sessions) share it without
//! depending on each other both ways.

use aauth_protocol::ids::Origin;
use aauth_protocol::verify::VerifiedRequest;

/// Who a session, and the grant it leads to, belongs to (P-UI-1: "bound to
/// the requesting agent and delegate"). The user of the caller's token and
/// the actors before the caller (`act`) are part of it too: a resource
/// further down a chain sees the same caller (the resource before it) for
/// every agent and user upstream, and must not let one of them use what
/// another's user granted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Binding {
    /// The calling agent.
    pub agent: Origin,
    /// Its delegate, when it has one.
    pub delegate: Option<String>,
    /// The `sub` of the caller's auth token, when it has one.
    pub user: Option<String>,
    /// The caller's token's `act` claim as JSON, when it has one.
    pub act: Option<String>,
}

impl Binding {
    /// The caller of an authorized request; `None` without an agent.
    pub fn of(verified: &VerifiedRequest) -> Option<Self> {
        let claims = verified.auth_token().map(|t| t.claims());
        Some(Self {
            agent: verified.agent()?.clone(),
            delegate: verified.delegate().map(str::to_owned),
            user: claims.and_then(|c| c.sub.clone()),
            act: claims
                .and_then(|c| c.act.as_ref())
                .and_then(|act| serde_json::to_string(act).ok()),
        })
    }

    /// Roughly how many bytes it holds.
    pub(crate) fn weight(&self) -> usize {
        self.agent.as_str().len()
            + self.delegate.as_ref().map_or(0, String::len)
            + self.user.as_ref().map_or(0, String::len)
            + self.act.as_ref().map_or(0, String::len)
    }
}
