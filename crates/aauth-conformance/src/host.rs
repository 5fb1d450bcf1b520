//! The suite's own parties on loopback: an agent server (metadata, JWKS,
//! the agent tokens of its delegates), the same origin as a resource (for
//! the auth server role: resource tokens the suite mints itself), and the
//! redirect URI where an auth server sends the user back with a code.
//!
//! The JWKS is mutable so that checks can rotate keys: add a key under a
//! new `kid`, or replace the key under an existing one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use aauth_http::client::Identity;
use aauth_protocol::ids::{Kid, Origin, OriginMode};
use aauth_protocol::jwk::PublicKey;
use aauth_protocol::keys::{Algorithm, SigningKey};
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use url::Url;

use crate::jws;
use aauth_http::server::unix_now;

/// The agent server's first key id.
pub const AGENT_KID: &str = "conformance-agent-1";
/// The suite-as-resource's key id.
pub const RESOURCE_KID: &str = "conformance-resource-1";
/// Where the suite's JWKS lives.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// The redirect URI path.
pub const CALLBACK_PATH: &str = "/callback";

/// A fresh Ed25519 key. Generation fails only when the operating system
/// has no randomness to give, and then nothing the suite signs could be
/// trusted: the process stops.
pub fn new_key() -> Arc<SigningKey> {
    Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap_or_else(|_| std::process::abort()))
}

struct Inner {
    origin: Origin,
    url: Url,
    agent_key: RwLock<(Kid, Arc<SigningKey>)>,
    resource_key: (Kid, Arc<SigningKey>),
    jwks: RwLock<Vec<(String, PublicKey)>>,
    jwks_fetches: Mutex<u32>,
    callbacks: Mutex<Vec<HashMap<String, String>>>,
    arrived: Notify,
}

/// The suite's parties, serving until dropped.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("origin", &self.inner.origin)
            .finish()
    }
}

impl Host {
    /// Binds `listen` (loopback, any port by default) and serves; the
    /// public origin is `public` when given (a tunnel or proxy in front),
    /// otherwise `http://` + the bound address.
    pub async fn start(listen: &str, public: Option<&Url>) -> Result<Self, String> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let origin_text = match public {
            Some(url) => url.origin().ascii_serialization(),
            None => format!("http://{local}"),
        };
        let origin = Origin::parse(&origin_text, OriginMode::Dev)
            .map_err(|e| format!("{origin_text}: {e}"))?;
        let url = Url::parse(origin.as_str()).map_err(|e| format!("{origin_text}: {e}"))?;
        let agent_key = new_key();
        let resource_key = new_key();
        let kid = |k: &str| Kid::new(k.to_owned()).map_err(|e| e.to_string());
        let jwks = vec![
            (AGENT_KID.to_owned(), agent_key.public_key().clone()),
            (RESOURCE_KID.to_owned(), resource_key.public_key().clone()),
        ];
        let inner = Arc::new(Inner {
            origin,
            url,
            agent_key: RwLock::new((kid(AGENT_KID)?, agent_key)),
            resource_key: (kid(RESOURCE_KID)?, resource_key),
            jwks: RwLock::new(jwks),
            jwks_fetches: Mutex::new(0),
            callbacks: Mutex::default(),
            arrived: Notify::new(),
        });
        let app = Router::new()
            .route("/.well-known/aauth-agent", get(agent_metadata))
            .route("/.well-known/aauth-resource", get(resource_metadata))
            .route(JWKS_PATH, get(jwks_document))
            .route(CALLBACK_PATH, get(callback))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            inner,
            task: Arc::new(task),
        })
    }

    /// The suite's origin: its agent identifier and resource identifier.
    pub fn origin(&self) -> &Origin {
        &self.inner.origin
    }

    /// The origin as a URL.
    pub fn url(&self) -> Url {
        self.inner.url.clone()
    }

    /// The redirect URI the suite registers.
    pub fn redirect_uri(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.inner.origin.as_str())
    }

    /// Signing as the agent server itself (`jwks_uri`).
    pub fn agent_server(&self) -> Identity {
        let (kid, key) = self.agent_key();
        Identity::AgentServer {
            agent: self.inner.origin.clone(),
            kid,
            key,
        }
    }

    /// The agent server's current key and its id.
    pub fn agent_key(&self) -> (Kid, Arc<SigningKey>) {
        self.inner
            .agent_key
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The suite-as-resource's key and its id.
    pub fn resource_key(&self) -> (Kid, Arc<SigningKey>) {
        self.inner.resource_key.clone()
    }

    /// Claims of an agent token for `key`, valid for an hour.
    pub fn agent_token_claims(&self, sub: &str, key: &SigningKey) -> Value {
        let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        json!({
            "iss": self.inner.origin.as_str(),
            "sub": sub,
            "iat": now,
            "exp": now + 3600,
            "cnf": {"jwk": key.public_key().to_json_value()},
        })
    }

    /// A well-formed agent token for `key`, signed by the agent server.
    pub fn agent_token(&self, sub: &str, key: &SigningKey) -> String {
        let claims = self.agent_token_claims(sub, key);
        self.sign_agent_token(&jws::header("agent+jwt", AGENT_KID), &claims)
    }

    /// Any header and claims, signed with the agent server's key.
    pub fn sign_agent_token(&self, header: &Value, claims: &Value) -> String {
        let (_, key) = self.agent_key();
        jws::sign(&key, header, claims)
    }

    /// A delegate: a fresh key and a well-formed agent token for it.
    pub fn delegate(&self, sub: &str) -> Identity {
        let key = new_key();
        Identity::Delegate {
            agent_token: self.agent_token(sub, &key),
            key,
        }
    }

    /// Publishes a new agent server key under `kid` and signs with it from
    /// now on; with `replace`, the key under the current `kid` is swapped
    /// instead (a restart that reuses its `kid`).
    pub fn rotate_agent_key(&self, kid: &str, replace: bool) -> Result<(), String> {
        let key = new_key();
        let kid = Kid::new(kid.to_owned()).map_err(|e| e.to_string())?;
        if let Ok(mut jwks) = self.inner.jwks.write() {
            if replace {
                jwks.retain(|(k, _)| k != kid.as_str());
            }
            jwks.push((kid.as_str().to_owned(), key.public_key().clone()));
        }
        if let Ok(mut current) = self.inner.agent_key.write() {
            *current = (kid, key);
        }
        Ok(())
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> u32 {
        self.inner.jwks_fetches.lock().map(|n| *n).unwrap_or(0)
    }

    /// Waits up to `timeout` for the next visit to the redirect URI whose
    /// `state` is `state`, and returns its query.
    pub async fn wait_callback(
        &self,
        state: &str,
        timeout: Duration,
    ) -> Option<HashMap<String, String>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.arrived.notified();
            if let Ok(callbacks) = self.inner.callbacks.lock()
                && let Some(found) = callbacks
                    .iter()
                    .find(|c| c.get("state").map(String::as_str) == Some(state))
            {
                return Some(found.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

async fn agent_metadata(State(inner): State<Arc<Inner>>) -> Response {
    let origin = inner.origin.as_str();
    Json(json!({
        "agent": origin,
        "jwks_uri": format!("{origin}{JWKS_PATH}"),
        "redirect_uris": [format!("{origin}{CALLBACK_PATH}")],
        "name": "aauth-conformance",
    }))
    .into_response()
}

async fn resource_metadata(State(inner): State<Arc<Inner>>) -> Response {
    let origin = inner.origin.as_str();
    Json(json!({
        "resource": origin,
        "jwks_uri": format!("{origin}{JWKS_PATH}"),
    }))
    .into_response()
}

async fn jwks_document(State(inner): State<Arc<Inner>>) -> Response {
    if let Ok(mut n) = inner.jwks_fetches.lock() {
        *n = n.saturating_add(1);
    }
    let keys: Vec<Value> = inner
        .jwks
        .read()
        .map(|jwks| {
            jwks.iter()
                .map(|(kid, key)| {
                    let mut jwk = key.to_json_value();
                    if let Some(object) = jwk.as_object_mut() {
                        object.insert("kid".to_owned(), json!(kid));
                    }
                    jwk
                })
                .collect()
        })
        .unwrap_or_default();
    Json(json!({ "keys": keys })).into_response()
}

async fn callback(
    State(inner): State<Arc<Inner>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Ok(mut callbacks) = inner.callbacks.lock()
        && callbacks.len() < 1000
    {
        callbacks.push(query);
    }
    inner.arrived.notify_waiters();
    Html("<!doctype html><html lang=\"en\"><title>aauth-conformance</title><p>Received; the conformance suite goes on by itself.</p></html>").into_response()
}
