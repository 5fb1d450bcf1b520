//! The agent token endpoint (E§9.3–9.7, E§9.10, profile: P-AS-1, P-AS-2,
//! P-AS-3, P-AS-5, P-AS-6, P-AS-7): a signed, form-encoded POST from an
//! identified agent — or, for `exchange`, from a resource signing as itself.
//!
//! ```text
//! body ≤ 64 KiB ─▶ signature (Nonce required) ─▶ caller identified?
//!   ─▶ form ─▶ request_type ─┬ auth     ─▶ resource token / scope ─▶ policy
//!                            ├ code     ─▶ take code ─▶ grant
//!                            ├ refresh  ─▶ grant ─▶ new auth token
//!                            ├ exchange ─▶ upstream iss trusted? (before any fetch)
//!                            │            ─▶ upstream token ─▶ resource token
//!                            │            ─▶ exchange rules ─▶ act depth ─▶ new auth token
//!                            └ other    ─▶ unsupported_request_type
//! ```

use aauth_http::server::{ErrorResponse, MAX_FORM_BYTES, read_body, require_form, unix_now};
use aauth_protocol::challenge::{AgentAuth, Level};
use aauth_protocol::error::Condition;
use aauth_protocol::ids::{Kid, Origin, Scope};
use aauth_protocol::jwk::PublicKey;
use aauth_protocol::metadata::RedirectUri;
use aauth_protocol::secret::{AuthorizationCode, RefreshToken, RequestToken, SignedToken};
use aauth_protocol::signature_key::Scheme;
use aauth_protocol::token_request::{AuthTarget, TokenRequest, TokenResponse};
use aauth_protocol::tokens::auth_token::{
    self, Act, AuthTokenBuilder, AuthTokenContext, AuthTokenError, Consumer, VerifiedAuthToken,
};
use aauth_protocol::tokens::resource_token::{self, ResourceTokenContext};
use aauth_protocol::tokens::{self, KeyLookupError, TokenType};
use aauth_protocol::verify::KeyOwner;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::AppState;
use crate::config::{ExchangeDecision, User, is_identity_scope};
use crate::secret::Secret;
use crate::store::{CodeRecord, Grant, PendingRequest};

/// The identified caller of this request (P-AS-1).
#[derive(Debug)]
pub struct Caller {
    /// The agent identifier.
    pub agent: Origin,
    /// The agent token's `sub`, when a delegate signed.
    pub delegate: Option<String>,
    /// The key that signed this request: the new token's `cnf.jwk`.
    pub key: PublicKey,
    /// How the caller signed: `jwks_uri` (as itself) or `jwt` (agent token).
    pub scheme: Scheme,
}

/// A failure that is ours, not the caller's: logged, answered with 500.
fn internal(error: impl std::fmt::Display) -> Failure {
    tracing::error!(%error, "token endpoint failed");
    Failure::Internal
}

fn internal_response() -> Response {
    ErrorResponse::new(
        Condition::ServerFault,
        "the auth server could not complete the request; see its log",
    )
    .into_response()
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Either a protocol error for the caller or an internal failure.
enum Failure {
    Caller(ErrorResponse),
    Internal,
}

impl From<ErrorResponse> for Failure {
    fn from(error: ErrorResponse) -> Self {
        Self::Caller(error)
    }
}

fn db(error: crate::store::StoreError) -> Failure {
    internal(error)
}

fn invalid_grant(description: impl Into<String>) -> Failure {
    Failure::Caller(ErrorResponse::new(Condition::GrantInvalid, description))
}

fn now_secs() -> i64 {
    i64::try_from(unix_now()).unwrap_or(i64::MAX)
}

/// `POST /agent/token`.
pub async fn endpoint(State(state): State<AppState>, request: Request) -> Response {
    match handle(&state, request).await {
        Ok(body) => {
            let mut response = axum::Json(body).into_response();
            no_store(&mut response);
            response
        }
        Err(Failure::Caller(error)) => error.into_response(),
        Err(Failure::Internal) => internal_response(),
    }
}

async fn handle(state: &AppState, request: Request) -> Result<Value, Failure> {
    let (parts, body) = request.into_parts();
    // P-AS-1: "form-encoded (body ≤ 64 KiB)"; more is 413 (P-ERR-1).
    let body = read_body(body, MAX_FORM_BYTES).await?;
    let caller = authenticate(state, &parts, &body).await?;
    require_form(&parts.headers)?;
    let request = TokenRequest::from_form(&body)
        .map_err(|e| ErrorResponse::new(e.condition(), e.to_string()))?;
    match request {
        TokenRequest::Auth {
            target,
            redirect_uri,
            upstream_token,
        } => auth_request(state, &caller, target, redirect_uri, upstream_token).await,
        TokenRequest::Code { code, redirect_uri } => {
            code_request(state, &caller, &code, redirect_uri.as_deref()).await
        }
        TokenRequest::Refresh { refresh_token } => {
            refresh_request(state, &caller, &refresh_token).await
        }
        TokenRequest::Exchange {
            resource_token,
            upstream_token,
        } => exchange_request(state, &caller, &resource_token, &upstream_token).await,
    }
}

/// P-AS-1: the signature must verify, with a `Nonce`, and identify the
/// agent: a `jwks_uri` agent server or a `jwt` agent token.
///
/// P-ERR-1, row "AS: caller not identified / bad caller signature": a
/// refusal keeps the code of the signature row it falls in, with the
/// identity challenge. "An auth token in `Signature-Key` is never accepted
/// here": the verifier (configured with `accept_auth_tokens` off) checks the
/// signature by the key the token names, fetches nothing for it, and refuses
/// it as `insufficient_auth_level`.
async fn authenticate(
    state: &AppState,
    parts: &Parts,
    body: &[u8],
) -> Result<Caller, ErrorResponse> {
    // P-SIG-6: "The auth server's token endpoint requires it" (the
    // verifier's nonce rule is `Always`).
    let verified = state
        .verifier()
        .verify(parts, body)
        .await
        .map_err(|rejected| rejected.into_error_with_challenge(AgentAuth::identity()))?;
    let too_low = |description: &str| {
        ErrorResponse::new(Condition::LevelTooLow, description)
            .with_challenge(AgentAuth::identity())
    };
    match verified.level() {
        Level::Pseudonymous => Err(too_low(
            "the token endpoint needs an identified agent: sign as the agent server (jwks_uri) \
             or with an agent token (profile P-AS-1)",
        )),
        // The verifier never lets one through (`accept_auth_tokens` is off).
        Level::Authorized => Err(too_low(
            "an auth token is never accepted here (profile P-AS-1); sign as the agent server \
             (jwks_uri) or with an agent token",
        )),
        Level::Identified => match verified.agent() {
            Some(agent) => Ok(Caller {
                agent: agent.clone(),
                delegate: verified.delegate().map(str::to_owned),
                key: verified.key().clone(),
                scheme: verified.scheme(),
            }),
            None => Err(too_low("the request does not identify an agent")),
        },
    }
}

/// Unexpired consent requests one agent may have waiting at once.
pub const MAX_PENDING_PER_AGENT: u32 = 100;

/// `request_type=auth` (E§9.3, E§9.4, profile: P-AS-2).
async fn auth_request(
    state: &AppState,
    caller: &Caller,
    target: AuthTarget,
    redirect_uri: Option<String>,
    upstream_token: Option<SignedToken>,
) -> Result<Value, Failure> {
    // An extension of this profile: a resource that asks with the user
    // while it serves a caller proves who that caller is with the caller's
    // auth token, checked as an exchange's (P-AS-7 (1)–(2)), so that the
    // consent page can name it.
    let upstream_agent = match &upstream_token {
        None => None,
        Some(token) => {
            if caller.scheme != Scheme::JwksUri || caller.delegate.is_some() {
                return Err(ErrorResponse::invalid_request(
                    "upstream_token in request_type=auth is for a resource signing as itself \
                     (jwks_uri, well-known=\"aauth-agent\") while it serves a caller",
                )
                .into());
            }
            let upstream = validate_upstream_token(state, caller, token.expose()).await?;
            let agent = upstream.agent().ok_or_else(|| {
                ErrorResponse::new(
                    Condition::GrantInvalid,
                    "upstream_token: auth token has no \"agent\" claim",
                )
            })?;
            Some(agent.as_str().to_owned())
        }
    };
    // P-AS-2: "exactly one of resource_token / scope" (TokenRequest).
    let (resource, scope) = match target {
        AuthTarget::ResourceToken(token) => validate_resource_token(state, caller, &token).await?,
        // E§9.4: "Use the provided scope … directly"; the agent is the resource.
        AuthTarget::Scope(scope) => (caller.agent.clone(), scope),
        // profile: P-TOK-7.
        AuthTarget::AuthRequestUrl(_) => {
            return Err(ErrorResponse::invalid_request(
                "not supported: auth_request_url (E§11 leaves the document format TBD)",
            )
            .into());
        }
    };

    let now = now_secs();
    if state
        .policy()
        .allows_autonomous(&caller.agent, &resource, &scope)
    {
        // P-AS-2: direct grant.
        let refresh_token = new_grant(state, caller, None, &resource, &scope, now).await?;
        let auth_token = issue(state, caller, &resource, &scope, None, now)?;
        return Ok(granted(state, auth_token, Some(refresh_token)));
    }

    // P-AS-2: "`redirect_uri` optional unless consent is needed (then 400
    // `invalid_request` without it)".
    let Some(redirect_uri) = redirect_uri else {
        return Err(ErrorResponse::invalid_request(
            "redirect_uri is required: this request needs the user's consent (profile P-AS-2)",
        )
        .into());
    };
    RedirectUri::parse(&redirect_uri, state.mode())
        .map_err(|e| ErrorResponse::invalid_request(format!("redirect_uri: {e}")))?;
    let request_token = Secret::generate().map_err(internal)?;
    let lifetime = state.config().request_token_lifetime;
    // P-AS-3: bound to agent, delegate `sub`, request and `redirect_uri`.
    let pending = PendingRequest {
        token_hash: request_token.digest(),
        agent: caller.agent.as_str().to_owned(),
        delegate_sub: caller.delegate.clone(),
        resource: resource.as_str().to_owned(),
        scope: scope.to_string(),
        redirect_uri,
        expires_at: now.saturating_add(i64::from(lifetime)),
        upstream_agent,
    };
    let stored = state
        .store()
        .insert_request(&pending, now, MAX_PENDING_PER_AGENT)
        .await
        .map_err(db)?;
    if !stored {
        return Err(ErrorResponse::invalid_request(format!(
            "this agent already has {MAX_PENDING_PER_AGENT} requests waiting for a user; \
             complete them or let them expire"
        ))
        .into());
    }
    Ok(TokenResponse::Pending {
        request_token: RequestToken::new(request_token.expose()),
        expires_in: Some(u64::from(lifetime)),
    }
    .to_json())
}

/// E§6.5 with the resource's keys (P-AS-2: `agent` == caller, `agent_jkt`
/// == thumbprint of this request's key, `aud` == this server).
async fn validate_resource_token(
    state: &AppState,
    caller: &Caller,
    token: &str,
) -> Result<(Origin, Scope), ErrorResponse> {
    let mode = state.mode();
    // The resource's key is fetched first (resource tokens are open by
    // design: P-TOK-6 relies on the P-MD-3 guards), then validation runs
    // synchronously over it.
    let fetched = match tokens::peek(token, mode) {
        Ok(peek) if peek.typ == TokenType::Resource => {
            let key = state
                .discovery()
                .key(KeyOwner::Resource, &peek.iss, &peek.kid)
                .await;
            Some((peek.iss, peek.kid, key))
        }
        _ => None,
    };
    let keys = |iss: &Origin, kid: &Kid| match &fetched {
        Some((at, k, result)) if at == iss && k == kid => result.clone(),
        _ => Err(KeyLookupError::Unavailable(format!(
            "no keys were fetched for {iss}"
        ))),
    };
    let mut ctx = ResourceTokenContext::new(now_secs(), state.issuer(), &caller.agent, &caller.key);
    ctx.origin_mode = mode;
    ctx.leeway_secs = state.config().token_leeway;
    let verified = resource_token::validate(token, &ctx, &keys)
        .map_err(|e| ErrorResponse::new(e.condition(), e.to_string()))?;
    Ok((verified.resource().clone(), verified.scope().clone()))
}

/// `request_type=code` (E§9.6, profile: P-AS-5).
async fn code_request(
    state: &AppState,
    caller: &Caller,
    code: &AuthorizationCode,
    redirect_uri: Option<&str>,
) -> Result<Value, Failure> {
    let Some(code) = Secret::received(code.expose()) else {
        return Err(invalid_grant("the code is unknown or was already used"));
    };
    let refresh_token = Secret::generate().map_err(internal)?;
    let now = now_secs();
    // E§9.5: "Authorization codes MUST be single-use": taken out whoever
    // presents it, so a leaked code is dead after one attempt; the grant is
    // stored in the same transaction, so a crash loses no consent.
    let redeemed = state
        .store()
        .redeem_code(
            &code.digest(),
            |record| check_code(state, caller, redirect_uri, record, &refresh_token, now),
            now,
        )
        .await
        .map_err(db)?;
    let (user, resource, scope) = match redeemed {
        None => return Err(invalid_grant("the code is unknown or was already used")),
        Some(Err(refusal)) => return Err(refusal),
        Some(Ok(granted)) => granted,
    };
    let auth_token = issue(state, caller, &resource, &scope, Some(user), now)?;
    Ok(granted(state, auth_token, Some(refresh_token)))
}

/// P-AS-5: whether `caller` may redeem the code of `record`, and if so the
/// grant to store for it (P-AS-6) with what the auth token needs.
fn check_code<'s>(
    state: &'s AppState,
    caller: &Caller,
    redirect_uri: Option<&str>,
    record: &CodeRecord,
    refresh_token: &Secret,
    now: i64,
) -> Result<(Grant, (&'s User, Origin, Scope)), Failure> {
    if now >= record.expires_at {
        return Err(invalid_grant("the code has expired"));
    }
    // P-AS-5: "redeemable only by the same agent and delegate `sub`".
    if record.agent != caller.agent.as_str() || record.delegate_sub != caller.delegate {
        return Err(invalid_grant(
            "the code was issued to another agent or delegate (profile P-AS-5)",
        ));
    }
    // P-AS-5: "`redirect_uri`, if sent, must match".
    if let Some(redirect_uri) = redirect_uri
        && redirect_uri != record.redirect_uri
    {
        return Err(invalid_grant(
            "redirect_uri does not match the one of the authorization request",
        ));
    }
    let user = state
        .policy()
        .user(&record.username)
        .ok_or_else(|| invalid_grant("the user who consented no longer exists"))?;
    let (resource, scope) = stored_grant(state, &record.resource, &record.scope)?;
    let grant = grant_record(
        state,
        caller,
        Some(user),
        &resource,
        &scope,
        refresh_token,
        now,
    );
    Ok((grant, (user, resource, scope)))
}

/// `request_type=refresh` (E§9.7, profile: P-AS-6).
async fn refresh_request(
    state: &AppState,
    caller: &Caller,
    refresh_token: &RefreshToken,
) -> Result<Value, Failure> {
    let Some(refresh_token) = Secret::received(refresh_token.expose()) else {
        return Err(invalid_grant("the refresh token is unknown"));
    };
    let Some(grant) = state
        .store()
        .grant(&refresh_token.digest())
        .await
        .map_err(db)?
    else {
        return Err(invalid_grant("the refresh token is unknown"));
    };
    let now = now_secs();
    if grant.revoked_at.is_some() {
        return Err(invalid_grant("the refresh token was revoked"));
    }
    if now >= grant.expires_at {
        return Err(invalid_grant("the refresh token has expired"));
    }
    // P-AS-6: bound to the agent and delegate `sub`, not to a key: the new
    // token binds whichever key signed this request (key rotation).
    if grant.agent != caller.agent.as_str() || grant.delegate_sub != caller.delegate {
        return Err(invalid_grant(
            "the refresh token was issued to another agent or delegate (profile P-AS-6)",
        ));
    }
    let user = match &grant.username {
        Some(name) => Some(
            state
                .policy()
                .user(name)
                .ok_or_else(|| invalid_grant("the user of this grant no longer exists"))?,
        ),
        None => None,
    };
    let (resource, scope) = stored_grant(state, &grant.resource, &grant.scope)?;
    let auth_token = issue(state, caller, &resource, &scope, user, now)?;
    // E§9.7: "A new refresh_token is not included because the existing
    // refresh token remains valid."
    Ok(granted(state, auth_token, None))
}

/// `request_type=exchange` (E§9.10 as fixed by profile: P-AS-7): a
/// resource that received `upstream_token` from its caller obtains a token
/// for a downstream resource, bound to its own key, with the chain in `act`.
async fn exchange_request(
    state: &AppState,
    caller: &Caller,
    resource_token: &str,
    upstream_token: &SignedToken,
) -> Result<Value, Failure> {
    // P-AS-1: "For `exchange` the caller is a resource signing as itself
    // with `jwks_uri` (`well-known="aauth-agent"`)."
    if caller.scheme != Scheme::JwksUri || caller.delegate.is_some() {
        return Err(ErrorResponse::invalid_request(
            "exchange is for a resource signing as itself (jwks_uri, well-known=\"aauth-agent\"), \
             not for an agent token (profile P-AS-1, P-AS-7)",
        )
        .into());
    }
    // E§9.10: the downstream scope is the resource token's; nothing else
    // names one (TokenRequest). P-AS-7: the upstream token travels in the
    // form, not in `Signature-Key`, so the caller signs with its own key.

    // P-AS-7 (1)–(2): trusted issuer before any fetch, then the token itself.
    let upstream = validate_upstream_token(state, caller, upstream_token.expose()).await?;
    // P-AS-7 (3), E§9.10 step 2: the downstream resource token, as for `auth`.
    let (resource, scope) = validate_resource_token(state, caller, resource_token).await?;

    // P-AS-7 (4): E§9.10 step 5 "Authorize the exchange", deny by default.
    match state
        .policy()
        .exchange(upstream.issuer(), &caller.agent, &scope)
    {
        ExchangeDecision::Grant => {}
        // P-AS-7: "Exchange never asks the user: if policy would need
        // consent, 400 `interaction_required`".
        ExchangeDecision::NeedsConsent => {
            return Err(ErrorResponse::new(
                Condition::ExchangeNeedsInteraction,
                format!(
                    "scope \"{scope}\" needs the user's consent, which an exchange never asks for; \
                     send the user through the interaction flow instead (profile P-AS-7, P-UI-1)"
                ),
            )
            .into());
        }
        ExchangeDecision::NotAllowed => {
            return Err(ErrorResponse::new(
                Condition::ScopeNotAllowed,
                format!(
                    "no exchange rule lets {} receive scope \"{scope}\" for tokens from {} (profile P-AS-7)",
                    caller.agent,
                    upstream.issuer()
                ),
            )
            .into());
        }
    }

    // P-AS-7: "`act` = { `agent`: upstream `agent`, `agent_delegate`:
    // upstream `agent_delegate` (if any), `act`: upstream `act` (if any) }".
    let claims = upstream.claims();
    let Some(upstream_agent) = upstream.agent() else {
        return Err(invalid_grant(
            "upstream_token: auth token has no \"agent\" claim",
        ));
    };
    let act = Act {
        agent: upstream_agent.as_str().to_owned(),
        agent_delegate: claims.agent_delegate.clone(),
        // profile: P-AS-7 — `sub` is copied, so E§9.10's `act.sub` ("if
        // different") never applies.
        sub: None,
        act: claims.act.clone().map(Box::new),
    };
    // P-AS-7: "Depth = number of nested `act` levels in the new token; more
    // than 5 (configurable) → 400 `invalid_grant`".
    let depth = act.depth();
    let max_depth = state.config().max_exchange_depth;
    if depth > max_depth {
        return Err(invalid_grant(format!(
            "the delegation chain would be {depth} act levels deep; at most {max_depth} are allowed (profile P-AS-7)"
        )));
    }

    let now = now_secs();
    // E§9.10 "Auth token claims": `iss` this server, `aud` the downstream
    // resource, `agent` the calling resource; step 6: "Issue an auth token
    // with the `cnf` claim matching" the caller's key (P-AS-7).
    let mut builder = AuthTokenBuilder::new(
        state.issuer().clone(),
        resource,
        caller.agent.clone(),
        caller.key.clone(),
    )
    .act(act);
    // E§7.4: scope "excludes identity scopes like openid, profile, email".
    let access: Vec<&str> = scope.tokens().filter(|s| !is_identity_scope(s)).collect();
    if !access.is_empty() {
        builder = builder.scope(Scope::from_tokens(access).map_err(internal)?);
    }
    // E§9.10: "The `sub` claim MUST be maintained through the chain".
    if let Some(sub) = &claims.sub {
        builder = builder.subject(sub.clone());
    }
    let key = state.key();
    let auth_token = builder
        .lifetime_secs(state.config().auth_token_lifetime)
        .build(now)
        .map_err(internal)?
        .sign(&key.key, &key.kid)
        .map_err(internal)?;
    // E§9.10: "Exchange requests do not return refresh tokens".
    Ok(granted(state, auth_token, None))
}

/// The upstream auth token of an exchange (E§7.7 with this server as the
/// recipient, profile: P-AS-7, P-TOK-6): its `iss` must be trusted before
/// anything is fetched (else `untrusted_issuer`); any other failure —
/// signature, `exp`, `aud` ≠ caller, … — is `invalid_grant`.
async fn validate_upstream_token(
    state: &AppState,
    caller: &Caller,
    token: &str,
) -> Result<VerifiedAuthToken, ErrorResponse> {
    let mode = state.mode();
    let trusted = state.policy().trusted_issuers();
    // profile: P-TOK-6 — "the auth server checks an upstream token's `iss`
    // against `trusted_issuers` *before* fetching any key": only a trusted
    // issuer's keys are fetched; `validate` refuses the rest at step 9.
    let fetched = match tokens::peek(token, mode) {
        Ok(peek) if peek.typ == TokenType::Auth && trusted.contains(&peek.iss) => {
            let key = state
                .discovery()
                .key(KeyOwner::AuthServer, &peek.iss, &peek.kid)
                .await;
            Some((peek.iss, peek.kid, key))
        }
        _ => None,
    };
    let keys = |iss: &Origin, kid: &Kid| match &fetched {
        Some((at, k, result)) if at == iss && k == kid => result.clone(),
        _ => Err(KeyLookupError::Unavailable(format!(
            "no keys were fetched for {iss}"
        ))),
    };
    // E§9.10 step 3: "Verify the `aud` claim matches the requesting resource".
    let mut ctx = AuthTokenContext::new(now_secs(), trusted, &caller.agent);
    ctx.consumer = Consumer::Resource;
    ctx.origin_mode = mode;
    ctx.leeway_secs = state.config().token_leeway;
    auth_token::validate(token, &ctx, &keys).map_err(|error| {
        // P-ERR-1: "AS: untrusted upstream issuer" / "bad upstream token".
        let condition = match error {
            AuthTokenError::UntrustedIssuer(_) => Condition::IssuerUntrusted,
            _ => Condition::GrantInvalid,
        };
        ErrorResponse::new(condition, format!("upstream_token: {error}"))
    })
}

fn stored_grant(state: &AppState, resource: &str, scope: &str) -> Result<(Origin, Scope), Failure> {
    let resource = Origin::parse(resource, state.mode()).map_err(internal)?;
    let scope = Scope::parse(scope).map_err(internal)?;
    Ok((resource, scope))
}

/// Records a grant and returns its new refresh token (P-AS-6: opaque
/// 256-bit, stored hashed, bound to agent, delegate, user, resource, scope).
async fn new_grant(
    state: &AppState,
    caller: &Caller,
    user: Option<&User>,
    resource: &Origin,
    scope: &Scope,
    now: i64,
) -> Result<Secret, Failure> {
    let refresh_token = Secret::generate().map_err(internal)?;
    let grant = grant_record(state, caller, user, resource, scope, &refresh_token, now);
    state.store().insert_grant(&grant, now).await.map_err(db)?;
    Ok(refresh_token)
}

/// The grant row of `refresh_token` (P-AS-6).
fn grant_record(
    state: &AppState,
    caller: &Caller,
    user: Option<&User>,
    resource: &Origin,
    scope: &Scope,
    refresh_token: &Secret,
    now: i64,
) -> Grant {
    let lifetime = i64::try_from(state.config().refresh_token_lifetime).unwrap_or(i64::MAX);
    Grant {
        refresh_hash: refresh_token.digest(),
        agent: caller.agent.as_str().to_owned(),
        delegate_sub: caller.delegate.clone(),
        username: user.map(|u| u.username.clone()),
        resource: resource.as_str().to_owned(),
        scope: scope.to_string(),
        expires_at: now.saturating_add(lifetime),
        revoked_at: None,
    }
}

/// Builds and signs an auth token (E§7.3–7.4, profile: P-TOK-4).
/// The answer carrying a new auth token (E§9.4, E§9.6, E§9.7, E§9.10).
fn granted(state: &AppState, auth_token: String, refresh_token: Option<Secret>) -> Value {
    TokenResponse::Granted {
        auth_token: SignedToken::new(auth_token),
        expires_in: Some(u64::from(state.config().auth_token_lifetime)),
        refresh_token: refresh_token.map(|r| RefreshToken::new(r.expose())),
    }
    .to_json()
}

fn issue(
    state: &AppState,
    caller: &Caller,
    resource: &Origin,
    scope: &Scope,
    user: Option<&User>,
    now: i64,
) -> Result<String, Failure> {
    let issuer = state.issuer().clone();
    // E§7.3: "agent (REQUIRED if aud is not the agent identifier)": an SSO
    // token (aud = the agent) omits it.
    let mut builder = if resource == &caller.agent {
        AuthTokenBuilder::sso(issuer, caller.agent.clone(), caller.key.clone())
    } else {
        AuthTokenBuilder::new(
            issuer,
            resource.clone(),
            caller.agent.clone(),
            caller.key.clone(),
        )
    };
    if let Some(delegate) = &caller.delegate {
        builder = builder.agent_delegate(delegate.clone());
    }
    // E§7.4: scope "excludes identity scopes like openid, profile, email".
    let access: Vec<&str> = scope.tokens().filter(|s| !is_identity_scope(s)).collect();
    if !access.is_empty() {
        let access = Scope::from_tokens(access).map_err(internal)?;
        builder = builder.scope(access);
    }
    // E§7.4: "sub (REQUIRED if openid scope granted)"; OIDC Core §5.4 maps
    // `profile` to `name` and `email` to `email`, `email_verified`.
    if let Some(user) = user
        && scope.contains("openid")
    {
        builder = builder.subject(user.sub.clone());
        if scope.contains("profile")
            && let Some(name) = &user.name
        {
            builder = builder.claim("name", Value::from(name.clone()));
        }
        if scope.contains("email") {
            if let Some(email) = &user.email {
                builder = builder.claim("email", Value::from(email.clone()));
            }
            if let Some(verified) = user.email_verified {
                builder = builder.claim("email_verified", Value::from(verified));
            }
        }
    }
    let key = state.key();
    builder
        .lifetime_secs(state.config().auth_token_lifetime)
        .build(now)
        .map_err(internal)?
        .sign(&key.key, &key.kid)
        .map_err(internal)
}
