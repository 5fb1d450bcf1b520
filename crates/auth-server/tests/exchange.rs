//! `POST /agent/token` with `request_type=exchange` (E§9.10 as fixed by
//! profile: P-AS-7; P-TOK-6, P-ERR-1): a resource that received an auth
//! token from an upstream auth server, signing as itself, obtains a token for
//! a downstream resource with the delegation chain in `act`.
//!
//! The world: the upstream auth server (its own key, metadata and JWKS on
//! loopback, counting the requests it receives), the calling resource
//! ("resource 1", publishing `/.well-known/aauth-agent`, P-MD-4), the
//! downstream resource of `common` ("resource 2") and the auth server under
//! test, reached through `oneshot`.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a broken world must fail loudly"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aauth_auth_server::config::ExchangeConfig;
use aauth_protocol::b64;
use aauth_protocol::ids::{Kid, Label, Origin, OriginMode, Scope};
use aauth_protocol::jwk::{Jwks, JwksKey, PublicKey};
use aauth_protocol::keys::SigningKey;
use aauth_protocol::signature_key::{SignatureKeyField, Syntax};
use aauth_protocol::tokens::KeyLookupError;
use aauth_protocol::tokens::auth_token::{self, Act, AuthTokenBuilder, AuthTokenContext};
use aauth_protocol::tokens::resource_token::ResourceTokenBuilder;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use common::*;

const UPSTREAM_KID: &str = "upstream-1";
const CALLER_KID: &str = "resource1-1";
/// The agent that called resource 1 (the upstream token's `agent`).
const AGENT1: &str = "https://agent1.example";

/// A second auth server on loopback: `/.well-known/aauth-issuer` and its
/// JWKS, counting every request it receives.
async fn upstream_auth_server(key: &SigningKey) -> (Origin, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let origin = Origin::parse(&format!("http://127.0.0.1:{port}"), OriginMode::Dev).unwrap();
    let metadata = json!({
        "issuer": origin.as_str(),
        "jwks_uri": format!("{origin}/jwks.json"),
        "agent_token_endpoint": format!("{origin}/agent/token"),
        "agent_auth_endpoint": format!("{origin}/agent/auth"),
        "agent_signing_algs_supported": ["ed25519"],
        "request_types_supported": ["auth", "code", "refresh", "exchange"],
    });
    let jwks = Jwks::new(vec![JwksKey {
        kid: kid(UPSTREAM_KID),
        key: key.public_key().clone(),
    }])
    .to_json_value();
    let hits = Arc::new(AtomicUsize::new(0));
    let (on_metadata, on_jwks) = (hits.clone(), hits.clone());
    let router = Router::new()
        .route(
            "/.well-known/aauth-issuer",
            get(move || async move {
                on_metadata.fetch_add(1, Ordering::SeqCst);
                axum::Json(metadata)
            }),
        )
        .route(
            "/jwks.json",
            get(move || async move {
                on_jwks.fetch_add(1, Ordering::SeqCst);
                axum::Json(jwks)
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (origin, hits)
}

/// Everything an exchange test needs.
struct Setup {
    w: World,
    upstream: Origin,
    upstream_key: SigningKey,
    upstream_hits: Arc<AtomicUsize>,
    caller: Origin,
    caller_key: SigningKey,
}

/// Which rules the auth server under test is configured with.
enum Rules {
    /// `trusted_issuers` = the upstream; one rule for the caller:
    /// `data.read` granted, `data.write` needs consent.
    Standard,
    /// As `Standard`, with `max_exchange_depth` set.
    MaxDepth(usize),
    /// No trusted issuers, no rules.
    Nothing,
}

impl Setup {
    async fn new(rules: Rules) -> Self {
        let upstream_key = ed25519();
        let (upstream, upstream_hits) = upstream_auth_server(&upstream_key).await;
        let caller_key = ed25519();
        // P-MD-4: a resource that calls downstream publishes
        // `/.well-known/aauth-agent` with its own `jwks_uri`.
        let caller = peer(
            "aauth-agent",
            |origin| {
                json!({
                    "agent": origin.as_str(),
                    "jwks_uri": format!("{origin}/jwks.json"),
                    "redirect_uris": [REDIRECT],
                })
            },
            &caller_key,
            CALLER_KID,
        )
        .await;
        let (up, me) = (upstream.clone(), caller.clone());
        let w = World::with(move |config| {
            let max = match rules {
                Rules::Nothing => return,
                Rules::Standard => None,
                Rules::MaxDepth(max) => Some(max),
            };
            config.trusted_issuers = vec![up.as_str().into()];
            config.exchange = vec![ExchangeConfig {
                upstream_issuer: up.as_str().into(),
                caller: me.as_str().into(),
                scopes: vec!["data.read".into()],
                consent_scopes: vec!["data.write".into()],
            }];
            if let Some(max) = max {
                config.max_exchange_depth = max;
            }
        })
        .await;
        Self {
            w,
            upstream,
            upstream_key,
            upstream_hits,
            caller,
            caller_key,
        }
    }

    /// An auth token from the upstream auth server for resource 1, as
    /// agent 1 (with a delegate and a user) would have presented it.
    fn upstream_builder(&self) -> AuthTokenBuilder {
        AuthTokenBuilder::new(
            self.upstream.clone(),
            self.caller.clone(),
            origin(AGENT1),
            ed25519().public_key().clone(),
        )
        .agent_delegate("phone-1")
        .subject("user-alice")
        .scope(Scope::parse("files.read").unwrap())
    }

    fn sign_upstream(&self, builder: &AuthTokenBuilder, now: i64) -> String {
        builder
            .build(now)
            .unwrap()
            .sign(&self.upstream_key, &kid(UPSTREAM_KID))
            .unwrap()
    }

    fn upstream_token(&self) -> String {
        self.sign_upstream(&self.upstream_builder(), now())
    }

    /// A resource token from resource 2 for `agent` holding `key`.
    fn resource_token_for(&self, agent: &Origin, key: &PublicKey, scope: &str) -> String {
        ResourceTokenBuilder::new(
            self.w.resource.clone(),
            self.w.issuer.clone(),
            agent.clone(),
            key,
            Scope::parse(scope).unwrap(),
        )
        .build(now())
        .unwrap()
        .sign(&self.w.resource_key, &kid("res-1"))
        .unwrap()
    }

    /// A resource token from resource 2 for the calling resource.
    fn resource_token(&self, scope: &str) -> String {
        self.resource_token_for(&self.caller, self.caller_key.public_key(), scope)
    }

    /// The calling resource, signing as itself (`jwks_uri`, P-AS-1).
    async fn exchange(&self, resource_token: &str, upstream_token: &str) -> Reply {
        self.exchange_form(&[
            ("request_type", "exchange"),
            ("resource_token", resource_token),
            ("upstream_token", upstream_token),
        ])
        .await
    }

    async fn exchange_form(&self, form: &[(&str, &str)]) -> Reply {
        let field =
            SignatureKeyField::jwks_uri(Label::sig(), &self.caller, "aauth-agent", kid(CALLER_KID))
                .to_header_value(Syntax::Sk0)
                .unwrap();
        self.w
            .send(self.w.signed_token_request(&self.caller_key, &field, form))
            .await
    }
}

fn origin(text: &str) -> Origin {
    Origin::parse(text, OriginMode::Dev).unwrap()
}

fn description(reply: &Reply) -> String {
    reply.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Checks the issued token's signature with the auth server's key, as
/// resource 2 would (E§7.7).
fn assert_valid_at_downstream(s: &Setup, token: &str) {
    let server_key = s.w.state.key().key.public_key().clone();
    let keys = |_: &Origin, _: &Kid| Ok::<PublicKey, KeyLookupError>(server_key.clone());
    let trusted = [s.w.issuer.clone()];
    let mut ctx = AuthTokenContext::new(now(), &trusted, &s.w.resource);
    ctx.origin_mode = OriginMode::Dev;
    let verified = auth_token::validate(token, &ctx, &keys).unwrap();
    assert_eq!(verified.cnf_key(), s.caller_key.public_key());
}

#[tokio::test]
async fn a_resource_exchanges_an_upstream_token_for_a_downstream_one() {
    // profile: P-AS-7 — cnf = caller's key, agent = caller, sub copied,
    // act = upstream agent + delegate; no refresh token (E§9.10).
    let s = Setup::new(Rules::Standard).await;
    let reply = s
        .exchange(&s.resource_token("data.read"), &s.upstream_token())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["expires_in"], 600);
    assert!(body.get("refresh_token").is_none(), "{body}");
    let auth_token = body["auth_token"].as_str().unwrap();
    let token = claims(auth_token);
    assert_eq!(token["iss"], s.w.issuer.as_str());
    assert_eq!(token["aud"], s.w.resource.as_str());
    assert_eq!(token["agent"], s.caller.as_str());
    assert_eq!(
        token["cnf"]["jwk"],
        s.caller_key.public_key().to_json_value()
    );
    assert_eq!(token["sub"], "user-alice");
    assert_eq!(token["scope"], "data.read");
    assert!(token.get("agent_delegate").is_none());
    assert_eq!(
        token["act"],
        json!({"agent": AGENT1, "agent_delegate": "phone-1"})
    );
    for claim in ["iat", "nbf", "exp", "jti"] {
        assert!(token.get(claim).is_some(), "{claim}");
    }
    assert_valid_at_downstream(&s, auth_token);
    // The trusted upstream's keys were fetched from its metadata.
    assert!(s.upstream_hits.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn a_second_hop_nests_the_upstream_act() {
    // profile: P-AS-7 — "`act`: upstream `act` (if any)".
    let s = Setup::new(Rules::Standard).await;
    let upstream = s.upstream_builder().act(Act {
        agent: "https://agent0.example".into(),
        agent_delegate: Some("laptop-0".into()),
        sub: None,
        act: None,
    });
    let reply = s
        .exchange(
            &s.resource_token("data.read"),
            &s.sign_upstream(&upstream, now()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let token = claims(reply.json()["auth_token"].as_str().unwrap());
    assert_eq!(
        token["act"],
        json!({
            "agent": AGENT1,
            "agent_delegate": "phone-1",
            "act": {"agent": "https://agent0.example", "agent_delegate": "laptop-0"},
        })
    );
    let act: Act = serde_json::from_value(token["act"].clone()).unwrap();
    assert_eq!(act.depth(), 2);
}

#[tokio::test]
async fn a_chain_deeper_than_the_limit_is_an_invalid_grant() {
    // profile: P-AS-7 — "more than 5 (configurable) → 400 invalid_grant";
    // the new token here would have 3 levels, the limit is 2.
    let s = Setup::new(Rules::MaxDepth(2)).await;
    let two_levels = s.upstream_builder().act(Act {
        agent: "https://agent0.example".into(),
        agent_delegate: None,
        sub: None,
        act: Some(Box::new(Act {
            agent: "https://agent-origin.example".into(),
            agent_delegate: None,
            sub: None,
            act: None,
        })),
    });
    let reply = s
        .exchange(
            &s.resource_token("data.read"),
            &s.sign_upstream(&two_levels, now()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "invalid_grant");
    assert!(
        description(&reply).contains("3 act levels"),
        "{}",
        reply.text
    );

    // Exactly at the limit is fine.
    let one_level = s.upstream_builder().act(Act {
        agent: "https://agent0.example".into(),
        agent_delegate: None,
        sub: None,
        act: None,
    });
    let reply = s
        .exchange(
            &s.resource_token("data.read"),
            &s.sign_upstream(&one_level, now()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn the_default_depth_limit_is_five() {
    // profile: P-AS-7 — "more than 5 (configurable)".
    let s = Setup::new(Rules::Standard).await;
    let chain = |levels: usize| {
        (0..levels).fold(None, |inner: Option<Box<Act>>, i| {
            Some(Box::new(Act {
                agent: format!("https://hop{i}.example"),
                agent_delegate: None,
                sub: None,
                act: inner,
            }))
        })
    };
    // Upstream with 4 levels → 5 in the new token: allowed.
    let four = s.upstream_builder().act(*chain(4).unwrap());
    let reply = s
        .exchange(
            &s.resource_token("data.read"),
            &s.sign_upstream(&four, now()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // Upstream with 5 levels → 6: refused.
    let five = s.upstream_builder().act(*chain(5).unwrap());
    let reply = s
        .exchange(
            &s.resource_token("data.read"),
            &s.sign_upstream(&five, now()),
        )
        .await;
    assert_eq!(reply.error(), "invalid_grant", "{}", reply.text);
}

#[tokio::test]
async fn an_untrusted_upstream_issuer_is_refused_before_any_fetch() {
    // profile: P-TOK-6 — "the auth server checks an upstream token's
    // `iss` against `trusted_issuers` *before* fetching any key";
    // P-ERR-1 "AS: untrusted upstream issuer" → 400 untrusted_issuer.
    let s = Setup::new(Rules::Nothing).await;
    let reply = s
        .exchange(&s.resource_token("data.read"), &s.upstream_token())
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "untrusted_issuer", "{}", reply.text);
    assert!(description(&reply).contains(s.upstream.as_str()));
    assert_eq!(s.upstream_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_upstream_token_for_another_audience_is_an_invalid_grant() {
    // profile: P-AS-7 — "aud == caller"; E§9.10 step 3.
    let s = Setup::new(Rules::Standard).await;
    let elsewhere = AuthTokenBuilder::new(
        s.upstream.clone(),
        origin("https://resource-x.example"),
        origin(AGENT1),
        ed25519().public_key().clone(),
    );
    let reply = s
        .exchange(
            &s.resource_token("data.read"),
            &s.sign_upstream(&elsewhere, now()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "invalid_grant");
    let text = description(&reply);
    assert!(
        text.contains("upstream_token") && text.contains("\"aud\""),
        "{text}"
    );
}

#[tokio::test]
async fn an_expired_upstream_token_is_an_invalid_grant() {
    // profile: P-AS-7 — the upstream `exp` is checked (P-TOK-5).
    let s = Setup::new(Rules::Standard).await;
    let expired = s.sign_upstream(&s.upstream_builder(), now() - 3600);
    let reply = s.exchange(&s.resource_token("data.read"), &expired).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "invalid_grant");
    assert!(description(&reply).contains("expired"), "{}", reply.text);
}

#[tokio::test]
async fn a_tampered_upstream_token_is_an_invalid_grant() {
    // profile: P-AS-7 — "signature via its issuer's metadata".
    let s = Setup::new(Rules::Standard).await;
    let token = s.upstream_token();
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&b64::url_decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("user-mallory");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64::url_encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    let reply = s.exchange(&s.resource_token("data.read"), &forged).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "invalid_grant");
    assert!(description(&reply).contains("signature"), "{}", reply.text);
}

#[tokio::test]
async fn an_upstream_token_of_another_kind_is_an_invalid_grant() {
    // profile: P-AS-7 — the upstream token must be an `auth+jwt`.
    let s = Setup::new(Rules::Standard).await;
    let resource_token = s.resource_token("data.read");
    for upstream in [resource_token.as_str(), "not-a-jwt", ""] {
        let reply = s.exchange(&resource_token, upstream).await;
        assert_eq!(
            reply.error(),
            "invalid_grant",
            "{upstream:?}: {}",
            reply.text
        );
    }
    assert_eq!(s.upstream_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_resource_token_for_another_caller_is_refused() {
    // profile: P-AS-7 — the downstream resource token: "agent == caller,
    // agent_jkt == caller's key" (P-ERR-1: invalid_resource_token).
    let s = Setup::new(Rules::Standard).await;
    let upstream = s.upstream_token();
    let other_agent = s.resource_token_for(&s.w.agent, s.caller_key.public_key(), "data.read");
    let reply = s.exchange(&other_agent, &upstream).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "invalid_resource_token", "{}", reply.text);

    let other_key = s.resource_token_for(&s.caller, ed25519().public_key(), "data.read");
    let reply = s.exchange(&other_key, &upstream).await;
    assert_eq!(reply.error(), "invalid_resource_token", "{}", reply.text);
    assert!(description(&reply).contains("agent_jkt"), "{}", reply.text);
}

#[tokio::test]
async fn scopes_outside_the_exchange_rules_are_invalid_scope() {
    // profile: P-AS-7 — "anything else → 400 invalid_scope".
    let s = Setup::new(Rules::Standard).await;
    for scope in [
        "data.delete",
        "data.read data.delete",
        "data.write data.delete",
    ] {
        let reply = s
            .exchange(&s.resource_token(scope), &s.upstream_token())
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.error(), "invalid_scope", "{scope}: {}", reply.text);
    }
}

#[tokio::test]
async fn a_caller_without_an_exchange_rule_gets_invalid_scope() {
    // profile: P-AS-7 — deny by default: the upstream issuer is
    // trusted, but no rule names (issuer, caller).
    let s = Setup::new(Rules::Standard).await;
    let stranger = SigningKey::generate(aauth_protocol::keys::Algorithm::Ed25519).unwrap();
    let stranger_origin = peer(
        "aauth-agent",
        |origin| json!({"agent": origin.as_str(), "jwks_uri": format!("{origin}/jwks.json")}),
        &stranger,
        "stranger-1",
    )
    .await;
    let upstream = AuthTokenBuilder::new(
        s.upstream.clone(),
        stranger_origin.clone(),
        origin(AGENT1),
        ed25519().public_key().clone(),
    );
    let field = SignatureKeyField::jwks_uri(
        Label::sig(),
        &stranger_origin,
        "aauth-agent",
        kid("stranger-1"),
    )
    .to_header_value(Syntax::Sk0)
    .unwrap();
    let rt = s.resource_token_for(&stranger_origin, stranger.public_key(), "data.read");
    let up = s.sign_upstream(&upstream, now());
    let form = [
        ("request_type", "exchange"),
        ("resource_token", rt.as_str()),
        ("upstream_token", up.as_str()),
    ];
    let reply =
        s.w.send(s.w.signed_token_request(&stranger, &field, &form))
            .await;
    assert_eq!(reply.error(), "invalid_scope", "{}", reply.text);
}

#[tokio::test]
async fn a_scope_that_needs_consent_is_interaction_required() {
    // profile: P-AS-7 — "Exchange never asks the user: if policy would
    // need consent, 400 interaction_required"; P-ERR-1.
    let s = Setup::new(Rules::Standard).await;
    for scope in ["data.write", "data.read data.write"] {
        let reply = s
            .exchange(&s.resource_token(scope), &s.upstream_token())
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.error(), "interaction_required", "{}", reply.text);
        assert!(reply.header("agent-auth").is_none());
    }
}

#[tokio::test]
async fn a_delegate_cannot_exchange() {
    // profile: P-AS-1 — "For exchange the caller is a resource signing
    // as itself with jwks_uri".
    let s = Setup::new(Rules::Standard).await;
    let d = s.w.delegate("delegate-1");
    let rt = s.w.resource_token(d.key.public_key(), "data.read");
    let upstream = AuthTokenBuilder::new(
        s.upstream.clone(),
        s.w.agent.clone(),
        origin(AGENT1),
        ed25519().public_key().clone(),
    );
    let up = s.sign_upstream(&upstream, now());
    let reply =
        s.w.call(
            &d,
            &[
                ("request_type", "exchange"),
                ("resource_token", &rt),
                ("upstream_token", &up),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "invalid_request");
    assert!(
        description(&reply).contains("resource signing as itself"),
        "{}",
        reply.text
    );
    assert_eq!(s.upstream_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn missing_or_extra_parameters_are_invalid_request() {
    // E§9.10: resource_token REQUIRED; profile: P-AS-7: upstream_token;
    // the scope comes from the resource token only.
    let s = Setup::new(Rules::Standard).await;
    let rt = s.resource_token("data.read");
    let up = s.upstream_token();
    let forms: [&[(&str, &str)]; 3] = [
        &[("request_type", "exchange"), ("upstream_token", &up)],
        &[("request_type", "exchange"), ("resource_token", &rt)],
        &[
            ("request_type", "exchange"),
            ("resource_token", &rt),
            ("upstream_token", &up),
            ("scope", "data.read"),
        ],
    ];
    for form in forms {
        let reply = s.exchange_form(form).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.error(), "invalid_request", "{form:?}: {}", reply.text);
    }
}

#[tokio::test]
async fn a_resource_asking_with_the_user_names_the_caller_it_serves() {
    // An extension of this profile: `upstream_token` in request_type=auth,
    // checked as an exchange's, names the caller on the consent page.
    let s = Setup::new(Rules::Standard).await;
    let reply = s
        .exchange_form(&[
            ("request_type", "auth"),
            ("resource_token", &s.resource_token("data.write")),
            ("redirect_uri", REDIRECT),
            ("upstream_token", &s.upstream_token()),
        ])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let token = reply.json()["request_token"].as_str().unwrap().to_owned();
    let cookie = s.w.login(&token, REDIRECT).await;
    let page =
        s.w.get(&World::auth_uri(&token, REDIRECT, "s1"), Some(&cookie))
            .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text
            .contains(&format!("serving a request from <code>{AGENT1}</code>")),
        "{}",
        page.text
    );

    // Without it, the page names no one else.
    let reply = s
        .exchange_form(&[
            ("request_type", "auth"),
            ("resource_token", &s.resource_token("data.write")),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    let token = reply.json()["request_token"].as_str().unwrap().to_owned();
    let page =
        s.w.get(&World::auth_uri(&token, REDIRECT, "s1"), Some(&cookie))
            .await;
    assert!(
        !page.text.contains("serving a request from"),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn an_upstream_token_with_the_user_is_checked_like_an_exchanges() {
    let s = Setup::new(Rules::Standard).await;
    let ask = |upstream: String| {
        let s = &s;
        async move {
            s.exchange_form(&[
                ("request_type", "auth"),
                ("resource_token", &s.resource_token("data.write")),
                ("redirect_uri", REDIRECT),
                ("upstream_token", &upstream),
            ])
            .await
        }
    };
    // Expired, or for another audience: invalid_grant, and no request.
    let expired = s.sign_upstream(&s.upstream_builder(), now() - 3_600);
    let reply = ask(expired).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.error(), "invalid_grant", "{}", reply.text);
    let elsewhere = s.sign_upstream(
        &AuthTokenBuilder::new(
            s.upstream.clone(),
            origin("https://someone-else.example"),
            origin(AGENT1),
            ed25519().public_key().clone(),
        ),
        now(),
    );
    let reply = ask(elsewhere).await;
    assert_eq!(reply.error(), "invalid_grant", "{}", reply.text);

    // A delegate serves no caller: invalid_request, nothing fetched.
    let before = s.upstream_hits.load(Ordering::SeqCst);
    let d = s.w.delegate("delegate-1");
    let rt = s.w.resource_token(d.key.public_key(), "data.write");
    let reply =
        s.w.call(
            &d,
            &[
                ("request_type", "auth"),
                ("resource_token", &rt),
                ("redirect_uri", REDIRECT),
                ("upstream_token", &s.upstream_token()),
            ],
        )
        .await;
    assert_eq!(reply.error(), "invalid_request", "{}", reply.text);
    assert!(
        description(&reply).contains("resource signing as itself"),
        "{}",
        reply.text
    );
    assert_eq!(s.upstream_hits.load(Ordering::SeqCst), before);
}
