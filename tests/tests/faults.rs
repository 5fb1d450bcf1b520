//! Faults, end to end with the real binaries (profile: P-AS-6, P-AS-8):
//! a crash in the middle of consent, many hands on one code or one refresh
//! token at once, a full disk, a locked database and a read-only one. What
//! was answered must hold afterwards, nothing may be used twice, no
//! half-written state may be accepted, every refusal is a clean P-ERR-1
//! row, and the server recovers when the fault goes away.

// A test crate: its helpers may unwrap like its tests.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use aauth_e2e::world::World;
use aauth_http::client::{Identity, Outgoing};
use common::*;
use serde_json::Value;
use url::Url;

/// The code in a redirect to the agent's callback.
fn code_of(location: &str) -> Option<String> {
    let url = Url::parse(location).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
}

/// `request_type=code` for `code`.
async fn redeem(world: &World, identity: &Identity, code: &str, redirect_uri: &str) -> u16 {
    let reply = token_request(
        world,
        identity,
        &[
            ("request_type", "code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ],
    )
    .await;
    if reply.status != 200 {
        assert_error(&reply, 400, "invalid_grant");
    }
    reply.status.as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_during_consent_loses_no_approval_that_was_answered_and_half_writes_nothing() {
    // E§9.5, P-AS-8: a burst of approvals is cut by SIGKILL. Afterwards an
    // approval whose redirect came back has a code that redeems exactly
    // once; any other request either still waits for the user (and can be
    // approved now) or was answered whole (its code stored with it).
    const REQUESTS: usize = 16;
    let mut world = world();
    let identity = server_identity(&world);
    let mut links = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let token = resource_token(&world, &identity, "data.write").await;
        links.push(consent_link(&world, &identity, &[("resource_token", &token)]).await);
    }
    let mut session = FormSession::sign_in(&links[0].0).await;
    let mut forms = Vec::with_capacity(REQUESTS);
    for (link, _) in &links {
        let page = session.get(link).await;
        assert!(page.body.contains("value=\"approve\""), "{}", page.body);
        forms.push(FormSession::form(
            link,
            &page.body,
            &[("decision", "approve")],
        ));
    }

    let mut burst = tokio::task::JoinSet::new();
    for (i, (action, fields)) in forms.into_iter().enumerate() {
        let (http, cookie) = (session.http.clone(), session.cookie.clone());
        burst.spawn(async move {
            let reply = http
                .post(action)
                .header(reqwest::header::COOKIE, cookie)
                .form(&fields)
                .send()
                .await
                .ok();
            let location = reply.as_ref().and_then(|r| {
                r.headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            });
            (i, reply.map(|r| r.status().as_u16()), location)
        });
    }
    let mut answered: Vec<Option<String>> = vec![None; REQUESTS];
    if let Some(Ok((i, status, location))) = burst.join_next().await {
        assert_eq!(status, Some(303));
        answered[i] = location;
    }
    world.auth_server.kill();
    while let Some(joined) = burst.join_next().await {
        let (i, status, location) = joined.expect("an approval task");
        if status == Some(303) {
            answered[i] = location;
        }
    }
    world
        .restart_auth_server()
        .expect("the auth server restarts");

    let (mut before, mut after, mut lost_answers) = (0, 0, 0);
    for ((link, listener), location) in links.iter().zip(&answered) {
        let redirect_uri = listener.redirect_uri().as_str();
        if let Some(location) = location {
            // Answered before the crash: the code holds, once.
            let code = code_of(location).expect("a code in the redirect");
            assert_eq!(redeem(&world, &identity, &code, redirect_uri).await, 200);
            assert_eq!(redeem(&world, &identity, &code, redirect_uri).await, 400);
            before += 1;
            continue;
        }
        let page = session.get(link).await;
        if page.body.contains("value=\"approve\"") {
            // Still waiting: the user approves now.
            let done = session
                .submit(link, &page.body, &[("decision", "approve")])
                .await;
            assert_eq!(done.status, 303, "{}", done.body);
            let code = code_of(done.location.as_deref().unwrap()).unwrap();
            assert_eq!(redeem(&world, &identity, &code, redirect_uri).await, 200);
            after += 1;
        } else {
            // Answered, the answer lost with the process: the request is
            // used up, and its code was stored with it (counted below).
            assert!(
                page.body.contains("already answered"),
                "{}: {}",
                page.status,
                page.body
            );
            lost_answers += 1;
        }
    }
    assert_eq!(before + after + lost_answers, REQUESTS);
    eprintln!(
        "{before} approvals answered before the crash, {after} approved after it, \
         {lost_answers} answered with the answer lost"
    );
    let database = world.dir().join("auth-server.db");
    assert_eq!(
        count(&database, "SELECT COUNT(*) FROM codes").await,
        lost_answers,
        "every request answered but not redeemed has its code: {before} answered before the \
         crash, {after} approved after it, {lost_answers} answers lost"
    );
    assert_eq!(
        count(&database, "SELECT COUNT(*) FROM pending_requests").await,
        0
    );
}

/// `SELECT COUNT(*) …` on the auth server's database, read as its operator
/// would.
async fn count(database: &Path, query: &'static str) -> usize {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}?mode=ro", database.display());
    let mut connection = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("the database opens");
    let count: i64 = sqlx::query_scalar(query)
        .fetch_one(&mut connection)
        .await
        .expect("a count");
    usize::try_from(count).expect("a count")
}

#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_redemptions_of_one_code_have_exactly_one_winner() {
    // E§9.5: "Authorization codes MUST be single-use".
    const HANDS: usize = 32;
    let world = world();
    let identity = server_identity(&world);
    let token = resource_token(&world, &identity, "data.write").await;
    let (code, redirect_uri) =
        approved_code(&world, &identity, &[("resource_token", &token)]).await;
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..HANDS {
        let (endpoint, identity) = (token_endpoint(&world), identity.clone());
        let form = [
            ("request_type".to_owned(), "code".to_owned()),
            ("code".to_owned(), code.clone()),
            ("redirect_uri".to_owned(), redirect_uri.clone()),
        ];
        burst.spawn(async move {
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            client()
                .send(&identity, Outgoing::post_form(endpoint, &form))
                .await
                .expect("an answer")
        });
    }
    let mut winners = 0;
    while let Some(joined) = burst.join_next().await {
        let reply = joined.expect("a redemption");
        if reply.status == 200 {
            winners += 1;
        } else {
            assert_error(&reply, 400, "invalid_grant");
        }
    }
    assert_eq!(winners, 1);
    let database = world.dir().join("auth-server.db");
    assert_eq!(count(&database, "SELECT COUNT(*) FROM codes").await, 0);
    assert_eq!(
        count(
            &database,
            "SELECT COUNT(*) FROM grants WHERE username IS NOT NULL"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_refreshes_of_one_refresh_token_each_get_a_working_token() {
    // P-AS-6: refresh tokens are not rotated, so every one of many
    // concurrent refreshes is a fresh auth token that the resource takes,
    // and the grant is still there, once, afterwards.
    const HANDS: usize = 32;
    let world = world();
    let delegate = enroll(&world, "d1").await;
    let identity = delegate_identity(&delegate);
    let (_, refresh) = user_grant(&world, &identity, "data.write").await;
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..HANDS {
        let (endpoint, identity, refresh) =
            (token_endpoint(&world), identity.clone(), refresh.clone());
        burst.spawn(async move {
            let form = [("request_type", "refresh"), ("refresh_token", &refresh)];
            client()
                .send(&identity, Outgoing::post_form(endpoint, &form))
                .await
                .expect("an answer")
        });
    }
    let mut tokens = Vec::with_capacity(HANDS);
    while let Some(joined) = burst.join_next().await {
        let reply = joined.expect("a refresh");
        assert_eq!(reply.status, 200, "{}", reply.text());
        let body: Value = reply.json().unwrap();
        assert_eq!(body["refresh_token"], Value::Null, "P-AS-6: not rotated");
        tokens.push(body["auth_token"].as_str().unwrap().to_owned());
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), HANDS, "every auth token is a new one");
    for token in tokens.iter().step_by(8) {
        let authorized = Identity::AuthToken {
            auth_token: token.clone(),
            key: delegate.key.clone(),
        };
        let note = bytes::Bytes::from_static(br#"{"text":"refreshed"}"#);
        let reply = client()
            .send(
                &authorized,
                Outgoing::new(http::Method::POST, at(world.resource.url(), "/data"))
                    .body(note, "application/json"),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
    let database = world.dir().join("auth-server.db");
    assert_eq!(
        count(
            &database,
            "SELECT COUNT(*) FROM grants WHERE username IS NOT NULL"
        )
        .await,
        1
    );
}

/// What the auth server answers to the writes this test makes: a request
/// for Alice's consent (a pending request is written) and the agent
/// server's own grant (a grant is written). Empty when both worked.
async fn write_failures(world: &World) -> Vec<(u16, String)> {
    let identity = server_identity(world);
    let mut failures = Vec::new();
    for (scope, form) in [
        (
            "data.write",
            vec![("redirect_uri", "http://127.0.0.1:9/callback")],
        ),
        ("data.read", vec![]),
    ] {
        let token = resource_token(world, &identity, scope).await;
        let mut fields = vec![("request_type", "auth"), ("resource_token", token.as_str())];
        fields.extend(form);
        let reply = token_request(world, &identity, &fields).await;
        if reply.status != 200 {
            failures.push((
                reply.status.as_u16(),
                reply
                    .error
                    .as_ref()
                    .map(|e| e.error.clone())
                    .unwrap_or_default(),
            ));
        }
    }
    failures
}

/// Both writes of [`write_failures`] are refused as the fault `why` must
/// be: a clean 500 `server_error` (P-ERR-1), nothing else.
async fn assert_writes_refused(world: &World, why: &str) {
    let server_error = (500, "server_error".to_owned());
    assert_eq!(
        write_failures(world).await,
        [server_error.clone(), server_error],
        "{why} is a clean server_error"
    );
}

/// The auth server still answers what needs no write.
async fn reads_still_work(world: &World) {
    for path in ["/.well-known/aauth-issuer", "/.well-known/jwks.json"] {
        let reply = plain()
            .get(format!("{}{path}", world.auth_server.url()))
            .send()
            .await
            .expect("an answer");
        assert_eq!(reply.status(), 200, "{path}");
    }
}

/// Runs `script` with `sh` inside the user and mount namespaces of process
/// `pid` (where its small disk is mounted).
fn in_namespace_of(pid: u32, script: &str) {
    let status = Command::new("nsenter")
        .args([
            "--target",
            &pid.to_string(),
            "--user",
            "--mount",
            "--preserve-credentials",
        ])
        .args(["sh", "-c", script])
        .status()
        .expect("nsenter runs (util-linux)");
    assert!(status.success(), "{script}: {status}");
}

/// The auth server under a wrapper that gives it a disk of its own: a
/// 4 MiB tmpfs at `disk`, mounted in a new user and mount namespace (no
/// privilege needed where unprivileged user namespaces are allowed, as on
/// Debian and Ubuntu), holding its database.
fn on_a_small_disk(world: &mut World, disk: &Path) {
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
        .output()
        .expect("unshare runs (util-linux)");
    assert!(
        probe.status.success(),
        "this test needs user namespaces to mount a small disk for the database \
         (unshare --user --map-root-user --mount): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    std::fs::create_dir_all(disk).unwrap();
    let wrapper: Vec<String> = [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        "mount -t tmpfs -o size=4m tmpfs \"$0\" && exec \"$@\"",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([disk.display().to_string()])
    .collect();
    let database = disk.join("auth-server.db").display().to_string();
    world
        .restart_auth_server_with(&wrapper, &["--database".to_owned(), database])
        .expect("the auth server starts on its small disk");
}

fn log_of(world: &World) -> String {
    std::fs::read_to_string(world.auth_server.log()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_gives_clean_server_errors_and_the_server_recovers() {
    let mut world = world();
    let disk: PathBuf = world.dir().join("small-disk");
    on_a_small_disk(&mut world, &disk);
    let pid = world.auth_server.pid().unwrap();
    assert_eq!(write_failures(&world).await, [], "before the fault");

    // Fill the disk to the last byte.
    let filler = disk.join("filler");
    in_namespace_of(
        pid,
        &format!(
            "dd if=/dev/zero of='{}' bs=64k 2>/dev/null; true",
            filler.display()
        ),
    );
    assert_writes_refused(&world, "a full disk").await;
    reads_still_work(&world).await;

    // Space again: the same process serves writes again.
    in_namespace_of(pid, &format!("rm '{}'", filler.display()));
    assert_eq!(write_failures(&world).await, [], "after the fault");
    assert_eq!(world.auth_server.pid(), Some(pid), "the same process");
    let log = log_of(&world);
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_database_gives_clean_errors_and_the_server_recovers() {
    // Another process (a backup, an operator's shell) holds the write lock
    // longer than the server's 5 s busy timeout.
    use sqlx::Connection as _;
    let world = world();
    assert_eq!(write_failures(&world).await, [], "before the fault");
    let url = format!("sqlite://{}", world.dir().join("auth-server.db").display());
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .unwrap();
    assert_writes_refused(&world, "a locked database").await;
    reads_still_work(&world).await;
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    assert_eq!(write_failures(&world).await, [], "after the fault");
    assert!(!log_of(&world).contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_database_stops_the_start_with_one_clear_error_and_nothing_is_lost() {
    // A read-only file is found at start, not at the first write: the
    // server says so and exits; writable again, it starts with its state.
    let mut world = world();
    let identity = server_identity(&world);
    let (_, refresh) = direct_grant(&world).await;
    world.auth_server.stop();
    let database = world.dir().join("auth-server.db");
    let read_only = world.dir().join("read-only");
    std::fs::create_dir_all(&read_only).unwrap();
    // Copied onto a disk mounted read-only (a file mode would not stop
    // root, which CI runs as).
    let wrapper: Vec<String> = [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        "mount -t tmpfs tmpfs \"$0\" && cp \"$1\" \"$0\"/ && mount -o remount,ro \"$0\" && shift && exec \"$@\"",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([read_only.display().to_string(), database.display().to_string()])
    .collect();
    let copy = read_only.join("auth-server.db").display().to_string();
    let error = world
        .restart_auth_server_with(&wrapper, &["--database".to_owned(), copy])
        .expect_err("no start on a read-only database");
    let text = error.to_string();
    assert!(
        text.contains("cannot be written: Read-only file system"),
        "the reason, in words: {text}"
    );
    assert!(!text.contains("panicked"), "{text}");

    world
        .restart_auth_server()
        .expect("writable again, it starts");
    let reply = token_request(
        &world,
        &identity,
        &[("request_type", "refresh"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "the grant is still there: {}",
        reply.text()
    );
}
