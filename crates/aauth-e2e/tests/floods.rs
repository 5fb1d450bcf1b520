//! Floods against the real binaries on loopback: what a server does when a
//! client sends more than it can remember or hold. Each run is bounded in
//! count and time.

mod common;

use aauth_e2e::world::Options;
use aauth_http::client::{Identity, Outgoing};
use aauth_protocol::httpsig::Nonce;
use common::*;

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
