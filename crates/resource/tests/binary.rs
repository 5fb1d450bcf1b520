//! Socket-level smoke tests of the `aauth-resource` binary: the ready line,
//! a real request, the key kept on disk, start-up errors, and a clean exit
//! on SIGTERM.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failure here is a test failure"
)]

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_aauth-resource");

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("aauth-resource-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `serve --dev` in `state_dir` and returns it with its URL.
async fn start(state_dir: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .args(["--auth-server", "http://127.0.0.1:9"])
        .arg("--state-dir")
        .arg(state_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("the ready line in time")
        .unwrap()
        .expect("a ready line");
    let url = line
        .strip_prefix("listening url=")
        .expect("listening url=…");
    (child, url.to_owned())
}

async fn terminate(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

async fn get_json(client: &reqwest::Client, url: String) -> serde_json::Value {
    let bytes = client.get(url).send().await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn serves_metadata_keeps_its_key_and_exits_cleanly() {
    let dir = temp_dir("smoke");
    let (child, url) = start(&dir).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let client = reqwest::Client::new();
    let md = get_json(&client, format!("{url}/.well-known/aauth-resource")).await;
    assert_eq!(md["resource"], url.as_str());
    let jwks = |url: String| {
        let client = client.clone();
        async move {
            let v = get_json(&client, format!("{url}/.well-known/jwks.json")).await;
            v["keys"][0]["kid"].as_str().unwrap().to_owned()
        }
    };
    let kid = jwks(url.clone()).await;
    // Unsigned at an identified endpoint: 401 with its challenge.
    let whoami = client.get(format!("{url}/whoami")).send().await.unwrap();
    assert_eq!(whoami.status(), 401);
    assert_eq!(whoami.headers()["agent-auth"], "httpsig;identity");
    terminate(child).await;
    assert!(dir.join("key.json").exists());

    // Restarted, it signs with the same key.
    let (child, url) = start(&dir).await;
    assert_eq!(jwks(url).await, kid);
    terminate(child).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn without_an_auth_server_it_refuses_to_start() {
    let dir = temp_dir("no-as");
    let output = Command::new(BIN)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(&dir)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no ready line");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("auth_server is required"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
