//! A real browser on every page a person sees (profile: P-AS-4, P-UI-2):
//! headless Chromium, driven over WebDriver, signs in on the auth server's
//! login page, approves and denies on its consent page, meets a wrong
//! password, an expired request, a forged and a missing anti-forgery
//! token, a second submission and the back button, and walks the two-hop
//! interaction round trip through a resource. Every page is photographed
//! under `target/browser/<test>/` and checked for a language, a title, a
//! heading and a label on every field.

mod chromium;
mod common;

use std::sync::Arc;
use std::time::Duration;

use aauth_e2e::chain::{Chain, ChainOptions};
use aauth_e2e::user::Decision;
use aauth_e2e::world::{ALICE, ALICE_PASSWORD, Options};
use bytes::Bytes;
use chromium::{BrowserUser, Chromium, Seen, assert_accessible};
use common::*;
use http::Method;

/// How long a test waits for a callback the browser should have reached.
const CALLBACK_WAIT: Duration = Duration::from_secs(10);

fn names(seen: &[Seen]) -> Vec<String> {
    seen.iter().map(|s| s.name.clone()).collect()
}

/// A consent link for the agent server signing as itself, for
/// `data.write` at the world's resource.
async fn link(world: &aauth_e2e::world::World) -> (url::Url, aauth_agent::CallbackListener) {
    let identity = server_identity(world);
    let token = resource_token(world, &identity, "data.write").await;
    consent_link(world, &identity, &[("resource_token", &token)]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_in_and_approves_and_the_agent_gets_its_call_through() {
    let world = world();
    let browser = Arc::new(Chromium::start("approve").await);
    let delegate = enroll(&world, "d1").await;
    let sub = delegate.record.sub.clone();
    let user = BrowserUser::new(browser.clone(), ALICE, ALICE_PASSWORD, Decision::Approve);
    let agent = world.delegate_agent(delegate, Arc::new(user)).unwrap();
    let reply = agent
        .call(
            Method::POST,
            at(world.resource.url(), "/data").as_str(),
            Some(Bytes::from_static(br#"{"text":"from a real browser"}"#)),
            Some("application/json"),
        )
        .await
        .expect("the call goes through after consent");
    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);

    let seen = browser.seen();
    assert_eq!(
        names(&seen),
        ["01-login.png", "02-consent.png", "03-back-at-the-agent.png"]
    );
    for page in &seen {
        assert_accessible(page);
        assert!(browser.shots().join(&page.name).is_file());
    }
    let (login, consent, done) = (&seen[0], &seen[1], &seen[2]);
    assert_eq!(login.title, "Sign in");
    assert!(login.text.contains("Demo travel agent"), "{}", login.text);
    assert_eq!(consent.title, "Authorize access");
    // The consent page says which agent (and which of its delegates) asks
    // for what, on which resource, for how long, for whom and where
    // (E§9.5 step 3).
    let signed_in = format!("Signed in as alice at {}", world.auth_server.url());
    let resource = format!("AAuth notes ({})", world.resource.url());
    for expected in [
        "Demo travel agent",
        world.agent_server.url(),
        &format!("through its delegate {sub}"),
        &resource,
        "data.write",
        "Create and change your notes",
        "Each access lasts 10 minutes; the agent can renew it for 30 days",
        &signed_in,
    ] {
        assert!(
            consent.text.contains(expected),
            "{expected:?} in {}",
            consent.text
        );
    }
    assert_eq!(done.title, "Access approved");
    browser_close(browser).await;
}

/// Closes the browser once no one else holds it.
async fn browser_close(browser: Arc<Chromium>) {
    if let Ok(browser) = Arc::try_unwrap(browser) {
        browser.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_who_denies_sends_the_agent_access_denied() {
    let world = world();
    let browser = Arc::new(Chromium::start("deny").await);
    let delegate = enroll(&world, "d1").await;
    let user = BrowserUser::new(browser.clone(), ALICE, ALICE_PASSWORD, Decision::Deny);
    let agent = world.delegate_agent(delegate, Arc::new(user)).unwrap();
    let error = agent
        .call(
            Method::POST,
            at(world.resource.url(), "/data").as_str(),
            Some(Bytes::from_static(br#"{"text":"no"}"#)),
            Some("application/json"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, aauth_agent::AgentError::AccessDenied),
        "{error}"
    );
    let seen = browser.seen();
    let done = seen.last().unwrap();
    assert_eq!(done.title, "Access denied", "{}", done.text);
    assert_accessible(done);
    assert!(agent.tokens().all().is_empty(), "no grant was stored");
    browser_close(browser).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_keeps_the_person_on_the_login_page_with_an_error() {
    let world = world();
    let browser = Arc::new(Chromium::start("wrong-password").await);
    let (url, listener) = link(&world).await;
    browser.open(url.as_str()).await;
    let wrong = BrowserUser::new(
        browser.clone(),
        ALICE,
        "not her password",
        Decision::Approve,
    );
    wrong.sign_in().await;
    browser.wait_for(".error").await;
    let refused = browser.record("wrong-password").await;
    assert_accessible(&refused);
    assert_eq!(refused.title, "Sign in");
    assert_eq!(
        browser
            .run("return document.querySelector('#username').value;")
            .await,
        ALICE,
        "the user name is kept, the password is not"
    );
    assert_eq!(
        browser
            .run("return document.querySelector('#password').value;")
            .await,
        ""
    );
    assert!(
        refused.text.contains("Wrong username or password."),
        "{}",
        refused.text
    );
    // The same form, still usable: the right password gets to consent.
    let right = BrowserUser::new(browser.clone(), ALICE, ALICE_PASSWORD, Decision::Approve);
    right.sign_in().await;
    browser.wait_for("button[value=approve]").await;
    browser.record("consent").await;
    browser.click("button[value=approve]").await;
    let query = listener.wait(CALLBACK_WAIT).await.expect("the callback");
    assert!(query.contains_key("code"), "{query:?}");
    browser_close(browser).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn not_you_sign_out_on_the_consent_page_returns_to_the_login_form() {
    // P-AS-4: someone else's session on a shared browser is ended from the
    // consent page, and the same request continues at the login form.
    let world = world();
    let browser = Arc::new(Chromium::start("sign-out").await);
    let (url, listener) = link(&world).await;
    browser.open(url.as_str()).await;
    let alice = BrowserUser::new(browser.clone(), ALICE, ALICE_PASSWORD, Decision::Approve);
    alice.sign_in().await;
    browser.wait_for("button[value=approve]").await;
    let consent = browser.record("consent").await;
    assert!(
        consent.text.contains("Not alice? Sign out"),
        "{}",
        consent.text
    );
    browser
        .click("form[action='/agent/auth/logout'] button")
        .await;
    browser.wait_for("#password").await;
    let login = browser.record("signed-out").await;
    assert_accessible(&login);
    assert_eq!(login.title, "Sign in");
    // Opening the link again does not find the old session either.
    browser.open(url.as_str()).await;
    browser.wait_for("#password").await;
    alice.sign_in().await;
    browser.wait_for("button[value=approve]").await;
    browser.click("button[value=approve]").await;
    let query = listener.wait(CALLBACK_WAIT).await.expect("the callback");
    assert!(query.contains_key("code"), "{query:?}");
    browser_close(browser).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_request_shows_an_error_page_and_no_form() {
    // P-AS-3: the request token lives `request_token_lifetime` seconds.
    let world = start(&Options {
        auth_settings: "request_token_lifetime = 1\n".into(),
        ..Options::default()
    });
    let browser = Arc::new(Chromium::start("expired").await);
    let (url, listener) = link(&world).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    browser.open(url.as_str()).await;
    browser.wait_for("h1").await;
    let page = browser.record("expired").await;
    assert_accessible(&page);
    assert!(page.text.contains("has expired"), "{}", page.text);
    assert_eq!(browser.run("return document.forms.length;").await, 0);
    assert!(listener.wait(Duration::from_millis(300)).await.is_err());
    browser_close(browser).await;
}

/// Changes the page's `csrf_token` field: `Some(value)` forges it, `None`
/// removes it.
async fn tamper_csrf(browser: &Chromium, value: Option<&str>) {
    let script = match value {
        Some(v) => format!(
            "document.querySelector('input[name=csrf_token]').value = {};",
            serde_json::Value::from(v)
        ),
        None => "document.querySelector('input[name=csrf_token]').remove();".to_owned(),
    };
    browser.run(&script).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_or_missing_anti_forgery_token_is_refused_on_both_forms() {
    let world = world();
    let browser = Arc::new(Chromium::start("csrf").await);
    let (url, listener) = link(&world).await;
    let alice = BrowserUser::new(browser.clone(), ALICE, ALICE_PASSWORD, Decision::Approve);
    let refused = "did not come from this page";

    for (name, value) in [("forged", Some("forged-token")), ("missing", None)] {
        // The login form.
        browser.open(url.as_str()).await;
        browser.wait_for("#password").await;
        tamper_csrf(&browser, value).await;
        alice.sign_in().await;
        browser
            .wait_until("the refusal", |u| u.path() == "/agent/auth/login")
            .await;
        let page = browser.record(&format!("login-{name}-csrf")).await;
        assert_accessible(&page);
        assert!(page.text.contains(refused), "{name}: {}", page.text);
        assert_eq!(page.title, "Cannot continue");
    }
    // Signed in for real, then the consent form. The login's answer is
    // awaited: opening the link again before it arrives would cancel it.
    browser.open(url.as_str()).await;
    alice.sign_in().await;
    browser.wait_for("button[value=approve]").await;
    for (name, value) in [("forged", Some("forged-token")), ("missing", None)] {
        browser.open(url.as_str()).await;
        browser.wait_for("button[value=approve]").await;
        tamper_csrf(&browser, value).await;
        browser.click("button[value=approve]").await;
        browser
            .wait_until("the refusal", |u| u.path() == "/agent/auth/consent")
            .await;
        let page = browser.record(&format!("consent-{name}-csrf")).await;
        assert_accessible(&page);
        assert!(page.text.contains(refused), "{name}: {}", page.text);
    }
    // Nothing reached the agent, and the request is still answerable.
    assert!(listener.wait(Duration::from_millis(300)).await.is_err());
    browser.open(url.as_str()).await;
    browser.wait_for("button[value=approve]").await;
    browser_close(browser).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_submission_and_the_back_button_after_approval_give_no_second_code() {
    let world = world();
    let browser = Arc::new(Chromium::start("second-submission").await);
    let (url, listener) = link(&world).await;
    let alice = BrowserUser::new(browser.clone(), ALICE, ALICE_PASSWORD, Decision::Approve);
    browser.open(url.as_str()).await;
    alice.sign_in().await;
    browser.wait_for("button[value=approve]").await;

    // The same consent page open in a second tab of the same session.
    let first = browser.client().window().await.unwrap();
    let second = browser.client().new_window(true).await.unwrap().handle;
    browser
        .client()
        .switch_to_window(second.clone())
        .await
        .unwrap();
    browser.open(url.as_str()).await;
    browser.wait_for("button[value=approve]").await;
    browser.record("consent-second-tab").await;

    // Approve in the first tab: the code goes to the agent.
    browser.client().switch_to_window(first).await.unwrap();
    browser.click("button[value=approve]").await;
    let query = listener.wait(CALLBACK_WAIT).await.expect("the callback");
    assert!(query.contains_key("code"), "{query:?}");
    browser
        .wait_until("the agent's callback", |u| u.path() == "/callback")
        .await;
    browser.record("approved").await;

    // The back button: whether Chromium fetches the page again (it is
    // no-store) or restores it from its back-forward cache, approving
    // again is refused: the request is answered.
    browser.back().await;
    browser
        .wait_until("the auth server", |u| u.path().starts_with("/agent/auth"))
        .await;
    let back = browser.record("after-back").await;
    assert_accessible(&back);
    if !back.text.contains("already answered") {
        browser.wait_for("button[value=approve]").await;
        browser.click("button[value=approve]").await;
        browser
            .wait_until("the refusal", |u| u.path() == "/agent/auth/consent")
            .await;
        let refused = browser.record("approve-after-back").await;
        assert_accessible(&refused);
        assert!(
            refused.text.contains("already answered"),
            "{}",
            refused.text
        );
        assert_eq!(refused.title, "Already answered");
    } else {
        // Where the flow ended, not an error to start again from.
        assert_eq!(back.title, "Already answered");
        assert!(back.text.contains("alice approved it"), "{}", back.text);
    }

    // Approve in the second tab: refused, no redirect with a second code.
    browser.client().switch_to_window(second).await.unwrap();
    browser.click("button[value=approve]").await;
    browser
        .wait_until("the refusal", |u| u.path() == "/agent/auth/consent")
        .await;
    let again = browser.record("second-submission").await;
    assert_accessible(&again);
    assert!(again.text.contains("already answered"), "{}", again.text);
    assert_eq!(again.title, "Already answered");
    browser_close(browser).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_two_hop_interaction_round_trip_in_a_real_browser() {
    // profile: P-UI-1, P-UI-2 — R1 needs the user at AS2: the browser goes
    // to R1's interaction page, on to AS2's login and consent, back through
    // R1's callback, and lands at the agent.
    let chain = Chain::start(&ChainOptions {
        consent_for_r2: true,
        ..ChainOptions::default()
    })
    .expect("six processes start");
    let browser = Arc::new(Chromium::start("two-hop").await);
    let user = BrowserUser::new(browser.clone(), ALICE, ALICE_PASSWORD, Decision::Approve);
    let agent = chain.server_agent(Arc::new(user)).unwrap();
    let reply = agent
        .call(
            Method::GET,
            &format!("{}/chain", chain.r1.url()),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        reply.status.as_u16(),
        200,
        "{}; logs in {}",
        String::from_utf8_lossy(&reply.body),
        chain.dir().display()
    );
    let seen = browser.seen();
    assert_eq!(
        names(&seen),
        ["01-login.png", "02-consent.png", "03-back-at-the-agent.png"]
    );
    let as2 = chain.as2.url();
    assert!(seen[0].url.as_str().starts_with(as2), "{}", seen[0].url);
    assert!(seen[1].url.as_str().starts_with(as2), "{}", seen[1].url);
    assert!(
        seen[1].text.contains("Resource R1"),
        "AS2's consent page names R1: {}",
        seen[1].text
    );
    // ... and the agent R1 serves, proven by the token R1 received.
    let serving = format!(
        "It asks while serving a request from Demo travel agent ({}).",
        chain.agent_server.url()
    );
    assert!(seen[1].text.contains(&serving), "{}", seen[1].text);
    for page in &seen {
        assert_accessible(page);
    }
    browser_close(browser).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_error_pages_of_both_servers_are_readable() {
    let chain = Chain::start(&ChainOptions::default()).expect("six processes start");
    let browser = Chromium::start("error-pages").await;
    let cannot = "Cannot continue";
    for (name, url, title) in [
        (
            "resource-unknown-session",
            format!(
                "{}/interaction?session=unknown&return_url=http://127.0.0.1:9/callback",
                chain.r1.url()
            ),
            cannot,
        ),
        (
            "resource-callback-without-session",
            format!("{}/interaction/callback?code=x&state=y", chain.r1.url()),
            cannot,
        ),
        (
            "auth-server-link-without-request",
            format!("{}/agent/auth", chain.as2.url()),
            cannot,
        ),
        // A mistyped address answers a page to a browser, not JSON.
        (
            "resource-unknown-path",
            format!("{}/no-such-page", chain.r1.url()),
            "Not found",
        ),
        (
            "auth-server-unknown-path",
            format!("{}/agent/auth/no-such-page", chain.as2.url()),
            "Not found",
        ),
    ] {
        browser.open(&url).await;
        browser.wait_for("h1").await;
        let page = browser.record(name).await;
        assert_accessible(&page);
        assert_eq!(page.title, title, "{name}: {}", page.text);
        assert!(page.text.len() > title.len() + 20, "{name}: {}", page.text);
    }
    browser.close().await;
}
