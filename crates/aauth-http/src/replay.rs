//! The `Nonce` replay cache (E§10.5, profile: P-SIG-6), which fails closed.
//!
//! E§10.5: "Check that the nonce has not been used previously within the
//! replay window", scoped by (authority, key, nonce). The authority is the
//! server's own, so a signing key's thumbprint and the nonce name an entry.
//!
//! * An entry is remembered for exactly as long as a signature carrying it
//!   could still pass the `created` check: until `created + max_skew`
//!   (E§10.4). After that the request is refused as stale anyway.
//! * The cache never forgets an entry early. When it is full it refuses the
//!   request ([`Outcome::Full`], answered 503 `temporarily_unavailable` with
//!   `Retry-After`) rather than accept a Nonce it could not remember: a cache
//!   that evicted would let a flood of fresh nonces push a captured one out
//!   and then accept its replay.
//! * One client cannot take the whole cache: each holds at most
//!   [`ReplayLimits::per_client`] entries. A client is its signing key when
//!   that key has an identity (an agent server's key, an agent or auth
//!   token's `cnf.jwk`), and its network address for `hwk` keys, which
//!   anyone can mint by the thousand (an IPv6 client by its /64, which one
//!   subscriber usually holds whole).
//!
//! Memory is bounded by [`ReplayLimits::capacity`]: an entry is a 128-bit
//! digest of (key, nonce) plus its client and expiry, about 100 bytes at
//! worst, so the default million entries stay under about 100 MB.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use aauth_protocol::httpsig::Nonce;
use aauth_protocol::ids::Thumbprint;
use aauth_protocol::keys::sha256;

/// How much a replay cache may remember (a server's `[replay_cache]`
/// settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayLimits {
    /// Entries in all.
    pub capacity: usize,
    /// Entries of one client (one key, or one address for `hwk` keys).
    pub per_client: usize,
}

impl ReplayLimits {
    /// Checks that both bounds admit at least one entry and that a client's
    /// share fits in the whole.
    pub fn check(&self) -> Result<(), String> {
        if self.capacity == 0 || self.per_client == 0 {
            return Err("replay_cache.capacity and per_client must be at least 1".to_owned());
        }
        if self.per_client > self.capacity {
            return Err(format!(
                "replay_cache.per_client ({}) cannot exceed capacity ({})",
                self.per_client, self.capacity
            ));
        }
        Ok(())
    }
}

impl Default for ReplayLimits {
    /// A million entries, 65,536 per client: a client may send about 1,000
    /// Nonce-bearing requests a second for as long as it likes (an entry
    /// lives about `max_skew`, 60 s, when the signer's clock is right).
    fn default() -> Self {
        Self {
            capacity: 1_000_000,
            per_client: 65_536,
        }
    }
}

/// Whom an entry counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client<'a> {
    /// A key with an identity behind it: its thumbprint.
    Key(&'a Thumbprint),
    /// An `hwk` key: the address the request came from (`None` when the
    /// server does not know it, as in tests without sockets). IPv6
    /// addresses are cut to their /64.
    Address(Option<IpAddr>),
}

impl Client<'_> {
    /// The client for a request from `address`: IPv4 as it is (also inside
    /// an IPv4-mapped IPv6 address), IPv6 by its /64 prefix.
    pub fn address(address: Option<IpAddr>) -> Self {
        Self::Address(address.map(|ip| match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let prefix = u128::from(v6) & !u128::from(u64::MAX);
                    IpAddr::V6(prefix.into())
                }
            },
        }))
    }
}

/// What the cache says of a Nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First use: it is now remembered.
    Fresh,
    /// Used before within its window: refuse with `replayed_nonce`.
    Replayed,
    /// The cache cannot remember it (full, or this client's share is): refuse
    /// and ask the client to come back after `retry_after` seconds, when the
    /// oldest entry expires.
    Full {
        /// Seconds until the oldest remembered entry expires (at least 1).
        retry_after: u64,
    },
}

/// Remembers the Nonces a server accepted (module docs).
#[derive(Debug)]
pub struct ReplayCache {
    limits: ReplayLimits,
    max_skew: u64,
    clients: RandomState,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Digests of (thumbprint, nonce) remembered now.
    seen: HashSet<u128>,
    /// The same entries by the second after which they may go, with the
    /// client each counts against.
    by_expiry: BTreeMap<u64, Vec<(u128, u64)>>,
    /// Entries per client.
    per_client: HashMap<u64, usize>,
    /// When a refusal was last logged (one line per ten seconds at most,
    /// whatever a flood sends).
    warned_at: Option<u64>,
}

impl Inner {
    /// Forgets every entry whose signature can no longer pass at `now`.
    fn purge(&mut self, now: u64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if *entry.key() >= now {
                break;
            }
            for (digest, client) in entry.remove() {
                self.seen.remove(&digest);
                if let Some(count) = self.per_client.get_mut(&client) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.per_client.remove(&client);
                    }
                }
            }
        }
    }
}

impl ReplayCache {
    /// A cache for signatures whose `created` may be `max_skew` seconds from
    /// the clock (E§10.4, P-SIG-2).
    pub fn new(limits: ReplayLimits, max_skew: u64) -> Self {
        Self {
            limits,
            max_skew,
            clients: RandomState::new(),
            inner: Mutex::default(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> ReplayLimits {
        self.limits
    }

    /// Entries remembered now.
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data:
        // every update below completes before it returns.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks the Nonce of a verified signature by `key` with this
    /// `created`, counted against `client`, at time `now`; remembers it when
    /// it is fresh and there is room.
    pub fn check(
        &self,
        client: Client<'_>,
        key: &Thumbprint,
        nonce: &Nonce,
        created: u64,
        now: u64,
    ) -> Outcome {
        let digest = entry_digest(key, nonce);
        let client = self.clients.hash_one(client);
        // The last second at which a signature with this `created` passes.
        let expiry = created.saturating_add(self.max_skew);
        let mut inner = self.lock();
        inner.purge(now);
        // A replay is a replay, full or not.
        if inner.seen.contains(&digest) {
            return Outcome::Replayed;
        }
        let used = inner.per_client.get(&client).copied().unwrap_or(0);
        if inner.seen.len() >= self.limits.capacity || used >= self.limits.per_client {
            if inner
                .warned_at
                .is_none_or(|at| now >= at.saturating_add(10))
            {
                inner.warned_at = Some(now);
                tracing::warn!(
                    entries = inner.seen.len(),
                    client_entries = used,
                    limits = ?self.limits,
                    "the Nonce replay cache cannot remember more; refusing (503) until entries expire"
                );
            }
            let oldest = inner.by_expiry.first_key_value().map_or(now, |(at, _)| *at);
            return Outcome::Full {
                retry_after: oldest.saturating_add(1).saturating_sub(now).max(1),
            };
        }
        inner.seen.insert(digest);
        inner
            .by_expiry
            .entry(expiry)
            .or_default()
            .push((digest, client));
        *inner.per_client.entry(client).or_default() += 1;
        Outcome::Fresh
    }
}

/// 128 bits of SHA-256 over the key's thumbprint and the nonce: unique for
/// all practical purposes, and a collision could only refuse a request.
fn entry_digest(key: &Thumbprint, nonce: &Nonce) -> u128 {
    let mut input = Vec::with_capacity(key.as_str().len() + 1 + nonce.as_str().len());
    input.extend_from_slice(key.as_str().as_bytes());
    input.push(b' ');
    input.extend_from_slice(nonce.as_str().as_bytes());
    let digest = sha256(&input);
    let mut first = [0u8; 16];
    first.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    u128::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use aauth_protocol::keys::{Algorithm, SigningKey};

    use super::*;

    const NOW: u64 = 1_767_225_600;

    fn key() -> Thumbprint {
        SigningKey::generate(Algorithm::Ed25519)
            .unwrap()
            .public_key()
            .thumbprint()
    }

    fn nonce(i: usize) -> Nonce {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&i.to_be_bytes());
        Nonce::parse(&aauth_protocol::b64::url_encode(bytes)).unwrap()
    }

    fn address(last: u8) -> Client<'static> {
        Client::address(Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))))
    }

    #[test]
    fn a_nonce_is_fresh_once_then_replayed_within_its_window() {
        // profile: P-SIG-6
        let cache = ReplayCache::new(ReplayLimits::default(), 60);
        let k = key();
        assert_eq!(
            cache.check(Client::Key(&k), &k, &nonce(1), NOW, NOW),
            Outcome::Fresh
        );
        assert_eq!(
            cache.check(Client::Key(&k), &k, &nonce(1), NOW, NOW + 60),
            Outcome::Replayed
        );
        // The same nonce with another key is another entry (E§10.5 scoping).
        let other = key();
        assert_eq!(
            cache.check(Client::Key(&other), &other, &nonce(1), NOW, NOW),
            Outcome::Fresh
        );
        // Once `created` is too old to pass, the entries may go.
        assert_eq!(
            cache.check(Client::Key(&k), &k, &nonce(2), NOW + 61, NOW + 61),
            Outcome::Fresh
        );
        assert_eq!(cache.len(), 1, "the two entries created at NOW expired");
    }

    #[test]
    fn a_signature_created_in_the_future_is_remembered_until_it_is_stale() {
        let cache = ReplayCache::new(ReplayLimits::default(), 60);
        let k = key();
        let created = NOW + 60;
        assert_eq!(
            cache.check(Client::Key(&k), &k, &nonce(1), created, NOW),
            Outcome::Fresh
        );
        assert_eq!(
            cache.check(Client::Key(&k), &k, &nonce(1), created, NOW + 120),
            Outcome::Replayed
        );
    }

    #[test]
    fn a_flood_past_the_bound_is_refused_and_no_replay_is_accepted() {
        // The review finding: a cache that evicts lets a flood push a nonce
        // out and then accepts its replay. This one refuses instead.
        let limits = ReplayLimits {
            capacity: 1_000,
            per_client: 100,
        };
        let cache = ReplayCache::new(limits, 60);
        let mut accepted = Vec::new();
        let mut full = 0;
        // Fresh hwk keys from 20 addresses, 200 requests each.
        for i in 0..4_000 {
            let k = key_cheap(i);
            let client = address(u8::try_from(i % 20).unwrap());
            match cache.check(client, &k, &nonce(i), NOW, NOW + 1) {
                Outcome::Fresh => accepted.push((k, i, client)),
                Outcome::Full { retry_after } => {
                    assert!((1..=61).contains(&retry_after), "{retry_after}");
                    full += 1;
                }
                Outcome::Replayed => panic!("a fresh nonce was called a replay"),
            }
            assert!(cache.len() <= limits.capacity);
        }
        assert_eq!(accepted.len(), 1_000, "20 addresses × 100, then full");
        assert_eq!(full, 3_000);
        // Every accepted nonce, replayed inside its window, is refused.
        for (k, i, client) in &accepted {
            assert_eq!(
                cache.check(*client, k, &nonce(*i), NOW, NOW + 30),
                Outcome::Replayed
            );
        }
        // When the window has passed, there is room again.
        let k = key();
        assert_eq!(
            cache.check(address(1), &k, &nonce(9_999), NOW + 61, NOW + 61),
            Outcome::Fresh
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn one_client_cannot_crowd_out_the_others() {
        let limits = ReplayLimits {
            capacity: 1_000,
            per_client: 10,
        };
        let cache = ReplayCache::new(limits, 60);
        let k = key();
        for i in 0..10 {
            assert_eq!(
                cache.check(Client::Key(&k), &k, &nonce(i), NOW, NOW),
                Outcome::Fresh
            );
        }
        assert_eq!(
            cache.check(Client::Key(&k), &k, &nonce(10), NOW, NOW),
            Outcome::Full { retry_after: 61 }
        );
        // Another key, and an hwk client, still get in.
        let other = key();
        assert_eq!(
            cache.check(Client::Key(&other), &other, &nonce(10), NOW, NOW),
            Outcome::Fresh
        );
        let hwk = key();
        assert_eq!(
            cache.check(address(7), &hwk, &nonce(10), NOW, NOW),
            Outcome::Fresh
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        let a: Ipv6Addr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        let of = |ip: Ipv6Addr| Client::address(Some(IpAddr::V6(ip)));
        assert_eq!(of(a), of(b));
        assert_ne!(of(a), of(c));
        let mapped: Ipv6Addr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(of(mapped), address(1));
    }

    /// Distinct thumbprints without generating keys (fast for floods).
    fn key_cheap(i: usize) -> Thumbprint {
        Thumbprint::from_digest(&sha256(&i.to_be_bytes()))
    }
}
