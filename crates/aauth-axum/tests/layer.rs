//! A small axum app behind `Guard::layer`, on a real loopback socket, called
//! with signed requests: what passes reaches the handler as a `Caller`, what
//! falls short is answered by the layer with its error and challenge, and
//! the resource's documents are served.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test support: a failure here is a test failure"
)]

use std::sync::Arc;

use aauth_axum::{Caller, Guard, Need};
use aauth_http::client::{Identity, Outgoing, SigningClient};
use aauth_http::runtime::ServerKey;
use aauth_protocol::challenge::Level;
use aauth_protocol::error::ErrorCode;
use aauth_protocol::ids::{Origin, OriginMode};
use aauth_protocol::keys::{Algorithm, SigningKey};
use axum::Router;
use axum::routing::get;
use serde_json::Value;
use url::Url;

async fn who(caller: Caller) -> String {
    format!("{:?} {}", caller.level(), caller.key_thumbprint().as_str())
}

/// The app on a free loopback port, and its URL.
async fn start() -> (String, Guard) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let me = Origin::parse(&url, OriginMode::Dev).unwrap();
    let auth_server = Origin::parse("http://127.0.0.1:9", OriginMode::Dev).unwrap();
    let guard = Guard::builder(me, auth_server, ServerKey::generate().unwrap())
        .dev(true)
        .scope("notes.read", "Read your notes")
        .name("Notes")
        .build()
        .unwrap();
    let app = Router::new()
        .route("/open", get(who).layer(guard.layer(Need::Signed)))
        .route("/hello", get(who).layer(guard.layer(Need::Identified)))
        .route(
            "/notes",
            get(who).layer(guard.layer(Need::scope("notes.read"))),
        )
        .route("/unprotected", get(who))
        .merge(guard.routes());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, guard)
}

fn at(base: &str, path: &str) -> Url {
    Url::parse(&format!("{base}{path}")).unwrap()
}

#[tokio::test]
async fn a_route_lets_through_what_meets_its_need_and_challenges_the_rest() {
    let (url, _guard) = start().await;
    let client = SigningClient::new().unwrap();
    let key = Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap());
    let hwk = Identity::Hwk(key.clone());

    // A signed request where any signature will do: the handler sees it.
    let reply = client
        .send(&hwk, Outgoing::get(at(&url, "/open")))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.text(),
        format!("Pseudonymous {}", key.public_key().thumbprint().as_str())
    );

    // Pseudonymous where an identity is needed: 401 and the identity
    // challenge, answered by the layer (E§4.2, P-CH-3).
    for path in ["/hello", "/notes"] {
        let reply = client
            .send(&hwk, Outgoing::get(at(&url, path)))
            .await
            .unwrap();
        assert_eq!(reply.status, 401, "{path}: {}", reply.text());
        assert_eq!(reply.error_code(), Some(ErrorCode::InsufficientAuthLevel));
        assert_eq!(
            reply.agent_auth().map(|c| c.level()),
            Some(Level::Identified)
        );
    }

    // Unsigned: refused with a challenge, never passed on as anonymous.
    let plain = reqwest_get(&at(&url, "/open")).await;
    assert_eq!(plain.0, 401, "{}", plain.1);

    // A handler that asks for the Caller on a route without the layer is a
    // fault of the application, said as one.
    let reply = client
        .send(&hwk, Outgoing::get(at(&url, "/unprotected")))
        .await
        .unwrap();
    assert_eq!(reply.status, 500);
    assert!(reply.text().contains("not protected"), "{}", reply.text());
}

#[tokio::test]
async fn the_resource_publishes_its_metadata_and_key_set() {
    let (url, guard) = start().await;
    let (status, body) = reqwest_get(&at(&url, "/.well-known/aauth-resource")).await;
    assert_eq!(status, 200);
    let metadata: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(metadata["resource"], url.as_str());
    assert_eq!(metadata["name"], "Notes");
    assert_eq!(
        metadata["scope_descriptions"]["notes.read"],
        "Read your notes"
    );
    assert_eq!(
        metadata["resource_token_endpoint"],
        format!("{url}/resource/token")
    );
    let (status, body) = reqwest_get(&at(&url, "/.well-known/jwks.json")).await;
    assert_eq!(status, 200);
    let jwks: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(jwks, *guard.jwks());
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
}

/// An unsigned GET: status and body.
async fn reqwest_get(url: &Url) -> (u16, String) {
    let reply = reqwest::get(url.clone()).await.unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}
