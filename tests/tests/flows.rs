//! Every flow against the real binaries, beyond the demo's happy path:
//! identification at `/whoami`, a denied consent, SSO (the agent is the
//! audience), and reuse of a stored auth token.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aauth_e2e::user::Decision;
use aauth_http::client::{Identity, Outgoing};
use aauth_protocol::challenge::Level;
use bytes::Bytes;
use common::*;
use http::Method;
use serde_json::Value;
use url::Url;

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_server_signing_as_itself_is_identified_at_whoami() {
    let world = world();
    let me = whoami(&world, &server_identity(&world)).await;
    assert_eq!(me["level"], "identified");
    assert_eq!(me["scheme"], "jwks_uri");
    assert_eq!(me["agent"], world.agent_server.url());
    assert_eq!(me["delegate"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delegate_at_whoami_shows_its_sub() {
    let world = world();
    let delegate = enroll(&world, "d1").await;
    let me = whoami(&world, &delegate_identity(&delegate)).await;
    assert_eq!(me["level"], "identified");
    assert_eq!(me["scheme"], "jwt");
    assert_eq!(me["agent"], world.agent_server.url());
    assert_eq!(me["delegate"], delegate.record.sub.as_str());
    assert_eq!(
        me["key_thumbprint"],
        delegate.key.public_key().thumbprint().as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pseudonymous_caller_at_whoami_is_asked_for_an_identity() {
    let world = world();
    let reply = client()
        .send(
            &Identity::Hwk(new_key()),
            Outgoing::get(at(world.resource.url(), "/whoami")),
        )
        .await
        .unwrap();
    assert_error(&reply, 401, "insufficient_auth_level");
    assert_challenge(&reply, Level::Identified);
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_consent_gives_the_agent_access_denied_and_the_resource_no_token() {
    let world = world();
    let delegate = enroll(&world, "d1").await;
    let steps = Steps::default();
    let agent = world
        .delegate_agent(delegate, Arc::new(alice(Decision::Deny)))
        .unwrap()
        .with_steps(steps.hook());
    let error = agent
        .call(
            Method::POST,
            at(world.resource.url(), "/data").as_str(),
            Some(Bytes::from_static(br#"{"text":"nope"}"#)),
            Some("application/json"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, aauth_agent::AgentError::AccessDenied),
        "{error}"
    );
    assert!(
        error.to_string().contains("access_denied"),
        "a clear message: {error}"
    );
    assert!(agent.tokens().all().is_empty(), "no grant was stored");
    let lines = steps.lines();
    assert!(
        !lines.iter().any(|l| l.contains("auth token (authorized)")),
        "the resource never saw an auth token: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_consent_redirects_with_access_denied_and_no_code() {
    let world = world();
    let identity = server_identity(&world);
    let token = resource_token(&world, &identity, "data.write").await;
    let (query, _) = consent_round_trip(
        &world,
        &identity,
        &[("resource_token", &token)],
        Decision::Deny,
    )
    .await;
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert!(!query.contains_key("code"), "{query:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sso_without_a_resource_token_gives_an_auth_token_for_the_agent_with_sub() {
    let world = world();
    let identity = server_identity(&world);
    let (code, redirect_uri) =
        approved_code(&world, &identity, &[("scope", "openid profile email")]).await;
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
    let token = claims(body["auth_token"].as_str().unwrap());
    assert_eq!(token["aud"], world.agent_server.url(), "{token}");
    assert_eq!(token["iss"], world.auth_server.url());
    assert_eq!(token["sub"], "user-alice");
    assert_eq!(token["email"], "alice@example.com");
    assert_eq!(token["name"], "Alice Example");
    // P-TOK-4: `agent` is omitted when `aud` is the agent itself.
    assert_eq!(token.get("agent"), None, "{token}");
    // E§7.4: identity scopes are not access scopes.
    assert_eq!(token.get("scope"), None, "{token}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_call_reuses_the_stored_auth_token_without_a_new_grant() {
    let world = world();
    let delegate = enroll(&world, "d1").await;
    let consent = Counting::new(Decision::Approve);
    let steps = Steps::default();
    let agent = world
        .delegate_agent(delegate, Arc::new(consent.clone()))
        .unwrap()
        .with_steps(steps.hook());
    let url = at(world.resource.url(), "/data");
    let first = agent
        .call(
            Method::POST,
            url.as_str(),
            Some(Bytes::from_static(br#"{"text":"one"}"#)),
            Some("application/json"),
        )
        .await
        .unwrap();
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(consent.count(), 1);
    let grants = agent.tokens().all();
    assert_eq!(grants.len(), 1);

    steps.clear();
    let second = agent
        .call(
            Method::POST,
            url.as_str(),
            Some(Bytes::from_static(br#"{"text":"two"}"#)),
            Some("application/json"),
        )
        .await
        .unwrap();
    assert_eq!(second.status, 201, "{}", second.text());
    assert_eq!(consent.count(), 1, "the user was not asked again");
    assert_eq!(agent.tokens().all(), grants, "no new grant");
    let lines = steps.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("using the stored auth token")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("request_type=")),
        "no token request: {lines:#?}"
    );
    // Exactly one request went out: the authorized one.
    assert_eq!(
        lines.iter().filter(|l| l.contains(" signed ")).count(),
        1,
        "{lines:#?}"
    );

    let list = agent
        .call(Method::GET, url.as_str(), None, None)
        .await
        .unwrap();
    assert_eq!(list.status, 200, "{}", list.text());
    let body: Value = list.json().unwrap();
    assert_eq!(body["notes"].as_array().map(Vec::len), Some(2), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn call_verbose_shows_the_exchanges_but_no_credential() {
    // Review finding 5: `call --verbose` printed every auth token, refresh
    // token and code whole. It now shows tokens' headers and claims only.
    let world = world();
    let binary = aauth_e2e::harness::binary("aauth-agent-server").unwrap();
    let output = tokio::process::Command::new(binary)
        .current_dir(world.dir())
        .args([
            "call",
            "--dev",
            "--verbose",
            "--as-server",
            "--config",
            "agent-server.toml",
            "--public-url",
            world.agent_server.url(),
            "GET",
            &format!("{}/data", world.resource.url()),
        ])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // The autonomous grant (data.read) came with a refresh token.
    let tokens: Value = serde_json::from_slice(
        &std::fs::read(world.dir().join("agent-server/tokens.json")).unwrap(),
    )
    .unwrap();
    let grant = &tokens[0];
    let refresh_token = grant["refresh_token"].as_str().unwrap();
    let auth_token = grant["auth_token"].as_str().unwrap();
    let signature = auth_token.rsplit('.').next().unwrap();
    assert!(!stderr.contains(refresh_token), "{stderr}");
    assert!(!stderr.contains(signature), "{stderr}");
    assert!(
        stderr.contains("\"refresh_token\":\"[redacted]\""),
        "{stderr}"
    );
    // What a reader needs is there: the token's claims, the exchanges.
    assert!(stderr.contains("\"scope\":\"data.read\""), "{stderr}");
    assert!(stderr.contains("> POST "), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_finishes_consent_from_a_pasted_address_and_prints_the_body_alone() {
    // The browser is on another machine: it cannot load the loopback
    // callback, so the person pastes the address it shows into `call`.
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let world = world();
    enroll(&world, "d1").await;
    let binary = aauth_e2e::harness::binary("aauth-agent-server").unwrap();
    let mut child = tokio::process::Command::new(binary)
        .current_dir(world.dir())
        .args([
            "call",
            "--dev",
            "--no-browser",
            "--consent-timeout",
            "60",
            "--state-dir",
            "d1",
            "POST",
            &format!("{}/data", world.resource.url()),
            "--data",
            r#"{"text":"pasted back"}"#,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    let link = loop {
        let line = tokio::time::timeout(Duration::from_secs(20), stderr.next_line())
            .await
            .expect("the CLI prints the consent address")
            .unwrap()
            .unwrap_or_else(|| panic!("the CLI ended: {said:#?}"));
        said.push(line.clone());
        if let Some(url) = line.trim().strip_prefix("http")
            && url.contains("/agent/auth?")
        {
            break Url::parse(&format!("http{url}")).unwrap();
        }
    };
    // Alice approves in "her" browser, which stops at the redirect.
    let mut session = FormSession::sign_in(&link).await;
    let page = session.get(&link).await;
    let done = session
        .submit(&link, &page.body, &[("decision", "approve")])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let back = done.location.unwrap();
    assert!(back.contains("code="), "{back}");
    // A wrong address first: refused, and the CLI keeps waiting.
    stdin
        .write_all(b"http://127.0.0.1:9/elsewhere?code=x&state=y\n")
        .await
        .unwrap();
    stdin
        .write_all(format!("{back}\n").as_bytes())
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    while let Ok(Some(line)) = stderr.next_line().await {
        said.push(line);
    }
    let output = child.wait_with_output().await.unwrap();
    let said = said.join("\n");
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("is not this request's") && said.contains("paste it again"),
        "{said}"
    );
    assert!(
        said.contains("HTTP 201"),
        "the status line on stderr: {said}"
    );
    assert_eq!(
        said.matches("/agent/auth?").count(),
        1,
        "the address is printed once: {said}"
    );
    // Standard output is the body alone: `| jq` works.
    let body: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(body["text"], "pasted back", "{body}");
}

#[test]
fn cli_errors_that_have_a_fix_say_it() {
    let binary = aauth_e2e::harness::binary("aauth-agent-server").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("d").display().to_string();
    for (args, fix) in [
        (
            vec!["--agent", "http://127.0.0.1:4001"],
            "fix: add --dev to talk to local servers over plain http",
        ),
        (
            vec!["--dev", "--agent", "127.0.0.1:4001"],
            "fix: write the URL with its scheme, e.g. http://127.0.0.1:4001",
        ),
        (
            vec!["--dev", "--agent", "http://127.0.0.1:1"],
            "cannot connect (Connection refused",
        ),
    ] {
        let output = std::process::Command::new(&binary)
            .arg("enroll")
            .args(&args)
            .args(["--code", "x", "--state-dir", &state])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(fix), "{args:?}: {stderr}");
    }
    // A refused connection names where a server was expected.
    let output = std::process::Command::new(&binary)
        .args([
            "enroll",
            "--dev",
            "--agent",
            "http://127.0.0.1:1",
            "--code",
            "x",
        ])
        .args(["--state-dir", &state])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is the server running at http://127.0.0.1:1?"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn enrolling_over_an_enrolled_delegate_needs_force() {
    let world = world();
    let binary = aauth_e2e::harness::binary("aauth-agent-server").unwrap();
    let enroll = |code: String, force: bool| {
        let mut command = std::process::Command::new(&binary);
        command
            .current_dir(world.dir())
            .args(["enroll", "--dev", "--agent", world.agent_server.url()])
            .args(["--code", &code, "--state-dir", "cli-delegate"]);
        if force {
            command.arg("--force");
        }
        command.output().unwrap()
    };
    let first = enroll(world.mint_code(None).unwrap(), false);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let key = std::fs::read(world.dir().join("cli-delegate/key.json")).unwrap();

    let again = enroll(world.mint_code(None).unwrap(), false);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(stderr.contains("already holds delegate"), "{stderr}");
    assert!(stderr.contains("fix: add --force"), "{stderr}");
    assert_eq!(
        std::fs::read(world.dir().join("cli-delegate/key.json")).unwrap(),
        key,
        "nothing was replaced"
    );

    let forced = enroll(world.mint_code(None).unwrap(), true);
    let stderr = String::from_utf8_lossy(&forced.stderr);
    assert!(forced.status.success(), "{stderr}");
    assert!(stderr.contains("replaced delegate"), "{stderr}");
    assert_ne!(
        std::fs::read(world.dir().join("cli-delegate/key.json")).unwrap(),
        key
    );
}

#[test]
fn every_binary_takes_verbose_in_the_same_places() {
    for name in ["aauth-agent-server", "aauth-auth-server", "aauth-resource"] {
        let binary = aauth_e2e::harness::binary(name).unwrap();
        for args in [
            ["-v", "serve", "--help"],
            ["serve", "-v", "--help"],
            ["serve", "--verbose", "--help"],
        ] {
            let output = std::process::Command::new(&binary)
                .args(args)
                .output()
                .unwrap();
            let help = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{name} {args:?}");
            assert!(help.contains("-v, --verbose"), "{name} {args:?}: {help}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_server_logs_one_plain_line_per_request() {
    let world = world();
    let reply = client()
        .send(
            &Identity::Hwk(new_key()),
            Outgoing::get(at(
                world.resource.url(),
                "/whoami?request_token=secret-in-a-query",
            )),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 401);
    let ok = plain()
        .get(format!(
            "{}/.well-known/aauth-issuer",
            world.auth_server.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // The lines are written as the answers go out.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resource = std::fs::read_to_string(world.resource.log()).unwrap();
    let line = resource
        .lines()
        .find(|l| l.contains("path=\"/whoami\""))
        .unwrap_or_else(|| panic!("no line for /whoami in:\n{resource}"));
    for part in [
        "request{id=",
        "answered",
        "method=GET",
        "status=401",
        // The hwk signature verified; the resource wants an identity.
        "level=\"pseudonymous\"",
        "error=\"insufficient_auth_level\"",
        "latency_ms=",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(
        !resource.contains("secret-in-a-query"),
        "the query is never logged"
    );
    assert!(!resource.contains('\u{1b}'), "no colour codes in a file");
    let auth = std::fs::read_to_string(world.auth_server.log()).unwrap();
    assert!(
        auth.lines()
            .any(|l| l.contains("path=\"/.well-known/aauth-issuer\"")
                && l.contains("status=200")
                && l.contains("level=\"-\"")
                && l.contains("error=\"-\"")),
        "{auth}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_delegate_its_key_its_agent_token_and_its_grants() {
    let world = world();
    let delegate = world.enroll_delegate("status-delegate").await.unwrap();
    let binary = aauth_e2e::harness::binary("aauth-agent-server").unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(&binary)
            .current_dir(world.dir())
            .args(args)
            .args(["--state-dir", "status-delegate"])
            .output()
            .unwrap()
    };
    let before = run(&["status"]);
    let text = String::from_utf8_lossy(&before.stdout);
    assert!(before.status.success(), "{text}");
    let sub = &delegate.record.sub;
    assert!(
        text.contains(&format!(
            "delegate {sub} of agent {}",
            world.agent_server.url()
        )),
        "{text}"
    );
    let thumbprint = delegate.key.public_key().thumbprint();
    assert!(
        text.contains(&format!("key thumbprint {}", thumbprint.as_str())),
        "{text}"
    );
    assert!(text.contains("agent token valid, expires in "), "{text}");
    assert!(text.contains("grants: none"), "{text}");

    // The agent may read notes on its own (the world's policy): one grant.
    let data = format!("{}/data", world.resource.url());
    let called = run(&["call", "--dev", "GET", &data]);
    assert!(
        called.status.success(),
        "{}",
        String::from_utf8_lossy(&called.stderr)
    );
    let after = run(&["status"]);
    let text = String::from_utf8_lossy(&after.stdout);
    assert!(
        text.contains(&format!(
            "grant: {} scope \"data.read\" from {}: auth token expires in",
            world.resource.url(),
            world.auth_server.url()
        )),
        "{text}"
    );
    assert!(text.contains("refresh token held"), "{text}");
    // No credential is printed.
    let tokens = std::fs::read_to_string(world.dir().join("status-delegate/tokens.json")).unwrap();
    let tokens: Value = serde_json::from_str(&tokens).unwrap();
    for secret in [&tokens[0]["auth_token"], &tokens[0]["refresh_token"]] {
        assert!(!text.contains(secret.as_str().unwrap()), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pseudonymous_agent_gets_through_where_any_signature_will_do_and_says_why_not_elsewhere()
{
    use aauth_agent::{Agent, AgentError, BrowserConsent, Principal, TokenStore};
    let world = world();
    let agent = Agent::new(
        aauth_http::client::SigningClient::new().unwrap(),
        Principal::Pseudonymous(new_key()),
        TokenStore::memory(),
        Arc::new(BrowserConsent),
        aauth_protocol::ids::OriginMode::Dev,
    )
    .unwrap();
    let public = agent
        .call(
            Method::GET,
            at(world.resource.url(), "/public").as_str(),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(public.status, 200, "{}", public.text());
    let error = agent
        .call(
            Method::GET,
            at(world.resource.url(), "/whoami").as_str(),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, AgentError::NoIdentity), "{error}");
    assert!(error.to_string().contains("enrolled delegate"), "{error}");
}
