//! Multi-hop with the real binaries: agent → R1 → R2 → R3 across two auth
//! servers, each resource exchanging the token it received (P-AS-7); and
//! when an exchange needs the user, the interaction bubbling up the chain
//! (P-UI-1..3).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure must stop the test loudly"
)]

use std::sync::{Arc, Mutex};

use aauth_agent::ConsentHandler;
use aauth_agent::consent::{CallbackListener, PresentFuture};
use aauth_e2e::chain::{Chain, ChainOptions};
use aauth_e2e::user::{Decision, PlayedUser};
use aauth_e2e::world::{ALICE, ALICE_PASSWORD};
use aauth_http::client::{Identity, Outgoing, Reply, SigningClient};
use aauth_protocol::error::ErrorCode;
use aauth_protocol::keys::SigningKey;
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
    get_chain(&chain.server_agent(quiet()).unwrap(), chain).await
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
    assert_eq!(status, 502, "{json}");
    assert_eq!(json["error"], "server_error");
    // The hop, in R1's words; AS2's own answer stays in R1's log.
    let description = json["error_description"].as_str().unwrap_or_default();
    assert_eq!(
        description,
        "the downstream resource's auth server refused the exchange (400)"
    );
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
    assert_eq!(status, 502, "{json}");
    // R1's own downstream call (to R2) worked; R2's exchange (for R3) was
    // refused by AS2, R2 answered 502, and R1 passes that on as its own.
    let description = json["error_description"].as_str().unwrap_or_default();
    assert_eq!(description, "the downstream resource answered 502");
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
        .expose()
        .to_owned()
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

// ---- User interaction (P-UI-1..3) ----

/// A user who decides `decision`, keeping what they are told.
fn narrated(decision: Decision) -> (Arc<PlayedUser>, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let user = PlayedUser::new(
        ALICE,
        ALICE_PASSWORD,
        decision,
        Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned())),
    );
    (Arc::new(user), lines)
}

async fn get_chain(agent: &aauth_agent::Agent, chain: &Chain) -> (u16, Value) {
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
async fn one_level_r1_asks_the_user_at_as2_and_the_retry_succeeds() {
    // profile: P-UI-1, P-UI-2, P-UI-3 — AS2 answers R1's exchange with
    // interaction_required; R1 sends the user through its own consent at
    // AS2 and back, keeps the grant, and the agent's retry succeeds.
    let chain = Chain::start(&ChainOptions {
        consent_for_r2: true,
        ..ChainOptions::default()
    })
    .expect("six processes start");
    let (user, lines) = narrated(Decision::Approve);
    let agent = chain.server_agent(user.clone()).unwrap();
    let (status, json) = get_chain(&agent, &chain).await;
    assert_eq!(status, 200, "{json}; logs in {}", chain.dir().display());
    let (r1, as2) = (chain.r1.url(), chain.as2.url());
    let path = user.stops();
    assert_eq!(path.len(), 4, "{path:#?}");
    assert_eq!(
        path[..3],
        [
            format!("{r1}/interaction"),
            format!("{as2}/agent/auth"),
            format!("{r1}/interaction/callback"),
        ],
        "{path:#?}"
    );
    // ...and back to the agent's loopback listener.
    assert!(path[3].starts_with("http://127.0.0.1:") && path[3].ends_with("/callback"));
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Resource R1")),
        "AS2's consent page names R1 from its agent metadata: {lines:?}"
    );
    // R2 was called with R1's own grant (no act): the user consented to
    // R1 itself at AS2.
    let r2 = &json["downstream"];
    assert_eq!(r2["caller"], r1);
    assert_eq!(r2["act"], Value::Null);
    // ...and the chain goes on to R3 by exchange.
    assert_eq!(r2["downstream"]["caller"], chain.r2.url());
    assert_eq!(r2["downstream"]["act"]["agent"], r1);

    // The grant is kept for this caller: no user the second time.
    let seen = lines.lock().unwrap().len();
    let (status, again) = get_chain(&agent, &chain).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        lines.lock().unwrap().len(),
        seen,
        "the user was not needed again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_levels_r2s_interaction_bubbles_up_through_r1() {
    // profile: P-UI-3 — R2 needs the user at AS2 for R3; R1 wraps R2's
    // user_interaction in its own, and each hop only redirects to its next.
    let chain = Chain::start(&ChainOptions {
        consent_for_r3: true,
        ..ChainOptions::default()
    })
    .expect("six processes start");
    let (user, _) = narrated(Decision::Approve);
    let agent = chain.server_agent(user.clone()).unwrap();
    let (status, json) = get_chain(&agent, &chain).await;
    assert_eq!(status, 200, "{json}; logs in {}", chain.dir().display());
    let (r1, r2, as2) = (chain.r1.url(), chain.r2.url(), chain.as2.url());
    let path = user.stops();
    assert_eq!(path.len(), 6, "{path:#?}");
    assert_eq!(
        path[..5],
        [
            format!("{r1}/interaction"),
            format!("{r2}/interaction"),
            format!("{as2}/agent/auth"),
            format!("{r2}/interaction/callback"),
            format!("{r1}/interaction/callback"),
        ],
        "{path:#?}"
    );
    assert!(path[5].ends_with("/callback") && !path[5].starts_with(r1));
    // R1 → R2 by exchange (act: the agent); R2 → R3 with R2's own grant.
    let r2_view = &json["downstream"];
    assert_eq!(r2_view["caller"], r1);
    assert_eq!(r2_view["act"]["agent"], chain.agent_server.url());
    let r3_view = &r2_view["downstream"];
    assert_eq!(r3_view["caller"], r2);
    assert_eq!(r3_view["act"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_two_levels_down_reaches_the_agent_as_access_denied() {
    // profile: P-UI-2 — "with error=access_denied if the user denied",
    // passed on by each hop.
    let chain = Chain::start(&ChainOptions {
        consent_for_r3: true,
        ..ChainOptions::default()
    })
    .expect("six processes start");
    let (user, lines) = narrated(Decision::Deny);
    let agent = chain.server_agent(user.clone()).unwrap();
    let error = agent
        .call(
            Method::GET,
            &format!("{}/chain", chain.r1.url()),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, aauth_agent::AgentError::AccessDenied),
        "{error}"
    );
    let path = user.stops();
    assert!(
        path.last().is_some_and(|p| p.ends_with("/callback")),
        "{path:#?}"
    );
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("error=access_denied") && l.contains("127.0.0.1")),
        "{lines:?}"
    );
}

/// Hands no URL to any user: a challenge for the user ends the agent's call.
struct NoUser;

impl ConsentHandler for NoUser {
    fn present<'a>(&'a self, _url: &'a Url) -> PresentFuture<'a> {
        Box::pin(async { Err("no user here".to_owned()) })
    }
}

/// An AS1 auth token for R1, obtained by `agent`'s climb (its call to
/// /chain then ends at the user_interaction challenge).
async fn token_for_r1(agent: &aauth_agent::Agent, chain: &Chain) -> String {
    let error = agent
        .call(
            Method::GET,
            &format!("{}/chain", chain.r1.url()),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no user here"), "{error}");
    agent
        .tokens()
        .newest_for(chain.r1.url())
        .unwrap()
        .auth_token
        .expose()
        .to_owned()
}

/// `GET R1/chain` signed with `auth_token` and `key`, by hand.
async fn raw_chain(chain: &Chain, auth_token: &str, key: Arc<SigningKey>) -> Reply {
    SigningClient::new()
        .unwrap()
        .send(
            &Identity::AuthToken {
                auth_token: auth_token.to_owned(),
                key,
            },
            Outgoing::get(Url::parse(&format!("{}/chain", chain.r1.url())).unwrap()),
        )
        .await
        .unwrap()
}

fn interaction_url(reply: &Reply) -> String {
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(reply.error_code(), Some(ErrorCode::InteractionRequired));
    reply
        .agent_auth()
        .and_then(|c| c.user_interaction_url())
        .unwrap_or_else(|| panic!("no user_interaction: {}", reply.text()))
        .to_owned()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_completed_for_one_agent_never_serves_another() {
    // profile: P-UI-1 — sessions are bound to the agent and delegate;
    // P-UI-3 — "Another agent gets its own challenge, never the session."
    let chain = Chain::start(&ChainOptions {
        consent_for_r2: true,
        ..ChainOptions::default()
    })
    .expect("six processes start");
    let server = chain.server_agent(Arc::new(NoUser)).unwrap();
    let server_token = token_for_r1(&server, &chain).await;
    let server_key = Arc::new(chain.agent_server_key().unwrap().key);
    let delegate = chain
        .delegate_agent("delegate", Arc::new(NoUser))
        .await
        .unwrap();
    let delegate_token = token_for_r1(&delegate, &chain).await;
    let delegate_key = delegate.principal().key().clone();

    let session = interaction_url(&raw_chain(&chain, &server_token, server_key.clone()).await);
    let other = interaction_url(&raw_chain(&chain, &delegate_token, delegate_key.clone()).await);
    assert_ne!(session, other);

    // The user completes the agent server's session.
    let listener = CallbackListener::bind().await.unwrap();
    let mut url = Url::parse(&session).unwrap();
    url.query_pairs_mut()
        .append_pair("return_url", listener.redirect_uri().as_str());
    let (user, _) = narrated(Decision::Approve);
    user.present(&url).await.unwrap();
    let back = listener
        .wait(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(back.get("error"), None);

    // The delegate retrying is still asked for its own user.
    let again = interaction_url(&raw_chain(&chain, &delegate_token, delegate_key).await);
    assert_ne!(again, session);
    // The agent server's retry goes through.
    let reply = raw_chain(&chain, &server_token, server_key).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // The completed session is gone: visiting it again is an error page.
    let page = browser().get(url).send().await.unwrap();
    assert_eq!(page.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unregistered_return_url_gets_an_error_page_not_a_redirect() {
    // profile: P-UI-2 — return_url must be HTTPS (or loopback, or a dev
    // origin) and listed in the agent's metadata redirect_uris.
    let chain = Chain::start(&ChainOptions {
        consent_for_r2: true,
        ..ChainOptions::default()
    })
    .expect("six processes start");
    let agent = chain.server_agent(Arc::new(NoUser)).unwrap();
    let token = token_for_r1(&agent, &chain).await;
    let key = Arc::new(chain.agent_server_key().unwrap().key);
    let browser = browser();
    for (return_url, why) in [
        (
            Some("https://elsewhere.example/callback"),
            "not one of the redirect_uris",
        ),
        (
            Some("http://127.0.0.1:9/elsewhere"),
            "not one of the redirect_uris",
        ),
        (Some("javascript:alert(1)"), "not acceptable"),
        (Some("ftp://127.0.0.1/callback"), "not acceptable"),
        (None, "no return_url"),
    ] {
        let session = interaction_url(&raw_chain(&chain, &token, key.clone()).await);
        let mut url = Url::parse(&session).unwrap();
        if let Some(return_url) = return_url {
            url.query_pairs_mut().append_pair("return_url", return_url);
        }
        let page = browser.get(url).send().await.unwrap();
        assert_eq!(page.status(), 400, "{return_url:?}");
        assert!(page.headers().get("location").is_none(), "{return_url:?}");
        let body = page.text().await.unwrap();
        assert!(body.contains(why), "{return_url:?}: {body}");
        // E§9.9: the failed attempt ended the session.
        let mut url = Url::parse(&session).unwrap();
        url.query_pairs_mut()
            .append_pair("return_url", "http://127.0.0.1:9/callback");
        let page = browser.get(url).send().await.unwrap();
        assert_eq!(page.status(), 400, "{return_url:?}: still open");
        assert!(page.text().await.unwrap().contains("expired"));
    }
    // An unknown session, and a callback without the session's cookie.
    for url in [
        format!(
            "{}/interaction?session=unknown&return_url=http://127.0.0.1:9/callback",
            chain.r1.url()
        ),
        format!("{}/interaction/callback?code=x&state=y", chain.r1.url()),
    ] {
        let page = browser.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 400, "{url}");
        assert!(page.headers().get("location").is_none(), "{url}");
    }
    // A good return_url: on to AS2's consent page, and a reload goes there
    // again without asking AS2 twice.
    let session = interaction_url(&raw_chain(&chain, &token, key).await);
    let mut url = Url::parse(&session).unwrap();
    url.query_pairs_mut()
        .append_pair("return_url", "http://127.0.0.1:9/callback");
    let page = browser.get(url.clone()).send().await.unwrap();
    assert_eq!(page.status(), 303);
    let location = page.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/agent/auth?", chain.as2.url())),
        "R1 sends the user to its next hop only: {location}"
    );
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let reload = browser.get(url).send().await.unwrap();
    assert_eq!(reload.status(), 303);
    assert_eq!(reload.headers()["location"].to_str().unwrap(), location);
    // A callback whose state is not the one sent is refused, and ends the
    // session (E§9.9): the genuine state no longer works either.
    let state = Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "state")
        .unwrap()
        .1
        .into_owned();
    for (state, code) in [("forged", 400), (state.as_str(), 400)] {
        let page = browser
            .get(format!(
                "{}/interaction/callback?code=x&state={state}",
                chain.r1.url()
            ))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), code, "state {state}");
        assert!(page.headers().get("location").is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_two_hops_down_serves_only_the_chain_it_was_given_for() {
    // profile: P-UI-3 — R2 sees R1 as its caller whichever agent is behind
    // it; the actors before R1 (act) are part of the session's binding, so
    // what the user granted R2 for one agent's chain is not another's.
    let chain = Chain::start(&ChainOptions {
        consent_for_r3: true,
        ..ChainOptions::default()
    })
    .expect("six processes start");
    let (user, _) = narrated(Decision::Approve);
    let server = chain.server_agent(user).unwrap();
    let (status, json) = get_chain(&server, &chain).await;
    assert_eq!(status, 200, "{json}");
    // Another agent (a delegate) through the same R1 → R2 is asked for its
    // own user.
    let delegate = chain
        .delegate_agent("delegate", Arc::new(NoUser))
        .await
        .unwrap();
    let error = delegate
        .call(
            Method::GET,
            &format!("{}/chain", chain.r1.url()),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no user here"), "{error}");
    // The first agent still goes through without the user.
    let (status, _) = get_chain(&server, &chain).await;
    assert_eq!(status, 200);
}
