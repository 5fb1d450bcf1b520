//! A hostile agent server against the real resource (profile: P-MD-3,
//! P-ERR-2): its metadata or key set is slow, endless, huge, trickled a
//! byte at a time, redirected, not JSON, or its keys change between
//! fetches. Each signed request is answered within the fetch's time bound
//! plus a margin, with the verdict the keys it did publish give; the
//! resource never follows the redirect, reads past 64 KiB or refetches
//! more than P-MD-3 allows, and goes on answering everyone else.

// A test crate: its helpers may unwrap like its tests.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aauth_http::client::{Identity, Outgoing};
use aauth_http::fetch::{FETCH_TIMEOUT, MAX_DOCUMENT_BYTES};
use aauth_protocol::ids::{Kid, Origin, OriginMode};
use aauth_protocol::jwk::{Jwks, JwksKey};
use aauth_protocol::keys::SigningKey;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use common::*;

/// How a document misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Served as it should be.
    None,
    /// Answers after a minute.
    Slow,
    /// A body that never ends (chunked, 8 KiB at a time).
    Endless,
    /// 10 MiB of JSON, announced with its length.
    Huge,
    /// One byte every 200 ms, for ever.
    Trickle,
    /// 302 to a well-behaved copy on another path.
    Redirect,
    /// Not JSON.
    Garbage,
}

/// Which document misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Document {
    Metadata,
    Jwks,
}

/// A hostile agent server on loopback: it counts every fetch.
#[derive(Clone)]
struct Hostile {
    origin: Origin,
    fault: Fault,
    at: Document,
    /// The key set published at each fetch of the JWKS: fetch `n` gets
    /// `sets[min(n, last)]`.
    sets: Arc<Vec<Vec<JwksKey>>>,
    metadata_hits: Arc<AtomicUsize>,
    jwks_hits: Arc<AtomicUsize>,
    /// Fetches of the redirect's target (must stay 0).
    followed: Arc<AtomicUsize>,
    /// Bytes the server managed to hand to the resource's socket.
    sent: Arc<AtomicUsize>,
}

fn json(value: &serde_json::Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

impl Hostile {
    fn metadata_json(&self) -> serde_json::Value {
        serde_json::json!({
            "agent": self.origin.as_str(),
            "jwks_uri": format!("{}/jwks.json", self.origin),
            "name": "Hostile agent",
        })
    }

    fn jwks_json(&self, fetch: usize) -> serde_json::Value {
        let set = self
            .sets
            .get(fetch)
            .or_else(|| self.sets.last())
            .cloned()
            .unwrap_or_default();
        Jwks::new(set).to_json_value()
    }

    /// `good` served with this server's fault.
    async fn serve(&self, good: Response) -> Response {
        let sent = self.sent.clone();
        match self.fault {
            Fault::None => good,
            Fault::Slow => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                good
            }
            Fault::Endless => (
                [(header::CONTENT_TYPE, "application/json")],
                endless(&[b' '; 8192], Duration::ZERO, sent),
            )
                .into_response(),
            Fault::Huge => {
                let mut body = String::from("{\"padding\":\"");
                body.push_str(&"x".repeat(10 * 1024 * 1024));
                body.push_str("\"}");
                ([(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
            Fault::Trickle => (
                [(header::CONTENT_TYPE, "application/json")],
                endless(b" ", Duration::from_millis(200), sent),
            )
                .into_response(),
            Fault::Redirect => {
                (StatusCode::FOUND, [(header::LOCATION, "/elsewhere")], "").into_response()
            }
            Fault::Garbage => (
                [(header::CONTENT_TYPE, "application/json")],
                "{\"agent\": [not json",
            )
                .into_response(),
        }
    }
}

/// A body that never ends: `chunk` after `delay`, again and again, each
/// counted in `sent`, until the reader goes away.
fn endless(chunk: &'static [u8], delay: Duration, sent: Arc<AtomicUsize>) -> Body {
    let stream = futures_util::stream::unfold(sent, move |sent| async move {
        tokio::time::sleep(delay).await;
        sent.fetch_add(chunk.len(), Ordering::SeqCst);
        Some((Ok::<_, std::io::Error>(Bytes::from_static(chunk)), sent))
    });
    Body::from_stream(stream)
}

async fn metadata(State(peer): State<Hostile>) -> Response {
    peer.metadata_hits.fetch_add(1, Ordering::SeqCst);
    let good = json(&peer.metadata_json());
    if peer.at == Document::Metadata {
        peer.serve(good).await
    } else {
        good
    }
}

async fn jwks(State(peer): State<Hostile>) -> Response {
    let fetch = peer.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let good = json(&peer.jwks_json(fetch));
    if peer.at == Document::Jwks {
        peer.serve(good).await
    } else {
        good
    }
}

async fn elsewhere(State(peer): State<Hostile>) -> Response {
    peer.followed.fetch_add(1, Ordering::SeqCst);
    json(&peer.metadata_json())
}

/// Starts a hostile agent server whose `at` document has `fault`, and
/// whose JWKS publishes `sets` in turn.
async fn hostile(fault: Fault, at: Document, sets: Vec<Vec<JwksKey>>) -> Hostile {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = Hostile {
        origin: Origin::parse(&format!("http://127.0.0.1:{port}"), OriginMode::Dev).unwrap(),
        fault,
        at,
        sets: Arc::new(sets),
        metadata_hits: Arc::default(),
        jwks_hits: Arc::default(),
        followed: Arc::default(),
        sent: Arc::default(),
    };
    let app = Router::new()
        .route("/.well-known/aauth-agent", get(metadata))
        .route("/jwks.json", get(jwks))
        .route("/elsewhere", get(elsewhere))
        .with_state(peer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    peer
}

fn kid(text: &str) -> Kid {
    Kid::new(text.to_owned()).unwrap()
}

/// `GET /whoami` at the resource, signed as `peer`'s agent server with
/// `key` under `kid`: the status, the error code, and how long it took.
async fn whoami_as(
    world: &aauth_e2e::world::World,
    peer: &Hostile,
    kid_text: &str,
    key: &Arc<SigningKey>,
) -> (u16, Option<String>, Duration) {
    let identity = Identity::AgentServer {
        agent: peer.origin.clone(),
        kid: kid(kid_text),
        key: key.clone(),
    };
    let started = Instant::now();
    let reply = client()
        .send(
            &identity,
            Outgoing::get(at(world.resource.url(), "/whoami")),
        )
        .await
        .expect("the resource answers");
    (
        reply.status.as_u16(),
        reply.error.as_ref().map(|e| e.error.clone()),
        started.elapsed(),
    )
}

/// Longest the resource may take over a request whose keys cannot be
/// fetched: the fetch's bound, plus a margin for a loaded machine.
fn bound() -> Duration {
    FETCH_TIMEOUT + Duration::from_secs(3)
}

/// Everyone else is still answered, at once: an `hwk` caller at `/whoami`
/// (a 401 asking for an identity) and the resource's own metadata.
async fn others_still_answered(world: &aauth_e2e::world::World) {
    let started = Instant::now();
    let reply = client()
        .send(
            &Identity::Hwk(new_key()),
            Outgoing::get(at(world.resource.url(), "/whoami")),
        )
        .await
        .unwrap();
    assert_error(&reply, 401, "insufficient_auth_level");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_hostile_document_is_refused_within_its_bounds_and_no_one_else_waits() {
    let world = world();
    let key = new_key();
    let keys = vec![vec![JwksKey {
        kid: kid("k1"),
        key: key.public_key().clone(),
    }]];

    // The control: the same agent, well-behaved, is identified.
    let good = hostile(Fault::None, Document::Metadata, keys.clone()).await;
    let (status, error, _) = whoami_as(&world, &good, "k1", &key).await;
    assert_eq!((status, error), (200, None));

    let mut rows = Vec::new();
    for at in [Document::Metadata, Document::Jwks] {
        for fault in [
            Fault::Slow,
            Fault::Endless,
            Fault::Huge,
            Fault::Trickle,
            Fault::Redirect,
            Fault::Garbage,
        ] {
            let peer = hostile(fault, at, keys.clone()).await;
            // Two requests at once: the second shares the first's fetch
            // (P-MD-3: concurrent misses coalesce) and neither waits longer.
            let (first, second) = tokio::join!(
                whoami_as(&world, &peer, "k1", &key),
                whoami_as(&world, &peer, "k1", &key)
            );
            let slowest = first.2.max(second.2);
            for (status, error, took) in [first, second] {
                assert_eq!(
                    (status, error.as_deref()),
                    (401, Some("invalid_signature")),
                    "{fault:?} {at:?}: no keys, no identity (P-ERR-1)"
                );
                assert!(took < bound(), "{fault:?} {at:?} took {took:?}");
            }
            others_still_answered(&world).await;
            let hits = match at {
                Document::Metadata => peer.metadata_hits.load(Ordering::SeqCst),
                Document::Jwks => peer.jwks_hits.load(Ordering::SeqCst),
            };
            assert!(
                (1..=2).contains(&hits),
                "{fault:?} {at:?}: {hits} fetches for two concurrent requests"
            );
            assert_eq!(
                peer.followed.load(Ordering::SeqCst),
                0,
                "{fault:?} {at:?}: a redirect is never followed"
            );
            // An endless body is cut at the size bound (P-MD-3: 64 KiB):
            // what the peer could push is that and what the sockets buffer,
            // not the endless rest.
            let sent = peer.sent.load(Ordering::SeqCst);
            assert!(
                sent < 64 * MAX_DOCUMENT_BYTES,
                "{fault:?} {at:?}: {sent} bytes read"
            );
            rows.push(format!(
                "{fault:?} {at:?}: 401 invalid_signature in {:?}, {hits} fetch(es), {sent} bytes pushed",
                slowest
            ));
        }
    }
    eprintln!("{}", rows.join("\n"));
    // And the well-behaved agent is still identified.
    let (status, _, _) = whoami_as(&world, &good, "k1", &key).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_that_change_between_fetches_give_the_verdicts_of_what_was_published() {
    // P-MD-3: an unknown kid refetches, at most once a minute per party.
    let world = world();
    let (k1, k2, k3) = (new_key(), new_key(), new_key());
    let entry = |name: &str, key: &Arc<SigningKey>| JwksKey {
        kid: kid(name),
        key: key.public_key().clone(),
    };
    // Fetch 1 publishes k1 only; every later fetch k2 only (a rotation).
    let peer = hostile(
        Fault::None,
        Document::Jwks,
        vec![vec![entry("k1", &k1)], vec![entry("k2", &k2)]],
    )
    .await;
    let verdict = |(status, error, _): (u16, Option<String>, Duration)| (status, error);

    assert_eq!(
        verdict(whoami_as(&world, &peer, "k1", &k1).await),
        (200, None)
    );
    assert_eq!(peer.jwks_hits.load(Ordering::SeqCst), 1);
    // A signature by another key under k1: refused. The key may have been
    // replaced under the same kid, so the set is fetched once more, and
    // now publishes k2 only.
    assert_eq!(
        verdict(whoami_as(&world, &peer, "k1", &k3).await),
        (401, Some("invalid_signature".into()))
    );
    assert_eq!(peer.jwks_hits.load(Ordering::SeqCst), 2);
    // k2 is known from that fetch: identified, no fetch.
    assert_eq!(
        verdict(whoami_as(&world, &peer, "k2", &k2).await),
        (200, None)
    );
    // k1 is no longer published, and the minute's refetch is spent.
    assert_eq!(
        verdict(whoami_as(&world, &peer, "k1", &k1).await),
        (401, Some("invalid_signature".into()))
    );
    assert_eq!(peer.jwks_hits.load(Ordering::SeqCst), 2);
    // A flood of unknown kids costs the peer no more fetches.
    for i in 0..20 {
        let name = format!("unknown-{i}");
        assert_eq!(
            verdict(whoami_as(&world, &peer, &name, &k3).await),
            (401, Some("invalid_signature".into()))
        );
    }
    assert_eq!(peer.jwks_hits.load(Ordering::SeqCst), 2, "no refetch storm");
}
