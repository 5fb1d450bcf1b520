//! A server's whole verification step, `RequestVerifier::verify`, on the
//! requests a resource sees most: what the servers pay per request beyond the
//! protocol crate's `verify_request` (building the request view, reading
//! `Signature-Key`, the token cache, discovery's key directory).
//!
//! - `verifier/authorized-cached`: `GET` with an auth token validated before
//!   (the steady state under load: one signature, no discovery).
//! - `verifier/pseudonymous`: `GET` signed with an `hwk` key.
//!
//! The auth server's keys are fetched once, at set-up, from a loopback
//! server; nothing is fetched in the loop. `docs/performance.md` has the
//! command and the results.
#![expect(
    clippy::expect_used,
    reason = "benchmark set-up: a fixture that cannot be built must stop the run loudly"
)]

use std::hint::black_box;

use aauth_http::discovery::Discovery;
use aauth_http::fetch::Fetcher;
use aauth_http::server::{RequestVerifier, unix_now};
use aauth_protocol::httpsig::{self, SignOptions};
use aauth_protocol::ids::{Kid, Label, Origin, OriginMode, Scope};
use aauth_protocol::jwk::{Jwks, JwksKey};
use aauth_protocol::keys::{Algorithm, SigningKey};
use aauth_protocol::signature_key::{SignatureKeyField, Syntax};
use aauth_protocol::tokens::auth_token::AuthTokenBuilder;
use aauth_protocol::verify::VerifierConfig;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::request::Parts;

const TARGET: &str = "/photos/albums/vacation?limit=20&cursor=eyJvZmZzZXQiOjIwfQ";

/// An auth server on loopback publishing `key` as `as-1`.
async fn auth_server(key: &SigningKey) -> Origin {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let port = listener.local_addr().expect("bound address").port();
    let origin =
        Origin::parse(&format!("http://127.0.0.1:{port}"), OriginMode::Dev).expect("origin");
    let metadata = serde_json::json!({
        "issuer": origin.as_str(),
        "jwks_uri": format!("{origin}/jwks.json"),
        "agent_token_endpoint": format!("{origin}/agent/token"),
        "agent_auth_endpoint": format!("{origin}/agent/auth"),
    });
    let jwks = Jwks::new(vec![JwksKey {
        kid: Kid::new("as-1".into()).expect("kid"),
        key: key.public_key().clone(),
    }])
    .to_json_value();
    let app = axum::Router::new()
        .route(
            "/.well-known/aauth-issuer",
            get(move || async move { axum::Json(metadata) }),
        )
        .route("/jwks.json", get(move || async move { axum::Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// `GET TARGET` signed by `key` with `field`, as the server receives it.
fn signed(key: &SigningKey, field: &SignatureKeyField) -> Parts {
    let header = field.to_header_value(Syntax::Sk0).expect("Signature-Key");
    let request = httpsig::Request {
        method: "GET",
        authority: "resource.example",
        target: TARGET,
        headers: &Vec::<(&str, &str)>::new(),
        body: None,
    };
    let signed =
        httpsig::sign(&request, &header, key, &SignOptions::new(unix_now())).expect("signing");
    let mut builder = http::Request::builder().method("GET").uri(TARGET);
    for (name, value) in signed.headers() {
        builder = builder.header(name, value);
    }
    builder.body(()).expect("request").into_parts().0
}

fn verifier(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let as_key = SigningKey::generate(Algorithm::Ed25519).expect("key");
    let issuer = runtime.block_on(auth_server(&as_key));
    let resource =
        Origin::parse("https://resource.example", OriginMode::Production).expect("resource origin");
    let mut config = VerifierConfig::new(resource.clone());
    config.origin_mode = OriginMode::Dev;
    config.trusted_auth_servers = vec![issuer.clone()];
    // The requests are signed once; the window keeps them valid for the run.
    config.http.max_skew = 3_600;
    let discovery = Discovery::new(
        Fetcher::new(OriginMode::Dev).expect("fetcher"),
        OriginMode::Dev,
    );
    let verifier = RequestVerifier::new(config, discovery, false);

    let agent_key = SigningKey::generate(Algorithm::Ed25519).expect("key");
    let agent = Origin::parse("https://agent.example", OriginMode::Production).expect("agent");
    let now = i64::try_from(unix_now()).expect("now");
    let token = AuthTokenBuilder::new(issuer, resource, agent, agent_key.public_key().clone())
        .scope(Scope::parse("data.read").expect("scope"))
        .agent_delegate("spiffe://agent.example/workload/photo-assistant".to_owned())
        .lifetime_secs(3_600)
        .build(now)
        .expect("claims")
        .sign(&as_key, &Kid::new("as-1".into()).expect("kid"))
        .expect("token");
    let authorized = signed(&agent_key, &SignatureKeyField::jwt(Label::sig(), token));
    // The first request validates the token (and fetches the keys).
    runtime
        .block_on(verifier.verify(&authorized, b""))
        .expect("the authorized request verifies");

    let hwk_key = SigningKey::generate(Algorithm::Ed25519).expect("key");
    let pseudonymous = signed(
        &hwk_key,
        &SignatureKeyField::hwk(Label::sig(), hwk_key.public_key()),
    );
    runtime
        .block_on(verifier.verify(&pseudonymous, b""))
        .expect("the pseudonymous request verifies");

    let mut group = c.benchmark_group("verifier");
    group.bench_function("authorized-cached", |b| {
        b.iter(|| runtime.block_on(verifier.verify(black_box(&authorized), b"")));
    });
    group.bench_function("pseudonymous", |b| {
        b.iter(|| runtime.block_on(verifier.verify(black_box(&pseudonymous), b"")));
    });
    group.finish();
}

criterion_group!(benches, verifier);
criterion_main!(benches);
