//! # aauth-axum
//!
//! An axum service becomes an AAuth resource with a few lines:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use aauth_axum::{Caller, Guard, Need};
//! use aauth_http::runtime::ServerKey;
//! use aauth_protocol::ids::{Origin, OriginMode};
//! use axum::{Router, routing::get};
//!
//! async fn hello(caller: Caller) -> String {
//!     format!("hello, {}", caller.agent().map_or("stranger", |a| a.as_str()))
//! }
//!
//! let me = Origin::parse("https://notes.example", OriginMode::Production)?;
//! let auth_server = Origin::parse("https://auth.example", OriginMode::Production)?;
//! let guard = Guard::builder(me, auth_server, ServerKey::load_or_create("key.json".as_ref())?)
//!     .scope("notes.read", "Read your notes")
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/hello", get(hello).layer(guard.layer(Need::Identified)))
//!     .route("/notes", get(hello).layer(guard.layer(Need::scope("notes.read"))))
//!     .merge(guard.routes()); // metadata, key set, resource token endpoint
//! # let _ = app; Ok(()) }
//! ```
//!
//! [`Guard::layer`] verifies each request's signature (RFC 9421 with
//! `Signature-Key`, E§10), compares the level it reached with the route's
//! [`Need`] (E§4, P-CH-2), checks the auth token's scope (E§7.7 step 14),
//! and answers every shortfall itself: the P-ERR-1 error body and the
//! `Agent-Auth` challenge, with a resource token bound to the caller's key
//! when an auth token is needed (E§4.3, E§6). A request that passes reaches
//! the handler, which reads who called as a [`Caller`]. [`Guard::routes`]
//! serves `/.well-known/aauth-resource` (E§8.3), the key set, and
//! `POST /resource/token` (E§9.2.5).
//!
//! A `Nonce` is required on non-idempotent methods and checked against a
//! replay cache that fails closed (P-SIG-6); keys and tokens are fetched
//! and cached under the guards of P-MD-3.

#![forbid(unsafe_code)]

mod layer;
pub mod mcp;
mod routes;

use std::sync::Arc;

use aauth_http::discovery::Discovery;
use aauth_http::fetch::Fetcher;
use aauth_http::runtime::{ServerKey, StartError};
use aauth_http::server::{ErrorResponse, Rejected, RequestVerifier, unix_now};
use aauth_protocol::challenge::{AgentAuth, Level};
use aauth_protocol::error::{ChallengeKind, Condition};
use aauth_protocol::httpsig::{NonceRule, VerifyPolicy};
use aauth_protocol::ids::{Kid, Origin, OriginMode, Scope};
use aauth_protocol::jwk::PublicKey;
use aauth_protocol::keys::SigningKey;
use aauth_protocol::metadata::{HttpsUrl, ResourceMetadata, ScopeDescriptions};
use aauth_protocol::tokens::resource_token::ResourceTokenBuilder;
use aauth_protocol::verify::{VerifiedRequest, VerifierConfig};
use axum::http::{HeaderMap, request::Parts};

pub use layer::{Caller, NeedFn, RequireLayer, RequireService};
pub use routes::{JWKS_PATH, METADATA_PATH, RESOURCE_TOKEN_PATH};

/// What a route needs from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any verified signature (`hwk` or better, E§4.1).
    Signed,
    /// An identified agent (E§4.2).
    Identified,
    /// An auth token granting `scope` (E§4.3, E§7.7 step 14).
    Authorized {
        /// The scope the operation needs.
        scope: &'static str,
    },
}

impl Need {
    /// An auth token granting `scope`.
    pub fn scope(scope: &'static str) -> Self {
        Self::Authorized { scope }
    }

    /// The level it stands for (P-CH-2).
    pub fn level(self) -> Level {
        match self {
            Self::Signed => Level::Pseudonymous,
            Self::Identified => Level::Identified,
            Self::Authorized { .. } => Level::Authorized,
        }
    }
}

/// Whether the request carries any of the signature headers. A request with
/// none is unsigned; one with some is judged by its signature (P-ERR-1: a
/// present-but-invalid signature is never treated as unsigned).
pub fn is_signed(headers: &HeaderMap) -> bool {
    ["signature", "signature-input", "signature-key"]
        .iter()
        .any(|name| headers.contains_key(*name))
}

/// The level's name in responses.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Pseudonymous => "pseudonymous",
        Level::Identified => "identified",
        Level::Authorized => "authorized",
    }
}

/// Everything a [`Guard`] is made of, for a resource that builds its own
/// verifier ([`Guard::builder`] builds one with this profile's defaults).
#[derive(Debug)]
pub struct GuardParts {
    /// The request verifier, configured for this resource.
    pub verifier: RequestVerifier,
    /// The resource's identifier (`iss` of its resource tokens).
    pub identifier: Origin,
    /// The one auth server whose tokens are accepted (`aud` of its
    /// resource tokens).
    pub auth_server: Origin,
    /// The signing key's `kid`.
    pub kid: Kid,
    /// The key resource tokens are signed with.
    pub key: Arc<SigningKey>,
    /// Lifetime of resource tokens, seconds (P-TOK-3).
    pub resource_token_lifetime: u32,
    /// The scopes this resource supports, with their descriptions (E§8.3).
    pub scopes: ScopeDescriptions,
    /// `/.well-known/aauth-resource`.
    pub metadata: ResourceMetadata,
    /// The key set at `jwks_uri`.
    pub jwks: serde_json::Value,
    /// The largest body a protected route reads, bytes (P-ERR-1).
    pub max_body: usize,
}

/// The decisions of an AAuth resource: verify, compare, challenge, mint.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Guard(Arc<GuardParts>);

impl Guard {
    /// A guard over `parts`.
    pub fn new(parts: GuardParts) -> Self {
        Self(Arc::new(parts))
    }

    /// A guard for the resource `identifier`, trusting `auth_server`, with
    /// this profile's defaults (see [`GuardBuilder`]).
    pub fn builder(identifier: Origin, auth_server: Origin, key: ServerKey) -> GuardBuilder {
        GuardBuilder {
            identifier,
            auth_server,
            key,
            dev: false,
            lenient_base64: false,
            scopes: Vec::new(),
            name: None,
            resource_token_lifetime: 300,
            max_body: 1024 * 1024,
        }
    }

    /// The verifier.
    pub fn verifier(&self) -> &RequestVerifier {
        &self.0.verifier
    }

    /// The resource's identifier.
    pub fn identifier(&self) -> &Origin {
        &self.0.identifier
    }

    /// The trusted auth server.
    pub fn auth_server(&self) -> &Origin {
        &self.0.auth_server
    }

    /// The supported scopes.
    pub fn scopes(&self) -> &ScopeDescriptions {
        &self.0.scopes
    }

    /// The metadata document.
    pub fn metadata(&self) -> &ResourceMetadata {
        &self.0.metadata
    }

    /// The key set.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.0.jwks
    }

    /// Lifetime of resource tokens, seconds.
    pub fn resource_token_lifetime(&self) -> u32 {
        self.0.resource_token_lifetime
    }

    /// The largest body a protected route reads.
    pub fn max_body(&self) -> usize {
        self.0.max_body
    }

    /// Verifies the request's signature; a failure is answered for a route
    /// needing `need`.
    pub async fn verify(
        &self,
        parts: &Parts,
        body: &[u8],
        need: Need,
    ) -> Result<VerifiedRequest, ErrorResponse> {
        self.0
            .verifier
            .verify(parts, body)
            .await
            .map_err(|rejected| self.rejection(rejected, need))
    }

    /// Verifies the request and checks it meets `need`.
    pub async fn require(
        &self,
        parts: &Parts,
        body: &[u8],
        need: Need,
    ) -> Result<VerifiedRequest, ErrorResponse> {
        let verified = self.verify(parts, body, need).await?;
        self.check(&verified, need)?;
        Ok(verified)
    }

    /// The level and scope checks for a verified request.
    pub fn check(&self, verified: &VerifiedRequest, need: Need) -> Result<(), ErrorResponse> {
        let level = verified.level();
        if !level.satisfies(need.level()) {
            let error = ErrorResponse::new(
                Condition::LevelTooLow,
                format!(
                    "this endpoint needs the {} level; the request is {}",
                    level_name(need.level()),
                    level_name(level)
                ),
            );
            let challenge = match (need, level) {
                // P-CH-3: "A request signed only with hwk to an endpoint
                // needing authorization gets the identity challenge first (a
                // resource token needs an agent)".
                (_, Level::Pseudonymous) => AgentAuth::identity(),
                (Need::Authorized { scope }, _) => self.auth_token_challenge(verified, scope),
                (Need::Signed | Need::Identified, _) => AgentAuth::new(need.level()),
            };
            return Err(error.with_challenge(challenge));
        }
        if let Need::Authorized { scope } = need {
            // E§7.7 step 14: "Verify the scope claim (if present) authorizes
            // the requested operation". No scope claim authorizes no operation.
            let granted = verified
                .auth_token()
                .and_then(|token| token.scope())
                .is_some_and(|granted| granted.contains(scope));
            if !granted {
                return Err(ErrorResponse::new(
                    Condition::ScopeInsufficient,
                    format!("the auth token does not grant the scope {scope}"),
                )
                .with_challenge(self.auth_token_challenge(verified, scope)));
            }
        }
        Ok(())
    }

    /// The error for a failed verification, with the challenge P-ERR-1's last
    /// column names. A resource token only for an auth token that was genuine
    /// but expired, on a request its key signed ("when the signature verified
    /// with a trusted key"); never otherwise (P-ERR-4).
    fn rejection(&self, rejected: Rejected, need: Need) -> ErrorResponse {
        let challenge = match rejected.condition.wire().challenge {
            ChallengeKind::None | ChallengeKind::UserInteraction => None,
            ChallengeKind::LevelRequired | ChallengeKind::NextLevel => {
                Some(AgentAuth::new(need.level()))
            }
            // An invalid auth token: ask for a (valid) auth token.
            ChallengeKind::AuthToken => Some(match (&rejected.expired_token_holder, need) {
                (Some(holder), Need::Authorized { scope }) => {
                    self.auth_token_challenge_for(&holder.agent, &holder.key, scope)
                }
                _ => AgentAuth::new(Level::Authorized),
            }),
            ChallengeKind::Identity => Some(AgentAuth::identity()),
        };
        let error = rejected.into_error();
        match challenge {
            Some(challenge) => error.with_challenge(challenge),
            None => error,
        }
    }

    /// Mints a resource token for `scope`, bound to the verified agent and
    /// the key that signed this request (P-TOK-3: `agent_jkt`). `None` when
    /// the request names no agent (P-CH-4).
    pub fn mint_resource_token(
        &self,
        verified: &VerifiedRequest,
        scope: Scope,
    ) -> Result<Option<String>, String> {
        let Some(agent) = verified.agent() else {
            return Ok(None);
        };
        self.mint_for(agent, verified.key(), scope).map(Some)
    }

    /// Mints a resource token for `scope`, for `agent` signing with `key`.
    fn mint_for(&self, agent: &Origin, key: &PublicKey, scope: Scope) -> Result<String, String> {
        let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        let claims = ResourceTokenBuilder::new(
            self.0.identifier.clone(),
            self.0.auth_server.clone(),
            agent.clone(),
            key,
            scope,
        )
        .lifetime_secs(self.0.resource_token_lifetime)
        .build(now)
        .map_err(|e| e.to_string())?;
        claims
            .sign(&self.0.key, &self.0.kid)
            .map_err(|e| e.to_string())
    }

    /// `httpsig;auth-token;resource_token="…";auth_server="…"` for `scope`
    /// (E§4.3). Without an agent (or if minting fails, which is logged) the
    /// bare `httpsig;auth-token`.
    pub fn auth_token_challenge(&self, verified: &VerifiedRequest, scope: &str) -> AgentAuth {
        match verified.agent() {
            Some(agent) => self.auth_token_challenge_for(agent, verified.key(), scope),
            None => AgentAuth::new(Level::Authorized),
        }
    }

    /// `httpsig;auth-token;resource_token="…";auth_server="…"` for `agent`
    /// signing with `key`; the bare challenge if minting fails (logged).
    fn auth_token_challenge_for(&self, agent: &Origin, key: &PublicKey, scope: &str) -> AgentAuth {
        let bare = AgentAuth::new(Level::Authorized);
        let scope = match Scope::parse(scope) {
            Ok(scope) => scope,
            Err(error) => {
                tracing::error!(%error, scope, "cannot express the scope");
                return bare;
            }
        };
        match self.mint_for(agent, key, scope) {
            Ok(token) => {
                AgentAuth::auth_token(&token, &self.0.auth_server).unwrap_or_else(|error| {
                    tracing::error!(%error, "cannot put the resource token in Agent-Auth");
                    bare
                })
            }
            Err(error) => {
                tracing::error!(%error, "cannot mint a resource token");
                bare
            }
        }
    }
}

/// A [`Guard`] with this profile's defaults: production identifiers
/// (`https` only), a `Nonce` required on non-idempotent methods (P-SIG-6),
/// 60 s of clock skew (P-SIG-2), strict base64 (P-SIG-7), resource tokens
/// of 5 minutes (P-TOK-3), bodies up to 1 MiB.
#[derive(Debug)]
pub struct GuardBuilder {
    identifier: Origin,
    auth_server: Origin,
    key: ServerKey,
    dev: bool,
    lenient_base64: bool,
    scopes: Vec<(String, String)>,
    name: Option<String>,
    resource_token_lifetime: u32,
    max_body: usize,
}

impl GuardBuilder {
    /// Also accept base64url and unpadded `Signature` values, as some early
    /// peers write them (P-SIG-7; off by default).
    #[must_use]
    pub fn lenient_base64(mut self, lenient: bool) -> Self {
        self.lenient_base64 = lenient;
        self
    }

    /// Dev mode: loopback `http` identifiers for this resource and its
    /// peers, and signature bases in error bodies. Never expose it.
    #[must_use]
    pub fn dev(mut self, dev: bool) -> Self {
        self.dev = dev;
        self
    }

    /// A scope this resource supports, with its description for consent
    /// pages (E§8.3), in order.
    #[must_use]
    pub fn scope(mut self, name: &str, description: &str) -> Self {
        self.scopes.push((name.to_owned(), description.to_owned()));
        self
    }

    /// The name consent pages show beside the identifier (an extension of
    /// this profile; peers ignore it).
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Lifetime of resource tokens, seconds.
    #[must_use]
    pub fn resource_token_lifetime(mut self, seconds: u32) -> Self {
        self.resource_token_lifetime = seconds;
        self
    }

    /// The largest body a protected route reads, bytes.
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The guard, with its verifier and documents.
    pub fn build(self) -> Result<Guard, StartError> {
        let mode = if self.dev {
            OriginMode::Dev
        } else {
            OriginMode::Production
        };
        // Identifiers given in another mode are refused here, not later.
        for origin in [&self.identifier, &self.auth_server] {
            Origin::parse(origin.as_str(), mode)
                .map_err(|e| StartError::Config(format!("{origin}: {e}")))?;
        }
        let fetcher = Fetcher::new(mode).map_err(|e| StartError::Config(e.to_string()))?;
        let mut config = VerifierConfig::new(self.identifier.clone());
        config.trusted_auth_servers = vec![self.auth_server.clone()];
        config.origin_mode = mode;
        config.http = VerifyPolicy {
            require_nonce: NonceRule::NonIdempotent,
            lenient_base64: self.lenient_base64,
            ..VerifyPolicy::default()
        };
        let verifier = RequestVerifier::new(config, Discovery::new(fetcher, mode), self.dev);
        let scopes = ScopeDescriptions::new(self.scopes);
        let url = |path: &str| {
            HttpsUrl::from_origin(&self.identifier, path)
                .map_err(|e| StartError::Config(format!("{path}: {e}")))
        };
        let metadata = ResourceMetadata {
            resource: self.identifier.clone(),
            jwks_uri: url(JWKS_PATH)?,
            resource_token_endpoint: Some(url(RESOURCE_TOKEN_PATH)?),
            supported_scopes: Some(scopes.iter().map(|(name, _)| name.to_owned()).collect()),
            scope_descriptions: Some(scopes.clone()),
            additional_signature_components: None,
            name: self.name,
        };
        let jwks = self.key.jwks();
        let ServerKey { kid, key } = self.key;
        Ok(Guard::new(GuardParts {
            verifier,
            identifier: self.identifier,
            auth_server: self.auth_server,
            kid,
            key: Arc::new(key),
            resource_token_lifetime: self.resource_token_lifetime,
            scopes,
            metadata,
            jwks,
            max_body: self.max_body,
        }))
    }
}
