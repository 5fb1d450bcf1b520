//! A load benchmark of the resource: its authorized endpoint (`GET /data`
//! with an auth token, E§9.8) beside its unauthenticated one (`GET /public`
//! without a signature, E§4.5), in one run against the real binaries.
//!
//! What is measured per phase: requests/s, latency percentiles, non-2xx
//! answers, the resource process's CPU seconds per request (from
//! `/proc/<pid>/stat`), the load generator's own CPU, and — in the
//! authorized phase — the resource's resident memory each second and every
//! fetch of the auth server's metadata or JWKS (through [`proxy`]).
//! The yardstick of the CPU target is one Ed25519 verification timed in the
//! same process: [`Yardstick`] times it throughout the phases, beside the
//! load, and gives its spread; [`raw_verify`] times it once, idle.

pub mod procfs;
pub mod proxy;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aauth_http::client::{Identity, Outgoing, SigningClient};
use aauth_protocol::keys::{Algorithm, SigningKey, VerifyingKey};
use url::Url;

/// One phase: who sends what, how hard, for how long.
#[derive(Debug, Clone)]
pub struct Phase {
    /// A name for the table.
    pub name: &'static str,
    /// The URL requested with `GET`.
    pub url: Url,
    /// Signed as this identity, or unsigned.
    pub identity: Option<Identity>,
    /// Concurrent workers, each with its own keep-alive connection.
    pub workers: usize,
    /// How long the phase runs.
    pub duration: Duration,
}

/// The process whose CPU and memory are watched.
#[derive(Debug, Clone, Copy)]
pub struct Watched {
    /// Its pid.
    pub pid: u32,
    /// Clock ticks per second.
    pub ticks: u64,
}

/// What one phase measured.
#[derive(Debug, Clone, Default)]
pub struct PhaseResult {
    /// The phase's name.
    pub name: &'static str,
    /// Answers received within the phase.
    pub requests: u64,
    /// Answers that were not 2xx.
    pub non_2xx: u64,
    /// Requests that got no answer (transport errors).
    pub errors: u64,
    /// The first failure seen, for the report.
    pub first_failure: Option<String>,
    /// Wall-clock length of the phase, seconds.
    pub elapsed: f64,
    /// Latency of each answered request (send to last body byte), µs, sorted.
    pub latencies_us: Vec<u32>,
    /// The resource's CPU seconds over the phase.
    pub server_cpu: f64,
    /// The load generator's CPU seconds over the phase.
    pub generator_cpu: f64,
    /// Time the workers spent signing, seconds (summed over workers).
    pub signing: f64,
    /// The resource's RSS (KiB) sampled every second: (second, KiB).
    pub rss: Vec<(u64, u64)>,
}

impl PhaseResult {
    /// Requests per second.
    pub fn rps(&self) -> f64 {
        if self.elapsed > 0.0 {
            as_f64(self.requests) / self.elapsed
        } else {
            0.0
        }
    }

    /// The `q` quantile of the latencies (nearest rank), µs.
    pub fn latency_us(&self, q: f64) -> u32 {
        quantile(&self.latencies_us, q)
    }

    /// The resource's CPU µs per request.
    pub fn server_cpu_us_per_request(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.server_cpu * 1e6 / as_f64(self.requests)
    }

    /// The RSS sample at `second` (or the first one after it).
    pub fn rss_at(&self, second: u64) -> Option<u64> {
        self.rss.iter().find(|(s, _)| *s >= second).map(|(_, k)| *k)
    }

    /// The last RSS sample.
    pub fn rss_last(&self) -> Option<(u64, u64)> {
        self.rss.last().copied()
    }
}

#[expect(clippy::cast_precision_loss, reason = "counts of a test run")]
fn as_f64(n: u64) -> f64 {
    n as f64
}

/// Nearest-rank quantile of sorted `values`.
pub fn quantile<T: Copy + Default>(values: &[T], q: f64) -> T {
    if values.is_empty() {
        return T::default();
    }
    let last = values.len().saturating_sub(1);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a slice of a test run's samples"
    )]
    let index = ((q.clamp(0.0, 1.0) * last as f64).round() as usize).min(last);
    values.get(index).copied().unwrap_or_default()
}

/// What one worker counted.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    non_2xx: u64,
    errors: u64,
    first_failure: Option<String>,
    latencies_us: Vec<u32>,
    signing: Duration,
}

async fn worker(
    http: reqwest::Client,
    signer: SigningClient,
    url: Url,
    identity: Option<Identity>,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let mut request = http.get(url.clone());
        if let Some(identity) = &identity {
            // Signed afresh for every request: `created` = now, no Nonce on
            // a GET (P-SIG-6).
            let started = Instant::now();
            match signer.sign(identity, Outgoing::get(url.clone())) {
                Ok(signed) => request = request.headers(signed.headers),
                Err(error) => {
                    tally.errors = tally.errors.saturating_add(1);
                    tally.first_failure.get_or_insert(format!("sign: {error}"));
                    continue;
                }
            }
            tally.signing = tally.signing.saturating_add(started.elapsed());
        }
        let started = Instant::now();
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status();
                response.bytes().await.map(|body| (status, body))
            }
            Err(error) => Err(error),
        };
        let latency = started.elapsed();
        if stop.load(Ordering::Relaxed) {
            // Answered after the phase ended: not counted.
            break;
        }
        match outcome {
            Ok((status, body)) => {
                tally.requests = tally.requests.saturating_add(1);
                tally
                    .latencies_us
                    .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
                if !status.is_success() {
                    tally.non_2xx = tally.non_2xx.saturating_add(1);
                    tally.first_failure.get_or_insert_with(|| {
                        let text: String =
                            String::from_utf8_lossy(&body).chars().take(200).collect();
                        format!("{status}: {text}")
                    });
                }
            }
            Err(error) => {
                tally.errors = tally.errors.saturating_add(1);
                tally.first_failure.get_or_insert(error.to_string());
            }
        }
    }
    tally
}

/// An HTTP client with one keep-alive connection per worker.
pub fn http_client(workers: usize) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(workers)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

/// Runs `phase` against the resource `watched`, sampling its RSS every
/// second when `sample_rss`.
pub async fn run_phase(
    phase: &Phase,
    http: &reqwest::Client,
    watched: Watched,
    sample_rss: bool,
) -> Result<PhaseResult, String> {
    let signer = SigningClient::new().map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let cpu = || procfs::cpu_seconds(watched.pid, watched.ticks);
    let own = || procfs::own_cpu_seconds(watched.ticks);
    let (server_before, own_before) = (
        cpu().ok_or("cannot read the resource's CPU time")?,
        own().unwrap_or(0.0),
    );
    let started = Instant::now();
    let workers: Vec<_> = (0..phase.workers)
        .map(|_| {
            tokio::spawn(worker(
                http.clone(),
                signer.clone(),
                phase.url.clone(),
                phase.identity.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let mut rss = Vec::new();
    let whole = phase.duration.as_secs();
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    for second in 1..=whole {
        ticker.tick().await;
        if sample_rss && let Some(kib) = procfs::rss_kib(watched.pid) {
            rss.push((second, kib));
        }
    }
    let rest = phase.duration.saturating_sub(started.elapsed());
    tokio::time::sleep(rest).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let server_after = cpu().ok_or("cannot read the resource's CPU time")?;
    let own_after = own().unwrap_or(0.0);
    let mut result = PhaseResult {
        name: phase.name,
        elapsed,
        server_cpu: server_after - server_before,
        generator_cpu: own_after - own_before,
        rss,
        ..PhaseResult::default()
    };
    let mut signing = Duration::ZERO;
    for handle in workers {
        let tally = handle.await.map_err(|e| e.to_string())?;
        result.requests = result.requests.saturating_add(tally.requests);
        result.non_2xx = result.non_2xx.saturating_add(tally.non_2xx);
        result.errors = result.errors.saturating_add(tally.errors);
        if result.first_failure.is_none() {
            result.first_failure = tally.first_failure;
        }
        result.latencies_us.extend(tally.latencies_us);
        signing = signing.saturating_add(tally.signing);
    }
    result.signing = signing.as_secs_f64();
    result.latencies_us.sort_unstable();
    Ok(result)
}

/// The raw verification timed throughout a run, interleaved with the load:
/// a thread verifies in small batches with a pause between them, and takes
/// each batch's own CPU time (the thread's CPU clock), so a batch that
/// waited for a CPU is not counted as slower; what the load does to
/// caches and the CPU's clock is, as it is for the server.
#[derive(Debug)]
pub struct Yardstick {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<Vec<f64>, String>>,
}

/// The yardstick's samples (µs per verification, one per batch) in brief.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spread {
    /// Batches timed.
    pub samples: usize,
    /// 10th percentile, µs.
    pub p10: f64,
    /// Median, µs.
    pub median: f64,
    /// 90th percentile, µs.
    pub p90: f64,
}

impl Spread {
    /// Of a set of samples.
    pub fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Self {
            samples: samples.len(),
            p10: quantile(&samples, 0.10),
            median: quantile(&samples, 0.50),
            p90: quantile(&samples, 0.90),
        }
    }

    /// (p90 − p10) ÷ median.
    pub fn relative(&self) -> f64 {
        if self.median > 0.0 {
            (self.p90 - self.p10) / self.median
        } else {
            f64::INFINITY
        }
    }

    /// Whether `cost` (µs) is at most `target` times this yardstick, stated
    /// only when the spread allows it: `Some(true)` when even the slowest
    /// tenth of the yardstick (`p10`, the smallest unit) keeps it within,
    /// `Some(false)` when even the fastest (`p90`) does not, `None` when
    /// the target lies within the spread.
    pub fn within(&self, cost: f64, target: f64) -> Option<bool> {
        if self.samples == 0 || self.p10 <= 0.0 {
            return None;
        }
        if cost / self.p10 <= target {
            Some(true)
        } else if cost / self.p90 > target {
            Some(false)
        } else {
            None
        }
    }
}

impl Yardstick {
    /// Starts timing batches of `per_batch` verifications of a
    /// `message_len`-byte message, pausing `pause` between batches.
    pub fn start(message_len: usize, per_batch: u32, pause: Duration) -> Result<Self, String> {
        let key = SigningKey::generate(Algorithm::Ed25519).map_err(|e| e.to_string())?;
        let message: Vec<u8> = (0..message_len).map(|i| (i % 251) as u8).collect();
        let signature = key.sign(&message).map_err(|e| e.to_string())?;
        let parsed = VerifyingKey::new(key.public_key()).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("yardstick".into())
            .spawn(move || {
                let mut samples = Vec::new();
                while !stopped.load(Ordering::Relaxed) {
                    let before = cpu_time::ThreadTime::try_now()
                        .map_err(|e| format!("the thread's CPU clock: {e}"))?;
                    for _ in 0..per_batch {
                        if parsed
                            .verify(std::hint::black_box(&message), &signature)
                            .is_err()
                        {
                            return Err("the raw verification failed".to_owned());
                        }
                    }
                    let spent = before
                        .try_elapsed()
                        .map_err(|e| format!("the thread's CPU clock: {e}"))?;
                    samples.push(spent.as_secs_f64() * 1e6 / f64::from(per_batch));
                    std::thread::sleep(pause);
                }
                Ok(samples)
            })
            .map_err(|e| e.to_string())?;
        Ok(Self { stop, thread })
    }

    /// Stops and returns every batch's µs per verification, in order.
    pub fn finish(self) -> Result<Vec<f64>, String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| "the yardstick thread panicked".to_owned())?
    }
}

/// One Ed25519 verification, timed in this process: the median over
/// `batches` batches of `per_batch` verifications, µs — with a key parsed
/// beforehand (`VerifyingKey::verify`) and with the key parsed each time
/// (`PublicKey::verify`).
#[derive(Debug, Clone, Copy)]
pub struct RawVerify {
    /// `VerifyingKey::verify`, µs.
    pub parsed_us: f64,
    /// `PublicKey::verify`, µs.
    pub unparsed_us: f64,
    /// Length of the message verified, bytes.
    pub message_len: usize,
}

/// Times [`RawVerify`] over a message of `message_len` bytes.
pub fn raw_verify(message_len: usize, batches: usize, per_batch: u32) -> Result<RawVerify, String> {
    let key = SigningKey::generate(Algorithm::Ed25519).map_err(|e| e.to_string())?;
    let message: Vec<u8> = (0..message_len).map(|i| (i % 251) as u8).collect();
    let signature = key.sign(&message).map_err(|e| e.to_string())?;
    let public = key.public_key().clone();
    let parsed = VerifyingKey::new(&public).map_err(|e| e.to_string())?;
    let time = |f: &dyn Fn() -> bool| -> Result<f64, String> {
        let mut medians = Vec::with_capacity(batches);
        for _ in 0..batches {
            let started = Instant::now();
            for _ in 0..per_batch {
                if !f() {
                    return Err("the raw verification failed".into());
                }
            }
            medians.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(per_batch));
        }
        medians.sort_by(f64::total_cmp);
        Ok(quantile(&medians, 0.5))
    };
    let parsed_us = time(&|| {
        parsed
            .verify(std::hint::black_box(&message), &signature)
            .is_ok()
    })?;
    let unparsed_us = time(&|| {
        public
            .verify(std::hint::black_box(&message), &signature)
            .is_ok()
    })?;
    Ok(RawVerify {
        parsed_us,
        unparsed_us,
        message_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 51);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile::<u32>(&[], 0.5), 0);
    }

    #[test]
    fn a_verdict_is_stated_only_when_the_spread_allows_it() {
        // The yardstick: 20 µs in the fastest tenth, 25 µs in the slowest.
        let spread = Spread::of((0..=50).map(|i| 20.0 + f64::from(i) / 10.0).collect());
        assert!((spread.p10 - 20.5).abs() < 0.01 && (spread.p90 - 24.5).abs() < 0.01);
        assert!((spread.relative() - 4.0 / 22.5).abs() < 0.01);
        // 28 µs: within 1.5 × even of the smallest unit (1.37 ×).
        assert_eq!(spread.within(28.0, 1.5), Some(true));
        // 40 µs: beyond 1.5 × even of the largest unit (1.63 ×).
        assert_eq!(spread.within(40.0, 1.5), Some(false));
        // 33 µs: 1.35 × the largest, 1.61 × the smallest: not stated.
        assert_eq!(spread.within(33.0, 1.5), None);
        assert_eq!(Spread::default().within(1.0, 1.5), None);
    }

    #[test]
    fn the_yardstick_times_batches_until_stopped() {
        let yardstick = Yardstick::start(600, 20, Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let samples = yardstick.finish().unwrap();
        assert!(!samples.is_empty());
        assert!(
            samples.iter().all(|&us| us > 0.0 && us < 10_000.0),
            "{samples:?}"
        );
    }

    #[test]
    fn a_raw_verification_takes_some_microseconds() {
        let raw = raw_verify(600, 3, 50).unwrap();
        assert!(raw.parsed_us > 0.0 && raw.unparsed_us > 0.0);
    }
}
