//! Fetching a metadata or JWKS document under the guards of P-MD-3: HTTPS
//! only (dev mode: the loopback `http` forms of P-MD-1), allowed addresses
//! only (see [`crate::guard`]), no redirects, at most 64 KiB, at most 5 s.

use std::sync::Arc;
use std::time::Duration;

use aauth_protocol::ids::OriginMode;
use bytes::{Bytes, BytesMut};
use url::{Host, Url};

use crate::guard::{GuardedResolver, Lookup, SystemLookup, check_address};

/// Largest document accepted (P-MD-3).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Longest a fetch may take, connection included (P-MD-3).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest cache lifetime honoured (P-MD-3).
pub const MIN_MAX_AGE: Duration = Duration::from_secs(60);
/// Longest cache lifetime honoured (P-MD-3).
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// Cache lifetime without `Cache-Control: max-age` (P-MD-3).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// A fetched document and how long it may be cached.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The body, at most [`MAX_DOCUMENT_BYTES`].
    pub body: Bytes,
    /// `Cache-Control: max-age`, clamped to [60 s, 24 h]; 5 min by default.
    pub max_age: Duration,
}

/// Why a fetch failed. The texts name the URL's host, never its contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Not an absolute URL.
    #[error("{0:?} is not an absolute URL")]
    Url(String),
    /// Not `https` (or not a dev-mode loopback `http` URL).
    #[error("{0} is not an https URL{1}")]
    Scheme(String, &'static str),
    /// The host is an address discovery may not reach.
    #[error("{host} is {why}, which discovery may not reach")]
    Address {
        /// The host.
        host: String,
        /// Which kind of address.
        why: &'static str,
    },
    /// Connection, TLS or resolution failed (including refused addresses).
    #[error("fetching {host} failed: {reason}")]
    Transport {
        /// The host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// No answer within [`FETCH_TIMEOUT`].
    #[error("fetching {0} took longer than 5 s")]
    Timeout(String),
    /// A redirect: never followed (P-MD-3).
    #[error("{host} answered with a redirect ({status}); redirects are not followed")]
    Redirect {
        /// The host.
        host: String,
        /// The status code.
        status: u16,
    },
    /// Any other non-200 status.
    #[error("{host} answered {status}")]
    Status {
        /// The host.
        host: String,
        /// The status code.
        status: u16,
    },
    /// The body is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("the document from {0} is larger than 64 KiB")]
    TooLarge(String),
}

/// Fetches documents for discovery, with the P-MD-3 guards.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    mode: OriginMode,
}

impl Fetcher {
    /// A fetcher using the system resolver.
    pub fn new(mode: OriginMode) -> Result<Self, FetchError> {
        Self::with_lookup(mode, Arc::new(SystemLookup))
    }

    /// A fetcher resolving names through `lookup` (tests use a fixed table).
    pub fn with_lookup(mode: OriginMode, lookup: Arc<dyn Lookup>) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(lookup, mode)))
            .user_agent(concat!("aauth-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Transport {
                host: String::new(),
                reason: e.to_string(),
            })?;
        Ok(Self { client, mode })
    }

    /// Checks `url` against the scheme and address rules before any traffic.
    pub fn check_url(&self, url: &str) -> Result<Url, FetchError> {
        let parsed = Url::parse(url).map_err(|_| FetchError::Url(truncate(url)))?;
        let host = parsed
            .host()
            .ok_or_else(|| FetchError::Url(truncate(url)))?;
        let host_text = host.to_string();
        match parsed.scheme() {
            "https" => {}
            "http" if self.mode == OriginMode::Dev => {
                // P-MD-1 dev forms only: http://127.0.0.1:PORT, http://localhost:PORT.
                let loopback = matches!(&host, Host::Domain("localhost"))
                    || matches!(&host, Host::Ipv4(ip) if ip.is_loopback());
                if !loopback {
                    return Err(FetchError::Scheme(
                        host_text,
                        " (dev mode allows plain http to 127.0.0.1 and localhost only)",
                    ));
                }
            }
            _ => return Err(FetchError::Scheme(host_text, "")),
        }
        // Address literals never reach the resolver: check them here.
        let literal = match host {
            Host::Ipv4(ip) => Some(std::net::IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(std::net::IpAddr::V6(ip)),
            Host::Domain(_) => None,
        };
        if let Some(ip) = literal
            && let Err(refusal) = check_address(ip, self.mode)
        {
            return Err(FetchError::Address {
                host: host_text,
                why: refusal.as_str(),
            });
        }
        Ok(parsed)
    }

    /// GETs `url` and returns its body if it is a 200 of at most 64 KiB.
    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let parsed = self.check_url(url)?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout(host.clone())
            } else {
                FetchError::Transport {
                    host: host.clone(),
                    reason: error_chain(&e),
                }
            }
        };
        let mut response = self
            .client
            .get(parsed)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect {
                host,
                status: status.as_u16(),
            });
        }
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::Status {
                host,
                status: status.as_u16(),
            });
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(FetchError::TooLarge(host));
        }
        let max_age = max_age(response.headers());
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len().saturating_add(chunk.len()) > MAX_DOCUMENT_BYTES {
                return Err(FetchError::TooLarge(host));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            body: body.freeze(),
            max_age,
        })
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// `Cache-Control: max-age` clamped to [60 s, 24 h]; 5 min when absent
/// (P-MD-3). `no-store` and `no-cache` count as the minimum.
pub fn max_age(headers: &http::HeaderMap) -> Duration {
    let mut seconds = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            if directive == "no-store" || directive == "no-cache" {
                return MIN_MAX_AGE;
            }
            if let Some(n) = directive.strip_prefix("max-age=") {
                seconds = n.trim_matches('"').parse::<u64>().ok().or(seconds);
            }
        }
    }
    seconds
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_MAX_AGE)
        .clamp(MIN_MAX_AGE, MAX_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        map.insert(http::header::CACHE_CONTROL, value.parse().unwrap());
        map
    }

    #[test]
    fn max_age_is_clamped_between_a_minute_and_a_day() {
        // profile: P-MD-3
        assert_eq!(max_age(&http::HeaderMap::new()), DEFAULT_MAX_AGE);
        assert_eq!(max_age(&headers("max-age=5")), MIN_MAX_AGE);
        assert_eq!(
            max_age(&headers("public, max-age=600")),
            Duration::from_secs(600)
        );
        assert_eq!(max_age(&headers("max-age=999999")), MAX_MAX_AGE);
        assert_eq!(max_age(&headers("no-store")), MIN_MAX_AGE);
        assert_eq!(max_age(&headers("max-age=abc")), DEFAULT_MAX_AGE);
    }

    #[test]
    fn only_https_outside_dev_mode() {
        // profile: P-MD-3, P-MD-1
        let production = Fetcher::new(OriginMode::Production).unwrap();
        assert!(production.check_url("https://agent.example/x").is_ok());
        assert!(matches!(
            production.check_url("http://agent.example/x"),
            Err(FetchError::Scheme(..))
        ));
        assert!(matches!(
            production.check_url("http://127.0.0.1:4000/x"),
            Err(FetchError::Scheme(..))
        ));
        let dev = Fetcher::new(OriginMode::Dev).unwrap();
        assert!(dev.check_url("http://127.0.0.1:4000/x").is_ok());
        assert!(dev.check_url("http://localhost:4000/x").is_ok());
        assert!(matches!(
            dev.check_url("http://agent.example/x"),
            Err(FetchError::Scheme(..))
        ));
    }

    #[test]
    fn address_literals_are_checked_before_any_traffic() {
        let production = Fetcher::new(OriginMode::Production).unwrap();
        for url in [
            "https://10.0.0.1/jwks",
            "https://127.0.0.1/jwks",
            "https://[::1]/jwks",
            "https://169.254.169.254/latest",
        ] {
            assert!(
                matches!(production.check_url(url), Err(FetchError::Address { .. })),
                "{url}"
            );
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_private_address_is_never_contacted() {
        struct Private;
        impl Lookup for Private {
            fn lookup(&self, _host: &str) -> crate::guard::LookupFuture {
                Box::pin(async { Ok(vec!["10.0.0.7".parse().unwrap()]) })
            }
        }
        let fetcher = Fetcher::with_lookup(OriginMode::Production, Arc::new(Private)).unwrap();
        let error = fetcher
            .get("https://agent.example/.well-known/aauth-agent")
            .await
            .unwrap_err();
        match error {
            FetchError::Transport { reason, .. } => {
                assert!(reason.contains("private address"), "{reason}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
