//! The auth server keeps its state across a restart (profile: P-AS-8):
//! pending requests, codes, grants, refresh tokens and its signing key.

// A test crate: its helpers may unwrap like its tests.
#![allow(clippy::expect_used)]

mod common;

use aauth_e2e::user::Decision;
use aauth_http::client::{Identity, Outgoing};
use bytes::Bytes;
use common::*;
use http::Method;
use serde_json::Value;

/// Writes a note at the resource with `auth_token`, signed by `key`.
async fn write_note(
    world: &aauth_e2e::world::World,
    auth_token: &str,
    key: &std::sync::Arc<aauth_protocol::keys::SigningKey>,
    text: &str,
) -> u16 {
    let identity = Identity::AuthToken {
        auth_token: auth_token.to_owned(),
        key: key.clone(),
    };
    let body = Bytes::from(serde_json::json!({ "text": text }).to_string());
    let reply = client()
        .send(
            &identity,
            Outgoing::new(Method::POST, at(world.resource.url(), "/data"))
                .body(body, "application/json"),
        )
        .await
        .expect("the resource answers");
    reply.status.as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_obtained_before_a_restart_is_redeemed_after_it() {
    let mut world = world();
    let delegate = enroll(&world, "d1").await;
    let identity = delegate_identity(&delegate);
    let token = resource_token(&world, &identity, "data.write").await;
    let (code, redirect_uri) =
        approved_code(&world, &identity, &[("resource_token", &token)]).await;

    world
        .restart_auth_server()
        .expect("the auth server restarts");

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
    let auth_token = body["auth_token"].as_str().unwrap();
    let token_claims = claims(auth_token);
    assert_eq!(token_claims["agent_delegate"], delegate.record.sub.as_str());
    assert_eq!(
        write_note(&world, auth_token, &delegate.key, "after restart").await,
        201
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_token_issued_before_a_restart_is_consented_to_after_it() {
    let mut world = world();
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
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = reply.json().unwrap();
    let request_token = body["request_token"].as_str().unwrap();

    world
        .restart_auth_server()
        .expect("the auth server restarts");

    let mut url = at(world.auth_server.url(), "/agent/auth");
    url.query_pairs_mut()
        .append_pair("request_token", request_token)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("state", "s");
    use aauth_agent::ConsentHandler as _;
    alice(Decision::Approve).present(&url).await.unwrap();
    let query = listener
        .wait(std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let code = query.get("code").expect("a code");
    let reply = token_request(
        &world,
        &identity,
        &[
            ("request_type", "code"),
            ("code", code),
            ("redirect_uri", &redirect_uri),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_tokens_survive_a_restart() {
    let mut world = world();
    let delegate = enroll(&world, "d1").await;
    let identity = delegate_identity(&delegate);
    let (user_token, user_refresh) = user_grant(&world, &identity, "data.write").await;
    let (_, direct_refresh) = direct_grant(&world).await;

    world
        .restart_auth_server()
        .expect("the auth server restarts");

    // The auth token issued before the restart still verifies: the signing
    // key survived too.
    assert_eq!(
        write_note(&world, &user_token, &delegate.key, "old token").await,
        201
    );

    // A user's grant.
    let reply = token_request(
        &world,
        &identity,
        &[
            ("request_type", "refresh"),
            ("refresh_token", &user_refresh),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = reply.json().unwrap();
    let fresh = body["auth_token"].as_str().unwrap();
    assert_ne!(fresh, user_token);
    assert_eq!(claims(fresh)["scope"], "data.write");
    assert_eq!(
        write_note(&world, fresh, &delegate.key, "refreshed").await,
        201
    );

    // An autonomous grant (the agent server itself).
    let server = server_identity(&world);
    let reply = token_request(
        &world,
        &server,
        &[
            ("request_type", "refresh"),
            ("refresh_token", &direct_refresh),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = reply.json().unwrap();
    let authorized = Identity::AuthToken {
        auth_token: body["auth_token"].as_str().unwrap().to_owned(),
        key: server.key().clone(),
    };
    let reply = client()
        .send(
            &authorized,
            Outgoing::get(at(world.resource.url(), "/data")),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_used_before_a_restart_stays_used_after_it() {
    let mut world = world();
    let identity = server_identity(&world);
    let token = resource_token(&world, &identity, "data.write").await;
    let (code, redirect_uri) =
        approved_code(&world, &identity, &[("resource_token", &token)]).await;
    let form = [
        ("request_type", "code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    assert_eq!(token_request(&world, &identity, &form).await.status, 200);

    world
        .restart_auth_server()
        .expect("the auth server restarts");

    let reply = token_request(&world, &identity, &form).await;
    assert_error(&reply, 400, "invalid_grant");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_in_the_middle_of_code_redemptions_loses_no_consent() {
    // E§9.5 and P-AS-8: a code is used up together with the grant it buys.
    // A burst of redemptions is cut by SIGKILL; afterwards every refresh
    // token answered before the crash works, and every code is either
    // redeemable or has its grant — none is gone without one.
    const CODES: usize = 24;
    let mut world = world();
    let identity = server_identity(&world);
    let mut codes = Vec::with_capacity(CODES);
    for _ in 0..CODES {
        let token = resource_token(&world, &identity, "data.write").await;
        codes.push(approved_code(&world, &identity, &[("resource_token", &token)]).await);
    }

    let mut burst = tokio::task::JoinSet::new();
    for (i, (code, redirect_uri)) in codes.iter().cloned().enumerate() {
        let (world_url, identity) = (token_endpoint(&world), identity.clone());
        burst.spawn(async move {
            let form = [
                ("request_type", "code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect_uri.as_str()),
            ];
            let reply = client()
                .send(&identity, Outgoing::post_form(world_url, &form))
                .await;
            let refresh = reply.as_ref().ok().and_then(|reply| {
                let body: Value = reply.json().ok()?;
                body["refresh_token"].as_str().map(str::to_owned)
            });
            (i, reply.map(|reply| reply.status.as_u16()).ok(), refresh)
        });
    }
    // Kill it as soon as the first redemption is answered: the rest are in
    // flight, some of them between taking the code and storing the grant.
    let mut answered = vec![None; CODES];
    let mut refresh_tokens = Vec::new();
    if let Some(Ok((i, status, refresh))) = burst.join_next().await {
        answered[i] = status;
        refresh_tokens.extend(refresh);
    }
    world.auth_server.kill();
    while let Some(joined) = burst.join_next().await {
        let (i, status, refresh) = joined.expect("a redemption task");
        answered[i] = status;
        refresh_tokens.extend(refresh);
    }
    world
        .restart_auth_server()
        .expect("the auth server restarts");

    // Every refresh token handed out before the crash works after it (the
    // first answer, awaited before the kill, handed out one at least).
    assert!(!refresh_tokens.is_empty());
    for refresh in &refresh_tokens {
        let reply = token_request(
            &world,
            &identity,
            &[("request_type", "refresh"), ("refresh_token", refresh)],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }

    let granted_before = answered.iter().filter(|s| **s == Some(200)).count();
    let mut redeemed_after = 0;
    for ((code, redirect_uri), status) in codes.iter().zip(&answered) {
        if *status == Some(200) {
            continue;
        }
        let reply = token_request(
            &world,
            &identity,
            &[
                ("request_type", "code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ],
        )
        .await;
        match reply.status.as_u16() {
            200 => redeemed_after += 1,
            // Redeemed before the crash, its answer lost with the process:
            // then its grant must be in the database (counted below).
            400 => assert_error(&reply, 400, "invalid_grant"),
            other => panic!("{other}: {}", reply.text()),
        }
    }
    let grants = count_grants(&world.dir().join("auth-server.db")).await;
    assert_eq!(
        grants, CODES,
        "one grant per code: {granted_before} answered before the crash, \
         {redeemed_after} redeemed after it"
    );
}

/// Grants in the auth server's database, read as its operator would.
async fn count_grants(database: &std::path::Path) -> usize {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}?mode=ro", database.display());
    let mut connection = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("the database opens");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM grants")
        .fetch_one(&mut connection)
        .await
        .expect("grants are counted");
    usize::try_from(count).expect("a count")
}
