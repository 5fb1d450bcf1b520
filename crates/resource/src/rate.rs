//! Progressive rate limiting (E§4.5): a fixed window per authentication
//! level, each level counted by what identifies the caller at that level.
//!
//! E§4.5: 429 is "Used when the agent has exceeded rate limits for their
//! current authentication level, but a higher authentication level would
//! have higher limits". Counters live in a bounded cache whose entries
//! expire with their window, so memory stays flat under any key churn.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::config::RateLimits;

/// Most counters kept at once; beyond that the least recently used go.
const CAPACITY: u64 = 100_000;

/// The level a request is counted at, with its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// No signature: counted per client address.
    Unsigned,
    /// `hwk`: counted per key thumbprint.
    Pseudonymous,
    /// `jwks_uri` or agent token: counted per agent.
    Identified,
    /// Auth token: counted per agent.
    Authorized,
}

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Within the limit.
    Allowed,
    /// Over the limit until the window ends, `retry_after` seconds from now.
    Limited {
        /// Seconds until the next window (at least 1).
        retry_after: u64,
    },
}

/// Fixed-window counters per (tier, caller).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limits: RateLimits,
    counters: moka::sync::Cache<(Tier, String, u64), Arc<AtomicU32>>,
}

impl RateLimiter {
    /// A limiter with `limits` (`window` ≥ 1 s, checked by the configuration).
    pub fn new(limits: RateLimits) -> Self {
        let window = limits.window.max(1);
        Self {
            limits: RateLimits { window, ..limits },
            counters: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(Duration::from_secs(window))
                .build(),
        }
    }

    fn limit(&self, tier: Tier) -> u32 {
        match tier {
            Tier::Unsigned => self.limits.unsigned,
            Tier::Pseudonymous => self.limits.pseudonymous,
            Tier::Identified => self.limits.identified,
            Tier::Authorized => self.limits.authorized,
        }
    }

    /// Counts one request by `caller` at `tier`, at Unix time `now`.
    pub fn check(&self, tier: Tier, caller: &str, now: u64) -> Decision {
        let window = self.limits.window;
        let index = now / window;
        let counter = self
            .counters
            .get_with((tier, caller.to_owned(), index), || {
                Arc::new(AtomicU32::new(0))
            });
        let seen = counter.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if seen <= self.limit(tier) {
            Decision::Allowed
        } else {
            let next = index.saturating_add(1).saturating_mul(window);
            Decision::Limited {
                retry_after: next.saturating_sub(now).max(1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(RateLimits {
            window: 60,
            unsigned: 2,
            pseudonymous: 3,
            identified: 4,
            authorized: 5,
        })
    }

    #[test]
    fn each_tier_has_its_own_limit_per_caller() {
        let limiter = limiter();
        let now = 600;
        for (tier, limit) in [
            (Tier::Unsigned, 2),
            (Tier::Pseudonymous, 3),
            (Tier::Identified, 4),
            (Tier::Authorized, 5),
        ] {
            for _ in 0..limit {
                assert_eq!(limiter.check(tier, "a", now), Decision::Allowed);
            }
            assert_eq!(
                limiter.check(tier, "a", now),
                Decision::Limited { retry_after: 60 }
            );
            assert_eq!(limiter.check(tier, "b", now), Decision::Allowed);
        }
    }

    #[test]
    fn a_new_window_starts_afresh_and_retry_after_counts_down_to_it() {
        let limiter = limiter();
        limiter.check(Tier::Unsigned, "a", 610);
        limiter.check(Tier::Unsigned, "a", 615);
        assert_eq!(
            limiter.check(Tier::Unsigned, "a", 655),
            Decision::Limited { retry_after: 5 }
        );
        assert_eq!(limiter.check(Tier::Unsigned, "a", 660), Decision::Allowed);
    }
}
