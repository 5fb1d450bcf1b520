//! `aauth-load`: a load benchmark of the resource. Starts the three parties
//! on loopback, obtains an auth token for `GET /data` as the agent server
//! (the auth server's autonomous policy, E§3.4), then loads a bare axum
//! handler (`aauth-bare`, the baseline peer), the resource's
//! unauthenticated `GET /public` and its authorized `GET /data` in turn and
//! prints requests/s, latency, the resource's CPU per request against one
//! raw Ed25519 verification timed throughout the same run (its spread, and
//! a verdict only where the spread allows one), its memory over the
//! authorized phase, and the auth server metadata/JWKS fetches under load.
//! Then it stores notes and loads a page of them with 20 and with 100 notes
//! stored: the CPU and memory of a request must not grow with what an
//! owner stored.
//!
//! Usage: `aauth-load [--duration SECS] [--public-duration SECS]
//! [--growth-duration SECS] [--workers N] [--warmup SECS] [--keep]`.
//! Exits non-zero when any request failed or the run could not be made.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aauth_agent::Agent;
use aauth_e2e::harness::{Party, free_port};
use aauth_e2e::load::proxy::{self, CountingProxy, Counts};
use aauth_e2e::load::{self, Phase, PhaseResult, RawVerify, Spread, Watched, procfs};
use aauth_e2e::user::{Decision, PlayedUser};
use aauth_e2e::world::{ALICE, ALICE_PASSWORD, Options, World};
use aauth_http::client::{Identity, Outgoing, SigningClient};
use http::Method;
use url::Url;

/// The CPU target: an authorized request costs the resource at most this
/// many raw Ed25519 verifications more than an unauthenticated one.
const CPU_TARGET: f64 = 1.5;
/// The memory target: RSS grows less than this between second 10 and the end.
const RSS_TARGET: f64 = 0.10;
/// When the first memory sample is taken, seconds into the authorized phase.
const RSS_FROM: u64 = 10;
/// The growth target: a page costs at most this many times more CPU with
/// 100 notes stored than with 20.
const GROWTH_TARGET: f64 = 1.10;
/// Verifications per yardstick batch, and the pause between batches (about
/// 5 % of one CPU).
const YARDSTICK_BATCH: u32 = 200;
const YARDSTICK_PAUSE: Duration = Duration::from_millis(95);
/// Notes stored for the growth phases, and each one's size.
const NOTES_FEW: usize = 20;
const NOTES_MANY: usize = 100;
const NOTE_BYTES: usize = 2048;

#[derive(Debug, Clone)]
struct Args {
    duration: u64,
    public_duration: u64,
    growth_duration: u64,
    workers: usize,
    warmup: u64,
    keep: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        duration: 60,
        public_duration: 0,
        growth_duration: 0,
        workers: 32,
        warmup: 3,
        keep: false,
    };
    let mut public_duration = None;
    let mut growth_duration = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|&v: &u64| v > 0)
                .ok_or_else(|| format!("{name} needs a positive number"))
        };
        match arg.as_str() {
            "--duration" => args.duration = value("--duration")?,
            "--public-duration" => public_duration = Some(value("--public-duration")?),
            "--growth-duration" => growth_duration = Some(value("--growth-duration")?),
            "--workers" => {
                args.workers = usize::try_from(value("--workers")?).map_err(|e| e.to_string())?;
            }
            "--warmup" => args.warmup = value("--warmup")?,
            "--keep" => args.keep = true,
            "-h" | "--help" => {
                return Err(
                    "usage: aauth-load [--duration SECS (authorized phase, default 60)] \
                     [--public-duration SECS (default min(duration, 30))] \
                     [--growth-duration SECS (each of two, default min(duration, 20))] [--workers N (32)] \
                     [--warmup SECS (3)] [--keep]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other}; try --help")),
        }
    }
    args.public_duration = public_duration.unwrap_or(args.duration.min(30));
    args.growth_duration = growth_duration.unwrap_or(args.duration.min(20));
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("aauth-load: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Restarts the auth server behind a counting proxy on its own port: the
/// proxy takes the port (and so the issuer), the server moves inside.
async fn interpose_proxy(world: &mut World) -> Result<CountingProxy, String> {
    let issuer = Url::parse(world.auth_server.url()).map_err(|e| e.to_string())?;
    let port = issuer.port().ok_or("the auth server URL has no port")?;
    world.auth_server.stop();
    let inner = free_port();
    let proxy = CountingProxy::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        format!("http://127.0.0.1:{inner}"),
    )
    .await
    .map_err(|e| format!("proxy on port {port}: {e}"))?;
    let args: Vec<String> = vec![
        "serve".into(),
        "--dev".into(),
        "--config".into(),
        world.dir().join("auth-server.toml").display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{inner}"),
        "--public-url".into(),
        issuer.as_str().trim_end_matches('/').to_owned(),
    ];
    world.auth_server =
        start_party(world, "aauth-auth-server", "auth-server-behind-proxy", args).await?;
    Ok(proxy)
}

/// Starts `binary` with `args` in the world's directory (off the async
/// runtime: starting waits for its `listening url=` line).
async fn start_party(
    world: &World,
    binary: &'static str,
    label: &'static str,
    args: Vec<String>,
) -> Result<Party, String> {
    let dir = world.dir().to_owned();
    tokio::task::spawn_blocking(move || Party::start(binary, label, &args, &dir))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{label}: {e}"))
}

/// The agent server itself as an agent (a user is there should consent be
/// asked for; the world's autonomous rules make it unneeded).
fn server_agent(world: &World) -> Result<Agent, String> {
    let quiet = Arc::new(|_: &str| {});
    world
        .server_agent(Arc::new(PlayedUser::new(
            ALICE,
            ALICE_PASSWORD,
            Decision::Approve,
            quiet,
        )))
        .map_err(|e| e.to_string())
}

/// An auth token for `GET /data`, obtained as the agent server itself.
async fn authorized_identity(world: &World, data: &Url) -> Result<Identity, String> {
    let agent = server_agent(world)?;
    let reply = agent
        .call(Method::GET, data.as_str(), None, None)
        .await
        .map_err(|e| e.to_string())?;
    if !reply.status.is_success() {
        return Err(format!("GET /data as the agent server: {}", reply.status));
    }
    let grant = agent
        .tokens()
        .all()
        .into_iter()
        .next()
        .ok_or("the agent holds no auth token after GET /data")?;
    let key = world.agent_server_key().map_err(|e| e.to_string())?;
    Ok(Identity::AuthToken {
        auth_token: grant.auth_token.expose().to_owned(),
        key: Arc::new(key.key),
    })
}

fn pid_of(world: &World, binary: &str, config: &str) -> Result<u32, String> {
    procfs::find_pid(binary, &world.dir().join(config))
        .ok_or_else(|| format!("cannot find the {binary} process"))
}

async fn run(args: &Args) -> Result<bool, String> {
    let second_port = free_port();
    let options = Options {
        auth_token_lifetime: 3600,
        rate_limits: [1_000_000_000; 4],
        rate_window: 60,
        keep: args.keep,
        // The growth phase stores notes as the agent server (E§3.4), in the
        // resource and in a second one.
        auth_config: format!(
            "[[autonomous]]\nagent = \"{{agent_url}}\"\nresource = \"{{resource_url}}\"\n\
             scopes = [\"data.write\"]\n\n\
             [[autonomous]]\nagent = \"{{agent_url}}\"\nresource = \"http://127.0.0.1:{second_port}\"\n\
             scopes = [\"data.read\", \"data.write\"]\n"
        ),
        ..Options::default()
    };
    let mut world = tokio::task::spawn_blocking(move || World::start(&options))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let proxy = interpose_proxy(&mut world).await?;
    let ticks = procfs::clock_ticks();
    let resource_pid = pid_of(&world, "aauth-resource", "resource.toml")?;
    let auth_pid = pid_of(&world, "aauth-auth-server", "auth-server.toml")?;
    let agent_pid = pid_of(&world, "aauth-agent-server", "agent-server.toml")?;
    let watched = Watched {
        pid: resource_pid,
        ticks,
    };
    let resource = world.resource.url().to_owned();
    let url = |path: &str| Url::parse(&format!("{resource}{path}")).map_err(|e| e.to_string());
    let (public, data) = (url("/public")?, url("/data")?);

    let identity = authorized_identity(&world, &data).await?;
    let signed = SigningClient::new()
        .map_err(|e| e.to_string())?
        .sign(&identity, Outgoing::get(data.clone()))
        .map_err(|e| e.to_string())?;
    let header_len = |name: &str| signed.headers.get(name).map_or(0, |v| v.len());
    // The signature base covers @method, @authority, @path, Signature-Key
    // (with the whole auth token) and the parameters: about this long.
    let base_len = header_len("signature-key") + header_len("signature-input") + 40;
    let auth_token_len = match &identity {
        Identity::AuthToken { auth_token, .. } => auth_token.len(),
        _ => 0,
    };

    let http = load::http_client(args.workers)?;
    let phase = |name, url: &Url, identity: Option<&Identity>, secs| Phase {
        name,
        url: url.clone(),
        identity: identity.cloned(),
        workers: args.workers,
        duration: Duration::from_secs(secs),
    };
    eprintln!(
        "resource {resource} (pid {resource_pid}); warming up {} s per endpoint…",
        args.warmup
    );
    let mut ok = true;
    for warm in [
        phase("warm-up /public", &public, None, args.warmup),
        phase("warm-up /data", &data, Some(&identity), args.warmup),
    ] {
        let result = load::run_phase(&warm, &http, watched, false).await?;
        ok &= report_failures(&result);
    }

    // The yardstick runs through the three measured phases.
    eprintln!("the yardstick: batches of {YARDSTICK_BATCH} raw verifications beside the load");
    let yardstick = load::Yardstick::start(base_len, YARDSTICK_BATCH, YARDSTICK_PAUSE)?;
    // The baseline peer: an axum handler with nothing of AAuth, loaded by
    // the same generator with the same CPU accounting.
    let bare_port = free_port();
    let bare_args = vec!["--listen".to_owned(), format!("127.0.0.1:{bare_port}")];
    let bare = start_party(&world, "aauth-bare", "bare-axum", bare_args).await?;
    let bare_watched = Watched {
        pid: bare.pid().ok_or("the bare axum peer has no pid")?,
        ticks,
    };
    let bare_url = Url::parse(&format!("{}/", bare.url())).map_err(|e| e.to_string())?;
    load::run_phase(
        &phase("warm-up bare", &bare_url, None, args.warmup),
        &http,
        bare_watched,
        false,
    )
    .await?;
    eprintln!("bare axum GET / for {} s…", args.public_duration);
    let bare_result = load::run_phase(
        &phase(
            "GET / (bare axum peer, unsigned)",
            &bare_url,
            None,
            args.public_duration,
        ),
        &http,
        bare_watched,
        false,
    )
    .await?;
    drop(bare);

    let before_public = proxy.counts();
    eprintln!(
        "unauthenticated GET /public for {} s…",
        args.public_duration
    );
    let unauth = load::run_phase(
        &phase(
            "GET /public (unsigned)",
            &public,
            None,
            args.public_duration,
        ),
        &http,
        watched,
        false,
    )
    .await?;
    let before_data = proxy.counts();
    let auth_cpu_before = procfs::cpu_seconds(auth_pid, ticks).unwrap_or(0.0);
    let agent_cpu_before = procfs::cpu_seconds(agent_pid, ticks).unwrap_or(0.0);
    eprintln!("authorized GET /data for {} s…", args.duration);
    let authz = load::run_phase(
        &phase(
            "GET /data (auth token)",
            &data,
            Some(&identity),
            args.duration,
        ),
        &http,
        watched,
        true,
    )
    .await?;
    let after = proxy.counts();
    let others_cpu = (
        procfs::cpu_seconds(auth_pid, ticks).unwrap_or(0.0) - auth_cpu_before,
        procfs::cpu_seconds(agent_pid, ticks).unwrap_or(0.0) - agent_cpu_before,
    );
    let spread = load::Spread::of(yardstick.finish()?);

    let growth = growth(&world, &data, args, &http, watched, second_port).await?;
    ok &= growth.iter().all(report_failures);

    eprintln!("timing one raw Ed25519 verification, idle…");
    let raw = tokio::task::spawn_blocking(move || load::raw_verify(base_len, 41, 2000))
        .await
        .map_err(|e| e.to_string())??;

    ok &= report_failures(&bare_result);
    ok &= report_failures(&unauth);
    ok &= report_failures(&authz);
    let fetches = Fetches {
        before_load: proxy::discovery_fetches(&Counts::new(), &before_public),
        during_public: proxy::discovery_fetches(&before_public, &before_data),
        during_data: proxy::discovery_fetches(&before_data, &after),
        all: after,
    };
    print_report(
        args,
        &[&bare_result, &unauth, &authz],
        (&spread, &raw),
        &fetches,
        others_cpu,
        auth_token_len,
    );
    print_growth(&growth);
    if args.keep {
        world.keep();
        eprintln!("run directory kept: {}", world.dir().display());
    }
    Ok(ok)
}

/// Stores notes as the agent server until it holds `count`, each
/// [`NOTE_BYTES`] long.
async fn store_notes(agent: &Agent, data: &Url, from: usize, count: usize) -> Result<(), String> {
    for i in from..count {
        let mut text = format!("note {i} ");
        text.extend(std::iter::repeat_n(
            'x',
            NOTE_BYTES.saturating_sub(text.len()),
        ));
        let reply = agent
            .call(
                Method::POST,
                data.as_str(),
                Some(text.into_bytes().into()),
                Some("text/plain"),
            )
            .await
            .map_err(|e| format!("storing note {i}: {e}"))?;
        if !reply.status.is_success() {
            return Err(format!("storing note {i}: {}", reply.status));
        }
    }
    Ok(())
}

/// The growth phase: a page of 20 notes from two resources at once, one
/// holding 20 notes of the owner's and the other 100 — the same binary and
/// configuration, a second process on `second_port` — so that both are
/// measured under the same conditions, each by its own process CPU.
async fn growth(
    world: &World,
    data: &Url,
    args: &Args,
    http: &reqwest::Client,
    watched: Watched,
    second_port: u16,
) -> Result<Vec<PhaseResult>, String> {
    let config = std::fs::read_to_string(world.dir().join("resource.toml"))
        .map_err(|e| format!("resource.toml: {e}"))?
        .replace("resource-key.json", "resource-b-key.json");
    let config_path = aauth_e2e::harness::write_file(world.dir(), "resource-b.toml", &config)
        .map_err(|e| e.to_string())?;
    let second_args: Vec<String> = vec![
        "serve".into(),
        "--dev".into(),
        "--config".into(),
        config_path.display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{second_port}"),
    ];
    let second = start_party(world, "aauth-resource", "resource-b", second_args).await?;
    let second_watched = Watched {
        pid: second.pid().ok_or("the second resource has no pid")?,
        ticks: watched.ticks,
    };
    let second_data = Url::parse(&format!("{}/data", second.url())).map_err(|e| e.to_string())?;

    let writer = server_agent(world)?;
    eprintln!(
        "storing {NOTES_FEW} notes of {NOTE_BYTES} bytes in the resource, {NOTES_MANY} in a second one…"
    );
    store_notes(&writer, data, 0, NOTES_FEW).await?;
    store_notes(&writer, &second_data, 0, NOTES_MANY).await?;
    let second_identity = authorized_identity(world, &second_data).await?;
    let first_identity = authorized_identity(world, data).await?;

    let page =
        |url: &Url| Url::parse(&format!("{url}?limit={NOTES_FEW}")).map_err(|e| e.to_string());
    let half = (args.workers / 2).max(1);
    let phase = |name, url: Url, identity: &Identity, secs| Phase {
        name,
        url,
        identity: Some(identity.clone()),
        workers: half,
        duration: Duration::from_secs(secs),
    };
    let few = phase(
        "GET /data?limit=20, 20 notes stored",
        page(data)?,
        &first_identity,
        args.growth_duration,
    );
    let many = phase(
        "GET /data?limit=20, 100 notes stored (second resource)",
        page(&second_data)?,
        &second_identity,
        args.growth_duration,
    );
    eprintln!(
        "a page of {NOTES_FEW} from both at once, {half} workers each, for {} s…",
        args.growth_duration
    );
    let warm = |p: &Phase| Phase {
        name: "warm-up page",
        duration: Duration::from_secs(args.warmup),
        ..p.clone()
    };
    let (warm_few, warm_many) = (warm(&few), warm(&many));
    let (a, b) = tokio::join!(
        load::run_phase(&warm_few, http, watched, false),
        load::run_phase(&warm_many, http, second_watched, false)
    );
    a?;
    b?;
    let (a, b) = tokio::join!(
        load::run_phase(&few, http, watched, true),
        load::run_phase(&many, http, second_watched, true)
    );
    drop(second);
    Ok(vec![a?, b?])
}

struct Fetches {
    before_load: Counts,
    during_public: Counts,
    during_data: Counts,
    all: Counts,
}

fn report_failures(result: &PhaseResult) -> bool {
    let failed = result.non_2xx.saturating_add(result.errors);
    if failed > 0 {
        eprintln!(
            "{}: {failed} requests failed ({} non-2xx, {} without answer); first: {}",
            result.name,
            result.non_2xx,
            result.errors,
            result.first_failure.as_deref().unwrap_or("?")
        );
    }
    failed == 0
}

fn describe(counts: &Counts) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(path, n)| format!("{path} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_report(
    args: &Args,
    phases: &[&PhaseResult],
    (spread, raw): (&Spread, &RawVerify),
    fetches: &Fetches,
    (auth_cpu, agent_cpu): (f64, f64),
    auth_token_len: usize,
) {
    println!();
    println!(
        "{} workers over keep-alive connections; every signed request signed afresh (created = now, no Nonce).",
        args.workers
    );
    println!();
    println!(
        "| phase | s | requests | req/s | p50 (µs) | p99 (µs) | non-2xx | no answer | server CPU (s) | server CPU/request (µs) | generator CPU (s) | of which signing (s) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in phases {
        println!(
            "| {} | {:.1} | {} | {:.0} | {} | {} | {} | {} | {:.2} | {:.1} | {:.2} | {:.2} |",
            p.name,
            p.elapsed,
            p.requests,
            p.rps(),
            p.latency_us(0.50),
            p.latency_us(0.99),
            p.non_2xx,
            p.errors,
            p.server_cpu,
            p.server_cpu_us_per_request(),
            p.generator_cpu,
            p.signing,
        );
    }
    let (Some(bare), Some(unauth), Some(authz)) = (phases.first(), phases.get(1), phases.get(2))
    else {
        return;
    };
    let difference = authz.server_cpu_us_per_request() - unauth.server_cpu_us_per_request();
    println!();
    println!("| measure | value | target | verdict |");
    println!("|---|---:|---|---|");
    println!(
        "| raw Ed25519 verify beside the load ({} B message; {} batches of {YARDSTICK_BATCH}, thread CPU time): median | {:.2} µs | | |",
        raw.message_len, spread.samples, spread.median
    );
    println!(
        "| … p10 – p90, and (p90 − p10) ÷ median | {:.2} – {:.2} µs, {:.1} % | | |",
        spread.p10,
        spread.p90,
        spread.relative() * 100.0
    );
    println!("| resource CPU per request, authorized − unauthenticated | {difference:.1} µs | | |");
    let per_cpu_second = |p: &PhaseResult| 1e6 / p.server_cpu_us_per_request();
    println!(
        "| requests per server CPU-second: bare axum; resource unsigned; resource authorized | {:.0}; {:.0}; {:.0} | | |",
        per_cpu_second(bare),
        per_cpu_second(unauth),
        per_cpu_second(authz)
    );
    println!(
        "| resource authorized ÷ bare axum, CPU per request | {:.2} × | | |",
        authz.server_cpu_us_per_request() / bare.server_cpu_us_per_request()
    );
    println!(
        "| … ÷ raw verify: at the median; from p90 to p10 | {:.2} ×; {:.2} – {:.2} × | ≤ {CPU_TARGET} × | {} |",
        difference / spread.median,
        difference / spread.p90,
        difference / spread.p10,
        match spread.within(difference, CPU_TARGET) {
            Some(met) => verdict(met),
            None => "not stated: the target lies within the yardstick's spread",
        }
    );
    println!(
        "| raw Ed25519 verify after the load, idle: `VerifyingKey::verify`, `PublicKey::verify` (median of 41 × 2000, wall clock; information) | {:.2} µs, {:.2} µs | | |",
        raw.parsed_us, raw.unparsed_us
    );
    let rss_from = authz.rss_at(RSS_FROM);
    let rss_end = authz.rss_last();
    match (rss_from, rss_end) {
        (Some(from), Some((second, end))) if second > RSS_FROM => {
            #[expect(clippy::cast_precision_loss, reason = "KiB of one process")]
            let growth = (end as f64 - from as f64) / from as f64;
            println!(
                "| resource RSS at second {RSS_FROM} → second {second} | {from} → {end} KiB ({:+.1} %) | < +{:.0} % | {} |",
                growth * 100.0,
                RSS_TARGET * 100.0,
                verdict(growth < RSS_TARGET)
            );
        }
        _ => println!(
            "| resource RSS | phase shorter than {RSS_FROM} s: not judged | < +{:.0} % | — |",
            RSS_TARGET * 100.0
        ),
    }
    println!(
        "| auth server metadata/JWKS fetches during the authorized phase | {} | none | {} |",
        describe(&fetches.during_data),
        verdict(fetches.during_data.is_empty())
    );
    println!(
        "| … during the unauthenticated phase | {} | none | {} |",
        describe(&fetches.during_public),
        verdict(fetches.during_public.is_empty())
    );
    println!(
        "| … before the load (token issuance, first authorized request, warm-up) | {} | | |",
        describe(&fetches.before_load)
    );
    println!(
        "| auth server / agent server CPU during the authorized phase | {auth_cpu:.2} s / {agent_cpu:.2} s | | |"
    );
    let failures: u64 = phases
        .iter()
        .map(|p| p.non_2xx.saturating_add(p.errors))
        .sum();
    println!(
        "| failed requests (non-2xx or no answer) | {failures} | 0 | {} |",
        verdict(failures == 0)
    );
    println!();
    let samples: Vec<String> = authz
        .rss
        .iter()
        .filter(|(s, _)| s % 10 == 0 || *s == 1)
        .map(|(s, k)| format!("{s} s: {k}"))
        .collect();
    println!(
        "resource RSS (KiB) during the authorized phase: {}",
        samples.join(", ")
    );
    println!(
        "auth token: {auth_token_len} bytes; every request to the auth server through the proxy: {}",
        describe(&fetches.all)
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// The growth phases' table and verdicts.
#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn print_growth(phases: &[PhaseResult]) {
    let (Some(few), Some(many)) = (phases.first(), phases.get(1)) else {
        return;
    };
    println!();
    println!(
        "Growth: a page of {NOTES_FEW} notes of {NOTE_BYTES} bytes (`GET /data?limit={NOTES_FEW}`, authorized) from two resource processes loaded at the same time, one holding {NOTES_FEW} of the owner's notes and the other {NOTES_MANY}."
    );
    println!();
    println!(
        "| phase | s | requests | req/s | p50 (µs) | p99 (µs) | non-2xx | resource CPU/request (µs) | RSS at the end (KiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in phases {
        println!(
            "| {} | {:.1} | {} | {:.0} | {} | {} | {} | {:.1} | {} |",
            p.name,
            p.elapsed,
            p.requests,
            p.rps(),
            p.latency_us(0.50),
            p.latency_us(0.99),
            p.non_2xx.saturating_add(p.errors),
            p.server_cpu_us_per_request(),
            p.rss_last()
                .map_or_else(|| "-".to_owned(), |(_, k)| k.to_string()),
        );
    }
    let ratio = many.server_cpu_us_per_request() / few.server_cpu_us_per_request();
    println!();
    println!("| measure | value | target | verdict |");
    println!("|---|---:|---|---|");
    println!(
        "| CPU per page, {NOTES_MANY} ÷ {NOTES_FEW} notes stored | {ratio:.2} × | ≤ {GROWTH_TARGET} × | {} |",
        verdict(ratio <= GROWTH_TARGET)
    );
    for (p, notes) in [(few, NOTES_FEW), (many, NOTES_MANY)] {
        if let (Some(from), Some((second, to))) = (p.rss.first().map(|(_, k)| *k), p.rss_last()) {
            println!(
                "| RSS of the resource holding {notes} notes ({} KiB), second 1 → {second} | {from} → {to} KiB | flat | {} |",
                notes * NOTE_BYTES / 1024,
                verdict(to.saturating_sub(from) * 10 < from)
            );
        }
    }
}
