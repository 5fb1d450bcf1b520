//! Verifying one AAuth request end to end (E§10.7): the label selection of
//! E§10.1.1, the signing profile of E§10.3–10.5, key discovery for the
//! `Signature-Key` scheme, the validation of an agent or auth token carried
//! in it, and finally the signature with the key that all of this yields.
//!
//! ```text
//! Signature-Key ──parse──▶ label Lk, scheme
//!        │
//! Signature-Input, Signature ──prepare(Lk)──▶ components, created, nonce,
//!        │                                    Content-Digest, signature base
//!        ▼
//!  hwk ─────────────▶ inline key                              pseudonymous
//!  jwks_uri ────────▶ directory: agent server's JWKS, kid     identified
//!  jwt agent+jwt ───▶ E§5.7 with the agent server's keys      identified
//!  jwt auth+jwt ────▶ E§7.7 with the trusted auth server's    authorized
//!  x509 ────────────▶ refused (P-SK-5)
//!        │
//!        ▼
//!  Prepared::verify(key) ──▶ VerifiedRequest { level, key, agent, … }
//! ```
//!
//! Keys that live on other servers come from a [`KeyDirectory`] the caller
//! supplies; it answers synchronously from what the caller already fetched.
//! An asynchronous layer reads the request once with [`Presented::read`],
//! asks [`Presented::key_need`] which issuer's keys it will need, fetches
//! them (with the guards of P-MD-3) and finishes with
//! [`Presented::verify`]; [`verify_request`] does both halves for a caller
//! whose directory already holds every key.

use std::sync::Arc;

use crate::challenge::Level;
use crate::error::{Condition, echo};
use crate::httpsig::{self, HeaderSource, HttpSigError, Nonce, Request, VerifyPolicy};
use crate::ids::{Kid, Origin, OriginError, OriginMode, Thumbprint};
use crate::jwk::PublicKey;
use crate::keys::VerifyingKey;
use crate::secret::SignedToken;
use crate::signature_key::{self, AAUTH_AGENT_WELL_KNOWN, Scheme, SignatureKey, SignatureKeyError};
use crate::tokens::agent_token::{self, AgentTokenContext, AgentTokenError, VerifiedAgentToken};
use crate::tokens::auth_token::{
    self, AuthTokenContext, AuthTokenError, Validity, VerifiedAuthToken,
};
use crate::tokens::{KeyLookupError, Peek, PeekError, TokenType};

/// Whose published keys a lookup is for; each kind of party publishes its
/// JWKS through its own metadata document (E§8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyOwner {
    /// An agent server: `/.well-known/aauth-agent` (E§8.1).
    Agent,
    /// An auth server: `/.well-known/aauth-issuer` (E§8.2).
    AuthServer,
    /// A resource: `/.well-known/aauth-resource` (E§8.3).
    Resource,
}

impl KeyOwner {
    /// The well-known document name of this kind of party.
    pub fn well_known(self) -> &'static str {
        match self {
            Self::Agent => "aauth-agent",
            Self::AuthServer => "aauth-issuer",
            Self::Resource => "aauth-resource",
        }
    }
}

/// Answers key lookups from keys the caller has already fetched.
pub trait KeyDirectory {
    /// The key `kid` published by `owner` at `origin`.
    fn key(&self, owner: KeyOwner, origin: &Origin, kid: &Kid)
    -> Result<PublicKey, KeyLookupError>;
}

/// A token that passed validation, as a [`TokenCache`] keeps it.
#[derive(Debug, Clone)]
pub enum ValidatedToken {
    /// An agent token (E§5.7 steps 1–11 passed).
    Agent(Arc<VerifiedAgentToken>),
    /// An auth token (E§7.7 steps 1–12 passed).
    Auth(Arc<VerifiedAuthToken>),
}

impl ValidatedToken {
    /// The token's `exp`.
    pub fn exp(&self) -> i64 {
        match self {
            Self::Agent(token) => token.claims().exp,
            Self::Auth(token) => token.claims().exp,
        }
    }
}

/// Tokens this verifier validated before, keyed by their exact text.
///
/// A token presented on every request (an auth token under load) is then
/// validated once; afterwards only its `exp` is checked, because nothing else
/// that validation looked at can change: the token is signed, and the
/// verifier's identifier, trusted issuers and origin mode are fixed. A cache
/// must therefore belong to one [`VerifierConfig`]; implementations evict
/// entries at their `exp`.
pub trait TokenCache {
    /// The validated token with exactly this text, if known.
    fn get(&self, jwt: &str) -> Option<ValidatedToken>;
    /// Remembers a token that just passed validation.
    fn insert(&self, jwt: &str, token: &ValidatedToken);
}

/// No cache: every token is validated every time.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTokenCache;

impl TokenCache for NoTokenCache {
    fn get(&self, _jwt: &str) -> Option<ValidatedToken> {
        None
    }

    fn insert(&self, _jwt: &str, _token: &ValidatedToken) {}
}

/// What the verifier knows about itself.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The verifier's own identifier: the `aud` an agent token may name and
    /// an auth token must name (E§5.7 step 10, E§7.7 step 10).
    pub identifier: Origin,
    /// The canonical authority used for `@authority` (E§10.3.1, P-SIG-5);
    /// normally `identifier.authority()`.
    pub authority: String,
    /// The auth servers whose tokens are accepted (E§7.7 step 9; a resource
    /// trusts its one configured auth server). Empty: auth tokens are refused.
    pub trusted_auth_servers: Vec<Origin>,
    /// Which identifiers are acceptable (P-MD-1).
    pub origin_mode: OriginMode,
    /// The signing profile's switches (P-SIG-1, P-SIG-2, P-SIG-6, P-SIG-7).
    pub http: VerifyPolicy,
    /// Seconds of grace after a token's `exp` (P-TOK-5; default 0).
    pub token_leeway_secs: u32,
    /// Whether an auth token in `Signature-Key` can be a caller's key. Off at
    /// an auth server's token endpoint (profile: P-AS-1): such a request is
    /// checked for a valid signature by the key the token names, nothing is
    /// fetched for it, and it is refused as `insufficient_auth_level`.
    pub accept_auth_tokens: bool,
}

impl VerifierConfig {
    /// A strict configuration for `identifier`, with its authority and no
    /// trusted auth server.
    pub fn new(identifier: Origin) -> Self {
        Self {
            authority: identifier.authority().to_owned(),
            identifier,
            trusted_auth_servers: Vec::new(),
            origin_mode: OriginMode::Production,
            http: VerifyPolicy::default(),
            token_leeway_secs: 0,
            accept_auth_tokens: true,
        }
    }
}

/// A request whose signature verified, with everything it established.
/// Only [`verify_request`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    level: Level,
    scheme: Scheme,
    key: PublicKey,
    thumbprint: Thumbprint,
    agent: Option<Origin>,
    delegate: Option<String>,
    agent_token: Option<Arc<VerifiedAgentToken>>,
    auth_token: Option<Arc<VerifiedAuthToken>>,
    nonce: Option<Nonce>,
    created: u64,
}

impl VerifiedRequest {
    /// The level the request reached (P-CH-2).
    pub fn level(&self) -> Level {
        self.level
    }

    /// The `Signature-Key` scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The key that signed the request.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// Its RFC 7638 thumbprint (the `agent_jkt` of a resource token).
    pub fn thumbprint(&self) -> &Thumbprint {
        &self.thumbprint
    }

    /// The agent: the `jwks_uri` id, the agent token's `iss`, or the auth
    /// token's `agent`. `None` at the pseudonymous level and for SSO tokens.
    pub fn agent(&self) -> Option<&Origin> {
        self.agent.as_ref()
    }

    /// The agent delegate: the agent token's `sub`, or the auth token's
    /// `agent_delegate`.
    pub fn delegate(&self) -> Option<&str> {
        self.delegate.as_deref()
    }

    /// The agent token, when one was presented.
    pub fn agent_token(&self) -> Option<&VerifiedAgentToken> {
        self.agent_token.as_deref()
    }

    /// The auth token, when one was presented.
    pub fn auth_token(&self) -> Option<&VerifiedAuthToken> {
        self.auth_token.as_deref()
    }

    /// The covered `Nonce`, for the caller's replay cache (P-SIG-6).
    pub fn nonce(&self) -> Option<&Nonce> {
        self.nonce.as_ref()
    }

    /// The signature's `created`.
    pub fn created(&self) -> u64 {
        self.created
    }
}

/// Why a request was refused. [`VerifyError::condition`] gives its P-ERR-1 row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No `Signature-Key`, `Signature-Input` or `Signature` at all.
    #[error(
        "the request is not signed: Signature-Input, Signature and Signature-Key are required (D§10.1)"
    )]
    Unsigned,
    /// `Signature-Key` is absent while the other signature headers are present.
    #[error(
        "the request has no Signature-Key header (E§10: \"All AAuth requests MUST include the Signature-Key header\")"
    )]
    MissingSignatureKey,
    /// `Signature-Key` is malformed (E§10.1.1 steps 1–3).
    #[error("{0}")]
    SignatureKey(SignatureKeyError),
    /// The signing profile refused the request, or the signature failed.
    #[error("{0}")]
    Signature(HttpSigError),
    /// P-SK-3: only `well-known="aauth-agent"` establishes agent identity.
    #[error(
        "Signature-Key jwks_uri names well-known {0:?}; only \"aauth-agent\" identifies an agent"
    )]
    UnsupportedWellKnown(String),
    /// P-MD-1: the `jwks_uri` `id` is not an acceptable identifier.
    #[error("Signature-Key jwks_uri id is not an acceptable agent identifier: {0}")]
    AgentIdentifier(OriginError),
    /// The agent server's key could not be found or fetched.
    #[error("agent server key: {0}")]
    AgentKey(KeyLookupError),
    /// P-SK-5: x509 keys are not supported.
    #[error("Signature-Key scheme x509 is not supported by this verifier (profile P-SK-5)")]
    X509Unsupported,
    /// The `jwt` is not a readable agent or auth token.
    #[error("Signature-Key jwt: {error}")]
    Jwt {
        /// What failed.
        error: PeekError,
        /// The kind its header declares, if it declares one: it picks the
        /// error code (an auth token is `invalid_auth_token` whatever failed).
        declared: Option<TokenType>,
    },
    /// An auth token was presented where none is accepted (profile: P-AS-1),
    /// on a request signed by the key it names.
    #[error(
        "an auth token is never accepted here (profile P-AS-1); sign as the agent server \
         (jwks_uri) or with an agent token"
    )]
    AuthTokenRefused,
    /// A resource token was presented as the `jwt` of `Signature-Key`.
    #[error(
        "Signature-Key jwt is a resource token, which never signs a request: it goes to the auth \
         server as resource_token, and the auth token obtained with it signs"
    )]
    ResourceTokenAsKey,
    /// The agent token failed an E§5.7 step.
    #[error("{0}")]
    AgentToken(AgentTokenError),
    /// The auth token failed an E§7.7 step.
    #[error("{0}")]
    AuthToken(AuthTokenError),
    /// E§5.7 step 12 / E§7.7 step 13: the signature does not verify with the
    /// token's `cnf.jwk` (P-SK-4).
    #[error("the request signature does not verify with the token's cnf.jwk: {0}")]
    KeyBinding(HttpSigError),
}

impl VerifyError {
    /// The P-ERR-1 row of this failure.
    pub fn condition(&self) -> Condition {
        match self {
            Self::Unsigned
            | Self::MissingSignatureKey
            | Self::UnsupportedWellKnown(_)
            | Self::AgentIdentifier(_)
            | Self::AgentKey(_)
            | Self::X509Unsupported => Condition::SignatureInvalid,
            Self::SignatureKey(error) => error.condition(),
            Self::Signature(error) => error.condition(),
            Self::Jwt { error, declared } => match declared {
                // P-ERR-1: "a resource token presented as one" is an invalid auth token.
                Some(TokenType::Resource) => Condition::AuthTokenInvalid,
                Some(kind) => error.condition(*kind),
                None => match error {
                    // The token cannot even be told apart: the Signature-Key
                    // value is malformed (P-ERR-1, first row).
                    PeekError::Malformed(_) | PeekError::UnknownTyp(_) => {
                        Condition::SignatureInvalid
                    }
                    // These variants carry the kind they read.
                    PeekError::MissingKid(_)
                    | PeekError::Claims { .. }
                    | PeekError::MissingIss(_)
                    | PeekError::Issuer { .. } => error.condition(TokenType::Auth),
                },
            },
            // P-ERR-1: "valid signature, level too low": the request is
            // signed, but not at a level this endpoint takes.
            Self::AuthTokenRefused => Condition::LevelTooLow,
            // P-ERR-1: "a resource token presented as one" is an invalid auth token.
            Self::ResourceTokenAsKey => Condition::AuthTokenInvalid,
            Self::AgentToken(error) => error.condition(),
            Self::AuthToken(error) => error.condition(),
            Self::KeyBinding(_) => Condition::KeyBindingFailed,
        }
    }

    /// Whether what failed is a signature that, in a request whose
    /// [`Presented::key_need`] named a key, was checked with that key: the
    /// `jwks_uri` request signature, or an agent or auth token's own
    /// signature. The key may have been replaced under the same `kid` (a
    /// peer that makes a new key when it restarts), so a caller that cached
    /// the key set may refetch it once and judge again (P-MD-3).
    pub fn failed_with_published_key(&self) -> bool {
        matches!(
            self,
            Self::Signature(HttpSigError::SignatureInvalid | HttpSigError::AlgKeyMismatch { .. })
                | Self::AgentToken(AgentTokenError::Signature(_))
                | Self::AuthToken(AuthTokenError::Signature(_))
        )
    }

    /// The components a signature must cover, when that is what failed
    /// (the `required_components` member of D§11.2.1).
    pub fn required_components(&self) -> Option<&[String]> {
        match self {
            Self::Signature(error) => error.required_components(),
            _ => None,
        }
    }
}

/// The agent and key behind a request whose only fault is an expired auth
/// token: the token is genuine (signature, trusted issuer, audience and every
/// other claim check out) and the request is signed with its `cnf.jwk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredTokenHolder {
    /// The token's `agent`.
    pub agent: Origin,
    /// The key that signed the request (`agent_jkt` of a new resource token).
    pub key: PublicKey,
}

/// A refusal with the signature base computed before it failed, if any, for
/// the dev-mode diagnostics of P-ERR-3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct Rejection {
    /// What failed.
    pub error: VerifyError,
    /// The signature base the verifier computed, when it got that far.
    pub signature_base: Option<String>,
    /// Set when the only fault was an expired auth token: P-ERR-1 answers
    /// `invalid_auth_token` "+ fresh resource token when the signature
    /// verified with a trusted key", and this is whom to mint it for.
    pub expired_token_holder: Option<Box<ExpiredTokenHolder>>,
}

impl From<VerifyError> for Rejection {
    fn from(error: VerifyError) -> Self {
        Self {
            error,
            signature_base: None,
            expired_token_holder: None,
        }
    }
}

/// Which remote keys verifying a request will need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyNeed {
    /// None: the key is inline (`hwk`), or the request will be refused anyway.
    None,
    /// The key `kid` from the JWKS of `origin`, published through `owner`'s
    /// metadata.
    Keys {
        /// Whose metadata leads to the JWKS.
        owner: KeyOwner,
        /// The party's identifier.
        origin: Origin,
        /// The key identifier the request names (an unknown one may justify
        /// a refetch of the JWKS, within P-MD-3's limits).
        kid: Kid,
    },
}

fn signature_key_header<H: HeaderSource + ?Sized>(
    request: &Request<'_, H>,
) -> Result<String, VerifyError> {
    match request.field_value("signature-key") {
        Some(value) => Ok(value.into_owned()),
        None if request.has_field("signature-input") || request.has_field("signature") => {
            Err(VerifyError::MissingSignatureKey)
        }
        None => Err(VerifyError::Unsigned),
    }
}

/// Where the key that must have signed a request comes from, as far as it
/// can be told before any key is fetched.
#[derive(Debug, Clone)]
enum Source {
    /// `hwk`: the key itself (E§10.7).
    Inline(PublicKey),
    /// `jwks_uri` with `well-known="aauth-agent"`: a key of the agent
    /// server's JWKS (SK0§2.4, P-SK-3).
    AgentServer { agent: Origin, kid: Kid },
    /// A token this verifier validated before, unexpired when read.
    Validated(ValidatedToken),
    /// An agent token, to validate with its issuer's keys (E§5.7).
    AgentToken { jwt: SignedToken, peek: Peek },
    /// An auth token, to validate with its issuer's keys (E§7.7); an issuer
    /// that is not `trusted` is refused without a fetch (P-TOK-6).
    AuthToken {
        jwt: SignedToken,
        peek: Peek,
        trusted: bool,
    },
    /// An auth token where none is accepted: only possession of the key it
    /// names is checked, before the refusal.
    RefusedAuthToken { cnf: PublicKey },
}

/// A request read once (E§10.7 up to the key): `Signature-Key` parsed, every
/// check of the signing profile that needs no key passed, the signature
/// base built, and the token in `Signature-Key` looked up in the verifier's
/// cache or read for its issuer. [`Presented::key_need`] then says which
/// keys to fetch, and [`Presented::verify`] finishes with them.
#[derive(Debug)]
pub struct Presented {
    scheme: Scheme,
    prepared: httpsig::Prepared,
    source: Source,
}

impl Presented {
    /// Reads `request` for the verifier of `config` at time `now` (Unix
    /// seconds), looking a token up in `cache`. Refuses at once what needs
    /// no key to refuse.
    pub fn read<H, C>(
        request: &Request<'_, H>,
        config: &VerifierConfig,
        cache: &C,
        now: u64,
    ) -> Result<Self, Rejection>
    where
        H: HeaderSource + ?Sized,
        C: TokenCache + ?Sized,
    {
        // E§10.3.1: "the receiver MUST use the configured canonical authority
        // as the value of @authority" (profile: P-SIG-5), whatever the caller
        // put there.
        let request = &Request {
            authority: &config.authority,
            ..*request
        };

        // E§10.1.1 steps 1–3: parse Signature-Key, exactly one member, its label Lk.
        let header = signature_key_header(request)?;
        let field = signature_key::parse(&header).map_err(VerifyError::SignatureKey)?;

        // E§10.1.1 steps 4–6 and the signing profile (E§10.3–10.5): labels,
        // covered components, created/expires, nonce, Content-Digest, base.
        let prepared = httpsig::prepare(request, &field.label, &config.http, now)
            .map_err(VerifyError::Signature)?;

        // E§10.7: "Extract the scheme parameter".
        let scheme = field.key.scheme();
        match source(field.key, config, cache, now) {
            Ok(source) => Ok(Self {
                scheme,
                prepared,
                source,
            }),
            Err(error) => Err(Rejection {
                error,
                signature_base: Some(prepared.signature_base().to_owned()),
                expired_token_holder: None,
            }),
        }
    }

    /// Which remote keys [`Presented::verify`] will ask its directory for.
    pub fn key_need(&self) -> KeyNeed {
        match &self.source {
            Source::AgentServer { agent, kid } => KeyNeed::Keys {
                owner: KeyOwner::Agent,
                origin: agent.clone(),
                kid: kid.clone(),
            },
            Source::AgentToken { peek, .. } => KeyNeed::Keys {
                owner: KeyOwner::Agent,
                origin: peek.iss.clone(),
                kid: peek.kid.clone(),
            },
            Source::AuthToken {
                peek,
                trusted: true,
                ..
            } => KeyNeed::Keys {
                owner: KeyOwner::AuthServer,
                origin: peek.iss.clone(),
                kid: peek.kid.clone(),
            },
            Source::Inline(_)
            | Source::Validated(_)
            | Source::AuthToken { trusted: false, .. }
            | Source::RefusedAuthToken { .. } => KeyNeed::None,
        }
    }

    /// The signature base computed for the request.
    pub fn signature_base(&self) -> &str {
        self.prepared.signature_base()
    }

    /// Finishes E§10.7 at time `now` with keys from `directory`: "Follow
    /// the scheme-specific verification procedure", then the signature
    /// itself. A token that passes validation goes into `cache`.
    pub fn verify<D, C>(
        &self,
        config: &VerifierConfig,
        directory: &D,
        cache: &C,
        now: u64,
    ) -> Result<VerifiedRequest, Rejection>
    where
        D: KeyDirectory + ?Sized,
        C: TokenCache + ?Sized,
    {
        let resolved = match self.resolve(config, directory, cache, now) {
            Ok(resolved) => resolved,
            Err((error, expired)) => {
                let holder = expired.and_then(|token| self.expired_token_holder(&token));
                return Err(Rejection {
                    expired_token_holder: holder,
                    ..self.rejection(error)
                });
            }
        };

        // The HTTP signature itself, with the key the scheme yielded.
        let verifying_key = VerifyingKey::new(&resolved.key)
            .map_err(|_| self.rejection(VerifyError::Signature(HttpSigError::SignatureInvalid)))?;
        if let Err(error) = self.prepared.verify(&verifying_key) {
            // P-SK-4: with a token, the request must be signed by exactly the
            // token's cnf.jwk (E§5.7 step 12, E§7.7 step 13).
            let error = match self.scheme {
                Scheme::Jwt => VerifyError::KeyBinding(error),
                Scheme::Hwk | Scheme::JwksUri | Scheme::X509 => VerifyError::Signature(error),
            };
            return Err(self.rejection(error));
        }

        Ok(VerifiedRequest {
            level: resolved.level,
            scheme: self.scheme,
            thumbprint: resolved.key.thumbprint(),
            key: resolved.key,
            agent: resolved.agent,
            delegate: resolved.delegate,
            agent_token: resolved.agent_token,
            auth_token: resolved.auth_token,
            nonce: self.prepared.nonce().cloned(),
            created: self.prepared.created(),
        })
    }

    fn rejection(&self, error: VerifyError) -> Rejection {
        Rejection {
            error,
            signature_base: Some(self.prepared.signature_base().to_owned()),
            expired_token_holder: None,
        }
    }

    /// The key the request's scheme yields, or why there is none; with the
    /// token when its only fault is its expiry.
    fn resolve<D, C>(
        &self,
        config: &VerifierConfig,
        directory: &D,
        cache: &C,
        now: u64,
    ) -> Result<Resolved, (VerifyError, Option<Arc<VerifiedAuthToken>>)>
    where
        D: KeyDirectory + ?Sized,
        C: TokenCache + ?Sized,
    {
        let now_secs = i64::try_from(now).unwrap_or(i64::MAX);
        match &self.source {
            // E§10.7 hwk: "Reconstruct the public key from the parameters".
            Source::Inline(key) => Ok(Resolved::inline(key.clone())),
            // SK0§2.4 discovery: {id}/.well-known/{well-known} → jwks_uri → kid.
            Source::AgentServer { agent, kid } => {
                let key = directory
                    .key(KeyOwner::Agent, agent, kid)
                    .map_err(|e| (VerifyError::AgentKey(e), None))?;
                Ok(Resolved {
                    key,
                    level: Level::Identified,
                    agent: Some(agent.clone()),
                    delegate: None,
                    agent_token: None,
                    auth_token: None,
                })
            }
            // A token validated before is only checked for expiry again
            // (E§5.7 step 8, E§7.7 step 8: "current time MUST be less than
            // expiration", with the leeway of P-TOK-5): it was read unexpired
            // and may have expired while keys were fetched.
            Source::Validated(token) => {
                let exp = token.exp();
                if now_secs < exp.saturating_add(i64::from(config.token_leeway_secs)) {
                    return Ok(Resolved::from(token.clone()));
                }
                Err(match token {
                    ValidatedToken::Agent(_) => (
                        VerifyError::AgentToken(AgentTokenError::Expired { exp, now: now_secs }),
                        None,
                    ),
                    ValidatedToken::Auth(token) => (
                        VerifyError::AuthToken(AuthTokenError::Expired { exp, now: now_secs }),
                        Some(token.clone()),
                    ),
                })
            }
            // E§10.7 jwt: "Validate the JWT completely according to its type"
            // before its cnf.jwk is trusted (P-SK-4).
            Source::AgentToken { jwt, .. } => {
                let mut ctx = AgentTokenContext::new(now_secs, &config.identifier);
                ctx.origin_mode = config.origin_mode;
                ctx.leeway_secs = config.token_leeway_secs;
                let keys = |iss: &Origin, kid: &Kid| directory.key(KeyOwner::Agent, iss, kid);
                let token = agent_token::validate(jwt.expose(), &ctx, &keys)
                    .map_err(|e| (VerifyError::AgentToken(e), None))?;
                let token = ValidatedToken::Agent(Arc::new(token));
                cache.insert(jwt.expose(), &token);
                Ok(Resolved::from(token))
            }
            Source::AuthToken { jwt, .. } => {
                let mut ctx = AuthTokenContext::new(
                    now_secs,
                    &config.trusted_auth_servers,
                    &config.identifier,
                );
                ctx.origin_mode = config.origin_mode;
                ctx.leeway_secs = config.token_leeway_secs;
                let keys = |iss: &Origin, kid: &Kid| directory.key(KeyOwner::AuthServer, iss, kid);
                match auth_token::check(jwt.expose(), &ctx, &keys) {
                    Ok(Validity::Valid(token)) => {
                        let token = ValidatedToken::Auth(Arc::new(*token));
                        cache.insert(jwt.expose(), &token);
                        Ok(Resolved::from(token))
                    }
                    Ok(Validity::ExpiredButGenuine { token, error }) => {
                        Err((VerifyError::AuthToken(error), Some(Arc::new(*token))))
                    }
                    Err(error) => Err((VerifyError::AuthToken(error), None)),
                }
            }
            // Possession of the key the token names, then the refusal: the
            // signature is checked like any other, so that a bad one is
            // reported as one (profile: P-AS-1).
            Source::RefusedAuthToken { cnf } => {
                let key = VerifyingKey::new(cnf)
                    .map_err(|_| (VerifyError::Signature(HttpSigError::SignatureInvalid), None))?;
                match self.prepared.verify(&key) {
                    Ok(()) => Err((VerifyError::AuthTokenRefused, None)),
                    Err(error) => Err((VerifyError::KeyBinding(error), None)),
                }
            }
        }
    }

    /// For an auth token whose only fault is its expiry: whom to mint a fresh
    /// resource token for, if the request is signed with its `cnf.jwk`.
    fn expired_token_holder(&self, token: &VerifiedAuthToken) -> Option<Box<ExpiredTokenHolder>> {
        let key = VerifyingKey::new(token.cnf_key()).ok()?;
        self.prepared.verify(&key).ok()?;
        Some(Box::new(ExpiredTokenHolder {
            agent: token.agent()?.clone(),
            key: token.cnf_key().clone(),
        }))
    }
}

/// The [`Source`] of `key`: everything that needs no key is checked here.
fn source<C: TokenCache + ?Sized>(
    key: SignatureKey,
    config: &VerifierConfig,
    cache: &C,
    now: u64,
) -> Result<Source, VerifyError> {
    match key {
        SignatureKey::Hwk(key) => Ok(Source::Inline(key)),
        SignatureKey::JwksUri {
            id,
            well_known,
            kid,
        } => {
            // profile: P-SK-3 — only aauth-agent establishes agent identity.
            if well_known != AAUTH_AGENT_WELL_KNOWN {
                return Err(VerifyError::UnsupportedWellKnown(echo(&well_known)));
            }
            let agent =
                Origin::parse(&id, config.origin_mode).map_err(VerifyError::AgentIdentifier)?;
            Ok(Source::AgentServer { agent, kid })
        }
        SignatureKey::Jwt { jwt } => {
            let now_secs = i64::try_from(now).unwrap_or(i64::MAX);
            if let Some(token) = cache.get(&jwt)
                && now_secs
                    < token
                        .exp()
                        .saturating_add(i64::from(config.token_leeway_secs))
            {
                return Ok(Source::Validated(token));
            }
            let peek = crate::tokens::peek(&jwt, config.origin_mode).map_err(|error| {
                VerifyError::Jwt {
                    declared: crate::tokens::declared_type(&jwt),
                    error,
                }
            })?;
            match peek.typ {
                TokenType::Agent => Ok(Source::AgentToken {
                    jwt: SignedToken::new(jwt),
                    peek,
                }),
                TokenType::Auth if !config.accept_auth_tokens => Ok(Source::RefusedAuthToken {
                    cnf: auth_token::unverified_cnf_key(&jwt).map_err(VerifyError::AuthToken)?,
                }),
                TokenType::Auth => {
                    let trusted = config.trusted_auth_servers.contains(&peek.iss);
                    Ok(Source::AuthToken {
                        jwt: SignedToken::new(jwt),
                        peek,
                        trusted,
                    })
                }
                TokenType::Resource => Err(VerifyError::ResourceTokenAsKey),
            }
        }
        // profile: P-SK-5.
        SignatureKey::X509 { .. } => Err(VerifyError::X509Unsupported),
    }
}

/// The key a scheme resolved to, and what it established.
struct Resolved {
    key: PublicKey,
    level: Level,
    agent: Option<Origin>,
    delegate: Option<String>,
    agent_token: Option<Arc<VerifiedAgentToken>>,
    auth_token: Option<Arc<VerifiedAuthToken>>,
}

impl Resolved {
    /// An `hwk` key: pseudonymous.
    fn inline(key: PublicKey) -> Self {
        Self {
            key,
            level: Level::Pseudonymous,
            agent: None,
            delegate: None,
            agent_token: None,
            auth_token: None,
        }
    }
}

impl From<ValidatedToken> for Resolved {
    fn from(token: ValidatedToken) -> Self {
        match token {
            ValidatedToken::Agent(token) => Self {
                key: token.cnf_key().clone(),
                level: Level::Identified,
                agent: Some(token.agent().clone()),
                delegate: Some(token.delegate().to_owned()),
                agent_token: Some(token),
                auth_token: None,
            },
            ValidatedToken::Auth(token) => Self {
                key: token.cnf_key().clone(),
                level: Level::Authorized,
                agent: token.agent().cloned(),
                delegate: token.claims().agent_delegate.clone(),
                agent_token: None,
                auth_token: Some(token),
            },
        }
    }
}

/// Verifies a request as E§10.7 describes, at time `now` (Unix seconds).
pub fn verify_request<H, D>(
    request: &Request<'_, H>,
    config: &VerifierConfig,
    directory: &D,
    now: u64,
) -> Result<VerifiedRequest, Rejection>
where
    H: HeaderSource + ?Sized,
    D: KeyDirectory + ?Sized,
{
    verify_request_cached(request, config, directory, &NoTokenCache, now)
}

/// [`verify_request`], reusing tokens validated before through `cache`.
pub fn verify_request_cached<H, D, C>(
    request: &Request<'_, H>,
    config: &VerifierConfig,
    directory: &D,
    cache: &C,
    now: u64,
) -> Result<VerifiedRequest, Rejection>
where
    H: HeaderSource + ?Sized,
    D: KeyDirectory + ?Sized,
    C: TokenCache + ?Sized,
{
    Presented::read(request, config, cache, now)?.verify(config, directory, cache, now)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::error::ErrorCode;
    use crate::httpsig::SignOptions;
    use crate::ids::{Label, Scope};
    use crate::keys::{Algorithm, SigningKey};
    use crate::signature_key::{SignatureKeyField, Syntax};
    use crate::tokens::agent_token::AgentTokenBuilder;
    use crate::tokens::auth_token::AuthTokenBuilder;
    use crate::tokens::resource_token::ResourceTokenBuilder;

    const NOW: u64 = 1_767_225_600;

    fn origin(text: &str) -> Origin {
        Origin::parse(text, OriginMode::Production).unwrap()
    }

    fn kid(text: &str) -> Kid {
        Kid::new(text.to_owned()).unwrap()
    }

    /// An in-memory directory of published keys.
    #[derive(Default)]
    struct Directory(HashMap<(KeyOwner, String, String), PublicKey>);

    impl Directory {
        fn publish(&mut self, owner: KeyOwner, at: &Origin, kid: &str, key: &PublicKey) {
            self.0
                .insert((owner, at.as_str().to_owned(), kid.to_owned()), key.clone());
        }
    }

    impl KeyDirectory for Directory {
        fn key(
            &self,
            owner: KeyOwner,
            at: &Origin,
            kid: &Kid,
        ) -> Result<PublicKey, KeyLookupError> {
            self.0
                .get(&(owner, at.as_str().to_owned(), kid.as_str().to_owned()))
                .cloned()
                .ok_or_else(|| KeyLookupError::UnknownKid(kid.clone()))
        }
    }

    struct World {
        agent_server: SigningKey,
        delegate: SigningKey,
        auth_server: SigningKey,
        resource: SigningKey,
        directory: Directory,
        config: VerifierConfig,
    }

    fn world() -> World {
        let agent_server = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let delegate = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let auth_server = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let resource = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let mut directory = Directory::default();
        directory.publish(
            KeyOwner::Agent,
            &origin("https://agent.example"),
            "agent-1",
            agent_server.public_key(),
        );
        directory.publish(
            KeyOwner::AuthServer,
            &origin("https://auth.example"),
            "as-1",
            auth_server.public_key(),
        );
        let mut config = VerifierConfig::new(origin("https://resource.example"));
        config.trusted_auth_servers = vec![origin("https://auth.example")];
        World {
            agent_server,
            delegate,
            auth_server,
            resource,
            directory,
            config,
        }
    }

    /// Signs `GET /data?x=1` for resource.example with `key` and `field`.
    fn signed_get(key: &SigningKey, field: &SignatureKeyField) -> Vec<(String, String)> {
        let header = field.to_header_value(Syntax::Sk0).unwrap();
        let request = Request {
            method: "GET",
            authority: "resource.example",
            target: "/data?x=1",
            headers: &Vec::<(&str, &str)>::new(),
            body: None,
        };
        let signed = httpsig::sign(&request, &header, key, &SignOptions::new(NOW)).unwrap();
        signed
            .headers()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    /// `GET /data?x=1` with `headers`, as the verifier receives it.
    fn get(headers: &[(String, String)]) -> Request<'_, [(String, String)]> {
        Request {
            method: "GET",
            authority: "resource.example",
            target: "/data?x=1",
            headers,
            body: None,
        }
    }

    fn verify(world: &World, headers: &[(String, String)]) -> Result<VerifiedRequest, Rejection> {
        verify_request(&get(headers), &world.config, &world.directory, NOW)
    }

    fn code(rejection: &Rejection) -> ErrorCode {
        rejection.error.condition().wire().code
    }

    fn agent_token(world: &World, cnf: &PublicKey) -> String {
        AgentTokenBuilder::new(origin("https://agent.example"), "delegate-1", cnf.clone())
            .build(NOW as i64)
            .unwrap()
            .sign(&world.agent_server, &kid("agent-1"))
            .unwrap()
    }

    fn auth_token(world: &World, cnf: &PublicKey) -> String {
        AuthTokenBuilder::new(
            origin("https://auth.example"),
            origin("https://resource.example"),
            origin("https://agent.example"),
            cnf.clone(),
        )
        .agent_delegate("delegate-1")
        .scope(Scope::parse("data.read").unwrap())
        .build(NOW as i64)
        .unwrap()
        .sign(&world.auth_server, &kid("as-1"))
        .unwrap()
    }

    #[test]
    fn hwk_is_pseudonymous() {
        let w = world();
        let field = SignatureKeyField::hwk(Label::sig(), w.delegate.public_key());
        let verified = verify(&w, &signed_get(&w.delegate, &field)).unwrap();
        assert_eq!(verified.level(), Level::Pseudonymous);
        assert_eq!(verified.scheme(), Scheme::Hwk);
        assert_eq!(verified.thumbprint(), &w.delegate.public_key().thumbprint());
        assert_eq!(verified.agent(), None);
    }

    #[test]
    fn jwks_uri_agent_server_is_identified() {
        let w = world();
        let field = SignatureKeyField::jwks_uri(
            Label::sig(),
            &origin("https://agent.example"),
            AAUTH_AGENT_WELL_KNOWN,
            kid("agent-1"),
        );
        let verified = verify(&w, &signed_get(&w.agent_server, &field)).unwrap();
        assert_eq!(verified.level(), Level::Identified);
        assert_eq!(verified.agent(), Some(&origin("https://agent.example")));
        assert_eq!(verified.delegate(), None);
    }

    #[test]
    fn agent_token_delegate_is_identified_with_its_sub() {
        let w = world();
        let token = agent_token(&w, w.delegate.public_key());
        let field = SignatureKeyField::jwt(Label::sig(), token);
        let verified = verify(&w, &signed_get(&w.delegate, &field)).unwrap();
        assert_eq!(verified.level(), Level::Identified);
        assert_eq!(verified.agent(), Some(&origin("https://agent.example")));
        assert_eq!(verified.delegate(), Some("delegate-1"));
        assert!(verified.agent_token().is_some());
    }

    #[test]
    fn auth_token_is_authorized_with_agent_delegate_and_scope() {
        let w = world();
        let token = auth_token(&w, w.delegate.public_key());
        let field = SignatureKeyField::jwt(Label::sig(), token);
        let verified = verify(&w, &signed_get(&w.delegate, &field)).unwrap();
        assert_eq!(verified.level(), Level::Authorized);
        assert_eq!(verified.agent(), Some(&origin("https://agent.example")));
        assert_eq!(verified.delegate(), Some("delegate-1"));
        let scope = verified
            .auth_token
            .as_ref()
            .and_then(|t| t.scope().cloned());
        assert_eq!(scope, Some(Scope::parse("data.read").unwrap()));
    }

    #[test]
    fn signing_with_another_key_than_cnf_is_key_binding_failed() {
        // profile: P-SK-4; E§5.7 step 12, E§7.7 step 13.
        let w = world();
        let other = SigningKey::generate(Algorithm::Ed25519).unwrap();
        for token in [
            agent_token(&w, w.delegate.public_key()),
            auth_token(&w, w.delegate.public_key()),
        ] {
            let field = SignatureKeyField::jwt(Label::sig(), token);
            let rejection = verify(&w, &signed_get(&other, &field)).unwrap_err();
            assert_eq!(code(&rejection), ErrorCode::KeyBindingFailed);
            assert!(rejection.signature_base.is_some());
        }
    }

    #[test]
    fn authority_comes_from_the_configuration_not_the_request() {
        // profile: P-SIG-5; E§10.3.1.
        let w = world();
        let field = SignatureKeyField::hwk(Label::sig(), w.delegate.public_key());
        let headers = signed_get(&w.delegate, &field);
        let claimed = Request {
            method: "GET",
            authority: "attacker.example",
            target: "/data?x=1",
            headers: &headers,
            body: None,
        };
        assert!(verify_request(&claimed, &w.config, &w.directory, NOW).is_ok());

        let mut elsewhere = w.config.clone();
        elsewhere.authority = "other.example".to_owned();
        let rejection = verify_request(&claimed, &elsewhere, &w.directory, NOW).unwrap_err();
        assert_eq!(code(&rejection), ErrorCode::InvalidSignature);
    }

    #[test]
    fn hwk_signed_by_another_key_is_invalid_signature() {
        let w = world();
        let other = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let field = SignatureKeyField::hwk(Label::sig(), w.delegate.public_key());
        let rejection = verify(&w, &signed_get(&other, &field)).unwrap_err();
        assert_eq!(code(&rejection), ErrorCode::InvalidSignature);
        // profile: P-ERR-3 — the base is kept for dev-mode diagnostics.
        assert!(
            rejection
                .signature_base
                .as_deref()
                .is_some_and(|b| b.starts_with("\"@method\": GET\n"))
        );
    }

    #[test]
    fn only_aauth_agent_well_known_identifies_an_agent() {
        // profile: P-SK-3
        let w = world();
        let field = SignatureKeyField::jwks_uri(
            Label::sig(),
            &origin("https://agent.example"),
            "aauth-resource",
            kid("agent-1"),
        );
        let rejection = verify(&w, &signed_get(&w.agent_server, &field)).unwrap_err();
        assert!(matches!(
            rejection.error,
            VerifyError::UnsupportedWellKnown(_)
        ));
        assert_eq!(code(&rejection), ErrorCode::InvalidSignature);
    }

    #[test]
    fn jwks_uri_unknown_kid_is_invalid_signature() {
        let w = world();
        let field = SignatureKeyField::jwks_uri(
            Label::sig(),
            &origin("https://agent.example"),
            AAUTH_AGENT_WELL_KNOWN,
            kid("agent-2"),
        );
        let rejection = verify(&w, &signed_get(&w.agent_server, &field)).unwrap_err();
        assert!(matches!(rejection.error, VerifyError::AgentKey(_)));
        assert_eq!(code(&rejection), ErrorCode::InvalidSignature);
    }

    #[test]
    fn a_resource_token_in_signature_key_is_an_invalid_auth_token() {
        // profile: P-ERR-1 ("a resource token presented as one").
        let w = world();
        let token = ResourceTokenBuilder::new(
            origin("https://resource.example"),
            origin("https://auth.example"),
            origin("https://agent.example"),
            w.delegate.public_key(),
            Scope::parse("data.read").unwrap(),
        )
        .build(NOW as i64)
        .unwrap()
        .sign(&w.resource, &kid("rs-1"))
        .unwrap();
        let field = SignatureKeyField::jwt(Label::sig(), token);
        let rejection = verify(&w, &signed_get(&w.delegate, &field)).unwrap_err();
        assert_eq!(rejection.error, VerifyError::ResourceTokenAsKey);
        assert_eq!(code(&rejection), ErrorCode::InvalidAuthToken);
    }

    #[test]
    fn an_auth_token_from_an_untrusted_issuer_needs_no_key_and_is_refused() {
        // profile: P-TOK-6 — nothing is fetched for an untrusted issuer.
        let mut w = world();
        w.config.trusted_auth_servers.clear();
        let token = auth_token(&w, w.delegate.public_key());
        let headers = signed_get(&w.delegate, &SignatureKeyField::jwt(Label::sig(), token));
        let request = get(&headers);
        let presented = Presented::read(&request, &w.config, &NoTokenCache, NOW).unwrap();
        assert_eq!(presented.key_need(), KeyNeed::None);
        let rejection = verify(&w, &headers).unwrap_err();
        assert_eq!(code(&rejection), ErrorCode::InvalidAuthToken);
    }

    #[test]
    fn key_need_names_the_party_to_fetch() {
        let w = world();
        let cases = [
            (
                SignatureKeyField::hwk(Label::sig(), w.delegate.public_key()),
                KeyNeed::None,
            ),
            (
                SignatureKeyField::jwks_uri(
                    Label::sig(),
                    &origin("https://agent.example"),
                    AAUTH_AGENT_WELL_KNOWN,
                    kid("agent-1"),
                ),
                KeyNeed::Keys {
                    owner: KeyOwner::Agent,
                    origin: origin("https://agent.example"),
                    kid: kid("agent-1"),
                },
            ),
            (
                SignatureKeyField::jwt(Label::sig(), agent_token(&w, w.delegate.public_key())),
                KeyNeed::Keys {
                    owner: KeyOwner::Agent,
                    origin: origin("https://agent.example"),
                    kid: kid("agent-1"),
                },
            ),
            (
                SignatureKeyField::jwt(Label::sig(), auth_token(&w, w.delegate.public_key())),
                KeyNeed::Keys {
                    owner: KeyOwner::AuthServer,
                    origin: origin("https://auth.example"),
                    kid: kid("as-1"),
                },
            ),
        ];
        for (field, need) in cases {
            let headers = signed_get(&w.delegate, &field);
            let request = get(&headers);
            let presented = Presented::read(&request, &w.config, &NoTokenCache, NOW).unwrap();
            assert_eq!(presented.key_need(), need, "{field:?}");
        }
    }

    #[test]
    fn unsigned_and_half_signed_requests_are_told_apart() {
        let w = world();
        let rejection = verify(&w, &[]).unwrap_err();
        assert_eq!(rejection.error, VerifyError::Unsigned);
        let field = SignatureKeyField::hwk(Label::sig(), w.delegate.public_key());
        let headers: Vec<(String, String)> = signed_get(&w.delegate, &field)
            .into_iter()
            .filter(|(name, _)| name != "Signature-Key")
            .collect();
        let rejection = verify(&w, &headers).unwrap_err();
        assert_eq!(rejection.error, VerifyError::MissingSignatureKey);
        assert_eq!(code(&rejection), ErrorCode::InvalidSignature);
    }

    #[test]
    fn an_unparsable_token_gets_the_code_of_the_kind_it_declares() {
        // profile: P-ERR-1 — an auth token failing any E§7.7 step (even step
        // 1: JWE, alg none) is invalid_auth_token; likewise for agent tokens.
        let w = world();
        let segment = |json: &str| crate::b64::url_encode(json);
        let cases = [
            (
                format!(
                    "{}.{}.",
                    segment(r#"{"alg":"none","typ":"agent+jwt"}"#),
                    segment("{}")
                ),
                ErrorCode::InvalidAgentToken,
            ),
            (
                format!(
                    "{}.a.b.c.d",
                    segment(r#"{"alg":"ECDH-ES","enc":"A256GCM","typ":"auth+jwt"}"#)
                ),
                ErrorCode::InvalidAuthToken,
            ),
            (
                format!(
                    "{}.{}.",
                    segment(r#"{"alg":"none","typ":"resource+jwt"}"#),
                    segment("{}")
                ),
                ErrorCode::InvalidAuthToken,
            ),
            (
                format!(
                    "{}.{}.",
                    segment(r#"{"alg":"none","typ":"JWT"}"#),
                    segment("{}")
                ),
                ErrorCode::InvalidSignature,
            ),
            ("not-a-jwt".to_owned(), ErrorCode::InvalidSignature),
        ];
        for (token, expected) in cases {
            let field = SignatureKeyField::jwt(Label::sig(), token.clone());
            let rejection = verify(&w, &signed_get(&w.delegate, &field)).unwrap_err();
            assert_eq!(code(&rejection), expected, "{token}: {}", rejection.error);
        }
    }

    /// A token cache in a cell, counting what it serves.
    #[derive(Default)]
    struct Cache(std::cell::RefCell<HashMap<String, ValidatedToken>>);

    impl TokenCache for Cache {
        fn get(&self, jwt: &str) -> Option<ValidatedToken> {
            self.0.borrow().get(jwt).cloned()
        }
        fn insert(&self, jwt: &str, token: &ValidatedToken) {
            self.0.borrow_mut().insert(jwt.to_owned(), token.clone());
        }
    }

    /// A directory that counts lookups.
    struct Counting<'a>(&'a Directory, std::cell::Cell<usize>);

    impl KeyDirectory for Counting<'_> {
        fn key(
            &self,
            owner: KeyOwner,
            at: &Origin,
            kid: &Kid,
        ) -> Result<PublicKey, KeyLookupError> {
            self.1.set(self.1.get() + 1);
            self.0.key(owner, at, kid)
        }
    }

    #[test]
    fn a_cached_token_is_validated_once_then_only_for_expiry() {
        let w = world();
        let token = auth_token(&w, w.delegate.public_key());
        let headers = signed_get(&w.delegate, &SignatureKeyField::jwt(Label::sig(), token));
        let request = get(&headers);
        let cache = Cache::default();
        let directory = Counting(&w.directory, std::cell::Cell::new(0));
        for _ in 0..3 {
            let verified =
                verify_request_cached(&request, &w.config, &directory, &cache, NOW).unwrap();
            assert_eq!(verified.level(), Level::Authorized);
        }
        assert_eq!(directory.1.get(), 1, "validated once");

        // Past `exp` the cached copy is not used: validation runs and fails.
        let exp = u64::try_from(cache.get(headers_jwt(&headers)).unwrap().exp()).unwrap();
        let mut late = w.config.clone();
        late.http.max_skew = u64::MAX / 4;
        let rejection =
            verify_request_cached(&request, &late, &directory, &cache, exp).unwrap_err();
        assert!(
            matches!(
                rejection.error,
                VerifyError::AuthToken(AuthTokenError::Expired { .. })
            ),
            "{:?}",
            rejection.error
        );
    }

    fn headers_jwt(headers: &[(String, String)]) -> &str {
        let value = &headers
            .iter()
            .find(|(n, _)| n == "Signature-Key")
            .unwrap()
            .1;
        value
            .strip_prefix("sig=jwt;jwt=\"")
            .and_then(|v| v.strip_suffix('"'))
            .unwrap()
    }

    #[test]
    fn an_expired_but_genuine_auth_token_names_its_holder() {
        // profile: P-ERR-1 — invalid_auth_token "+ fresh resource token when
        // the signature verified with a trusted key".
        let w = world();
        let token = auth_token(&w, w.delegate.public_key());
        let field = SignatureKeyField::jwt(Label::sig(), token);
        let headers = signed_get(&w.delegate, &field);
        let later = NOW + 601;
        let mut config = w.config.clone();
        config.http.max_skew = 3600;
        let request = get(&headers);
        let rejection = verify_request(&request, &config, &w.directory, later).unwrap_err();
        assert_eq!(code(&rejection), ErrorCode::InvalidAuthToken);
        assert_eq!(
            rejection.expired_token_holder.as_deref(),
            Some(&ExpiredTokenHolder {
                agent: origin("https://agent.example"),
                key: w.delegate.public_key().clone(),
            })
        );

        // Signed by another key: no holder, nothing to mint for.
        let other = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let forged = signed_get(&other, &field);
        let rejection = verify_request(&get(&forged), &config, &w.directory, later).unwrap_err();
        assert_eq!(code(&rejection), ErrorCode::InvalidAuthToken);
        assert!(rejection.expired_token_holder.is_none());
    }

    #[test]
    fn a_token_read_unexpired_that_expires_before_the_keys_arrive_is_expired_but_genuine() {
        // The cached token is carried from read to verify (one lookup); if
        // its `exp` passes in between, it is refused as expired, with its
        // holder, and nothing is validated again.
        let w = world();
        let token = auth_token(&w, w.delegate.public_key());
        let headers = signed_get(&w.delegate, &SignatureKeyField::jwt(Label::sig(), token));
        let mut config = w.config.clone();
        config.http.max_skew = 3_600;
        let request = get(&headers);
        let cache = Cache::default();
        verify_request_cached(&request, &config, &w.directory, &cache, NOW).unwrap();
        let exp = u64::try_from(cache.get(headers_jwt(&headers)).unwrap().exp()).unwrap();

        let presented = Presented::read(&request, &config, &cache, exp - 1).unwrap();
        assert_eq!(presented.key_need(), KeyNeed::None, "served from the cache");
        let directory = Counting(&w.directory, std::cell::Cell::new(0));
        let rejection = presented
            .verify(&config, &directory, &cache, exp)
            .unwrap_err();
        assert_eq!(directory.1.get(), 0);
        assert!(
            matches!(
                rejection.error,
                VerifyError::AuthToken(AuthTokenError::Expired { .. })
            ),
            "{:?}",
            rejection.error
        );
        assert_eq!(
            rejection.expired_token_holder.as_deref(),
            Some(&ExpiredTokenHolder {
                agent: origin("https://agent.example"),
                key: w.delegate.public_key().clone(),
            })
        );
    }

    #[test]
    fn a_token_found_in_the_cache_is_carried_even_if_the_cache_forgets_it() {
        // Review finding 2: the request was judged to need no keys from one
        // cache lookup and resolved by a second; an eviction between the two
        // refused a valid request against an empty directory.
        let w = world();
        let token = auth_token(&w, w.delegate.public_key());
        let headers = signed_get(&w.delegate, &SignatureKeyField::jwt(Label::sig(), token));
        let request = get(&headers);
        let cache = Cache::default();
        verify_request_cached(&request, &w.config, &w.directory, &cache, NOW).unwrap();

        let presented = Presented::read(&request, &w.config, &cache, NOW).unwrap();
        assert_eq!(presented.key_need(), KeyNeed::None);
        cache.0.borrow_mut().clear();
        let nothing = Directory::default();
        let verified = presented.verify(&w.config, &nothing, &cache, NOW).unwrap();
        assert_eq!(verified.level(), Level::Authorized);
    }

    #[test]
    fn an_expired_token_that_also_fails_a_later_step_is_expired_and_not_genuine() {
        // E§7.7 step 8 comes before step 10: the expiry is what is reported,
        // and a token for another audience is not genuine here.
        let w = world();
        let token = AuthTokenBuilder::new(
            origin("https://auth.example"),
            origin("https://elsewhere.example"),
            origin("https://agent.example"),
            w.delegate.public_key().clone(),
        )
        .build(NOW as i64)
        .unwrap()
        .sign(&w.auth_server, &kid("as-1"))
        .unwrap();
        let headers = signed_get(&w.delegate, &SignatureKeyField::jwt(Label::sig(), token));
        let mut config = w.config.clone();
        config.http.max_skew = 3_600;
        let request = get(&headers);
        let rejection = verify_request(&request, &config, &w.directory, NOW + 3_000).unwrap_err();
        assert!(
            matches!(
                rejection.error,
                VerifyError::AuthToken(AuthTokenError::Expired { .. })
            ),
            "{:?}",
            rejection.error
        );
        assert!(rejection.expired_token_holder.is_none());
        // Unexpired, the audience is what fails.
        let rejection = verify_request(&request, &config, &w.directory, NOW).unwrap_err();
        assert!(
            matches!(
                rejection.error,
                VerifyError::AuthToken(AuthTokenError::Audience(_))
            ),
            "{:?}",
            rejection.error
        );
    }

    #[test]
    fn where_auth_tokens_are_refused_the_signature_is_checked_first_and_nothing_is_fetched() {
        // profile: P-AS-1 — an auth server's token endpoint never takes an
        // auth token as its caller; P-ERR-1: a valid signature at a level the
        // endpoint does not take is insufficient_auth_level, and a bad one is
        // reported as a signature fault, with the base.
        let mut w = world();
        w.config.accept_auth_tokens = false;
        let token = auth_token(&w, w.delegate.public_key());
        let field = SignatureKeyField::jwt(Label::sig(), token);
        let headers = signed_get(&w.delegate, &field);
        let request = get(&headers);
        let presented = Presented::read(&request, &w.config, &NoTokenCache, NOW).unwrap();
        assert_eq!(presented.key_need(), KeyNeed::None);
        let directory = Counting(&w.directory, std::cell::Cell::new(0));
        let rejection = presented
            .verify(&w.config, &directory, &NoTokenCache, NOW)
            .unwrap_err();
        assert_eq!(directory.1.get(), 0, "no key is looked up");
        assert_eq!(rejection.error, VerifyError::AuthTokenRefused);
        assert_eq!(code(&rejection), ErrorCode::InsufficientAuthLevel);
        assert!(rejection.signature_base.is_some());

        // Signed by another key than the one the token names.
        let other = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let rejection = verify(&w, &signed_get(&other, &field)).unwrap_err();
        assert_eq!(code(&rejection), ErrorCode::KeyBindingFailed);
        assert!(rejection.signature_base.is_some());

        // A token that names no key is an invalid auth token.
        let segment = |json: &str| crate::b64::url_encode(json.as_bytes());
        let no_cnf = format!(
            "{}.{}.{}",
            segment(r#"{"alg":"EdDSA","typ":"auth+jwt","kid":"as-1"}"#),
            segment(r#"{"iss":"https://auth.example"}"#),
            segment("sig")
        );
        let field = SignatureKeyField::jwt(Label::sig(), no_cnf);
        let rejection = verify(&w, &signed_get(&w.delegate, &field)).unwrap_err();
        assert_eq!(code(&rejection), ErrorCode::InvalidAuthToken);
    }

    #[test]
    fn only_signatures_checked_with_a_published_key_invite_a_refetch() {
        // P-MD-3: a key replaced under its kid shows as one of these.
        assert!(VerifyError::Signature(HttpSigError::SignatureInvalid).failed_with_published_key());
        assert!(
            VerifyError::AgentToken(AgentTokenError::Signature(
                crate::jose::JwsError::BadSignature
            ))
            .failed_with_published_key()
        );
        assert!(
            VerifyError::AuthToken(AuthTokenError::Signature(
                crate::jose::JwsError::BadSignature
            ))
            .failed_with_published_key()
        );
        // The token's own cnf key, an expiry, or a missing key: no refetch helps.
        assert!(
            !VerifyError::KeyBinding(HttpSigError::SignatureInvalid).failed_with_published_key()
        );
        assert!(
            !VerifyError::AuthToken(AuthTokenError::Expired { exp: 0, now: 1 })
                .failed_with_published_key()
        );
        assert!(
            !VerifyError::AgentKey(KeyLookupError::UnknownKid(kid("k")))
                .failed_with_published_key()
        );
    }

    #[test]
    fn x509_is_reported_unsupported() {
        // profile: P-SK-5
        let w = world();
        let headers = vec![
            (
                "Signature-Key".to_owned(),
                r#"sig=x509;x5u="https://agent.example/cert.pem";x5t="bWcoon4QTVn8Q6xiY0ekMD6L8bNLMkuDV2KtvsFc1nM""#
                    .to_owned(),
            ),
            (
                "Signature-Input".to_owned(),
                format!(r#"sig=("@method" "@authority" "@path" "@query" "signature-key");created={NOW}"#),
            ),
            ("Signature".to_owned(), format!("sig=:{}:", crate::b64::std_encode([0u8; 64]))),
        ];
        let rejection = verify(&w, &headers).unwrap_err();
        assert_eq!(rejection.error, VerifyError::X509Unsupported);
    }

    #[test]
    fn every_error_maps_to_its_p_err_1_row() {
        // profile: P-ERR-1
        let rows = [
            (VerifyError::Unsigned, ErrorCode::InvalidSignature),
            (
                VerifyError::MissingSignatureKey,
                ErrorCode::InvalidSignature,
            ),
            (VerifyError::X509Unsupported, ErrorCode::InvalidSignature),
            (
                VerifyError::UnsupportedWellKnown("x".into()),
                ErrorCode::InvalidSignature,
            ),
            (VerifyError::ResourceTokenAsKey, ErrorCode::InvalidAuthToken),
            (
                VerifyError::AuthTokenRefused,
                ErrorCode::InsufficientAuthLevel,
            ),
            (
                VerifyError::KeyBinding(HttpSigError::SignatureInvalid),
                ErrorCode::KeyBindingFailed,
            ),
            (
                VerifyError::Signature(HttpSigError::SignatureInvalid),
                ErrorCode::InvalidSignature,
            ),
        ];
        for (error, code) in rows {
            assert_eq!(error.condition().wire().code, code, "{error:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn random_signature_headers_never_panic(
            key in "\\PC{0,300}",
            input in "\\PC{0,300}",
            sig in "\\PC{0,300}",
        ) {
            let w = world();
            let headers = vec![
                ("Signature-Key".to_owned(), key),
                ("Signature-Input".to_owned(), input),
                ("Signature".to_owned(), sig),
            ];
            let request = get(&headers);
            let _ = Presented::read(&request, &w.config, &NoTokenCache, NOW).map(|p| p.key_need());
            proptest::prop_assert!(verify(&w, &headers).is_err());
        }
    }
}
