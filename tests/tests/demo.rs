//! The demo's walk, as a test: every level works against the real binaries.

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
