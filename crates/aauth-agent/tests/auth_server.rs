//! The agent's view of an auth server: discovered, and trusted with the
//! agent's requests and the user's browser only on its own origin.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failure here is a test failure"
)]

use std::sync::Arc;

use aauth_agent::{Agent, AgentError, NoUser, Principal, TokenStore};
use aauth_http::client::SigningClient;
use aauth_protocol::ids::OriginMode;
use aauth_protocol::keys::{Algorithm, SigningKey};
use axum::routing::get;
use serde_json::json;
use url::Url;

/// An auth server on loopback whose metadata names `token` and `auth` as
/// its endpoints (relative paths are made absolute on its own origin).
async fn auth_server(token: &str, auth: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let absolute = |endpoint: &str| {
        if endpoint.starts_with('/') {
            format!("{origin}{endpoint}")
        } else {
            endpoint.to_owned()
        }
    };
    let issuer = json!({
        "issuer": origin,
        "jwks_uri": format!("{origin}/jwks.json"),
        "agent_token_endpoint": absolute(token),
        "agent_auth_endpoint": absolute(auth),
        "agent_signing_algs_supported": ["ed25519"],
    });
    let router = axum::Router::new().route(
        "/.well-known/aauth-issuer",
        get(move || async move { axum::Json(issuer) }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    origin
}

fn agent() -> Agent {
    Agent::new(
        SigningClient::new().unwrap(),
        Principal::Pseudonymous(Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap())),
        TokenStore::memory(),
        Arc::new(NoUser),
        OriginMode::Dev,
    )
    .unwrap()
}

#[tokio::test]
async fn an_auth_server_is_used_with_its_endpoints_on_its_own_origin() {
    let origin = auth_server("/agent/token", "/agent/auth").await;
    let agent = agent();
    let server = agent.auth_server(&origin).await.unwrap();
    assert_eq!(server.origin().as_str(), origin);
    assert_eq!(
        server.token_endpoint().as_str(),
        format!("{origin}/agent/token")
    );
    // E§9.5: the consent page with the request token, redirect URI and state.
    let back = Url::parse("http://127.0.0.1:9/callback").unwrap();
    let url = agent
        .consent_url(&server, "rt-1", &back, "state-1")
        .unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(url.path(), "/agent/auth");
    assert_eq!(
        pairs,
        [
            ("request_token".to_owned(), "rt-1".to_owned()),
            ("redirect_uri".to_owned(), back.to_string()),
            ("state".to_owned(), "state-1".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_token_endpoint_elsewhere_is_refused_before_anything_is_sent() {
    let origin = auth_server("http://127.0.0.1:9/agent/token", "/agent/auth").await;
    let error = agent().auth_server(&origin).await.unwrap_err();
    assert!(matches!(error, AgentError::Discovery(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("agent_token_endpoint is not on its own origin"),
        "{error}"
    );
}

#[tokio::test]
async fn a_consent_page_elsewhere_is_never_shown_to_the_user() {
    let origin = auth_server("/agent/token", "http://127.0.0.1:9/agent/auth").await;
    let agent = agent();
    let server = agent.auth_server(&origin).await.unwrap();
    let back = Url::parse("http://127.0.0.1:9/callback").unwrap();
    let error = agent
        .consent_url(&server, "rt-1", &back, "state-1")
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("agent_auth_endpoint is not on its own origin"),
        "{error}"
    );
}

#[tokio::test]
async fn an_agent_without_a_user_says_so_instead_of_showing_an_address() {
    use aauth_agent::ConsentHandler;
    let url = Url::parse("http://127.0.0.1:9/agent/auth").unwrap();
    let said = NoUser.present(&url).await.unwrap_err();
    assert!(said.contains("no user"), "{said}");
}
