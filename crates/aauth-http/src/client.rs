//! The signing side: an HTTP client that signs every request as one AAuth
//! identity (E§10, E§9.1) and reads the answer's `Agent-Auth` challenge
//! (E§4) and JSON error body (D§11, P-ERR-1).
//!
//! * [`Identity`] names the key and the `Signature-Key` scheme: `hwk`
//!   (pseudonymous), `jwks_uri` (an agent server), `jwt` with an agent
//!   token (a delegate) or with an auth token (authorized) — P-CH-2.
//! * [`SigningClient::send`] builds `Signature-Key` (SK0 syntax, or the
//!   explainer's parenthesised form behind a switch — P-SK-1, P-SK-2),
//!   signs with [`httpsig::sign`] (`created` = now; a fresh `Nonce` on
//!   POST/PUT/PATCH/DELETE — P-SIG-6; `Content-Digest` for bodies —
//!   P-SIG-1), sends without following redirects, and returns a [`Reply`].
//! * `@authority` is the URL's authority as the server's canonical one:
//!   lowercase host, port only when not the scheme's default (E§10.3.1).
//! * A [`Trace`] hook sees every request and response (the CLI's `--verbose`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aauth_protocol::challenge::{AgentAuth, ChallengeError, Level};
use aauth_protocol::error::ErrorCode;
use aauth_protocol::httpsig::{self, Nonce, SignOptions, SignatureEncoding};
use aauth_protocol::ids::{Kid, Label, Origin};
use aauth_protocol::keys::SigningKey;
use aauth_protocol::secret::SignedToken;
use aauth_protocol::signature_key::{AAUTH_AGENT_WELL_KNOWN, SignatureKeyField, Syntax};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::server::{AGENT_AUTH, unix_now};
pub use crate::trace::{Exchange, StderrTrace, TRACE_BODY_PREVIEW, Trace};

/// Default overall timeout of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read (bigger answers are an error, not a hang).
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Who a request is signed as (P-CH-2 levels, SK0§2.3–2.6). `Debug`
/// shows a token's header and claims, never its signature.
#[derive(Clone)]
pub enum Identity {
    /// Pseudonymous: `hwk` with the key inline (SK0§2.3).
    Hwk(Arc<SigningKey>),
    /// Identified as an agent server: `jwks_uri` with `id` = the agent,
    /// `well-known="aauth-agent"`, `kid` (SK0§2.4, P-SK-3).
    AgentServer {
        /// The agent identifier.
        agent: Origin,
        /// The key's `kid` in the agent's JWKS.
        kid: Kid,
        /// The agent server's signing key.
        key: Arc<SigningKey>,
    },
    /// Identified as an agent delegate: `jwt` with an agent token whose
    /// `cnf.jwk` is `key` (SK0§2.6, E§5).
    Delegate {
        /// The agent token (`agent+jwt`).
        agent_token: String,
        /// The delegate's key.
        key: Arc<SigningKey>,
    },
    /// Authorized: `jwt` with an auth token bound to `key` (E§9.8).
    AuthToken {
        /// The auth token (`auth+jwt`).
        auth_token: String,
        /// The key the auth token's `cnf.jwk` names.
        key: Arc<SigningKey>,
    },
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = |text: &str| SignedToken::new(text);
        match self {
            Self::Hwk(key) => f.debug_tuple("Hwk").field(key).finish(),
            Self::AgentServer { agent, kid, key } => f
                .debug_struct("AgentServer")
                .field("agent", agent)
                .field("kid", kid)
                .field("key", key)
                .finish(),
            Self::Delegate { agent_token, key } => f
                .debug_struct("Delegate")
                .field("agent_token", &token(agent_token))
                .field("key", key)
                .finish(),
            Self::AuthToken { auth_token, key } => f
                .debug_struct("AuthToken")
                .field("auth_token", &token(auth_token))
                .field("key", key)
                .finish(),
        }
    }
}

impl Identity {
    /// The key that signs.
    pub fn key(&self) -> &Arc<SigningKey> {
        match self {
            Self::Hwk(key)
            | Self::AgentServer { key, .. }
            | Self::Delegate { key, .. }
            | Self::AuthToken { key, .. } => key,
        }
    }

    /// The level a request signed this way reaches (P-CH-2).
    pub fn level(&self) -> Level {
        match self {
            Self::Hwk(_) => Level::Pseudonymous,
            Self::AgentServer { .. } | Self::Delegate { .. } => Level::Identified,
            Self::AuthToken { .. } => Level::Authorized,
        }
    }

    /// The `Signature-Key` member for label `sig` (P-SK-1, P-SIG-3).
    pub fn signature_key(&self) -> SignatureKeyField {
        self.signature_key_labelled(Label::sig())
    }

    /// The `Signature-Key` member for `label`.
    pub fn signature_key_labelled(&self, label: Label) -> SignatureKeyField {
        match self {
            Self::Hwk(key) => SignatureKeyField::hwk(label, key.public_key()),
            Self::AgentServer { agent, kid, .. } => {
                SignatureKeyField::jwks_uri(label, agent, AAUTH_AGENT_WELL_KNOWN, kid.clone())
            }
            Self::Delegate { agent_token, .. } => SignatureKeyField::jwt(label, agent_token),
            Self::AuthToken { auth_token, .. } => SignatureKeyField::jwt(label, auth_token),
        }
    }

    /// A short description for logs: the scheme and level, never the token.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Hwk(_) => "hwk (pseudonymous)",
            Self::AgentServer { .. } => "jwks_uri agent server (identified)",
            Self::Delegate { .. } => "jwt agent token (identified)",
            Self::AuthToken { .. } => "jwt auth token (authorized)",
        }
    }
}

/// A request to send: method, absolute URL, optional body and headers.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The method.
    pub method: Method,
    /// The absolute `http(s)` URL.
    pub url: Url,
    /// The body; empty means none (E§10.3).
    pub body: Bytes,
    /// `Content-Type`, required with a body (E§10.3).
    pub content_type: Option<String>,
    /// More headers (not signed unless a verifier asks for them).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The `Nonce` to send; `None` lets the client decide (P-SIG-6: a
    /// fresh one on POST/PUT/PATCH/DELETE). Set it when the body must refer
    /// to it (the P-DEL-2 key proof).
    pub nonce: Option<Nonce>,
}

impl Outgoing {
    /// A request without a body.
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            body: Bytes::new(),
            content_type: None,
            headers: Vec::new(),
            nonce: None,
        }
    }

    /// A `GET`.
    pub fn get(url: Url) -> Self {
        Self::new(Method::GET, url)
    }

    /// A form-encoded `POST` of `pairs` (E§9.3).
    pub fn post_form(url: Url, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Self::new(Method::POST, url).body(body, "application/x-www-form-urlencoded")
    }

    /// A `POST` of a token endpoint request (E§9.3, E§9.6, E§9.7, E§9.10),
    /// form-encoded as [`TokenRequest::to_form`] writes it.
    ///
    /// [`TokenRequest::to_form`]: aauth_protocol::token_request::TokenRequest::to_form
    pub fn token_request(url: Url, request: &aauth_protocol::token_request::TokenRequest) -> Self {
        Self::new(Method::POST, url).body(request.to_form(), "application/x-www-form-urlencoded")
    }

    /// Sets the body and its content type.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>, content_type: impl Into<String>) -> Self {
        self.body = body.into();
        self.content_type = Some(content_type.into());
        self
    }

    /// Uses `nonce` as the `Nonce` header.
    #[must_use]
    pub fn nonce(mut self, nonce: Nonce) -> Self {
        self.nonce = Some(nonce);
        self
    }
}

/// A JSON error body as a peer sent it (D§11.1, RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorReply {
    /// The `error` member, as received.
    pub error: String,
    /// `error_description`.
    #[serde(default)]
    pub error_description: Option<String>,
    /// `required_components` (D§11.2.1).
    #[serde(default)]
    pub required_components: Option<Vec<String>>,
    /// The verifier's signature base (a dev-mode server, P-ERR-3).
    #[serde(default)]
    pub signature_base: Option<String>,
}

impl ErrorReply {
    /// The code: one this implementation knows, or
    /// [`ErrorCode::Unknown`] with the peer's spelling.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::from_wire(&self.error)
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(description) = &self.error_description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

/// The answer to one signed request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (at most [`MAX_RESPONSE_BYTES`]).
    pub body: Bytes,
    /// The `Agent-Auth` challenge, parsed (E§4); `None` when absent.
    pub challenge: Option<Result<AgentAuth, ChallengeError>>,
    /// The JSON error body, when the status is an error and the body is one.
    pub error: Option<ErrorReply>,
}

impl Reply {
    /// The challenge, if present and well-formed.
    pub fn agent_auth(&self) -> Option<&AgentAuth> {
        self.challenge.as_ref().and_then(|c| c.as_ref().ok())
    }

    /// The error code, if the body carried one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(ErrorReply::code)
    }

    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request could not be made or answered. Local failures only.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not an absolute http(s) URL with a host.
    #[error("not an absolute http(s) URL: {0}")]
    Url(String),
    /// A body without `Content-Type` (E§10.3 needs it covered), or another
    /// request that cannot be signed.
    #[error("cannot sign the request: {0}")]
    Sign(#[from] httpsig::SignError),
    /// `Signature-Key` could not be written.
    #[error("cannot write Signature-Key: {0}")]
    SignatureKey(String),
    /// No randomness for the nonce.
    #[error("cannot generate a nonce: {0}")]
    Nonce(String),
    /// A header value was not valid.
    #[error("invalid header {0}")]
    Header(String),
    /// Connecting, sending or reading failed.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// Nothing accepted the connection (refused, no route, no such host).
    #[error("{url}: cannot connect ({reason}); is the server running at {origin}?")]
    Unreachable {
        /// The URL.
        url: String,
        /// Its origin, where a server was expected.
        origin: String,
        /// What failed.
        reason: String,
    },
    /// No answer within the client's timeout.
    #[error("{0}: no answer in time")]
    Timeout(String),
    /// The response body was larger than [`MAX_RESPONSE_BYTES`].
    #[error("{0}: response body larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge(String),
}

/// How a signer writes what a peer reads. Our profile by default; each
/// quirk of a peer that reads nothing else is a field of its own, and
/// [`SignerStyle::py_early`] is the preset for the early PyPI `aauth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerStyle {
    /// The label of `Signature-Key`, `Signature-Input` and `Signature`
    /// (P-SIG-3: we emit `sig`).
    pub label: Label,
    /// The `Signature-Key` syntax (P-SK-1: SK0; P-SK-2: the explainer's
    /// parenthesised form on request).
    pub syntax: Syntax,
    /// The `Signature` value (P-SIG-7: an RFC 8941 byte sequence).
    pub encoding: SignatureEncoding,
}

impl SignerStyle {
    /// Our profile: label `sig`, SK0 `Signature-Key`, RFC 8941 `Signature`.
    pub fn strict() -> Self {
        Self {
            label: Label::sig(),
            syntax: Syntax::Sk0,
            encoding: SignatureEncoding::ByteSequence,
        }
    }

    /// What PyPI `aauth` 0.1 verifies: label `sig1` (it checks no other),
    /// the parenthesised `Signature-Key` (it parses no other) and an
    /// unpadded base64url `Signature` (it decodes no other). The preset
    /// `py-early`.
    pub fn py_early() -> Self {
        Self {
            label: Label::new("sig1".to_owned()).unwrap_or_else(|_| Label::sig()),
            syntax: Syntax::Parenthesised,
            encoding: SignatureEncoding::UnpaddedBase64Url,
        }
    }
}

impl Default for SignerStyle {
    fn default() -> Self {
        Self::strict()
    }
}

/// A named signing preset (`--compat`, `downstream_compat`): our profile,
/// or one peer's quirks together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compat {
    /// Our profile ([`SignerStyle::strict`]).
    #[default]
    Strict,
    /// What PyPI `aauth` 0.1 reads ([`SignerStyle::py_early`]).
    PyEarly,
}

impl Compat {
    /// The preset's style.
    pub fn style(self) -> SignerStyle {
        match self {
            Self::Strict => SignerStyle::strict(),
            Self::PyEarly => SignerStyle::py_early(),
        }
    }
}

/// Signs and sends requests (E§10). Cheap to clone.
#[derive(Clone)]
pub struct SigningClient {
    http: reqwest::Client,
    style: SignerStyle,
    trace: Option<Arc<dyn Trace>>,
}

impl fmt::Debug for SigningClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningClient")
            .field("style", &self.style)
            .field("trace", &self.trace.is_some())
            .finish_non_exhaustive()
    }
}

impl SigningClient {
    /// A client with [`DEFAULT_TIMEOUT`], no redirects followed, SK0 syntax.
    pub fn new() -> Result<Self, ClientError> {
        Self::with_timeout(DEFAULT_TIMEOUT)
    }

    /// A client with an overall per-request `timeout`.
    pub fn with_timeout(timeout: Duration) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            // A signed API call is answered, never redirected: a redirect
            // would carry the signature to another authority.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("aauth-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Transport {
                url: String::new(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            style: SignerStyle::strict(),
            trace: None,
        })
    }

    /// Emits `Signature-Key` in `syntax` (P-SK-2: the switch for the
    /// explainer's parenthesised form).
    #[must_use]
    pub fn with_syntax(mut self, syntax: Syntax) -> Self {
        self.style.syntax = syntax;
        self
    }

    /// Signs in `style` (a peer's quirks, or our profile).
    #[must_use]
    pub fn with_style(mut self, style: SignerStyle) -> Self {
        self.style = style;
        self
    }

    /// Shows every request and response to `trace`.
    #[must_use]
    pub fn with_trace(mut self, trace: Arc<dyn Trace>) -> Self {
        self.trace = Some(trace);
        self
    }

    /// The `Signature-Key` syntax emitted.
    pub fn syntax(&self) -> Syntax {
        self.style.syntax
    }

    /// How requests are signed.
    pub fn style(&self) -> &SignerStyle {
        &self.style
    }

    /// Signs `request` as `identity` without sending it: the request with
    /// every header it will carry (app tests feed it to a router directly).
    pub fn sign(
        &self,
        identity: &Identity,
        request: Outgoing,
    ) -> Result<SignedRequest, ClientError> {
        let Outgoing {
            method,
            url,
            body,
            content_type,
            headers: extra,
            nonce,
        } = request;
        let authority = authority(&url)?;
        let target = target(&url);

        let nonce = match nonce {
            Some(nonce) => Some(nonce),
            // profile: P-SIG-6 — "Our agents send a Nonce header … on
            // POST/PUT/PATCH/DELETE and cover it."
            None if Nonce::expected_for(method.as_str()) => {
                Some(Nonce::generate().map_err(|e| ClientError::Nonce(e.to_string()))?)
            }
            None => None,
        };

        let mut plain: Vec<(String, String)> = Vec::new();
        if let Some(ct) = &content_type {
            plain.push(("content-type".to_owned(), ct.clone()));
        }
        for (name, value) in &extra {
            let value = value
                .to_str()
                .map_err(|_| ClientError::Header(name.to_string()))?;
            plain.push((name.as_str().to_owned(), value.to_owned()));
        }
        let signature_key = identity
            .signature_key_labelled(self.style.label.clone())
            .to_header_value(self.style.syntax)
            .map_err(|e| ClientError::SignatureKey(e.to_string()))?;
        let view = httpsig::Request {
            method: method.as_str(),
            authority: &authority,
            target: &target,
            headers: &plain,
            body: Some(&body),
        };
        let options = SignOptions {
            label: self.style.label.clone(),
            nonce: nonce.as_ref(),
            encoding: self.style.encoding,
            ..SignOptions::new(unix_now())
        };
        let signed = httpsig::sign(&view, &signature_key, identity.key(), &options)?;

        let mut headers = HeaderMap::new();
        for (name, value) in plain
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .chain(signed.headers())
        {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ClientError::Header(name.to_owned()))?;
            let value =
                HeaderValue::from_str(value).map_err(|_| ClientError::Header(name.to_string()))?;
            headers.append(name, value);
        }
        Ok(SignedRequest {
            method,
            url,
            headers,
            body,
            nonce,
        })
    }

    /// Signs `request` as `identity` and sends it.
    pub async fn send(&self, identity: &Identity, request: Outgoing) -> Result<Reply, ClientError> {
        let signed = self.sign(identity, request)?;
        self.send_signed(signed).await
    }

    /// Sends a request signed by [`SigningClient::sign`].
    pub async fn send_signed(&self, signed: SignedRequest) -> Result<Reply, ClientError> {
        let SignedRequest {
            method,
            url,
            headers,
            body,
            ..
        } = signed;
        self.trace(&Exchange::Request {
            method: &method,
            url: &url,
            headers: &headers,
            body: &body,
        });
        let url_text = url.to_string();
        let origin = url.origin().ascii_serialization();
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                ClientError::Timeout(url_text.clone())
            } else if e.is_connect() {
                ClientError::Unreachable {
                    url: url_text.clone(),
                    origin: origin.clone(),
                    reason: connect_reason(&e),
                }
            } else {
                ClientError::Transport {
                    url: url_text.clone(),
                    reason: error_chain(&e),
                }
            }
        };
        let mut builder = self.http.request(method, url.clone()).headers(headers);
        if !body.is_empty() {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut received = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if received.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
                return Err(ClientError::TooLarge(url_text));
            }
            received.extend_from_slice(&chunk);
        }
        let body = Bytes::from(received);
        self.trace(&Exchange::Response {
            url: &url,
            status,
            headers: &headers,
            body: &body,
        });
        Ok(reply(status, headers, body))
    }

    fn trace(&self, exchange: &Exchange<'_>) {
        if let Some(trace) = &self.trace {
            trace.exchange(exchange);
        }
    }
}

/// A signed request, ready to send (or to hand to a router in a test).
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// The method.
    pub method: Method,
    /// The URL.
    pub url: Url,
    /// Every header: `Content-Type`, the caller's, and the signer's
    /// (`Signature-Key`, `Nonce`, `Content-Digest`, `Signature-Input`, `Signature`).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The `Nonce` sent, if any.
    pub nonce: Option<Nonce>,
}

impl SignedRequest {
    /// As an `http::Request` whose URI is the path and query (what a
    /// router sees behind a listener).
    pub fn into_http(self) -> Result<http::Request<Bytes>, ClientError> {
        let mut request = http::Request::new(self.body);
        *request.method_mut() = self.method;
        *request.uri_mut() = target(&self.url)
            .parse()
            .map_err(|_| ClientError::Url(self.url.to_string()))?;
        *request.headers_mut() = self.headers;
        Ok(request)
    }
}

/// Reads the challenge and the error body of a response.
pub fn reply(status: StatusCode, headers: HeaderMap, body: Bytes) -> Reply {
    let challenge = headers.get(AGENT_AUTH).map(|value| {
        value
            .to_str()
            .map_err(|_| ChallengeError::Syntax("not visible ASCII".to_owned()))
            .and_then(AgentAuth::parse)
    });
    let error = if status.is_client_error() || status.is_server_error() {
        serde_json::from_slice::<ErrorReply>(&body).ok()
    } else {
        None
    };
    Reply {
        status,
        headers,
        body,
        challenge,
        error,
    }
}

/// `@authority` for `url` as its server's canonical authority (E§10.3.1):
/// the lowercase host, and the port only when it is not the default.
pub fn authority(url: &Url) -> Result<String, ClientError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::Url(url.to_string()));
    }
    // `Url` lowercases hosts of special schemes and drops default ports.
    let host = url
        .host_str()
        .ok_or_else(|| ClientError::Url(url.to_string()))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The request target: the path plus `?query` when the URL has a `?`.
pub fn target(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// The innermost cause of a failed connection ("Connection refused (os
/// error 111)"), without the layers above it.
fn connect_reason(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aauth_protocol::challenge::Level;
    use aauth_protocol::httpsig::NonceRule;
    use aauth_protocol::ids::OriginMode;
    use aauth_protocol::keys::Algorithm;
    use aauth_protocol::tokens::agent_token::AgentTokenBuilder;
    use aauth_protocol::tokens::auth_token::AuthTokenBuilder;
    use aauth_protocol::verify::VerifierConfig;
    use axum::Router;
    use axum::extract::{Request, State};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{any, get};
    use serde_json::json;

    use super::*;
    use crate::discovery::Discovery;
    use crate::fetch::Fetcher;
    use crate::server::{ErrorResponse, RequestVerifier, read_body};

    /// One loopback server playing agent server, auth server and resource:
    /// it publishes metadata and a JWKS, and `/echo` verifies each request
    /// with [`RequestVerifier`] and answers what it established.
    struct World {
        origin: Origin,
        kid: Kid,
        key: Arc<SigningKey>,
    }

    async fn echo(State(verifier): State<Arc<RequestVerifier>>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = match read_body(body, 1 << 20).await {
            Ok(body) => body,
            Err(e) => return e.into_response(),
        };
        match verifier.verify(&parts, &body).await {
            Ok(v) => axum::Json(json!({
                "level": format!("{:?}", v.level()),
                "agent": v.agent().map(Origin::as_str),
                "delegate": v.delegate(),
                "nonce": v.nonce().is_some(),
                "body": String::from_utf8_lossy(&body),
            }))
            .into_response(),
            Err(rejected) => rejected
                .into_error()
                .with_challenge(AgentAuth::identity())
                .into_response(),
        }
    }

    async fn world() -> World {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let origin = Origin::parse(&format!("http://127.0.0.1:{port}"), OriginMode::Dev).unwrap();
        let key = Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap());
        let kid = Kid::new("k1".into()).unwrap();
        let jwks = aauth_protocol::jwk::Jwks::new(vec![aauth_protocol::jwk::JwksKey {
            kid: kid.clone(),
            key: key.public_key().clone(),
        }])
        .to_json_value();
        let o = origin.as_str().to_owned();
        let agent_md = json!({"agent": o, "jwks_uri": format!("{o}/jwks.json")});
        let issuer_md = json!({
            "issuer": o, "jwks_uri": format!("{o}/jwks.json"),
            "agent_token_endpoint": format!("{o}/token"),
            "agent_auth_endpoint": format!("{o}/consent"),
            "agent_signing_algs_supported": ["ed25519"],
            "request_types_supported": ["auth", "code", "refresh"],
        });
        let mut config = VerifierConfig::new(origin.clone());
        config.origin_mode = OriginMode::Dev;
        config.trusted_auth_servers = vec![origin.clone()];
        config.http.require_nonce = NonceRule::NonIdempotent;
        let discovery = Discovery::new(Fetcher::new(OriginMode::Dev).unwrap(), OriginMode::Dev);
        let verifier = Arc::new(RequestVerifier::new(config, discovery, true));
        let app = Router::new()
            .route(
                "/.well-known/aauth-agent",
                get(move || async move { axum::Json(agent_md) }),
            )
            .route(
                "/.well-known/aauth-issuer",
                get(move || async move { axum::Json(issuer_md) }),
            )
            .route("/jwks.json", get(move || async move { axum::Json(jwks) }))
            .route("/echo", any(echo))
            .route(
                "/redirect",
                get(|| async { axum::response::Redirect::temporary("/echo") }),
            )
            .route(
                "/challenge",
                get(|| async {
                    ErrorResponse::new(aauth_protocol::error::Condition::LevelTooLow, "more")
                        .with_challenge(AgentAuth::identity())
                }),
            )
            .with_state(verifier);
        tokio::spawn(async move { axum::serve(listener, app).await });
        World { origin, kid, key }
    }

    fn url(world: &World, path: &str) -> Url {
        Url::parse(&format!("{}{path}", world.origin)).unwrap()
    }

    fn fresh_key() -> Arc<SigningKey> {
        Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap())
    }

    fn identities(world: &World) -> Vec<(Identity, &'static str, Option<&'static str>)> {
        let now = i64::try_from(unix_now()).unwrap();
        let delegate_key = fresh_key();
        let agent_token = AgentTokenBuilder::new(
            world.origin.clone(),
            "delegate-1",
            delegate_key.public_key().clone(),
        )
        .build(now)
        .unwrap()
        .sign(&world.key, &world.kid)
        .unwrap();
        let auth_key = fresh_key();
        let auth_token = AuthTokenBuilder::new(
            world.origin.clone(),
            world.origin.clone(),
            world.origin.clone(),
            auth_key.public_key().clone(),
        )
        .build(now)
        .unwrap()
        .sign(&world.key, &world.kid)
        .unwrap();
        vec![
            (Identity::Hwk(fresh_key()), "Pseudonymous", None),
            (
                Identity::AgentServer {
                    agent: world.origin.clone(),
                    kid: world.kid.clone(),
                    key: world.key.clone(),
                },
                "Identified",
                None,
            ),
            (
                Identity::Delegate {
                    agent_token,
                    key: delegate_key,
                },
                "Identified",
                Some("delegate-1"),
            ),
            (
                Identity::AuthToken {
                    auth_token,
                    key: auth_key,
                },
                "Authorized",
                None,
            ),
        ]
    }

    #[tokio::test]
    async fn every_identity_verifies_with_get_and_post_in_both_syntaxes() {
        // profile: P-SK-1, P-SK-2 (the parenthesised switch), P-SIG-6
        let world = world().await;
        for syntax in [Syntax::Sk0, Syntax::Parenthesised] {
            let client = SigningClient::new().unwrap().with_syntax(syntax);
            for (identity, level, delegate) in identities(&world) {
                let reply = client
                    .send(&identity, Outgoing::get(url(&world, "/echo?x=1")))
                    .await
                    .unwrap();
                assert_eq!(
                    reply.status,
                    200,
                    "{syntax:?} {identity:?}: {}",
                    reply.text()
                );
                let seen: serde_json::Value = reply.json().unwrap();
                assert_eq!(seen["level"], level);
                assert_eq!(seen["nonce"], false, "GET carries no nonce");
                assert_eq!(seen["delegate"].as_str(), delegate);

                let reply = client
                    .send(
                        &identity,
                        Outgoing::post_form(url(&world, "/echo"), &[("a", "b c")]),
                    )
                    .await
                    .unwrap();
                assert_eq!(
                    reply.status,
                    200,
                    "{syntax:?} {identity:?}: {}",
                    reply.text()
                );
                let seen: serde_json::Value = reply.json().unwrap();
                assert_eq!(seen["nonce"], true, "POST carries a fresh nonce (P-SIG-6)");
                assert_eq!(seen["body"], "a=b+c");
            }
        }
    }

    #[tokio::test]
    async fn identity_levels_and_schemes_are_as_p_ch_2_says() {
        // profile: P-CH-2
        let world = world().await;
        let levels: Vec<Level> = identities(&world).iter().map(|(i, ..)| i.level()).collect();
        assert_eq!(
            levels,
            [
                Level::Pseudonymous,
                Level::Identified,
                Level::Identified,
                Level::Authorized
            ]
        );
        let server = identities(&world).into_iter().nth(1).unwrap().0;
        let value = server.signature_key().to_header_value(Syntax::Sk0).unwrap();
        assert!(
            value.starts_with("sig=jwks_uri;") && value.contains("well-known=\"aauth-agent\""),
            "{value}"
        );
    }

    #[tokio::test]
    async fn a_body_without_content_type_is_refused_before_sending() {
        let world = world().await;
        let client = SigningClient::new().unwrap();
        let mut request = Outgoing::new(Method::PUT, url(&world, "/echo"));
        request.body = Bytes::from_static(b"x");
        let error = client
            .send(&Identity::Hwk(fresh_key()), request)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::Sign(httpsig::SignError::ContentTypeMissing)
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn challenges_and_error_bodies_are_parsed() {
        let world = world().await;
        let client = SigningClient::new().unwrap();
        let reply = client
            .send(
                &Identity::Hwk(fresh_key()),
                Outgoing::get(url(&world, "/challenge")),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 401);
        assert_eq!(reply.agent_auth().unwrap().level(), Level::Identified);
        assert_eq!(reply.error_code(), Some(ErrorCode::InsufficientAuthLevel));
        assert_eq!(
            reply.error.unwrap().error_description.as_deref(),
            Some("more")
        );
    }

    #[tokio::test]
    async fn a_caller_chosen_nonce_is_sent_and_its_replay_refused() {
        // profile: P-SIG-6 — the P-DEL-2 key proof needs the nonce up front.
        let world = world().await;
        let client = SigningClient::new().unwrap();
        let mut request = Outgoing::get(url(&world, "/echo"));
        request.headers.push((
            HeaderName::from_static("x-extra"),
            HeaderValue::from_static("1"),
        ));
        let identity = Identity::Hwk(fresh_key());
        let nonce = Nonce::generate().unwrap();
        let first = client
            .send(
                &identity,
                Outgoing::post_form(url(&world, "/echo"), &[]).nonce(nonce.clone()),
            )
            .await
            .unwrap();
        assert_eq!(first.status, 200, "{}", first.text());
        let again = client
            .send(
                &identity,
                Outgoing::post_form(url(&world, "/echo"), &[]).nonce(nonce),
            )
            .await
            .unwrap();
        assert_eq!(again.status, 401);
        assert_eq!(again.error_code(), Some(ErrorCode::ReplayedNonce));
        let ok = client.send(&identity, request).await.unwrap();
        assert_eq!(ok.status, 200, "unsigned extra headers do not matter");
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let world = world().await;
        let reply = SigningClient::new()
            .unwrap()
            .send(
                &Identity::Hwk(fresh_key()),
                Outgoing::get(url(&world, "/redirect")),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 307);
    }

    #[test]
    fn authority_is_lowercase_host_and_non_default_port() {
        // E§10.3.1, profile: P-SIG-5
        for (text, expected) in [
            ("https://API.Example.com/x", "api.example.com"),
            ("https://api.example.com:443/x", "api.example.com"),
            ("http://127.0.0.1:8080/x", "127.0.0.1:8080"),
            ("http://localhost:80/", "localhost"),
            ("https://api.example.com:8443/", "api.example.com:8443"),
            ("http://[::1]:9000/", "[::1]:9000"),
        ] {
            assert_eq!(authority(&Url::parse(text).unwrap()).unwrap(), expected);
        }
        assert!(authority(&Url::parse("ftp://x.example/").unwrap()).is_err());
        assert_eq!(target(&Url::parse("https://a.example/p?").unwrap()), "/p?");
        assert_eq!(
            target(&Url::parse("https://a.example/p?q=1").unwrap()),
            "/p?q=1"
        );
        assert_eq!(target(&Url::parse("https://a.example").unwrap()), "/");
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Trace for Recorder {
        fn exchange(&self, exchange: &Exchange<'_>) {
            let line = match exchange {
                Exchange::Request {
                    method, headers, ..
                } => {
                    format!(
                        "{method} sig-input={}",
                        headers.contains_key("signature-input")
                    )
                }
                Exchange::Response { status, .. } => status.to_string(),
            };
            self.0.lock().unwrap().push(line);
        }
    }

    #[tokio::test]
    async fn the_trace_sees_every_request_and_response() {
        let world = world().await;
        let recorder = Arc::new(Recorder::default());
        let client = SigningClient::new().unwrap().with_trace(recorder.clone());
        client
            .send(
                &Identity::Hwk(fresh_key()),
                Outgoing::get(url(&world, "/echo")),
            )
            .await
            .unwrap();
        assert_eq!(
            *recorder.0.lock().unwrap(),
            ["GET sig-input=true", "200 OK"]
        );
        // The stderr printer handles bodies of any size.
        StderrTrace.exchange(&Exchange::Response {
            url: &url(&world, "/"),
            status: StatusCode::OK,
            headers: &HeaderMap::new(),
            body: &[b'x'; 3000],
        });
    }

    #[test]
    fn the_py_early_style_signs_the_way_that_peer_reads() {
        // The early PyPI `aauth` verifies only label `sig1`, parses only the
        // parenthesised Signature-Key and decodes only unpadded base64url.
        let key = fresh_key();
        let url = Url::parse("https://resource.example/data?x=1").unwrap();
        let client = SigningClient::new()
            .unwrap()
            .with_style(SignerStyle::py_early());
        let signed = client
            .sign(
                &Identity::Hwk(key.clone()),
                Outgoing::post_form(url, &[("note", "hello")]),
            )
            .unwrap();
        let header = |name: &str| signed.headers[name].to_str().unwrap().to_owned();
        assert!(header("signature-key").starts_with("sig1=(scheme=hwk "));
        assert!(header("signature-input").starts_with("sig1=("));
        let signature = header("signature");
        let value = signature
            .strip_prefix("sig1=:")
            .and_then(|v| v.strip_suffix(':'))
            .unwrap();
        assert!(!value.contains(['=', '+', '/']), "{value}");

        // Our own verifier reads it only with the lenient switch (P-SIG-7).
        struct Nothing;
        impl aauth_protocol::verify::KeyDirectory for Nothing {
            fn key(
                &self,
                _: aauth_protocol::verify::KeyOwner,
                _: &Origin,
                _: &Kid,
            ) -> Result<aauth_protocol::jwk::PublicKey, aauth_protocol::tokens::KeyLookupError>
            {
                Err(aauth_protocol::tokens::KeyLookupError::Unavailable(
                    "an hwk request needs none".to_owned(),
                ))
            }
        }
        let mut config = VerifierConfig::new(
            Origin::parse("https://resource.example", OriginMode::Production).unwrap(),
        );
        let headers = crate::server::Headers(&signed.headers);
        let request = httpsig::Request {
            method: "POST",
            authority: "resource.example",
            target: "/data?x=1",
            headers: &headers,
            body: Some(&signed.body),
        };
        let strict =
            aauth_protocol::verify::verify_request(&request, &config, &Nothing, unix_now());
        assert_eq!(
            strict.unwrap_err().error.condition(),
            aauth_protocol::error::Condition::SignatureInvalid
        );
        config.http.lenient_base64 = true;
        let verified =
            aauth_protocol::verify::verify_request(&request, &config, &Nothing, unix_now())
                .unwrap();
        assert_eq!(verified.key(), key.public_key());
    }
}
