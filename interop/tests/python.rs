//! Live interop with PyPI `aauth` 0.1.0, both ways, on loopback: its agent
//! against our resource and auth server, our agent against its resource,
//! and the conformance suite against its resource, whose failures must be
//! exactly the ones `interop/expected/python-resource.txt` records.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::process::Command;

use aauth_e2e::harness::{Party, SuiteAgent, binary, free_port};
use aauth_e2e::world::{ALICE, ALICE_PASSWORD, Options, World};
use aauth_interop::{Server, agent, root};
use serde_json::Value;

/// Our three servers with the peer's encodings accepted (P-SIG-7's
/// `--lenient-base64`), a rule that lets the peer's agent on `peer_agent`
/// read notes at our resource, and one that lets our agent server read
/// them at the peer's resource on `peer_resource`.
fn world(peer_agent: u16, peer_resource: u16) -> World {
    World::start(&Options {
        rate_limits: [10_000; 4],
        server_args: vec!["--lenient-base64".into()],
        auth_config: format!(
            r#"
[[autonomous]]
agent = "http://127.0.0.1:{peer_agent}"
resource = "{{resource_url}}"
scopes = ["data.read"]

[[autonomous]]
agent = "{{agent_url}}"
resource = "http://127.0.0.1:{peer_resource}"
scopes = ["data.read"]
"#
        ),
        ..Options::default()
    })
    .expect("the three servers start")
}

fn calls(resource: &str, list: &[(&str, &str, &str)]) -> Vec<String> {
    list.iter()
        .map(|(scheme, method, path)| format!("{scheme},{method},{resource}{path}"))
        .collect()
}

#[test]
fn their_agent_reaches_every_level_of_our_resource_with_our_auth_servers_token() {
    let port = free_port();
    let world = world(port, free_port());
    let run = agent(
        port,
        &calls(
            world.resource.url(),
            &[
                ("hwk", "GET", "/public"),
                ("hwk", "GET", "/whoami"),
                ("jwks", "GET", "/whoami"),
                ("jwt", "GET", "/whoami"),
                ("jwt", "GET", "/data"),
            ],
        ),
    )
    .unwrap();
    assert_eq!(
        run.statuses(),
        [
            "request 200",
            // Pseudonymous at an identified endpoint: asked to identify.
            "request 401",
            "request 200",
            "request 200",
            // The step-up, the auth token from our auth server, the retry.
            "request 401",
            "auth 200",
            "retry 200",
        ],
        "{:#?}\n{}",
        run.steps,
        run.stderr
    );
    let whoami: Value = serde_json::from_str(run.steps[3]["body"].as_str().unwrap()).unwrap();
    assert_eq!(whoami["level"], "identified");
    assert_eq!(whoami["scheme"], "jwt");
    assert_eq!(whoami["delegate"], "delegate-1");
}

#[test]
fn a_strict_resource_refuses_their_signature_and_names_the_quirk() {
    let port = free_port();
    let world = World::start(&Options::default()).unwrap();
    let run = agent(
        port,
        &calls(world.resource.url(), &[("hwk", "GET", "/public")]),
    )
    .unwrap();
    assert_eq!(run.statuses(), ["request 401"], "{:#?}", run.steps);
    let body: Value = serde_json::from_str(run.steps[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_signature");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("padded base64") && description.contains("base64url"),
        "{description}"
    );
}

#[test]
fn our_agent_reaches_every_level_of_their_resource() {
    let peer_port = free_port();
    let world = world(free_port(), peer_port);
    let peer = peer_resource(&world, peer_port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(world.enroll_delegate("delegate")).unwrap();
    let state = world.dir().join("delegate");
    for (path, level) in [
        ("/public", None),
        ("/whoami", Some("identified")),
        ("/data", Some("authorized")),
    ] {
        let output = Command::new(binary("aauth-agent-server").unwrap())
            .args(["call", "--dev", "--compat", "py-early", "--state-dir"])
            .arg(&state)
            .args(["GET", &format!("{}{path}", peer.url())])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{path}: {stderr}");
        assert!(stderr.contains("→ 200 OK"), "{path}: {stderr}");
        if let Some(level) = level {
            assert!(stderr.contains(&format!("({level})")), "{path}: {stderr}");
        }
    }
}

/// Their resource on `port`, trusting `world`'s auth server.
fn peer_resource(world: &World, port: u16) -> Server {
    Server::start(&[
        "resource",
        "--port",
        &port.to_string(),
        "--auth-server",
        world.auth_server.url(),
    ])
    .unwrap()
}

/// What an expected-results file says: check id → what the peer does.
fn expected(file: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("expected").join(file)).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, what) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (id.to_owned(), what.trim().to_owned())
        })
        .collect()
}

/// Runs the suite (`--compat py-early`) with `args` and checks that what
/// did not pass is exactly what `file` records; the report's checks.
fn suite_finds_what_is_recorded(args: &[&str], file: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let output = Command::new(binary("aauth-conformance").unwrap())
        .args(args)
        .args(["--compat", "py-early", "--quiet", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let checks = report["checks"].as_array().unwrap().clone();
    let found: BTreeMap<String, String> = checks
        .iter()
        .filter(|c| c["verdict"] != "pass")
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["got"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = expected(file);
    let new: Vec<String> = found
        .iter()
        .filter(|(id, _)| !expected.contains_key(*id))
        .map(|(id, got)| format!("  {id}: {got}"))
        .collect();
    let gone: Vec<&String> = expected
        .keys()
        .filter(|id| !found.contains_key(*id))
        .collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "the peer's results changed.\nnewly failing or skipped:\n{}\nno longer failing: {gone:?}\n\
         (update interop/expected/{file} once the change is understood)",
        new.join("\n")
    );
    let failed = checks.iter().any(|c| c["verdict"] == "fail");
    assert_eq!(output.status.code(), Some(if failed { 1 } else { 0 }));
    checks
}

fn passed(checks: &[Value], id: &str) -> bool {
    checks
        .iter()
        .any(|c| c["id"] == id && c["verdict"] == "pass")
}

#[test]
fn the_suite_finds_in_their_resource_exactly_what_the_expected_results_record() {
    let peer_port = free_port();
    let world = world(free_port(), peer_port);
    let peer = peer_resource(&world, peer_port);
    let checks = suite_finds_what_is_recorded(
        &[
            "resource",
            peer.url(),
            "--user",
            ALICE,
            "--password",
            ALICE_PASSWORD,
        ],
        "python-resource.txt",
    );
    // The level walk itself works between the two implementations.
    for id in [
        "resource.walk.agent-server",
        "resource.walk.delegate",
        "resource.walk.authorize",
        "resource.walk.authorized",
        "resource.walk.insufficient-scope",
    ] {
        assert!(passed(&checks, id), "{id}");
    }
}

#[test]
fn the_suite_finds_in_their_auth_server_exactly_what_the_expected_results_record() {
    let peer = Server::start(&["auth-server"]).unwrap();
    let checks =
        suite_finds_what_is_recorded(&["auth-server", peer.url()], "python-auth-server.txt");
    // Our resource tokens' shape is theirs: the grant and its claims pass.
    for id in ["auth-server.auth.valid", "auth-server.auth-token.claims"] {
        assert!(passed(&checks, id), "{id}");
    }
}

/// Our resource trusting their auth server: our agent steps up at our
/// resource, gets the auth token from their auth server, and our resource
/// accepts it.
#[test]
fn our_resource_accepts_their_auth_servers_token() {
    let world = World::start(&Options::default()).unwrap();
    let peer = Server::start(&["auth-server"]).unwrap();
    let port = free_port();
    let resource = Party::start(
        "aauth-resource",
        "resource-trusting-the-peer",
        &[
            "serve".into(),
            "--dev".into(),
            "--lenient-base64".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--auth-server".into(),
            peer.url().to_owned(),
            "--state-dir".into(),
            world.dir().display().to_string(),
            "--key-file".into(),
            "resource-trusting-the-peer.json".into(),
        ],
        world.dir(),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(world.enroll_delegate("delegate")).unwrap();
    let output = Command::new(binary("aauth-agent-server").unwrap())
        .args(["call", "--dev", "--compat", "py-early", "--state-dir"])
        .arg(world.dir().join("delegate"))
        .args(["GET", &format!("{}/data", resource.url())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("asking {} for an auth token", peer.url())),
        "{stderr}"
    );
    assert!(
        stderr.contains("signed jwt auth token (authorized)\n* → 200 OK"),
        "{stderr}"
    );
}

/// The suite's agent role, graded on their agent: it serves a resource that
/// reads the peer's encodings (`--compat py-early`), their agent makes the
/// calls, and every check passes — with the peer's own options for a
/// covered `Nonce` and body components turned on by the driver.
#[test]
fn their_agent_passes_the_suites_agent_checks() {
    let (agent_port, suite_port) = (free_port(), free_port());
    let world = World::start(&Options {
        server_args: vec!["--lenient-base64".into()],
        auth_config: format!(
            "[[autonomous]]\nagent = \"http://127.0.0.1:{agent_port}\"\n\
             resource = \"http://127.0.0.1:{suite_port}\"\nscopes = [\"data.read\", \"data.write\"]\n"
        ),
        ..Options::default()
    })
    .unwrap();
    let json = world.dir().join("agent.json");
    let suite = SuiteAgent::start(&[
        "--compat",
        "py-early",
        "--quiet",
        "--wait",
        "60",
        "--listen",
        &format!("127.0.0.1:{suite_port}"),
        "--auth-server",
        world.auth_server.url(),
        "--json",
        json.to_str().unwrap(),
    ])
    .unwrap();
    let url = suite.url().to_owned();
    let run = agent(
        agent_port,
        &[
            format!("hwk,GET,{url}/public"),
            format!("jwt,GET,{url}/whoami"),
            format!("jwt,GET,{url}/data"),
            format!(r#"jwt,POST,{url}/data,{{"text":"from the Python peer"}}"#),
        ],
    )
    .unwrap();
    assert!(run.success, "{:#?}\n{}", run.steps, run.stderr);
    let (success, table) = suite.finish();
    assert!(success, "{table}");
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    assert_eq!(report["summary"]["total"], 11);
}
