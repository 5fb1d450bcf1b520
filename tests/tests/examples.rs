//! The examples a user copies, run as a user would: `examples/agent-call`
//! calls the demo's resource as an enrolled delegate and climbs to the
//! level each endpoint needs; `examples/protected-axum`, an axum service
//! protected with `aauth-axum`, is called the same way through the real
//! auth server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failure here is a test failure"
)]

use std::process::Command;

use aauth_e2e::harness::{Party, free_port};
use aauth_e2e::world::{Options, World};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn agent_call_climbs_to_the_level_each_endpoint_needs() {
    let world = World::start(&Options::default()).unwrap();
    let delegate = world.enroll_delegate("example-delegate").await.unwrap();
    let binary = aauth_e2e::harness::binary("agent-call").expect("cargo build --bins first");
    let call = |path: &str| {
        let output = Command::new(&binary)
            .current_dir(world.dir())
            .env("CI", "true")
            .args([
                "--dev",
                &format!("{}{path}", world.resource.url()),
                "example-delegate",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{path}: {stderr}");
        assert!(stderr.contains("HTTP 200"), "{path}: {stderr}");
        let body: Value = serde_json::from_slice(&output.stdout).unwrap();
        body
    };
    // An identity: the delegate's agent token (E§4.2).
    let whoami = call("/whoami");
    assert_eq!(whoami["level"], "identified", "{whoami}");
    assert_eq!(whoami["delegate"], delegate.record.sub.as_str(), "{whoami}");
    // An auth token, granted without the user by the world's policy (E§3.4).
    let notes = call("/data");
    assert!(notes["notes"].is_array(), "{notes}");
    // The grant was kept in the delegate's state for the next call.
    assert!(world.dir().join("example-delegate/tokens.json").is_file());

    let usage = Command::new(&binary).output().unwrap();
    assert!(!usage.status.success());
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage: agent-call"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_axum_service_protected_with_aauth_axum_is_called_by_the_agent_library() {
    // The auth server lets the agent read greetings without the user (E§3.4).
    let port = free_port();
    let service_url = format!("http://127.0.0.1:{port}");
    let world = World::start(&Options {
        auth_config: format!(
            "[[autonomous]]\nagent = \"{{agent_url}}\"\nresource = \"{service_url}\"\n\
             scopes = [\"greetings.read\"]\n"
        ),
        ..Options::default()
    })
    .unwrap();
    let service = Party::start(
        "protected-axum",
        "protected-axum",
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
    assert_eq!(service.url(), service_url);
    let delegate = world.enroll_delegate("greeter").await.unwrap();
    let binary = aauth_e2e::harness::binary("agent-call").unwrap();
    let call = |path: &str| {
        Command::new(&binary)
            .current_dir(world.dir())
            .env("CI", "true")
            .args(["--dev", &format!("{service_url}{path}"), "greeter"])
            .output()
            .unwrap()
    };
    let whoami = call("/whoami");
    let said = String::from_utf8_lossy(&whoami.stdout);
    assert!(
        whoami.status.success(),
        "{}",
        String::from_utf8_lossy(&whoami.stderr)
    );
    assert!(
        said.contains(&format!("delegate {}", delegate.record.sub)),
        "{said}"
    );
    // The greeting needs an auth token: the agent gets the service's
    // resource token from its challenge, the auth server verifies it
    // against the service's metadata and key set, and grants.
    let greeting = call("/greeting");
    let said = String::from_utf8_lossy(&greeting.stdout);
    assert!(
        greeting.status.success(),
        "{}",
        String::from_utf8_lossy(&greeting.stderr)
    );
    assert_eq!(said.trim(), "Good morning, agent!");
}
