//! A world for app tests: an agent server and a resource on loopback
//! (metadata + JWKS, dev mode), delegates with agent tokens, and the auth
//! server's router over a SQLite file in a temporary directory.

#![allow(dead_code, reason = "each test file uses a part")]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a broken world must fail the test loudly"
)]

use std::path::PathBuf;

use aauth_auth_server::config::{AutonomousConfig, Config, UserConfig};
use aauth_auth_server::store::Store;
use aauth_auth_server::{AppState, app};
use aauth_http::discovery::Discovery;
use aauth_http::fetch::Fetcher;
use aauth_http::server::unix_now;
use aauth_protocol::b64;
use aauth_protocol::httpsig::{self, Nonce, SignOptions};
use aauth_protocol::ids::{Kid, Label, Origin, OriginMode, Scope};
use aauth_protocol::jwk::{Jwks, JwksKey, PublicKey};
use aauth_protocol::keys::{Algorithm, SigningKey};
use aauth_protocol::signature_key::{SignatureKeyField, Syntax};
use aauth_protocol::tokens::agent_token::AgentTokenBuilder;
use aauth_protocol::tokens::resource_token::ResourceTokenBuilder;
use argon2::{Argon2, Params, PasswordHasher as _};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::get;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub const PASSWORD: &str = "correct horse";
pub const LOGO: &str = "https://cdn.example/agent-logo.png";
pub const REDIRECT: &str = "https://client.example/callback";
pub const LOOPBACK: &str = "http://127.0.0.1/loopback";

pub fn now() -> i64 {
    i64::try_from(unix_now()).unwrap()
}

pub fn kid(text: &str) -> Kid {
    Kid::new(text.to_owned()).unwrap()
}

pub fn ed25519() -> SigningKey {
    SigningKey::generate(Algorithm::Ed25519).unwrap()
}

/// Serves `/.well-known/{well_known}` with `metadata` and `/jwks.json` with `key`.
pub async fn peer(
    well_known: &str,
    metadata: impl Fn(&Origin) -> Value,
    key: &SigningKey,
    key_id: &str,
) -> Origin {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let origin = Origin::parse(&format!("http://127.0.0.1:{port}"), OriginMode::Dev).unwrap();
    let document = metadata(&origin);
    let jwks = Jwks::new(vec![JwksKey {
        kid: kid(key_id),
        key: key.public_key().clone(),
    }])
    .to_json_value();
    let router = Router::new()
        .route(
            &format!("/.well-known/{well_known}"),
            get(move || async move { axum::Json(document) }),
        )
        .route("/jwks.json", get(move || async move { axum::Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    origin
}

/// The parties around the auth server.
pub struct World {
    pub dir: PathBuf,
    pub config: Config,
    pub issuer: Origin,
    pub state: AppState,
    pub router: Router,
    pub agent: Origin,
    pub agent_key: SigningKey,
    pub resource: Origin,
    pub resource_key: SigningKey,
}

/// A delegate: its key and its agent token.
pub struct Delegate {
    pub key: SigningKey,
    pub agent_token: String,
    pub sub: String,
}

pub fn cheap_hash(password: &str) -> String {
    // Cheap parameters: test configurations only.
    let argon = Argon2::from(Params::new(8, 1, 1, None).unwrap());
    argon
        .hash_password(password.as_bytes())
        .unwrap()
        .to_string()
}

impl World {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// A world whose configuration `tweak` adjusts.
    pub async fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        let agent_key = ed25519();
        let agent = peer(
            "aauth-agent",
            |origin| {
                json!({
                    "agent": origin.as_str(),
                    "jwks_uri": format!("{origin}/jwks.json"),
                    "redirect_uris": [REDIRECT, LOOPBACK],
                    "name": "Calendar <Helper>",
                    "logo_uri": LOGO,
                })
            },
            &agent_key,
            "agent-1",
        )
        .await;
        let resource_key = ed25519();
        let resource = peer(
            "aauth-resource",
            |origin| {
                json!({
                    "resource": origin.as_str(),
                    "jwks_uri": format!("{origin}/jwks.json"),
                    "resource_token_endpoint": format!("{origin}/resource/token"),
                    "name": "Documents <&> Co",
                    "scope_descriptions": {
                        "data.read": "Read your documents",
                        "data.write": "Change your documents",
                    },
                })
            },
            &resource_key,
            "res-1",
        )
        .await;
        let dir = std::env::temp_dir().join(format!(
            "aauth-as-app-{}-{}",
            std::process::id(),
            b64::url_encode(aauth_protocol::keys::sha256(agent.as_str().as_bytes()))
                .get(..12)
                .unwrap()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = Config {
            database: Some(dir.join("auth.db")),
            users: vec![UserConfig {
                username: "alice".into(),
                password_hash: cheap_hash(PASSWORD),
                sub: Some("user-alice".into()),
                name: Some("Alice Example".into()),
                email: Some("alice@example.com".into()),
                email_verified: Some(true),
            }],
            autonomous: vec![
                AutonomousConfig {
                    agent: agent.as_str().into(),
                    resource: resource.as_str().into(),
                    scopes: vec!["data.read".into()],
                },
                AutonomousConfig {
                    agent: agent.as_str().into(),
                    resource: agent.as_str().into(),
                    scopes: vec!["jobs.run".into()],
                },
            ],
            ..Config::default()
        };
        tweak(&mut config);
        // The auth server is reached through `oneshot`; its identifier only
        // fixes `@authority` and the tokens' `iss`/`aud`.
        let issuer = Origin::parse("http://127.0.0.1:9", OriginMode::Dev).unwrap();
        let state = open_state(&config, &issuer).await;
        let router = app(state.clone());
        Self {
            dir,
            config,
            issuer,
            state,
            router,
            agent,
            agent_key,
            resource,
            resource_key,
        }
    }

    /// Closes the database and starts a fresh server over the same file (P-AS-8).
    pub async fn restart(&mut self) {
        self.state.store().close().await;
        self.state = open_state(&self.config, &self.issuer).await;
        self.router = app(self.state.clone());
    }

    pub fn delegate(&self, sub: &str) -> Delegate {
        self.delegate_with_key(sub, ed25519())
    }

    pub fn delegate_with_key(&self, sub: &str, key: SigningKey) -> Delegate {
        let agent_token = AgentTokenBuilder::new(self.agent.clone(), sub, key.public_key().clone())
            .build(now())
            .unwrap()
            .sign(&self.agent_key, &kid("agent-1"))
            .unwrap();
        Delegate {
            key,
            agent_token,
            sub: sub.into(),
        }
    }

    /// A resource token from the resource for the agent's `key`.
    pub fn resource_token(&self, key: &PublicKey, scope: &str) -> String {
        self.resource_token_for(&self.issuer, key, scope)
    }

    pub fn resource_token_for(&self, aud: &Origin, key: &PublicKey, scope: &str) -> String {
        ResourceTokenBuilder::new(
            self.resource.clone(),
            aud.clone(),
            self.agent.clone(),
            key,
            Scope::parse(scope).unwrap(),
        )
        .build(now())
        .unwrap()
        .sign(&self.resource_key, &kid("res-1"))
        .unwrap()
    }

    /// The agent server signing as itself (`jwks_uri`).
    pub fn agent_server_field(&self) -> String {
        SignatureKeyField::jwks_uri(Label::sig(), &self.agent, "aauth-agent", kid("agent-1"))
            .to_header_value(Syntax::Sk0)
            .unwrap()
    }

    /// Signs a token request with `key` and `Signature-Key` `field`.
    pub fn signed_token_request(
        &self,
        key: &SigningKey,
        field: &str,
        form: &[(&str, &str)],
    ) -> Request<Body> {
        let body = serde_urlencoded::to_string(form).unwrap();
        self.signed_post(key, field, body.into_bytes(), true)
    }

    pub fn signed_post(
        &self,
        key: &SigningKey,
        field: &str,
        body: Vec<u8>,
        nonce: bool,
    ) -> Request<Body> {
        self.signed_post_as(key, field, body, nonce, &SignOptions::new(unix_now()))
    }

    /// [`World::signed_post`] with the label and encoding of `style`.
    pub fn signed_post_as(
        &self,
        key: &SigningKey,
        field: &str,
        body: Vec<u8>,
        nonce: bool,
        style: &SignOptions<'_>,
    ) -> Request<Body> {
        let content_type = "application/x-www-form-urlencoded";
        let headers = vec![("content-type", content_type)];
        let request = httpsig::Request {
            method: "POST",
            authority: self.issuer.authority(),
            target: "/agent/token",
            headers: &headers,
            body: Some(&body),
        };
        let fresh = Nonce::generate().unwrap();
        let mut options = SignOptions {
            label: style.label.clone(),
            encoding: style.encoding,
            ..SignOptions::new(style.created)
        };
        if nonce {
            options.nonce = Some(&fresh);
        }
        let signed = httpsig::sign(&request, field, key, &options).unwrap();
        let mut builder = Request::post("/agent/token").header(header::CONTENT_TYPE, content_type);
        for (name, value) in signed.headers() {
            builder = builder.header(name, value);
        }
        builder.body(Body::from(body)).unwrap()
    }

    /// A token request from `delegate`.
    pub async fn call(&self, delegate: &Delegate, form: &[(&str, &str)]) -> Reply {
        let field = SignatureKeyField::jwt(Label::sig(), delegate.agent_token.clone())
            .to_header_value(Syntax::Sk0)
            .unwrap();
        self.send(self.signed_token_request(&delegate.key, &field, form))
            .await
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A browser GET with an optional cookie.
    pub async fn get(&self, uri: &str, cookie: Option<&str>) -> Reply {
        let mut builder = Request::get(uri);
        if let Some(cookie) = cookie {
            builder = builder.header(header::COOKIE, cookie);
        }
        self.send(builder.body(Body::empty()).unwrap()).await
    }

    /// A browser form POST with an optional cookie.
    pub async fn post_form(&self, uri: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Reply {
        let mut builder =
            Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            builder = builder.header(header::COOKIE, cookie);
        }
        let body = serde_urlencoded::to_string(form).unwrap();
        self.send(builder.body(Body::from(body)).unwrap()).await
    }

    /// `/agent/auth?…` for a request token.
    pub fn auth_uri(request_token: &str, redirect_uri: &str, state: &str) -> String {
        let query = serde_urlencoded::to_string([
            ("request_token", request_token),
            ("redirect_uri", redirect_uri),
            ("state", state),
        ])
        .unwrap();
        format!("/agent/auth?{query}")
    }

    /// Logs alice in through the pages and returns the session cookie.
    pub async fn login(&self, request_token: &str, redirect_uri: &str) -> String {
        let page = self
            .get(&Self::auth_uri(request_token, redirect_uri, "s1"), None)
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let anonymous = page.cookie();
        let reply = self
            .post_form(
                "/agent/auth/login",
                Some(&anonymous),
                &[
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("csrf_token", &page.csrf()),
                    ("request_token", request_token),
                    ("redirect_uri", redirect_uri),
                    ("state", "s1"),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
        reply.cookie()
    }

    /// Logs in and approves (or denies); returns the `Location`.
    pub async fn consent(&self, request_token: &str, redirect_uri: &str, decision: &str) -> String {
        let cookie = self.login(request_token, redirect_uri).await;
        let page = self
            .get(
                &Self::auth_uri(request_token, redirect_uri, "s1"),
                Some(&cookie),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let reply = self
            .post_form(
                "/agent/auth/consent",
                Some(&cookie),
                &[
                    ("decision", decision),
                    ("csrf_token", &page.csrf()),
                    ("request_token", request_token),
                    ("redirect_uri", redirect_uri),
                    ("state", "s1"),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
        reply.location()
    }

    /// Asks for `scope` as `delegate` and consents: the code from the redirect.
    pub async fn code_for(&self, delegate: &Delegate, scope: &str) -> String {
        let reply = self
            .call(
                delegate,
                &[
                    ("request_type", "auth"),
                    ("scope", scope),
                    ("redirect_uri", REDIRECT),
                ],
            )
            .await;
        let request_token = reply.json()["request_token"].as_str().unwrap().to_owned();
        let location = self.consent(&request_token, REDIRECT, "approve").await;
        query_param(&location, "code").unwrap()
    }
}

async fn open_state(config: &Config, issuer: &Origin) -> AppState {
    let store = Store::open(config.database.as_ref().unwrap())
        .await
        .unwrap();
    let discovery = Discovery::new(Fetcher::new(OriginMode::Dev).unwrap(), OriginMode::Dev);
    AppState::new(config.clone(), issuer.clone(), true, store, discovery)
        .await
        .unwrap()
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    /// The `error` code of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `name=value` of the first `Set-Cookie`.
    pub fn cookie(&self) -> String {
        let set = self.header("set-cookie").expect("a Set-Cookie");
        set.split(';').next().unwrap().to_owned()
    }

    pub fn location(&self) -> String {
        self.header("location").expect("a Location").to_owned()
    }

    /// The CSRF token of the page's form.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.text.find(marker).expect("a csrf field") + marker.len();
        let end = self.text[start..].find('"').unwrap();
        self.text[start..start + end].to_owned()
    }
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// The claims of a JWT, unverified (the tests check what was issued).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&b64::url_decode(payload).unwrap()).unwrap()
}
