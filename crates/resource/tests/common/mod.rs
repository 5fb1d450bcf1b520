//! A small world for app tests: an agent server, the trusted auth server and
//! an untrusted one, each a key whose metadata and JWKS a tiny loopback
//! server publishes (dev mode), and a resource built on them.

#![allow(dead_code, reason = "each test file uses part of the world")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failure here is a test failure"
)]

use std::net::SocketAddr;

use aauth_http::runtime::ServerKey;
use aauth_http::server::unix_now;
use aauth_protocol::challenge::AgentAuth;
use aauth_protocol::httpsig::{self, Nonce, SignOptions};
use aauth_protocol::ids::{Kid, Label, Origin, OriginMode, Scope};
use aauth_protocol::jwk::{Jwks, JwksKey, PublicKey};
use aauth_protocol::keys::{Algorithm, SigningKey};
use aauth_protocol::signature_key::{AAUTH_AGENT_WELL_KNOWN, SignatureKeyField, Syntax};
use aauth_protocol::tokens::agent_token::AgentTokenBuilder;
use aauth_protocol::tokens::auth_token::{Act, AuthTokenBuilder};
use aauth_protocol::tokens::resource_token::{self, ResourceTokenContext, VerifiedResourceToken};
use aauth_resource::{AppState, Config, app};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

pub const RESOURCE: &str = "http://127.0.0.1:7000";

pub fn dev(text: &str) -> Origin {
    Origin::parse(text, OriginMode::Dev).unwrap()
}

pub fn scope(text: &str) -> Scope {
    Scope::parse(text).unwrap()
}

pub fn now() -> i64 {
    unix_now() as i64
}

/// A party that publishes one key.
pub struct Peer {
    pub origin: Origin,
    pub key: SigningKey,
    pub kid: Kid,
}

/// Serves `/.well-known/aauth-agent`, `/.well-known/aauth-issuer` and the
/// JWKS for one key on a loopback port.
pub async fn peer() -> Peer {
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let kid = Kid::new("k1".to_owned()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = dev(&format!(
        "http://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    ));
    let o = origin.as_str().to_owned();
    let agent = serde_json::json!({"agent": o, "jwks_uri": format!("{o}/jwks.json")});
    let issuer = serde_json::json!({
        "issuer": o,
        "jwks_uri": format!("{o}/jwks.json"),
        "agent_token_endpoint": format!("{o}/agent/token"),
        "agent_auth_endpoint": format!("{o}/agent/auth"),
        "agent_signing_algs_supported": ["ed25519"],
        "request_types_supported": ["auth", "code", "refresh"],
    });
    let jwks = Jwks::new(vec![JwksKey {
        kid: kid.clone(),
        key: key.public_key().clone(),
    }])
    .to_json_value();
    let router = axum::Router::new()
        .route(
            "/.well-known/aauth-agent",
            axum::routing::get(move || async move { axum::Json(agent) }),
        )
        .route(
            "/.well-known/aauth-issuer",
            axum::routing::get(move || async move { axum::Json(issuer) }),
        )
        .route(
            "/jwks.json",
            axum::routing::get(move || async move { axum::Json(jwks) }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    Peer { origin, key, kid }
}

pub struct World {
    pub agent: Peer,
    pub auth: Peer,
    pub rogue: Peer,
    /// A delegate of `agent`, with its own key.
    pub delegate: SigningKey,
    pub resource_key: PublicKey,
    pub state: AppState,
}

/// A world whose resource reads `extra` TOML on top of the defaults.
pub async fn world_with(extra: &str) -> World {
    let (agent, auth, rogue) = (peer().await, peer().await, peer().await);
    let config = Config::from_toml(&format!("auth_server = \"{}\"\n{extra}", auth.origin)).unwrap();
    let settings = config.resolve(dev(RESOURCE), true).unwrap();
    let key = ServerKey::generate().unwrap();
    let resource_key = key.key.public_key().clone();
    World {
        agent,
        auth,
        rogue,
        delegate: SigningKey::generate(Algorithm::Ed25519).unwrap(),
        resource_key,
        state: AppState::new(settings, key).unwrap(),
    }
}

pub async fn world() -> World {
    world_with("").await
}

/// How a request identifies itself.
pub enum Who<'a> {
    /// No signature at all.
    Unsigned,
    /// `hwk` with this key.
    Hwk(&'a SigningKey),
    /// The agent server itself, `jwks_uri`.
    AgentServer,
    /// A `jwt` (agent or auth token) signed by `key`.
    Jwt(&'a SigningKey, String),
}

/// One request to the resource.
pub struct Call<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub content_type: Option<&'a str>,
    pub body: Vec<u8>,
    pub nonce: Option<Nonce>,
    pub authority: &'a str,
    pub created: u64,
    pub client: SocketAddr,
}

impl<'a> Call<'a> {
    pub fn get(target: &'a str) -> Self {
        Self {
            method: "GET",
            target,
            content_type: None,
            body: Vec::new(),
            nonce: None,
            authority: "127.0.0.1:7000",
            created: unix_now(),
            client: "192.0.2.1:5000".parse().unwrap(),
        }
    }

    /// A POST with a fresh Nonce.
    pub fn post(target: &'a str, content_type: &'a str, body: &[u8]) -> Self {
        Self {
            method: "POST",
            content_type: Some(content_type),
            body: body.to_vec(),
            nonce: Some(Nonce::generate().unwrap()),
            ..Self::get(target)
        }
    }

    pub fn form(target: &'a str, body: &str) -> Self {
        Self::post(target, "application/x-www-form-urlencoded", body.as_bytes())
    }

    pub fn request(&self, world: &World, who: &Who<'_>) -> Request<Body> {
        let mut builder = Request::builder().method(self.method).uri(self.target);
        if let Some(ct) = self.content_type {
            builder = builder.header("content-type", ct);
        }
        let (key, field) = match who {
            Who::Unsigned => (None, None),
            Who::Hwk(key) => (
                Some(*key),
                Some(SignatureKeyField::hwk(Label::sig(), key.public_key())),
            ),
            Who::AgentServer => (
                Some(&world.agent.key),
                Some(SignatureKeyField::jwks_uri(
                    Label::sig(),
                    &world.agent.origin,
                    AAUTH_AGENT_WELL_KNOWN,
                    world.agent.kid.clone(),
                )),
            ),
            Who::Jwt(key, jwt) => (
                Some(*key),
                Some(SignatureKeyField::jwt(Label::sig(), jwt.clone())),
            ),
        };
        if let (Some(key), Some(field)) = (key, field) {
            let header = field.to_header_value(Syntax::Sk0).unwrap();
            let headers: Vec<(&str, &str)> = self
                .content_type
                .map(|ct| vec![("content-type", ct)])
                .unwrap_or_default();
            let request = httpsig::Request {
                method: self.method,
                authority: self.authority,
                target: self.target,
                headers: &headers,
                body: Some(&self.body),
            };
            let options = SignOptions {
                nonce: self.nonce.as_ref(),
                ..SignOptions::new(self.created)
            };
            let signed = httpsig::sign(&request, &header, key, &options).unwrap();
            for (name, value) in signed.headers() {
                builder = builder.header(name, value);
            }
        }
        let mut request = builder.body(Body::from(self.body.clone())).unwrap();
        request.extensions_mut().insert(ConnectInfo(self.client));
        request
    }
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
}

impl Answer {
    pub fn error(&self) -> &str {
        self.json
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or_default()
    }

    pub fn challenge(&self) -> Option<AgentAuth> {
        self.headers
            .get("agent-auth")
            .map(|v| AgentAuth::parse(v.to_str().unwrap()).unwrap())
    }
}

pub async fn send_request(world: &World, request: Request<Body>) -> Answer {
    let response = app(world.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes)));
    Answer {
        status,
        headers,
        json,
    }
}

pub async fn send(world: &World, call: &Call<'_>, who: &Who<'_>) -> Answer {
    send_request(world, call.request(world, who)).await
}

/// An agent token for the delegate's key.
pub fn agent_token(world: &World) -> String {
    AgentTokenBuilder::new(
        world.agent.origin.clone(),
        "delegate-1",
        world.delegate.public_key().clone(),
    )
    .build(now())
    .unwrap()
    .sign(&world.agent.key, &world.agent.kid)
    .unwrap()
}

/// Options for an auth token.
pub struct AuthToken<'a> {
    pub issuer: &'a Peer,
    pub aud: Origin,
    pub scope: Option<&'a str>,
    pub sub: Option<&'a str>,
    pub issued: i64,
    pub lifetime: u32,
    /// The actor chain of an exchanged token (E§9.10).
    pub act: Option<Act>,
}

impl<'a> AuthToken<'a> {
    pub fn new(world: &'a World, scope: &'a str) -> Self {
        Self {
            issuer: &world.auth,
            aud: dev(RESOURCE),
            scope: Some(scope),
            sub: Some("alice"),
            issued: now(),
            lifetime: 600,
            act: None,
        }
    }

    /// Signed by the issuer, bound to the delegate's key.
    pub fn mint(&self, world: &World) -> String {
        let mut builder = AuthTokenBuilder::new(
            self.issuer.origin.clone(),
            self.aud.clone(),
            world.agent.origin.clone(),
            world.delegate.public_key().clone(),
        )
        .agent_delegate("delegate-1")
        .lifetime_secs(self.lifetime);
        if let Some(scope) = self.scope {
            builder = builder.scope(Scope::parse(scope).unwrap());
        }
        if let Some(sub) = self.sub {
            builder = builder.subject(sub);
        }
        if let Some(act) = &self.act {
            builder = builder.act(act.clone());
        }
        builder
            .build(self.issued)
            .unwrap()
            .sign(&self.issuer.key, &self.issuer.kid)
            .unwrap()
    }
}

/// Validates a resource token as the auth server would (E§6.5) for `agent`
/// signing with `key`.
pub fn check_resource_token(
    world: &World,
    token: &str,
    agent: &Origin,
    key: &PublicKey,
) -> VerifiedResourceToken {
    let mut ctx = ResourceTokenContext::new(now(), &world.auth.origin, agent, key);
    ctx.origin_mode = OriginMode::Dev;
    let resource_key = world.resource_key.clone();
    let keys = move |iss: &Origin, _kid: &Kid| {
        assert_eq!(iss.as_str(), RESOURCE);
        Ok(resource_key.clone())
    };
    resource_token::validate(token, &ctx, &keys).unwrap()
}

/// The resource token of an `auth-token` challenge, validated.
pub fn challenged_resource_token(
    world: &World,
    answer: &Answer,
    agent: &Origin,
    key: &PublicKey,
) -> VerifiedResourceToken {
    let challenge = answer.challenge().expect("an Agent-Auth challenge");
    assert_eq!(
        challenge.level(),
        aauth_protocol::challenge::Level::Authorized
    );
    assert_eq!(challenge.auth_server(), Some(world.auth.origin.as_str()));
    let token = challenge.resource_token().expect("a resource token");
    check_resource_token(world, token, agent, key)
}
