//! A counting HTTP proxy in front of the auth server, so that every fetch
//! of its metadata or JWKS — by anyone, the resource included — is seen and
//! counted by path.
//!
//! The auth server listens on an inner port and announces the proxy's
//! address as its public URL (its issuer), so its metadata, its `jwks_uri`
//! and its tokens' `iss` all name the proxy: nothing can reach it around
//! the count.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

/// Requests seen, by path.
pub type Counts = BTreeMap<String, u64>;

#[derive(Clone)]
struct Shared {
    upstream: String,
    http: reqwest::Client,
    counts: Arc<Mutex<Counts>>,
}

/// The running proxy.
#[derive(Clone)]
pub struct CountingProxy {
    counts: Arc<Mutex<Counts>>,
}

impl std::fmt::Debug for CountingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingProxy").finish_non_exhaustive()
    }
}

/// Headers that belong to one hop, not to the request or response.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "content-length"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "proxy-connection"
    )
}

async fn forward(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    if let Ok(mut counts) = shared.counts.lock() {
        *counts.entry(path).or_default() += 1;
    }
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut outgoing = shared
        .http
        .request(parts.method, format!("{}{target}", shared.upstream));
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.body(body).send().await {
        Ok(answer) => answer,
        Err(error) => {
            return (StatusCode::BAD_GATEWAY, error.to_string()).into_response();
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let Ok(bytes) = answer.bytes().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

impl CountingProxy {
    /// Listens on `listen` and forwards everything to `upstream`
    /// (`http://host:port`, no trailing slash).
    pub async fn start(listen: SocketAddr, upstream: String) -> std::io::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        let counts = Arc::new(Mutex::new(Counts::new()));
        let shared = Shared {
            upstream,
            http,
            counts: counts.clone(),
        };
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let app = Router::new().fallback(forward).with_state(shared);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { counts })
    }

    /// The requests seen so far, by path.
    pub fn counts(&self) -> Counts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Requests in `after` beyond those in `before`, for paths under
/// `/.well-known/` (metadata and the JWKS): the discovery fetches between
/// two snapshots.
pub fn discovery_fetches(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .filter(|(path, _)| path.starts_with("/.well-known/"))
        .filter_map(|(path, &n)| {
            let earlier = before.get(path).copied().unwrap_or(0);
            (n > earlier).then(|| (path.clone(), n.saturating_sub(earlier)))
        })
        .collect()
}
