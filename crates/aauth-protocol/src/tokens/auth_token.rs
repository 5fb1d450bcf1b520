//! Auth tokens, `auth+jwt` (E§7, D§8, profile: P-TOK-4): an auth server
//! authorizes an agent (`agent`, bound to `cnf.jwk`) at a resource (`aud`)
//! for a `scope`, optionally on behalf of a user (`sub` + OIDC claims) and
//! through a chain of actors (`act`, E§9.10, P-AS-7). Resources validate
//! them by E§7.7, with the issuer checked before any key is fetched
//! (profile: P-TOK-6). Encrypted (JWE) auth tokens are not supported.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    Audience, BuildError, ClockFault, Confirmation, ConfirmationReceived, IssuerKeys,
    KeyLookupError, TokenType, TypMismatch, check_clock, expiry, new_jti, numeric_date,
};
use crate::error::Condition;
use crate::ids::{Kid, Origin, OriginError, OriginMode, Scope, StringError};
use crate::jose::{self, JwsAlg, JwsError, SignError, UnverifiedJws};
use crate::jwk::{JwkError, PublicKey};
use crate::keys::SigningKey;

/// Deepest `act` chain accepted on receipt. Auth servers apply their own,
/// smaller, configured limit when minting (profile: P-AS-7, default 5).
pub const MAX_ACT_DEPTH: usize = 16;

/// The claims an auth token defines; extra (OIDC) claims may not reuse them.
const REGISTERED: [&str; 12] = [
    "iss",
    "aud",
    "agent",
    "cnf",
    "exp",
    "iat",
    "nbf",
    "jti",
    "agent_delegate",
    "scope",
    "act",
    "sub",
];

/// The actor claim (E§9.10, profile: P-AS-7): who delegated to the current
/// agent, nested for longer chains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Act {
    /// The upstream agent's identifier.
    pub agent: String,
    /// The upstream agent delegate, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_delegate: Option<String>,
    /// The upstream user, if present and different.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The actor before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Act>>,
}

impl Act {
    /// Number of `act` levels, this one included (profile: P-AS-7).
    pub fn depth(&self) -> usize {
        std::iter::successors(Some(self), |act| act.act.as_deref()).count()
    }
}

/// The claims of an auth token (E§7.3, E§7.4, profile: P-TOK-4), as emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthTokenClaims {
    /// The auth server's identifier.
    pub iss: Origin,
    /// The resource (or, for SSO, the agent) the token is for; emitted as a string.
    pub aud: Audience,
    /// The agent's identifier; absent only when `aud` is the agent (SSO, E§7.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<Origin>,
    /// The key that signed the token request.
    pub cnf: Confirmation,
    /// Expiration (NumericDate).
    pub exp: i64,
    /// Issued at; always emitted, optional on receipt (profile: P-TOK-1a).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before; always emitted, optional on receipt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Token identifier; always emitted, optional on receipt (profile: P-TOK-1a).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The agent delegate (the agent token's `sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_delegate: Option<String>,
    /// The authorized scope (no identity scopes, E§7.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The delegation chain (E§9.10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Act>,
    /// The user, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Other claims, such as OIDC `name`, `email`, `email_verified`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AuthTokenClaims {
    /// Signs the claims as an `auth+jwt` with the auth server's key.
    pub fn sign(&self, key: &SigningKey, kid: &Kid) -> Result<String, SignError> {
        jose::sign(key, TokenType::Auth.typ(), kid, self)
    }
}

/// Builds auth token claims for an auth server (profile: P-TOK-4).
#[derive(Debug, Clone)]
pub struct AuthTokenBuilder {
    iss: Origin,
    aud: Origin,
    agent: Option<Origin>,
    cnf: PublicKey,
    agent_delegate: Option<String>,
    scope: Option<Scope>,
    act: Option<Act>,
    sub: Option<String>,
    extra: Map<String, Value>,
    lifetime_secs: u32,
    jti: Option<String>,
}

impl AuthTokenBuilder {
    /// Default lifetime: ten minutes (profile: P-TOK-4).
    pub const DEFAULT_LIFETIME_SECS: u32 = 600;

    /// A token from `iss` for `agent` at resource `aud`, bound to `cnf`.
    pub fn new(iss: Origin, aud: Origin, agent: Origin, cnf: PublicKey) -> Self {
        Self::with_agent(iss, aud, Some(agent), cnf)
    }

    /// An SSO token: `aud` is the agent itself and `agent` is omitted (E§7.3).
    pub fn sso(iss: Origin, agent: Origin, cnf: PublicKey) -> Self {
        Self::with_agent(iss, agent, None, cnf)
    }

    fn with_agent(iss: Origin, aud: Origin, agent: Option<Origin>, cnf: PublicKey) -> Self {
        Self {
            iss,
            aud,
            agent,
            cnf,
            agent_delegate: None,
            scope: None,
            act: None,
            sub: None,
            extra: Map::new(),
            lifetime_secs: Self::DEFAULT_LIFETIME_SECS,
            jti: None,
        }
    }

    /// Sets `agent_delegate` (the agent token's `sub`).
    #[must_use]
    pub fn agent_delegate(mut self, delegate: impl Into<String>) -> Self {
        self.agent_delegate = Some(delegate.into());
        self
    }

    /// Sets `scope`.
    #[must_use]
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Sets `act` (token exchange, P-AS-7).
    #[must_use]
    pub fn act(mut self, act: Act) -> Self {
        self.act = Some(act);
        self
    }

    /// Sets `sub` (the user, when `openid` was granted).
    #[must_use]
    pub fn subject(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
        self
    }

    /// Adds an extra claim (e.g. OIDC `email`); registered names are refused at [`Self::build`].
    #[must_use]
    pub fn claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// Sets the lifetime in seconds (profile: P-TOK-5: configurable).
    #[must_use]
    pub fn lifetime_secs(mut self, secs: u32) -> Self {
        self.lifetime_secs = secs;
        self
    }

    /// Uses `jti` instead of a fresh random one (fixed vectors, tests).
    #[must_use]
    pub fn jti(mut self, jti: impl Into<String>) -> Self {
        self.jti = Some(jti.into());
        self
    }

    /// The claims issued at `now`, with `iat` = `nbf` = `now` and a fresh
    /// `jti` unless one was set.
    pub fn build(&self, now: i64) -> Result<AuthTokenClaims, BuildError> {
        if let Some(name) = self.extra.keys().find(|k| REGISTERED.contains(&k.as_str())) {
            return Err(BuildError::ReservedClaim(name.clone()));
        }
        Ok(AuthTokenClaims {
            iss: self.iss.clone(),
            aud: Audience::from(&self.aud),
            agent: self.agent.clone(),
            cnf: Confirmation {
                jwk: self.cnf.clone(),
            },
            exp: expiry(now, self.lifetime_secs),
            iat: Some(now),
            nbf: Some(now),
            jti: Some(match &self.jti {
                Some(jti) => jti.clone(),
                None => new_jti()?,
            }),
            agent_delegate: self.agent_delegate.clone(),
            scope: self.scope.clone(),
            act: self.act.clone(),
            sub: self.sub.clone(),
            extra: self.extra.clone(),
        })
    }
}

/// How the recipient consumes the token, which decides whether `agent` is
/// required (E§7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consumer {
    /// A resource (or an auth server checking an upstream token): `agent` is required.
    #[default]
    Resource,
    /// The agent itself, using the auth server for SSO: `agent` may be omitted.
    Agent,
}

/// What the recipient knows when it validates an auth token.
#[derive(Debug, Clone)]
pub struct AuthTokenContext<'a> {
    /// Current time, Unix seconds.
    pub now: i64,
    /// The auth servers whose tokens are accepted (step 9, checked first:
    /// profile: P-TOK-6). A resource lists its one auth server.
    pub trusted_issuers: &'a [Origin],
    /// The recipient's identifier, which `aud` must contain (step 10).
    pub audience: &'a Origin,
    /// Whether the recipient consumes the token as a resource or as the agent.
    pub consumer: Consumer,
    /// Which issuers are acceptable origins.
    pub origin_mode: OriginMode,
    /// Seconds of grace after `exp` (profile: P-TOK-5; default 0).
    pub leeway_secs: u32,
}

impl<'a> AuthTokenContext<'a> {
    /// A production-mode context for a resource, without leeway.
    pub fn new(now: i64, trusted_issuers: &'a [Origin], audience: &'a Origin) -> Self {
        Self {
            now,
            trusted_issuers,
            audience,
            consumer: Consumer::Resource,
            origin_mode: OriginMode::Production,
            leeway_secs: 0,
        }
    }
}

/// An auth token that passed E§7.7 steps 1–12. Only [`validate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAuthToken {
    claims: AuthTokenClaims,
    kid: Kid,
    alg: JwsAlg,
}

impl VerifiedAuthToken {
    /// The verified claims.
    pub fn claims(&self) -> &AuthTokenClaims {
        &self.claims
    }

    /// The auth server (`iss`).
    pub fn issuer(&self) -> &Origin {
        &self.claims.iss
    }

    /// The agent; `None` only for an SSO token consumed by the agent.
    pub fn agent(&self) -> Option<&Origin> {
        self.claims.agent.as_ref()
    }

    /// The key the HTTP request must be signed with (step 13 is the
    /// caller's: a mismatch is `key_binding_failed`).
    pub fn cnf_key(&self) -> &PublicKey {
        &self.claims.cnf.jwk
    }

    /// The authorized scope, for the caller's step 14.
    pub fn scope(&self) -> Option<&Scope> {
        self.claims.scope.as_ref()
    }

    /// The auth server key that signed the token.
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The JWS algorithm used.
    pub fn alg(&self) -> JwsAlg {
        self.alg
    }
}

/// Why an auth token failed, one variant per E§7.7 step (error code
/// `invalid_auth_token`, D§11.2.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthTokenError {
    /// A JWE: encrypted auth tokens are not supported (profile: P-TOK-4).
    #[error("encrypted auth tokens are not supported")]
    Encrypted,
    /// Step 1: not a valid compact JWS.
    #[error("auth token is malformed: {0}")]
    Malformed(JwsError),
    /// Step 2: `typ` is not `auth+jwt` (e.g. a resource or agent token).
    #[error("{0}")]
    WrongTyp(TypMismatch),
    /// Step 3: no `kid`.
    #[error("auth token has no \"kid\" in its header")]
    MissingKid,
    /// Step 4: the payload is not a claims object of the right shape.
    #[error("auth token claims are malformed: {0}")]
    Claims(JwsError),
    /// A claim the step needs is absent.
    #[error("auth token has no \"{0}\" claim")]
    MissingClaim(&'static str),
    /// Step 4: `iss` is not an acceptable identifier.
    #[error("auth token \"iss\" is not an acceptable identifier: {0}")]
    Issuer(OriginError),
    /// Step 9, checked before any key is fetched (profile: P-TOK-6).
    #[error("auth token issuer {0} is not trusted here")]
    UntrustedIssuer(Origin),
    /// Steps 5–6: the auth server's key could not be found.
    #[error("auth token signing key: {0}")]
    KeyLookup(KeyLookupError),
    /// Step 7: the signature does not verify with the auth server's key.
    #[error("auth token signature: {0}")]
    Signature(JwsError),
    /// Step 8: `now` is not before `exp` (+ leeway).
    #[error("auth token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// Step 8 (profile: P-TOK-5): `iat` more than 60 s in the future.
    #[error("auth token \"iat\" {iat} is in the future (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// Step 8 (profile: P-TOK-5): `nbf` more than 60 s in the future.
    #[error("auth token is not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// Step 10: `aud` does not contain the recipient.
    #[error("auth token \"aud\" does not include {0}")]
    Audience(Origin),
    /// Step 11: `agent` is not an acceptable agent identifier.
    #[error("auth token \"agent\" is not an acceptable agent identifier: {0}")]
    Agent(OriginError),
    /// Step 12: `cnf.jwk` is not a supported public key.
    #[error("auth token \"cnf.jwk\": {0}")]
    Cnf(JwkError),
    /// Step 14: `scope` is not a valid scope string.
    #[error("auth token \"scope\": {0}")]
    Scope(StringError),
    /// The `act` chain is deeper than [`MAX_ACT_DEPTH`] (profile: P-AS-7).
    #[error(
        "auth token \"act\" chain is {depth} levels deep; at most {MAX_ACT_DEPTH} are accepted"
    )]
    ActTooDeep {
        /// The chain's depth.
        depth: usize,
    },
}

impl AuthTokenError {
    /// The P-ERR-1 row: every E§7.7 failure, an untrusted `iss` and a token
    /// of another kind included, is `invalid_auth_token`. (An auth server
    /// checking an upstream token maps these to `invalid_grant` or
    /// `untrusted_issuer` itself, P-AS-7.)
    pub fn condition(&self) -> Condition {
        match self {
            Self::Encrypted
            | Self::Malformed(_)
            | Self::WrongTyp(_)
            | Self::MissingKid
            | Self::Claims(_)
            | Self::MissingClaim(_)
            | Self::Issuer(_)
            | Self::UntrustedIssuer(_)
            | Self::KeyLookup(_)
            | Self::Signature(_)
            | Self::Expired { .. }
            | Self::IssuedInFuture { .. }
            | Self::NotYetValid { .. }
            | Self::Audience(_)
            | Self::Agent(_)
            | Self::Cnf(_)
            | Self::Scope(_)
            | Self::ActTooDeep { .. } => Condition::AuthTokenInvalid,
        }
    }
}

/// The claims as received: the registered ones optional, so each step can
/// report exactly what is missing; all others kept in `extra`.
#[derive(Deserialize)]
struct Received {
    iss: Option<String>,
    aud: Option<Audience>,
    agent: Option<String>,
    cnf: Option<ConfirmationReceived>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    jti: Option<String>,
    agent_delegate: Option<String>,
    scope: Option<String>,
    act: Option<Act>,
    sub: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// Validates a signed auth token (E§7.7 steps 1–12, with step 9 moved
/// before the key lookup: profile: P-TOK-6). Step 13 — the HTTP signature
/// was made with `cnf.jwk` — and step 14 — the scope authorizes the
/// operation — are the caller's, with [`VerifiedAuthToken::cnf_key`] and
/// [`VerifiedAuthToken::scope`].
pub fn validate<K: IssuerKeys + ?Sized>(
    token: &str,
    ctx: &AuthTokenContext<'_>,
    keys: &K,
) -> Result<VerifiedAuthToken, AuthTokenError> {
    match check(token, ctx, keys)? {
        Validity::Valid(token) => Ok(*token),
        Validity::ExpiredButGenuine { error, .. } => Err(error),
    }
}

/// What [`check`] found of a token that failed no step but, perhaps, its
/// expiry.
#[derive(Debug)]
pub enum Validity {
    /// Every step passed.
    Valid(Box<VerifiedAuthToken>),
    /// Step 8 failed on `exp` alone: the token is genuine (signed by a
    /// trusted issuer's key, for this audience, well formed), but expired.
    /// P-ERR-1 lets a resource answer it with a fresh resource token.
    ExpiredButGenuine {
        /// The token as every other step read it.
        token: Box<VerifiedAuthToken>,
        /// The step 8 error ([`AuthTokenError::Expired`]).
        error: AuthTokenError,
    },
}

/// [`validate`], telling a token whose only fault is its expiry from one
/// with any other fault, in one pass. When a token is expired and also
/// fails a later step, that step's failure is not reported: step 8 comes
/// first, and the token is not genuine.
pub fn check<K: IssuerKeys + ?Sized>(
    token: &str,
    ctx: &AuthTokenContext<'_>,
    keys: &K,
) -> Result<Validity, AuthTokenError> {
    use AuthTokenError as E;

    // 1. "Parse the JWT and extract the JOSE header"
    // profile: P-TOK-4 — a JWE (E§7.2's encrypted form) is not supported.
    let jws = UnverifiedJws::parse(token).map_err(|error| match error {
        JwsError::Encrypted => E::Encrypted,
        error => E::Malformed(error),
    })?;
    let header = jws.unverified_header();

    // 2. "Verify `typ` is "auth+jwt""
    if !header.typ_is(TokenType::Auth.typ()) {
        return Err(E::WrongTyp(TypMismatch::new(TokenType::Auth, header.typ())));
    }

    // 3. "Extract `kid` from the JOSE header"
    let kid = header.kid().cloned().ok_or(E::MissingKid)?;

    // 4. "Extract `iss` from the payload"
    let claims: Received = jws
        .unverified_claims_for_routing(TokenType::Auth.typ())
        .map_err(E::Claims)?;
    let iss = claims.iss.as_deref().ok_or(E::MissingClaim("iss"))?;
    let iss = Origin::parse(iss, ctx.origin_mode).map_err(E::Issuer)?;

    // 9. "Verify the `iss` matches the trusted auth server" — moved before
    //    the fetch of steps 5–6 (profile: P-TOK-6), so an untrusted issuer
    //    never makes us fetch anything.
    if !ctx.trusted_issuers.contains(&iss) {
        return Err(E::UntrustedIssuer(iss));
    }

    // 5. "Fetch the auth server's JWKS (from metadata)"
    // 6. "Match the signing key by `kid`"
    let key = keys.key(&iss, &kid).map_err(E::KeyLookup)?;

    // 7. "Verify the JWT signature using the matched public key"
    jws.verify_signature(&key).map_err(E::Signature)?;

    // 8. "Verify the `exp` claim (current time MUST be less than expiration)"
    let exp = claims.exp.ok_or(E::MissingClaim("exp"))?;
    let now = ctx.now;
    let expired = match check_clock(exp, claims.iat, claims.nbf, now, ctx.leeway_secs) {
        Ok(()) => None,
        // Go on: whether the token is otherwise genuine matters (P-ERR-1).
        Err(ClockFault::Expired) => Some(E::Expired { exp, now }),
        Err(ClockFault::IssuedInFuture(iat)) => return Err(E::IssuedInFuture { iat, now }),
        Err(ClockFault::NotYetValid(nbf)) => return Err(E::NotYetValid { nbf, now }),
    };
    // From here on, an expired token reports its expiry, the earlier step.
    let fail = |error: AuthTokenError| expired.clone().unwrap_or(error);

    // 10. "Verify the `aud` matches the resource identifier being accessed"
    // profile: P-TOK-4 — a string, or an array containing it.
    let aud = claims.aud.ok_or_else(|| fail(E::MissingClaim("aud")))?;
    if !aud.contains(ctx.audience.as_str()) {
        return Err(fail(E::Audience(ctx.audience.clone())));
    }

    // 11. "Verify the `agent` claim is present"
    // E§7.3: "REQUIRED if `aud` is not the agent identifier" — an agent
    // consuming its own SSO token may find it omitted.
    let agent = match (claims.agent, ctx.consumer) {
        (Some(agent), _) => {
            Some(Origin::parse(&agent, ctx.origin_mode).map_err(|error| fail(E::Agent(error)))?)
        }
        (None, Consumer::Agent) => None,
        (None, Consumer::Resource) => return Err(fail(E::MissingClaim("agent"))),
    };

    // 12. "Extract the public key from `cnf.jwk`"
    let jwk = claims
        .cnf
        .and_then(|cnf| cnf.jwk)
        .ok_or_else(|| fail(E::MissingClaim("cnf.jwk")))?;
    let cnf = PublicKey::from_json_value(&jwk).map_err(|error| fail(E::Cnf(error)))?;

    // 13. "Verify that the HTTPSig request signature was created with the key
    //     from `cnf.jwk`" — the caller's step, with `cnf_key()`.

    // 14. "Verify the `scope` claim (if present) authorizes the requested
    //     operation" — parsed here, decided by the caller with `scope()`.
    let scope = claims
        .scope
        .as_deref()
        .map(Scope::parse)
        .transpose()
        .map_err(|error| fail(E::Scope(error)))?;

    // profile: P-AS-7 — the `act` chain is bounded.
    if let Some(act) = &claims.act {
        let depth = act.depth();
        if depth > MAX_ACT_DEPTH {
            return Err(fail(E::ActTooDeep { depth }));
        }
    }

    let token = VerifiedAuthToken {
        claims: AuthTokenClaims {
            iss,
            aud,
            agent,
            cnf: Confirmation { jwk: cnf },
            exp,
            iat: claims.iat,
            nbf: claims.nbf,
            jti: claims.jti,
            agent_delegate: claims.agent_delegate,
            scope,
            act: claims.act,
            sub: claims.sub,
            extra: claims.extra,
        },
        kid,
        alg: header.alg(),
    };
    Ok(match expired {
        None => Validity::Valid(Box::new(token)),
        Some(error) => Validity::ExpiredButGenuine {
            token: Box::new(token),
            error,
        },
    })
}

#[derive(Deserialize)]
struct CnfOnly {
    cnf: Option<ConfirmationReceived>,
}

/// **Unverified**: the `cnf.jwk` an auth token declares, read without
/// checking anything the token says. For one use only: a verifier that never
/// accepts auth tokens (the auth server's token endpoint, profile: P-AS-1)
/// checks with it that the request was at least signed by the key the token
/// names before it refuses the request for its level, so that a bad
/// signature is reported as one. Nothing may be granted on the strength of
/// this key.
pub fn unverified_cnf_key(token: &str) -> Result<PublicKey, AuthTokenError> {
    let jws = UnverifiedJws::parse(token).map_err(|error| match error {
        JwsError::Encrypted => AuthTokenError::Encrypted,
        error => AuthTokenError::Malformed(error),
    })?;
    let claims: CnfOnly = jws
        .unverified_claims_for_routing(TokenType::Auth.typ())
        .map_err(AuthTokenError::Claims)?;
    let jwk = claims
        .cnf
        .and_then(|cnf| cnf.jwk)
        .ok_or(AuthTokenError::MissingClaim("cnf.jwk"))?;
    PublicKey::from_json_value(&jwk).map_err(AuthTokenError::Cnf)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

    const AUTH: &str = "https://auth.example";
    const RESOURCE: &str = "https://resource.example";
    const AGENT: &str = "https://agent.example";

    struct Fixture {
        auth_key: SigningKey,
        agent_key: SigningKey,
        trusted: Vec<Origin>,
        resource: Origin,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                auth_key: ed25519(),
                agent_key: ed25519(),
                trusted: vec![origin(AUTH)],
                resource: origin(RESOURCE),
            }
        }

        fn keys(&self) -> impl IssuerKeys {
            one_key(
                origin(AUTH),
                kid("auth-server-key-1"),
                self.auth_key.public_key().clone(),
            )
        }

        fn ctx(&self) -> AuthTokenContext<'_> {
            AuthTokenContext::new(NOW, &self.trusted, &self.resource)
        }

        fn header() -> Value {
            json!({"alg": "EdDSA", "typ": "auth+jwt", "kid": "auth-server-key-1"})
        }

        fn payload(&self) -> Value {
            json!({
                "iss": AUTH,
                "aud": RESOURCE,
                "agent": AGENT,
                "cnf": {"jwk": self.agent_key.public_key()},
                "exp": NOW + 600,
                "iat": NOW,
                "nbf": NOW,
                "jti": "j",
                "scope": "data.read"
            })
        }

        fn run(
            &self,
            header: &Value,
            payload: &Value,
        ) -> Result<VerifiedAuthToken, AuthTokenError> {
            validate(
                &sign_raw(&self.auth_key, header, payload),
                &self.ctx(),
                &self.keys(),
            )
        }

        fn with(
            &self,
            edit: impl FnOnce(&mut Map<String, Value>),
        ) -> Result<VerifiedAuthToken, AuthTokenError> {
            let mut payload = self.payload();
            edit(payload.as_object_mut().unwrap());
            self.run(&Self::header(), &payload)
        }
    }

    #[test]
    fn accepts_a_valid_token() {
        let f = Fixture::new();
        let verified = f.with(|_| {}).unwrap();
        assert_eq!(verified.issuer().as_str(), AUTH);
        assert_eq!(verified.agent().map(Origin::as_str), Some(AGENT));
        assert_eq!(verified.cnf_key(), f.agent_key.public_key());
        assert_eq!(verified.scope().unwrap().to_string(), "data.read");
    }

    #[test]
    fn builder_round_trips_for_ed25519_and_p256() {
        // profile: P-TOK-1, P-TOK-1a, P-TOK-4
        for auth_key in [ed25519(), p256()] {
            for agent_key in [ed25519(), p256()] {
                let claims = AuthTokenBuilder::new(
                    origin(AUTH),
                    origin(RESOURCE),
                    origin(AGENT),
                    agent_key.public_key().clone(),
                )
                .agent_delegate("d-1")
                .scope(Scope::parse("data.read").unwrap())
                .subject("user-12345")
                .claim("email", json!("alice@example.com"))
                .act(Act {
                    agent: "https://upstream.example".into(),
                    agent_delegate: None,
                    sub: None,
                    act: None,
                })
                .build(NOW)
                .unwrap();
                assert_eq!(
                    (claims.exp, claims.iat, claims.nbf),
                    (NOW + 600, Some(NOW), Some(NOW))
                );
                assert!(claims.jti.is_some());
                let token = claims.sign(&auth_key, &kid("ak")).unwrap();
                let keys = one_key(origin(AUTH), kid("ak"), auth_key.public_key().clone());
                let f = Fixture::new();
                let verified = validate(&token, &f.ctx(), &keys).unwrap();
                assert_eq!(verified.claims(), &claims);
            }
        }
    }

    #[test]
    fn builder_emits_aud_as_a_string_and_refuses_registered_extra_claims() {
        // profile: P-TOK-4
        let builder = AuthTokenBuilder::new(
            origin(AUTH),
            origin(RESOURCE),
            origin(AGENT),
            ed25519().public_key().clone(),
        );
        let json = serde_json::to_value(builder.clone().build(NOW).unwrap()).unwrap();
        assert_eq!(json["aud"], RESOURCE);
        assert_eq!(
            builder.claim("iss", json!("x")).build(NOW).unwrap_err(),
            BuildError::ReservedClaim("iss".into())
        );
    }

    #[test]
    fn explainer_examples_parse() {
        // E§7.5 and E§7.6, signed here with a test key.
        let f = Fixture::new();
        let user = json!({
            "iss": "https://auth.example",
            "agent": "https://agent.example",
            "agent_delegate": "mobile-app-install-xyz",
            "aud": "https://resource.example",
            "exp": 1730221200,
            "scope": "data.read data.write",
            "cnf": {"jwk": rfc8037_public()},
            "sub": "user-12345",
            "name": "Alice Smith",
            "email": "alice@example.com",
            "email_verified": true
        });
        let verified = f.run(&Fixture::header(), &user).unwrap();
        let claims = verified.claims();
        assert_eq!(claims.sub.as_deref(), Some("user-12345"));
        assert_eq!(
            claims.agent_delegate.as_deref(),
            Some("mobile-app-install-xyz")
        );
        assert_eq!(claims.extra["email_verified"], json!(true));
        assert_eq!(claims.extra.len(), 3);
        assert_eq!(claims.iat, None); // profile: P-TOK-1a

        let autonomous = json!({
            "iss": "https://auth.example",
            "agent": "https://agent.example",
            "agent_delegate": "spiffe://example.com/workload/api-service",
            "aud": "https://resource.example",
            "exp": 1730221200,
            "scope": "data.read",
            "cnf": {"jwk": rfc8037_public()}
        });
        let verified = f.run(&Fixture::header(), &autonomous).unwrap();
        assert!(verified.claims().extra.is_empty());
    }

    #[test]
    fn jwe_is_rejected_as_unsupported() {
        // profile: P-TOK-4
        let f = Fixture::new();
        let err = validate("eyJ.a.b.c.d", &f.ctx(), &f.keys()).unwrap_err();
        assert_eq!(err, AuthTokenError::Encrypted);
        assert_eq!(err.to_string(), "encrypted auth tokens are not supported");
        assert_eq!(err.condition(), Condition::AuthTokenInvalid);
    }

    #[test]
    fn step_1_rejects_malformed() {
        let f = Fixture::new();
        assert!(matches!(
            validate("a.b.c", &f.ctx(), &f.keys()),
            Err(AuthTokenError::Malformed(_))
        ));
    }

    #[test]
    fn step_2_rejects_resource_and_agent_tokens_clearly() {
        let f = Fixture::new();
        for (typ, noun) in [
            ("resource+jwt", "a resource token"),
            ("agent+jwt", "an agent token"),
        ] {
            let header = json!({"alg": "EdDSA", "typ": typ, "kid": "auth-server-key-1"});
            let err = f.run(&header, &f.payload()).unwrap_err();
            assert!(matches!(err, AuthTokenError::WrongTyp(_)), "{err:?}");
            assert!(err.to_string().starts_with(noun), "{err}");
            assert_eq!(err.condition().wire().code.as_str(), "invalid_auth_token");
        }
    }

    #[test]
    fn step_3_rejects_missing_kid() {
        let f = Fixture::new();
        let header = json!({"alg": "EdDSA", "typ": "auth+jwt"});
        assert_eq!(
            f.run(&header, &f.payload()).unwrap_err(),
            AuthTokenError::MissingKid
        );
    }

    #[test]
    fn step_4_rejects_missing_or_bad_iss() {
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("iss");
            })
            .unwrap_err(),
            AuthTokenError::MissingClaim("iss")
        );
        assert!(matches!(
            f.with(|p| {
                p.insert("iss".into(), json!("https://AUTH.example"));
            })
            .unwrap_err(),
            AuthTokenError::Issuer(_)
        ));
    }

    #[test]
    fn step_9_untrusted_issuer_is_refused_before_any_key_lookup() {
        // profile: P-TOK-6
        let f = Fixture::new();
        let untrusted = ed25519();
        let token = sign_raw(
            &untrusted,
            &Fixture::header(),
            &json!({"iss": "https://evil.example", "aud": RESOURCE}),
        );
        let looked_up = std::cell::Cell::new(false);
        let keys = |_: &Origin, _: &Kid| {
            looked_up.set(true);
            Err(KeyLookupError::Unavailable("must not be called".into()))
        };
        let err = validate(&token, &f.ctx(), &keys).unwrap_err();
        assert_eq!(
            err,
            AuthTokenError::UntrustedIssuer(origin("https://evil.example"))
        );
        assert!(!looked_up.get());
        assert_eq!(err.condition(), Condition::AuthTokenInvalid);
    }

    #[test]
    fn steps_5_6_key_lookup_failure() {
        let f = Fixture::new();
        let header = json!({"alg": "EdDSA", "typ": "auth+jwt", "kid": "rotated-away"});
        assert!(matches!(
            f.run(&header, &f.payload()),
            Err(AuthTokenError::KeyLookup(KeyLookupError::UnknownKid(_)))
        ));
    }

    #[test]
    fn step_7_rejects_bad_signature() {
        let f = Fixture::new();
        let token = sign_raw(&ed25519(), &Fixture::header(), &f.payload());
        assert_eq!(
            validate(&token, &f.ctx(), &f.keys()).unwrap_err(),
            AuthTokenError::Signature(JwsError::BadSignature)
        );
    }

    #[test]
    fn step_8_exp_iat_nbf() {
        // profile: P-TOK-5
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("exp");
            })
            .unwrap_err(),
            AuthTokenError::MissingClaim("exp")
        );
        assert_eq!(
            f.with(|p| {
                p.insert("exp".into(), json!(NOW));
            })
            .unwrap_err(),
            AuthTokenError::Expired { exp: NOW, now: NOW }
        );
        assert!(matches!(
            f.with(|p| {
                p.insert("iat".into(), json!(NOW + 61));
            })
            .unwrap_err(),
            AuthTokenError::IssuedInFuture { .. }
        ));
        assert!(matches!(
            f.with(|p| {
                p.insert("nbf".into(), json!(NOW + 61));
            })
            .unwrap_err(),
            AuthTokenError::NotYetValid { .. }
        ));
    }

    #[test]
    fn fractional_numeric_dates_and_duplicate_claims() {
        // RFC 7519 §2: a NumericDate may be non-integer.
        let f = Fixture::new();
        let verified = f
            .with(|p| {
                p.insert("exp".into(), json!(NOW as f64 + 600.5));
            })
            .unwrap();
        assert_eq!(verified.claims().exp, NOW + 600);
        // A repeated registered claim is ambiguous and refused at step 4.
        let mut payload = f.payload().to_string();
        payload.pop();
        payload.push_str(r#","iss":"https://auth.example"}"#);
        let token = format!(
            "{}.{}.{}",
            crate::b64::url_encode(Fixture::header().to_string()),
            crate::b64::url_encode(&payload),
            crate::b64::url_encode([0u8; 64])
        );
        let err = validate(&token, &f.ctx(), &f.keys()).unwrap_err();
        assert!(matches!(err, AuthTokenError::Claims(_)), "{err:?}");
    }

    #[test]
    fn step_10_aud_string_or_array_containing_the_resource() {
        // profile: P-TOK-4
        let f = Fixture::new();
        f.with(|p| {
            p.insert("aud".into(), json!(["https://x.example", RESOURCE]));
        })
        .unwrap();
        assert_eq!(
            f.with(|p| {
                p.remove("aud");
            })
            .unwrap_err(),
            AuthTokenError::MissingClaim("aud")
        );
        assert_eq!(
            f.with(|p| {
                p.insert("aud".into(), json!("https://x.example"));
            })
            .unwrap_err(),
            AuthTokenError::Audience(origin(RESOURCE))
        );
    }

    #[test]
    fn step_11_agent_required_unless_consumed_by_the_agent_for_sso() {
        // E§7.3, profile: P-TOK-4
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("agent");
            })
            .unwrap_err(),
            AuthTokenError::MissingClaim("agent")
        );
        assert!(matches!(
            f.with(|p| {
                p.insert("agent".into(), json!("agent.example"));
            })
            .unwrap_err(),
            AuthTokenError::Agent(_)
        ));

        let agent = origin(AGENT);
        let claims = AuthTokenBuilder::sso(
            origin(AUTH),
            agent.clone(),
            f.agent_key.public_key().clone(),
        )
        .subject("user-1")
        .build(NOW)
        .unwrap();
        let token = claims.sign(&f.auth_key, &kid("auth-server-key-1")).unwrap();
        let mut ctx = AuthTokenContext::new(NOW, &f.trusted, &agent);
        assert_eq!(
            validate(&token, &ctx, &f.keys()).unwrap_err(),
            AuthTokenError::MissingClaim("agent")
        );
        ctx.consumer = Consumer::Agent;
        let verified = validate(&token, &ctx, &f.keys()).unwrap();
        assert_eq!(verified.agent(), None);
    }

    #[test]
    fn step_12_requires_a_supported_cnf_jwk() {
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("cnf");
            })
            .unwrap_err(),
            AuthTokenError::MissingClaim("cnf.jwk")
        );
        assert!(matches!(
            f.with(|p| {
                p.insert(
                    "cnf".into(),
                    json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}}),
                );
            })
            .unwrap_err(),
            AuthTokenError::Cnf(_)
        ));
    }

    #[test]
    fn step_14_scope_is_optional_and_parsed() {
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("scope");
            })
            .unwrap()
            .scope(),
            None
        );
        assert!(matches!(
            f.with(|p| {
                p.insert("scope".into(), json!(" data.read"));
            })
            .unwrap_err(),
            AuthTokenError::Scope(_)
        ));
    }

    #[test]
    fn act_chain_is_parsed_recursively_and_bounded() {
        // profile: P-AS-7
        let f = Fixture::new();
        let chain = json!({
            "agent": "https://resource1.example",
            "agent_delegate": "api-service-instance-abc",
            "sub": "user-12345",
            "act": {"agent": "https://agent.example"}
        });
        let verified = f
            .with(|p| {
                p.insert("act".into(), chain);
            })
            .unwrap();
        let act = verified.claims().act.as_ref().unwrap();
        assert_eq!(act.depth(), 2);
        assert_eq!(act.act.as_ref().unwrap().agent, AGENT);

        let mut deep = json!({"agent": AGENT});
        for _ in 0..MAX_ACT_DEPTH {
            deep = json!({"agent": AGENT, "act": deep});
        }
        assert_eq!(
            f.with(|p| {
                p.insert("act".into(), deep);
            })
            .unwrap_err(),
            AuthTokenError::ActTooDeep {
                depth: MAX_ACT_DEPTH + 1
            }
        );
        assert!(matches!(
            f.with(|p| {
                p.insert("act".into(), json!({"agent_delegate": "x"}));
            })
            .unwrap_err(),
            AuthTokenError::Claims(_)
        ));
    }

    #[test]
    fn hostile_act_nesting_cannot_exhaust_the_stack() {
        let f = Fixture::new();
        let mut payload = f.payload().to_string();
        payload.pop();
        let depth = 300;
        payload.push_str(&r#","act":{"agent":"a","act":"#.repeat(depth));
        payload.push_str("null");
        payload.push_str(&"}".repeat(depth + 1));
        let token = format!(
            "{}.{}.{}",
            crate::b64::url_encode(Fixture::header().to_string()),
            crate::b64::url_encode(&payload),
            crate::b64::url_encode([0u8; 64])
        );
        assert!(token.len() < jose::MAX_COMPACT_LEN);
        // serde_json's nesting limit refuses it at step 4; never a crash.
        assert!(matches!(
            validate(&token, &f.ctx(), &f.keys()),
            Err(AuthTokenError::Claims(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn validate_never_panics(text in ".{0,400}") {
            let f = Fixture::new();
            let _ = validate(&text, &f.ctx(), &f.keys());
        }
    }
}
