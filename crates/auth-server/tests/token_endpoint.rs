//! `POST /agent/token` (E§9.3–9.7, profile: P-AS-1, P-AS-2, P-AS-5, P-AS-6, P-ERR-1).

mod common;

use aauth_protocol::httpsig::{SignOptions, SignatureEncoding};
use aauth_protocol::ids::Label;
use aauth_protocol::signature_key::{SignatureKeyField, Syntax};
use aauth_protocol::tokens::auth_token::AuthTokenBuilder;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::Value;

#[tokio::test]
async fn metadata_and_jwks_describe_the_server() {
    // E§8.2, P-MD-2
    let w = World::new().await;
    let reply = w.get("/.well-known/aauth-issuer", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json();
    let iss = w.issuer.as_str();
    assert_eq!(doc["issuer"], iss);
    assert_eq!(doc["jwks_uri"], format!("{iss}/.well-known/jwks.json"));
    assert_eq!(doc["agent_token_endpoint"], format!("{iss}/agent/token"));
    assert_eq!(doc["agent_auth_endpoint"], format!("{iss}/agent/auth"));
    assert_eq!(
        doc["agent_signing_algs_supported"],
        serde_json::json!(["ed25519", "ecdsa-p256-sha256"])
    );
    assert_eq!(
        doc["request_types_supported"],
        serde_json::json!(["auth", "code", "refresh", "exchange"])
    );
    assert!(
        doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("openid"))
    );
    let jwks = w.get("/.well-known/jwks.json", None).await.json();
    assert_eq!(jwks["keys"][0]["kid"], w.state.key().kid.as_str());
    assert_eq!(w.get("/nowhere", None).await.status, StatusCode::NOT_FOUND);
    let wrong_method = w.get("/agent/token", None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.error(), "invalid_request");
}

#[tokio::test]
async fn an_autonomous_resource_token_request_gets_a_direct_grant() {
    // profile: P-AS-2, P-AS-2a, P-TOK-4
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let rt = w.resource_token(d.key.public_key(), "data.read");
    let reply = w
        .call(&d, &[("request_type", "auth"), ("resource_token", &rt)])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["refresh_token"].as_str().unwrap().len(), 43);
    let token = claims(body["auth_token"].as_str().unwrap());
    assert_eq!(token["iss"], w.issuer.as_str());
    assert_eq!(token["aud"], w.resource.as_str());
    assert_eq!(token["agent"], w.agent.as_str());
    assert_eq!(token["agent_delegate"], "delegate-1");
    assert_eq!(token["scope"], "data.read");
    assert_eq!(token["cnf"]["jwk"], d.key.public_key().to_json_value());
    assert!(token.get("sub").is_none());
    for claim in ["iat", "nbf", "exp", "jti"] {
        assert!(token.get(claim).is_some(), "{claim}");
    }
    assert_eq!(
        token["exp"].as_i64().unwrap() - token["iat"].as_i64().unwrap(),
        600
    );
}

#[tokio::test]
async fn scopes_beyond_the_policy_need_consent_and_a_redirect_uri() {
    // profile: P-AS-2 — "redirect_uri optional unless consent is needed".
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let rt = w.resource_token(d.key.public_key(), "data.read data.write");
    let reply = w
        .call(&d, &[("request_type", "auth"), ("resource_token", &rt)])
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "invalid_request");
    assert!(
        reply.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("redirect_uri")
    );

    let rt = w.resource_token(d.key.public_key(), "data.read data.write");
    let reply = w
        .call(
            &d,
            &[
                ("request_type", "auth"),
                ("resource_token", &rt),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["request_token"].as_str().unwrap().len(), 43);
    assert_eq!(body["expires_in"], 600);
    assert!(body.get("auth_token").is_none());
}

#[tokio::test]
async fn identity_scopes_always_need_a_user() {
    // profile: P-AS-2a — never a direct grant for identity scopes.
    let w = World::with(|c| c.autonomous[1].scopes.push("openid".into())).await;
    let d = w.delegate("delegate-1");
    let reply = w
        .call(
            &d,
            &[
                ("request_type", "auth"),
                ("scope", "openid jobs.run"),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.json().get("request_token").is_some());
}

#[tokio::test]
async fn an_agent_server_gets_a_token_for_its_own_api() {
    // E§3.5: the agent is the resource; E§7.3: aud = agent, `agent` omitted.
    let w = World::new().await;
    let request = w.signed_token_request(
        &w.agent_key,
        &w.agent_server_field(),
        &[("request_type", "auth"), ("scope", "jobs.run")],
    );
    let reply = w.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let token = claims(reply.json()["auth_token"].as_str().unwrap());
    assert_eq!(token["aud"], w.agent.as_str());
    assert!(token.get("agent").is_none());
    assert!(token.get("agent_delegate").is_none());
    assert_eq!(token["scope"], "jobs.run");
    assert_eq!(
        token["cnf"]["jwk"],
        w.agent_key.public_key().to_json_value()
    );
}

#[tokio::test]
async fn exactly_one_of_resource_token_and_scope() {
    // profile: P-AS-2, P-TOK-7
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let rt = w.resource_token(d.key.public_key(), "data.read");
    for form in [
        vec![("request_type", "auth")],
        vec![
            ("request_type", "auth"),
            ("resource_token", rt.as_str()),
            ("scope", "data.read"),
        ],
        vec![
            ("request_type", "auth"),
            ("auth_request_url", "https://r.example/doc"),
        ],
        vec![("request_type", "auth"), ("scope", "bad  scope")],
    ] {
        let reply = w.call(&d, &form).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(reply.error(), "invalid_request", "{form:?}");
    }
}

#[tokio::test]
async fn bad_resource_tokens_are_invalid_resource_token() {
    // profile: P-AS-2 — agent == caller, agent_jkt == this request's key, aud == this server.
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let other_key = ed25519();
    let foreign_aud = aauth_protocol::ids::Origin::parse(
        "http://127.0.0.1:10",
        aauth_protocol::ids::OriginMode::Dev,
    )
    .unwrap();
    let cases = [
        (
            "agent_jkt of another key",
            w.resource_token(other_key.public_key(), "data.read"),
        ),
        (
            "aud another server",
            w.resource_token_for(&foreign_aud, d.key.public_key(), "data.read"),
        ),
        ("not a JWT", "garbage".to_owned()),
        ("an agent token", d.agent_token.clone()),
    ];
    for (what, rt) in cases {
        let reply = w
            .call(&d, &[("request_type", "auth"), ("resource_token", &rt)])
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            reply.text
        );
        assert_eq!(reply.error(), "invalid_resource_token", "{what}");
    }
    // Signed by a key the resource does not publish.
    let mut forged = w.resource_token(d.key.public_key(), "data.read");
    let (head, _) = forged.rsplit_once('.').unwrap();
    forged = format!("{head}.{}", aauth_protocol::b64::url_encode([0u8; 64]));
    let reply = w
        .call(&d, &[("request_type", "auth"), ("resource_token", &forged)])
        .await;
    assert_eq!(reply.error(), "invalid_resource_token");
}

#[tokio::test]
async fn request_types_other_than_auth_code_refresh_exchange_are_unsupported() {
    // profile: P-ERR-1 — unknown request_type → unsupported_request_type.
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    for kind in ["password", "Exchange", ""] {
        let reply = w.call(&d, &[("request_type", kind)]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.error(), "unsupported_request_type", "{kind:?}");
    }
    let reply = w.call(&d, &[("scope", "data.read")]).await;
    assert_eq!(reply.error(), "invalid_request");
}

#[tokio::test]
async fn pseudonymous_callers_get_the_identity_challenge() {
    // profile: P-AS-1 — "hwk gets 401 with an identity challenge".
    let w = World::new().await;
    let key = ed25519();
    let field = SignatureKeyField::hwk(Label::sig(), key.public_key())
        .to_header_value(Syntax::Sk0)
        .unwrap();
    let reply = w
        .send(w.signed_token_request(
            &key,
            &field,
            &[("request_type", "auth"), ("scope", "jobs.run")],
        ))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error(), "insufficient_auth_level");
    assert_eq!(reply.header("agent-auth"), Some("httpsig;identity"));
}

#[tokio::test]
async fn auth_tokens_are_never_callers_here() {
    // profile: P-AS-1 — "An auth token in Signature-Key is never accepted
    // here". The signature is checked first (by the key the token names, with
    // nothing fetched); a valid one is refused for its level (P-ERR-1:
    // insufficient_auth_level), a bad one as a bad signature, with the base.
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let key = w.state.key();
    let token = AuthTokenBuilder::new(
        w.issuer.clone(),
        w.resource.clone(),
        w.agent.clone(),
        d.key.public_key().clone(),
    )
    .build(now())
    .unwrap()
    .sign(&key.key, &key.kid)
    .unwrap();
    let field = SignatureKeyField::jwt(Label::sig(), token)
        .to_header_value(Syntax::Sk0)
        .unwrap();
    let form = [("request_type", "auth"), ("scope", "jobs.run")];
    let reply = w.send(w.signed_token_request(&d.key, &field, &form)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error(), "insufficient_auth_level");
    assert_eq!(reply.header("agent-auth"), Some("httpsig;identity"));
    assert!(
        reply.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("P-AS-1"),
        "{:?}",
        reply.json()
    );

    let reply = w
        .send(w.signed_token_request(&ed25519(), &field, &form))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error(), "key_binding_failed");
    assert_eq!(reply.header("agent-auth"), Some("httpsig;identity"));
    assert!(
        reply.json()["signature_base"].is_string(),
        "dev mode shows the base it checked: {:?}",
        reply.json()
    );
}

#[tokio::test]
async fn bad_signatures_and_missing_nonces_are_401_with_the_identity_challenge() {
    // profile: P-ERR-1 (AS: caller not identified / bad caller signature), P-SIG-6.
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let field = SignatureKeyField::jwt(Label::sig(), d.agent_token.clone())
        .to_header_value(Syntax::Sk0)
        .unwrap();
    // Signed by another key than the agent token's cnf.
    let reply = w
        .send(w.signed_token_request(
            &ed25519(),
            &field,
            &[("request_type", "auth"), ("scope", "jobs.run")],
        ))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error(), "key_binding_failed");
    assert_eq!(reply.header("agent-auth"), Some("httpsig;identity"));
    // No Nonce.
    let reply = w
        .send(w.signed_post(
            &d.key,
            &field,
            b"request_type=auth&scope=jobs.run".to_vec(),
            false,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error(), "invalid_signature");
    assert_eq!(reply.header("agent-auth"), Some("httpsig;identity"));
    // Unsigned.
    let unsigned = Request::post("/agent/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("request_type=auth&scope=jobs.run"))
        .unwrap();
    let reply = w.send(unsigned).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error(), "invalid_signature");
    assert_eq!(reply.header("agent-auth"), Some("httpsig;identity"));
    // A replayed request.
    let request = w.signed_token_request(
        &d.key,
        &field,
        &[("request_type", "auth"), ("scope", "jobs.run")],
    );
    let (parts, body) = request.into_parts();
    let replay = Request::from_parts(
        parts.clone(),
        Body::from("request_type=auth&scope=jobs.run"),
    );
    assert_eq!(
        w.send(Request::from_parts(parts, body)).await.status,
        StatusCode::OK
    );
    let reply = w.send(replay).await;
    assert_eq!(reply.error(), "replayed_nonce");
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_json_errors() {
    // profile: P-AS-1 (≤ 64 KiB), P-ERR-1 (413 / 400 invalid_request).
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let field = SignatureKeyField::jwt(Label::sig(), d.agent_token.clone())
        .to_header_value(Syntax::Sk0)
        .unwrap();
    let big = format!("request_type=auth&scope={}", "a".repeat(70 * 1024));
    let reply = w
        .send(w.signed_post(&d.key, &field, big.into_bytes(), true))
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error(), "invalid_request");
    let duplicated = b"request_type=auth&request_type=code".to_vec();
    let reply = w
        .send(w.signed_post(&d.key, &field, duplicated, true))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "invalid_request");
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn codes_are_single_use_and_bound_to_agent_delegate_and_redirect_uri() {
    // profile: P-AS-5
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let code = w.code_for(&d, "openid profile email").await;
    let mismatched = w
        .call(
            &d,
            &[
                ("request_type", "code"),
                ("code", &code),
                ("redirect_uri", "https://client.example/other"),
            ],
        )
        .await;
    assert_eq!(mismatched.error(), "invalid_grant");
    assert_eq!(mismatched.status, StatusCode::BAD_REQUEST);

    let code = w.code_for(&d, "openid profile email").await;
    let reply = w
        .call(
            &d,
            &[
                ("request_type", "code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    assert!(body["refresh_token"].is_string());
    assert_eq!(body["expires_in"], 600);
    let token = claims(body["auth_token"].as_str().unwrap());
    // E§7.3 SSO: aud = agent, no `agent`; E§7.4: no identity scopes in `scope`.
    assert_eq!(token["aud"], w.agent.as_str());
    assert!(token.get("agent").is_none());
    assert!(token.get("scope").is_none());
    assert_eq!(token["sub"], "user-alice");
    assert_eq!(token["name"], "Alice Example");
    assert_eq!(token["email"], "alice@example.com");
    assert_eq!(token["email_verified"], true);
    assert_eq!(token["agent_delegate"], "delegate-1");
    assert_eq!(token["cnf"]["jwk"], d.key.public_key().to_json_value());

    let again = w
        .call(&d, &[("request_type", "code"), ("code", &code)])
        .await;
    assert_eq!(again.error(), "invalid_grant");

    let code = w.code_for(&d, "openid").await;
    let other = w.delegate("delegate-2");
    let foreign = w
        .call(&other, &[("request_type", "code"), ("code", &code)])
        .await;
    assert_eq!(foreign.error(), "invalid_grant");

    for bad in ["", "nope"] {
        let reply = w.call(&d, &[("request_type", "code"), ("code", bad)]).await;
        assert_eq!(reply.error(), "invalid_grant");
    }
    let missing = w.call(&d, &[("request_type", "code")]).await;
    assert_eq!(missing.error(), "invalid_request");
}

#[tokio::test]
async fn expired_codes_are_invalid_grant() {
    // profile: P-AS-5 — 60 s by default; configurable (0 here).
    let w = World::with(|c| c.code_lifetime = 0).await;
    let d = w.delegate("delegate-1");
    let code = w.code_for(&d, "openid").await;
    let reply = w
        .call(&d, &[("request_type", "code"), ("code", &code)])
        .await;
    assert_eq!(reply.error(), "invalid_grant");
    assert!(reply.text.contains("expired"), "{}", reply.text);
}

#[tokio::test]
async fn a_resource_grant_with_consent_carries_scope_and_user() {
    // E§7.5: user authorization at another resource.
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let rt = w.resource_token(d.key.public_key(), "openid data.write");
    let reply = w
        .call(
            &d,
            &[
                ("request_type", "auth"),
                ("resource_token", &rt),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    let request_token = reply.json()["request_token"].as_str().unwrap().to_owned();
    let location = w.consent(&request_token, REDIRECT, "approve").await;
    let code = query_param(&location, "code").unwrap();
    let reply = w
        .call(&d, &[("request_type", "code"), ("code", &code)])
        .await;
    let token = claims(reply.json()["auth_token"].as_str().unwrap());
    assert_eq!(token["aud"], w.resource.as_str());
    assert_eq!(token["agent"], w.agent.as_str());
    assert_eq!(token["scope"], "data.write");
    assert_eq!(token["sub"], "user-alice");
    // `profile`/`email` were not granted: no name or email.
    assert!(token.get("name").is_none());
    assert!(token.get("email").is_none());
}

#[tokio::test]
async fn refresh_binds_the_new_key_of_the_same_delegate() {
    // profile: P-AS-6 — "the new auth token binds the key that signed the
    // refresh request (so a delegate survives key rotation)"; E§9.7: no new refresh token.
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let rt = w.resource_token(d.key.public_key(), "data.read");
    let reply = w
        .call(&d, &[("request_type", "auth"), ("resource_token", &rt)])
        .await;
    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_owned();

    let rotated = w.delegate_with_key("delegate-1", ed25519());
    let reply = w
        .call(
            &rotated,
            &[("request_type", "refresh"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    assert!(body.get("refresh_token").is_none());
    let token = claims(body["auth_token"].as_str().unwrap());
    assert_eq!(
        token["cnf"]["jwk"],
        rotated.key.public_key().to_json_value()
    );
    assert_eq!(token["agent_delegate"], "delegate-1");
    assert_eq!(token["scope"], "data.read");

    // Not rotated: it stays valid.
    let again = w
        .call(
            &d,
            &[("request_type", "refresh"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);

    let foreign = w.delegate("delegate-2");
    let reply = w
        .call(
            &foreign,
            &[("request_type", "refresh"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(reply.error(), "invalid_grant");
    // The agent server itself is another caller than its delegate.
    let request = w.signed_token_request(
        &w.agent_key,
        &w.agent_server_field(),
        &[("request_type", "refresh"), ("refresh_token", &refresh)],
    );
    assert_eq!(w.send(request).await.error(), "invalid_grant");
    let reply = w
        .call(
            &d,
            &[("request_type", "refresh"), ("refresh_token", "unknown")],
        )
        .await;
    assert_eq!(reply.error(), "invalid_grant");
    let reply = w.call(&d, &[("request_type", "refresh")]).await;
    assert_eq!(reply.error(), "invalid_request");
}

#[tokio::test]
async fn revoked_refresh_tokens_are_invalid_grant() {
    // profile: P-AS-6 — revocable by agent, delegate or user.
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let rt = w.resource_token(d.key.public_key(), "data.read");
    let reply = w
        .call(&d, &[("request_type", "auth"), ("resource_token", &rt)])
        .await;
    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    let filter = aauth_auth_server::store::RevokeFilter {
        delegate_sub: Some("delegate-1".into()),
        ..Default::default()
    };
    assert_eq!(w.state.store().revoke(&filter, now()).await.unwrap(), 1);
    let reply = w
        .call(
            &d,
            &[("request_type", "refresh"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(reply.error(), "invalid_grant");
    assert!(reply.text.contains("revoked"));
}

#[tokio::test]
async fn consent_codes_and_refresh_tokens_survive_a_restart() {
    // profile: P-AS-8 — reopen the database between consent and redemption.
    let mut w = World::new().await;
    let kid_before = w.state.key().kid.clone();
    let d = w.delegate("delegate-1");
    let code = w.code_for(&d, "openid email").await;
    w.restart().await;
    assert_eq!(w.state.key().kid, kid_before, "the signing key is kept");
    let reply = w
        .call(&d, &[("request_type", "code"), ("code", &code)])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    w.restart().await;
    let reply = w
        .call(
            &d,
            &[("request_type", "refresh"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let token = claims(reply.json()["auth_token"].as_str().unwrap());
    assert_eq!(token["sub"], "user-alice");
    assert_eq!(token["email"], "alice@example.com");

    // A pending request survives too.
    let reply = w
        .call(
            &d,
            &[
                ("request_type", "auth"),
                ("scope", "openid"),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    let request_token = reply.json()["request_token"].as_str().unwrap().to_owned();
    w.restart().await;
    let location = w.consent(&request_token, REDIRECT, "approve").await;
    assert!(query_param(&location, "code").is_some());
}

#[tokio::test]
async fn the_early_python_peers_signature_encoding_needs_the_lenient_switch() {
    // profile: P-SIG-7 — PyPI `aauth` 0.1 signs with label sig1, the
    // parenthesised Signature-Key and an unpadded base64url Signature. A
    // strict server names the quirk it refuses; `lenient_base64` accepts it.
    for lenient in [false, true] {
        let w = World::with(|config| config.lenient_base64 = lenient).await;
        let d = w.delegate("delegate-1");
        let label = Label::new("sig1".to_owned()).unwrap();
        let field = SignatureKeyField::jwt(label.clone(), d.agent_token.clone())
            .to_header_value(Syntax::Parenthesised)
            .unwrap();
        let style = SignOptions {
            label,
            encoding: SignatureEncoding::UnpaddedBase64Url,
            ..SignOptions::new(now() as u64)
        };
        let body = serde_urlencoded::to_string([("request_type", "auth"), ("scope", "jobs.run")])
            .unwrap()
            .into_bytes();
        let reply = w
            .send(w.signed_post_as(&d.key, &field, body, true, &style))
            .await;
        if lenient {
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
        } else {
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            assert_eq!(reply.error(), "invalid_signature");
            let description = reply.json()["error_description"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(description.contains("base64"), "{description}");
        }
    }
}
