//! The agent server's HTTP endpoints (E§8.1, profile: P-DEL-1, P-DEL-2):
//!
//! | route | what |
//! |---|---|
//! | `GET /.well-known/aauth-agent` | agent metadata (E§8.1, P-MD-2) |
//! | `GET /.well-known/jwks.json` | the agent server's JWKS |
//! | `POST /delegate/enroll` | `code=…`, signed `hwk` with the delegate's fresh key → agent token |
//! | `POST /delegate/renew` | `new_jwk`, `new_key_proof`, signed `jwt` with the current agent token → agent token for the new key |
//!
//! Both POST endpoints require a covered `Nonce` (P-SIG-6). Agent tokens
//! presented to `renew` are validated with this server's own key, without a
//! fetch: this server only ever accepts its own tokens.

use std::sync::Arc;

use aauth_http::discovery::Discovery;
use aauth_http::fetch::Fetcher;
use aauth_http::runtime::{ServerKey, StartError};
use aauth_http::server::{
    ErrorResponse, MAX_FORM_BYTES, RequestVerifier, parse_form, read_body, unix_now,
};
use aauth_protocol::challenge::{AgentAuth, Level};
use aauth_protocol::error::Condition;
use aauth_protocol::httpsig::NonceRule;
use aauth_protocol::ids::{Kid, Origin, OriginMode};
use aauth_protocol::jose;
use aauth_protocol::jwk::PublicKey;
use aauth_protocol::metadata::{AgentMetadata, HttpsUrl, RedirectUri};
use aauth_protocol::signature_key::Scheme;
use aauth_protocol::tokens::KeyLookupError;
use aauth_protocol::tokens::agent_token::AgentTokenBuilder;
use aauth_protocol::verify::{KeyDirectory, KeyOwner, VerifiedRequest, VerifierConfig};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::store::{Store, random_id};

/// Path of the JWKS.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Longest enrollment code accepted (ours are 43 characters).
const MAX_CODE_LEN: usize = 256;

/// Everything the endpoints share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    origin: Origin,
    key: ServerKey,
    store: Store,
    metadata: Value,
    jwks: Value,
    verifier: RequestVerifier,
    agent_token_lifetime: u32,
}

impl AppState {
    /// The state for agent `origin` with `key` and `store`, configured by
    /// `config` (metadata fields, lifetimes, clock skew).
    pub fn new(
        origin: Origin,
        key: ServerKey,
        store: Store,
        config: &Config,
        dev: bool,
    ) -> Result<Self, StartError> {
        let mode = if dev {
            OriginMode::Dev
        } else {
            OriginMode::Production
        };
        let metadata = metadata(&origin, config, mode)?;
        let jwks = key.jwks();
        let mut verifier = VerifierConfig::new(origin.clone());
        verifier.origin_mode = mode;
        verifier.http.max_skew = config.max_clock_skew;
        verifier.http.lenient_base64 = config.lenient_base64;
        // P-SIG-6: every delegate endpoint is a POST that changes state.
        verifier.http.require_nonce = NonceRule::Always;
        // This server checks only its own keys (the agent tokens it issued),
        // through `verify_with`; discovery is never asked for anything.
        let fetcher = Fetcher::new(mode).map_err(|e| StartError::Config(e.to_string()))?;
        let verifier = RequestVerifier::new(verifier, Discovery::new(fetcher, mode), dev);
        Ok(Self(Arc::new(Inner {
            origin,
            key,
            store,
            metadata,
            jwks,
            verifier,
            agent_token_lifetime: config.agent_token_lifetime,
        })))
    }

    /// The agent identifier.
    pub fn origin(&self) -> &Origin {
        &self.0.origin
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Verifies a POST to one of the delegate endpoints (E§10.7, P-SIG-6:
    /// `Nonce` required and checked against the replay cache).
    fn verify(
        &self,
        parts: &Parts,
        body: &[u8],
        challenge: AgentAuth,
    ) -> Result<VerifiedRequest, ErrorResponse> {
        self.0
            .verifier
            .verify_with(parts, body, self)
            .map_err(|rejected| rejected.into_error_with_challenge(challenge))
    }

    /// An agent token for delegate `sub` binding `key` (E§5.3, P-TOK-2).
    fn issue(&self, sub: &str, key: &PublicKey) -> Result<String, String> {
        let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        AgentTokenBuilder::new(self.0.origin.clone(), sub, key.clone())
            .lifetime_secs(self.0.agent_token_lifetime)
            .build(now)
            .map_err(|e| e.to_string())?
            .sign(&self.0.key.key, &self.0.key.kid)
            .map_err(|e| e.to_string())
    }
}

/// This server's own key, for the agent tokens presented to `renew`; any
/// other key is not this server's to accept.
impl KeyDirectory for AppState {
    fn key(
        &self,
        owner: KeyOwner,
        origin: &Origin,
        kid: &Kid,
    ) -> Result<PublicKey, KeyLookupError> {
        if owner == KeyOwner::Agent && *origin == self.0.origin && *kid == self.0.key.kid {
            Ok(self.0.key.key.public_key().clone())
        } else if owner == KeyOwner::Agent && *origin == self.0.origin {
            Err(KeyLookupError::UnknownKid(kid.clone()))
        } else {
            Err(KeyLookupError::Unavailable(format!(
                "this agent server accepts only its own agent tokens, not {origin}'s"
            )))
        }
    }
}

/// A local failure (database, randomness, signing), logged with its detail
/// and answered 500 `server_error` without it; no input reaches this.
fn server_fault(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "agent server failure");
    ErrorResponse::new(
        Condition::ServerFault,
        "the agent server could not complete the request; see its log",
    )
    .into_response()
}

/// The metadata document (E§8.1, P-MD-2), checked at start-up.
fn metadata(origin: &Origin, config: &Config, mode: OriginMode) -> Result<Value, StartError> {
    let url = |member: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| HttpsUrl::parse(t, mode))
            .transpose()
            .map_err(|e| StartError::Config(format!("{member}: {e}")))
    };
    let redirect_uris = config
        .redirect_uris
        .iter()
        .map(|uri| {
            RedirectUri::parse(uri, mode)
                .map_err(|e| StartError::Config(format!("redirect_uris {uri:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let document = AgentMetadata {
        agent: origin.clone(),
        jwks_uri: HttpsUrl::from_origin(origin, JWKS_PATH)
            .map_err(|e| StartError::Config(format!("jwks_uri: {e}")))?,
        redirect_uris: Some(redirect_uris),
        name: Some(config.name.clone()),
        logo_uri: url("logo_uri", &config.logo_uri)?,
        policy_uri: url("policy_uri", &config.policy_uri)?,
        tos_uri: url("tos_uri", &config.tos_uri)?,
        homepage: url("homepage", &config.homepage)?,
    };
    serde_json::to_value(&document).map_err(|e| StartError::Config(e.to_string()))
}

/// The agent server's routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/.well-known/aauth-agent", get(agent_metadata))
        .route(JWKS_PATH, get(jwks))
        .route("/delegate/enroll", post(enroll))
        .route("/delegate/renew", post(renew))
        .fallback(aauth_http::browser::not_found)
        .with_state(state)
}

async fn agent_metadata(State(state): State<AppState>) -> Response {
    Json(state.0.metadata.clone()).into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    Json(state.0.jwks.clone()).into_response()
}

#[derive(Deserialize)]
struct EnrollForm {
    code: String,
}

/// P-DEL-1: `POST /delegate/enroll`, form `code=…`, signed with the
/// delegate's fresh key (`hwk`), `Nonce` required.
async fn enroll(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_body(body, MAX_FORM_BYTES).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    // Any signature proves possession of the key being enrolled.
    let verified = match state.verify(&parts, &body, AgentAuth::signature()) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    // profile: P-DEL-1 — "signed with the delegate's fresh key (`hwk`)".
    if verified.scheme() != Scheme::Hwk {
        return ErrorResponse::new(
            Condition::SignatureInvalid,
            format!(
                "enrollment is signed with the new key itself (Signature-Key scheme hwk), not {}",
                verified.scheme()
            ),
        )
        .with_challenge(AgentAuth::signature())
        .into_response();
    }
    let form: EnrollForm = match parse_form(&parts.headers, &body) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    if form.code.is_empty() || form.code.len() > MAX_CODE_LEN {
        return ErrorResponse::invalid_request("code is empty or too long").into_response();
    }
    let new_sub = match random_id() {
        Ok(id) => format!("delegate-{}", id.get(..22).unwrap_or(&id)),
        Err(e) => return server_fault(&e),
    };
    let key = verified.key().clone();
    let jkt = verified.thumbprint().as_str().to_owned();
    let outcome = state
        .0
        .store
        .enroll(&form.code, &new_sub, &jkt, unix_now(), |sub| {
            state.issue(sub, &key).map(|token| (sub.to_owned(), token))
        })
        .await;
    match outcome {
        Err(e) => server_fault(&e),
        Ok(None) => ErrorResponse::new(
            Condition::GrantInvalid,
            "the enrollment code is unknown, already used or expired",
        )
        .into_response(),
        Ok(Some(Err(e))) => server_fault(&e),
        Ok(Some(Ok((sub, agent_token)))) => {
            tracing::info!(%sub, %jkt, "delegate enrolled");
            token_response(&state, &agent_token, &sub)
        }
    }
}

fn token_response(state: &AppState, agent_token: &str, sub: &str) -> Response {
    let mut response = Json(json!({
        "agent_token": agent_token,
        "expires_in": state.0.agent_token_lifetime,
        "sub": sub,
    }))
    .into_response();
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

#[derive(Deserialize)]
struct RenewForm {
    new_jwk: String,
    new_key_proof: String,
}

/// P-DEL-2: `POST /delegate/renew`, signed with the current key and its
/// unexpired agent token (`jwt`), form `new_jwk`, `new_key_proof` (a JWS by
/// the new key over this request's `Nonce`).
async fn renew(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_body(body, MAX_FORM_BYTES).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let verified = match state.verify(&parts, &body, AgentAuth::identity()) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    // profile: P-DEL-2 — "signed with the current key (`jwt` + current,
    // unexpired agent token)"; the verifier validated the token (E§5.7,
    // `exp` included) and its key binding.
    let Some(agent_token) = verified.agent_token() else {
        return ErrorResponse::new(
            Condition::LevelTooLow,
            "renewal is signed with the current key and its agent token (Signature-Key jwt)",
        )
        .with_challenge(AgentAuth::new(Level::Identified))
        .into_response();
    };
    let sub = agent_token.delegate().to_owned();
    // Only the delegate's CURRENT key may rotate: a key superseded by a
    // rotation or a re-enrollment (e.g. after a compromise) must not be able
    // to mint itself a successor.
    let current = verified.thumbprint().as_str().to_owned();
    match state.0.store.delegate_key(&sub).await {
        Ok(Some(jkt)) if jkt == current => {}
        Ok(Some(_)) => {
            return ErrorResponse::new(
                Condition::AgentTokenInvalid,
                "this key is no longer the delegate's current key (rotated or re-enrolled since)",
            )
            .with_challenge(AgentAuth::identity())
            .into_response();
        }
        Ok(None) => {
            return ErrorResponse::new(
                Condition::AgentTokenInvalid,
                "the agent token's delegate is not enrolled here",
            )
            .with_challenge(AgentAuth::identity())
            .into_response();
        }
        Err(e) => return server_fault(&e),
    }
    let form: RenewForm = match parse_form(&parts.headers, &body) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let new_key = match serde_json::from_str::<Value>(&form.new_jwk)
        .map_err(|e| e.to_string())
        .and_then(|v| PublicKey::from_json_value(&v).map_err(|e| e.to_string()))
    {
        Ok(key) => key,
        Err(e) => {
            return ErrorResponse::invalid_request(format!("new_jwk is not a public JWK: {e}"))
                .into_response();
        }
    };
    // The verifier required the Nonce, so it is there.
    let Some(nonce) = verified.nonce() else {
        return ErrorResponse::invalid_request("a Nonce header is required").into_response();
    };
    // profile: P-DEL-2 — "payload = the ASCII bytes of this request's Nonce
    // header value".
    if let Err(e) = jose::verify_key_proof(&form.new_key_proof, &new_key, nonce.as_str().as_bytes())
    {
        return ErrorResponse::new(
            Condition::GrantInvalid,
            format!("new_key_proof must be a JWS by new_jwk over this request's Nonce value: {e}"),
        )
        .into_response();
    }
    let jkt = new_key.thumbprint();
    // Conditional on the key still being current: of two concurrent
    // renewals with one key, only the first rotates.
    match state
        .0
        .store
        .rotate(&sub, &current, jkt.as_str(), unix_now())
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return ErrorResponse::new(
                Condition::AgentTokenInvalid,
                "this key is no longer the delegate's current key (rotated or re-enrolled since)",
            )
            .with_challenge(AgentAuth::identity())
            .into_response();
        }
        Err(e) => return server_fault(&e),
    }
    let agent_token = match state.issue(&sub, &new_key) {
        Ok(token) => token,
        Err(e) => return server_fault(&e),
    };
    tracing::info!(%sub, jkt = %jkt.as_str(), "delegate key rotated");
    token_response(&state, &agent_token, &sub)
}
