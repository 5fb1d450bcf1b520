//! Bad input at every endpoint of the real binaries, each answer checked
//! against its P-ERR-1 row: status, `error`, and the `Agent-Auth` challenge
//! that goes with it.
// A test crate: its helpers may unwrap like its tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use aauth_e2e::world::World;
use aauth_http::client::{Identity, Outgoing, Reply, SignedRequest};
use aauth_http::server::unix_now;
use aauth_protocol::challenge::Level;
use common::*;
use http::{Method, header};
use serde_json::{Value, json};
use url::Url;

/// One endpoint, called the way it expects, by the caller it expects.
struct Case {
    name: &'static str,
    identity: Identity,
    request: Outgoing,
    /// The level its challenge states on a signature failure.
    level: Level,
}

/// Every signed endpoint of the three servers, freshly built (new nonces).
fn cases(world: &World, delegate: &Identity, code: &str) -> Vec<Case> {
    let server = server_identity(world);
    vec![
        Case {
            name: "resource GET /whoami",
            identity: server.clone(),
            request: Outgoing::get(at(world.resource.url(), "/whoami")),
            level: Level::Identified,
        },
        Case {
            name: "resource POST /data",
            identity: delegate.clone(),
            request: Outgoing::new(Method::POST, at(world.resource.url(), "/data"))
                .body(r#"{"text":"x"}"#, "application/json"),
            level: Level::Authorized,
        },
        Case {
            name: "resource POST /resource/token",
            identity: server.clone(),
            request: Outgoing::post_form(
                at(world.resource.url(), "/resource/token"),
                &[("scope", "data.read")],
            ),
            level: Level::Identified,
        },
        Case {
            name: "auth server POST /agent/token",
            identity: server,
            request: Outgoing::post_form(
                token_endpoint(world),
                &[("request_type", "refresh"), ("refresh_token", "x")],
            ),
            level: Level::Identified,
        },
        Case {
            name: "agent server POST /delegate/enroll",
            identity: Identity::Hwk(new_key()),
            request: enrollment(world, code),
            level: Level::Pseudonymous,
        },
        Case {
            name: "agent server POST /delegate/renew",
            identity: delegate.clone(),
            request: renewal(world),
            level: Level::Identified,
        },
    ]
}

/// The error for a signature that does not verify over the request as
/// received: with a token in `Signature-Key` the verifier cannot tell a
/// changed request from another key, and P-SK-4 names that
/// `key_binding_failed`; otherwise `invalid_signature` (P-ERR-1).
fn not_verifying(case: &Case) -> &'static str {
    match case.identity {
        Identity::Delegate { .. } | Identity::AuthToken { .. } => "key_binding_failed",
        Identity::Hwk(_) | Identity::AgentServer { .. } => "invalid_signature",
    }
}

/// The world, an enrolled delegate, and an unused enrollment code.
async fn setting() -> (World, Identity, String) {
    let world = world();
    let delegate = delegate_identity(&enroll(&world, "d1").await);
    let code = world.mint_code(None).unwrap();
    (world, delegate, code)
}

#[track_caller]
fn assert_signature_rejected(case: &Case, reply: &Reply, error: &str) {
    assert_eq!(
        (
            reply.status.as_u16(),
            reply.error.as_ref().map(|e| e.error.as_str())
        ),
        (401, Some(error)),
        "{}: {}",
        case.name,
        reply.text()
    );
    let challenge = reply
        .agent_auth()
        .unwrap_or_else(|| panic!("{}: an Agent-Auth challenge", case.name));
    assert_eq!(
        challenge.level(),
        case.level,
        "{}: {}",
        case.name,
        challenge.to_header_value()
    );
    // P-ERR-4: a request whose signature fails never gets a resource token.
    assert!(
        challenge.resource_token().is_none(),
        "{}: {}",
        case.name,
        challenge.to_header_value()
    );
}

/// Signs every case, changes it with `tamper`, and expects
/// `401 invalid_signature` with the endpoint's level; then checks the
/// enrollment code survived (P-DEL-2: a rejected enroll never uses it up).
async fn every_endpoint_rejects(
    tamper: impl Fn(&Case, SignedRequest) -> SignedRequest,
    error: fn(&Case) -> &'static str,
) {
    let (world, delegate, code) = setting().await;
    for case in cases(&world, &delegate, &code) {
        let signed = client().sign(&case.identity, case.request.clone()).unwrap();
        let reply = send(tamper(&case, signed)).await;
        assert_signature_rejected(&case, &reply, error(&case));
    }
    world
        .enroll_delegate_with(&code, "after")
        .await
        .expect("the code is still good");
}

fn with_url(mut signed: SignedRequest, url: Url) -> SignedRequest {
    signed.url = url;
    signed
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_signature_is_invalid_signature_at_every_endpoint() {
    every_endpoint_rejects(
        |_, mut signed| {
            flip_signature(&mut signed);
            signed
        },
        not_verifying,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_method_changed_after_signing_is_invalid_signature() {
    let (world, delegate, code) = setting().await;
    for case in cases(&world, &delegate, &code) {
        let sent = case.request.method.clone();
        let mut request = case.request.clone();
        request.method = if sent == Method::GET {
            Method::DELETE
        } else {
            Method::PUT
        };
        let mut signed = client().sign(&case.identity, request).unwrap();
        signed.method = sent;
        let reply = send(signed).await;
        assert_signature_rejected(&case, &reply, not_verifying(&case));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_path_changed_after_signing_is_invalid_signature() {
    let (world, delegate, code) = setting().await;
    for case in cases(&world, &delegate, &code) {
        let real = case.request.url.clone();
        let mut request = case.request.clone();
        request.url.set_path("/somewhere-else");
        let signed = client().sign(&case.identity, request).unwrap();
        let reply = send(with_url(signed, real)).await;
        assert_signature_rejected(&case, &reply, not_verifying(&case));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_changed_after_signing_is_invalid_signature() {
    every_endpoint_rejects(
        |case, signed| {
            let mut url = case.request.url.clone();
            url.set_query(Some("a=2"));
            with_url(signed, url)
        },
        // A query that the signature does not cover: `@query` is missing
        // (P-SIG-1), found before any key is looked at.
        |_| "invalid_signature",
    )
    .await;
    // Signed with one query, sent with another.
    let (world, delegate, code) = setting().await;
    for case in cases(&world, &delegate, &code) {
        let mut request = case.request.clone();
        request.url.set_query(Some("a=1"));
        let mut url = case.request.url.clone();
        url.set_query(Some("a=2"));
        let signed = client().sign(&case.identity, request).unwrap();
        let reply = send(with_url(signed, url)).await;
        assert_signature_rejected(&case, &reply, not_verifying(&case));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_changed_after_signing_is_invalid_signature() {
    every_endpoint_rejects(
        |case, mut signed| {
            if case.request.method == Method::GET {
                // A body on a GET that was signed without one (E§10.3).
                signed.body = bytes::Bytes::from_static(b"smuggled");
            } else {
                let mut body = signed.body.to_vec();
                body.extend_from_slice(b"&x=1");
                signed.body = body.into();
            }
            signed
        },
        |_| "invalid_signature",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_key_replaced_after_signing_is_invalid_signature() {
    let other = Identity::Hwk(new_key())
        .signature_key()
        .to_header_value(aauth_protocol::signature_key::Syntax::Sk0)
        .unwrap();
    every_endpoint_rejects(
        |_, mut signed| {
            set_header(&mut signed, "signature-key", &other);
            signed
        },
        |_| "invalid_signature",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_signed_for_another_authority_does_not_verify() {
    // profile: P-SIG-5 — the verifier's @authority is its own, so a request
    // signed for localhost and sent to 127.0.0.1 does not verify:
    // `invalid_signature`, or, when the key comes from a token,
    // `key_binding_failed` (P-SK-4: the verifier cannot tell a changed
    // request from another key).
    let (world, delegate, code) = setting().await;
    for case in cases(&world, &delegate, &code) {
        let real = case.request.url.clone();
        let mut request = case.request.clone();
        request.url.set_host(Some("localhost")).unwrap();
        let signed = client().sign(&case.identity, request).unwrap();
        let reply = send(with_url(signed, real)).await;
        assert_signature_rejected(&case, &reply, not_verifying(&case));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_created_an_hour_ago_or_ahead_is_invalid_signature() {
    // profile: P-SIG-2 — `created` within ±60 s.
    let (world, delegate, code) = setting().await;
    for created in [unix_now() - 3600, unix_now() + 3600] {
        for case in cases(&world, &delegate, &code) {
            let signed = sign_created(&case.identity, case.request.clone(), created);
            let reply = send(signed).await;
            assert_signature_rejected(&case, &reply, "invalid_signature");
        }
    }
    // The same signer with the current clock is accepted (the clock was the cause).
    let case = &cases(&world, &delegate, &code)[0];
    let reply = send(sign_created(
        &case.identity,
        case.request.clone(),
        unix_now(),
    ))
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_request_to_a_signed_endpoint_gets_its_challenge() {
    let (world, delegate, code) = setting().await;
    for case in cases(&world, &delegate, &code) {
        let mut signed = client().sign(&case.identity, case.request.clone()).unwrap();
        for name in ["signature", "signature-input", "signature-key", "nonce"] {
            signed.headers.remove(name);
        }
        let reply = send(signed).await;
        assert_eq!(reply.status, 401, "{}: {}", case.name, reply.text());
        let challenge = reply
            .agent_auth()
            .unwrap_or_else(|| panic!("{}: a challenge", case.name));
        assert!(
            challenge.level() >= Level::Pseudonymous,
            "{}: {}",
            case.name,
            challenge.to_header_value()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_nonce_is_refused_the_second_time() {
    // profile: P-SIG-6.
    let world = world();
    let delegate = enroll(&world, "d1").await;
    let delegate_id = delegate_identity(&delegate);

    // The token endpoint: the first answer is about the form, the second
    // about the replay.
    let signed = client()
        .sign(
            &server_identity(&world),
            Outgoing::post_form(
                token_endpoint(&world),
                &[("request_type", "refresh"), ("refresh_token", "x")],
            ),
        )
        .unwrap();
    assert_error(&send(signed.clone()).await, 400, "invalid_grant");
    let reply = send(signed).await;
    assert_error(&reply, 401, "replayed_nonce");
    assert_challenge(&reply, Level::Identified);

    // The resource: a note is written once.
    let (auth_token, _) = user_grant(&world, &delegate_id, "data.write").await;
    let authorized = Identity::AuthToken {
        auth_token,
        key: delegate.key.clone(),
    };
    let signed = client()
        .sign(
            &authorized,
            Outgoing::new(Method::POST, at(world.resource.url(), "/data"))
                .body(r#"{"text":"once"}"#, "application/json"),
        )
        .unwrap();
    let first = send(signed.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text());
    let reply = send(signed).await;
    assert_error(&reply, 401, "replayed_nonce");
    assert_challenge(&reply, Level::Authorized);
    assert_no_resource_token(&reply);

    // The agent server: an enrollment is not repeated.
    let code = world.mint_code(None).unwrap();
    let signed = client()
        .sign(&Identity::Hwk(new_key()), enrollment(&world, &code))
        .unwrap();
    assert_eq!(send(signed.clone()).await.status, 200);
    let reply = send(signed).await;
    assert_error(&reply, 401, "replayed_nonce");
    assert!(reply.agent_auth().is_some(), "{:?}", reply.headers);

    // And a renewal.
    let signed = client().sign(&delegate_id, renewal(&world)).unwrap();
    let first = send(signed.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let reply = send(signed).await;
    assert_error(&reply, 401, "replayed_nonce");
    assert_challenge(&reply, Level::Identified);
}

/// The endpoints an agent token is presented to: `/whoami`, the token
/// endpoint and renewal.
async fn agent_token_endpoints(world: &World, identity: &Identity) -> Vec<(&'static str, Reply)> {
    let mut out = Vec::new();
    let c = client();
    out.push((
        "whoami",
        c.send(identity, Outgoing::get(at(world.resource.url(), "/whoami")))
            .await
            .unwrap(),
    ));
    out.push((
        "token endpoint",
        c.send(
            identity,
            Outgoing::post_form(
                token_endpoint(world),
                &[("request_type", "refresh"), ("refresh_token", "x")],
            ),
        )
        .await
        .unwrap(),
    ));
    out.push(("renew", c.send(identity, renewal(world)).await.unwrap()));
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_agent_token_is_invalid_agent_token() {
    let world = world();
    let key = new_key();
    // A fresh token from the same signer is accepted: expiry is the cause.
    let fresh = Identity::Delegate {
        agent_token: agent_token_issued(&world, &key, 0, 600),
        key: key.clone(),
    };
    let me = whoami(&world, &fresh).await;
    assert_eq!(me["delegate"], "delegate-crafted");

    let expired = Identity::Delegate {
        agent_token: agent_token_issued(&world, &key, 7200, 60),
        key,
    };
    for (name, reply) in agent_token_endpoints(&world, &expired).await {
        assert_eq!(
            (
                reply.status.as_u16(),
                reply.error.as_ref().map(|e| e.error.as_str())
            ),
            (401, Some("invalid_agent_token")),
            "{name}: {}",
            reply.text()
        );
        assert_challenge(&reply, Level::Identified);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_token_forged_under_the_agent_servers_kid_is_invalid_agent_token() {
    let world = world();
    let key = new_key();
    let forged = Identity::Delegate {
        agent_token: forged_agent_token(&world, &key),
        key,
    };
    for (name, reply) in agent_token_endpoints(&world, &forged).await {
        assert_eq!(
            (
                reply.status.as_u16(),
                reply.error.as_ref().map(|e| e.error.as_str())
            ),
            (401, Some("invalid_agent_token")),
            "{name}: {}",
            reply.text()
        );
        assert_challenge(&reply, Level::Identified);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auth_token_with_a_tampered_payload_is_invalid_auth_token() {
    let world = world();
    let (auth_token, _) = direct_grant(&world).await;
    let key = std::sync::Arc::new(world.agent_server_key().unwrap().key);
    let data = || Outgoing::get(at(world.resource.url(), "/data"));
    let genuine = Identity::AuthToken {
        auth_token: auth_token.clone(),
        key: key.clone(),
    };
    let reply = client().send(&genuine, data()).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());

    for (what, tampered) in [
        (
            "scope",
            tamper_payload(&auth_token, |c| c["scope"] = json!("data.read data.write")),
        ),
        (
            "exp",
            tamper_payload(&auth_token, |c| {
                c["exp"] = json!(c["exp"].as_u64().unwrap() + 3600)
            }),
        ),
        (
            "agent",
            tamper_payload(&auth_token, |c| c["agent"] = json!("http://127.0.0.1:1")),
        ),
    ] {
        let identity = Identity::AuthToken {
            auth_token: tampered,
            key: key.clone(),
        };
        let reply = client().send(&identity, data()).await.unwrap();
        assert_eq!(
            (
                reply.status.as_u16(),
                reply.error.as_ref().map(|e| e.error.as_str())
            ),
            (401, Some("invalid_auth_token")),
            "{what}: {}",
            reply.text()
        );
        assert_challenge(&reply, Level::Authorized);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hwk_at_the_token_endpoint_is_asked_for_an_identity() {
    // profile: P-AS-1.
    let world = world();
    let reply = token_request(
        &world,
        &Identity::Hwk(new_key()),
        &[("request_type", "auth"), ("scope", "openid")],
    )
    .await;
    assert_error(&reply, 401, "insufficient_auth_level");
    assert_challenge(&reply, Level::Identified);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auth_token_never_signs_at_the_token_endpoint() {
    // profile: P-AS-1 — "An auth token in Signature-Key is never accepted
    // here": its signature verifies, so the refusal is for its level (P-ERR-1).
    let world = world();
    let (auth_token, refresh_token) = direct_grant(&world).await;
    let key = std::sync::Arc::new(world.agent_server_key().unwrap().key);
    let identity = Identity::AuthToken { auth_token, key };
    let reply = token_request(
        &world,
        &identity,
        &[
            ("request_type", "refresh"),
            ("refresh_token", &refresh_token),
        ],
    )
    .await;
    assert_error(&reply, 401, "insufficient_auth_level");
    assert_challenge(&reply, Level::Identified);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unregistered_or_unbound_redirect_uri_gets_an_error_page_not_a_redirect() {
    // profile: P-AS-4.
    let world = world();
    let identity = server_identity(&world);
    let token = resource_token(&world, &identity, "data.write").await;
    let browser = plain();
    let page = |request_token: String, redirect_uri: &'static str| {
        let mut url = at(world.auth_server.url(), "/agent/auth");
        url.query_pairs_mut()
            .append_pair("request_token", &request_token)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", "s");
        browser.get(url).send()
    };
    for bound in [
        "http://localhost:4242/callback",
        "http://127.0.0.1:4242/not-the-callback",
    ] {
        let reply = token_request(
            &world,
            &identity,
            &[
                ("request_type", "auth"),
                ("resource_token", &token),
                ("redirect_uri", bound),
            ],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let body: Value = reply.json().unwrap();
        let request_token = body["request_token"].as_str().unwrap().to_owned();

        // Bound but not registered in the agent's metadata.
        let response = page(request_token.clone(), bound).await.unwrap();
        assert_eq!(response.status(), 400, "{bound}");
        assert!(response.headers().get(header::LOCATION).is_none());
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let text = response.text().await.unwrap();
        assert!(text.contains("not registered"), "{text}");

        // Registered, but not the one bound to the request token.
        let response = page(request_token, "http://127.0.0.1:4243/callback")
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert!(response.headers().get(header::LOCATION).is_none());
        let text = response.text().await.unwrap();
        assert!(text.contains("does not match"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authorization_code_works_once() {
    // E§9.5: codes are single-use (profile: P-AS-5).
    let world = world();
    let identity = server_identity(&world);
    let token = resource_token(&world, &identity, "data.write").await;
    let (code, redirect_uri) =
        approved_code(&world, &identity, &[("resource_token", &token)]).await;
    let form = [
        ("request_type", "code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    let first = token_request(&world, &identity, &form).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let second = token_request(&world, &identity, &form).await;
    assert_error(&second, 400, "invalid_grant");
    assert_no_challenge(&second);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_redeemed_by_another_agent_or_delegate_is_invalid_grant() {
    // profile: P-AS-5 — "redeemable only by the same agent and delegate sub".
    let world = world();
    let owner = delegate_identity(&enroll(&world, "owner").await);
    let other_delegate = delegate_identity(&enroll(&world, "other").await);
    let server = server_identity(&world);
    for thief in [&other_delegate, &server] {
        let token = resource_token(&world, &owner, "data.write").await;
        let (code, redirect_uri) =
            approved_code(&world, &owner, &[("resource_token", &token)]).await;
        let reply = token_request(
            &world,
            thief,
            &[
                ("request_type", "code"),
                ("code", &code),
                ("redirect_uri", &redirect_uri),
            ],
        )
        .await;
        assert_error(&reply, 400, "invalid_grant");
        assert_no_challenge(&reply);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_token_minted_for_another_agent_is_invalid_resource_token() {
    // profile: P-AS-2 — `agent` == caller and `agent_jkt` == the signing key.
    let world = world();
    let owner = delegate_identity(&enroll(&world, "owner").await);
    let other_delegate = delegate_identity(&enroll(&world, "other").await);
    let token = resource_token(&world, &owner, "data.read").await;
    // Another agent (the server itself), and the same agent with another key.
    for thief in [server_identity(&world), other_delegate] {
        let reply = token_request(
            &world,
            &thief,
            &[
                ("request_type", "auth"),
                ("resource_token", &token),
                ("redirect_uri", "http://127.0.0.1:4242/callback"),
            ],
        )
        .await;
        assert_error(&reply, 400, "invalid_resource_token");
        assert_no_challenge(&reply);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_413_invalid_request() {
    let world = world();
    let server = server_identity(&world);
    let padding = "a".repeat(65 * 1024);
    // The token endpoint and the agent server: forms up to 64 KiB.
    let reply = token_request(
        &world,
        &server,
        &[("request_type", "auth"), ("scope", &padding)],
    )
    .await;
    assert_error(&reply, 413, "invalid_request");
    assert_no_challenge(&reply);
    let reply = client()
        .send(
            &Identity::Hwk(new_key()),
            Outgoing::post_form(
                at(world.agent_server.url(), "/delegate/enroll"),
                &[("code", &padding)],
            ),
        )
        .await
        .unwrap();
    assert_error(&reply, 413, "invalid_request");
    let reply = client()
        .send(
            &server,
            Outgoing::post_form(
                at(world.resource.url(), "/resource/token"),
                &[("scope", &padding)],
            ),
        )
        .await
        .unwrap();
    assert_error(&reply, 413, "invalid_request");
    // The resource: 1 MiB by default.
    let note = format!(r#"{{"text":"{}"}}"#, "a".repeat(1024 * 1024 + 1));
    let delegate = delegate_identity(&enroll(&world, "d1").await);
    let reply = client()
        .send(
            &delegate,
            Outgoing::new(Method::POST, at(world.resource.url(), "/data"))
                .body(note, "application/json"),
        )
        .await
        .unwrap();
    assert_error(&reply, 413, "invalid_request");
    assert_no_challenge(&reply);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_form_bodies_are_400_invalid_request() {
    let world = world();
    let server = server_identity(&world);
    let bodies: [(&str, &[u8]); 4] = [
        // A parameter twice.
        (
            "application/x-www-form-urlencoded",
            b"request_type=auth&request_type=code",
        ),
        // Not a form.
        ("application/json", br#"{"request_type":"auth"}"#),
        // No request_type.
        ("application/x-www-form-urlencoded", b"scope=openid"),
        // A request type and nothing it needs.
        ("application/x-www-form-urlencoded", b"request_type=code"),
    ];
    for (content_type, body) in bodies {
        let reply = client()
            .send(
                &server,
                Outgoing::new(Method::POST, token_endpoint(&world))
                    .body(body.to_vec(), content_type),
            )
            .await
            .unwrap();
        assert_error(&reply, 400, "invalid_request");
        assert_no_challenge(&reply);
    }
    // request_type=auth with both a resource token and a scope.
    let reply = token_request(
        &world,
        &server,
        &[
            ("request_type", "auth"),
            ("scope", "openid"),
            ("resource_token", "x.y.z"),
        ],
    )
    .await;
    assert_error(&reply, 400, "invalid_request");

    // The agent server and the resource's token endpoint.
    let cases = [
        (
            Identity::Hwk(new_key()),
            at(world.agent_server.url(), "/delegate/enroll"),
        ),
        (server.clone(), at(world.resource.url(), "/resource/token")),
    ];
    for (identity, url) in cases {
        for (content_type, body) in [
            ("application/x-www-form-urlencoded", &b"nothing=here"[..]),
            (
                "application/x-www-form-urlencoded",
                b"code=a&code=b&scope=x&scope=y",
            ),
            ("text/plain", b"code=x"),
        ] {
            let reply = client()
                .send(
                    &identity,
                    Outgoing::new(Method::POST, url.clone()).body(body.to_vec(), content_type),
                )
                .await
                .unwrap();
            assert_error(&reply, 400, "invalid_request");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_request_type_is_unsupported_request_type() {
    let world = world();
    for request_type in ["exchange-everything", "", "AUTH"] {
        let reply = token_request(
            &world,
            &server_identity(&world),
            &[("request_type", request_type)],
        )
        .await;
        assert_error(&reply, 400, "unsupported_request_type");
        assert_no_challenge(&reply);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn enrolling_with_a_used_or_unknown_code_is_invalid_grant() {
    // profile: P-DEL-1 — one-time codes.
    let world = world();
    let code = world.mint_code(None).unwrap();
    world.enroll_delegate_with(&code, "first").await.unwrap();
    for code in [code.as_str(), "no-such-code"] {
        let reply = client()
            .send(&Identity::Hwk(new_key()), enrollment(&world, code))
            .await
            .unwrap();
        assert_error(&reply, 400, "invalid_grant");
        assert_no_challenge(&reply);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn enrolling_signed_with_anything_but_hwk_is_invalid_signature() {
    // profile: P-DEL-1 — signed with the delegate's fresh key (hwk).
    let world = world();
    let delegate = delegate_identity(&enroll(&world, "d1").await);
    let code = world.mint_code(None).unwrap();
    for identity in [delegate, server_identity(&world)] {
        let reply = client()
            .send(&identity, enrollment(&world, &code))
            .await
            .unwrap();
        assert_error(&reply, 401, "invalid_signature");
        assert_challenge(&reply, Level::Pseudonymous);
    }
    world.enroll_delegate_with(&code, "after").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_token_is_never_an_auth_token_at_the_resource() {
    // P-ERR-1: "a resource token presented as one" is invalid_auth_token.
    let world = world();
    let delegate = enroll(&world, "d1").await;
    let token = resource_token(&world, &delegate_identity(&delegate), "data.read").await;
    let identity = Identity::AuthToken {
        auth_token: token,
        key: delegate.key.clone(),
    };
    let reply = client()
        .send(&identity, Outgoing::get(at(world.resource.url(), "/data")))
        .await
        .unwrap();
    assert_error(&reply, 401, "invalid_auth_token");
    assert_challenge(&reply, Level::Authorized);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_auth_token_key_binding_is_key_binding_failed() {
    // P-SK-4: the HTTP signature must verify with the token's cnf.jwk.
    let world = world();
    let (auth_token, _) = direct_grant(&world).await;
    let identity = Identity::AuthToken {
        auth_token,
        key: new_key(),
    };
    let reply = client()
        .send(&identity, Outgoing::get(at(world.resource.url(), "/data")))
        .await
        .unwrap();
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_error(&reply, 401, "key_binding_failed");
    assert_challenge(&reply, Level::Authorized);
    assert_no_resource_token(&reply);
}

// ---------------------------------------------------------------------------
// Garbage: no input makes any server answer 5xx (P-ERR-2).

/// `len` random bytes that are legal in a header value but not ASCII text
/// (obs-text and visible characters, never CR, LF or NUL).
fn noise(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    aauth_protocol::keys::random_bytes(&mut bytes).unwrap();
    bytes
        .into_iter()
        .map(|b| if b >= 0x80 { b } else { 0x21 + b % 94 })
        .collect()
}

/// Sends `request` as raw bytes to `base`'s socket and returns the status
/// of the answer; `None` when the server closed the connection without one
/// or is still waiting for the rest of a request after 2 s.
async fn raw(base: &str, request: &[u8]) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let url = Url::parse(base).unwrap();
    let address = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    // The server may answer and close before reading everything. No
    // half-close: a server may take it as the client leaving.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while answer.len() < 12 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(buffer.get(..n)?),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    status.parse().ok()
}

/// A request for an error message, shortened, bytes escaped.
fn show(request: &[u8]) -> String {
    let head: Vec<u8> = request.iter().copied().take(300).collect();
    head.escape_ascii().to_string()
}

/// A request line, headers (name, raw value) and body, as bytes.
fn request(method: &str, target: &[u8], headers: &[(&str, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Garbage requests for `path` at a server whose own URL is `base`.
fn garbage(base: &str, path: &str) -> Vec<Vec<u8>> {
    let p = path.as_bytes();
    let form = b"application/x-www-form-urlencoded".to_vec();
    let sig = |key: &str| {
        vec![
            ("Signature-Key", key.as_bytes().to_vec()),
            (
                "Signature-Input",
                br#"sig=("@method" "@authority" "@path" "signature-key");created=1"#.to_vec(),
            ),
            ("Signature", b"sig=:AAAA:".to_vec()),
        ]
    };
    let mut out = Vec::new();
    for method in ["GET", "POST"] {
        // Noise in every header the servers read.
        out.push(request(
            method,
            p,
            &[
                ("Signature-Key", noise(200)),
                ("Signature-Input", noise(200)),
                ("Signature", noise(200)),
                ("Nonce", noise(40)),
                ("Content-Digest", noise(80)),
                ("Content-Type", noise(30)),
                ("Cookie", noise(100)),
                ("Agent-Auth", noise(50)),
            ],
            &noise(100),
        ));
        // Well-formed fields that say impossible things.
        for key in [
            r#"sig=jwt;jwt="a.b.c""#.to_owned(),
            r#"sig=jwt;jwt="eyJhbGciOiJub25lIn0.e30.""#.to_owned(),
            r#"sig=jwks_uri;id="http://127.0.0.1:1";well-known="aauth-agent";kid="k""#.to_owned(),
            format!(r#"sig=jwks_uri;id="{base}";well-known="aauth-agent";kid="k""#),
            format!(r#"sig=jwks_uri;id="{base}";well-known="../../etc";kid="k""#),
            r#"sig=(scheme=hwk kty="OKP" crv="Ed25519" x="AAAA""#.to_owned(),
            r#"sig=x509;x5u="http://127.0.0.1:1/cert""#.to_owned(),
            r#"sig=hwk;kty="EC";crv="P-256";x="AA";y="AA""#.to_owned(),
            r#"sig=hwk;kty="OKP";crv="Ed25519";x="", other=hwk"#.to_owned(),
            format!("sig={}", "(".repeat(5000)),
        ] {
            out.push(request(method, p, &sig(&key), b""));
        }
        let mut inputs = vec![
            br#"sig=("@method" "@query-param";name="a" "@status");created=99999999999999999"#
                .to_vec(),
            br#"sig=("@method");created=-1;expires=0;alg="none""#.to_vec(),
            format!("sig=({});created=1", "\"@path\" ".repeat(2000)).into_bytes(),
            b"a=(), b=(), sig=()".to_vec(),
        ];
        inputs.push(noise(10));
        for input in inputs {
            out.push(request(
                method,
                p,
                &[
                    (
                        "Signature-Key",
                        br#"sig=hwk;kty="OKP";crv="Ed25519";x="11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo""#
                            .to_vec(),
                    ),
                    ("Signature-Input", input),
                    ("Signature", b"sig=:AAAA:, sig=:BBBB:".to_vec()),
                ],
                b"",
            ));
        }
        // A huge header, and very many.
        out.push(request(
            method,
            p,
            &[("X-Big", vec![b'a'; 256 * 1024])],
            b"",
        ));
        let many: Vec<(&str, Vec<u8>)> = (0..2000).map(|_| ("X-Many", b"1".to_vec())).collect();
        out.push(request(method, p, &many, b""));
    }
    // Non-UTF-8 target and query.
    let mut target = p.to_vec();
    target.extend_from_slice(b"?\xff\xfe=%FF%C0%80&request_token=%FF&redirect_uri=%C0");
    out.push(request("GET", &target, &[], b""));
    out.push(request("GET", b"/\xff\xfe/..%2F..%2F", &[], b""));
    // Forms that are not UTF-8, or not forms.
    for body in [
        &b"\xff\xfe=%FF&code=%C0%80&request_type=%FF"[..],
        b"=&&==&%&%%%&request_type",
        b"csrf_token=&decision=approve&request_token=&redirect_uri=http%3A%2F%2Fevil",
    ] {
        out.push(request("POST", p, &[("Content-Type", form.clone())], body));
    }
    // A body shorter than announced, then a broken chunked body.
    let mut short = request("POST", p, &[("Content-Length", b"100000000".to_vec())], b"");
    short.extend_from_slice(b"code=x");
    out.push(short);
    out.push(request(
        "POST",
        p,
        &[("Transfer-Encoding", b"chunked".to_vec())],
        b"",
    ));
    if let Some(last) = out.last_mut() {
        last.extend_from_slice(b"zz\r\nnot hex\r\n0\r\n");
    }
    // Not HTTP at all.
    out.push(noise(4096));
    out
}

/// Sends every garbage request to every path of `base` and expects no 5xx;
/// the server still answers afterwards.
async fn no_5xx(base: &str, paths: &[&str], alive: &str) {
    let mut wrong = Vec::new();
    let mut statuses = std::collections::BTreeMap::<Option<u16>, usize>::new();
    for path in paths {
        for request in garbage(base, path) {
            let status = raw(base, &request).await;
            *statuses.entry(status).or_default() += 1;
            if let Some(status) = status
                && status >= 500
            {
                wrong.push(format!("{status} for {}", show(&request)));
            }
        }
    }
    eprintln!("{base}: statuses {statuses:?}");
    // Most garbage is answered, not dropped: the assertions above saw it.
    let answered: usize = statuses
        .iter()
        .filter(|(s, _)| s.is_some())
        .map(|(_, n)| n)
        .sum();
    assert!(
        answered * 2 > statuses.values().sum::<usize>(),
        "{statuses:?}"
    );
    assert!(
        wrong.is_empty(),
        "{} answered 5xx:\n{}",
        base,
        wrong.join("\n")
    );
    let alive = plain().get(at(base, alive)).send().await.unwrap();
    assert_eq!(alive.status(), 200, "the server still answers");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_never_gets_a_5xx_from_the_resource() {
    let world = world();
    no_5xx(
        world.resource.url(),
        &[
            "/public",
            "/whoami",
            "/data",
            "/resource/token",
            "/.well-known/aauth-resource",
            "/nowhere",
        ],
        "/.well-known/aauth-resource",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_never_gets_a_5xx_from_the_auth_server() {
    let world = world();
    no_5xx(
        world.auth_server.url(),
        &[
            "/agent/token",
            "/agent/auth",
            "/agent/auth/login",
            "/agent/auth/consent",
            "/.well-known/aauth-issuer",
            "/nowhere",
        ],
        "/.well-known/aauth-issuer",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_never_gets_a_5xx_from_the_agent_server() {
    let world = world();
    no_5xx(
        world.agent_server.url(),
        &[
            "/delegate/enroll",
            "/delegate/renew",
            "/.well-known/aauth-agent",
            "/nowhere",
        ],
        "/.well-known/aauth-agent",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_auth_token_is_invalid_auth_token_with_a_fresh_resource_token() {
    // P-TOK-5: `now < exp`, no leeway; P-ERR-1: "`auth-token` (+ fresh
    // resource token when the signature verified with a trusted key)".
    let world = start(&aauth_e2e::world::Options {
        auth_token_lifetime: 1,
        ..Default::default()
    });
    let (auth_token, _) = direct_grant(&world).await;
    let exp = claims(&auth_token)["exp"].as_u64().unwrap();
    while unix_now() < exp {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let identity = Identity::AuthToken {
        auth_token,
        key: server_identity(&world).key().clone(),
    };
    let reply = client()
        .send(&identity, Outgoing::get(at(world.resource.url(), "/data")))
        .await
        .unwrap();
    assert_error(&reply, 401, "invalid_auth_token");
    assert_challenge(&reply, Level::Authorized);
    let challenge = reply.agent_auth().unwrap();
    assert!(
        challenge.resource_token().is_some() && challenge.auth_server().is_some(),
        "{}",
        challenge.to_header_value()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_used_by_another_agent_or_unknown_is_invalid_grant() {
    // profile: P-AS-6 — bound to the agent and delegate.
    let world = world();
    let (_, refresh_token) = direct_grant(&world).await;
    let delegate = delegate_identity(&enroll(&world, "d1").await);
    for (identity, token) in [
        (&delegate, refresh_token.as_str()),
        (&delegate, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        (&delegate, "not even base64url!"),
    ] {
        let reply = token_request(
            &world,
            identity,
            &[("request_type", "refresh"), ("refresh_token", token)],
        )
        .await;
        assert_error(&reply, 400, "invalid_grant");
        assert_no_challenge(&reply);
    }
    // The rightful agent still can.
    let reply = token_request(
        &world,
        &server_identity(&world),
        &[
            ("request_type", "refresh"),
            ("refresh_token", &refresh_token),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sso_token_for_the_agent_is_not_an_auth_token_for_the_resource() {
    // E§7.7: `aud` must be the resource.
    let world = world();
    let identity = server_identity(&world);
    let (code, redirect_uri) = approved_code(&world, &identity, &[("scope", "openid")]).await;
    let reply = token_request(
        &world,
        &identity,
        &[
            ("request_type", "code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = reply.json().unwrap();
    let authorized = Identity::AuthToken {
        auth_token: body["auth_token"].as_str().unwrap().to_owned(),
        key: identity.key().clone(),
    };
    let reply = client()
        .send(
            &authorized,
            Outgoing::get(at(world.resource.url(), "/whoami")),
        )
        .await
        .unwrap();
    assert_error(&reply, 401, "invalid_auth_token");
    assert_challenge(&reply, Level::Authorized);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auth_request_needing_consent_without_a_redirect_uri_is_invalid_request() {
    // profile: P-AS-2 — "redirect_uri optional unless consent is needed".
    let world = world();
    let identity = server_identity(&world);
    let token = resource_token(&world, &identity, "data.write").await;
    let reply = token_request(
        &world,
        &identity,
        &[("request_type", "auth"), ("resource_token", &token)],
    )
    .await;
    assert_error(&reply, 400, "invalid_request");
    assert_no_challenge(&reply);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answered_request_token_says_where_it_ended_and_an_unknown_one_gets_an_error_page() {
    let world = world();
    let identity = server_identity(&world);
    let token = resource_token(&world, &identity, "data.write").await;
    let listener = aauth_agent::CallbackListener::bind().await.unwrap();
    let redirect_uri = listener.redirect_uri().to_string();
    let reply = token_request(
        &world,
        &identity,
        &[
            ("request_type", "auth"),
            ("resource_token", &token),
            ("redirect_uri", &redirect_uri),
        ],
    )
    .await;
    let body: Value = reply.json().unwrap();
    let request_token = body["request_token"].as_str().unwrap().to_owned();
    let page = |request_token: &str| {
        let mut url = at(world.auth_server.url(), "/agent/auth");
        url.query_pairs_mut()
            .append_pair("request_token", request_token)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("state", "s");
        url
    };
    use aauth_agent::ConsentHandler as _;
    alice(aauth_e2e::user::Decision::Approve)
        .present(&page(&request_token))
        .await
        .unwrap();
    let _ = listener
        .wait(std::time::Duration::from_secs(10))
        .await
        .unwrap();
    // Answered: 409 and where the flow ended, never a second redirect.
    let response = plain().get(page(&request_token)).send().await.unwrap();
    assert_eq!(response.status(), 409);
    assert!(response.headers().get(header::LOCATION).is_none());
    let text = response.text().await.unwrap();
    assert!(text.contains("<title>Already answered</title>"), "{text}");
    for stale in ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""] {
        let response = plain().get(page(stale)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{stale:?}");
        assert!(response.headers().get(header::LOCATION).is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn notes_are_read_in_bounded_pages_and_an_oversized_note_is_refused() {
    // Bounded work per request: GET /data pages its answer, a note has a
    // maximum size, and an owner a maximum of stored text.
    let world = world();
    let delegate = enroll(&world, "pager").await;
    let delegate_id = delegate_identity(&delegate);
    let as_user = |auth_token: String| Identity::AuthToken {
        auth_token,
        key: delegate.key.clone(),
    };
    // One token for both (data.read alone is granted to the agent without
    // the user, and would be the agent's notes, not Alice's).
    let token = user_grant(&world, &delegate_id, "data.read data.write")
        .await
        .0;
    let (writer, reader) = (as_user(token.clone()), as_user(token));
    for i in 0..5 {
        let reply = client()
            .send(
                &writer,
                Outgoing::new(Method::POST, at(world.resource.url(), "/data"))
                    .body(format!("note {i}"), "text/plain"),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
    let read = |query: String| {
        let reader = &reader;
        let world = &world;
        async move {
            client()
                .send(reader, Outgoing::get(at(world.resource.url(), &query)))
                .await
                .unwrap()
        }
    };
    // Two at a time, following the cursor.
    let mut texts = Vec::new();
    let mut query = "/data?limit=2".to_owned();
    loop {
        let reply = read(query.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let page: Value = reply.json().unwrap();
        let notes = page["notes"].as_array().unwrap();
        assert!(notes.len() <= 2, "{page}");
        texts.extend(notes.iter().map(|n| n["text"].as_str().unwrap().to_owned()));
        match page["next"].as_u64() {
            Some(next) => query = format!("/data?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(
        texts,
        (0..5).map(|i| format!("note {i}")).collect::<Vec<_>>()
    );
    // Without a limit: the default page, here all five, and no next page.
    let page: Value = read("/data".to_owned()).await.json().unwrap();
    assert_eq!(page["notes"].as_array().unwrap().len(), 5);
    assert!(page["next"].is_null(), "{page}");

    for bad in [
        "/data?limit=0",
        "/data?limit=101",
        "/data?limit=x",
        "/data?after=-1",
    ] {
        let reply = read(bad.to_owned()).await;
        assert_error(&reply, 400, "invalid_request");
    }
    let oversized = client()
        .send(
            &writer,
            Outgoing::new(Method::POST, at(world.resource.url(), "/data"))
                .body("x".repeat(64 * 1024 + 1), "text/plain"),
        )
        .await
        .unwrap();
    assert_error(&oversized, 400, "invalid_request");
    assert!(
        oversized.text().contains("longer than 65536 bytes"),
        "{}",
        oversized.text()
    );
}
