//! App tests of the agent server's endpoints, without sockets (P-DEL-1,
//! P-DEL-2, E§8.1).
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failure must fail the test loudly"
)]

use std::sync::Arc;

use aauth_agent_server::{AppState, Config, app, store::Store};
use aauth_http::client::{Identity, Outgoing, SignerStyle, SigningClient};
use aauth_http::runtime::ServerKey;
use aauth_http::server::unix_now;
use aauth_protocol::httpsig::Nonce;
use aauth_protocol::ids::{Origin, OriginMode};
use aauth_protocol::jose;
use aauth_protocol::keys::{Algorithm, SigningKey};
use aauth_protocol::tokens::agent_token::{self, AgentTokenContext};
use axum::body::Body;
use http::StatusCode;
use serde_json::Value;
use tower::ServiceExt as _;
use url::Url;

const AGENT: &str = "https://agent.example";

struct Server {
    router: axum::Router,
    state: AppState,
    key: Arc<SigningKey>,
    kid: aauth_protocol::ids::Kid,
}

async fn server_with(config: Config) -> Server {
    let origin = Origin::parse(AGENT, OriginMode::Production).unwrap();
    let server_key = ServerKey::generate().unwrap();
    let kid = server_key.kid.clone();
    let public = server_key.key.to_private_jwk().unwrap();
    let key = Arc::new(SigningKey::from_private_jwk(&public).unwrap());
    let store = Store::memory().await.unwrap();
    let state = AppState::new(origin, server_key, store, &config, false).unwrap();
    Server {
        router: app(state.clone()),
        state,
        key,
        kid,
    }
}

async fn server() -> Server {
    server_with(Config::default()).await
}

fn url(path: &str) -> Url {
    Url::parse(&format!("{AGENT}{path}")).unwrap()
}

fn fresh() -> Arc<SigningKey> {
    Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap())
}

async fn send(server: &Server, identity: &Identity, request: Outgoing) -> (StatusCode, Value) {
    send_as(server, SignerStyle::strict(), identity, request).await
}

/// [`send`], signed in `style`.
async fn send_as(
    server: &Server,
    style: SignerStyle,
    identity: &Identity,
    request: Outgoing,
) -> (StatusCode, Value) {
    let signed = SigningClient::new()
        .unwrap()
        .with_style(style)
        .sign(identity, request)
        .unwrap();
    let request = signed.into_http().unwrap().map(Body::from);
    let response = server.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get(server: &Server, path: &str) -> (StatusCode, Value) {
    let request = http::Request::get(path).body(Body::empty()).unwrap();
    let response = server.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn mint(server: &Server, sub: Option<&str>) -> String {
    let code = server
        .state
        .store()
        .mint_code(sub, unix_now(), 600)
        .await
        .unwrap();
    code.as_str().to_owned()
}

async fn enroll(server: &Server, key: &Arc<SigningKey>, code: &str) -> (StatusCode, Value) {
    send(
        server,
        &Identity::Hwk(key.clone()),
        Outgoing::post_form(url("/delegate/enroll"), &[("code", code)]),
    )
    .await
}

/// Validates an agent token as a recipient would, with the server's key.
fn validate(server: &Server, token: &str) -> agent_token::VerifiedAgentToken {
    let recipient = Origin::parse("https://resource.example", OriginMode::Production).unwrap();
    let ctx = AgentTokenContext::new(i64::try_from(unix_now()).unwrap(), &recipient);
    let public = server.key.public_key().clone();
    let kid = server.kid.clone();
    agent_token::validate(
        token,
        &ctx,
        &move |iss: &Origin, k: &aauth_protocol::ids::Kid| {
            assert_eq!(iss.as_str(), AGENT);
            assert_eq!(*k, kid);
            Ok(public.clone())
        },
    )
    .unwrap()
}

fn error(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn metadata_names_the_agent_its_jwks_and_loopback_redirects() {
    // E§8.1, profile: P-MD-2
    let server = server().await;
    let (status, metadata) = get(&server, "/.well-known/aauth-agent").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(metadata["agent"], AGENT);
    assert_eq!(
        metadata["jwks_uri"],
        format!("{AGENT}/.well-known/jwks.json")
    );
    assert_eq!(metadata["redirect_uris"][0], "http://127.0.0.1/callback");
    assert_eq!(metadata["name"], "AAuth demo agent");
    let (status, jwks) = get(&server, "/.well-known/jwks.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"][0]["kid"], server.kid.as_str());
    let (status, body) = get(&server, "/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "invalid_request");
}

#[tokio::test]
async fn enroll_issues_an_agent_token_for_the_signing_key() {
    // profile: P-DEL-1
    let server = server().await;
    let key = fresh();
    let code = mint(&server, None).await;
    let (status, body) = enroll(&server, &key, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 3600);
    let sub = body["sub"].as_str().unwrap();
    assert!(sub.starts_with("delegate-"), "{sub}");
    let token = validate(&server, body["agent_token"].as_str().unwrap());
    assert_eq!(token.delegate(), sub);
    assert_eq!(token.cnf_key(), key.public_key());
}

#[tokio::test]
async fn a_code_minted_for_a_sub_enrolls_that_sub() {
    // profile: P-DEL-1 — "optionally for a given sub"; P-DEL-2 re-enrollment.
    let server = server().await;
    let code = mint(&server, Some("laptop-7")).await;
    let (status, body) = enroll(&server, &fresh(), &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sub"], "laptop-7");
    assert_eq!(
        validate(&server, body["agent_token"].as_str().unwrap()).delegate(),
        "laptop-7"
    );
}

#[tokio::test]
async fn bad_used_and_expired_codes_are_invalid_grant() {
    // profile: P-DEL-1, P-ERR-1 (invalid_grant)
    let server = server().await;
    let (status, body) = enroll(&server, &fresh(), "not-a-code").await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let code = mint(&server, None).await;
    assert_eq!(enroll(&server, &fresh(), &code).await.0, StatusCode::OK);
    let (status, body) = enroll(&server, &fresh(), &code).await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let expired = server
        .state
        .store()
        .mint_code(None, unix_now() - 700, 600)
        .await
        .unwrap();
    let (status, body) = enroll(&server, &fresh(), expired.as_str()).await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn a_rejected_enroll_never_uses_up_the_code() {
    // profile: P-DEL-2 — "A rejected enroll or renew never uses up a code."
    let server = server().await;
    let code = mint(&server, None).await;
    let key = fresh();

    // Not hwk: a delegate's agent token is not the new key.
    let (_, first) = enroll(&server, &key, &mint(&server, None).await).await;
    let delegate = Identity::Delegate {
        agent_token: first["agent_token"].as_str().unwrap().to_owned(),
        key: key.clone(),
    };
    let (status, body) = send(
        &server,
        &delegate,
        Outgoing::post_form(url("/delegate/enroll"), &[("code", &code)]),
    )
    .await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );

    // A tampered signature.
    let signed = SigningClient::new()
        .unwrap()
        .sign(
            &Identity::Hwk(fresh()),
            Outgoing::post_form(url("/delegate/enroll"), &[("code", &code)]),
        )
        .unwrap();
    let mut request = signed.into_http().unwrap();
    *request.body_mut() = bytes::Bytes::from(format!("code={code}&x=1"));
    let response = server
        .router
        .clone()
        .oneshot(request.map(Body::from))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["agent-auth"],
        "httpsig",
        "enroll asks for any signature"
    );

    // A malformed form.
    let (status, body) = send(
        &server,
        &Identity::Hwk(fresh()),
        Outgoing::post_form(url("/delegate/enroll"), &[("kode", &code)]),
    )
    .await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );

    // Without a Nonce (P-SIG-6: required here): strip it after signing.
    let signed = SigningClient::new()
        .unwrap()
        .sign(
            &Identity::Hwk(fresh()),
            Outgoing::post_form(url("/delegate/enroll"), &[("code", &code)]),
        )
        .unwrap();
    let mut request = signed.into_http().unwrap();
    request.headers_mut().remove("nonce");
    let response = server
        .router
        .clone()
        .oneshot(request.map(Body::from))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The code still works.
    let (status, body) = enroll(&server, &fresh(), &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn enrolled(server: &Server) -> (Arc<SigningKey>, String, String) {
    let key = fresh();
    let code = mint(server, None).await;
    let (status, body) = enroll(server, &key, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        key,
        body["agent_token"].as_str().unwrap().to_owned(),
        body["sub"].as_str().unwrap().to_owned(),
    )
}

fn renewal(
    new_key: &SigningKey,
    proof_key: &SigningKey,
    proof_nonce: &Nonce,
    nonce: Nonce,
) -> Outgoing {
    let jwk = new_key.public_key().to_json_value().to_string();
    let proof = jose::sign_key_proof(proof_key, proof_nonce.as_str().as_bytes()).unwrap();
    Outgoing::post_form(
        url("/delegate/renew"),
        &[("new_jwk", &jwk), ("new_key_proof", &proof)],
    )
    .nonce(nonce)
}

#[tokio::test]
async fn renew_binds_a_new_key_to_the_same_sub() {
    // profile: P-DEL-2
    let server = server().await;
    let (key, agent_token, sub) = enrolled(&server).await;
    let new_key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let nonce = Nonce::generate().unwrap();
    let (status, body) = send(
        &server,
        &Identity::Delegate { agent_token, key },
        renewal(&new_key, &new_key, &nonce, nonce.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sub"], sub.as_str());
    let token = validate(&server, body["agent_token"].as_str().unwrap());
    assert_eq!(token.delegate(), sub);
    assert_eq!(token.cnf_key(), new_key.public_key());
}

#[tokio::test]
async fn a_superseded_key_cannot_renew_again() {
    // P-DEL-2: only the delegate's current key rotates. After a rotation the
    // old key — with its still-unexpired agent token — must not be able to
    // mint itself another successor (a stolen key after the owner rotated).
    let server = server().await;
    let (old_key, old_token, _) = enrolled(&server).await;
    let identity = Identity::Delegate {
        agent_token: old_token,
        key: old_key,
    };
    let rotated = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let nonce = Nonce::generate().unwrap();
    let (status, body) = send(
        &server,
        &identity,
        renewal(&rotated, &rotated, &nonce, nonce.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let attacker = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let nonce = Nonce::generate().unwrap();
    let (status, body) = send(
        &server,
        &identity,
        renewal(&attacker, &attacker, &nonce, nonce.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error(&body), "invalid_agent_token");
}

#[tokio::test]
async fn renew_also_takes_a_p256_key() {
    // profile: P-DEL-2 — "ES256 for P-256"
    let server = server().await;
    let (key, agent_token, _) = enrolled(&server).await;
    let new_key = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let nonce = Nonce::generate().unwrap();
    let (status, body) = send(
        &server,
        &Identity::Delegate { agent_token, key },
        renewal(&new_key, &new_key, &nonce, nonce.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_proof_by_another_key_or_over_another_nonce_is_refused() {
    // profile: P-DEL-2
    let server = server().await;
    let (key, agent_token, _) = enrolled(&server).await;
    let delegate = Identity::Delegate { agent_token, key };
    let new_key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let other = SigningKey::generate(Algorithm::Ed25519).unwrap();

    let nonce = Nonce::generate().unwrap();
    let (status, body) = send(
        &server,
        &delegate,
        renewal(&new_key, &other, &nonce, nonce.clone()),
    )
    .await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let stale = Nonce::generate().unwrap();
    let (status, body) = send(
        &server,
        &delegate,
        renewal(&new_key, &new_key, &stale, Nonce::generate().unwrap()),
    )
    .await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Nonce")
    );

    let (status, body) = send(
        &server,
        &delegate,
        Outgoing::post_form(
            url("/delegate/renew"),
            &[("new_jwk", "{}"), ("new_key_proof", "x")],
        ),
    )
    .await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

#[tokio::test]
async fn renew_needs_an_unexpired_agent_token() {
    // profile: P-DEL-2 — "current, unexpired agent token"; P-TOK-5 strict exp.
    let config = Config {
        agent_token_lifetime: 0,
        ..Config::default()
    };
    let server = server_with(config).await;
    let (key, agent_token, _) = enrolled(&server).await;
    let new_key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let nonce = Nonce::generate().unwrap();
    let (status, body) = send(
        &server,
        &Identity::Delegate { agent_token, key },
        renewal(&new_key, &new_key, &nonce, nonce.clone()),
    )
    .await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_agent_token")
    );
}

#[tokio::test]
async fn renew_signed_without_an_agent_token_asks_for_identity() {
    let server = server().await;
    let new_key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let nonce = Nonce::generate().unwrap();
    let (status, body) = send(
        &server,
        &Identity::Hwk(fresh()),
        renewal(&new_key, &new_key, &nonce, nonce.clone()),
    )
    .await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::UNAUTHORIZED, "insufficient_auth_level")
    );
}

#[tokio::test]
async fn another_agents_token_is_not_accepted() {
    // Tokens from any other issuer fail key lookup without a fetch.
    let server = server().await;
    let other = server_with(Config::default()).await; // a different key, same origin
    let (key, agent_token, _) = enrolled(&other).await;
    let new_key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let nonce = Nonce::generate().unwrap();
    let (status, body) = send(
        &server,
        &Identity::Delegate { agent_token, key },
        renewal(&new_key, &new_key, &nonce, nonce.clone()),
    )
    .await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_agent_token")
    );
}

#[tokio::test]
async fn a_replayed_nonce_is_refused() {
    // profile: P-SIG-6
    let server = server().await;
    let code = mint(&server, None).await;
    let signed = SigningClient::new()
        .unwrap()
        .sign(
            &Identity::Hwk(fresh()),
            Outgoing::post_form(url("/delegate/enroll"), &[("code", &code)]),
        )
        .unwrap();
    let request = signed.clone().into_http().unwrap().map(Body::from);
    let first = server.router.clone().oneshot(request).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let request = signed.into_http().unwrap().map(Body::from);
    let again = server.router.clone().oneshot(request).await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    let bytes = axum::body::to_bytes(again.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(error(&body), "replayed_nonce");
}

#[tokio::test]
async fn an_enrollment_signed_as_the_early_python_peer_needs_the_lenient_switch() {
    // profile: P-SIG-7 — an unpadded base64url Signature is refused by a
    // strict server, naming the encoding, and accepted with lenient_base64.
    for lenient in [false, true] {
        let server = server_with(Config {
            lenient_base64: lenient,
            ..Config::default()
        })
        .await;
        let code = mint(&server, None).await;
        let (status, body) = send_as(
            &server,
            SignerStyle::py_early(),
            &Identity::Hwk(fresh()),
            Outgoing::post_form(url("/delegate/enroll"), &[("code", &code)]),
        )
        .await;
        if lenient {
            assert_eq!(status, StatusCode::OK, "{body}");
        } else {
            assert_eq!(
                (status, error(&body)),
                (StatusCode::UNAUTHORIZED, "invalid_signature")
            );
            assert!(
                body["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("base64"),
                "{body}"
            );
        }
    }
}
