//! `GET /agent/auth`, login and consent (E§9.5, profile: P-AS-4).

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helper: a missing request token fails the test"
)]

mod common;

use axum::http::StatusCode;
use common::*;

/// A pending request of `delegate` for `scope` at `redirect_uri`; its request token.
async fn pending(w: &World, d: &Delegate, scope: &str, redirect_uri: &str) -> String {
    let rt = w.resource_token(d.key.public_key(), scope);
    let reply = w
        .call(
            d,
            &[
                ("request_type", "auth"),
                ("resource_token", &rt),
                ("redirect_uri", redirect_uri),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["request_token"].as_str().unwrap().to_owned()
}

fn is_error_page(reply: &Reply) -> bool {
    reply.header("content-type") == Some("text/html; charset=utf-8")
        && reply.header("location").is_none()
        && reply.text.contains("Cannot continue")
}

#[tokio::test]
async fn first_visit_shows_a_login_form_with_a_safe_session_cookie() {
    // profile: P-AS-4 — "session cookie: HttpOnly, SameSite=Lax, Secure outside dev".
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let token = pending(&w, &d, "data.write", REDIRECT).await;
    let page = w.get(&World::auth_uri(&token, REDIRECT, "xyz"), None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("action=\"/agent/auth/login\""));
    assert!(!page.csrf().is_empty());
    let cookie = page.header("set-cookie").unwrap();
    assert!(cookie.starts_with("aauth_as_session="));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("Secure"), "dev mode: plain http");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    // The agent's name is peer text.
    assert!(page.text.contains("Calendar &lt;Helper&gt;"));
    assert!(!page.text.contains("<Helper>"));
}

#[tokio::test]
async fn the_consent_page_shows_agent_resource_and_described_scopes() {
    // profile: P-AS-4 — agent name/logo, the resource, scopes with descriptions.
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let token = pending(&w, &d, "openid data.read data.write", REDIRECT).await;
    let cookie = w.login(&token, REDIRECT).await;
    let page = w
        .get(&World::auth_uri(&token, REDIRECT, "s1"), Some(&cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Calendar &lt;Helper&gt;"));
    assert!(page.text.contains(LOGO));
    assert!(page.text.contains(w.resource.as_str()));
    // The resource's own name beside its URL (profile: the resource's name
    // on the consent page), escaped.
    assert!(
        page.text.contains(&format!(
            "<strong>Documents &lt;&amp;&gt; Co</strong> (<code>{}</code>)",
            w.resource.as_str()
        )),
        "{}",
        page.text
    );
    assert!(page.text.contains("Read your documents"));
    assert!(page.text.contains("Change your documents"));
    assert!(page.text.contains("Sign you in"));
    assert!(page.text.contains("value=\"approve\""));
    assert!(page.text.contains("value=\"deny\""));
    assert!(page.text.contains("Signed in as alice"));
}

#[tokio::test]
async fn approve_redirects_with_code_and_state() {
    // E§9.5 step 4, profile: P-AS-4.
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let token = pending(&w, &d, "data.write", REDIRECT).await;
    let location = w.consent(&token, REDIRECT, "approve").await;
    assert!(
        location.starts_with(&format!("{REDIRECT}?code=")),
        "{location}"
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("s1"));
    assert_eq!(query_param(&location, "code").unwrap().len(), 43);
    // The request token is used up; coming back to it (the back button)
    // shows where the flow ended instead of an error.
    let again = w.get(&World::auth_uri(&token, REDIRECT, "s1"), None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.header("location").is_none());
    assert!(
        again.text.contains("<title>Already answered</title>"),
        "{}",
        again.text
    );
    assert!(
        again.text.contains("already answered: alice approved it"),
        "{}",
        again.text
    );
    assert!(
        again.text.contains("it was given access to"),
        "{}",
        again.text
    );
    assert!(!again.text.contains("Cannot continue"), "{}", again.text);
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    // profile: P-AS-4, P-ERR-1 (consent denied → 303 access_denied).
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let token = pending(&w, &d, "data.write", REDIRECT).await;
    let location = w.consent(&token, REDIRECT, "deny").await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("s1"));
    assert!(query_param(&location, "code").is_none());
    let again = w.get(&World::auth_uri(&token, REDIRECT, "s1"), None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again.text.contains("alice denied it") && again.text.contains("not given access"),
        "{}",
        again.text
    );
    // A token never seen is still an error to start again from.
    let unknown = w
        .get(&World::auth_uri(&"x".repeat(43), REDIRECT, "s1"), None)
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(is_error_page(&unknown));
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again() {
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let token = pending(&w, &d, "data.write", REDIRECT).await;
    let page = w.get(&World::auth_uri(&token, REDIRECT, "s"), None).await;
    let cookie = page.cookie();
    for (user, password) in [("alice", "wrong"), ("mallory", PASSWORD)] {
        let reply = w
            .post_form(
                "/agent/auth/login",
                Some(&cookie),
                &[
                    ("username", user),
                    ("password", password),
                    ("csrf_token", &page.csrf()),
                    ("request_token", &token),
                    ("redirect_uri", REDIRECT),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{user}");
        assert!(reply.text.contains("Wrong username or password"));
        assert!(reply.header("set-cookie").is_none());
    }
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_are_refused() {
    // profile: P-AS-4 — "CSRF token in every form".
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let token = pending(&w, &d, "data.write", REDIRECT).await;
    let page = w.get(&World::auth_uri(&token, REDIRECT, "s"), None).await;
    let cookie = page.cookie();
    let login = |csrf: Option<String>, cookie: Option<String>| {
        let token = token.clone();
        let w = &w;
        async move {
            let mut form = vec![
                ("username", "alice".to_owned()),
                ("password", PASSWORD.to_owned()),
                ("request_token", token),
                ("redirect_uri", REDIRECT.to_owned()),
            ];
            if let Some(csrf) = csrf {
                form.push(("csrf_token", csrf));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (*n, v.as_str())).collect();
            w.post_form("/agent/auth/login", cookie.as_deref(), &form)
                .await
        }
    };
    let missing = login(None, Some(cookie.clone())).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let wrong = login(Some("x".repeat(43)), Some(cookie.clone())).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let no_cookie = login(Some(page.csrf()), None).await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    assert!(is_error_page(&wrong));

    // Consent: the logged-in session's token is required too.
    let session = w.login(&token, REDIRECT).await;
    let reply = w
        .post_form(
            "/agent/auth/consent",
            Some(&session),
            &[
                ("decision", "approve"),
                ("csrf_token", &page.csrf()),
                ("request_token", &token),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "the anonymous session's token is gone"
    );
    // Signing out needs it too: a page elsewhere cannot sign the user out.
    let reply = w
        .post_form(
            "/agent/auth/logout",
            Some(&session),
            &[
                ("csrf_token", &page.csrf()),
                ("request_token", &token),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "sign-out without CSRF");
    // An anonymous session cannot consent.
    let reply = w
        .post_form(
            "/agent/auth/consent",
            Some(&cookie),
            &[
                ("decision", "approve"),
                ("request_token", &token),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_or_expired_request_tokens_get_an_error_page() {
    let w = World::with(|c| c.request_token_lifetime = 0).await;
    let d = w.delegate("delegate-1");
    let expired = pending(&w, &d, "data.write", REDIRECT).await;
    let reply = w.get(&World::auth_uri(&expired, REDIRECT, "s"), None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(is_error_page(&reply));
    assert!(reply.text.contains("expired"));
    let reply = w
        .get(&World::auth_uri("unknown", REDIRECT, "s"), None)
        .await;
    assert!(is_error_page(&reply));
    let reply = w.get("/agent/auth", None).await;
    assert!(is_error_page(&reply));
}

#[tokio::test]
async fn redirect_uris_must_be_bound_and_registered() {
    // profile: P-AS-4 — equal to the bound one AND listed in the agent's
    // metadata; never a redirect to an unverified URI.
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    // Bound, but not registered by the agent.
    let unregistered = "https://evil.example/steal";
    let token = pending(&w, &d, "data.write", unregistered).await;
    let reply = w
        .get(&World::auth_uri(&token, unregistered, "s"), None)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(is_error_page(&reply));
    assert!(reply.text.contains("not registered"));

    // Registered, but not the one bound to the request token.
    let token = pending(&w, &d, "data.write", REDIRECT).await;
    let reply = w.get(&World::auth_uri(&token, LOOPBACK, "s"), None).await;
    assert!(is_error_page(&reply));
    assert!(reply.text.contains("does not match"));
    // …nor can the consent form swap it.
    let session = w.login(&token, REDIRECT).await;
    let page = w
        .get(&World::auth_uri(&token, REDIRECT, "s"), Some(&session))
        .await;
    let reply = w
        .post_form(
            "/agent/auth/consent",
            Some(&session),
            &[
                ("decision", "approve"),
                ("csrf_token", &page.csrf()),
                ("request_token", &token),
                ("redirect_uri", LOOPBACK),
            ],
        )
        .await;
    assert!(is_error_page(&reply));
}

#[tokio::test]
async fn loopback_redirect_uris_match_on_any_port() {
    // profile: P-AS-4 — RFC 8252 §7.3.
    let w = World::new().await;
    let d = w.delegate("delegate-1");
    let any_port = "http://127.0.0.1:43210/loopback";
    let token = pending(&w, &d, "data.write", any_port).await;
    let location = w.consent(&token, any_port, "approve").await;
    assert!(
        location.starts_with("http://127.0.0.1:43210/loopback?code="),
        "{location}"
    );
    let code = query_param(&location, "code").unwrap();
    let reply = w
        .call(
            &d,
            &[
                ("request_type", "code"),
                ("code", &code),
                ("redirect_uri", any_port),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}
