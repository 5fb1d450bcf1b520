//! The demo's walk, as a test: every level works against the real binaries.

// A test crate: its helpers may unwrap like its tests.
#![allow(clippy::expect_used)]

use std::sync::{Arc, Mutex};

use aauth_e2e::demo;
use aauth_e2e::world::World;

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_walk_succeeds_at_every_level() {
    let mut world = World::start(&demo::options()).expect("the three servers start");
    let transcript = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = transcript.clone();
    let outcomes = demo::run(
        &world,
        Arc::new(move |line: &str| {
            sink.lock().unwrap().push(line.to_owned());
        }),
    )
    .await;
    let failed = match &outcomes {
        Ok(outcomes) => outcomes.iter().filter(|o| !o.ok).map(|o| o.title).collect(),
        Err(_) => vec!["(the walk stopped)"],
    };
    if !failed.is_empty() {
        world.keep();
        panic!(
            "steps failed: {failed:?} ({outcomes:?})\nlogs in {}\n{}",
            world.dir().display(),
            transcript.lock().unwrap().join("\n")
        );
    }
    assert_no_silent_cut(&transcript.lock().unwrap());
    let titles: Vec<_> = outcomes.unwrap().iter().map(|o| o.title).collect();
    assert_eq!(
        titles,
        [
            "unsigned",
            "pseudonymous",
            "identified",
            "autonomous",
            "consent",
            "refresh",
            "rotation"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_multi_hop_steps_succeed() {
    use aauth_e2e::chain::{Chain, ChainOptions};
    use aauth_e2e::demo::Depth;
    let transcript = Arc::new(Mutex::new(Vec::<String>::new()));
    let say = {
        let sink = transcript.clone();
        Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned()))
    };
    let chain = Chain::start(&ChainOptions::default()).expect("six processes start");
    let mut outcomes = vec![demo::run_chain(&chain, say.clone()).await.unwrap()];
    for (depth, options) in [
        (
            Depth::OneLevel,
            ChainOptions {
                consent_for_r2: true,
                ..ChainOptions::default()
            },
        ),
        (
            Depth::TwoLevels,
            ChainOptions {
                consent_for_r3: true,
                ..ChainOptions::default()
            },
        ),
    ] {
        let chain = Chain::start(&options).expect("six processes start");
        outcomes.push(
            demo::run_interaction(&chain, 9, depth, say.clone())
                .await
                .unwrap(),
        );
    }
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.ok).collect();
    assert!(
        failed.is_empty(),
        "{failed:?}\n{}",
        transcript.lock().unwrap().join("\n")
    );
    let titles: Vec<_> = outcomes.iter().map(|o| o.title).collect();
    assert_eq!(titles, ["multi-hop", "interaction 1", "interaction 2"]);
    let lines = transcript.lock().unwrap();
    assert_no_silent_cut(&lines);
    // Every multi-hop step names its parties with their ports, and `act`
    // is explained where it is shown.
    let parties = lines
        .iter()
        .filter(|l| {
            l.contains("agent http://127.0.0.1:") && l.contains("calls R1 http://127.0.0.1:")
        })
        .count();
    assert_eq!(parties, 3, "{}", lines.join("\n"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("(act: null, on its own behalf: its token was not exchanged)")),
        "{}",
        lines.join("\n")
    );
    // Steps 9 and 10: AS2's consent page names whom the asking resource
    // serves (the agent, then R1).
    let serving = lines
        .iter()
        .filter(|l| l.contains("… and that it asks while serving a request from"))
        .count();
    assert_eq!(serving, 2, "{}", lines.join("\n"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("on behalf of the callers named there)")),
        "{}",
        lines.join("\n")
    );
}

/// A line the demo shortens ends with `…`: a JSON body that does not end
/// with its closing brace, or a quoted value without its closing quote, was
/// cut silently.
fn assert_no_silent_cut(lines: &[String]) {
    for line in lines {
        if let Some((_, body)) = line.split_once("answered: ") {
            assert!(body.ends_with('}') || body.ends_with('…'), "{line}");
        }
        if let Some((_, value)) = line.split_once("resource_token=\"") {
            assert!(value.contains('"') || value.ends_with('…'), "{line}");
        }
    }
}

#[test]
fn the_demo_binary_prints_help_and_refuses_unknown_arguments() {
    let demo = aauth_e2e::harness::binary("aauth-demo").expect("cargo build --bins first");
    for flag in ["--help", "-h"] {
        let out = std::process::Command::new(&demo)
            .arg(flag)
            .output()
            .expect("the demo runs");
        assert!(out.status.success(), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("Usage: aauth-demo"), "{text}");
        assert!(text.contains("--keep"), "{text}");
    }
    let out = std::process::Command::new(&demo)
        .arg("--frobnicate")
        .output()
        .expect("the demo runs");
    assert_eq!(out.status.code(), Some(2));
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("unknown argument \"--frobnicate\""),
        "{error}"
    );
    assert!(out.stdout.is_empty(), "no demo was run");
}

/// Starts the demo binary, waits for it to print its run directory, sends
/// it `signal`, and returns its exit code, the directory and the servers'
/// URLs.
fn interrupt_demo(signal: &str) -> (Option<i32>, std::path::PathBuf, Vec<String>) {
    use std::io::{BufRead as _, BufReader};
    let demo = aauth_e2e::harness::binary("aauth-demo").expect("cargo build --bins first");
    let mut child = std::process::Command::new(&demo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the demo starts");
    let stdout = child.stdout.take().expect("its output");
    let mut lines = BufReader::new(stdout).lines();
    let mut urls = Vec::new();
    let mut dir = None;
    for line in lines.by_ref() {
        let line = line.expect("a line");
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(url) = words.iter().find(|w| w.starts_with("http://127.0.0.1:")) {
            urls.push((*url).to_owned());
        }
        if line.trim_start().starts_with("run directory") {
            dir = words.get(2).map(std::path::PathBuf::from);
            break;
        }
    }
    let dir = dir.expect("the demo prints its run directory");
    assert!(dir.is_dir(), "{}", dir.display());
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // Drain the rest of its output, then its exit status.
    for _ in lines {}
    let code = child.wait().expect("the demo exits").code();
    (code, dir, urls)
}

#[test]
fn ctrl_c_or_sigterm_stops_every_server_and_removes_the_run_directory() {
    for (signal, expected) in [("-INT", 130), ("-TERM", 143)] {
        let (code, dir, urls) = interrupt_demo(signal);
        assert_eq!(code, Some(expected), "{signal}");
        assert!(!dir.exists(), "{signal}: {} is left behind", dir.display());
        assert_eq!(urls.len(), 3, "{urls:?}");
        for url in &urls {
            let address = url.trim_start_matches("http://");
            assert!(
                std::net::TcpStream::connect(address).is_err(),
                "{signal}: a server still listens at {url}"
            );
        }
    }
}
