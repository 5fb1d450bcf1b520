//! # aauth-resource
//!
//! An AAuth resource (E§3, E§4, E§9): it verifies every request's HTTP
//! Message Signature (E§10.7), answers with the progressive `Agent-Auth`
//! challenges of E§4, mints resource tokens (E§6, E§9.2.5) for the one auth
//! server it trusts, accepts that server's auth tokens (E§7.7), and serves a
//! small notes API as its protected data.
//!
//! ```text
//! request ──read_body (max_body: 413)──▶ RequestVerifier (E§10.7, P-SIG-5/6)
//!    │ unsigned (GET /public only)           │ signature failed → 401 + level challenge,
//!    ▼                                       │   never a resource token (P-ERR-4)
//!  rate tier by client address               ▼
//!                                      VerifiedRequest { level, agent, key, auth token }
//!                                            │
//!              level too low ◀───────────────┤ (P-CH-2)
//!   hwk → 401 httpsig;identity (P-CH-3)      │
//!   identified → 401 httpsig;auth-token;     │ scope missing → 403 insufficient_scope
//!     resource_token=…;auth_server=…         │   + resource token for the scope
//!                                            ▼
//!                                         handler
//! ```
//!
//! ## Endpoints
//!
//! | endpoint | needs | answer |
//! |---|---|---|
//! | `GET /.well-known/aauth-resource` | — | metadata (E§8.3) |
//! | `GET /.well-known/aauth-agent` | — | itself as an agent (E§8.1, P-MD-4) |
//! | `GET /.well-known/jwks.json` | — | the resource's key set |
//! | `GET /public` | — | 200, or 429 per level (E§4.5) |
//! | `GET /whoami` | identified | who signed the request |
//! | `POST /resource/token` | identified, form `scope` | a resource token (E§9.2.5) |
//! | `GET /data` | auth token with `data.read` | the owner's notes |
//! | `POST /data` | auth token with `data.write` | stores a note |
//! | `GET /chain` | auth token with `chain.read` | who acts for whom, and the downstream's answer |
//! | `GET /interaction` | a session from a challenge | the user, on to the next hop (P-UI-2) |
//! | `GET /interaction/callback` | the session's cookie | the user, back to the agent (P-UI-2) |
//!
//! ## Running it
//!
//! ```text
//! aauth-resource serve --dev --auth-server http://127.0.0.1:PORT
//!     [--config FILE] [--listen ADDR] [--public-url URL] [--state-dir DIR]
//!     [--key-file FILE] [--require-nonce BOOL] [--lenient-base64]
//!     [--resource-token-lifetime SECS] [--rate-window SECS]
//!     [--rate-unsigned N] [--rate-pseudonymous N] [--rate-identified N]
//!     [--rate-authorized N] [--downstream URL] [--downstream-auth-server URL]
//!     [--downstream-compat strict|py-early] [--header-timeout SECS]
//!     [--max-connections N] [-v]
//! ```
//!
//! It prints one line, `listening url=…`, on standard output once it
//! accepts requests; logs go to standard error. The key is created in the
//! state directory on first start. The configuration file is described in
//! [`config`]; flags override it.
//!
//! ## Notes are kept in memory
//!
//! The notes behind `/data` live in process memory ([`notes`]): **they are
//! lost on restart.** They belong to the auth token's user (`sub`) or, for an
//! autonomous agent (no `sub`), to the agent.
//!
//! ## Acting downstream (E§3.9, P-AS-7, P-MD-4)
//!
//! The resource is also an agent: `/.well-known/aauth-agent` names its own
//! identifier and the same `jwks_uri`, so it can sign as itself. With a
//! `downstream` URL configured (`--downstream URL`), `GET /chain` calls it
//! signed as itself; on its `Agent-Auth` challenge it exchanges the
//! caller's auth token at the auth server the challenge names
//! (`request_type=exchange`, [`downstream`]), retries once with the new
//! token, and nests the downstream's JSON in its own answer.
//!
//! When the user is needed — the auth server answers the exchange with
//! `interaction_required`, or the downstream itself asks for the user — the
//! caller gets 401 `interaction_required` with a `user_interaction` URL on
//! this resource, and [`interaction`] takes the user through the next hop
//! and back (P-UI-1..3). A downstream (or its auth server) that does not
//! answer in time is 504 `temporarily_unavailable`; any other failure of
//! the chain behind it is 502 `server_error`. Both name the failing hop in
//! this resource's words; the peers' addresses and answers go to its log.
//!
//! ## Rate tiers
//!
//! Only `GET /public` is rate limited, with a fixed window per level
//! ([`rate`]): unsigned requests per client address (the TCP peer: behind a
//! proxy every client shares one address), pseudonymous ones per key
//! thumbprint, identified and authorized ones per agent.
#![forbid(unsafe_code)]

pub mod caller;
pub mod config;
pub mod downstream;
pub mod endpoints;
pub mod interaction;
pub mod notes;
pub mod rate;

use std::sync::Arc;

use aauth_axum::{Guard, GuardParts};
use aauth_http::discovery::Discovery;
use aauth_http::fetch::Fetcher;
use aauth_http::runtime::{ServerKey, StartError};
use aauth_http::server::RequestVerifier;
use aauth_protocol::httpsig::{NonceRule, VerifyPolicy};
use aauth_protocol::ids::OriginMode;
use aauth_protocol::metadata::{AgentMetadata, HttpsUrl, RedirectUri, ResourceMetadata};
use aauth_protocol::verify::VerifierConfig;
use axum::Router;
use axum::routing::get;

pub use config::{Config, RateLimits, Settings};

use crate::downstream::Downstream;
use crate::interaction::{CALLBACK_PATH, INTERACTION_PATH, Interactions};
use crate::notes::Notes;
use crate::rate::RateLimiter;

pub use aauth_axum::JWKS_PATH;
pub use aauth_axum::RESOURCE_TOKEN_PATH;

/// Everything a running resource shares between requests.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    settings: Settings,
    /// Verification, levels, challenges, resource tokens, and the metadata,
    /// key set and resource token endpoint: the `aauth-axum` library.
    guard: Guard,
    limiter: RateLimiter,
    notes: Notes,
    agent_metadata: AgentMetadata,
    discovery: Discovery,
    downstream: Option<Downstream>,
    interactions: Interactions,
}

impl AppState {
    /// The state for `settings`, signing with `key`.
    pub fn new(settings: Settings, key: ServerKey) -> Result<Self, StartError> {
        let mode = if settings.dev {
            OriginMode::Dev
        } else {
            OriginMode::Production
        };
        let fetcher = Fetcher::new(mode).map_err(|e| StartError::Config(e.to_string()))?;
        let discovery = Discovery::new(fetcher, mode);
        let mut verifier_config = VerifierConfig::new(settings.identifier.clone());
        verifier_config.trusted_auth_servers = vec![settings.auth_server.clone()];
        verifier_config.origin_mode = mode;
        verifier_config.token_leeway_secs = settings.token_leeway;
        verifier_config.http = VerifyPolicy {
            max_skew: settings.max_skew,
            // P-SIG-6: "a resource requires it for non-idempotent methods
            // by default", with a switch for peers that never send one.
            require_nonce: if settings.require_nonce {
                NonceRule::NonIdempotent
            } else {
                NonceRule::Optional
            },
            lenient_base64: settings.lenient_base64,
            additional_components: Vec::new(),
        };
        let verifier = RequestVerifier::with_replay_limits(
            verifier_config,
            discovery.clone(),
            settings.dev,
            settings.replay_cache,
        );

        let url = |path: &str| {
            HttpsUrl::from_origin(&settings.identifier, path)
                .map_err(|e| StartError::Config(format!("{path}: {e}")))
        };
        let metadata = ResourceMetadata {
            resource: settings.identifier.clone(),
            jwks_uri: url(JWKS_PATH)?,
            resource_token_endpoint: Some(url(RESOURCE_TOKEN_PATH)?),
            supported_scopes: Some(
                settings
                    .scopes
                    .iter()
                    .map(|(name, _)| name.to_owned())
                    .collect(),
            ),
            scope_descriptions: Some(settings.scopes.clone()),
            additional_signature_components: None,
            name: Some(settings.name.clone()),
        };
        let interactions = Interactions::new(&settings.identifier, settings.dev)
            .map_err(|e| StartError::Config(format!("interaction URLs: {e}")))?;
        // The callback the user comes back to from the next hop (P-UI-2),
        // when there is one.
        let redirect_uris = settings
            .downstream
            .as_ref()
            .map(|_| {
                RedirectUri::parse(interactions.callback_url().as_str(), mode)
                    .map(|uri| vec![uri])
                    .map_err(|e| StartError::Config(format!("{CALLBACK_PATH}: {e}")))
            })
            .transpose()?;
        // profile: P-MD-4 — "publishes /.well-known/aauth-agent on the same
        // origin with the same jwks_uri (one key set for both roles)".
        let agent_metadata = AgentMetadata {
            agent: settings.identifier.clone(),
            jwks_uri: metadata.jwks_uri.clone(),
            redirect_uris,
            name: Some(settings.name.clone()),
            logo_uri: None,
            policy_uri: None,
            tos_uri: None,
            homepage: None,
        };
        let jwks = key.jwks();
        let ServerKey { kid, key } = key;
        let key = Arc::new(key);
        let downstream = settings
            .downstream
            .clone()
            .zip(settings.downstream_auth_server.clone())
            .map(|(url, auth_server)| {
                Downstream::new(
                    url,
                    auth_server,
                    settings.identifier.clone(),
                    kid.clone(),
                    key.clone(),
                    discovery.clone(),
                    settings.downstream_compat.style(),
                )
            })
            .transpose()
            .map_err(|e| StartError::Config(format!("downstream client: {e}")))?;
        let guard = Guard::new(GuardParts {
            verifier,
            identifier: settings.identifier.clone(),
            auth_server: settings.auth_server.clone(),
            kid,
            key,
            resource_token_lifetime: settings.resource_token_lifetime,
            scopes: settings.scopes.clone(),
            metadata,
            jwks,
            max_body: settings.max_body,
        });
        Ok(Self(Arc::new(Inner {
            limiter: RateLimiter::new(settings.rate_limit),
            settings,
            guard,
            notes: Notes::new(),
            agent_metadata,
            discovery,
            downstream,
            interactions,
        })))
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// The resource metadata document (E§8.3).
    pub fn metadata(&self) -> &ResourceMetadata {
        self.0.guard.metadata()
    }

    /// The decisions of the resource (`aauth-axum`).
    pub fn guard(&self) -> &Guard {
        &self.0.guard
    }

    /// This resource as an agent (P-MD-4): `/.well-known/aauth-agent`.
    pub fn agent_metadata(&self) -> &AgentMetadata {
        &self.0.agent_metadata
    }

    pub(crate) fn downstream(&self) -> Option<&Downstream> {
        self.0.downstream.as_ref()
    }

    pub(crate) fn interactions(&self) -> &Interactions {
        &self.0.interactions
    }

    pub(crate) fn discovery(&self) -> &Discovery {
        &self.0.discovery
    }

    pub(crate) fn limiter(&self) -> &RateLimiter {
        &self.0.limiter
    }

    pub(crate) fn notes(&self) -> &Notes {
        &self.0.notes
    }
}

/// The resource's routes.
pub fn app(state: AppState) -> Router {
    use endpoints as e;
    Router::new()
        .route("/.well-known/aauth-agent", get(e::agent_metadata))
        .merge(state.guard().routes())
        .route("/public", get(e::public))
        .route("/whoami", get(e::whoami))
        .route("/data", get(e::data_get).post(e::data_post))
        .route("/chain", get(e::chain))
        .route(INTERACTION_PATH, get(interaction::visit))
        .route(CALLBACK_PATH, get(interaction::callback))
        .fallback(aauth_http::browser::not_found)
        .method_not_allowed_fallback(e::method_not_allowed)
        .with_state(state)
}
