//! Calling the next resource as an agent: token exchange (E§3.9, E§9.10,
//! profile: P-AS-7, P-MD-4).
//!
//! ```text
//! GET <downstream>   signed as this resource (jwks_uri, well-known="aauth-agent")
//!   ◀── 401/403 Agent-Auth: httpsig; auth-token; resource_token=…; auth_server=…
//! auth server metadata (discovery) → agent_token_endpoint
//! POST agent_token_endpoint   signed as this resource, with a Nonce (P-SIG-6)
//!   request_type=exchange&resource_token=<challenge's>&upstream_token=<caller's auth token>
//!   ◀── 200 {"auth_token", "expires_in"}   (cnf = this resource's key, P-AS-7)
//! GET <downstream>   signed with that auth token (jwt) and this resource's key
//! ```
//!
//! Exchanged tokens are cached per (upstream token hash, downstream URL)
//! until they expire, so repeated calls under one upstream token exchange
//! once. One call makes at most one exchange and one retry, each request
//! within the client's timeout, the whole call within [`CALL_BUDGET`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aauth_http::client::{ClientError, Identity, Outgoing, Reply, SigningClient};
use aauth_http::discovery::Discovery;
use aauth_protocol::challenge::AgentAuth;
use aauth_protocol::error::{Condition, ErrorCode};
use aauth_protocol::ids::{Kid, Origin, OriginMode};
use aauth_protocol::keys::{SigningKey, sha256};
use http::StatusCode;
use moka::Expiry;
use serde::Deserialize;
use url::Url;

/// Timeout of each request to the downstream or its auth server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);
/// Time for a whole downstream call (below the server's own 30 s limit,
/// so the caller gets this resource's answer rather than a 408).
pub const CALL_BUDGET: Duration = Duration::from_secs(25);
/// Longest time an exchanged token is kept, whatever its `expires_in`.
pub const MAX_CACHED_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Most exchanged tokens kept.
const CACHE_CAPACITY: u64 = 10_000;
/// Longest piece of a peer's text quoted in a description.
const MAX_QUOTE: usize = 120;

fn quote(text: &str) -> String {
    text.chars().take(MAX_QUOTE).collect()
}

/// Why the downstream call failed. `Display` is written for this
/// resource's caller and names the downstream (or its auth server).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownstreamError {
    /// Connecting, sending or reading failed (including the client's timeout).
    #[error("downstream {url}: {reason}")]
    Transport {
        /// The URL called.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The whole call took longer than [`CALL_BUDGET`].
    #[error("downstream {url}: no answer within {} s", CALL_BUDGET.as_secs())]
    Timeout {
        /// The downstream URL.
        url: String,
    },
    /// A 401/403 without an `Agent-Auth` challenge carrying a resource
    /// token and an auth server (E§4.3).
    #[error("downstream {url} answered {status} without a resource token challenge")]
    NoResourceToken {
        /// The downstream URL.
        url: String,
        /// Its status.
        status: u16,
    },
    /// The challenge's `auth_server` is not an acceptable identifier, or
    /// its metadata could not be had (E§8.2).
    #[error("downstream {url}: its auth server {auth_server}: {reason}")]
    AuthServer {
        /// The downstream URL.
        url: String,
        /// The `auth_server` as received.
        auth_server: String,
        /// What is wrong.
        reason: String,
    },
    /// The auth server needs the user (P-AS-7: `interaction_required`).
    /// P-UI (resource-initiated user interaction) is not implemented, so
    /// this resource cannot offer the fallback.
    #[error(
        "downstream {url}: its auth server {auth_server} needs the user's consent for the \
         exchange; this resource cannot ask for it yet (resource-initiated user interaction \
         is not implemented)"
    )]
    InteractionRequired {
        /// The downstream URL.
        url: String,
        /// The auth server.
        auth_server: String,
    },
    /// The auth server refused the exchange (E§9.10).
    #[error(
        "downstream {url}: its auth server {auth_server} refused the exchange: {status} {error}"
    )]
    ExchangeRefused {
        /// The downstream URL.
        url: String,
        /// The auth server.
        auth_server: String,
        /// Its status.
        status: u16,
        /// Its `error` (and description), quoted briefly.
        error: String,
    },
    /// The auth server's 200 is not `{"auth_token", "expires_in"}` (E§9.10).
    #[error("downstream {url}: its auth server {auth_server} answered the exchange with {reason}")]
    ExchangeAnswer {
        /// The downstream URL.
        url: String,
        /// The auth server.
        auth_server: String,
        /// What is wrong.
        reason: String,
    },
    /// The downstream refused the request made with the exchanged token,
    /// or answered another error.
    #[error("downstream {url} answered {status} {error}")]
    Refused {
        /// The downstream URL.
        url: String,
        /// Its status.
        status: u16,
        /// Its `error` (and description), quoted briefly.
        error: String,
    },
    /// The downstream's success answer is not JSON.
    #[error("downstream {url} answered {status} with a body that is not JSON")]
    NotJson {
        /// The downstream URL.
        url: String,
        /// Its status.
        status: u16,
    },
}

impl DownstreamError {
    /// The P-ERR-1 row this resource answers with. Only the auth server's
    /// `interaction_required` is the caller's to act on; every other
    /// failure is this resource's (a `502` row may be wanted; P-ERR-1 has none).
    pub fn condition(&self) -> Condition {
        match self {
            Self::InteractionRequired { .. } => Condition::InteractionRequired,
            Self::Transport { .. }
            | Self::Timeout { .. }
            | Self::NoResourceToken { .. }
            | Self::AuthServer { .. }
            | Self::ExchangeRefused { .. }
            | Self::ExchangeAnswer { .. }
            | Self::Refused { .. }
            | Self::NotJson { .. } => Condition::ServerFault,
        }
    }
}

/// An exchanged auth token and how long to keep it.
#[derive(Clone)]
struct Exchanged {
    auth_token: String,
    lifetime: Duration,
}

impl fmt::Debug for Exchanged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchanged")
            .field("auth_token", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// The cache key: SHA-256 of the upstream token (the token itself is not
/// kept) and the downstream URL.
type TokenKey = ([u8; 32], String);

struct UntilExpiry;

impl Expiry<TokenKey, Arc<Exchanged>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &TokenKey,
        value: &Arc<Exchanged>,
        _now: Instant,
    ) -> Option<Duration> {
        Some(value.lifetime)
    }
}

/// The exchange answer (E§9.10 "Response").
#[derive(Deserialize)]
struct ExchangeAnswer {
    auth_token: String,
    expires_in: u64,
}

/// The downstream this resource calls, and how it signs as an agent.
#[derive(Clone)]
pub struct Downstream {
    url: Url,
    /// The only auth server the caller's token is sent to in an exchange.
    auth_server: Origin,
    /// This resource as an agent: `jwks_uri` on its own origin (P-MD-4).
    me: Identity,
    key: Arc<SigningKey>,
    client: SigningClient,
    discovery: Discovery,
    tokens: moka::future::Cache<TokenKey, Arc<Exchanged>>,
}

impl fmt::Debug for Downstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Downstream")
            .field("url", &self.url.as_str())
            .field("cached_tokens", &self.tokens.entry_count())
            .finish_non_exhaustive()
    }
}

impl Downstream {
    /// Calls `url` as the agent `me` (this resource's identifier) signing
    /// with `key` under `kid` (P-MD-4), discovering auth servers through
    /// `discovery`.
    pub fn new(
        url: Url,
        auth_server: Origin,
        me: Origin,
        kid: Kid,
        key: Arc<SigningKey>,
        discovery: Discovery,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            url,
            auth_server,
            me: Identity::AgentServer {
                agent: me,
                kid,
                key: key.clone(),
            },
            key,
            client: SigningClient::with_timeout(REQUEST_TIMEOUT)?,
            discovery,
            tokens: moka::future::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(UntilExpiry)
                .build(),
        })
    }

    /// The downstream URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Calls the downstream on behalf of the holder of `upstream` (the
    /// auth token this resource's caller presented) and returns its JSON.
    pub async fn call(&self, upstream: &str) -> Result<serde_json::Value, DownstreamError> {
        tokio::time::timeout(CALL_BUDGET, self.call_within(upstream))
            .await
            .unwrap_or_else(|_| {
                Err(DownstreamError::Timeout {
                    url: self.url.to_string(),
                })
            })
    }

    async fn call_within(&self, upstream: &str) -> Result<serde_json::Value, DownstreamError> {
        let cache_key: TokenKey = (sha256(upstream.as_bytes()), self.url.to_string());
        let first = match self.tokens.get(&cache_key).await {
            Some(cached) => self.get(&self.with_token(&cached.auth_token)).await?,
            // E§3.9: "attempt access (no auth)" — as itself, identified.
            None => self.get(&self.me).await?,
        };
        let reply = if matches!(
            first.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            // Whatever was cached no longer serves.
            self.tokens.invalidate(&cache_key).await;
            let challenge = first
                .agent_auth()
                .filter(|c| c.resource_token().is_some() && c.auth_server().is_some())
                .ok_or_else(|| DownstreamError::NoResourceToken {
                    url: self.url.to_string(),
                    status: first.status.as_u16(),
                })?;
            let exchanged = Arc::new(self.exchange(challenge, upstream).await?);
            self.tokens.insert(cache_key, Arc::clone(&exchanged)).await;
            // The one retry.
            self.get(&self.with_token(&exchanged.auth_token)).await?
        } else {
            first
        };
        if !reply.status.is_success() {
            return Err(DownstreamError::Refused {
                url: self.url.to_string(),
                status: reply.status.as_u16(),
                error: describe(&reply),
            });
        }
        reply.json().map_err(|_| DownstreamError::NotJson {
            url: self.url.to_string(),
            status: reply.status.as_u16(),
        })
    }

    /// Signed with an exchanged token, whose `cnf` is this resource's key (P-AS-7).
    fn with_token(&self, auth_token: &str) -> Identity {
        Identity::AuthToken {
            auth_token: auth_token.to_owned(),
            key: self.key.clone(),
        }
    }

    async fn get(&self, identity: &Identity) -> Result<Reply, DownstreamError> {
        self.client
            .send(identity, Outgoing::get(self.url.clone()))
            .await
            .map_err(|e| DownstreamError::Transport {
                url: self.url.to_string(),
                reason: e.to_string(),
            })
    }

    /// E§9.10 with P-AS-7: `request_type=exchange`, the downstream's
    /// resource token, and the upstream token as `upstream_token`, signed
    /// as this resource.
    async fn exchange(
        &self,
        challenge: &AgentAuth,
        upstream: &str,
    ) -> Result<Exchanged, DownstreamError> {
        let resource_token = challenge.resource_token().unwrap_or_default();
        let named = challenge.auth_server().unwrap_or_default();
        let auth_server_error = |reason: String| DownstreamError::AuthServer {
            url: self.url.to_string(),
            auth_server: quote(named),
            reason,
        };
        let auth_server = Origin::parse(named, self.mode())
            .map_err(|e| auth_server_error(format!("not an identifier: {e}")))?;
        // The caller's auth token goes only to the configured auth server,
        // whatever a downstream names.
        if auth_server != self.auth_server {
            return Err(auth_server_error(format!(
                "is not the configured downstream auth server {}; the caller's token is not sent there",
                self.auth_server
            )));
        }
        let metadata = self
            .discovery
            .auth_server_metadata(&auth_server)
            .await
            .map_err(|e| auth_server_error(e.to_string()))?;
        let endpoint = Url::parse(metadata.agent_token_endpoint.as_str())
            .map_err(|e| auth_server_error(format!("agent_token_endpoint: {e}")))?;
        // ...and only to an endpoint on that server's own origin.
        if endpoint.origin().ascii_serialization() != auth_server.as_str() {
            return Err(auth_server_error(
                "its agent_token_endpoint is not on its own origin".to_owned(),
            ));
        }
        tracing::info!(
            downstream = %self.url,
            auth_server = %auth_server,
            "exchanging the caller's auth token for the downstream (E§9.10)"
        );
        let request = Outgoing::post_form(
            endpoint.clone(),
            &[
                ("request_type", "exchange"),
                ("resource_token", resource_token),
                // profile: P-AS-7 — "sends the upstream auth token in the
                // form parameter upstream_token".
                ("upstream_token", upstream),
            ],
        );
        let reply =
            self.client
                .send(&self.me, request)
                .await
                .map_err(|e| DownstreamError::Transport {
                    url: endpoint.to_string(),
                    reason: e.to_string(),
                })?;
        if reply.status != StatusCode::OK {
            // profile: P-AS-7 — "if policy would need consent, 400
            // interaction_required, and the resource falls back to P-UI".
            if reply.error_code() == Some(ErrorCode::InteractionRequired) {
                return Err(DownstreamError::InteractionRequired {
                    url: self.url.to_string(),
                    auth_server: auth_server.to_string(),
                });
            }
            return Err(DownstreamError::ExchangeRefused {
                url: self.url.to_string(),
                auth_server: auth_server.to_string(),
                status: reply.status.as_u16(),
                error: describe(&reply),
            });
        }
        let answer: ExchangeAnswer = reply.json().map_err(|e| DownstreamError::ExchangeAnswer {
            url: self.url.to_string(),
            auth_server: auth_server.to_string(),
            reason: format!("a body that is not {{\"auth_token\", \"expires_in\"}}: {e}"),
        })?;
        Ok(Exchanged {
            auth_token: answer.auth_token,
            lifetime: Duration::from_secs(answer.expires_in).min(MAX_CACHED_LIFETIME),
        })
    }

    fn mode(&self) -> OriginMode {
        self.discovery.mode()
    }
}

/// A peer's error answer in brief: its `error` and description, quoted.
fn describe(reply: &Reply) -> String {
    match &reply.error {
        Some(error) => quote(&error.to_string()),
        None => "(no JSON error body)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_interaction_required_is_the_callers_to_act_on() {
        // profile: P-AS-7 — the exchange's interaction_required becomes the
        // resource's own 401 interaction_required (P-UI fallback not built).
        let url = "http://127.0.0.1:1/chain".to_owned();
        let interaction = DownstreamError::InteractionRequired {
            url: url.clone(),
            auth_server: "http://127.0.0.1:2".to_owned(),
        };
        assert_eq!(interaction.condition(), Condition::InteractionRequired);
        assert_eq!(interaction.condition().wire().status, 401);
        assert!(interaction.to_string().contains("not implemented"));
        let refused = DownstreamError::Refused {
            url,
            status: 403,
            error: "insufficient_scope".to_owned(),
        };
        assert_eq!(refused.condition(), Condition::ServerFault);
        assert!(
            refused
                .to_string()
                .starts_with("downstream http://127.0.0.1:1/chain")
        );
    }

    #[test]
    fn exchanged_tokens_do_not_show_in_debug() {
        let exchanged = Exchanged {
            auth_token: "secret.token.value".to_owned(),
            lifetime: Duration::from_secs(1),
        };
        assert!(!format!("{exchanged:?}").contains("secret"));
    }
}
