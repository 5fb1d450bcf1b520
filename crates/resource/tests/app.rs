//! App tests: every endpoint at every level, each challenge and error code
//! (P-ERR-1, P-CH-2..4, P-ERR-3/4), resource tokens (E§9.2.5, P-TOK-3),
//! rate tiers (E§4.5) and the notes API, through `oneshot` without sockets.

mod common;

use aauth_protocol::challenge::Level;
use axum::http::StatusCode;
use common::*;

// ---------------------------------------------------------------------------
// Metadata

#[tokio::test]
async fn metadata_names_the_resource_its_keys_token_endpoint_and_scopes() {
    // E§8.3
    let w = world().await;
    let md = send(
        &w,
        &Call::get("/.well-known/aauth-resource"),
        &Who::Unsigned,
    )
    .await;
    assert_eq!(md.status, StatusCode::OK);
    assert_eq!(md.json["resource"], RESOURCE);
    assert_eq!(
        md.json["jwks_uri"],
        format!("{RESOURCE}/.well-known/jwks.json")
    );
    assert_eq!(
        md.json["resource_token_endpoint"],
        format!("{RESOURCE}/resource/token")
    );
    assert_eq!(
        md.json["supported_scopes"],
        serde_json::json!(["data.read", "data.write", "chain.read"])
    );
    assert_eq!(
        md.json["scope_descriptions"]["data.read"],
        "Read your notes"
    );

    let jwks = send(&w, &Call::get("/.well-known/jwks.json"), &Who::Unsigned).await;
    assert_eq!(jwks.status, StatusCode::OK);
    let x = jwks.json["keys"][0]["x"].as_str().unwrap();
    let expected = serde_json::to_value(&w.resource_key).unwrap();
    assert_eq!(x, expected["x"]);
}

#[tokio::test]
async fn the_resource_publishes_itself_as_an_agent_with_the_same_key_set() {
    // profile: P-MD-4
    let w = world().await;
    let md = send(&w, &Call::get("/.well-known/aauth-agent"), &Who::Unsigned).await;
    assert_eq!(md.status, StatusCode::OK);
    assert_eq!(
        md.json,
        serde_json::json!({
            "agent": RESOURCE,
            "jwks_uri": format!("{RESOURCE}/.well-known/jwks.json"),
            "name": "AAuth notes",
        })
    );
    // Without a downstream it never sends a user anywhere: no redirect_uris.
    // It parses as agent metadata of this origin (E§8.1).
    let bytes = serde_json::to_vec(&md.json).unwrap();
    aauth_protocol::metadata::AgentMetadata::from_json(
        &bytes,
        &dev(RESOURCE),
        aauth_protocol::ids::OriginMode::Dev,
    )
    .unwrap();
}

#[tokio::test]
async fn without_a_downstream_the_interaction_pages_are_not_found() {
    // profile: P-UI — only a resource that calls another ever needs the user.
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let w = world().await;
    for path in [
        "/interaction?session=x&return_url=http://127.0.0.1:1/callback",
        "/interaction/callback?code=x&state=y",
    ] {
        let request = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = aauth_resource::app(w.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(response.headers().get("location").is_none());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("never needs the user"), "{body}");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let w = world().await;
    let missing = send(&w, &Call::get("/nope"), &Who::Unsigned).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error(), "invalid_request");
    let mut call = Call::get("/whoami");
    call.method = "DELETE";
    let wrong = send(&w, &call, &Who::Unsigned).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.error(), "invalid_request");
}

// ---------------------------------------------------------------------------
// GET /whoami: identified

#[tokio::test]
async fn whoami_unsigned_is_invalid_signature_with_the_identity_challenge() {
    // P-ERR-1 row 1; P-CH-4: the level the endpoint requires.
    let w = world().await;
    let a = send(&w, &Call::get("/whoami"), &Who::Unsigned).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_signature");
    let challenge = a.challenge().unwrap();
    assert_eq!(challenge.level(), Level::Identified);
    assert_eq!(challenge.resource_token(), None);
}

#[tokio::test]
async fn whoami_hwk_is_insufficient_auth_level_with_the_identity_challenge() {
    // P-CH-2
    let w = world().await;
    let a = send(&w, &Call::get("/whoami"), &Who::Hwk(&w.delegate)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "insufficient_auth_level");
    assert_eq!(a.challenge().unwrap().level(), Level::Identified);
}

#[tokio::test]
async fn whoami_reports_the_agent_server_the_delegate_and_the_user() {
    let w = world().await;
    let server = send(&w, &Call::get("/whoami"), &Who::AgentServer).await;
    assert_eq!(server.status, StatusCode::OK, "{:?}", server.json);
    assert_eq!(server.json["level"], "identified");
    assert_eq!(server.json["scheme"], "jwks_uri");
    assert_eq!(server.json["agent"], w.agent.origin.as_str());
    assert_eq!(server.json["delegate"], serde_json::Value::Null);
    assert_eq!(
        server.json["key_thumbprint"],
        w.agent.key.public_key().thumbprint().as_str()
    );
    assert!(server.json.get("sub").is_none());

    let delegate = send(
        &w,
        &Call::get("/whoami"),
        &Who::Jwt(&w.delegate, agent_token(&w)),
    )
    .await;
    assert_eq!(delegate.status, StatusCode::OK, "{:?}", delegate.json);
    assert_eq!(delegate.json["scheme"], "jwt");
    assert_eq!(delegate.json["delegate"], "delegate-1");
    assert_eq!(
        delegate.json["key_thumbprint"],
        w.delegate.public_key().thumbprint().as_str()
    );

    let token = AuthToken::new(&w, "data.read").mint(&w);
    let user = send(&w, &Call::get("/whoami"), &Who::Jwt(&w.delegate, token)).await;
    assert_eq!(user.status, StatusCode::OK, "{:?}", user.json);
    assert_eq!(user.json["level"], "authorized");
    assert_eq!(user.json["sub"], "alice");
    assert_eq!(user.json["agent"], w.agent.origin.as_str());
}

#[tokio::test]
async fn an_invalid_agent_token_is_invalid_agent_token_with_the_level_challenge() {
    // P-ERR-1: agent token invalid → level required.
    let w = world().await;
    let expired = aauth_protocol::tokens::agent_token::AgentTokenBuilder::new(
        w.agent.origin.clone(),
        "delegate-1",
        w.delegate.public_key().clone(),
    )
    .lifetime_secs(10)
    .build(now() - 100)
    .unwrap()
    .sign(&w.agent.key, &w.agent.kid)
    .unwrap();
    let a = send(&w, &Call::get("/whoami"), &Who::Jwt(&w.delegate, expired)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_agent_token");
    assert_eq!(a.challenge().unwrap().level(), Level::Identified);
}

#[tokio::test]
async fn a_request_signed_for_another_authority_is_invalid_signature() {
    // profile: P-SIG-5
    let w = world().await;
    let mut call = Call::get("/whoami");
    call.authority = "127.0.0.1:7001";
    let a = send(&w, &call, &Who::AgentServer).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_signature");
    assert_eq!(a.challenge().unwrap().level(), Level::Identified);
    // profile: P-ERR-3 — dev mode shows the base the resource computed.
    let base = a.json["signature_base"].as_str().unwrap();
    assert!(base.contains("\"@authority\": 127.0.0.1:7000"), "{base}");
}

#[tokio::test]
async fn a_stale_signature_is_invalid_signature() {
    // profile: P-SIG-2
    let w = world().await;
    let mut call = Call::get("/whoami");
    call.created -= 120;
    let a = send(&w, &call, &Who::AgentServer).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_signature");
}

// ---------------------------------------------------------------------------
// POST /resource/token (E§9.2.5)

#[tokio::test]
async fn resource_token_endpoint_mints_a_token_bound_to_the_agent_and_the_signing_key() {
    // profile: P-TOK-3
    let w = world().await;
    let call = Call::form("/resource/token", "scope=data.read+data.write");
    let a = send(&w, &call, &Who::AgentServer).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.json);
    assert_eq!(a.json["auth_server"], w.auth.origin.as_str());
    assert_eq!(a.json["expires_in"], 300);
    let token = a.json["resource_token"].as_str().unwrap();
    let verified = check_resource_token(&w, token, &w.agent.origin, w.agent.key.public_key());
    let claims = verified.claims();
    assert_eq!(claims.iss.as_str(), RESOURCE);
    assert_eq!(claims.scope, scope("data.read data.write"));
    assert_eq!(claims.agent_jkt, w.agent.key.public_key().thumbprint());
    assert_eq!(claims.exp - claims.iat.unwrap(), 300);
    assert!(claims.jti.is_some());

    // A delegate: agent = the agent server, agent_jkt = the delegate's key.
    let call = Call::form("/resource/token", "scope=data.read");
    let a = send(&w, &call, &Who::Jwt(&w.delegate, agent_token(&w))).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.json);
    let token = a.json["resource_token"].as_str().unwrap();
    let verified = check_resource_token(&w, token, &w.agent.origin, w.delegate.public_key());
    assert_eq!(
        verified.claims().agent_jkt,
        w.delegate.public_key().thumbprint()
    );
}

#[tokio::test]
async fn resource_token_endpoint_refuses_hwk_and_unsigned_with_the_identity_challenge() {
    let w = world().await;
    let call = Call::form("/resource/token", "scope=data.read");
    let hwk = send(&w, &call, &Who::Hwk(&w.delegate)).await;
    assert_eq!(hwk.status, StatusCode::UNAUTHORIZED);
    assert_eq!(hwk.error(), "insufficient_auth_level");
    assert_eq!(hwk.challenge().unwrap().level(), Level::Identified);
    assert_eq!(hwk.challenge().unwrap().resource_token(), None);

    let unsigned = send(&w, &call, &Who::Unsigned).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unsigned.error(), "invalid_signature");
    assert_eq!(unsigned.challenge().unwrap().level(), Level::Identified);
}

#[tokio::test]
async fn resource_token_endpoint_checks_its_form() {
    let w = world().await;
    for (body, status, error) in [
        ("scope=data.delete", 400, "invalid_scope"),
        ("scope=data.read+other", 400, "invalid_scope"),
        ("scope=", 400, "invalid_request"),
        ("", 400, "invalid_request"),
        ("other=1", 400, "invalid_request"),
        // profile: P-TOK-7
        (
            "auth_request_url=https%3A%2F%2Fx.example%2Fr",
            400,
            "invalid_request",
        ),
        (
            "scope=data.read&auth_request_url=https%3A%2F%2Fx.example%2Fr",
            400,
            "invalid_request",
        ),
    ] {
        let call = Call::form("/resource/token", body);
        let a = send(&w, &call, &Who::AgentServer).await;
        assert_eq!(a.status.as_u16(), status, "{body}: {:?}", a.json);
        assert_eq!(a.error(), error, "{body}");
    }
    let a = send(
        &w,
        &Call::form("/resource/token", "auth_request_url=x"),
        &Who::AgentServer,
    )
    .await;
    assert!(
        a.json["error_description"]
            .as_str()
            .unwrap()
            .contains("E§11 leaves the document format TBD")
    );
    let json = Call::post(
        "/resource/token",
        "application/json",
        b"{\"scope\":\"data.read\"}",
    );
    let a = send(&w, &json, &Who::AgentServer).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error(), "invalid_request");
}

#[tokio::test]
async fn a_post_without_nonce_is_refused_unless_configured_off() {
    // profile: P-SIG-6
    let w = world().await;
    let mut call = Call::form("/resource/token", "scope=data.read");
    call.nonce = None;
    let a = send(&w, &call, &Who::AgentServer).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_signature");
    assert_eq!(a.challenge().unwrap().level(), Level::Identified);

    let lax = world_with("require_nonce = false").await;
    let a = send(&lax, &call, &Who::AgentServer).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.json);
}

#[tokio::test]
async fn a_replayed_nonce_is_replayed_nonce_with_the_level_challenge() {
    // profile: P-SIG-6; P-ERR-1 row 2.
    let w = world().await;
    let call = Call::form("/resource/token", "scope=data.read");
    let first = send(&w, &call, &Who::AgentServer).await;
    assert_eq!(first.status, StatusCode::OK);
    let again = send(&w, &call, &Who::AgentServer).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.error(), "replayed_nonce");
    assert_eq!(again.challenge().unwrap().level(), Level::Identified);
}

#[tokio::test]
async fn an_oversized_form_is_413() {
    // P-ERR-1: form 64 KiB.
    let w = world().await;
    let body = format!("scope=data.read&pad={}", "a".repeat(70 * 1024));
    let a = send(&w, &Call::form("/resource/token", &body), &Who::AgentServer).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.error(), "invalid_request");
}

// ---------------------------------------------------------------------------
// GET /data: authorized with data.read

#[tokio::test]
async fn data_unsigned_is_invalid_signature_with_a_bare_auth_token_challenge() {
    // P-CH-4 / P-ERR-4: no verified agent, no resource token.
    let w = world().await;
    let a = send(&w, &Call::get("/data"), &Who::Unsigned).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_signature");
    let challenge = a.challenge().unwrap();
    assert_eq!(challenge.level(), Level::Authorized);
    assert_eq!(challenge.resource_token(), None);
    assert_eq!(challenge.auth_server(), None);
}

#[tokio::test]
async fn data_hwk_gets_the_identity_challenge_first() {
    // profile: P-CH-3
    let w = world().await;
    let a = send(&w, &Call::get("/data"), &Who::Hwk(&w.delegate)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "insufficient_auth_level");
    let challenge = a.challenge().unwrap();
    assert_eq!(challenge.level(), Level::Identified);
    assert_eq!(challenge.resource_token(), None);
}

#[tokio::test]
async fn data_identified_gets_a_resource_token_for_the_scope_bound_to_agent_and_key() {
    // E§4.3, P-CH-4, P-TOK-3
    let w = world().await;
    let a = send(&w, &Call::get("/data"), &Who::AgentServer).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "insufficient_auth_level");
    let rt = challenged_resource_token(&w, &a, &w.agent.origin, w.agent.key.public_key());
    assert_eq!(rt.scope(), &scope("data.read"));

    let a = send(
        &w,
        &Call::get("/data"),
        &Who::Jwt(&w.delegate, agent_token(&w)),
    )
    .await;
    assert_eq!(a.error(), "insufficient_auth_level");
    let rt = challenged_resource_token(&w, &a, &w.agent.origin, w.delegate.public_key());
    assert_eq!(rt.scope(), &scope("data.read"));
}

#[tokio::test]
async fn data_without_the_scope_is_403_with_a_resource_token_for_it() {
    // P-ERR-1: insufficient_scope → auth-token + resource token for the needed scope.
    let w = world().await;
    for granted in [Some("data.write"), None] {
        let mut options = AuthToken::new(&w, "");
        options.scope = granted;
        let token = options.mint(&w);
        let a = send(&w, &Call::get("/data"), &Who::Jwt(&w.delegate, token)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{granted:?}");
        assert_eq!(a.error(), "insufficient_scope");
        let rt = challenged_resource_token(&w, &a, &w.agent.origin, w.delegate.public_key());
        assert_eq!(rt.scope(), &scope("data.read"));
    }
}

#[tokio::test]
async fn invalid_auth_tokens_get_a_resource_token_only_when_genuine_but_expired() {
    // P-ERR-1 row "auth token invalid"; P-ERR-4; P-TOK-5; P-TOK-6.
    let w = world().await;
    let mut other_aud = AuthToken::new(&w, "data.read");
    other_aud.aud = dev("http://127.0.0.1:7999");
    let mut expired = AuthToken::new(&w, "data.read");
    expired.issued = now() - 100;
    expired.lifetime = 10;
    let mut untrusted = AuthToken::new(&w, "data.read");
    untrusted.issuer = &w.rogue;
    for (name, token) in [
        ("another aud", other_aud.mint(&w)),
        ("untrusted issuer", untrusted.mint(&w)),
    ] {
        let a = send(&w, &Call::get("/data"), &Who::Jwt(&w.delegate, token)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(a.error(), "invalid_auth_token", "{name}: {:?}", a.json);
        let challenge = a.challenge().unwrap();
        assert_eq!(challenge.level(), Level::Authorized, "{name}");
        assert_eq!(challenge.resource_token(), None, "{name}");
    }

    // P-ERR-1: "+ fresh resource token when the signature verified with a
    // trusted key" — a genuine token past its exp, used by its own key.
    let token = expired.mint(&w);
    let a = send(
        &w,
        &Call::get("/data"),
        &Who::Jwt(&w.delegate, token.clone()),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_auth_token", "{:?}", a.json);
    let challenge = a.challenge().unwrap();
    assert_eq!(challenge.level(), Level::Authorized);
    assert!(
        challenge.resource_token().is_some(),
        "a fresh resource token"
    );
    assert!(challenge.auth_server().is_some());

    // The same expired token used by another key: nothing is minted.
    let thief =
        aauth_protocol::keys::SigningKey::generate(aauth_protocol::keys::Algorithm::Ed25519)
            .unwrap();
    let a = send(&w, &Call::get("/data"), &Who::Jwt(&thief, token)).await;
    assert_eq!(a.error(), "invalid_auth_token", "{:?}", a.json);
    assert_eq!(a.challenge().unwrap().resource_token(), None);
}

#[tokio::test]
async fn an_auth_token_used_with_another_key_is_key_binding_failed() {
    // profile: P-SK-4; P-ERR-1 row "key ≠ cnf.jwk"; P-ERR-4.
    let w = world().await;
    let thief =
        aauth_protocol::keys::SigningKey::generate(aauth_protocol::keys::Algorithm::Ed25519)
            .unwrap();
    let token = AuthToken::new(&w, "data.read").mint(&w);
    let a = send(&w, &Call::get("/data"), &Who::Jwt(&thief, token)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "key_binding_failed");
    let challenge = a.challenge().unwrap();
    assert_eq!(challenge.level(), Level::Authorized);
    assert_eq!(challenge.resource_token(), None);
}

// ---------------------------------------------------------------------------
// The notes API

#[tokio::test]
async fn notes_are_stored_per_user_and_read_back() {
    let w = world().await;
    let write = AuthToken::new(&w, "data.write").mint(&w);
    let json = Call::post("/data", "application/json", br#"{"text":"buy milk"}"#);
    let a = send(&w, &json, &Who::Jwt(&w.delegate, write.clone())).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.json);
    assert_eq!(a.json["text"], "buy milk");
    let text = Call::post(
        "/data",
        "text/plain; charset=utf-8",
        "call Bob ☎".as_bytes(),
    );
    let a = send(&w, &text, &Who::Jwt(&w.delegate, write)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.json);

    let read = AuthToken::new(&w, "data.read").mint(&w);
    let a = send(&w, &Call::get("/data"), &Who::Jwt(&w.delegate, read)).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.json);
    assert_eq!(
        a.json["owner"],
        serde_json::json!({"kind": "user", "id": "alice"})
    );
    let texts: Vec<_> = a.json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["buy milk", "call Bob ☎"]);

    // Another user sees nothing; an autonomous agent has its own notes.
    let mut bob = AuthToken::new(&w, "data.read");
    bob.sub = Some("bob");
    let a = send(
        &w,
        &Call::get("/data"),
        &Who::Jwt(&w.delegate, bob.mint(&w)),
    )
    .await;
    assert_eq!(a.json["notes"], serde_json::json!([]));
    let mut autonomous = AuthToken::new(&w, "data.read");
    autonomous.sub = None;
    let a = send(
        &w,
        &Call::get("/data"),
        &Who::Jwt(&w.delegate, autonomous.mint(&w)),
    )
    .await;
    assert_eq!(
        a.json["owner"],
        serde_json::json!({"kind": "agent", "id": w.agent.origin.as_str()})
    );
}

#[tokio::test]
async fn writing_needs_data_write() {
    let w = world().await;
    let read = AuthToken::new(&w, "data.read").mint(&w);
    let call = Call::post("/data", "text/plain", b"x");
    let a = send(&w, &call, &Who::Jwt(&w.delegate, read)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.error(), "insufficient_scope");
    let rt = challenged_resource_token(&w, &a, &w.agent.origin, w.delegate.public_key());
    assert_eq!(rt.scope(), &scope("data.write"));
}

#[tokio::test]
async fn malformed_and_oversized_note_bodies_are_400_and_413() {
    let w = world_with("max_body = 1024").await;
    let write = AuthToken::new(&w, "data.write").mint(&w);
    for (ct, body) in [
        ("application/json", &b"{not json"[..]),
        ("application/json", br#"{"note":"x"}"#),
        ("application/json", br#"{"text":""}"#),
        ("text/plain", &[0xff, 0xfe][..]),
        ("application/octet-stream", b"x"),
    ] {
        let call = Call::post("/data", ct, body);
        let a = send(&w, &call, &Who::Jwt(&w.delegate, write.clone())).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{ct} {body:?}");
        assert_eq!(a.error(), "invalid_request");
    }
    let call = Call::post("/data", "text/plain", &[b'a'; 2048]);
    let a = send(&w, &call, &Who::Jwt(&w.delegate, write)).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.error(), "invalid_request");
}

#[tokio::test]
async fn a_body_that_does_not_match_its_digest_is_invalid_signature() {
    // P-SIG-1: the digest is checked against the received body.
    let w = world().await;
    let write = AuthToken::new(&w, "data.write").mint(&w);
    let call = Call::post("/data", "text/plain", b"original");
    let request = call.request(&w, &Who::Jwt(&w.delegate, write));
    let (parts, _) = request.into_parts();
    let tampered = axum::http::Request::from_parts(parts, axum::body::Body::from("tampered"));
    let a = send_request(&w, tampered).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_signature");
}

// ---------------------------------------------------------------------------
// GET /public: progressive rate tiers (E§4.5)

const SMALL: &str =
    "[rate_limit]\nunsigned = 2\npseudonymous = 2\nidentified = 2\nauthorized = 2\n";

#[tokio::test]
async fn unsigned_requests_are_limited_per_address_then_asked_for_a_signature() {
    let w = world_with(SMALL).await;
    for _ in 0..2 {
        let a = send(&w, &Call::get("/public"), &Who::Unsigned).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.json["level"], "unsigned");
    }
    let a = send(&w, &Call::get("/public"), &Who::Unsigned).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.error(), "rate_limited");
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(a.challenge().unwrap().level(), Level::Pseudonymous);

    let mut elsewhere = Call::get("/public");
    elsewhere.client = "192.0.2.2:5000".parse().unwrap();
    assert_eq!(
        send(&w, &elsewhere, &Who::Unsigned).await.status,
        StatusCode::OK
    );
    // A signature lifts the caller into the next tier.
    let a = send(&w, &Call::get("/public"), &Who::Hwk(&w.delegate)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["level"], "pseudonymous");
}

#[tokio::test]
async fn pseudonymous_over_its_limit_is_asked_for_identity() {
    let w = world_with(SMALL).await;
    for _ in 0..2 {
        assert_eq!(
            send(&w, &Call::get("/public"), &Who::Hwk(&w.delegate))
                .await
                .status,
            StatusCode::OK
        );
    }
    let a = send(&w, &Call::get("/public"), &Who::Hwk(&w.delegate)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers.contains_key("retry-after"));
    assert_eq!(a.challenge().unwrap().level(), Level::Identified);
    // Another key has its own count.
    let other =
        aauth_protocol::keys::SigningKey::generate(aauth_protocol::keys::Algorithm::Ed25519)
            .unwrap();
    assert_eq!(
        send(&w, &Call::get("/public"), &Who::Hwk(&other))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn identified_over_its_limit_is_offered_a_resource_token() {
    let w = world_with(SMALL).await;
    for _ in 0..2 {
        let a = send(&w, &Call::get("/public"), &Who::AgentServer).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.json["level"], "identified");
    }
    let a = send(&w, &Call::get("/public"), &Who::AgentServer).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers.contains_key("retry-after"));
    let rt = challenged_resource_token(&w, &a, &w.agent.origin, w.agent.key.public_key());
    assert_eq!(rt.scope(), &scope("data.read"));
}

#[tokio::test]
async fn authorized_over_its_limit_gets_429_without_a_challenge() {
    // P-CH-4: no higher level, no Agent-Auth.
    let w = world_with(SMALL).await;
    let token = AuthToken::new(&w, "data.read").mint(&w);
    for _ in 0..2 {
        let a = send(
            &w,
            &Call::get("/public"),
            &Who::Jwt(&w.delegate, token.clone()),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.json["level"], "authorized");
    }
    let a = send(&w, &Call::get("/public"), &Who::Jwt(&w.delegate, token)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers.contains_key("retry-after"));
    assert!(a.challenge().is_none());
}

#[tokio::test]
async fn a_bad_signature_at_public_is_401_and_never_counted_as_unsigned() {
    // P-ERR-1 row 1: a present-but-invalid signature is not "unsigned".
    let w = world_with("[rate_limit]\nunsigned = 1").await;
    let mut stale = Call::get("/public");
    stale.created -= 600;
    for _ in 0..3 {
        let a = send(&w, &stale, &Who::Hwk(&w.delegate)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.error(), "invalid_signature");
        assert_eq!(a.challenge().unwrap().level(), Level::Pseudonymous);
    }
    let mut request = Call::get("/public").request(&w, &Who::Unsigned);
    request
        .headers_mut()
        .insert("signature-key", "sig=garbage(".parse().unwrap());
    let a = send_request(&w, request).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_signature");
    assert_eq!(
        send(&w, &Call::get("/public"), &Who::Unsigned).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn hostile_signature_headers_are_401_never_500() {
    // P-ERR-2: "no input yields a 500".
    let w = world().await;
    let long = "a".repeat(20_000);
    let cases: Vec<(&str, String)> = vec![
        (
            "signature-key",
            "sig=hwk;kty=\"OKP\";crv=\"Ed25519\";x=\"!!\"".to_owned(),
        ),
        ("signature-key", format!("sig=jwt;jwt=\"{long}\"")),
        ("signature-key", "sig=jwt;jwt=\"a.b.c\"".to_owned()),
        ("signature-key", "sig=(scheme=hwk kty=\"OKP\"".to_owned()),
        (
            "signature-key",
            "sig=jwks_uri;id=\"http://10.0.0.1\";well-known=\"aauth-agent\";kid=\"k\"".to_owned(),
        ),
        ("signature-input", "sig=(\"@method\");created=1".to_owned()),
        ("signature", "sig=:AAAA:".to_owned()),
        ("signature-input", long.clone()),
    ];
    for target in ["/public", "/whoami", "/data"] {
        for (name, value) in &cases {
            let mut request = Call::get(target).request(&w, &Who::Unsigned);
            request.headers_mut().insert(*name, value.parse().unwrap());
            let a = send_request(&w, request).await;
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{target} {name}: {:?}",
                a.json
            );
            assert!(a.challenge().is_some(), "{target} {name}");
        }
    }
}

// ---------------------------------------------------------------------------
// The chain (E§3.9)

#[tokio::test]
async fn chain_without_a_downstream_shows_the_caller_user_and_act() {
    // E§9.10: the act claim shows the delegation chain; no downstream → null.
    let w = world().await;
    let mut token = AuthToken::new(&w, "chain.read");
    token.act = Some(aauth_protocol::tokens::auth_token::Act {
        agent: "http://127.0.0.1:7100".to_owned(),
        agent_delegate: Some("phone".to_owned()),
        sub: None,
        act: None,
    });
    let a = send(
        &w,
        &Call::get("/chain"),
        &Who::Jwt(&w.delegate, token.mint(&w)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.json);
    assert_eq!(
        a.json,
        serde_json::json!({
            "resource": RESOURCE,
            "caller": w.agent.origin.as_str(),
            "delegate": "delegate-1",
            "sub": "alice",
            "act": {"agent": "http://127.0.0.1:7100", "agent_delegate": "phone"},
            "downstream": null,
        })
    );

    let mut plain = AuthToken::new(&w, "chain.read");
    plain.sub = None;
    let a = send(
        &w,
        &Call::get("/chain"),
        &Who::Jwt(&w.delegate, plain.mint(&w)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.json);
    assert_eq!(a.json["act"], serde_json::Value::Null);
    assert_eq!(a.json["sub"], serde_json::Value::Null);
}

#[tokio::test]
async fn chain_needs_chain_read() {
    let w = world().await;
    let a = send(&w, &Call::get("/chain"), &Who::AgentServer).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let rt = challenged_resource_token(&w, &a, &w.agent.origin, w.agent.key.public_key());
    assert_eq!(rt.scope().to_string(), "chain.read");

    let read = AuthToken::new(&w, "data.read").mint(&w);
    let a = send(&w, &Call::get("/chain"), &Who::Jwt(&w.delegate, read)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.error(), "insufficient_scope");
}
