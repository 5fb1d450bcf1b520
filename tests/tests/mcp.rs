//! MCP over AAuth, end to end: `examples/mcp-server` (rmcp, streamable
//! HTTP, its tools gated by `aauth_axum::mcp::McpNeeds`) called by
//! `examples/mcp-agent` (rmcp's client over `aauth_agent::mcp::McpAgent`)
//! as an enrolled delegate, through the real auth server, with a played
//! user at its consent page.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failure here is a test failure"
)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use aauth_agent::ConsentHandler;
use aauth_e2e::harness::{Party, free_port};
use aauth_e2e::user::{Decision, PlayedUser};
use aauth_e2e::world::{ALICE, ALICE_PASSWORD, Options, World};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use url::Url;

/// What one run of `mcp-agent` printed, and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `mcp-agent` as the delegate in `state`; when it prints a consent
/// address, a user who decides `decision` answers it.
async fn mcp_agent(
    world: &World,
    state: &str,
    url: &str,
    args: &[&str],
    decision: Option<Decision>,
) -> Run {
    let binary: PathBuf =
        aauth_e2e::harness::binary("mcp-agent").expect("cargo build --bins first");
    let mut child = tokio::process::Command::new(binary)
        .current_dir(world.dir())
        .env("CI", "true")
        .args(["--dev", "--state-dir", state, url])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            stderr.push(line.clone());
            let Some(decision) = decision else { continue };
            if let Some(rest) = line.trim().strip_prefix("http")
                && rest.contains("/agent/auth?")
            {
                let link = Url::parse(&format!("http{rest}")).unwrap();
                let user = PlayedUser::new(ALICE, ALICE_PASSWORD, decision, Arc::new(|_| {}));
                // The user's browser follows the redirect back to the
                // agent's loopback callback.
                let _ = user.present(&link).await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("mcp-agent ends within a minute");
    let output = child.wait_with_output().await.unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: stderr.join("\n"),
    }
}

/// `examples/mcp-server` on a free loopback port, trusting the world's
/// auth server.
fn mcp_server(world: &World) -> (Party, u16) {
    let port = free_port();
    let server = Party::start(
        "mcp-server",
        "mcp-server",
        &[
            "--dev".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--auth-server".into(),
            world.auth_server.url().to_owned(),
        ],
        world.dir(),
    )
    .expect("cargo build --bins first");
    (server, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_tools_need_their_levels_and_the_agent_climbs_with_consent() {
    let world = World::start(&Options::default()).unwrap();
    let (server, port) = mcp_server(&world);
    let mcp = format!("{}/mcp", server.url().trim_end_matches("/mcp"));
    assert_eq!(mcp, format!("http://127.0.0.1:{port}/mcp"));
    let alice = world.enroll_delegate("alice-agent").await.unwrap();
    world.enroll_delegate("bob-agent").await.unwrap();
    world.enroll_delegate("carol-agent").await.unwrap();

    // Listing needs any signature.
    let listed = mcp_agent(&world, "alice-agent", &mcp, &[], None).await;
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert!(listed.stdout.contains("read_notes: "), "{}", listed.stdout);
    assert!(listed.stdout.contains("add_note: "), "{}", listed.stdout);

    // read_notes needs an identity: the agent re-signs with its agent
    // token (E§4.2) and the tool sees who called.
    let read = mcp_agent(&world, "alice-agent", &mcp, &["read_notes"], None).await;
    assert_eq!(read.code, Some(0), "{}", read.stderr);
    assert!(
        read.stdout.contains(&format!(
            "0 note(s), read by agent {}",
            world.agent_origin().unwrap()
        )),
        "{}",
        read.stdout
    );

    // add_note needs notes.write: resource token, auth server, alice's
    // consent, auth token, and the call sent again (E§4.3, E§9).
    let added = mcp_agent(
        &world,
        "alice-agent",
        &mcp,
        &["add_note", r#"{"text":"hello from MCP"}"#],
        Some(Decision::Approve),
    )
    .await;
    assert_eq!(added.code, Some(0), "{}", added.stderr);
    assert!(added.stdout.contains("note 1 added"), "{}", added.stdout);
    assert_eq!(
        added.stderr.matches("/agent/auth?").count(),
        1,
        "one consent: {}",
        added.stderr
    );
    // The host showed the consent address as an MCP URL elicitation.
    assert!(
        added.stderr.contains("(an MCP elicitation)"),
        "{}",
        added.stderr
    );
    // The grant is kept: the next write asks nobody.
    let again = mcp_agent(
        &world,
        "alice-agent",
        &mcp,
        &["add_note", r#"{"text":"and again"}"#],
        None,
    )
    .await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(!again.stderr.contains("/agent/auth?"), "{}", again.stderr);

    // Bob's user says no: the tool call ends as an MCP error the client
    // can act on (code -32001 with the reason), not a transport failure.
    let denied = mcp_agent(
        &world,
        "bob-agent",
        &mcp,
        &["add_note", r#"{"text":"not allowed"}"#],
        Some(Decision::Deny),
    )
    .await;
    assert_eq!(denied.code, Some(2), "{}", denied.stderr);
    assert!(
        denied.stderr.contains("MCP error -32001"),
        "{}",
        denied.stderr
    );
    assert!(denied.stderr.contains("access_denied"), "{}", denied.stderr);

    // A client that cannot show elicitations: the agent shows the address
    // itself, and the call ends the same way.
    let plain = mcp_agent(
        &world,
        "carol-agent",
        &mcp,
        &[
            "--no-elicitation",
            "add_note",
            r#"{"text":"no elicitation"}"#,
        ],
        Some(Decision::Approve),
    )
    .await;
    assert_eq!(plain.code, Some(0), "{}", plain.stderr);
    assert!(plain.stdout.contains("note 3 added"), "{}", plain.stdout);
    assert!(
        !plain.stderr.contains("MCP elicitation"),
        "{}",
        plain.stderr
    );
    assert_eq!(
        plain.stderr.matches("/agent/auth?").count(),
        1,
        "{}",
        plain.stderr
    );

    // The board holds alice's two notes and carol's, each under the
    // delegate that wrote it (the auth token names no user without `openid`, E§7.4).
    let read = mcp_agent(&world, "alice-agent", &mcp, &["read_notes"], None).await;
    assert!(read.stdout.contains("3 note(s)"), "{}", read.stdout);
    assert!(
        read.stdout
            .contains(&format!("- {}: hello from MCP", alice.record.sub)),
        "{}",
        read.stdout
    );
    assert!(!read.stdout.contains("not allowed"), "{}", read.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mcp_gate_answers_unsigned_and_unreadable_calls_before_the_server() {
    let world = World::start(&Options::default()).unwrap();
    let (_server, port) = mcp_server(&world);
    let http = reqwest::Client::new();
    let post = |body: &'static str| {
        http.post(format!("http://127.0.0.1:{port}/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
    };
    // No signature: the AAuth error and challenge, not a JSON-RPC answer.
    let unsigned = post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    assert!(unsigned.headers().contains_key("agent-auth"));
    // A call whose tool cannot be read with certainty is refused as it is.
    let twice = post(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes","name":"add_note"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(twice.status(), 400);
    let body: serde_json::Value = serde_json::from_slice(&twice.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    // The resource's documents are served beside the MCP endpoint.
    let metadata = http
        .get(format!(
            "http://127.0.0.1:{port}/.well-known/aauth-resource"
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let metadata: serde_json::Value = serde_json::from_slice(&metadata).unwrap();
    assert!(
        metadata["scope_descriptions"]["notes.write"].is_string(),
        "{metadata}"
    );
}
