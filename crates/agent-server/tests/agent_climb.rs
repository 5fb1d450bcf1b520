//! The agent climbing the levels against a fake resource and auth server
//! stood up in-process (E§4, E§9.1–9.8): identity step-up, direct grant,
//! consent through the loopback callback, denial, refresh; and a delegate
//! enrolled at the real agent server.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test helpers: a failure must fail the test loudly"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aauth_agent::{
    self, Agent, ConsentHandler, DelegateState, Principal, TokenStore, consent::PresentFuture,
};
use aauth_agent_server::store::Store;
use aauth_agent_server::{AppState, Config, app};
use aauth_http::client::SigningClient;
use aauth_http::discovery::Discovery;
use aauth_http::fetch::Fetcher;
use aauth_http::runtime::ServerKey;
use aauth_http::server::{ErrorResponse, RequestVerifier, parse_form, read_body, unix_now};
use aauth_protocol::challenge::{AgentAuth, Level};
use aauth_protocol::error::Condition;
use aauth_protocol::httpsig::NonceRule;
use aauth_protocol::ids::{Kid, Origin, OriginMode, Scope};
use aauth_protocol::keys::{Algorithm, SigningKey};
use aauth_protocol::secret::RefreshToken;
use aauth_protocol::tokens::auth_token::AuthTokenBuilder;
use aauth_protocol::tokens::resource_token::ResourceTokenBuilder;
use aauth_protocol::verify::VerifierConfig;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{Method, StatusCode};
use serde_json::json;
use url::Url;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Policy {
    Direct,
    Consent,
}

#[derive(Default)]
struct Counters {
    auth: usize,
    code: usize,
    refresh: usize,
}

/// A resource and its auth server at one origin.
#[derive(Clone)]
struct World {
    origin: Origin,
    key: Arc<SigningKey>,
    kid: Kid,
    verifier: Arc<RequestVerifier>,
    policy: Policy,
    counters: Arc<Mutex<Counters>>,
    auth_token_lifetime: u32,
}

impl World {
    fn auth_token(&self, agent: &Origin, key: &aauth_protocol::jwk::PublicKey) -> String {
        AuthTokenBuilder::new(
            self.origin.clone(),
            self.origin.clone(),
            agent.clone(),
            key.clone(),
        )
        .scope(Scope::parse("data.read").unwrap())
        .lifetime_secs(self.auth_token_lifetime)
        .build(i64::try_from(unix_now()).unwrap())
        .unwrap()
        .sign(&self.key, &self.kid)
        .unwrap()
    }
}

/// GET /data: pseudonymous → identity challenge; identified → resource
/// token challenge; authorized → 200 (P-CH-2, P-CH-3, P-CH-4).
async fn data(State(world): State<World>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = read_body(body, 1 << 20).await.unwrap();
    let verified = match world.verifier.verify(&parts, &body).await {
        Ok(v) => v,
        Err(rejected) => {
            let challenge = if rejected.condition == Condition::AuthTokenInvalid {
                AgentAuth::new(Level::Authorized)
            } else {
                AgentAuth::identity()
            };
            return rejected
                .into_error()
                .with_challenge(challenge)
                .into_response();
        }
    };
    match verified.level() {
        Level::Pseudonymous => ErrorResponse::new(Condition::LevelTooLow, "identify yourself")
            .with_challenge(AgentAuth::identity())
            .into_response(),
        Level::Identified => {
            let token = ResourceTokenBuilder::new(
                world.origin.clone(),
                world.origin.clone(),
                verified.agent().unwrap().clone(),
                verified.key(),
                Scope::parse("data.read").unwrap(),
            )
            .build(i64::try_from(unix_now()).unwrap())
            .unwrap()
            .sign(&world.key, &world.kid)
            .unwrap();
            ErrorResponse::new(Condition::LevelTooLow, "authorization needed")
                .with_challenge(AgentAuth::auth_token(&token, &world.origin).unwrap())
                .into_response()
        }
        Level::Authorized => axum::Json(json!({
            "data": "secret",
            "delegate": verified.delegate(),
        }))
        .into_response(),
    }
}

/// The auth server's token endpoint (E§9.3–9.7), trusting its policy switch.
async fn token(State(world): State<World>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = read_body(body, 1 << 16).await.unwrap();
    let verified = match world.verifier.verify(&parts, &body).await {
        Ok(v) => v,
        Err(rejected) => return rejected.into_error().into_response(),
    };
    assert_eq!(
        verified.level(),
        Level::Identified,
        "P-AS-1: the caller is identified"
    );
    let agent = verified.agent().unwrap().clone();
    let form: HashMap<String, String> = parse_form(&parts.headers, &body).unwrap();
    let issue = |refresh: bool| {
        let mut answer = json!({
            "auth_token": world.auth_token(&agent, verified.key()),
            "expires_in": world.auth_token_lifetime,
        });
        if refresh {
            answer["refresh_token"] = json!("refresh-1");
        }
        axum::Json(answer).into_response()
    };
    match form["request_type"].as_str() {
        "auth" => {
            world.counters.lock().unwrap().auth += 1;
            assert!(form.contains_key("resource_token"));
            assert!(form["redirect_uri"].starts_with("http://127.0.0.1:"));
            match world.policy {
                Policy::Direct => issue(true),
                Policy::Consent => {
                    axum::Json(json!({"request_token": "req-1", "expires_in": 600})).into_response()
                }
            }
        }
        "code" => {
            world.counters.lock().unwrap().code += 1;
            if form["code"] != "code-1" {
                return ErrorResponse::new(Condition::GrantInvalid, "bad code").into_response();
            }
            issue(true)
        }
        "refresh" => {
            world.counters.lock().unwrap().refresh += 1;
            assert_eq!(form["refresh_token"], "refresh-1");
            issue(false)
        }
        other => panic!("unexpected request_type {other}"),
    }
}

async fn start_world(policy: Policy) -> World {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let origin = Origin::parse(&format!("http://127.0.0.1:{port}"), OriginMode::Dev).unwrap();
    let key = Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap());
    let kid = Kid::new("as-1".into()).unwrap();
    let mut config = VerifierConfig::new(origin.clone());
    config.origin_mode = OriginMode::Dev;
    config.trusted_auth_servers = vec![origin.clone()];
    // The resource's GETs need none; the token endpoint's POSTs do.
    config.http.require_nonce = NonceRule::NonIdempotent;
    let discovery = Discovery::new(Fetcher::new(OriginMode::Dev).unwrap(), OriginMode::Dev);
    let world = World {
        origin: origin.clone(),
        key: key.clone(),
        kid: kid.clone(),
        verifier: Arc::new(RequestVerifier::new(config, discovery, true)),
        policy,
        counters: Arc::default(),
        auth_token_lifetime: 600,
    };
    let o = origin.as_str().to_owned();
    let issuer = json!({
        "issuer": o,
        "jwks_uri": format!("{o}/jwks.json"),
        "agent_token_endpoint": format!("{o}/token"),
        "agent_auth_endpoint": format!("{o}/consent"),
        "agent_signing_algs_supported": ["ed25519"],
        "request_types_supported": ["auth", "code", "refresh"],
    });
    let jwks = aauth_protocol::jwk::Jwks::new(vec![aauth_protocol::jwk::JwksKey {
        kid,
        key: key.public_key().clone(),
    }])
    .to_json_value();
    let router = Router::new()
        .route(
            "/.well-known/aauth-issuer",
            get(move || async move { axum::Json(issuer) }),
        )
        .route("/jwks.json", get(move || async move { axum::Json(jwks) }))
        .route("/data", get(data))
        .route("/token", post(token))
        .with_state(world.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    world
}

/// The real agent server on loopback, in dev mode.
async fn start_agent_server() -> (Origin, Kid, Arc<SigningKey>, AppState) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let origin = Origin::parse(&format!("http://127.0.0.1:{port}"), OriginMode::Dev).unwrap();
    let server_key = ServerKey::generate().unwrap();
    let kid = server_key.kid.clone();
    let key =
        Arc::new(SigningKey::from_private_jwk(&server_key.key.to_private_jwk().unwrap()).unwrap());
    let state = AppState::new(
        origin.clone(),
        server_key,
        Store::memory().await.unwrap(),
        &Config::default(),
        true,
    )
    .unwrap();
    let router = app(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (origin, kid, key, state)
}

/// Drives the "user": answers the consent URL by calling the agent's
/// loopback callback with a code (or a denial) and the request's state.
struct TestUser {
    deny: bool,
    seen: Mutex<Vec<Url>>,
}

impl ConsentHandler for TestUser {
    fn present<'a>(&'a self, url: &'a Url) -> PresentFuture<'a> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(url.clone());
            let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
            assert_eq!(query["request_token"], "req-1");
            let mut callback = Url::parse(&query["redirect_uri"]).unwrap();
            if self.deny {
                callback
                    .query_pairs_mut()
                    .append_pair("error", "access_denied")
                    .append_pair("state", &query["state"]);
            } else {
                callback
                    .query_pairs_mut()
                    .append_pair("code", "code-1")
                    .append_pair("state", &query["state"]);
            }
            let page = reqwest::get(callback).await.map_err(|e| e.to_string())?;
            assert_eq!(page.status(), StatusCode::OK);
            Ok(())
        })
    }
}

fn user(deny: bool) -> Arc<TestUser> {
    Arc::new(TestUser {
        deny,
        seen: Mutex::default(),
    })
}

type Steps = Arc<Mutex<Vec<String>>>;

async fn server_agent(consent: Arc<TestUser>) -> (Agent, Steps) {
    let (agent, kid, key, _) = start_agent_server().await;
    let steps: Steps = Arc::default();
    let recorder = steps.clone();
    let agent = Agent::new(
        SigningClient::new().unwrap(),
        Principal::Server { agent, kid, key },
        TokenStore::memory(),
        consent,
        OriginMode::Dev,
    )
    .unwrap()
    .with_steps(Arc::new(move |line| {
        recorder.lock().unwrap().push(line.to_owned())
    }));
    (agent, steps)
}

fn has_step(steps: &Steps, needle: &str) -> bool {
    steps.lock().unwrap().iter().any(|s| s.contains(needle))
}

#[tokio::test]
async fn climbs_from_pseudonymous_through_identity_to_a_direct_grant() {
    // E§3.4, E§4.2, E§4.3, E§9.4 direct grant.
    let world = start_world(Policy::Direct).await;
    let (agent, steps) = server_agent(user(false)).await;
    let url = format!("{}/data", world.origin);
    let reply = agent.call(Method::GET, &url, None, None).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json::<serde_json::Value>().unwrap()["data"], "secret");
    let steps_seen = steps.lock().unwrap().clone();
    assert!(has_step(&steps, "signed hwk"), "{steps_seen:#?}");
    assert!(has_step(&steps, "signed jwks_uri"), "{steps_seen:#?}");
    assert!(has_step(&steps, "direct grant"), "{steps_seen:#?}");
    assert!(has_step(&steps, "signed jwt auth token"), "{steps_seen:#?}");
    assert_eq!(world.counters.lock().unwrap().auth, 1);

    // The second call goes straight in with the stored token.
    steps.lock().unwrap().clear();
    let reply = agent.call(Method::GET, &url, None, None).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        steps.lock().unwrap().len(),
        3,
        "{:?}",
        steps.lock().unwrap()
    );
    assert_eq!(world.counters.lock().unwrap().auth, 1);
}

#[tokio::test]
async fn consent_goes_through_the_loopback_callback_and_the_code() {
    // E§9.5, E§9.6, RFC 8252 §7.3
    let world = start_world(Policy::Consent).await;
    let consent = user(false);
    let (agent, steps) = server_agent(consent.clone()).await;
    let reply = agent
        .call(Method::GET, &format!("{}/data", world.origin), None, None)
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let seen = consent.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0]
            .as_str()
            .starts_with(&format!("{}/consent?", world.origin))
    );
    assert!(has_step(&steps, "the user's consent is needed"));
    let counters = world.counters.lock().unwrap();
    assert_eq!((counters.auth, counters.code), (1, 1));
    let grant = &agent.tokens().all()[0];
    assert_eq!(
        grant.refresh_token.as_ref().map(RefreshToken::expose),
        Some("refresh-1")
    );
    assert_eq!(grant.scope, "data.read");
    assert_eq!(grant.resource, world.origin.as_str());
}

#[tokio::test]
async fn a_denied_consent_is_a_clear_error() {
    let world = start_world(Policy::Consent).await;
    let (agent, _) = server_agent(user(true)).await;
    let error = agent
        .call(Method::GET, &format!("{}/data", world.origin), None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, aauth_agent::AgentError::AccessDenied),
        "{error}"
    );
    assert!(error.to_string().contains("denied"));
}

#[tokio::test]
async fn an_expired_auth_token_is_refreshed_before_the_call() {
    // E§3.7, E§9.7
    let world = start_world(Policy::Direct).await;
    let (agent, steps) = server_agent(user(false)).await;
    let url = format!("{}/data", world.origin);
    agent.call(Method::GET, &url, None, None).await.unwrap();
    let mut grant = agent.tokens().all()[0].clone();
    grant.expires_at = unix_now() - 1;
    agent.tokens().put(grant).unwrap();
    steps.lock().unwrap().clear();
    let reply = agent.call(Method::GET, &url, None, None).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        has_step(&steps, "refreshing"),
        "{:?}",
        steps.lock().unwrap()
    );
    let counters = world.counters.lock().unwrap();
    assert_eq!((counters.auth, counters.refresh), (1, 1));
    // E§9.7: the refresh token is kept.
    assert_eq!(
        agent.tokens().all()[0]
            .refresh_token
            .as_ref()
            .map(RefreshToken::expose),
        Some("refresh-1")
    );
}

#[tokio::test]
async fn a_delegate_enrolls_climbs_with_its_agent_token_and_rotates_its_key() {
    // P-DEL-1..3, E§3.3
    let world = start_world(Policy::Direct).await;
    let (agent_origin, _, _, agent_state) = start_agent_server().await;
    let dir = std::env::temp_dir().join(format!("aauth-climb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let code = agent_state
        .store()
        .mint_code(Some("cli-1"), unix_now(), 600)
        .await
        .unwrap();
    let client = SigningClient::new().unwrap();
    let enrolled = aauth_agent::enroll(
        &client,
        agent_origin.as_str(),
        code.as_str(),
        &dir,
        OriginMode::Dev,
    )
    .await
    .unwrap();
    assert_eq!(enrolled.record.sub, "cli-1");

    let renewed = aauth_agent::renew(&client, &DelegateState::load(&dir).unwrap())
        .await
        .unwrap();
    assert_ne!(renewed.key.public_key(), enrolled.key.public_key());
    let loaded = DelegateState::load(&dir).unwrap();
    assert_eq!(loaded.key.public_key(), renewed.key.public_key());
    assert_eq!(loaded.record.sub, "cli-1");

    let steps: Steps = Arc::default();
    let recorder = steps.clone();
    let agent = Agent::new(
        client,
        Principal::Delegate(loaded),
        TokenStore::in_dir(&dir).unwrap(),
        user(false),
        OriginMode::Dev,
    )
    .unwrap()
    .with_steps(Arc::new(move |line| {
        recorder.lock().unwrap().push(line.to_owned())
    }));
    let reply = agent
        .call(Method::GET, &format!("{}/data", world.origin), None, None)
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        has_step(&steps, "signed jwt agent token"),
        "{:?}",
        steps.lock().unwrap()
    );
    assert_eq!(
        TokenStore::in_dir(&dir).unwrap().all().len(),
        1,
        "kept in the state dir"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_user_interaction_url_off_the_resource_is_never_shown_to_the_user() {
    // P-UI-1: the interaction URL is on the resource itself; a resource that
    // names another origin (or a file: URL) does not get the user's browser.
    for elsewhere in ["https://phish.example/login", "file:///etc/passwd"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let target = elsewhere.to_owned();
        let router = Router::new().route(
            "/data",
            get(move || {
                let target = target.clone();
                async move {
                    ErrorResponse::new(Condition::InteractionRequired, "the user must come")
                        .with_challenge(AgentAuth::user_interaction(&target).unwrap())
                        .into_response()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        let consent = user(false);
        let (agent, _) = server_agent(consent.clone()).await;
        let error = agent
            .call(Method::GET, &format!("{origin}/data"), None, None)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("is not on the resource"),
            "{error}"
        );
        assert!(
            consent.seen.lock().unwrap().is_empty(),
            "nothing was presented"
        );
    }
}
