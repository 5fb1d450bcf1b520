//! The receiving side for axum servers: verify a request (E§10.7) with
//! discovery and a replay cache, and answer failures as the specification's
//! JSON errors with their `Agent-Auth` challenge (P-ERR-1..3, P-CH-4).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aauth_protocol::challenge::AgentAuth;
use aauth_protocol::error::{Condition, ErrorBody};
use aauth_protocol::httpsig::{HeaderSource, Request};
use aauth_protocol::ids::Thumbprint;
use aauth_protocol::keys::sha256;
use aauth_protocol::verify::{
    self, ExpiredTokenHolder, KeyDirectory, TokenCache, ValidatedToken, VerifiedRequest,
    VerifierConfig,
};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::discovery::Discovery;

/// The `Agent-Auth` response header (E§4, D§13.3).
pub const AGENT_AUTH: &str = "agent-auth";

/// Largest form body an auth server or agent server accepts (P-ERR-1, P-AS-1).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

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

    /// Adds `Retry-After` (429, E§4.5).
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
}

impl Rejected {
    /// The error response, without a challenge.
    pub fn into_error(self) -> ErrorResponse {
        let mut error = ErrorResponse::new(self.condition, self.description);
        error.0.body.required_components = self.required_components;
        error.0.body.signature_base = self.signature_base;
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
#[derive(Debug, Clone)]
pub struct RequestVerifier {
    config: VerifierConfig,
    with_nonce: VerifierConfig,
    discovery: Discovery,
    nonces: moka::sync::Cache<(Thumbprint, String), ()>,
    tokens: Tokens,
    dev: bool,
}

impl RequestVerifier {
    /// A verifier for `config`. In `dev` mode failures carry the signature
    /// base the server computed (P-ERR-3).
    pub fn new(config: VerifierConfig, discovery: Discovery, dev: bool) -> Self {
        let mut with_nonce = config.clone();
        with_nonce.http.require_nonce = true;
        // A nonce need only be remembered while its `created` is acceptable:
        // `max_skew` either side of now.
        let window = config.http.max_skew.saturating_mul(2).saturating_add(1);
        Self {
            config,
            with_nonce,
            discovery,
            nonces: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(window))
                .build(),
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
    /// needs through discovery first. `require_nonce` makes a missing `Nonce`
    /// an error (P-SIG-6); a present one is always checked against the
    /// replay cache.
    pub async fn verify(
        &self,
        parts: &Parts,
        body: &[u8],
        require_nonce: bool,
    ) -> Result<VerifiedRequest, Rejected> {
        let headers = Headers(&parts.headers);
        let request = self.request(parts, &headers, body, require_nonce);
        let need = verify::key_need(&request, self.config_for(require_nonce));
        let directory = self.discovery.prefetch(&need).await;
        self.verify_with(parts, body, require_nonce, &directory)
    }

    /// [`RequestVerifier::verify`] with keys from `directory` instead of
    /// discovery: for a server that only ever checks keys of its own (the
    /// agent server checking the agent tokens it issued).
    pub fn verify_with<D: KeyDirectory + ?Sized>(
        &self,
        parts: &Parts,
        body: &[u8],
        require_nonce: bool,
        directory: &D,
    ) -> Result<VerifiedRequest, Rejected> {
        let config = self.config_for(require_nonce);
        let headers = Headers(&parts.headers);
        let request = self.request(parts, &headers, body, require_nonce);
        let verified =
            verify::verify_request_cached(&request, config, directory, &self.tokens, unix_now())
                .map_err(|rejection| Rejected {
                    condition: rejection.error.condition(),
                    description: rejection.error.to_string(),
                    required_components: rejection
                        .error
                        .required_components()
                        .map(<[String]>::to_vec),
                    signature_base: rejection.signature_base.filter(|_| self.dev),
                    expired_token_holder: rejection.expired_token_holder,
                })?;
        // E§10.5: "Check that the nonce has not been used previously within
        // the replay window", scoped by (authority, key, nonce). The authority
        // is this server's own, so the key and the nonce name an entry.
        if let Some(nonce) = verified.nonce() {
            let entry = self
                .nonces
                .entry((verified.thumbprint().clone(), nonce.as_str().to_owned()))
                .or_insert(());
            if !entry.is_fresh() {
                return Err(Rejected {
                    condition: Condition::NonceReplayed,
                    description: "this Nonce was already used with this key (E§10.5)".to_owned(),
                    required_components: None,
                    signature_base: None,
                    expired_token_holder: None,
                });
            }
        }
        Ok(verified)
    }

    fn config_for(&self, require_nonce: bool) -> &VerifierConfig {
        if require_nonce {
            &self.with_nonce
        } else {
            &self.config
        }
    }

    /// The request as the protocol crate sees it, with this server's
    /// configured authority (P-SIG-5).
    fn request<'a>(
        &'a self,
        parts: &'a Parts,
        headers: &'a Headers<'a>,
        body: &'a [u8],
        require_nonce: bool,
    ) -> Request<'a, Headers<'a>> {
        Request {
            method: parts.method.as_str(),
            authority: &self.config_for(require_nonce).authority,
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

/// Parses an `application/x-www-form-urlencoded` body; anything else is
/// 400 `invalid_request` naming the problem.
pub fn parse_form<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ErrorResponse> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(ErrorResponse::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
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
