//! Multi-hop with the real binaries: agent → R1 → R2 → R3 across two auth
//! servers, each resource exchanging the token it received (P-AS-7).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure must stop the test loudly"
)]

use std::sync::Arc;

use aauth_e2e::chain::{Chain, ChainOptions};
use aauth_e2e::user::{Decision, PlayedUser};
use aauth_e2e::world::{ALICE, ALICE_PASSWORD};
use aauth_http::client::{Identity, Outgoing, SigningClient};
use http::Method;
use serde_json::Value;
use url::Url;

fn quiet() -> Arc<PlayedUser> {
    Arc::new(PlayedUser::new(
        ALICE,
        ALICE_PASSWORD,
        Decision::Approve,
        Arc::new(|_: &str| {}),
    ))
}

async fn call_chain(chain: &Chain) -> (u16, Value) {
    let agent = chain.server_agent(quiet()).unwrap();
    let reply = agent
        .call(
            Method::GET,
            &format!("{}/chain", chain.r1.url()),
            None,
            None,
        )
        .await
        .unwrap();
    let json = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status.as_u16(), json)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_hops_nest_act_twice_and_the_last_hop_sees_the_whole_chain() {
    let chain = Chain::start(&ChainOptions::default()).expect("six processes start");
    let (status, json) = call_chain(&chain).await;
    assert_eq!(status, 200, "{json}; logs in {}", chain.dir().display());
    let agent = chain.agent_server.url();
    // R1 was called by the agent itself, with no act.
    assert_eq!(json["resource"], chain.r1.url());
    assert_eq!(json["caller"], agent);
    assert_eq!(json["act"], Value::Null);
    // R2: called by R1 acting for the agent (one act level, across auth servers).
    let r2 = &json["downstream"];
    assert_eq!(r2["resource"], chain.r2.url());
    assert_eq!(r2["caller"], chain.r1.url());
    assert_eq!(r2["act"]["agent"], agent);
    // R3: called by R2, acting for R1, acting for the agent: act nests twice.
    let r3 = &r2["downstream"];
    assert_eq!(r3["resource"], chain.r3.url());
    assert_eq!(r3["caller"], chain.r2.url());
    assert_eq!(r3["act"]["agent"], chain.r1.url());
    assert_eq!(r3["act"]["act"]["agent"], agent);
    assert_eq!(r3["act"]["act"]["act"], Value::Null);
    assert_eq!(r3["downstream"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_upstream_issuer_stops_the_chain() {
    // profile: P-AS-7, P-TOK-6 — AS2 does not trust AS1's tokens.
    let chain = Chain::start(&ChainOptions {
        trust_as1: false,
        ..ChainOptions::default()
    })
    .expect("six processes start");
    let (status, json) = call_chain(&chain).await;
    assert_eq!(status, 500, "{json}");
    assert_eq!(json["error"], "server_error");
    let description = json["error_description"].as_str().unwrap_or_default();
    assert!(description.contains("untrusted_issuer"), "{description}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exchange_depth_limit_stops_a_chain_that_is_too_deep() {
    // profile: P-AS-7 — R3's token would carry two act levels; AS2 allows one.
    let chain = Chain::start(&ChainOptions {
        max_exchange_depth: 1,
        ..ChainOptions::default()
    })
    .expect("six processes start");
    let (status, json) = call_chain(&chain).await;
    assert_eq!(status, 500, "{json}");
    // R1's own downstream call (to R2) worked; R2's exchange (for R3) was
    // refused by AS2, and R1 passes R2's failure on.
    let description = json["error_description"].as_str().unwrap_or_default();
    assert!(
        description.contains(chain.r2.url()) && description.contains("refused the exchange"),
        "{description}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exchange_that_needs_the_user_is_interaction_required() {
    // profile: P-AS-7 — exchange never asks the user; the resource answers
    // interaction_required (the user_interaction bubbling of P-UI is not
    // implemented yet).
    let chain = Chain::start(&ChainOptions {
        consent_scopes: vec!["chain.read".into()],
        ..ChainOptions::default()
    })
    .expect("six processes start");
    let (status, json) = call_chain(&chain).await;
    assert_eq!(status, 401, "{json}");
    assert_eq!(json["error"], "interaction_required");
}

/// The agent's AS1 auth token for R1, obtained through the real climb.
async fn agents_token_for_r1(chain: &Chain) -> String {
    let agent = chain.server_agent(quiet()).unwrap();
    let reply = agent
        .call(
            Method::GET,
            &format!("{}/whoami", chain.r1.url()),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    // /whoami needs no auth token; /chain makes the agent get one.
    let reply = agent
        .call(
            Method::GET,
            &format!("{}/chain", chain.r1.url()),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    agent
        .tokens()
        .newest_for(chain.r1.url())
        .unwrap()
        .auth_token
}

/// Asks AS2 directly for an exchange, signed as `caller` (a resource with
/// its own key), with a resource token that `downstream` issues to it and
/// `upstream` as the upstream token. Returns AS2's status and error code.
async fn exchange_as(
    chain: &Chain,
    caller: &Identity,
    downstream: &str,
    upstream: &str,
) -> (u16, String) {
    let client = SigningClient::new().unwrap();
    let challenge = client
        .send(
            caller,
            Outgoing::get(Url::parse(&format!("{downstream}/chain")).unwrap()),
        )
        .await
        .unwrap();
    let resource_token = challenge
        .agent_auth()
        .and_then(|c| c.resource_token().map(str::to_owned))
        .unwrap_or_else(|| panic!("no resource token: {}", challenge.text()));
    let reply = client
        .send(
            caller,
            Outgoing::post_form(
                Url::parse(&format!("{}/agent/token", chain.as2.url())).unwrap(),
                &[
                    ("request_type", "exchange"),
                    ("resource_token", &resource_token),
                    ("upstream_token", upstream),
                ],
            ),
        )
        .await
        .unwrap();
    (
        reply.status.as_u16(),
        reply
            .error_code()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_token_for_another_audience_is_invalid_grant() {
    // profile: P-AS-7 — the upstream token's aud must be the caller. R2
    // presents the agent's token that was issued for R1.
    let chain = Chain::start(&ChainOptions::default()).expect("six processes start");
    let token = agents_token_for_r1(&chain).await;
    let r2 = chain.resource_identity(&chain.r2, "r2").unwrap();
    let (status, code) = exchange_as(&chain, &r2, chain.r3.url(), &token).await;
    assert_eq!((status, code.as_str()), (400, "invalid_grant"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_upstream_token_is_invalid_grant() {
    // profile: P-AS-7 — an act (or anything else) written into the upstream
    // token breaks its signature.
    let chain = Chain::start(&ChainOptions::default()).expect("six processes start");
    let token = agents_token_for_r1(&chain).await;
    let mut parts = token.split('.').map(str::to_owned).collect::<Vec<_>>();
    let mut claims: Value =
        serde_json::from_slice(&aauth_protocol::b64::url_decode(&parts[1]).unwrap()).unwrap();
    claims["act"] = serde_json::json!({"agent": "https://someone.else.example"});
    parts[1] = aauth_protocol::b64::url_encode(claims.to_string());
    let tampered = parts.join(".");
    let r1 = chain.resource_identity(&chain.r1, "r1").unwrap();
    let (status, code) = exchange_as(&chain, &r1, chain.r2.url(), &tampered).await;
    assert_eq!((status, code.as_str()), (400, "invalid_grant"));
    // The genuine token is accepted by the same request.
    let (status, _) = exchange_as(&chain, &r1, chain.r2.url(), &token).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_upstream_token_is_invalid_grant() {
    // profile: P-AS-7 — the upstream token's exp is checked (E§7.7 step 8).
    let chain = Chain::start(&ChainOptions {
        as1_token_lifetime: 2,
        ..ChainOptions::default()
    })
    .expect("six processes start");
    let token = agents_token_for_r1(&chain).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let r1 = chain.resource_identity(&chain.r1, "r1").unwrap();
    let (status, code) = exchange_as(&chain, &r1, chain.r2.url(), &token).await;
    assert_eq!((status, code.as_str()), (400, "invalid_grant"));
}
