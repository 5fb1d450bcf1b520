//! Calling the next resource as an agent: token exchange (E§3.9, E§9.10,
//! profile: P-AS-7, P-MD-4).
//!
//! ```text
//! GET <downstream>   signed as this resource (jwks_uri, well-known="aauth-agent")
//!   ◀── 401/403 Agent-Auth: httpsig; auth-token; resource_token=…; auth_server=…
//! auth server metadata (discovery) → agent_token_endpoint
//! POST agent_token_endpoint   signed as this resource, with a Nonce (P-SIG-6)
//!   request_type=exchange&resource_token=<challenge's>&upstream_token=<caller's auth token>
//!   ◀── 200 {"auth_token", "expires_in"}   (cnf = this resource's key, P-AS-7)
//! GET <downstream>   signed with that auth token (jwt) and this resource's key
//! ```
//!
//! The token requests are the agent library's (`aauth_agent::Agent`, signing
//! as this resource's own agent identity): a resource calling on is an
//! ordinary agent (E§3.9). This module decides what to ask and keeps what
//! it got; the library asks.
//!
//! Exchanged tokens are cached per (upstream token hash, downstream URL)
//! until they expire, so repeated calls under one upstream token exchange
//! once. One call makes at most one exchange and one retry, each request
//! within the client's timeout, the whole call within [`CALL_BUDGET`].
//!
//! When the user is needed (P-UI), the call ends in
//! [`DownstreamError::NeedsUser`] and [`crate::interaction`] takes over:
//! the auth server's `interaction_required` leads to this resource's own
//! authorization as an agent ([`Downstream::start_consent`],
//! [`Downstream::finish_consent`]), whose token is then kept for the caller
//! ([`Downstream::keep_grant`]) and tried first on the caller's next call;
//! a downstream's own `user_interaction` is passed up the chain.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aauth_agent::{Agent, AgentError, AuthServer, NoUser, Principal, TokenStore};
use aauth_http::client::{ClientError, Identity, Outgoing, Reply, SignerStyle, SigningClient};
use aauth_http::discovery::Discovery;
use aauth_protocol::challenge::AgentAuth;
use aauth_protocol::error::{Condition, ErrorCode};
use aauth_protocol::ids::{Kid, Origin};
use aauth_protocol::keys::{SigningKey, sha256};
use aauth_protocol::secret::{AuthorizationCode, SignedToken};
use aauth_protocol::token_request::TokenResponse;
use http::StatusCode;
use moka::Expiry;
use url::Url;

use crate::caller::Binding;

/// Timeout of each request to the downstream or its auth server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);
/// Time for a whole downstream call (below the server's own 30 s limit,
/// so the caller gets this resource's answer rather than a 408).
pub const CALL_BUDGET: Duration = Duration::from_secs(25);
/// Longest time an exchanged token is kept, whatever its `expires_in`.
pub const MAX_CACHED_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// How long before its expiry a token is no longer used.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// Most exchanged tokens kept.
const CACHE_CAPACITY: u64 = 10_000;
/// Longest piece of a peer's text quoted in a description.
const MAX_QUOTE: usize = 120;

fn quote(text: &str) -> String {
    text.chars().take(MAX_QUOTE).collect()
}

/// Why the downstream call failed. `Display` is written for this
/// resource's caller and names the downstream (or its auth server).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownstreamError {
    /// Connecting, sending or reading failed (including the client's timeout).
    #[error("downstream {url}: {reason}")]
    Transport {
        /// The URL called.
        url: String,
        /// What failed.
        reason: String,
    },
    /// A request, or the whole call, took longer than its time
    /// ([`REQUEST_TIMEOUT`], [`CALL_BUDGET`]).
    #[error("downstream {url}: no answer from {from} in time")]
    Timeout {
        /// The downstream URL.
        url: String,
        /// The URL that did not answer (the downstream's, or its auth
        /// server's token endpoint).
        from: String,
    },
    /// A 401/403 without an `Agent-Auth` challenge carrying a resource
    /// token and an auth server (E§4.3).
    #[error("downstream {url} answered {status} without a resource token challenge")]
    NoResourceToken {
        /// The downstream URL.
        url: String,
        /// Its status.
        status: u16,
    },
    /// The challenge's `auth_server` is not an acceptable identifier, or
    /// its metadata could not be had (E§8.2).
    #[error("downstream {url}: its auth server {auth_server}: {reason}")]
    AuthServer {
        /// The downstream URL.
        url: String,
        /// The `auth_server` as received.
        auth_server: String,
        /// What is wrong.
        reason: String,
    },
    /// The user is needed before the call can succeed (P-UI-1).
    #[error("downstream {url}: {need}")]
    NeedsUser {
        /// The downstream URL.
        url: String,
        /// Where the user is needed.
        need: NeedsUser,
    },
    /// The downstream asked for the user at a URL this resource does not
    /// send a user to: not on the downstream's own origin (this resource
    /// only ever sends the user to its next hop, P-UI-3), or already
    /// carrying a `return_url`.
    #[error("downstream {url} asked for the user at {interaction}: {reason}")]
    BadInteraction {
        /// The downstream URL.
        url: String,
        /// The `user_interaction` as received, quoted briefly.
        interaction: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The auth server refused a token request (E§9.10 `exchange`, or
    /// E§9.3 / E§9.6 `auth` / `code` for this resource's own grant).
    #[error(
        "downstream {url}: its auth server {auth_server} refused {}: {status} {error}",
        request_name(request_type)
    )]
    TokenRefused {
        /// The downstream URL.
        url: String,
        /// The auth server.
        auth_server: String,
        /// `exchange`, `auth` or `code`.
        request_type: &'static str,
        /// Its status.
        status: u16,
        /// Its `error` (and description), quoted briefly.
        error: String,
    },
    /// The auth server's 200 is not a token answer (E§9.4, E§9.6, E§9.10).
    #[error(
        "downstream {url}: its auth server {auth_server} answered {} with {reason}",
        request_name(request_type)
    )]
    TokenAnswer {
        /// The downstream URL.
        url: String,
        /// The auth server.
        auth_server: String,
        /// `exchange`, `auth` or `code`.
        request_type: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The downstream refused the request made with the exchanged token,
    /// or answered another error.
    #[error("downstream {url} answered {status} {error}")]
    Refused {
        /// The downstream URL.
        url: String,
        /// Its status.
        status: u16,
        /// Its `error` (and description), quoted briefly.
        error: String,
    },
    /// The downstream's success answer is not JSON.
    #[error("downstream {url} answered {status} with a body that is not JSON")]
    NotJson {
        /// The downstream URL.
        url: String,
        /// Its status.
        status: u16,
    },
}

/// A token request in words, for descriptions.
fn request_name(request_type: &str) -> &'static str {
    match request_type {
        "exchange" => "the exchange",
        "auth" => "the auth request",
        _ => "the code exchange",
    }
}

/// The auth token of the caller this resource serves, kept while the user
/// is asked so that the downstream auth server can name that caller on its
/// consent page (an extension of this profile: `upstream_token` in
/// `request_type=auth`).
#[derive(Clone, PartialEq, Eq)]
pub struct CallerToken {
    token: String,
    expires_at: u64,
}

impl fmt::Debug for CallerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallerToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// How long a caller's token must still live to be sent with the user's
/// consent request: the auth server checks it when the user arrives.
const CALLER_TOKEN_MARGIN: u64 = 30;

impl CallerToken {
    /// The caller's auth token (already verified by this resource), with
    /// its `exp`.
    pub fn of(token: &str) -> Option<Self> {
        let jws = aauth_protocol::jose::UnverifiedJws::parse(token).ok()?;
        let claims: serde_json::Value = jws.unverified_claims_for_routing("auth+jwt").ok()?;
        Some(Self {
            token: token.to_owned(),
            expires_at: claims.get("exp")?.as_u64()?,
        })
    }

    /// The token, when it still lives long enough to be checked at `now`.
    fn fresh(&self, now: u64) -> Option<&str> {
        (self.expires_at > now.saturating_add(CALLER_TOKEN_MARGIN)).then_some(self.token.as_str())
    }

    /// Its size, for the interaction sessions' memory bound.
    pub fn weight(&self) -> usize {
        self.token.len()
    }
}

/// Where the user is needed (P-UI-1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeedsUser {
    /// The downstream's auth server would need the user's consent for the
    /// exchange (P-AS-7 `interaction_required`): this resource asks for a
    /// grant of its own, through that server's consent page (P-UI-2),
    /// naming the caller it serves when its token allows.
    Consent(Option<CallerToken>),
    /// The downstream itself needs the user at this URL, on its own
    /// origin (`user_interaction`): the chain bubbles (P-UI-3).
    Onward(Url),
}

impl fmt::Display for NeedsUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Consent(_) => f.write_str("its auth server needs the user's consent"),
            Self::Onward(_) => f.write_str("it needs the user at its own interaction page"),
        }
    }
}

impl DownstreamError {
    /// A request to `to` on the way to the downstream `url` failed.
    fn sending(url: &Url, to: &str, error: ClientError) -> Self {
        match error {
            ClientError::Timeout(_) => Self::Timeout {
                url: url.to_string(),
                from: to.to_owned(),
            },
            error => Self::Transport {
                url: to.to_owned(),
                reason: error.to_string(),
            },
        }
    }

    /// The P-ERR-1 row this resource answers with. Only the need for the
    /// user is the caller's to act on; a peer that does not answer in time
    /// is a gateway timeout, and every other failure of the chain behind
    /// this resource a bad gateway.
    pub fn condition(&self) -> Condition {
        match self {
            Self::NeedsUser { .. } => Condition::InteractionRequired,
            Self::Timeout { .. } => Condition::UpstreamTimeout,
            Self::Transport { .. }
            | Self::NoResourceToken { .. }
            | Self::AuthServer { .. }
            | Self::BadInteraction { .. }
            | Self::TokenRefused { .. }
            | Self::TokenAnswer { .. }
            | Self::Refused { .. }
            | Self::NotJson { .. } => Condition::UpstreamFailed,
        }
    }

    /// What the caller is told: which hop failed and how, in this
    /// resource's words. The peers' URLs and what they answered (their
    /// error bodies) stay in this resource's log: they are its
    /// configuration and its peers' business, not the caller's.
    pub fn description(&self) -> String {
        match self {
            Self::NeedsUser { need, .. } => format!("the downstream resource: {need}"),
            Self::Timeout { .. } => format!(
                "the downstream resource or its auth server did not answer in time (at most {} s \
                 in all)",
                CALL_BUDGET.as_secs()
            ),
            Self::Transport { .. } => {
                "the downstream resource or its auth server could not be reached".to_owned()
            }
            Self::NoResourceToken { status, .. } => format!(
                "the downstream resource answered {status} without a resource token challenge"
            ),
            Self::AuthServer { .. } => {
                "the downstream resource named an auth server this resource cannot use".to_owned()
            }
            Self::BadInteraction { reason, .. } => format!(
                "the downstream resource asked for the user at a page this resource does not send \
                 users to: {reason}"
            ),
            Self::TokenRefused {
                request_type,
                status,
                ..
            } => format!(
                "the downstream resource's auth server refused {} ({status})",
                request_name(request_type)
            ),
            Self::TokenAnswer { request_type, .. } => format!(
                "the downstream resource's auth server answered {} with no usable token",
                request_name(request_type)
            ),
            Self::Refused { status, .. } => {
                format!("the downstream resource answered {status}")
            }
            Self::NotJson { status, .. } => {
                format!("the downstream resource answered {status} with a body that is not JSON")
            }
        }
    }
}

/// An auth token for the downstream, bound to this resource's key, and how
/// long to keep it: exchanged (P-AS-7) or granted by the user (P-UI-2).
#[derive(Clone)]
pub struct Exchanged {
    auth_token: String,
    lifetime: Duration,
}

impl fmt::Debug for Exchanged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchanged")
            .field("auth_token", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// The cache key: SHA-256 of the upstream token (the token itself is not
/// kept) and the downstream URL.
type TokenKey = ([u8; 32], String);

struct UntilExpiry;

impl<K> Expiry<K, Arc<Exchanged>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Arc<Exchanged>,
        _now: Instant,
    ) -> Option<Duration> {
        Some(value.lifetime)
    }
}

/// How this resource's own authorization at the downstream's auth server
/// starts (P-UI-2).
#[derive(Debug)]
pub enum ConsentStart {
    /// The auth server granted it directly (E§9.4).
    Granted(Exchanged),
    /// The user must consent here: the auth server's `agent_auth_endpoint`
    /// with the request token, the redirect URI and `state` (E§9.5).
    Consent(Url),
}

/// The downstream this resource calls, and how it signs as an agent.
#[derive(Clone)]
pub struct Downstream {
    url: Url,
    /// The only auth server the caller's token is sent to in an exchange.
    auth_server: Origin,
    /// This resource as an agent: `jwks_uri` on its own origin (P-MD-4).
    me: Identity,
    key: Arc<SigningKey>,
    client: SigningClient,
    /// The same identity as an agent, for its token requests.
    agent: Agent,
    tokens: moka::future::Cache<TokenKey, Arc<Exchanged>>,
    /// Tokens the user granted through an interaction (P-UI-2), per caller.
    grants: moka::future::Cache<Binding, Arc<Exchanged>>,
}

impl fmt::Debug for Downstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Downstream")
            .field("url", &self.url.as_str())
            .field("cached_tokens", &self.tokens.entry_count())
            .field("grants", &self.grants.entry_count())
            .finish_non_exhaustive()
    }
}

impl Downstream {
    /// Calls `url` as the agent `me` (this resource's identifier) signing
    /// with `key` under `kid` (P-MD-4) in `style`, discovering auth servers
    /// through `discovery`.
    pub fn new(
        url: Url,
        auth_server: Origin,
        me: Origin,
        kid: Kid,
        key: Arc<SigningKey>,
        discovery: Discovery,
        style: SignerStyle,
    ) -> Result<Self, ClientError> {
        let client = SigningClient::with_timeout(REQUEST_TIMEOUT)?.with_style(style);
        // The user is asked through this resource's interaction pages, never
        // by the agent itself (P-UI-2): NoUser.
        let agent = Agent::with_discovery(
            client.clone(),
            Principal::Server {
                agent: me.clone(),
                kid: kid.clone(),
                key: key.clone(),
            },
            TokenStore::memory(),
            Arc::new(NoUser),
            discovery,
        );
        Ok(Self {
            url,
            auth_server,
            me: Identity::AgentServer {
                agent: me,
                kid,
                key: key.clone(),
            },
            key,
            client,
            agent,
            tokens: moka::future::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(UntilExpiry)
                .build(),
            grants: moka::future::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(UntilExpiry)
                .build(),
        })
    }

    /// The downstream URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Calls the downstream on behalf of `caller`, who presented
    /// `upstream` (their auth token), and returns its JSON.
    pub async fn call(
        &self,
        upstream: &str,
        caller: &Binding,
    ) -> Result<serde_json::Value, DownstreamError> {
        tokio::time::timeout(CALL_BUDGET, self.call_within(upstream, caller))
            .await
            .unwrap_or_else(|_| {
                Err(DownstreamError::Timeout {
                    url: self.url.to_string(),
                    from: self.url.to_string(),
                })
            })
    }

    async fn call_within(
        &self,
        upstream: &str,
        caller: &Binding,
    ) -> Result<serde_json::Value, DownstreamError> {
        // profile: P-UI-3 — "the resource finds the completed session by
        // (agent, delegate) and proceeds": a token the user granted for
        // this caller comes first.
        if let Some(grant) = self.grants.get(caller).await {
            let reply = self.get(&self.with_token(&grant.auth_token)).await?;
            if !refused(&reply) {
                return self.answer(reply);
            }
            self.needs_user(&reply)?;
            tracing::info!(downstream = %self.url, "the user's grant no longer serves; exchanging");
            self.grants.invalidate(caller).await;
        }
        let cache_key: TokenKey = (sha256(upstream.as_bytes()), self.url.to_string());
        let cached = self.tokens.get(&cache_key).await;
        let first = match &cached {
            Some(cached) => self.get(&self.with_token(&cached.auth_token)).await?,
            // E§3.9: "attempt access (no auth)" — as itself, identified.
            None => self.get(&self.me).await?,
        };
        let reply = if refused(&first) {
            // Only a request made for this caller (with its token) may
            // bring the user in; a need for the user answered to this
            // resource as itself would be bound to no caller at all.
            if cached.is_some() {
                self.needs_user(&first)?;
            }
            // Whatever was cached no longer serves.
            self.tokens.invalidate(&cache_key).await;
            let challenge = self.resource_token_challenge(&first)?;
            let exchanged = Arc::new(self.exchange(challenge, upstream).await?);
            self.tokens.insert(cache_key, Arc::clone(&exchanged)).await;
            // The one retry.
            self.get(&self.with_token(&exchanged.auth_token)).await?
        } else {
            first
        };
        if refused(&reply) {
            self.needs_user(&reply)?;
        }
        self.answer(reply)
    }

    /// The downstream's final answer: its JSON, or why not.
    fn answer(&self, reply: Reply) -> Result<serde_json::Value, DownstreamError> {
        if !reply.status.is_success() {
            return Err(DownstreamError::Refused {
                url: self.url.to_string(),
                status: reply.status.as_u16(),
                error: describe(&reply),
            });
        }
        reply.json().map_err(|_| DownstreamError::NotJson {
            url: self.url.to_string(),
            status: reply.status.as_u16(),
        })
    }

    /// E§4.4: a `user_interaction` challenge means the downstream needs the
    /// user, at a URL that must be on the downstream's own origin (P-UI-3).
    fn needs_user(&self, reply: &Reply) -> Result<(), DownstreamError> {
        let Some(interaction) = reply.agent_auth().and_then(|c| c.user_interaction_url()) else {
            return Ok(());
        };
        let bad = |reason| DownstreamError::BadInteraction {
            url: self.url.to_string(),
            interaction: quote(interaction),
            reason,
        };
        let target = Url::parse(interaction)
            .ok()
            .filter(|target| target.origin() == self.url.origin())
            .ok_or_else(|| bad("it is not on the downstream's own origin"))?;
        // P-UI-2: the return_url is this resource's to add.
        if target.query_pairs().any(|(name, _)| name == "return_url") {
            return Err(bad("it already carries a return_url"));
        }
        Err(DownstreamError::NeedsUser {
            url: self.url.to_string(),
            need: NeedsUser::Onward(target),
        })
    }

    /// The challenge of a 401/403 that carries a resource token and an auth
    /// server (E§4.3).
    fn resource_token_challenge<'r>(
        &self,
        reply: &'r Reply,
    ) -> Result<&'r AgentAuth, DownstreamError> {
        reply
            .agent_auth()
            .filter(|c| c.resource_token().is_some() && c.auth_server().is_some())
            .ok_or_else(|| DownstreamError::NoResourceToken {
                url: self.url.to_string(),
                status: reply.status.as_u16(),
            })
    }

    /// Keeps the token the user granted (P-UI-2) for `caller`'s next calls,
    /// until it expires.
    pub async fn keep_grant(&self, caller: Binding, grant: Exchanged) {
        self.grants.insert(caller, Arc::new(grant)).await;
    }

    /// P-UI-2: "The resource runs its own downstream flow (acting as an
    /// agent: `request_type=auth` at the downstream auth server, user
    /// consent there, `request_type=code`)". This is its first half: a
    /// fresh resource token from the downstream, then `request_type=auth`
    /// with `redirect_uri` (E§9.3).
    ///
    /// `caller`'s token, while it still lives, goes with the request as
    /// `upstream_token`, so that the consent page can name the caller this
    /// resource serves (an extension of this profile).
    pub async fn start_consent(
        &self,
        redirect_uri: &Url,
        state: &str,
        caller: Option<&CallerToken>,
    ) -> Result<ConsentStart, DownstreamError> {
        let first = self.get(&self.me).await?;
        let challenge = self.resource_token_challenge(&first)?;
        let upstream_token = caller
            .and_then(|c| c.fresh(aauth_http::server::unix_now()))
            .map(SignedToken::new);
        let server = self.named_auth_server(challenge).await?;
        tracing::info!(
            downstream = %self.url,
            auth_server = %server.origin(),
            "asking for this resource's own grant, with the user (E§9.3, P-UI-2)"
        );
        let answer = self
            .agent
            .request_auth(
                &server,
                challenge.resource_token().unwrap_or_default(),
                Some(redirect_uri),
                upstream_token,
            )
            .await
            .map_err(|e| self.token_error(&server, "auth", e))?;
        match answer {
            TokenResponse::Pending { request_token, .. } => self
                .agent
                .consent_url(&server, request_token.expose(), redirect_uri, state)
                .map(ConsentStart::Consent)
                .map_err(|e| self.auth_server_error(server.origin().as_str(), e.to_string())),
            granted @ TokenResponse::Granted { .. } => self
                .granted(&server, "auth", &granted)
                .map(ConsentStart::Granted),
        }
    }

    /// The second half of P-UI-2: `request_type=code` with the code the
    /// user's consent brought back (E§9.6).
    pub async fn finish_consent(
        &self,
        code: &str,
        redirect_uri: &Url,
    ) -> Result<Exchanged, DownstreamError> {
        let server = self.checked_auth_server(self.auth_server.as_str()).await?;
        let answer = self
            .agent
            .redeem_code(&server, AuthorizationCode::new(code), redirect_uri)
            .await
            .map_err(|e| self.token_error(&server, "code", e))?;
        self.granted(&server, "code", &answer)
    }

    /// Signed with an exchanged token, whose `cnf` is this resource's key (P-AS-7).
    fn with_token(&self, auth_token: &str) -> Identity {
        Identity::AuthToken {
            auth_token: auth_token.to_owned(),
            key: self.key.clone(),
        }
    }

    async fn get(&self, identity: &Identity) -> Result<Reply, DownstreamError> {
        self.client
            .send(identity, Outgoing::get(self.url.clone()))
            .await
            .map_err(|e| DownstreamError::sending(&self.url, self.url.as_str(), e))
    }

    /// E§9.10 with P-AS-7: `request_type=exchange`, the downstream's
    /// resource token, and the upstream token as `upstream_token`, signed
    /// as this resource.
    async fn exchange(
        &self,
        challenge: &AgentAuth,
        upstream: &str,
    ) -> Result<Exchanged, DownstreamError> {
        let server = self.named_auth_server(challenge).await?;
        tracing::info!(
            downstream = %self.url,
            auth_server = %server.origin(),
            "exchanging the caller's auth token for the downstream (E§9.10)"
        );
        let answer = self
            .agent
            // profile: P-AS-7 — "sends the upstream auth token in the form
            // parameter upstream_token".
            .exchange(
                &server,
                challenge.resource_token().unwrap_or_default(),
                SignedToken::new(upstream),
            )
            .await
            .map_err(|error| match self.token_error(&server, "exchange", error) {
                // The user will be asked: keep who for.
                DownstreamError::NeedsUser {
                    url,
                    need: NeedsUser::Consent(None),
                } => DownstreamError::NeedsUser {
                    url,
                    need: NeedsUser::Consent(CallerToken::of(upstream)),
                },
                other => other,
            })?;
        self.granted(&server, "exchange", &answer)
    }

    /// The auth server a challenge names (which
    /// [`Self::resource_token_challenge`] made sure it does), checked.
    async fn named_auth_server(
        &self,
        challenge: &AgentAuth,
    ) -> Result<AuthServer, DownstreamError> {
        self.checked_auth_server(challenge.auth_server().unwrap_or_default())
            .await
    }

    /// The auth server `named`, checked: the configured one, discovered by
    /// the agent library with its token endpoint on its own origin. The
    /// caller's token and this resource's requests go nowhere else.
    async fn checked_auth_server(&self, named: &str) -> Result<AuthServer, DownstreamError> {
        let auth_server = Origin::parse(named, self.agent_mode())
            .map_err(|e| self.auth_server_error(named, format!("not an identifier: {e}")))?;
        if auth_server != self.auth_server {
            return Err(self.auth_server_error(
                named,
                format!(
                    "is not the configured downstream auth server {}; the caller's token is not sent there",
                    self.auth_server
                ),
            ));
        }
        self.agent
            .auth_server(named)
            .await
            .map_err(|e| self.auth_server_error(named, e.to_string()))
    }

    fn auth_server_error(&self, named: &str, reason: String) -> DownstreamError {
        DownstreamError::AuthServer {
            url: self.url.to_string(),
            auth_server: quote(named),
            reason,
        }
    }

    /// A token request the agent library could not complete, in this
    /// resource's terms.
    fn token_error(
        &self,
        server: &AuthServer,
        request_type: &'static str,
        error: AgentError,
    ) -> DownstreamError {
        let endpoint = server.token_endpoint().as_str();
        match error {
            AgentError::Client(error) => DownstreamError::sending(&self.url, endpoint, error),
            AgentError::Peer { status, error, .. } => {
                let code = error.as_ref().map(|e| e.code());
                // profile: P-AS-7 — "if policy would need consent, 400
                // interaction_required, and the resource falls back to P-UI".
                if request_type == "exchange" && code == Some(ErrorCode::InteractionRequired) {
                    return DownstreamError::NeedsUser {
                        url: self.url.to_string(),
                        need: NeedsUser::Consent(None),
                    };
                }
                DownstreamError::TokenRefused {
                    url: self.url.to_string(),
                    auth_server: server.origin().to_string(),
                    request_type,
                    status: status.as_u16(),
                    error: match error {
                        Some(error) => quote(&error.to_string()),
                        None => "(no JSON error body)".to_owned(),
                    },
                }
            }
            other => self.answer_error(server, request_type, other.to_string()),
        }
    }

    /// The auth token of a token answer, which must be one.
    fn granted(
        &self,
        server: &AuthServer,
        request_type: &'static str,
        answer: &TokenResponse,
    ) -> Result<Exchanged, DownstreamError> {
        let TokenResponse::Granted {
            auth_token,
            expires_in,
            ..
        } = answer
        else {
            return Err(self.answer_error(
                server,
                request_type,
                "a request token where an auth token was due".to_owned(),
            ));
        };
        let auth_token = auth_token.expose().to_owned();
        match *expires_in {
            // Kept a little less than it lives, so that it is not presented
            // as it expires.
            Some(expires_in) => Ok(Exchanged {
                auth_token,
                lifetime: Duration::from_secs(expires_in)
                    .saturating_sub(EXPIRY_MARGIN)
                    .min(MAX_CACHED_LIFETIME),
            }),
            None => Err(self.answer_error(
                server,
                request_type,
                "an auth_token without expires_in".to_owned(),
            )),
        }
    }

    fn answer_error(
        &self,
        server: &AuthServer,
        request_type: &'static str,
        reason: String,
    ) -> DownstreamError {
        DownstreamError::TokenAnswer {
            url: self.url.to_string(),
            auth_server: server.origin().to_string(),
            request_type,
            reason,
        }
    }

    fn agent_mode(&self) -> aauth_protocol::ids::OriginMode {
        self.agent.mode()
    }
}

/// A 401 or 403: the downstream wants more than was presented.
fn refused(reply: &Reply) -> bool {
    matches!(
        reply.status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    )
}

/// A peer's error answer in brief: its `error` and description, quoted.
fn describe(reply: &Reply) -> String {
    match &reply.error {
        Some(error) => quote(&error.to_string()),
        None => "(no JSON error body)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_need_for_the_user_is_the_callers_to_act_on() {
        // profile: P-AS-7, P-UI-1 — the exchange's interaction_required (and
        // a downstream's user_interaction) become this resource's own 401
        // interaction_required.
        let url = "http://127.0.0.1:1/chain".to_owned();
        for need in [
            NeedsUser::Consent(None),
            NeedsUser::Onward(Url::parse("http://127.0.0.1:1/interaction?session=x").unwrap()),
        ] {
            let interaction = DownstreamError::NeedsUser {
                url: url.clone(),
                need,
            };
            assert_eq!(interaction.condition(), Condition::InteractionRequired);
            assert_eq!(interaction.condition().wire().status, 401);
        }
        let foreign = DownstreamError::BadInteraction {
            url: url.clone(),
            interaction: "https://elsewhere.example/i".to_owned(),
            reason: "it is not on the downstream's own origin",
        };
        assert_eq!(foreign.condition(), Condition::UpstreamFailed);
        assert_eq!(foreign.condition().wire().status, 502);
        let refused = DownstreamError::Refused {
            url: url.clone(),
            status: 403,
            error: "insufficient_scope: the peer's own words".to_owned(),
        };
        assert_eq!(refused.condition(), Condition::UpstreamFailed);
        // The log has the detail; the caller gets the hop, in our words.
        assert!(
            refused
                .to_string()
                .starts_with("downstream http://127.0.0.1:1/chain")
        );
        let told = refused.description();
        assert_eq!(told, "the downstream resource answered 403");
        let late = DownstreamError::Timeout {
            url: url.clone(),
            from: url,
        };
        assert_eq!(late.condition(), Condition::UpstreamTimeout);
        assert_eq!(late.condition().wire().status, 504);
        assert!(!late.description().contains("127.0.0.1"));
    }

    #[test]
    fn exchanged_tokens_do_not_show_in_debug() {
        let exchanged = Exchanged {
            auth_token: "secret.token.value".to_owned(),
            lifetime: Duration::from_secs(1),
        };
        assert!(!format!("{exchanged:?}").contains("secret"));
    }
}
