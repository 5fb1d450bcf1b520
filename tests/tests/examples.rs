//! The examples a user copies, run as a user would: `examples/agent-call`
//! calls the demo's resource as an enrolled delegate and climbs to the
//! level each endpoint needs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failure here is a test failure"
)]

use std::process::Command;

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
