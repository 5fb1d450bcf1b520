//! Discovery of metadata documents and JWKS (E§8, SK0§2.4, E§10.7), with the
//! cache of profile P-MD-3.
//!
//! * Documents are cached for their `Cache-Control: max-age`, clamped to
//!   [60 s, 24 h] (5 min without one).
//! * Concurrent misses for one URL coalesce into one fetch.
//! * An unknown `kid` triggers at most one refetch of that party's metadata
//!   and JWKS per minute.
//! * When a fetch fails, a copy younger than 24 h is used, and a warning logged.
//!
//! [`Discovery::prefetch`] turns a [`KeyNeed`] into a [`Prefetched`]
//! directory that the synchronous verifier of the protocol crate can read.

use std::sync::Arc;
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
/// Most documents cached.
pub const CACHE_CAPACITY: u64 = 10_000;

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

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    document: Document,
    max_age: Duration,
}

struct MaxAge;

impl Expiry<String, Entry> for MaxAge {
    fn expire_after_create(&self, _key: &String, value: &Entry, _now: Instant) -> Option<Duration> {
        Some(value.max_age)
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
}

/// Fetches and caches metadata and key sets.
#[derive(Clone)]
pub struct Discovery {
    fetcher: Fetcher,
    mode: OriginMode,
    documents: moka::future::Cache<String, Entry>,
    stale: moka::sync::Cache<String, Document>,
    refetched: moka::sync::Cache<(KeyOwner, Origin), ()>,
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
    /// Discovery through `fetcher`, accepting identifiers of `mode`.
    pub fn new(fetcher: Fetcher, mode: OriginMode) -> Self {
        Self {
            fetcher,
            mode,
            documents: moka::future::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(MaxAge)
                .build(),
            stale: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(STALE_LIMIT)
                .build(),
            refetched: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(KID_REFETCH_INTERVAL)
                .build(),
        }
    }

    /// The document cache, for tests that need to expire it.
    #[cfg(test)]
    pub(crate) fn documents_for_tests(&self) -> &moka::future::Cache<String, Entry> {
        &self.documents
    }

    /// The identifier mode discovery enforces.
    pub fn mode(&self) -> OriginMode {
        self.mode
    }

    /// Fetches (or returns the cached copy of) `url`, parsed by `parse`.
    async fn document(
        &self,
        url: String,
        parse: impl FnOnce(&[u8]) -> Result<Document, String>,
    ) -> Result<Document, DiscoveryError> {
        let fetch = async {
            let fetched = self.fetcher.get(&url).await?;
            let document = parse(&fetched.body).map_err(|reason| DiscoveryError::Document {
                url: url.clone(),
                reason,
            })?;
            self.stale.insert(url.clone(), document.clone());
            Ok::<_, DiscoveryError>(Entry {
                document,
                max_age: fetched.max_age,
            })
        };
        // moka coalesces concurrent misses for one key into one fetch (P-MD-3).
        match self.documents.try_get_with(url.clone(), fetch).await {
            Ok(entry) => Ok(entry.document),
            Err(error) => match self.stale.get(&url) {
                Some(document) => {
                    tracing::warn!(%url, %error, "discovery failed; using the cached copy (P-MD-3)");
                    Ok(document)
                }
                None => Err((*error).clone()),
            },
        }
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
        self.document(url, move |body| {
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

    fn kind_mismatch(&self, origin: &Origin, owner: KeyOwner) -> DiscoveryError {
        DiscoveryError::Document {
            url: origin.well_known(owner.well_known()),
            reason: "cached under another document kind".to_owned(),
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
            .document(url.clone(), |body| {
                Jwks::from_json(body)
                    .map(|jwks| Document::Jwks(Arc::new(jwks)))
                    .map_err(|e| e.to_string())
            })
            .await?;
        match document {
            Document::Jwks(jwks) => Ok(jwks),
            _ => Err(DiscoveryError::Document {
                url,
                reason: "cached under another document kind".to_owned(),
            }),
        }
    }

    /// The key `kid` of `origin`. An unknown `kid` refetches the metadata
    /// and JWKS, at most once a minute per party (P-MD-3): keys rotate.
    pub async fn key(
        &self,
        owner: KeyOwner,
        origin: &Origin,
        kid: &Kid,
    ) -> Result<PublicKey, KeyLookupError> {
        // P-ERR-2: what a fetch ran into (addresses, statuses, transport
        // errors) is logged here and never told to the caller, who could
        // otherwise use discovery to probe hosts.
        let unavailable = |e: DiscoveryError| {
            tracing::warn!(%origin, error = %e, "discovery failed");
            KeyLookupError::Unavailable(format!(
                "the metadata or keys of {origin} could not be obtained"
            ))
        };
        let jwks = self.jwks(owner, origin).await.map_err(unavailable)?;
        if let Some(key) = jwks.find(kid) {
            return Ok(key.clone());
        }
        let gate = (owner, origin.clone());
        if self.refetched.contains_key(&gate) {
            return Err(KeyLookupError::UnknownKid(kid.clone()));
        }
        self.refetched.insert(gate, ());
        let metadata_url = origin.well_known(owner.well_known());
        // Drop the cached metadata and key set, then look again.
        if let Ok(document) = self.metadata(owner, origin).await
            && let Some(jwks_uri) = document.jwks_uri()
        {
            self.documents.invalidate(jwks_uri).await;
        }
        self.documents.invalidate(&metadata_url).await;
        let jwks = self.jwks(owner, origin).await.map_err(unavailable)?;
        jwks.find(kid)
            .cloned()
            .ok_or_else(|| KeyLookupError::UnknownKid(kid.clone()))
    }

    /// Fetches what `need` names, so that verification can run synchronously.
    pub async fn prefetch(&self, need: &KeyNeed) -> Prefetched {
        match need {
            KeyNeed::None => Prefetched { found: None },
            KeyNeed::Keys { owner, origin, kid } => {
                let result = self.key(*owner, origin, kid).await;
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

        let rotated = SigningKey::generate(Algorithm::Ed25519).unwrap();
        peer.keys.lock().unwrap().push(JwksKey {
            kid: kid("k2"),
            key: rotated.public_key().clone(),
        });
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
