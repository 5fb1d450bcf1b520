//! Tests of the tests: resources broken on purpose, each on a real socket,
//! must fail exactly the checks that look for their fault, and a correct
//! one must pass those same checks. A check that cannot fail proves
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use aauth_conformance::profile::{self, ResourceTarget};
use aauth_conformance::report::Verdict;
use aauth_conformance::{Options, Role, check};
use aauth_http::runtime::{ConnectionLimits, ServerKey, serve_until};
use aauth_protocol::challenge::AgentAuth;
use aauth_protocol::ids::{Origin, OriginMode};
use aauth_resource::config::Config;
use aauth_resource::{AppState, app};
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use url::Url;

/// How a resource is broken.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Gives a resource token with every refusal, before any signature
    /// check (what P-ERR-4 forbids).
    TokenBeforeVerifying,
    /// Falls over (500) on a long Signature-Input.
    CrashesOnLongHeaders,
    /// Re-serialises `Signature-Key` (a space after each `;`) before its
    /// verifier sees it: RFC 9421 signs the field as sent.
    ReserialisesSignatureKey,
}

/// Starts a resource from the library with `toml` on top of the defaults,
/// broken by `fault`, and returns its URL. It trusts an auth server that
/// does not exist, so the walk stops before the authorized level.
async fn resource(toml: &str, fault: Fault) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let origin = format!("http://127.0.0.1:{port}");
    let config =
        Config::from_toml(&format!("auth_server = \"http://127.0.0.1:1\"\n{toml}")).unwrap();
    let settings = config
        .resolve(Origin::parse(&origin, OriginMode::Dev).unwrap(), true)
        .unwrap();
    let state = AppState::new(settings, ServerKey::generate().unwrap()).unwrap();
    let router = match fault {
        Fault::None => app(state),
        Fault::TokenBeforeVerifying => app(state).layer(middleware::from_fn(token_on_refusal)),
        Fault::CrashesOnLongHeaders => app(state).layer(middleware::from_fn(crash_on_long)),
        Fault::ReserialisesSignatureKey => app(state).layer(middleware::from_fn(reserialise)),
    };
    tokio::spawn(serve_until(
        listener,
        router,
        ConnectionLimits::default(),
        std::future::pending(),
    ));
    Url::parse(&format!("http://127.0.0.1:{port}")).unwrap()
}

async fn token_on_refusal(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.status() == 401 {
        let challenge = AgentAuth::identity()
            .with_resource_token(
                "eyJhbGciOiJFZERTQSJ9.e30.c2ln",
                &Origin::parse("http://127.0.0.1:1", OriginMode::Dev).unwrap(),
            )
            .unwrap();
        response
            .headers_mut()
            .insert("agent-auth", challenge.to_header_value().parse().unwrap());
    }
    response
}

async fn crash_on_long(request: Request, next: Next) -> Response {
    let long = request
        .headers()
        .get("signature-input")
        .is_some_and(|v| v.len() > 2048);
    if long {
        let mut response = Response::new(Body::from("internal error"));
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        return response;
    }
    next.run(request).await
}

/// The report of a run against `url`.
async fn report(url: Url) -> aauth_conformance::report::Report {
    let profile = profile::find("aauth-2026-01").unwrap();
    let role = Role::Resource(ResourceTarget {
        url,
        identified_path: "/whoami".into(),
        authorized_path: "/data".into(),
        scope: "data.read".into(),
        beyond_scope: Some(("POST".into(), "/data".into())),
        rate_probe: None,
    });
    check(profile.as_ref(), &role, &Options::default())
        .await
        .unwrap()
}

async fn reserialise(mut request: Request, next: Next) -> Response {
    let spaced = request
        .headers()
        .get("signature-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.replace(';', "; "));
    if let Some(value) = spaced.and_then(|v| v.parse().ok()) {
        request.headers_mut().insert("signature-key", value);
    }
    next.run(request).await
}

/// Every check's verdict against `url`, by id.
async fn verdicts(url: Url) -> HashMap<String, Verdict> {
    report(url)
        .await
        .outcomes
        .into_iter()
        .map(|o| (o.id, o.verdict))
        .collect()
}

#[track_caller]
fn assert_verdicts(all: &HashMap<String, Verdict>, ids: &[&str], verdict: Verdict) {
    for id in ids {
        assert_eq!(all.get(*id), Some(&verdict), "{id}");
    }
}

const CREATED: &[&str] = &["resource.sig.created-future", "resource.sig.created-past"];
const NONCE: &[&str] = &["resource.nonce.missing"];
const BASE64: &[&str] = &["resource.sig.unpadded-base64url"];
const SIGNATURES: &[&str] = &[
    "resource.sig.flipped-bit",
    "resource.sig.uncovered-method",
    "resource.sig.tampered-path",
    "resource.signature-key.unknown-scheme",
    "resource.agent-token.forged",
];
const LONG: &[&str] = &[
    "resource.structured.input-16k",
    "resource.structured.input-300-components",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_correct_resource_passes_every_check_the_broken_ones_fail() {
    let all = verdicts(resource("", Fault::None).await).await;
    for ids in [CREATED, NONCE, BASE64, SIGNATURES, LONG] {
        assert_verdicts(&all, ids, Verdict::Pass);
    }
    // Without an auth server the walk stops at the authorized level; all
    // else passes.
    let failed: Vec<&String> = all
        .iter()
        .filter(|(_, v)| **v == Verdict::Fail)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(failed, vec!["resource.walk.authorize"], "{all:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_that_skips_the_created_check_fails_the_created_checks() {
    // A day of skew either way: `created` is as good as unchecked.
    let all = verdicts(resource("max_skew = 86400", Fault::None).await).await;
    assert_verdicts(&all, CREATED, Verdict::Fail);
    assert_verdicts(&all, SIGNATURES, Verdict::Pass);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_that_gives_resource_tokens_before_verifying_fails_p_err_4() {
    let all = verdicts(resource("", Fault::TokenBeforeVerifying).await).await;
    assert_verdicts(&all, SIGNATURES, Verdict::Fail);
    assert_verdicts(&all, CREATED, Verdict::Fail);
    // Checks that expect no refusal are untouched.
    assert_verdicts(
        &all,
        &["resource.walk.agent-server", "resource.sig.any-label"],
        Verdict::Pass,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_without_a_required_nonce_fails_the_nonce_check() {
    let all = verdicts(resource("require_nonce = false", Fault::None).await).await;
    assert_verdicts(&all, NONCE, Verdict::Fail);
    assert_verdicts(
        &all,
        &["resource.nonce.replayed", "resource.nonce.uncovered"],
        Verdict::Pass,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_that_reads_unpadded_base64_fails_the_strict_check() {
    let all = verdicts(resource("lenient_base64 = true", Fault::None).await).await;
    assert_verdicts(&all, BASE64, Verdict::Fail);
    assert_verdicts(&all, &["resource.sig.not-base64"], Verdict::Pass);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_that_crashes_on_long_headers_fails_the_size_checks() {
    let all = verdicts(resource("", Fault::CrashesOnLongHeaders).await).await;
    assert_verdicts(&all, LONG, Verdict::Fail);
    assert_verdicts(&all, SIGNATURES, Verdict::Pass);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_that_rewrites_a_covered_field_is_shown_where_the_bases_differ() {
    // In dev mode the resource returns the base it built (P-ERR-3), and
    // the report names the first line that differs from the suite's.
    let report = report(resource("", Fault::ReserialisesSignatureKey).await).await;
    let baseline = report
        .outcomes
        .iter()
        .find(|o| o.id == "resource.walk.agent-server")
        .unwrap();
    assert_eq!(baseline.verdict, Verdict::Fail);
    let detail = baseline.detail.as_deref().unwrap();
    assert!(detail.contains("differ at line 4"), "{detail}");
    assert!(
        detail.contains("the suite's base:\n  \"@method\": GET"),
        "{detail}"
    );
    assert!(
        detail.contains("the target's base:\n  \"@method\": GET"),
        "{detail}"
    );
    assert!(
        detail.contains("suite:  \"signature-key\": sig=jwks_uri;id="),
        "{detail}"
    );
    assert!(
        detail.contains("target: \"signature-key\": sig=jwks_uri; id="),
        "{detail}"
    );
    // Nothing hostile runs against a target that refuses the good request.
    assert!(
        report
            .outcomes
            .iter()
            .any(|o| o.id == "resource.hostile" && o.verdict == Verdict::Skip)
    );
}

/// A port free a moment ago, for the suite's resource to listen on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn quiet(_: &str) {}

/// An agent that breaks two rules: it retries at the level a challenge
/// refused, and sends a POST without a Nonce. The agent checks must say so.
#[tokio::test(flavor = "multi_thread")]
async fn a_careless_agent_fails_the_climb_and_nonce_checks() {
    use aauth_conformance::craft::Draft;
    use aauth_conformance::host::new_key;
    use aauth_conformance::profile::AgentTarget;
    use aauth_http::client::Identity;
    use aauth_protocol::signature_key::Syntax;

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let role = Role::Agent(AgentTarget {
        listen: format!("127.0.0.1:{port}"),
        auth_server: None,
        wait: std::time::Duration::from_secs(3),
        announce: quiet,
    });
    let agent = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let hwk = Identity::Hwk(new_key());
        let sk = hwk.signature_key().to_header_value(Syntax::Sk0).unwrap();
        let http = reqwest::Client::new();
        let send = |draft: Draft| {
            let sent = draft.finish().sent;
            let mut request = http.request(sent.method.parse().unwrap(), sent.url.clone());
            for (name, value) in &sent.headers {
                request = request.header(name, value);
            }
            request.body(sent.body).send()
        };
        let url = |path: &str| Url::parse(&format!("{base}{path}")).unwrap();
        for _ in 0..2 {
            let draft = Draft::new("GET", url("/whoami"), None, sk.clone(), hwk.key().clone());
            send(draft).await.unwrap();
        }
        let mut post = Draft::new(
            "POST",
            url("/data"),
            Some((b"{}", "application/json")),
            sk.clone(),
            hwk.key().clone(),
        );
        post.headers.retain(|(n, _)| n != "Nonce");
        post.uncover("nonce");
        send(post).await.unwrap();
    });
    let profile = profile::find("aauth-2026-01").unwrap();
    let report = check(profile.as_ref(), &role, &Options::default())
        .await
        .unwrap();
    agent.await.unwrap();
    let verdict = |id: &str| {
        report
            .outcomes
            .iter()
            .find(|o| o.id == id)
            .map(|o| o.verdict)
            .unwrap()
    };
    assert_eq!(verdict("agent.climb"), Verdict::Fail);
    assert_eq!(verdict("agent.post.nonce"), Verdict::Fail);
    assert_eq!(verdict("agent.whoami.reached"), Verdict::Fail);
    // What it did right still passes.
    assert_eq!(verdict("agent.signatures.components"), Verdict::Pass);
}
