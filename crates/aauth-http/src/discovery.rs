//! Discovery of metadata documents and JWKS (E§8, SK0§2.4, E§10.7), with the
//! cache of profile P-MD-3.
//!
//! * Documents are cached by (kind, URL) for their `Cache-Control:
//!   max-age`, clamped to [60 s, 24 h] (5 min without one). The kind is part
//!   of the key: a `jwks_uri` that names another party's metadata URL is
//!   another entry, never a document of the wrong kind.
//! * Concurrent misses for one document coalesce into one fetch, and one
//!   origin is fetched from one request at a time.
//! * A failed fetch is remembered, with its reason, for [`FAILURE_TTL`]: a
//!   client naming a dead or hostile origin on every request makes the
//!   server fetch once, not once per request.
//! * Fetches are bounded in number per second ([`FetchBudget`]); past it,
//!   discovery fails at once without going out.
//! * An unknown `kid` triggers at most one refetch of that party's metadata
//!   and JWKS per minute; concurrent requests naming it share that refetch.
//! * When a fetch fails, a copy younger than 24 h is used, and a warning logged.
//!
//! [`Discovery::prefetch`] turns a [`KeyNeed`] into a [`Prefetched`]
//! directory that the synchronous verifier of the protocol crate can read.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aauth_protocol::ids::{Kid, Origin, OriginMode};
use aauth_protocol::jwk::{Jwks, PublicKey};
use aauth_protocol::metadata::{AgentMetadata, AuthServerMetadata, ResourceMetadata};
use aauth_protocol::tokens::KeyLookupError;
use aauth_protocol::verify::{KeyDirectory, KeyNeed, KeyOwner};
use moka::Expiry;

use crate::fetch::{FetchError, Fetcher};

/// How long a copy may serve after fetches start failing (P-MD-3).
pub const STALE_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);
/// At most one refetch for an unknown `kid` per party in this interval (P-MD-3).
pub const KID_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// How long a failed fetch is remembered before the URL is tried again.
pub const FAILURE_TTL: Duration = Duration::from_secs(30);
/// Most documents cached.
pub const CACHE_CAPACITY: u64 = 10_000;

/// How many fetches discovery may start: a steady rate with a burst above
/// it (a token bucket). The default, 20 a second with bursts of 100, lets a
/// server meet 10 new parties a second (metadata and keys each) and keeps a
/// stream of requests naming fresh origins from turning it into a crawler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FetchBudget {
    /// Fetches a second, sustained.
    pub per_second: f64,
    /// Fetches that may start at once after a quiet spell.
    pub burst: f64,
}

impl Default for FetchBudget {
    fn default() -> Self {
        Self {
            per_second: 20.0,
            burst: 100.0,
        }
    }
}

/// The fetches left in the budget, refilled as time passes.
#[derive(Debug)]
struct Bucket {
    budget: FetchBudget,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(budget: FetchBudget) -> Self {
        Self {
            budget,
            tokens: budget.burst,
            at: Instant::now(),
        }
    }

    /// Takes one fetch from the budget, if there is one.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.budget.per_second;
        self.tokens = (self.tokens + refill).min(self.budget.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Which kind of document a URL was fetched as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// `/.well-known/aauth-agent` (E§8.1).
    AgentMetadata,
    /// `/.well-known/aauth-issuer` (E§8.2).
    AuthServerMetadata,
    /// `/.well-known/aauth-resource` (E§8.3).
    ResourceMetadata,
    /// A JWK Set, from a metadata document's `jwks_uri`.
    Jwks,
}

impl DocumentKind {
    fn metadata_of(owner: KeyOwner) -> Self {
        match owner {
            KeyOwner::Agent => Self::AgentMetadata,
            KeyOwner::AuthServer => Self::AuthServerMetadata,
            KeyOwner::Resource => Self::ResourceMetadata,
        }
    }
}

/// A parsed document.
#[derive(Debug, Clone)]
pub enum Document {
    /// `/.well-known/aauth-agent`.
    Agent(Arc<AgentMetadata>),
    /// `/.well-known/aauth-issuer`.
    AuthServer(Arc<AuthServerMetadata>),
    /// `/.well-known/aauth-resource`.
    Resource(Arc<ResourceMetadata>),
    /// A JWK Set.
    Jwks(Arc<Jwks>),
}

impl Document {
    fn jwks_uri(&self) -> Option<&str> {
        match self {
            Self::Agent(m) => Some(m.jwks_uri.as_str()),
            Self::AuthServer(m) => Some(m.jwks_uri.as_str()),
            Self::Resource(m) => Some(m.jwks_uri.as_str()),
            Self::Jwks(_) => None,
        }
    }
}

/// A cache key: the kind of document and its URL.
type Key = (DocumentKind, String);

/// What a fetch came to, as the cache keeps it: the document for its
/// max-age, or the failure for [`FAILURE_TTL`].
#[derive(Debug, Clone)]
pub(crate) struct Entry(Result<(Document, Duration), DiscoveryError>);

struct Lifetime;

impl Expiry<Key, Entry> for Lifetime {
    fn expire_after_create(&self, _key: &Key, entry: &Entry, _now: Instant) -> Option<Duration> {
        Some(match &entry.0 {
            Ok((_, max_age)) => *max_age,
            // Nothing was asked of the peer: try again soon.
            Err(DiscoveryError::Budget) => Duration::from_secs(1),
            Err(_) => FAILURE_TTL,
        })
    }
}

/// Why discovery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// The fetch failed and no usable copy was cached.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The document is not what it must be (P-MD-1, P-MD-2).
    #[error("{url}: {reason}")]
    Document {
        /// The URL fetched.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The budget of fetches was spent: nothing was fetched.
    #[error("too many documents fetched in the last moments; not fetching more now")]
    Budget,
}

/// Fetches and caches metadata and key sets.
#[derive(Clone)]
pub struct Discovery {
    fetcher: Fetcher,
    mode: OriginMode,
    documents: moka::future::Cache<Key, Entry>,
    stale: moka::sync::Cache<Key, Document>,
    refetched: moka::future::Cache<(KeyOwner, Origin), Result<Arc<Jwks>, DiscoveryError>>,
    origins: moka::sync::Cache<String, Arc<tokio::sync::Mutex<()>>>,
    budget: Arc<Mutex<Bucket>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("mode", &self.mode)
            .field("cached", &self.documents.entry_count())
            .finish_non_exhaustive()
    }
}

impl Discovery {
    /// Discovery through `fetcher`, accepting identifiers of `mode`, with
    /// the default [`FetchBudget`].
    pub fn new(fetcher: Fetcher, mode: OriginMode) -> Self {
        Self::with_budget(fetcher, mode, FetchBudget::default())
    }

    /// [`Discovery::new`] with another fetch budget.
    pub fn with_budget(fetcher: Fetcher, mode: OriginMode, budget: FetchBudget) -> Self {
        Self {
            fetcher,
            mode,
            documents: moka::future::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(Lifetime)
                .build(),
            stale: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(STALE_LIMIT)
                .build(),
            refetched: moka::future::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(KID_REFETCH_INTERVAL)
                .build(),
            origins: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_idle(Duration::from_secs(60))
                .build(),
            budget: Arc::new(Mutex::new(Bucket::new(budget))),
        }
    }

    /// The document cache, for tests that need to expire it.
    #[cfg(test)]
    pub(crate) fn documents_for_tests(&self) -> &moka::future::Cache<Key, Entry> {
        &self.documents
    }

    /// The identifier mode discovery enforces.
    pub fn mode(&self) -> OriginMode {
        self.mode
    }

    /// Fetches (or returns the cached copy of) `url` as a document of
    /// `kind`, parsed by `parse`.
    async fn document(
        &self,
        kind: DocumentKind,
        url: String,
        parse: impl FnOnce(&[u8]) -> Result<Document, String>,
    ) -> Result<Document, DiscoveryError> {
        let key = (kind, url);
        // moka runs one fetch for concurrent misses of one key (P-MD-3),
        // and keeps its outcome, success or failure.
        let entry = self
            .documents
            .get_with_by_ref(&key, async {
                let fetched = self.fetch(&key.1, parse).await;
                match &fetched {
                    Ok((document, _)) => self.stale.insert(key.clone(), document.clone()),
                    Err(error) => tracing::warn!(url = %key.1, %error, "discovery failed"),
                }
                Entry(fetched)
            })
            .await;
        match entry.0 {
            Ok((document, _)) => Ok(document),
            Err(error) => match self.stale.get(&key) {
                Some(document) => {
                    tracing::debug!(url = %key.1, %error, "using the last good copy (P-MD-3)");
                    Ok(document)
                }
                None => Err(error),
            },
        }
    }

    /// One fetch: its origin's turn, a fetch from the budget, then the
    /// request itself.
    async fn fetch(
        &self,
        url: &str,
        parse: impl FnOnce(&[u8]) -> Result<Document, String>,
    ) -> Result<(Document, Duration), DiscoveryError> {
        let origin = url::Url::parse(url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| url.to_owned());
        let turn = self
            .origins
            .get_with(origin, || Arc::new(tokio::sync::Mutex::new(())));
        let _turn = turn.lock().await;
        let allowed = self
            .budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if !allowed {
            return Err(DiscoveryError::Budget);
        }
        let fetched = self.fetcher.get(url).await?;
        let document = parse(&fetched.body).map_err(|reason| DiscoveryError::Document {
            url: url.to_owned(),
            reason,
        })?;
        Ok((document, fetched.max_age))
    }

    /// The metadata document of `origin` as `owner` publishes it.
    pub async fn metadata(
        &self,
        owner: KeyOwner,
        origin: &Origin,
    ) -> Result<Document, DiscoveryError> {
        let url = origin.well_known(owner.well_known());
        let mode = self.mode;
        let from = origin.clone();
        self.document(DocumentKind::metadata_of(owner), url, move |body| {
            let parsed = match owner {
                KeyOwner::Agent => AgentMetadata::from_json(body, &from, mode)
                    .map(|m| Document::Agent(Arc::new(m))),
                KeyOwner::AuthServer => AuthServerMetadata::from_json(body, &from, mode)
                    .map(|m| Document::AuthServer(Arc::new(m))),
                KeyOwner::Resource => ResourceMetadata::from_json(body, &from, mode)
                    .map(|m| Document::Resource(Arc::new(m))),
            };
            parsed.map_err(|e| e.to_string())
        })
        .await
    }

    /// An agent's metadata (E§8.1).
    pub async fn agent_metadata(
        &self,
        origin: &Origin,
    ) -> Result<Arc<AgentMetadata>, DiscoveryError> {
        match self.metadata(KeyOwner::Agent, origin).await? {
            Document::Agent(m) => Ok(m),
            _ => Err(self.kind_mismatch(origin, KeyOwner::Agent)),
        }
    }

    /// An auth server's metadata (E§8.2).
    pub async fn auth_server_metadata(
        &self,
        origin: &Origin,
    ) -> Result<Arc<AuthServerMetadata>, DiscoveryError> {
        match self.metadata(KeyOwner::AuthServer, origin).await? {
            Document::AuthServer(m) => Ok(m),
            _ => Err(self.kind_mismatch(origin, KeyOwner::AuthServer)),
        }
    }

    /// A resource's metadata (E§8.3).
    pub async fn resource_metadata(
        &self,
        origin: &Origin,
    ) -> Result<Arc<ResourceMetadata>, DiscoveryError> {
        match self.metadata(KeyOwner::Resource, origin).await? {
            Document::Resource(m) => Ok(m),
            _ => Err(self.kind_mismatch(origin, KeyOwner::Resource)),
        }
    }

    /// A document of another kind under a key of this kind: the parser of a
    /// kind makes only documents of that kind, so this does not happen.
    fn kind_mismatch(&self, origin: &Origin, owner: KeyOwner) -> DiscoveryError {
        DiscoveryError::Document {
            url: origin.well_known(owner.well_known()),
            reason: "parsed as another kind of document".to_owned(),
        }
    }

    /// The JWKS of `origin`, through `owner`'s metadata and its `jwks_uri`.
    pub async fn jwks(
        &self,
        owner: KeyOwner,
        origin: &Origin,
    ) -> Result<Arc<Jwks>, DiscoveryError> {
        let metadata = self.metadata(owner, origin).await?;
        let url = metadata
            .jwks_uri()
            .ok_or_else(|| self.kind_mismatch(origin, owner))?
            .to_owned();
        let document = self
            .document(DocumentKind::Jwks, url.clone(), |body| {
                Jwks::from_json(body)
                    .map(|jwks| Document::Jwks(Arc::new(jwks)))
                    .map_err(|e| e.to_string())
            })
            .await?;
        match document {
            Document::Jwks(jwks) => Ok(jwks),
            _ => Err(DiscoveryError::Document {
                url,
                reason: "parsed as another kind of document".to_owned(),
            }),
        }
    }

    /// The key `kid` of `origin`. An unknown `kid` refetches the metadata
    /// and JWKS, at most once a minute per party (P-MD-3): keys rotate.
    /// Concurrent requests for unknown kids of one party share one refetch.
    pub async fn key(
        &self,
        owner: KeyOwner,
        origin: &Origin,
        kid: &Kid,
    ) -> Result<PublicKey, KeyLookupError> {
        // P-ERR-2: what a fetch ran into (addresses, statuses, transport
        // errors) is logged where it happens and never told to the caller,
        // who could otherwise use discovery to probe hosts.
        let unavailable = |e: DiscoveryError| {
            tracing::debug!(%origin, error = %e, "no keys");
            KeyLookupError::Unavailable(format!(
                "the metadata or keys of {origin} could not be obtained"
            ))
        };
        let jwks = self.jwks(owner, origin).await.map_err(unavailable)?;
        if let Some(key) = jwks.find(kid) {
            return Ok(key.clone());
        }
        // One atomic entry per party and minute: the first request for an
        // unknown kid refetches, the others wait for that refetch and read
        // its result, and later ones within the minute read it too.
        let refetched = self
            .refetched
            .get_with((owner, origin.clone()), async {
                self.forget(owner, origin).await;
                self.jwks(owner, origin).await
            })
            .await;
        refetched
            .map_err(unavailable)?
            .find(kid)
            .cloned()
            .ok_or_else(|| KeyLookupError::UnknownKid(kid.clone()))
    }

    /// Drops the cached metadata of `origin` as `owner`, and the key set it
    /// names, so that the next lookup fetches both.
    async fn forget(&self, owner: KeyOwner, origin: &Origin) {
        let metadata = (
            DocumentKind::metadata_of(owner),
            origin.well_known(owner.well_known()),
        );
        if let Some(Entry(Ok((document, _)))) = self.documents.get(&metadata).await
            && let Some(jwks_uri) = document.jwks_uri()
        {
            self.documents
                .invalidate(&(DocumentKind::Jwks, jwks_uri.to_owned()))
                .await;
        }
        self.documents.invalidate(&metadata).await;
    }

    /// After a signature failed with the key `prefetched` holds: that
    /// party's metadata and key set refetched (at most once a minute per
    /// party, the gate of an unknown `kid`), and a directory with the key its
    /// `kid` names now, if that is another key. `None`: nothing new, so the
    /// refusal stands (P-MD-3: keys rotate, and a peer may reuse a `kid`).
    pub async fn replaced_key(&self, prefetched: &Prefetched) -> Option<Prefetched> {
        let Some(((owner, origin, kid), Ok(used))) = &prefetched.found else {
            return None;
        };
        let refetched = self
            .refetched
            .get_with((*owner, origin.clone()), async {
                self.forget(*owner, origin).await;
                self.jwks(*owner, origin).await
            })
            .await
            .ok()?;
        let fresh = refetched.find(kid)?;
        if fresh == used {
            return None;
        }
        tracing::info!(%origin, %kid, "the key under this kid was replaced; judging again with the new one");
        Some(Prefetched {
            found: Some(((*owner, origin.clone(), kid.clone()), Ok(fresh.clone()))),
        })
    }

    /// Fetches what `need` names, so that verification can run synchronously.
    pub async fn prefetch(&self, need: &KeyNeed) -> Prefetched {
        match need {
            KeyNeed::None => Prefetched { found: None },
            KeyNeed::Keys { owner, origin, kid } => {
                // Boxed: a lookup's state (fetches, cache entries) is large,
                // and every request future awaiting `prefetch` would carry it
                // inline, copied whenever that future moves, even on the hot
                // path where nothing is fetched at all.
                let result = Box::pin(self.key(*owner, origin, kid)).await;
                Prefetched {
                    found: Some(((*owner, origin.clone(), kid.clone()), result)),
                }
            }
        }
    }
}

/// The outcome of one [`Discovery::prefetch`], read by the verifier.
#[derive(Debug, Clone)]
pub struct Prefetched {
    #[expect(
        clippy::type_complexity,
        reason = "a private pair, named where it is built"
    )]
    found: Option<((KeyOwner, Origin, Kid), Result<PublicKey, KeyLookupError>)>,
}

impl KeyDirectory for Prefetched {
    fn key(
        &self,
        owner: KeyOwner,
        origin: &Origin,
        kid: &Kid,
    ) -> Result<PublicKey, KeyLookupError> {
        match &self.found {
            Some(((o, at, k), result)) if *o == owner && at == origin && k == kid => result.clone(),
            // The verifier asked for something key_need did not name: nothing
            // was fetched for it, and nothing is fetched now.
            _ => Err(KeyLookupError::Unavailable(format!(
                "no keys were fetched for {origin}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use aauth_protocol::jwk::{Jwks, JwksKey};
    use aauth_protocol::keys::{Algorithm, SigningKey};
    use axum::Router;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;

    use super::*;

    /// An agent server on loopback that counts its fetches and can be
    /// switched off or given a second key.
    #[derive(Clone)]
    struct Peer {
        origin: Origin,
        metadata_hits: Arc<AtomicUsize>,
        jwks_hits: Arc<AtomicUsize>,
        down: Arc<AtomicBool>,
        keys: Arc<std::sync::Mutex<Vec<JwksKey>>>,
    }

    async fn metadata(State(peer): State<Peer>) -> Response {
        peer.metadata_hits.fetch_add(1, Ordering::SeqCst);
        if peer.down.load(Ordering::SeqCst) {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        // Slow enough that concurrent misses overlap.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        axum::Json(serde_json::json!({
            "agent": peer.origin.as_str(),
            "jwks_uri": format!("{}/jwks.json", peer.origin),
        }))
        .into_response()
    }

    async fn jwks(State(peer): State<Peer>) -> Response {
        peer.jwks_hits.fetch_add(1, Ordering::SeqCst);
        if peer.down.load(Ordering::SeqCst) {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let keys = peer.keys.lock().unwrap().clone();
        axum::Json(Jwks::new(keys).to_json_value()).into_response()
    }

    async fn peer(first: &SigningKey) -> Peer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = Peer {
            origin: Origin::parse(&format!("http://127.0.0.1:{port}"), OriginMode::Dev).unwrap(),
            metadata_hits: Arc::default(),
            jwks_hits: Arc::default(),
            down: Arc::default(),
            keys: Arc::new(std::sync::Mutex::new(vec![JwksKey {
                kid: Kid::new("k1".into()).unwrap(),
                key: first.public_key().clone(),
            }])),
        };
        let app = Router::new()
            .route("/.well-known/aauth-agent", get(metadata))
            .route("/jwks.json", get(jwks))
            .route(
                "/.well-known/aauth-issuer",
                get(|| async { axum::response::Redirect::temporary("/elsewhere") }),
            )
            .with_state(peer.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        peer
    }

    /// Publishes a new key as `k2` beside `k1`, as a rotation does.
    fn publish_k2(peer: &Peer) -> SigningKey {
        let rotated = SigningKey::generate(Algorithm::Ed25519).unwrap();
        peer.keys.lock().unwrap().push(JwksKey {
            kid: kid("k2"),
            key: rotated.public_key().clone(),
        });
        rotated
    }

    fn discovery() -> Discovery {
        Discovery::new(Fetcher::new(OriginMode::Dev).unwrap(), OriginMode::Dev)
    }

    fn kid(text: &str) -> Kid {
        Kid::new(text.into()).unwrap()
    }

    #[tokio::test]
    async fn concurrent_misses_coalesce_and_hits_come_from_the_cache() {
        // profile: P-MD-3
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let peer = peer(&key).await;
        let discovery = discovery();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (discovery, origin) = (discovery.clone(), peer.origin.clone());
                tokio::spawn(
                    async move { discovery.key(KeyOwner::Agent, &origin, &kid("k1")).await },
                )
            })
            .collect();
        for task in tasks {
            assert_eq!(&task.await.unwrap().unwrap(), key.public_key());
        }
        discovery
            .key(KeyOwner::Agent, &peer.origin, &kid("k1"))
            .await
            .unwrap();
        assert_eq!(peer.metadata_hits.load(Ordering::SeqCst), 1);
        assert_eq!(peer.jwks_hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_at_most_once_a_minute() {
        // profile: P-MD-3 — keys rotate, but a stream of bogus kids must not
        // turn into a stream of fetches.
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let peer = peer(&key).await;
        let discovery = discovery();
        discovery
            .key(KeyOwner::Agent, &peer.origin, &kid("k1"))
            .await
            .unwrap();

        let rotated = publish_k2(&peer);
        let found = discovery
            .key(KeyOwner::Agent, &peer.origin, &kid("k2"))
            .await
            .unwrap();
        assert_eq!(&found, rotated.public_key());
        assert_eq!(peer.jwks_hits.load(Ordering::SeqCst), 2);

        for bogus in ["k3", "k4", "k5"] {
            let error = discovery
                .key(KeyOwner::Agent, &peer.origin, &kid(bogus))
                .await
                .unwrap_err();
            assert_eq!(error, KeyLookupError::UnknownKid(kid(bogus)));
        }
        assert_eq!(peer.jwks_hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failing_peer_is_served_from_the_last_good_copy() {
        // profile: P-MD-3 — "on fetch failure a cached copy younger than 24 h is used".
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let peer = peer(&key).await;
        let discovery = discovery();
        discovery
            .key(KeyOwner::Agent, &peer.origin, &kid("k1"))
            .await
            .unwrap();
        peer.down.store(true, Ordering::SeqCst);
        // Expire the fresh copies as max-age would.
        discovery.documents.invalidate_all();
        discovery.documents.run_pending_tasks().await;
        let found = discovery
            .key(KeyOwner::Agent, &peer.origin, &kid("k1"))
            .await
            .unwrap();
        assert_eq!(&found, key.public_key());
        assert!(
            peer.metadata_hits.load(Ordering::SeqCst) >= 2,
            "it did try again"
        );
    }

    #[tokio::test]
    async fn concurrent_requests_for_an_unknown_kid_share_one_refetch() {
        // Review finding 3: the gate was checked and then set, so every
        // concurrent request naming an unknown kid refetched the key set.
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let peer = peer(&key).await;
        let discovery = discovery();
        discovery
            .key(KeyOwner::Agent, &peer.origin, &kid("k1"))
            .await
            .unwrap();
        let rotated = publish_k2(&peer);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (discovery, origin) = (discovery.clone(), peer.origin.clone());
                tokio::spawn(
                    async move { discovery.key(KeyOwner::Agent, &origin, &kid("k2")).await },
                )
            })
            .collect();
        for task in tasks {
            assert_eq!(&task.await.unwrap().unwrap(), rotated.public_key());
        }
        assert_eq!(peer.jwks_hits.load(Ordering::SeqCst), 2, "one refetch");
        assert_eq!(peer.metadata_hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_fetch_is_remembered_and_not_repeated_for_every_request() {
        // Review finding 12: each request naming a dead origin fetched again.
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let peer = peer(&key).await;
        peer.down.store(true, Ordering::SeqCst);
        let discovery = discovery();
        for _ in 0..5 {
            let error = discovery
                .key(KeyOwner::Agent, &peer.origin, &kid("k1"))
                .await
                .unwrap_err();
            assert!(matches!(error, KeyLookupError::Unavailable(_)), "{error:?}");
        }
        assert_eq!(peer.metadata_hits.load(Ordering::SeqCst), 1);
        // The reason is kept with it.
        let error = discovery.agent_metadata(&peer.origin).await.unwrap_err();
        assert!(
            matches!(
                error,
                DiscoveryError::Fetch(FetchError::Status { status: 503, .. })
            ),
            "{error:?}"
        );
        assert_eq!(peer.metadata_hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn fetches_past_the_budget_are_not_made() {
        // Review finding 12: requests naming ever new origins cannot make
        // the server fetch without limit.
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let peers = [peer(&key).await, peer(&key).await, peer(&key).await];
        let discovery = Discovery::with_budget(
            Fetcher::new(OriginMode::Dev).unwrap(),
            OriginMode::Dev,
            FetchBudget {
                per_second: 0.0,
                burst: 2.0,
            },
        );
        for peer in &peers[..2] {
            discovery.agent_metadata(&peer.origin).await.unwrap();
        }
        let error = discovery
            .agent_metadata(&peers[2].origin)
            .await
            .unwrap_err();
        assert_eq!(error, DiscoveryError::Budget);
        assert_eq!(peers[2].metadata_hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn one_origin_is_fetched_from_one_request_at_a_time() {
        // Review finding 12: concurrent fetches to one origin are one at a
        // time, whatever documents they are for.
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let slow = {
            let (in_flight, most) = (in_flight.clone(), most.clone());
            move || {
                let (in_flight, most) = (in_flight.clone(), most.clone());
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    StatusCode::NOT_FOUND
                }
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .route("/.well-known/aauth-agent", get(slow.clone()))
            .route("/.well-known/aauth-issuer", get(slow.clone()))
            .route("/.well-known/aauth-resource", get(slow));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let origin = Origin::parse(&format!("http://127.0.0.1:{port}"), OriginMode::Dev).unwrap();
        let discovery = discovery();
        let (a, b, c) = tokio::join!(
            discovery.agent_metadata(&origin),
            discovery.auth_server_metadata(&origin),
            discovery.resource_metadata(&origin),
        );
        assert!(a.is_err() && b.is_err() && c.is_err());
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_url_fetched_as_one_kind_of_document_is_another_entry_as_another_kind() {
        // Review finding 4: keyed by URL alone, an agent whose jwks_uri is
        // its auth server's metadata URL put a key set where that metadata
        // belongs, and the auth server could no longer be discovered.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let origin = Origin::parse(&format!("http://127.0.0.1:{port}"), OriginMode::Dev).unwrap();
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let shared = format!("{origin}/.well-known/aauth-issuer");
        let agent = serde_json::json!({ "agent": origin.as_str(), "jwks_uri": shared });
        // One document that reads as an issuer's metadata and as a key set.
        let mut both = Jwks::new(vec![JwksKey {
            kid: kid("k1"),
            key: key.public_key().clone(),
        }])
        .to_json_value();
        both["issuer"] = origin.as_str().into();
        both["jwks_uri"] = format!("{origin}/jwks.json").into();
        both["agent_token_endpoint"] = format!("{origin}/token").into();
        both["agent_auth_endpoint"] = format!("{origin}/auth").into();
        let app = Router::new()
            .route(
                "/.well-known/aauth-agent",
                get(move || async move { axum::Json(agent) }),
            )
            .route(
                "/.well-known/aauth-issuer",
                get(move || async move { axum::Json(both) }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let discovery = discovery();
        let found = discovery
            .key(KeyOwner::Agent, &origin, &kid("k1"))
            .await
            .unwrap();
        assert_eq!(&found, key.public_key());
        let metadata = discovery.auth_server_metadata(&origin).await.unwrap();
        assert_eq!(metadata.issuer, origin);
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        // profile: P-MD-3
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let peer = peer(&key).await;
        let error = discovery()
            .auth_server_metadata(&peer.origin)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                DiscoveryError::Fetch(FetchError::Redirect { status: 307, .. })
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn prefetched_keys_answer_only_what_was_named() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let peer = peer(&key).await;
        let need = KeyNeed::Keys {
            owner: KeyOwner::Agent,
            origin: peer.origin.clone(),
            kid: kid("k1"),
        };
        let prefetched = discovery().prefetch(&need).await;
        assert_eq!(
            &prefetched
                .key(KeyOwner::Agent, &peer.origin, &kid("k1"))
                .unwrap(),
            key.public_key()
        );
        assert!(
            prefetched
                .key(KeyOwner::AuthServer, &peer.origin, &kid("k1"))
                .is_err()
        );
        assert!(
            prefetched
                .key(KeyOwner::Agent, &peer.origin, &kid("k2"))
                .is_err()
        );
    }
}
