//! An agent that calls resources and climbs the levels they ask for (E§4,
//! E§9, profile: P-CH-2).
//!
//! ```text
//!  call ─▶ resource (signed hwk, or the stored auth token)
//!   ├─ 401/403/429 `httpsig; identity=?1` ──▶ re-sign identified (jwks_uri or agent token)
//!   ├─ `auth-token; resource_token; auth_server`
//!   │     ├─ /.well-known/aauth-issuer (E§8.2)
//!   │     ├─ POST agent_token_endpoint request_type=auth (E§9.3)
//!   │     │     ├─ auth_token ─────────────────────────────── direct grant (E§9.4)
//!   │     │     └─ request_token ─▶ user at agent_auth_endpoint ─▶ loopback
//!   │     │           callback ─▶ request_type=code (E§9.5, E§9.6)
//!   │     └─ retry signed jwt + auth token (E§9.8)
//!   ├─ `user_interaction` ──▶ user at that URL with return_url, retry (E§9.9, P-UI-2)
//!   └─ stored auth token expired / `invalid_auth_token` ──▶ request_type=refresh first (E§9.7)
//! ```
//!
//! Every step is reported through the step hook (the CLI prints them to
//! standard error); a call climbs at most [`Agent::max_steps`] times.
#![forbid(unsafe_code)]

pub mod consent;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use aauth_http::client::{ClientError, ErrorReply, Identity, Outgoing, Reply, SigningClient};
use aauth_http::discovery::Discovery;
use aauth_http::fetch::Fetcher;
use aauth_http::server::unix_now;
use aauth_protocol::challenge::Level;
use aauth_protocol::error::ErrorCode;
use aauth_protocol::httpsig::Nonce;
use aauth_protocol::ids::{Kid, Origin, OriginMode};
use aauth_protocol::jose::{self, UnverifiedJws};
use aauth_protocol::keys::{Algorithm, SigningKey, random_bytes};
use aauth_protocol::secret::{AuthorizationCode, SignedToken};
use aauth_protocol::token_request::{AuthTarget, TokenRequest, TokenResponse};
use aauth_protocol::{b64, metadata::AuthServerMetadata};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

pub use consent::{
    BrowserConsent, Callback, CallbackListener, CallbackPrompt, ConsentHandler, Deliverer, NoUser,
};
pub use state::{
    AgentRecord, DelegateState, DelegateStorage, FileDelegate, FileGrants, Grant, GrantStorage,
    TokenStore,
};

/// Why an agent operation failed. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A URL or identifier is not acceptable.
    #[error("{0}")]
    Url(String),
    /// Signing or sending failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The auth server's metadata could not be fetched.
    #[error("auth server discovery: {0}")]
    Discovery(String),
    /// A peer answered with an error.
    #[error("{what} answered {status}{}", error.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Peer {
        /// Which request.
        what: &'static str,
        /// The status.
        status: StatusCode,
        /// The error body, if any.
        error: Option<ErrorReply>,
    },
    /// A peer's answer was not what the protocol says.
    #[error("{0}")]
    Protocol(String),
    /// The user denied consent (`error=access_denied`, E§9.5).
    #[error("the user denied access (access_denied)")]
    AccessDenied,
    /// The consent or interaction round trip failed.
    #[error("user consent: {0}")]
    Consent(String),
    /// The delegate's agent token has expired.
    #[error(
        "the agent token expired at {expired_at}: run `aauth-agent-server renew` before it expires, or enroll again with a code minted for sub {sub}"
    )]
    AgentTokenExpired {
        /// When it expired.
        expired_at: u64,
        /// The delegate.
        sub: String,
    },
    /// State directory trouble.
    #[error("state: {0}")]
    State(String),
    /// Local cryptography failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// The climb did not end within the step budget.
    #[error("gave up after {steps} steps; the last answer was {status}")]
    TooManySteps {
        /// Steps taken.
        steps: usize,
        /// The last status.
        status: StatusCode,
    },
    /// The resource asks for an identity and this agent has none.
    #[error(
        "the resource asks for an identity (E§4.2) and this agent is pseudonymous: \
         sign as an enrolled delegate or as an agent server"
    )]
    NoIdentity,
}

/// Who the agent is when it identifies itself (P-CH-2).
#[derive(Debug, Clone)]
pub enum Principal {
    /// The agent server itself, signing with `jwks_uri` (E§3.2).
    Server {
        /// The agent identifier.
        agent: Origin,
        /// The key's `kid`.
        kid: Kid,
        /// The agent server's key.
        key: Arc<SigningKey>,
    },
    /// A delegate with an agent token (E§3.3, P-DEL-3).
    Delegate(DelegateState),
    /// A key and nothing more (E§4.1, `hwk`): enough where any signature
    /// will do, and refused with [`AgentError::NoIdentity`] where a
    /// resource asks who is calling.
    Pseudonymous(Arc<SigningKey>),
}

impl Principal {
    /// The key it signs with.
    pub fn key(&self) -> &Arc<SigningKey> {
        match self {
            Self::Server { key, .. } => key,
            Self::Delegate(state) => &state.key,
            Self::Pseudonymous(key) => key,
        }
    }
}

/// A step hook: receives one line per step.
pub type StepHook = Arc<dyn Fn(&str) + Send + Sync>;

/// What the agent reads from a resource token for its bookkeeping: the
/// token is the auth server's to verify, not the agent's.
#[derive(Debug, Deserialize)]
struct ResourceTokenPeek {
    iss: Option<String>,
    scope: Option<String>,
}

/// An auth server as an agent uses it: its identifier, its metadata
/// (E§8.2), and its token endpoint, checked to be on its own origin
/// ([`Agent::auth_server`]).
#[derive(Debug, Clone)]
pub struct AuthServer {
    origin: Origin,
    metadata: Arc<AuthServerMetadata>,
    token_endpoint: Url,
}

impl AuthServer {
    /// Its identifier.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Its metadata.
    pub fn metadata(&self) -> &AuthServerMetadata {
        &self.metadata
    }

    /// Its `agent_token_endpoint`.
    pub fn token_endpoint(&self) -> &Url {
        &self.token_endpoint
    }
}

/// An agent: a principal, its tokens, and the climb (E§4, E§9).
#[derive(Clone)]
pub struct Agent {
    client: SigningClient,
    principal: Principal,
    tokens: TokenStore,
    discovery: Discovery,
    consent: Arc<dyn ConsentHandler>,
    mode: OriginMode,
    max_steps: usize,
    consent_timeout: Duration,
    callback_port: u16,
    prompt: Option<Arc<dyn CallbackPrompt>>,
    steps: StepHook,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("principal", &self.principal)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

pub(crate) fn random_state() -> Result<String, AgentError> {
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes).map_err(|e| AgentError::Crypto(e.to_string()))?;
    Ok(b64::url_encode(bytes))
}

/// The origin of `url` as a string (`scheme://host[:port]`), the key under
/// which grants for a resource are kept.
fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn expect_ok(what: &'static str, reply: &Reply) -> Result<(), AgentError> {
    if reply.status.is_success() {
        Ok(())
    } else {
        Err(AgentError::Peer {
            what,
            status: reply.status,
            error: reply.error.clone(),
        })
    }
}

impl Agent {
    /// An agent acting as `principal`, sending users through `consent`.
    /// `mode` is the identifier mode (dev: loopback `http` peers, P-MD-1).
    pub fn new(
        client: SigningClient,
        principal: Principal,
        tokens: TokenStore,
        consent: Arc<dyn ConsentHandler>,
        mode: OriginMode,
    ) -> Result<Self, AgentError> {
        let fetcher = Fetcher::new(mode).map_err(|e| AgentError::Discovery(e.to_string()))?;
        Ok(Self::with_discovery(
            client,
            principal,
            tokens,
            consent,
            Discovery::new(fetcher, mode),
        ))
    }

    /// Like [`Agent::new`], sharing `discovery` (its caches of metadata
    /// and key sets, and its identifier mode) with the rest of a program,
    /// such as a resource that also calls other resources.
    pub fn with_discovery(
        client: SigningClient,
        principal: Principal,
        tokens: TokenStore,
        consent: Arc<dyn ConsentHandler>,
        discovery: Discovery,
    ) -> Self {
        Self {
            client,
            principal,
            tokens,
            mode: discovery.mode(),
            discovery,
            consent,
            max_steps: 6,
            consent_timeout: Duration::from_secs(300),
            callback_port: 0,
            prompt: None,
            steps: Arc::new(|line| tracing::info!("{line}")),
        }
    }

    /// Sends users through `consent` instead (for one call, say, on a
    /// clone: an agent is cheap to clone).
    #[must_use]
    pub fn with_consent(mut self, consent: Arc<dyn ConsentHandler>) -> Self {
        self.consent = consent;
        self
    }

    /// The handler users are sent through.
    pub fn consent_handler(&self) -> &Arc<dyn ConsentHandler> {
        &self.consent
    }

    /// Reports steps to `hook` instead of the log.
    #[must_use]
    pub fn with_steps(mut self, hook: StepHook) -> Self {
        self.steps = hook;
        self
    }

    /// Waits at most `timeout` for the user to come back (default 5 min).
    #[must_use]
    pub fn with_consent_timeout(mut self, timeout: Duration) -> Self {
        self.consent_timeout = timeout;
        self
    }

    /// Listens for the browser's return on `127.0.0.1:port` (default 0:
    /// any free port), so that the port can be forwarded.
    #[must_use]
    pub fn with_callback_port(mut self, port: u16) -> Self {
        self.callback_port = port;
        self
    }

    /// While waiting for the browser, reads pasted addresses from `prompt`
    /// and tells it how long is left (a person at a terminal whose browser
    /// cannot reach this machine).
    #[must_use]
    pub fn with_prompt(mut self, prompt: Arc<dyn CallbackPrompt>) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// Waits for the browser's return on `listener`, or for a person to
    /// paste it, until the consent timeout.
    async fn await_callback(&self, listener: CallbackListener) -> Result<Callback, AgentError> {
        let Some(prompt) = self.prompt.as_deref() else {
            return listener.wait(self.consent_timeout).await;
        };
        let deliverer = listener.deliverer();
        let deadline = tokio::time::Instant::now() + self.consent_timeout;
        let pasted = async {
            loop {
                match prompt.read_line().await {
                    Some(line) => match deliverer.deliver(&line) {
                        // wait() below returns it.
                        Ok(()) => std::future::pending::<()>().await,
                        Err(why) => prompt.tell(&format!("{why}; paste it again")),
                    },
                    // No more input: the browser's return is the only way.
                    None => std::future::pending::<()>().await,
                }
            }
        };
        let countdown = async {
            loop {
                prompt.countdown(deadline.saturating_duration_since(tokio::time::Instant::now()));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        // Neither side task ends by itself; the wait does, with the
        // browser's return, a pasted one, or the timeout.
        tokio::select! {
            outcome = listener.wait(self.consent_timeout) => outcome,
            _ = async { tokio::join!(pasted, countdown) } => {
                Err(AgentError::Consent("stopped waiting for the browser".into()))
            }
        }
    }

    /// At most this many requests per call (default 6).
    pub fn max_steps(&self) -> usize {
        self.max_steps
    }

    /// The tokens held.
    pub fn tokens(&self) -> &TokenStore {
        &self.tokens
    }

    /// Who it acts as.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Its identifier mode (dev: loopback `http` peers, P-MD-1).
    pub fn mode(&self) -> OriginMode {
        self.mode
    }

    fn step(&self, line: &str) {
        (self.steps)(line);
    }

    /// The identified identity: the agent server's `jwks_uri`, or the
    /// delegate's agent token while it is unexpired.
    fn identified(&self) -> Result<Identity, AgentError> {
        match &self.principal {
            Principal::Server { agent, kid, key } => Ok(Identity::AgentServer {
                agent: agent.clone(),
                kid: kid.clone(),
                key: key.clone(),
            }),
            Principal::Delegate(state) => {
                if unix_now() >= state.record.expires_at {
                    return Err(AgentError::AgentTokenExpired {
                        expired_at: state.record.expires_at,
                        sub: state.record.sub.clone(),
                    });
                }
                Ok(Identity::Delegate {
                    agent_token: state.record.agent_token.expose().to_owned(),
                    key: state.key.clone(),
                })
            }
            Principal::Pseudonymous(_) => Err(AgentError::NoIdentity),
        }
    }

    fn authorized(&self, grant: &Grant) -> Identity {
        Identity::AuthToken {
            auth_token: grant.auth_token.expose().to_owned(),
            key: self.principal.key().clone(),
        }
    }

    /// Calls `method url` with an optional body, climbing the levels the
    /// resource asks for, and returns the final answer (E§4, E§9).
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<Bytes>,
        content_type: Option<&str>,
    ) -> Result<Reply, AgentError> {
        let url = Url::parse(url).map_err(|e| AgentError::Url(format!("{url}: {e}")))?;
        let mut request = Outgoing::new(method, url);
        if let Some(body) = body.filter(|b| !b.is_empty()) {
            request = request.body(
                body,
                content_type
                    .unwrap_or("application/octet-stream")
                    .to_owned(),
            );
        }
        self.send(request).await
    }

    /// Sends `request` (with whatever headers and body it carries),
    /// climbing the levels the resource asks for as [`Agent::call`] does,
    /// and returns the final answer. Each attempt is signed afresh, with a
    /// new `Nonce` where the request needs one.
    pub async fn send(&self, request: Outgoing) -> Result<Reply, AgentError> {
        let url = request.url.clone();
        let resource = origin_of(&url);

        // Start with what we hold: a stored auth token (refreshed first when
        // expired, E§9.7), or a pseudonymous signature (E§4.1).
        let mut grant = self.tokens.newest_for(&resource);
        if let Some(held) = grant.take() {
            grant = self.usable(held).await?;
        }
        let mut identity = match &grant {
            Some(grant) => {
                self.step(&format!(
                    "using the stored auth token for {resource} (scope {:?})",
                    grant.scope
                ));
                self.authorized(grant)
            }
            None => Identity::Hwk(self.principal.key().clone()),
        };
        let mut refreshed = false;
        let mut last = StatusCode::OK;
        for _ in 0..self.max_steps {
            self.step(&format!(
                "{} {url} signed {}",
                request.method,
                identity.describe()
            ));
            let reply = self.client.send(&identity, request.clone()).await?;
            last = reply.status;
            if !matches!(reply.status.as_u16(), 401 | 403 | 429) {
                self.step(&format!("→ {}", reply.status));
                return Ok(reply);
            }
            let Some(challenge) = reply.agent_auth().cloned() else {
                self.step(&format!(
                    "→ {} without a usable Agent-Auth challenge",
                    reply.status
                ));
                return Ok(reply);
            };
            self.step(&format!(
                "→ {}{} Agent-Auth: {}",
                reply.status,
                reply
                    .error
                    .as_ref()
                    .map(|e| format!(" {}", e.error))
                    .unwrap_or_default(),
                clip(&challenge.to_header_value(), 120)
            ));

            // E§4.4 / E§9.9: the user must visit the resource.
            if let Some(interaction) = challenge.user_interaction_url() {
                self.interact(interaction, &resource).await?;
                continue;
            }
            // E§9.7: an auth token the resource no longer accepts is
            // refreshed first, once — also one bound to a key this delegate
            // has since rotated away from (`key_binding_failed`): the refresh
            // binds the current key (P-AS-6).
            if let (Identity::AuthToken { .. }, Some(held)) = (&identity, &grant)
                && matches!(
                    reply.error_code(),
                    Some(ErrorCode::InvalidAuthToken | ErrorCode::KeyBindingFailed)
                )
                && !refreshed
                && held.refresh_token.is_some()
            {
                refreshed = true;
                if let Some(fresh) = self.refresh(held.clone()).await? {
                    identity = self.authorized(&fresh);
                    grant = Some(fresh);
                    continue;
                }
            }
            match challenge.level() {
                Level::Authorized => {
                    if let (Some(resource_token), Some(auth_server)) =
                        (challenge.resource_token(), challenge.auth_server())
                    {
                        let fresh = self
                            .authorize(resource_token, auth_server, &resource)
                            .await?;
                        identity = self.authorized(&fresh);
                        grant = Some(fresh);
                        continue;
                    }
                    // P-CH-3: a resource token needs an identified agent.
                    if identity.level() < Level::Identified {
                        identity = self.identified()?;
                        continue;
                    }
                    return Ok(reply);
                }
                Level::Identified if identity.level() < Level::Identified => {
                    identity = self.identified()?;
                }
                // Nothing higher to offer: the answer stands (e.g. 429 at
                // our level, or a signature the resource cannot verify).
                Level::Identified | Level::Pseudonymous => return Ok(reply),
            }
        }
        Err(AgentError::TooManySteps {
            steps: self.max_steps,
            status: last,
        })
    }

    /// A stored grant, refreshed when its auth token has expired; `None`
    /// when it cannot be used any more.
    async fn usable(&self, grant: Grant) -> Result<Option<Grant>, AgentError> {
        if unix_now().saturating_add(5) < grant.expires_at {
            return Ok(Some(grant));
        }
        self.step("the stored auth token has expired");
        if grant.refresh_token.is_none() {
            self.tokens.remove(&grant)?;
            return Ok(None);
        }
        self.refresh(grant).await
    }

    /// The auth server `named` (an `auth_server` from a challenge, or a
    /// grant's): its metadata, discovered (E§8.2), with its token endpoint
    /// on its own origin, where nothing of this agent's goes elsewhere.
    pub async fn auth_server(&self, named: &str) -> Result<AuthServer, AgentError> {
        let origin = Origin::parse(named, self.mode)
            .map_err(|e| AgentError::Url(format!("auth_server {:?}: {e}", clip(named, 120))))?;
        let metadata = self
            .discovery
            .auth_server_metadata(&origin)
            .await
            .map_err(|e| AgentError::Discovery(e.to_string()))?;
        let token_endpoint = Url::parse(metadata.agent_token_endpoint.as_str())
            .ok()
            .filter(|url| origin_of(url) == origin.as_str())
            .ok_or_else(|| {
                AgentError::Discovery(format!(
                    "{origin}: its agent_token_endpoint is not on its own origin"
                ))
            })?;
        Ok(AuthServer {
            origin,
            metadata,
            token_endpoint,
        })
    }

    /// A signed POST of `request` to the auth server's token endpoint
    /// (P-AS-1), as this agent identified, and its 200 answer.
    async fn token_request(
        &self,
        what: &'static str,
        auth_server: &AuthServer,
        request: &TokenRequest,
    ) -> Result<TokenResponse, AgentError> {
        let reply = self
            .client
            .send(
                &self.identified()?,
                Outgoing::token_request(auth_server.token_endpoint.clone(), request),
            )
            .await?;
        expect_ok(what, &reply)?;
        TokenResponse::from_json(&reply.body)
            .map_err(|e| AgentError::Protocol(format!("{what}: {e}")))
    }

    /// E§9.3 `request_type=auth`: presents `resource_token` at
    /// `auth_server`. With `redirect_uri`, the auth server may answer with a
    /// request token for the user's consent ([`Agent::consent_url`],
    /// P-AS-2); `upstream_token` is the auth token of the caller this agent
    /// serves, when it is itself a resource calling on (an extension of this
    /// profile: the consent page names that caller).
    pub async fn request_auth(
        &self,
        auth_server: &AuthServer,
        resource_token: &str,
        redirect_uri: Option<&Url>,
        upstream_token: Option<SignedToken>,
    ) -> Result<TokenResponse, AgentError> {
        self.token_request(
            "auth request",
            auth_server,
            &TokenRequest::Auth {
                target: AuthTarget::ResourceToken(resource_token.to_owned()),
                redirect_uri: redirect_uri.map(Url::to_string),
                upstream_token,
            },
        )
        .await
    }

    /// E§9.5: where the user gives consent: the auth server's
    /// `agent_auth_endpoint`, which must be on its own origin, with the
    /// request token, the redirect URI and `state`.
    pub fn consent_url(
        &self,
        auth_server: &AuthServer,
        request_token: &str,
        redirect_uri: &Url,
        state: &str,
    ) -> Result<Url, AgentError> {
        let mut url = Url::parse(auth_server.metadata.agent_auth_endpoint.as_str())
            .ok()
            .filter(|url| origin_of(url) == auth_server.origin.as_str())
            .ok_or_else(|| {
                AgentError::Discovery(format!(
                    "{}: its agent_auth_endpoint is not on its own origin",
                    auth_server.origin
                ))
            })?;
        url.query_pairs_mut()
            .append_pair("request_token", request_token)
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("state", state);
        Ok(url)
    }

    /// E§9.6 `request_type=code`: redeems the code the user's consent
    /// brought back to `redirect_uri`.
    pub async fn redeem_code(
        &self,
        auth_server: &AuthServer,
        code: AuthorizationCode,
        redirect_uri: &Url,
    ) -> Result<TokenResponse, AgentError> {
        self.token_request(
            "code exchange",
            auth_server,
            &TokenRequest::Code {
                code,
                redirect_uri: Some(redirect_uri.to_string()),
            },
        )
        .await
    }

    /// E§9.10 `request_type=exchange` (P-AS-7): a resource calling on, with
    /// the next resource's `resource_token` and the auth token its caller
    /// presented (`upstream_token`). An auth server whose policy needs the
    /// user answers 400 `interaction_required` ([`AgentError::Peer`]).
    pub async fn exchange(
        &self,
        auth_server: &AuthServer,
        resource_token: &str,
        upstream_token: SignedToken,
    ) -> Result<TokenResponse, AgentError> {
        self.token_request(
            "exchange",
            auth_server,
            &TokenRequest::Exchange {
                resource_token: resource_token.to_owned(),
                upstream_token,
            },
        )
        .await
    }

    /// E§9.7: `request_type=refresh`. `None` when the auth server refuses
    /// the refresh token (the grant is forgotten and the climb goes on).
    async fn refresh(&self, grant: Grant) -> Result<Option<Grant>, AgentError> {
        let Some(refresh_token) = grant.refresh_token.clone() else {
            return Ok(None);
        };
        self.step(&format!(
            "refreshing the auth token at {}",
            grant.auth_server
        ));
        let auth_server = self.auth_server(&grant.auth_server).await?;
        let answer = self
            .token_request(
                "refresh",
                &auth_server,
                &TokenRequest::Refresh {
                    refresh_token: refresh_token.clone(),
                },
            )
            .await;
        match answer {
            Ok(TokenResponse::Granted {
                auth_token,
                expires_in,
                refresh_token: new_refresh,
            }) => {
                let now = unix_now();
                let fresh = Grant {
                    auth_token,
                    expires_at: now.saturating_add(expires_in.unwrap_or(0)),
                    // E§9.7: not rotated; keep the old one unless replaced.
                    refresh_token: new_refresh.or(Some(refresh_token)),
                    updated_at: now,
                    ..grant
                };
                self.tokens.put(fresh.clone())?;
                self.step("→ new auth token");
                Ok(Some(fresh))
            }
            Ok(TokenResponse::Pending { .. }) => Err(AgentError::Protocol(
                "refresh: the answer is a request token, not an auth token".into(),
            )),
            Err(AgentError::Peer { status, error, .. }) if status == StatusCode::BAD_REQUEST => {
                self.step(&format!(
                    "→ refresh refused ({}); forgetting this grant",
                    error.map(|e| e.error).unwrap_or_default()
                ));
                self.tokens.remove(&grant)?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// E§9.3–9.6: present the resource token to the auth server and get an
    /// auth token, through the user's consent when policy asks for it.
    async fn authorize(
        &self,
        resource_token: &str,
        auth_server: &str,
        resource_url_origin: &str,
    ) -> Result<Grant, AgentError> {
        let server = self.auth_server(auth_server).await?;
        let peek: Option<ResourceTokenPeek> = UnverifiedJws::parse(resource_token)
            .ok()
            .and_then(|jws| jws.unverified_claims_for_routing("resource+jwt").ok());
        let resource = peek
            .as_ref()
            .and_then(|p| p.iss.clone())
            .unwrap_or_else(|| resource_url_origin.to_owned());
        let scope = peek.and_then(|p| p.scope).unwrap_or_default();
        self.step(&format!(
            "asking {auth_server} for an auth token for {resource} scope {scope:?} (request_type=auth)"
        ));
        // The loopback redirect URI is bound to the request token, so it is
        // sent with the auth request (P-AS-2, P-AS-4).
        let listener = CallbackListener::bind_on(self.callback_port).await?;
        let redirect_uri = listener.redirect_uri().clone();
        let answer = self
            .request_auth(&server, resource_token, Some(&redirect_uri), None)
            .await?;
        let tokens = match answer {
            TokenResponse::Granted { .. } => {
                self.step("→ direct grant");
                answer
            }
            TokenResponse::Pending { request_token, .. } => {
                self.step("→ the user's consent is needed");
                let code = self
                    .consent(&server, request_token.expose(), listener)
                    .await?;
                self.step("→ consent given; exchanging the code (request_type=code)");
                self.redeem_code(&server, AuthorizationCode::new(code), &redirect_uri)
                    .await?
            }
        };
        let TokenResponse::Granted {
            auth_token,
            expires_in,
            refresh_token,
        } = tokens
        else {
            return Err(AgentError::Protocol(
                "code exchange: the answer is a request token, not an auth token".into(),
            ));
        };
        let now = unix_now();
        let grant = Grant {
            auth_server: server.metadata.issuer.as_str().to_owned(),
            resource,
            scope,
            auth_token,
            expires_at: now.saturating_add(expires_in.unwrap_or(0)),
            refresh_token,
            updated_at: now,
        };
        self.tokens.put(grant.clone())?;
        Ok(grant)
    }

    /// E§9.5: send the user to `agent_auth_endpoint` and wait for the code.
    async fn consent(
        &self,
        auth_server: &AuthServer,
        request_token: &str,
        listener: CallbackListener,
    ) -> Result<String, AgentError> {
        let state = random_state()?;
        let url = self.consent_url(auth_server, request_token, listener.redirect_uri(), &state)?;
        self.consent
            .present(&url)
            .await
            .map_err(AgentError::Consent)?;
        let callback = self.await_callback(listener).await?;
        if callback.get("state") != Some(&state) {
            return Err(AgentError::Consent(
                "the callback's state does not match the request's".into(),
            ));
        }
        if let Some(error) = callback.get("error") {
            return Err(if error == ErrorCode::AccessDenied.as_str() {
                AgentError::AccessDenied
            } else {
                AgentError::Consent(format!("the auth server answered {error}"))
            });
        }
        callback
            .get("code")
            .cloned()
            .ok_or_else(|| AgentError::Consent("the callback carries no code".into()))
    }

    /// E§9.9, P-UI-2: send the user to the resource's interaction URL with
    /// a loopback `return_url`, and wait for them to come back.
    async fn interact(&self, interaction: &str, resource: &str) -> Result<(), AgentError> {
        let mut url = Url::parse(interaction)
            .map_err(|e| AgentError::Url(format!("user_interaction {interaction:?}: {e}")))?;
        // P-UI-1: the interaction URL is on the resource itself. Anything
        // else (another host, a file: or custom-scheme URL) is never handed
        // to the user's browser.
        if origin_of(&url) != resource {
            return Err(AgentError::Url(format!(
                "user_interaction {:?} is not on the resource {resource}",
                clip(interaction, 120)
            )));
        }
        let listener = CallbackListener::bind_on(self.callback_port).await?;
        url.query_pairs_mut()
            .append_pair("return_url", listener.redirect_uri().as_str());
        // The address itself is the consent handler's to show, once.
        self.step(&format!(
            "the resource needs the user at its interaction page ({})",
            origin_of(&url)
        ));
        self.consent
            .present(&url)
            .await
            .map_err(AgentError::Consent)?;
        let callback = self.await_callback(listener).await?;
        // P-UI-2: the user's refusal comes back as access_denied; any other
        // error means the resource could not finish, and a retry would only
        // bring the same challenge.
        match callback.get("error") {
            Some(error) if error == ErrorCode::AccessDenied.as_str() => {
                return Err(AgentError::AccessDenied);
            }
            Some(error) => {
                return Err(AgentError::Consent(format!(
                    "the resource sent the user back with error {:?}",
                    error.chars().take(64).collect::<String>()
                )));
            }
            None => {}
        }
        self.step("→ the user is back; retrying");
        Ok(())
    }
}

/// P-DEL-1: enrolls a fresh Ed25519 key at `agent` with `code`, and saves
/// the delegate in the state directory `dir` ([`FileDelegate`]).
pub async fn enroll(
    client: &SigningClient,
    agent: &str,
    code: &str,
    dir: &std::path::Path,
    mode: OriginMode,
) -> Result<DelegateState, AgentError> {
    enroll_into(
        client,
        agent,
        code,
        Arc::new(FileDelegate::in_dir(dir)),
        mode,
    )
    .await
}

/// P-DEL-1: enrolls a fresh Ed25519 key at `agent` with `code`, and saves
/// the delegate in `storage`.
pub async fn enroll_into(
    client: &SigningClient,
    agent: &str,
    code: &str,
    storage: Arc<dyn DelegateStorage>,
    mode: OriginMode,
) -> Result<DelegateState, AgentError> {
    let agent = Origin::parse(agent, mode)
        .map_err(|e| AgentError::Url(format!("--agent {agent:?}: {e}")))?;
    let key = Arc::new(
        SigningKey::generate(Algorithm::Ed25519).map_err(|e| AgentError::Crypto(e.to_string()))?,
    );
    let url = Url::parse(&format!("{agent}/delegate/enroll"))
        .map_err(|e| AgentError::Url(e.to_string()))?;
    let reply = client
        .send(
            &Identity::Hwk(key.clone()),
            Outgoing::post_form(url, &[("code", code)]),
        )
        .await?;
    expect_ok("enrollment", &reply)?;
    let record = agent_record(&reply, &agent)?;
    let state = DelegateState {
        storage,
        key,
        record,
    };
    state.save()?;
    Ok(state)
}

/// P-DEL-2: rotates the delegate's key: a new key, a proof over this
/// request's `Nonce`, and the new agent token, saved in its state directory.
pub async fn renew(
    client: &SigningClient,
    state: &DelegateState,
) -> Result<DelegateState, AgentError> {
    // The identifier was checked in its mode at enrollment; dev mode's rule
    // accepts both forms.
    let agent = Origin::parse(&state.record.agent, OriginMode::Dev)
        .map_err(|e| AgentError::State(format!("agent {:?}: {e}", state.record.agent)))?;
    let new_key = SigningKey::generate(state.key.algorithm())
        .map_err(|e| AgentError::Crypto(e.to_string()))?;
    let nonce = Nonce::generate().map_err(|e| AgentError::Crypto(e.to_string()))?;
    let proof = jose::sign_key_proof(&new_key, nonce.as_str().as_bytes())
        .map_err(|e| AgentError::Crypto(e.to_string()))?;
    let jwk = new_key.public_key().to_json_value().to_string();
    let url = Url::parse(&format!("{agent}/delegate/renew"))
        .map_err(|e| AgentError::Url(e.to_string()))?;
    let identity = Identity::Delegate {
        agent_token: state.record.agent_token.expose().to_owned(),
        key: state.key.clone(),
    };
    let request =
        Outgoing::post_form(url, &[("new_jwk", &jwk), ("new_key_proof", &proof)]).nonce(nonce);
    let reply = client.send(&identity, request).await?;
    expect_ok("renewal", &reply)?;
    let record = agent_record(&reply, &agent)?;
    if record.sub != state.record.sub {
        return Err(AgentError::Protocol(format!(
            "renewal changed the delegate from {} to {}",
            state.record.sub, record.sub
        )));
    }
    let renewed = DelegateState {
        storage: state.storage.clone(),
        key: Arc::new(new_key),
        record,
    };
    renewed.save()?;
    Ok(renewed)
}

fn agent_record(reply: &Reply, agent: &Origin) -> Result<AgentRecord, AgentError> {
    #[derive(Deserialize)]
    struct Answer {
        agent_token: String,
        expires_in: u64,
        sub: String,
    }
    let answer: Answer = reply.json().map_err(|e| {
        AgentError::Protocol(format!(
            "the agent server's answer is not an agent token response: {e}"
        ))
    })?;
    Ok(AgentRecord {
        agent: agent.as_str().to_owned(),
        sub: answer.sub,
        agent_token: SignedToken::new(answer.agent_token),
        expires_at: unix_now().saturating_add(answer.expires_in),
    })
}

/// `text` in at most `max` characters, ending with `…` when it was cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        let head: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{head}…")
    } else {
        text.to_owned()
    }
}
