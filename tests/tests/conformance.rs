//! The self-check: `aauth-conformance`, run as a user runs it, against this
//! project's own three servers. Every check must pass, none may be skipped,
//! and the JSON and JUnit reports must say the same as the exit status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;

use aauth_e2e::harness::{SuiteAgent, binary};
use aauth_e2e::world::{ALICE, ALICE_PASSWORD, Options, World};
use serde_json::Value;

/// The suite sends a few hundred signed requests in seconds; the demo's
/// rate tiers would answer 429 long before that. Only the unsigned tier
/// stays small, for the rate-limit probe to meet.
fn world() -> World {
    World::start(&Options {
        rate_limits: [5, 10_000, 10_000, 10_000],
        ..Options::default()
    })
    .expect("the three servers start")
}

/// The JSON report, after checking the exit status and the JUnit report
/// agree with it.
fn run_suite(dir: &Path, name: &str, args: &[&str]) -> Value {
    let json = dir.join(format!("{name}.json"));
    let junit = dir.join(format!("{name}.xml"));
    let output = Command::new(binary("aauth-conformance").unwrap())
        .args(args)
        .args(["--quiet", "--deadline", "300", "--json"])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        report["summary"]["failed"],
        0,
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["summary"]["skipped"], 0, "{stdout}");
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains(" 0 failed, 0 skipped"), "{stdout}");
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["verdict"] == "pass"));
    assert_junit(&std::fs::read_to_string(&junit).unwrap(), checks.len());
    report
}

/// Well-formed XML: one `testsuites` holding one `testsuite` whose `tests`
/// count is the number of `testcase` elements, none failed or skipped.
fn assert_junit(xml: &str, checks: usize) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut roots, mut suites, mut cases, mut failures) = (0, 0, 0, 0);
    let mut declared = None;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e) | Event::Empty(e)) => match e.name().as_ref() {
                b"testsuites" => roots += 1,
                b"testsuite" => {
                    suites += 1;
                    declared = e
                        .try_get_attribute("tests")
                        .unwrap()
                        .map(|a| String::from_utf8(a.value.to_vec()).unwrap());
                }
                b"testcase" => cases += 1,
                b"failure" | b"skipped" | b"error" => failures += 1,
                _ => {}
            },
            Ok(_) => {}
            Err(e) => panic!("not well-formed XML at {}: {e}", reader.error_position()),
        }
    }
    assert_eq!((roots, suites, cases, failures), (1, 1, checks, 0));
    assert_eq!(declared, Some(checks.to_string()));
}

#[test]
fn every_resource_check_passes_with_at_least_80_hostile_cases() {
    let world = world();
    let report = run_suite(
        world.dir(),
        "resource",
        &[
            "resource",
            world.resource.url(),
            "--user",
            ALICE,
            "--password",
            ALICE_PASSWORD,
            "--rate-probe",
            "50",
        ],
    );
    let hostile = report["summary"]["hostile"].as_u64().unwrap();
    assert!(hostile >= 80, "{hostile} hostile cases");
    // The walk reached every level, through Alice's consent and a refresh.
    let ids: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for id in [
        "resource.walk.unsigned",
        "resource.walk.pseudonymous",
        "resource.walk.agent-server",
        "resource.walk.delegate",
        "resource.walk.authorize",
        "resource.walk.authorized",
        "resource.walk.refreshed",
        "resource.walk.insufficient-scope",
        "resource.walk.insufficient-scope-token",
        "resource.rotation.reused-kid",
        "resource.rate.unsigned",
    ] {
        assert!(ids.contains(&id), "{id} did not run");
    }
}

#[test]
fn every_auth_server_check_passes() {
    let world = world();
    let report = run_suite(
        world.dir(),
        "auth-server",
        &[
            "auth-server",
            world.auth_server.url(),
            "--user",
            ALICE,
            "--password",
            ALICE_PASSWORD,
        ],
    );
    assert!(report["summary"]["hostile"].as_u64().unwrap() >= 20);
}

#[test]
fn every_agent_server_check_passes_and_uses_the_code_up() {
    let world = world();
    let code = world.mint_code(None).unwrap();
    run_suite(
        world.dir(),
        "agent-server",
        &["agent-server", world.agent_server.url(), "--code", &code],
    );
    // The suite enrolled with it: it cannot be used again.
    let again = Command::new(binary("aauth-conformance").unwrap())
        .args([
            "agent-server",
            world.agent_server.url(),
            "--code",
            &code,
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stdout).contains("FAIL   agent-server.enroll.valid"));
}

#[test]
fn a_target_that_does_not_answer_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let output = Command::new(binary("aauth-conformance").unwrap())
        .args(["resource", "http://127.0.0.1:9", "--quiet", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["checks"][0]["id"], "resource.discovery.metadata");
    assert_eq!(report["checks"][0]["verdict"], "fail");
    assert!(
        report["checks"][0]["got"]
            .as_str()
            .unwrap()
            .contains("connection failed")
    );
}

/// The agent role: the suite serves its resource, our CLI makes the calls
/// it asks for, and every check passes.
#[test]
fn every_agent_check_passes_for_our_cli() {
    let port = aauth_e2e::harness::free_port();
    let world = World::start(&Options {
        auth_config: format!(
            "[[autonomous]]\nagent = \"{{agent_url}}\"\nresource = \"http://127.0.0.1:{port}\"\n\
             scopes = [\"data.read\", \"data.write\"]\n"
        ),
        ..Options::default()
    })
    .unwrap();
    let json = world.dir().join("agent.json");
    let suite = SuiteAgent::start(&[
        "--quiet",
        "--wait",
        "60",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--auth-server",
        world.auth_server.url(),
        "--json",
        json.to_str().unwrap(),
    ])
    .unwrap();
    let url = suite.url().to_owned();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(world.enroll_delegate("delegate")).unwrap();
    let state = world.dir().join("delegate");
    for (method, path, data) in [
        ("GET", "/public", None),
        ("GET", "/whoami", None),
        ("GET", "/data", None),
        ("POST", "/data", Some(r#"{"text":"from the self-check"}"#)),
    ] {
        let mut call = Command::new(binary("aauth-agent-server").unwrap());
        call.args(["call", "--dev", "--state-dir"])
            .arg(&state)
            .args([method, &format!("{url}{path}")]);
        if let Some(data) = data {
            call.args(["--data", data]);
        }
        let output = call.output().unwrap();
        assert!(
            output.status.success(),
            "{method} {path}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let (success, table) = suite.finish();
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    assert_eq!(report["summary"]["skipped"], 0, "{report:#}");
    assert_eq!(report["summary"]["total"], 11);
    assert!(success, "{table}");
}
