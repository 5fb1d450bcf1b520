//! The receiving side for axum servers: verify a request (E§10.7) with
//! discovery and a replay cache, and answer failures as the specification's
//! JSON errors with their `Agent-Auth` challenge (P-ERR-1..3, P-CH-4).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aauth_protocol::challenge::{AgentAuth, Level};
use aauth_protocol::error::{ChallengeKind, Condition, ErrorBody};
use aauth_protocol::httpsig::{HeaderSource, Request};
use aauth_protocol::keys::sha256;
use aauth_protocol::verify::{
    ExpiredTokenHolder, KeyDirectory, Presented, Rejection, TokenCache, ValidatedToken,
    VerifiedRequest, VerifierConfig,
};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::discovery::Discovery;
use crate::replay::{Client, Outcome, ReplayCache, ReplayLimits};

/// The `Agent-Auth` response header (E§4, D§13.3).
pub const AGENT_AUTH: &str = "agent-auth";

/// Largest form body an auth server or agent server accepts (P-ERR-1, P-AS-1).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// Where the verifier notes the level a request reached (P-CH-2), for the
/// server's log line: the request log puts one in the request's extensions
/// and reads it once the response is made.
#[derive(Debug, Clone, Default)]
pub struct LevelReached(std::sync::Arc<std::sync::OnceLock<Level>>);

impl LevelReached {
    /// Notes `level`; the first verification of a request is the one kept.
    pub fn record(&self, level: Level) {
        let _ = self.0.set(level);
    }

    /// The level, once a signature verified: `pseudonymous`, `identified`
    /// or `authorized`.
    pub fn get(&self) -> Option<&'static str> {
        self.0.get().map(|level| match level {
            Level::Pseudonymous => "pseudonymous",
            Level::Identified => "identified",
            Level::Authorized => "authorized",
        })
    }
}

/// A JSON answer that must not be cached: a token, or what a caller owns.
pub fn json_no_store(status: StatusCode, value: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(value)).into_response();
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

/// The current Unix time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An `http::HeaderMap` as the protocol crate's header source. Values that
/// are not visible ASCII cannot be part of a signature base and are skipped.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a>(pub &'a HeaderMap);

impl HeaderSource for Headers<'_> {
    fn field_lines(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.get_all(name).iter().filter_map(|v| v.to_str().ok())
    }
}

/// An error answer: status, JSON body and, where P-ERR-1 says so, a challenge.
#[derive(Debug, Clone)]
pub struct ErrorResponse(Box<ErrorParts>);

#[derive(Debug, Clone)]
struct ErrorParts {
    status: StatusCode,
    body: ErrorBody,
    challenge: Option<AgentAuth>,
    retry_after: Option<u64>,
}

impl ErrorResponse {
    /// The response for `condition`, with a description written for the caller.
    pub fn new(condition: Condition, description: impl Into<String>) -> Self {
        let wire = condition.wire();
        Self(Box::new(ErrorParts {
            status: StatusCode::from_u16(wire.status).unwrap_or(StatusCode::BAD_REQUEST),
            body: ErrorBody::new(wire.code, description),
            challenge: None,
            retry_after: None,
        }))
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(Condition::MalformedRequest, description)
    }

    /// Adds the `Agent-Auth` challenge.
    #[must_use]
    pub fn with_challenge(mut self, challenge: AgentAuth) -> Self {
        self.0.challenge = Some(challenge);
        self
    }

    /// Adds `Retry-After` (429, E§4.5; 503).
    #[must_use]
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.0.retry_after = Some(seconds);
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The JSON body.
    pub fn body(&self) -> &ErrorBody {
        &self.0.body
    }

    /// The challenge, if any.
    pub fn challenge(&self) -> Option<&AgentAuth> {
        self.0.challenge.as_ref()
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let parts = *self.0;
        let json = serde_json::to_vec(&parts.body).unwrap_or_default();
        let mut response = Response::new(Body::from(json));
        *response.status_mut() = parts.status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        if let Some(challenge) = &parts.challenge
            && let Ok(value) = HeaderValue::from_str(&challenge.to_header_value())
        {
            headers.insert(AGENT_AUTH, value);
        }
        if let Some(seconds) = parts.retry_after {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // For the request log line (runtime::with_time_limit).
        response.extensions_mut().insert(parts.body.error);
        response
    }
}

/// A verification failure, ready to be turned into an [`ErrorResponse`] by
/// an endpoint that knows which challenge to add.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// The P-ERR-1 row.
    pub condition: Condition,
    /// The error description.
    pub description: String,
    /// `required_components` (D§11.2.1), when components were missing.
    pub required_components: Option<Vec<String>>,
    /// The signature base, in dev mode only (P-ERR-3).
    pub signature_base: Option<String>,
    /// Set when the only fault was an expired auth token, so a resource can
    /// add a fresh resource token to its challenge (P-ERR-1).
    pub expired_token_holder: Option<Box<ExpiredTokenHolder>>,
    /// Seconds for `Retry-After`, when the refusal is temporary.
    pub retry_after: Option<u64>,
}

impl Rejected {
    /// A refusal with nothing but its row and description.
    pub fn new(condition: Condition, description: impl Into<String>) -> Self {
        Self {
            condition,
            description: description.into(),
            required_components: None,
            signature_base: None,
            expired_token_holder: None,
            retry_after: None,
        }
    }

    /// The error response with `challenge`, when the row carries one
    /// (P-ERR-1's last column; a full replay cache, for one, has none).
    pub fn into_error_with_challenge(self, challenge: AgentAuth) -> ErrorResponse {
        let challenged = self.condition.wire().challenge != ChallengeKind::None;
        let error = self.into_error();
        if challenged {
            error.with_challenge(challenge)
        } else {
            error
        }
    }

    /// The error response, without a challenge.
    pub fn into_error(self) -> ErrorResponse {
        let mut error = ErrorResponse::new(self.condition, self.description);
        error.0.body.required_components = self.required_components;
        error.0.body.signature_base = self.signature_base;
        error.0.retry_after = self.retry_after;
        error
    }
}

/// Tokens validated by one verifier, by the SHA-256 of their text, each
/// evicted at its `exp` (so a token is validated once, not per request).
#[derive(Debug, Clone)]
struct Tokens(moka::sync::Cache<[u8; 32], ValidatedToken>);

struct UntilExp;

impl moka::Expiry<[u8; 32], ValidatedToken> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        token: &ValidatedToken,
        _now: std::time::Instant,
    ) -> Option<Duration> {
        let left = u64::try_from(token.exp())
            .unwrap_or(0)
            .saturating_sub(unix_now());
        Some(Duration::from_secs(left))
    }
}

impl Tokens {
    fn new() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .expire_after(UntilExp)
                .build(),
        )
    }
}

impl TokenCache for Tokens {
    fn get(&self, jwt: &str) -> Option<ValidatedToken> {
        self.0.get(&sha256(jwt.as_bytes()))
    }

    fn insert(&self, jwt: &str, token: &ValidatedToken) {
        self.0.insert(sha256(jwt.as_bytes()), token.clone());
    }
}

/// Verifies requests for one server: its configuration, discovery, a
/// replay cache for `Nonce` values (P-SIG-6), and the tokens it validated.
///
/// Each request is read once ([`Presented::read`]: `Signature-Key` parsed,
/// the signature base built, the token looked up in the cache), the keys it
/// names are fetched, and verification finishes with them; a `Nonce` is
/// then checked against the replay cache ([`crate::replay`]).
#[derive(Debug, Clone)]
pub struct RequestVerifier {
    config: VerifierConfig,
    discovery: Discovery,
    nonces: Arc<ReplayCache>,
    tokens: Tokens,
    dev: bool,
}

impl RequestVerifier {
    /// A verifier for `config`, with a replay cache of the default
    /// [`ReplayLimits`]. In `dev` mode failures carry the signature base the
    /// server computed (P-ERR-3).
    pub fn new(config: VerifierConfig, discovery: Discovery, dev: bool) -> Self {
        Self::with_replay_limits(config, discovery, dev, ReplayLimits::default())
    }

    /// [`RequestVerifier::new`] with a replay cache of `limits`.
    pub fn with_replay_limits(
        config: VerifierConfig,
        discovery: Discovery,
        dev: bool,
        limits: ReplayLimits,
    ) -> Self {
        let nonces = Arc::new(ReplayCache::new(limits, config.http.max_skew));
        Self {
            config,
            discovery,
            nonces,
            tokens: Tokens::new(),
            dev,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Discovery, shared with the rest of the server.
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// Whether the server runs in dev mode.
    pub fn dev(&self) -> bool {
        self.dev
    }

    /// Verifies the request in `parts` with its `body`, fetching the keys it
    /// needs through discovery first. Whether a `Nonce` is required is the
    /// configuration's [`NonceRule`](aauth_protocol::httpsig::NonceRule)
    /// (P-SIG-6); a present one is always checked against the replay cache.
    pub async fn verify(&self, parts: &Parts, body: &[u8]) -> Result<VerifiedRequest, Rejected> {
        let presented = self.read(parts, body)?;
        // A token validated before needs no keys: nothing is looked up or
        // refetched for it under load.
        let directory = self.discovery.prefetch(&presented.key_need()).await;
        let now = unix_now();
        let verified = match presented.verify(&self.config, &directory, &self.tokens, now) {
            // P-MD-3: the party may have replaced the key under this kid;
            // its key set is refetched (once a minute at most) before the
            // refusal stands.
            Err(rejection) if rejection.error.failed_with_published_key() => {
                match self.discovery.replaced_key(&directory).await {
                    Some(fresh) => presented.verify(&self.config, &fresh, &self.tokens, now),
                    None => Err(rejection),
                }
            }
            outcome => outcome,
        };
        self.check_nonce(parts, verified.map_err(|r| self.rejected(r))?, now)
    }

    /// [`RequestVerifier::verify`] with keys from `directory` instead of
    /// discovery: for a server that only ever checks keys of its own (the
    /// agent server checking the agent tokens it issued).
    pub fn verify_with<D: KeyDirectory + ?Sized>(
        &self,
        parts: &Parts,
        body: &[u8],
        directory: &D,
    ) -> Result<VerifiedRequest, Rejected> {
        let presented = self.read(parts, body)?;
        let now = unix_now();
        let verified = presented
            .verify(&self.config, directory, &self.tokens, now)
            .map_err(|rejection| self.rejected(rejection))?;
        self.check_nonce(parts, verified, now)
    }

    /// The first half: the request read once, against this server's
    /// configuration and token cache.
    fn read(&self, parts: &Parts, body: &[u8]) -> Result<Presented, Rejected> {
        let headers = Headers(&parts.headers);
        Presented::read(
            &self.request(parts, &headers, body),
            &self.config,
            &self.tokens,
            unix_now(),
        )
        .map_err(|rejection| self.rejected(rejection))
    }

    /// The last step: a verified request's `Nonce` against the replay cache.
    fn check_nonce(
        &self,
        parts: &Parts,
        verified: VerifiedRequest,
        now: u64,
    ) -> Result<VerifiedRequest, Rejected> {
        // E§10.5: "Check that the nonce has not been used previously within
        // the replay window" (the cache: crate::replay).
        if let Some(nonce) = verified.nonce() {
            // Keys with an identity are clients by themselves; anyone can
            // mint hwk keys, so those count against their address.
            let client = match verified.level() {
                Level::Pseudonymous => Client::address(
                    parts
                        .extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|info| info.0.ip()),
                ),
                Level::Identified | Level::Authorized => Client::Key(verified.thumbprint()),
            };
            let outcome = self.nonces.check(
                client,
                verified.thumbprint(),
                nonce,
                verified.created(),
                now,
            );
            match outcome {
                Outcome::Fresh => {}
                Outcome::Replayed => {
                    return Err(Rejected::new(
                        Condition::NonceReplayed,
                        "this Nonce was already used with this key (E§10.5)",
                    ));
                }
                // Fail closed: a Nonce that cannot be remembered is not
                // accepted (P-SIG-6).
                Outcome::Full { retry_after } => {
                    return Err(Rejected {
                        retry_after: Some(retry_after),
                        ..Rejected::new(
                            Condition::ReplayCacheFull,
                            "the server cannot remember more Nonces from this client right now; \
                             retry after the time in Retry-After",
                        )
                    });
                }
            }
        }
        if let Some(slot) = parts.extensions.get::<LevelReached>() {
            slot.record(verified.level());
        }
        Ok(verified)
    }

    /// A protocol-crate refusal as the server reports it.
    fn rejected(&self, rejection: Rejection) -> Rejected {
        Rejected {
            condition: rejection.error.condition(),
            description: rejection.error.to_string(),
            required_components: rejection
                .error
                .required_components()
                .map(<[String]>::to_vec),
            signature_base: rejection.signature_base.filter(|_| self.dev),
            expired_token_holder: rejection.expired_token_holder,
            retry_after: None,
        }
    }

    /// The request as the protocol crate sees it, with this server's
    /// configured authority (P-SIG-5).
    fn request<'a>(
        &'a self,
        parts: &'a Parts,
        headers: &'a Headers<'a>,
        body: &'a [u8],
    ) -> Request<'a, Headers<'a>> {
        Request {
            method: parts.method.as_str(),
            authority: &self.config.authority,
            target: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path(), |pq| pq.as_str()),
            headers,
            body: Some(body),
        }
    }
}

/// Reads a body of at most `limit` bytes; more is 413 `invalid_request`.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ErrorResponse> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ErrorResponse::new(
            Condition::BodyTooLarge,
            format!("the request body is larger than {limit} bytes"),
        )
    })
}

/// Checks that the body is declared `application/x-www-form-urlencoded`;
/// anything else is 400 `invalid_request` naming the problem.
pub fn require_form(headers: &HeaderMap) -> Result<(), ErrorResponse> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        Err(ErrorResponse::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ))
    }
}

/// Parses an `application/x-www-form-urlencoded` body; anything else is
/// 400 `invalid_request` naming the problem.
pub fn parse_form<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ErrorResponse> {
    require_form(headers)?;
    serde_urlencoded::from_bytes(body)
        .map_err(|e| ErrorResponse::invalid_request(format!("malformed form body: {e}")))
}

#[cfg(test)]
mod tests {
    use aauth_protocol::error::ErrorCode;

    use super::*;

    #[test]
    fn error_response_carries_json_challenge_and_retry_after() {
        let response = ErrorResponse::new(Condition::RateLimited, "slow down")
            .with_challenge(AgentAuth::identity())
            .with_retry_after(30)
            .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let headers = response.headers();
        assert_eq!(headers[AGENT_AUTH], "httpsig;identity");
        assert_eq!(headers[http::header::RETRY_AFTER], "30");
        assert_eq!(headers[http::header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn form_bodies_must_be_form_encoded_and_well_formed() {
        #[derive(serde::Deserialize, Debug)]
        #[expect(dead_code, reason = "only parsed")]
        struct Form {
            code: String,
        }
        let mut headers = HeaderMap::new();
        let error = parse_form::<Form>(&headers, b"code=x").unwrap_err();
        assert_eq!(error.body().error, ErrorCode::InvalidRequest);
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert!(parse_form::<Form>(&headers, b"code=x").is_ok());
        let error = parse_form::<Form>(&headers, b"other=x").unwrap_err();
        assert!(
            error.body().error_description.contains("code"),
            "{:?}",
            error.body()
        );
    }

    #[tokio::test]
    async fn oversized_bodies_are_413_invalid_request() {
        let error = read_body(Body::from(vec![0u8; 11]), 10).await.unwrap_err();
        assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(error.body().error, ErrorCode::InvalidRequest);
        assert_eq!(
            read_body(Body::from(vec![0u8; 10]), 10)
                .await
                .unwrap()
                .len(),
            10
        );
    }
}

#[cfg(test)]
mod token_cache_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aauth_protocol::httpsig::{self, SignOptions};
    use aauth_protocol::ids::{Kid, Label, Origin, OriginMode, Scope};
    use aauth_protocol::jwk::{Jwks, JwksKey};
    use aauth_protocol::keys::{Algorithm, SigningKey};
    use aauth_protocol::signature_key::{SignatureKeyField, Syntax};
    use aauth_protocol::tokens::auth_token::AuthTokenBuilder;
    use axum::routing::get;

    use super::*;
    use crate::fetch::Fetcher;

    /// An auth server on loopback that counts how often its documents are read.
    async fn auth_server(key: &SigningKey) -> (Origin, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let origin = Origin::parse(&format!("http://127.0.0.1:{port}"), OriginMode::Dev).unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let metadata = serde_json::json!({
            "issuer": origin.as_str(),
            "jwks_uri": format!("{origin}/jwks.json"),
            "agent_token_endpoint": format!("{origin}/agent/token"),
            "agent_auth_endpoint": format!("{origin}/agent/auth"),
        });
        let jwks = Jwks::new(vec![JwksKey {
            kid: Kid::new("as".into()).unwrap(),
            key: key.public_key().clone(),
        }])
        .to_json_value();
        let (h1, h2) = (hits.clone(), hits.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/aauth-issuer",
                get(move || {
                    h1.fetch_add(1, Ordering::SeqCst);
                    let m = metadata.clone();
                    async move { axum::Json(m) }
                }),
            )
            .route(
                "/jwks.json",
                get(move || {
                    h2.fetch_add(1, Ordering::SeqCst);
                    let j = jwks.clone();
                    async move { axum::Json(j) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (origin, hits)
    }

    fn signed_parts(key: &SigningKey, token: &str) -> Parts {
        signed_with(key, &SignatureKeyField::jwt(Label::sig(), token.to_owned()))
    }

    fn signed_with(key: &SigningKey, field: &SignatureKeyField) -> Parts {
        let header = field.to_header_value(Syntax::Sk0).unwrap();
        let request = httpsig::Request {
            method: "GET",
            authority: "resource.example",
            target: "/data",
            headers: &Vec::<(&str, &str)>::new(),
            body: None,
        };
        let signed = httpsig::sign(&request, &header, key, &SignOptions::new(unix_now())).unwrap();
        let mut builder = http::Request::builder().method("GET").uri("/data");
        for (name, value) in signed.headers() {
            builder = builder.header(name, value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[tokio::test]
    async fn a_cached_token_skips_discovery_entirely() {
        let as_key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let (issuer, hits) = auth_server(&as_key).await;
        let resource = Origin::parse("https://resource.example", OriginMode::Production).unwrap();
        let mut config = VerifierConfig::new(resource.clone());
        config.origin_mode = OriginMode::Dev;
        config.trusted_auth_servers = vec![issuer.clone()];
        let discovery = Discovery::new(Fetcher::new(OriginMode::Dev).unwrap(), OriginMode::Dev);
        let verifier = RequestVerifier::new(config, discovery, true);

        let agent_key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let agent = Origin::parse("https://agent.example", OriginMode::Production).unwrap();
        let now = i64::try_from(unix_now()).unwrap();
        let token = AuthTokenBuilder::new(issuer, resource, agent, agent_key.public_key().clone())
            .scope(Scope::parse("data.read").unwrap())
            .build(now)
            .unwrap()
            .sign(&as_key, &Kid::new("as".into()).unwrap())
            .unwrap();

        let first = signed_parts(&agent_key, &token);
        verifier.verify(&first, b"").await.unwrap();
        let fetched = hits.load(Ordering::SeqCst);
        assert_eq!(fetched, 2, "metadata and JWKS, once each");

        // From now on the token is known: no discovery at all, even after
        // the cached documents would have been dropped.
        verifier.discovery.documents_for_tests().invalidate_all();
        let again = signed_parts(&agent_key, &token);
        verifier.verify(&again, b"").await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), fetched);
    }

    #[tokio::test]
    async fn a_key_replaced_under_the_same_kid_is_refetched_once_before_a_refusal() {
        // P-MD-3: a peer that makes a new key when it restarts may publish it
        // under the kid of the old one; a verifier with the old key set
        // cached refetches it once (rate-limited per party) before refusing.
        let first = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let published = Arc::new(std::sync::Mutex::new(first.public_key().clone()));
        let jwks_hits = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let agent = Origin::parse(&format!("http://127.0.0.1:{port}"), OriginMode::Dev).unwrap();
        let metadata = serde_json::json!({
            "agent": agent.as_str(),
            "jwks_uri": format!("{agent}/jwks.json"),
        });
        let (keys, hits) = (published.clone(), jwks_hits.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/aauth-agent",
                get(move || async move { axum::Json(metadata) }),
            )
            .route(
                "/jwks.json",
                get(move || {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let key = keys.lock().unwrap().clone();
                    async move {
                        axum::Json(
                            Jwks::new(vec![JwksKey {
                                kid: Kid::new("key-1".into()).unwrap(),
                                key,
                            }])
                            .to_json_value(),
                        )
                    }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });

        let resource = Origin::parse("https://resource.example", OriginMode::Production).unwrap();
        let mut config = VerifierConfig::new(resource);
        config.origin_mode = OriginMode::Dev;
        let discovery = Discovery::new(Fetcher::new(OriginMode::Dev).unwrap(), OriginMode::Dev);
        let verifier = RequestVerifier::new(config, discovery, true);
        let field = SignatureKeyField::jwks_uri(
            Label::sig(),
            &agent,
            aauth_protocol::signature_key::AAUTH_AGENT_WELL_KNOWN,
            Kid::new("key-1".into()).unwrap(),
        );
        verifier
            .verify(&signed_with(&first, &field), b"")
            .await
            .unwrap();
        assert_eq!(jwks_hits.load(Ordering::SeqCst), 1);

        // The agent restarts with a new key under the same kid.
        let second = SigningKey::generate(Algorithm::Ed25519).unwrap();
        *published.lock().unwrap() = second.public_key().clone();
        let verified = verifier
            .verify(&signed_with(&second, &field), b"")
            .await
            .unwrap();
        assert_eq!(verified.key(), second.public_key());
        assert_eq!(jwks_hits.load(Ordering::SeqCst), 2, "one refetch");

        // A forger's signature within the minute makes no more fetches.
        let forger = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let rejected = verifier
            .verify(&signed_with(&forger, &field), b"")
            .await
            .unwrap_err();
        assert_eq!(rejected.condition, Condition::SignatureInvalid);
        assert_eq!(jwks_hits.load(Ordering::SeqCst), 2);
    }
}
