//! Floods against the real binaries on loopback: what a server does when a
//! client sends more than it can remember or hold. Each run is bounded in
//! count and time.

// A test crate: its helpers may unwrap and panic like its tests.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use aauth_e2e::world::Options;
use aauth_http::client::{Identity, Outgoing};
use aauth_protocol::httpsig::Nonce;
use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread")]
async fn a_nonce_flood_past_the_replay_cache_bound_is_refused_and_no_replay_passes() {
    // profile: P-SIG-6. A replay cache that forgets entries early lets a
    // flood of fresh nonces push a captured one out, and then accepts its
    // replay. Ours refuses what it cannot remember (503 with Retry-After),
    // bounds each client's share, and never accepts a replay.
    let world = start(&Options {
        resource_config: "[replay_cache]\ncapacity = 400\nper_client = 150\n".to_owned(),
        ..Options::default()
    });
    let url = at(world.resource.url(), "/public");
    let signed_get = |identity: &Identity| {
        client()
            .sign(
                identity,
                Outgoing::get(url.clone()).nonce(Nonce::generate().unwrap()),
            )
            .unwrap()
    };

    // Fresh hwk keys, all from 127.0.0.1: one client by its address.
    let mut accepted = Vec::new();
    for i in 0..200 {
        let signed = signed_get(&Identity::Hwk(new_key()));
        let reply = send(signed.clone()).await;
        match reply.status.as_u16() {
            200 => accepted.push(signed),
            503 => {
                assert_error(&reply, 503, "temporarily_unavailable");
                let retry_after: u64 = reply.headers["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=121).contains(&retry_after), "{retry_after}");
                assert!(reply.agent_auth().is_none(), "no challenge would help");
            }
            other => panic!("request {i}: {other} {}", reply.text()),
        }
    }
    assert_eq!(accepted.len(), 150, "the client's share, then refusals");

    // A key with an identity is a client of its own: it still gets in.
    let reply = send(signed_get(&server_identity(&world))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // Every accepted request, replayed inside its window, is refused.
    for signed in accepted {
        assert_error(&send(signed).await, 401, "replayed_nonce");
    }
}

/// The address of a party's URL.
fn address(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Sends `head` and then one more byte every 200 ms, never finishing the
/// headers; returns how long the server kept the connection open.
async fn trickle(address: String, head: &'static [u8]) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    if !head.is_empty() {
        stream.write_all(head).await.unwrap();
    }
    let mut buffer = [0u8; 1024];
    while started.elapsed() < Duration::from_secs(10) {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await {
            // Closed (or answered and closed): the server gave up on it.
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) if head.is_empty() => {}
            Err(_) => {
                if stream.write_all(b"a").await.is_err() {
                    return started.elapsed();
                }
            }
        }
    }
    panic!("{address}: a connection that never finished its headers was kept for 10 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn half_sent_headers_and_silent_connections_are_closed_on_every_server() {
    // A client that opens connections and sends a byte now and then held
    // them for good: the request time limit starts only once the headers
    // are in. Every server now closes them after --header-timeout.
    let world = start(&Options {
        server_args: vec!["--header-timeout".to_owned(), "1".to_owned()],
        ..Options::default()
    });
    let mut slow = tokio::task::JoinSet::new();
    for party in [&world.agent_server, &world.auth_server, &world.resource] {
        for _ in 0..5 {
            let at = address(party.url());
            slow.spawn(trickle(
                at.clone(),
                b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
            ));
            slow.spawn(trickle(at, b""));
        }
    }
    while let Some(held) = slow.join_next().await {
        let held = held.unwrap();
        assert!(
            held >= Duration::from_millis(900) && held < Duration::from_secs(4),
            "closed after {held:?}"
        );
    }
    // The servers still answer.
    let reply = plain()
        .get(format!("{}/public", world.resource.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn hundreds_of_slow_clients_do_not_stop_the_resource_answering_others() {
    // Three hundred connections trickling their headers a byte at a time
    // hold no worker: while they are open, ordinary requests are answered
    // at once, and each slow one is closed at the header timeout.
    const SLOW: usize = 300;
    let world = start(&Options {
        server_args: vec!["--header-timeout".to_owned(), "3".to_owned()],
        ..Options::default()
    });
    let at = address(world.resource.url());
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..SLOW {
        slow.spawn(trickle(
            at.clone(),
            b"GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        ));
    }
    // Let them all connect and start trickling.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let reply = client()
            .send(
                &server_identity(&world),
                Outgoing::get(at_url(&world, "/whoami")),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        slowest = slowest.max(started.elapsed());
    }
    eprintln!("the slowest of 10 signed requests beside {SLOW} slow clients: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "an ordinary request took {slowest:?} beside {SLOW} slow clients"
    );
    let mut closed = 0;
    while let Some(held) = slow.join_next().await {
        let held = held.unwrap();
        assert!(
            held >= Duration::from_millis(2900) && held < Duration::from_secs(8),
            "closed after {held:?}"
        );
        closed += 1;
    }
    assert_eq!(closed, SLOW);
}

fn at_url(world: &aauth_e2e::world::World, path: &str) -> url::Url {
    at(world.resource.url(), path)
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_are_refused_with_503_and_the_server_recovers() {
    let world = start(&Options {
        server_args: vec!["--max-connections".to_owned(), "8".to_owned()],
        ..Options::default()
    });
    let at = address(world.resource.url());
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(&at).await.unwrap());
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let request = format!("GET /public HTTP/1.1\r\nHost: {at}\r\n\r\n");
    let mut extra = TcpStream::connect(&at).await.unwrap();
    extra.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut answer))
        .await
        .expect("the refusal comes at once")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("\"temporarily_unavailable\""), "{answer}");

    // Once the held connections go, new ones are served.
    drop(held);
    let started = Instant::now();
    loop {
        let reply = plain()
            .get(format!("{}/public", world.resource.url()))
            .send()
            .await
            .unwrap();
        if reply.status() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still {}",
            reply.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The resident memory of process `pid`, in KiB (Linux: `/proc`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends `count` `GET /public` with fresh `hwk` keys and nonces, eight at a
/// time; returns how many got each status.
async fn nonce_flood(url: &url::Url, count: usize) -> std::collections::BTreeMap<u16, usize> {
    let mut statuses = std::collections::BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        if i >= 8
            && let Some(done) = tasks.join_next().await
        {
            *statuses.entry(done.unwrap()).or_default() += 1;
        }
        let url = url.clone();
        tasks.spawn(async move {
            let signed = client()
                .sign(
                    &Identity::Hwk(new_key()),
                    Outgoing::get(url).nonce(Nonce::generate().unwrap()),
                )
                .unwrap();
            send(signed).await.status.as_u16()
        });
    }
    while let Some(done) = tasks.join_next().await {
        *statuses.entry(done.unwrap()).or_default() += 1;
    }
    statuses
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_nonce_flood_leaves_the_resources_memory_flat_once_the_cache_is_full() {
    // profile: P-SIG-6. Once the replay cache is full, what it does is the
    // documented refusal (503), and the resource's memory stops growing:
    // a flood twice as long as the cache adds nothing that stays.
    const CAPACITY: usize = 2000;
    let world = start(&Options {
        resource_config: format!(
            "[replay_cache]\ncapacity = {CAPACITY}\nper_client = {CAPACITY}\n"
        ),
        ..Options::default()
    });
    let pid = world.resource.pid().unwrap();
    let url = at(world.resource.url(), "/public");
    let before = rss_kib(pid);
    let filling = nonce_flood(&url, CAPACITY).await;
    assert_eq!(filling.get(&200), Some(&CAPACITY), "{filling:?}");
    let full = rss_kib(pid);
    let flood = nonce_flood(&url, 2 * CAPACITY).await;
    assert_eq!(flood.get(&503), Some(&(2 * CAPACITY)), "{flood:?}");
    let after = rss_kib(pid);
    eprintln!(
        "resident memory: {before} KiB at start, {full} KiB with {CAPACITY} nonces remembered, \
         {after} KiB after {} more refused",
        2 * CAPACITY
    );
    assert!(
        after.saturating_sub(full) < 8 * 1024,
        "memory grew by {} KiB while every request was refused",
        after.saturating_sub(full)
    );
}
