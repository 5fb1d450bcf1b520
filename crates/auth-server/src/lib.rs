//! # aauth-auth-server
//!
//! An AAuth auth server (E§9.3–9.7, E§9.10, profile: P-AS-1..8): it
//! publishes its metadata and keys, answers signed token requests from
//! identified agents and exchanges from resources calling downstream, and
//! runs the browser login and consent pages.
//!
//! ```text
//! GET  /.well-known/aauth-issuer   metadata (E§8.2)                 [`app`]
//! GET  /.well-known/jwks.json      its signing keys (from SQLite)
//! POST /agent/token                request_type=auth|code|refresh|exchange [`token`]
//!        auth ─ resource_token (E§6.5) or scope (agent as resource, E§3.5)
//!             ─ policy (P-AS-2a) ─▶ auth_token + refresh_token (direct grant)
//!                                └▶ request_token (consent needed, P-AS-3)
//!        code ─ single use, 60 s, same agent + delegate (P-AS-5) ─▶ tokens
//!        refresh ─ same agent + delegate, any current key (P-AS-6) ─▶ auth_token
//!        exchange ─ a resource signing as itself + upstream_token (P-AS-7):
//!             trusted iss ─ upstream token (aud = caller) ─ resource token
//!             ─ exchange rules ─ act depth ─▶ auth_token with `act` (no refresh)
//! GET  /agent/auth                 login / consent page (E§9.5)     [`consent`]
//! POST /agent/auth/login           username + password + CSRF
//! POST /agent/auth/consent         approve ─▶ 303 redirect_uri?code=…&state=…
//!                                  deny    ─▶ 303 redirect_uri?error=access_denied&state=…
//! ```
//!
//! Users and policy come from the configuration file ([`config`]); pending
//! requests, sessions, codes, grants and the signing keys live in SQLite
//! ([`store`]) and survive restarts.
#![forbid(unsafe_code)]

pub mod config;
pub mod consent;
pub mod html;
pub mod secret;
pub mod store;
pub mod token;

use std::sync::Arc;

use aauth_http::discovery::Discovery;
use aauth_http::fetch::Fetcher;
use aauth_http::runtime::{ServerKey, StartError};
use aauth_http::server::{ErrorResponse, RequestVerifier, unix_now};
use aauth_protocol::httpsig::NonceRule;
use aauth_protocol::ids::{Kid, Origin, OriginMode};
use aauth_protocol::jwk::{Jwks, JwksKey};
use aauth_protocol::keys::{Algorithm, PrivateJwk, SigningKey};
use aauth_protocol::metadata::{AuthServerMetadata, HttpsUrl, RequestType};
use aauth_protocol::verify::VerifierConfig;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::{Config, Policy};
use crate::store::{KeyRow, Store};

/// Path of the token endpoint (E§8.2 `agent_token_endpoint`).
pub const TOKEN_PATH: &str = "/agent/token";
/// Path of the user-facing endpoint (E§8.2 `agent_auth_endpoint`).
pub const AUTH_PATH: &str = "/agent/auth";
/// Path of the JWKS.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    issuer: Origin,
    dev: bool,
    config: Config,
    policy: Policy,
    store: Store,
    verifier: RequestVerifier,
    key: ServerKey,
    jwks: serde_json::Value,
    metadata: serde_json::Value,
}

fn start_error(what: &str) -> impl Fn(String) -> StartError + '_ {
    move |reason| StartError::Config(format!("{what}: {reason}"))
}

impl AppState {
    /// Opens the `database` and builds the state for the server `issuer`,
    /// with discovery for `dev` or production identifiers.
    pub async fn open(
        config: Config,
        database: &std::path::Path,
        issuer: Origin,
        dev: bool,
    ) -> Result<Self, StartError> {
        let mode = mode(dev);
        let fetcher = Fetcher::new(mode).map_err(|e| start_error("http client")(e.to_string()))?;
        let store = Store::open(database)
            .await
            .map_err(|e| start_error("database")(e.to_string()))?;
        Self::new(config, issuer, dev, store, Discovery::new(fetcher, mode)).await
    }

    /// The state over an open `store` and a `discovery`.
    pub async fn new(
        config: Config,
        issuer: Origin,
        dev: bool,
        store: Store,
        discovery: Discovery,
    ) -> Result<Self, StartError> {
        let mode = mode(dev);
        let policy = config
            .policy(mode)
            .map_err(|e| StartError::Config(e.to_string()))?;
        let (key, jwks) = signing_key(&store).await?;
        let mut verifier_config = VerifierConfig::new(issuer.clone());
        // P-AS-1: "An auth token in Signature-Key is never accepted here":
        // checked for its signature, then refused, with nothing fetched.
        verifier_config.trusted_auth_servers = Vec::new();
        verifier_config.accept_auth_tokens = false;
        verifier_config.origin_mode = mode;
        verifier_config.http.max_skew = config.max_skew;
        verifier_config.http.lenient_base64 = config.lenient_base64;
        // P-SIG-6: "The auth server's token endpoint requires it."
        verifier_config.http.require_nonce = NonceRule::Always;
        verifier_config.token_leeway_secs = config.token_leeway;
        let verifier = RequestVerifier::new(verifier_config, discovery, dev);
        let metadata = metadata(&issuer, &config)?;
        Ok(Self(Arc::new(Inner {
            issuer,
            dev,
            config,
            policy,
            store,
            verifier,
            key,
            jwks,
            metadata,
        })))
    }

    /// The auth server's identifier.
    pub fn issuer(&self) -> &Origin {
        &self.0.issuer
    }

    /// Whether dev mode is on.
    pub fn dev(&self) -> bool {
        self.0.dev
    }

    /// Which identifiers are acceptable (P-MD-1).
    pub fn mode(&self) -> OriginMode {
        mode(self.0.dev)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Users and policy.
    pub fn policy(&self) -> &Policy {
        &self.0.policy
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The request verifier.
    pub fn verifier(&self) -> &RequestVerifier {
        &self.0.verifier
    }

    /// Discovery of peers' metadata and keys.
    pub fn discovery(&self) -> &Discovery {
        self.0.verifier.discovery()
    }

    /// The key tokens are signed with.
    pub fn key(&self) -> &ServerKey {
        &self.0.key
    }
}

fn mode(dev: bool) -> OriginMode {
    if dev {
        OriginMode::Dev
    } else {
        OriginMode::Production
    }
}

/// The newest signing key from the database, created on first start, and
/// the JWKS of every stored key (P-AS-8).
async fn signing_key(store: &Store) -> Result<(ServerKey, serde_json::Value), StartError> {
    let fail = start_error("signing key");
    let mut rows = store
        .signing_keys()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if rows.is_empty() {
        let created = ServerKey::generate()?;
        let jwk = created
            .key
            .to_private_jwk()
            .map_err(|e| fail(e.to_string()))?;
        let row = KeyRow {
            kid: created.kid.as_str().to_owned(),
            private_jwk: serde_json::to_string(&jwk).map_err(|e| fail(e.to_string()))?,
        };
        let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        store
            .add_signing_key(&row, now)
            .await
            .map_err(|e| fail(e.to_string()))?;
        tracing::info!(kid = %created.kid, "created a new signing key");
        rows.push(row);
    }
    let mut keys = Vec::with_capacity(rows.len());
    for row in &rows {
        let jwk: PrivateJwk =
            serde_json::from_str(&row.private_jwk).map_err(|e| fail(e.to_string()))?;
        let key = SigningKey::from_private_jwk(&jwk).map_err(|e| fail(e.to_string()))?;
        let kid = Kid::new(row.kid.clone()).map_err(|e| fail(e.to_string()))?;
        keys.push(ServerKey { kid, key });
    }
    let jwks = Jwks::new(
        keys.iter()
            .map(|k| JwksKey {
                kid: k.kid.clone(),
                key: k.key.public_key().clone(),
            })
            .collect(),
    )
    .to_json_value();
    let newest = keys
        .into_iter()
        .next()
        .ok_or_else(|| fail("no key".to_owned()))?;
    Ok((newest, jwks))
}

/// The metadata document (E§8.2, P-MD-2).
fn metadata(issuer: &Origin, config: &Config) -> Result<serde_json::Value, StartError> {
    let url = |path: &str| {
        HttpsUrl::from_origin(issuer, path).map_err(|e| start_error("metadata")(e.to_string()))
    };
    let document = AuthServerMetadata {
        issuer: issuer.clone(),
        jwks_uri: url(JWKS_PATH)?,
        agent_token_endpoint: url(TOKEN_PATH)?,
        agent_auth_endpoint: url(AUTH_PATH)?,
        agent_signing_algs_supported: vec![Algorithm::Ed25519, Algorithm::EcdsaP256Sha256],
        request_types_supported: vec![
            RequestType::Auth,
            RequestType::Code,
            RequestType::Refresh,
            RequestType::Exchange,
        ],
        scopes_supported: Some(config.scopes_supported.clone()),
    };
    serde_json::to_value(&document).map_err(|e| start_error("metadata")(e.to_string()))
}

fn json_document(value: &serde_json::Value) -> Response {
    let mut response = axum::Json(value).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

async fn issuer_metadata(State(state): State<AppState>) -> Response {
    json_document(&state.0.metadata)
}

async fn jwks(State(state): State<AppState>) -> Response {
    json_document(&state.0.jwks)
}

async fn method_not_allowed() -> Response {
    let mut response =
        ErrorResponse::invalid_request("this endpoint does not accept that method").into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// The auth server's routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/.well-known/aauth-issuer", get(issuer_metadata))
        .route(JWKS_PATH, get(jwks))
        .route(TOKEN_PATH, post(token::endpoint))
        .route(AUTH_PATH, get(consent::show))
        .route("/agent/auth/login", post(consent::login))
        .route("/agent/auth/consent", post(consent::decide))
        .route("/agent/auth/logout", post(consent::logout))
        .fallback(aauth_http::browser::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}
