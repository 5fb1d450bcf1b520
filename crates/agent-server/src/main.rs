//! `aauth-agent-server`: the agent server (`serve`, `mint-code`) and the
//! agent-side commands (`enroll`, `renew`, `call`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use aauth_agent::{self as agent, Agent, DelegateState, Principal, TokenStore};
use aauth_agent_server::store::Store;
use aauth_agent_server::{AppState, Config, app};
use aauth_http::client::{Compat, SignerStyle, SigningClient, StderrTrace};
use aauth_http::runtime::CITATIONS_HELP;
use aauth_http::runtime::{self, ServerKey, StartError};
use aauth_http::server::unix_now;
use aauth_http::state;
use aauth_protocol::httpsig::SignatureEncoding;
use aauth_protocol::ids::{Label, Origin, OriginMode};
use aauth_protocol::signature_key::Syntax;
use bytes::Bytes;
use clap::{Parser, Subcommand};

mod inspect;
mod terminal;

/// AAuth agent server and agent CLI.
#[derive(Debug, Parser)]
#[command(name = "aauth-agent-server", version, about, after_help = CITATIONS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More output, before or after the command: debug logs for `serve`
    /// (RUST_LOG refines it); every HTTP exchange for `enroll`, `renew` and
    /// `call` (headers and bodies, tokens as their decoded claims, never a
    /// signature, key or secret).
    #[arg(long, short, global = true)]
    verbose: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the agent server: metadata, JWKS, delegate enroll and renew.
    #[command(after_help = CITATIONS_HELP)]
    Serve(ServeArgs),
    /// Mint a one-time enrollment code (10 min by default) and print it.
    #[command(after_help = CITATIONS_HELP)]
    MintCode(MintArgs),
    /// Enroll this machine as a delegate: a fresh key, a code, an agent token.
    #[command(after_help = CITATIONS_HELP)]
    Enroll(EnrollArgs),
    /// Rotate the delegate's key and get an agent token for the new key.
    #[command(after_help = CITATIONS_HELP)]
    Renew(RenewArgs),
    /// Call a resource, climbing the levels it asks for.
    #[command(after_help = CITATIONS_HELP)]
    Call(CallArgs),
    /// Decode a token, or take a signed request apart, to see why it is
    /// refused.
    #[command(after_help = CITATIONS_HELP)]
    #[command(subcommand)]
    Inspect(Inspect),
    /// Show the delegate in a state directory: who it is, its key, its
    /// agent token's expiry and its grants.
    #[command(after_help = CITATIONS_HELP)]
    Status(StatusArgs),
}

#[derive(Debug, Subcommand)]
enum Inspect {
    /// Decode an agent, resource or auth token (header, claims, times in
    /// words, the cnf key's thumbprint) without verifying it, or check its
    /// signature against a JWKS. Exits 1 when it is expired or invalid.
    #[command(after_help = CITATIONS_HELP)]
    Token {
        /// The token; a file, or `-` or nothing for standard input.
        token: Option<String>,
        /// Check the signature with the `kid` key of this JWKS (a file or a
        /// URL, e.g. https://agent.example/.well-known/jwks.json).
        #[arg(long, value_name = "FILE|URL")]
        jwks: Option<String>,
        /// Allow fetching the JWKS from a loopback http URL.
        #[arg(long)]
        dev: bool,
        /// Judge expiry at this Unix time instead of now (for a captured
        /// token or a test vector).
        #[arg(long, value_name = "SECS")]
        now: Option<u64>,
    },
    /// Read a raw HTTP/1.1 request (a file, or standard input) and show its
    /// Signature-Key, the components it covers, the signature base this
    /// implementation builds (RFC 9421 §2.5), the profile's checks, and
    /// whether the signature verifies. Exits 1 when anything fails.
    #[command(after_help = CITATIONS_HELP)]
    Request {
        /// The request, as on the wire: request line, headers, empty line,
        /// body. `-` or nothing for standard input.
        file: Option<PathBuf>,
        /// Verify with this key (a JWK, a JWKS or a key.json) instead of
        /// the one the request carries (hwk, or the jwt's cnf.jwk).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// The @authority a verifier is configured with (default: the
        /// absolute target's, else the Host header's).
        #[arg(long, value_name = "HOST[:PORT]")]
        authority: Option<String>,
        /// Accept base64url and unpadded Signature values (P-SIG-7).
        #[arg(long)]
        lenient_base64: bool,
        /// Judge `created` and `expires` at this Unix time instead of now
        /// (for a captured request or a test vector).
        #[arg(long, value_name = "SECS")]
        now: Option<u64>,
    },
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// The delegate's state directory (default: $XDG_DATA_HOME/aauth/delegate).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// Options every agent-side command shares.
#[derive(Debug, clap::Args)]
struct ClientArgs {
    /// Dev mode: loopback http identifiers for peers.
    #[arg(long)]
    dev: bool,
    /// Sign the way a peer reads: `strict` (our profile) or `py-early`
    /// (PyPI aauth 0.1: label sig1, parenthesised Signature-Key, unpadded
    /// base64url Signature). The switches below change one quirk each.
    #[arg(long, value_enum, default_value_t = Compat::Strict)]
    compat: Compat,
    /// Emit Signature-Key in the explainer's parenthesised form (P-SK-2).
    #[arg(long)]
    parenthesised_signature_key: bool,
    /// The signature label (P-SIG-3: sig).
    #[arg(long, value_name = "LABEL")]
    label: Option<String>,
    /// Write the Signature value as unpadded base64url, which is not RFC
    /// 8941 (P-SIG-7).
    #[arg(long)]
    unpadded_signature: bool,
}

impl ClientArgs {
    fn client(&self, verbose: bool) -> Result<SigningClient, String> {
        let mut client = SigningClient::new().map_err(|e| e.to_string())?;
        if verbose {
            client = client.with_trace(Arc::new(StderrTrace));
        }
        Ok(client.with_style(self.style()?))
    }

    /// The preset, with each switch given on top of it.
    fn style(&self) -> Result<SignerStyle, String> {
        let mut style = self.compat.style();
        if self.parenthesised_signature_key {
            style.syntax = Syntax::Parenthesised;
        }
        if let Some(label) = &self.label {
            style.label =
                Label::new(label.clone()).map_err(|e| format!("--label {label:?}: {e}"))?;
        }
        if self.unpadded_signature {
            style.encoding = SignatureEncoding::UnpaddedBase64Url;
        }
        Ok(style)
    }

    fn mode(&self) -> OriginMode {
        if self.dev {
            OriginMode::Dev
        } else {
            OriginMode::Production
        }
    }
}

#[derive(Debug, clap::Args)]
struct EnrollArgs {
    /// The agent server's URL.
    #[arg(long)]
    agent: String,
    /// The enrollment code from `mint-code`. A value that begins with `-`
    /// (codes minted by earlier versions could) is read as the code.
    #[arg(long, allow_hyphen_values = true)]
    code: String,
    /// Where to keep the delegate's key, agent token and grants (default:
    /// $XDG_DATA_HOME/aauth/delegate).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Replace a delegate already enrolled in --state-dir: its key, agent
    /// token and grants are forgotten.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, clap::Args)]
struct RenewArgs {
    /// The delegate's state directory (default: $XDG_DATA_HOME/aauth/delegate).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, clap::Args)]
struct CallArgs {
    /// The HTTP method.
    method: String,
    /// The URL.
    url: String,
    /// The request body.
    #[arg(long)]
    data: Option<String>,
    /// The body's content type (default application/json).
    #[arg(long)]
    content_type: Option<String>,
    /// The state directory: the delegate's (default:
    /// $XDG_DATA_HOME/aauth/delegate), or with --as-server the agent
    /// server's (default: its configuration's, else
    /// $XDG_DATA_HOME/aauth/agent-server).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Act as the agent server itself (its key and public URL); the key
    /// must exist (`serve` creates it).
    #[arg(long)]
    as_server: bool,
    /// The agent server's configuration (with --as-server).
    #[arg(long, requires = "as_server")]
    config: Option<PathBuf>,
    /// The agent server's public URL (with --as-server; overrides the config).
    #[arg(long, requires = "as_server")]
    public_url: Option<String>,
    /// Never open a browser here; only print the consent address (a
    /// browser elsewhere can finish by pasting back where it ended).
    #[arg(long)]
    no_browser: bool,
    /// Listen for the browser's return on this loopback port rather than
    /// any free one, so that it can be forwarded from the machine the
    /// browser runs on (ssh -L PORT:127.0.0.1:PORT).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    callback_port: u16,
    /// Seconds to wait for the person in the browser.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    consent_timeout: u64,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file (every field has a default).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Dev mode: loopback http identifiers, signature bases in errors.
    #[arg(long)]
    dev: bool,
    /// Listen address (default 127.0.0.1:0 in dev mode, 127.0.0.1:8080 otherwise).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The public origin (required outside dev mode).
    #[arg(long)]
    public_url: Option<String>,
    /// Where the key and database live (default: the config's `state_dir`,
    /// else $XDG_DATA_HOME/aauth/agent-server).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Key file (default: key.json in the state directory).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Database file (default: agent-server.db in the state directory).
    #[arg(long)]
    database: Option<PathBuf>,
    /// Agent token lifetime in seconds (overrides the config).
    #[arg(long)]
    agent_token_lifetime: Option<u32>,
    /// Also accept base64url and unpadded Signature values (P-SIG-7).
    #[arg(long)]
    lenient_base64: bool,
    #[command(flatten)]
    connections: runtime::ConnectionLimits,
}

#[derive(Debug, clap::Args)]
struct MintArgs {
    /// TOML configuration file (for the state directory and database).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The agent server's state directory, as given to `serve`.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Database file (default: agent-server.db in the state directory). It
    /// must exist: `serve` creates it.
    #[arg(long)]
    database: Option<PathBuf>,
    /// Bind the code to this delegate identifier (re-enrollment keeps the `sub`).
    #[arg(long)]
    sub: Option<String>,
    /// Lifetime in seconds (default: the config's, 600).
    #[arg(long)]
    lifetime: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let verbose = cli.verbose;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args, verbose).await,
            Command::MintCode(args) => mint_code(args).await,
            Command::Enroll(args) => enroll(args, verbose).await,
            Command::Renew(args) => renew(args, verbose).await,
            Command::Call(args) => call(args, verbose).await,
            Command::Inspect(args) => inspect(args).await,
            Command::Status(args) => status(args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs, verbose: bool) -> Result<(), String> {
    runtime::init_tracing(verbose);
    let mut config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    let dev = args.dev || config.dev;
    if let Some(url) = args.public_url {
        config.public_url = Some(url);
    }
    if args.key_file.is_some() {
        config.key_file = args.key_file;
    }
    if args.database.is_some() {
        config.database = args.database;
    }
    let flag = args.state_dir.as_deref();
    let key_file = config.key_path(flag).map_err(|e| e.to_string())?;
    let database = config.database_path(flag).map_err(|e| e.to_string())?;
    config.lenient_base64 |= args.lenient_base64;
    if let Some(lifetime) = args.agent_token_lifetime {
        config.agent_token_lifetime = lifetime;
    }
    let default_listen: SocketAddr = if dev {
        SocketAddr::from(([127, 0, 0, 1], 0))
    } else {
        SocketAddr::from(([127, 0, 0, 1], 8080))
    };
    let listen = args.listen.or(config.listen).unwrap_or(default_listen);
    let (listener, origin) = runtime::bind(listen, config.public_url.as_deref(), dev)
        .await
        .map_err(|e| e.to_string())?;
    let key = ServerKey::load_or_create(&key_file).map_err(|e| e.to_string())?;
    let store = Store::open(&database)
        .await
        .map_err(|e| StartError::Config(format!("{}: {e}", database.display())))
        .map_err(|e| e.to_string())?;
    tracing::info!(
        key_file = %key_file.display(),
        database = %database.display(),
        "state"
    );
    let state =
        AppState::new(origin.clone(), key, store, &config, dev).map_err(|e| e.to_string())?;
    runtime::announce(&origin);
    tracing::info!(agent = %origin, "agent server ready");
    runtime::serve(listener, app(state), args.connections)
        .await
        .map_err(|e| e.to_string())
}

async fn mint_code(args: MintArgs) -> Result<(), String> {
    let mut config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    if args.database.is_some() {
        config.database = args.database;
    }
    let database = config
        .database_path(args.state_dir.as_deref())
        .map_err(|e| e.to_string())?;
    // A code minted into a database `serve` does not use would be refused
    // by `enroll`: never create one here.
    state::existing(
        &database,
        "agent server database",
        "`aauth-agent-server serve`",
    )?;
    let store = Store::open(&database)
        .await
        .map_err(|e| format!("{}: {e}", database.display()))?;
    let lifetime = args.lifetime.unwrap_or(config.enrollment_code_lifetime);
    let code = store
        .mint_code(args.sub.as_deref(), unix_now(), lifetime)
        .await
        .map_err(|e| e.to_string())?;
    #[expect(clippy::print_stdout, reason = "the code is the command's output")]
    {
        println!("{}", code.as_str());
    }
    eprintln!(
        "enrollment code valid for {lifetime} s{}",
        args.sub
            .as_deref()
            .map(|s| format!(", for delegate {s}"))
            .unwrap_or_default()
    );
    Ok(())
}

/// `error` with the fix a user most likely needs, when `urls` show it: a
/// scheme for a URL written without one, `--dev` for a plain `http` one.
fn with_fix(error: &impl std::fmt::Display, dev: bool, urls: &[&str]) -> String {
    let text = error.to_string();
    if let Some(url) = urls.iter().find(|u| !u.contains("://")) {
        format!("{text}\n  fix: write the URL with its scheme, e.g. http://{url} or https://{url}")
    } else if !dev && urls.iter().any(|u| u.starts_with("http://")) {
        format!("{text}\n  fix: add --dev to talk to local servers over plain http (loopback only)")
    } else {
        text
    }
}

/// The delegate's state directory: `--state-dir`, else the default.
fn delegate_dir(flag: Option<PathBuf>) -> Result<PathBuf, String> {
    state::state_dir(flag.as_deref(), None, state::Party::Delegate).map_err(|e| e.to_string())
}

async fn enroll(args: EnrollArgs, verbose: bool) -> Result<(), String> {
    let client = args.client.client(verbose)?;
    let dir = delegate_dir(args.state_dir)?;
    let previous = DelegateState::load(&dir).ok();
    if let Some(previous) = &previous
        && !args.force
    {
        return Err(format!(
            "{} already holds delegate {} of {}; enrolling again replaces its key and \
             forgets its grants\n  fix: add --force to replace it, or choose another --state-dir",
            dir.display(),
            previous.record.sub,
            previous.record.agent
        ));
    }
    let state = agent::enroll(&client, &args.agent, &args.code, &dir, args.client.mode())
        .await
        .map_err(|e| with_fix(&e, args.client.dev, &[&args.agent]))?;
    if let Some(previous) = previous {
        // The old delegate's grants are bound to its sub and key (P-AS-6).
        let tokens = TokenStore::in_dir(&dir).map_err(|e| e.to_string())?;
        for grant in tokens.all() {
            tokens.remove(&grant).map_err(|e| e.to_string())?;
        }
        eprintln!(
            "replaced delegate {} and forgot its grants",
            previous.record.sub
        );
    }
    eprintln!(
        "enrolled as delegate {} of {}; agent token valid for {} s; state in {}",
        state.record.sub,
        state.record.agent,
        state.record.expires_at.saturating_sub(unix_now()),
        state.storage.location()
    );
    Ok(())
}

async fn renew(args: RenewArgs, verbose: bool) -> Result<(), String> {
    let client = args.client.client(verbose)?;
    let state = DelegateState::load(&delegate_dir(args.state_dir)?).map_err(|e| e.to_string())?;
    let renewed = agent::renew(&client, &state)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "rotated the key of delegate {}; new agent token valid for {} s",
        renewed.record.sub,
        renewed.record.expires_at.saturating_sub(unix_now())
    );
    Ok(())
}

async fn call(args: CallArgs, verbose: bool) -> Result<(), String> {
    let client = args.client.client(verbose)?;
    let (principal, tokens, mode) = if args.as_server {
        let config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
        let dev = args.client.dev || config.dev;
        let mode = if dev {
            OriginMode::Dev
        } else {
            OriginMode::Production
        };
        let url = args
            .public_url
            .or(config.public_url.clone())
            .ok_or("--as-server needs the agent server's public URL (--public-url or public_url in the config)")?;
        let agent = Origin::parse(&url, mode).map_err(|e| format!("public URL {url:?}: {e}"))?;
        let flag = args.state_dir.as_deref();
        let key_file = config.key_path(flag).map_err(|e| e.to_string())?;
        let key = ServerKey::load(&key_file).map_err(|e| e.to_string())?;
        let principal = Principal::Server {
            agent,
            kid: key.kid,
            key: Arc::new(key.key),
        };
        let dir = config.dir(flag).map_err(|e| e.to_string())?;
        let tokens = TokenStore::in_dir(&dir).map_err(|e| e.to_string())?;
        (principal, tokens, mode)
    } else {
        let dir = delegate_dir(args.state_dir)?;
        let state = DelegateState::load(&dir).map_err(|e| e.to_string())?;
        let tokens = TokenStore::in_dir(&dir).map_err(|e| e.to_string())?;
        (Principal::Delegate(state), tokens, args.client.mode())
    };
    let method = http::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("{:?} is not an HTTP method", args.method))?;
    let consent = terminal::TerminalConsent {
        open_browser: !args.no_browser,
    };
    let prompt = Arc::new(terminal::TerminalPrompt::new());
    let steps_prompt = Arc::clone(&prompt);
    let agent = Agent::new(client, principal, tokens, Arc::new(consent), mode)
        .map_err(|e| e.to_string())?
        .with_consent_timeout(std::time::Duration::from_secs(args.consent_timeout))
        .with_callback_port(args.callback_port)
        .with_prompt(prompt.clone())
        .with_steps(Arc::new(move |line| {
            steps_prompt.end_line();
            eprintln!("* {line}");
        }));
    let content_type = args
        .content_type
        .unwrap_or_else(|| "application/json".to_owned());
    let reply = agent
        .call(
            method,
            &args.url,
            args.data.map(Bytes::from),
            Some(&content_type),
        )
        .await
        .map_err(|e| with_fix(&e, mode == OriginMode::Dev, &[&args.url]))?;
    prompt.end_line();
    // The status line on standard error, the body alone on standard output
    // (so that `| jq` works).
    eprintln!("HTTP {}", reply.status);
    #[expect(clippy::print_stdout, reason = "the answer is the command's output")]
    {
        println!("{}", reply.text());
    }
    if reply.status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "the resource answered {}{}",
            reply.status,
            reply
                .error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ))
    }
}

/// Prints a report on standard output; fails when it found a fault.
fn report((text, ok): (String, bool)) -> Result<(), String> {
    #[expect(clippy::print_stdout, reason = "the report is the command's output")]
    {
        print!("{text}");
    }
    if ok {
        Ok(())
    } else {
        Err("the check failed (see above)".into())
    }
}

async fn inspect(args: Inspect) -> Result<(), String> {
    match args {
        Inspect::Token {
            token,
            jwks,
            dev,
            now,
        } => {
            let text = match token.as_deref() {
                Some(t) if t.matches('.').count() >= 2 && !std::path::Path::new(t).exists() => {
                    t.to_owned()
                }
                other => String::from_utf8(inspect::read_input(other.map(std::path::Path::new))?)
                    .map_err(|_| "the token is not UTF-8")?,
            };
            let mode = if dev {
                OriginMode::Dev
            } else {
                OriginMode::Production
            };
            let jwks = match jwks {
                Some(source) => Some(inspect::load_jwks(&source, mode).await?),
                None => None,
            };
            report(inspect::token_report(
                &text,
                jwks.as_ref(),
                now.unwrap_or_else(inspect::now),
            ))
        }
        Inspect::Request {
            file,
            key,
            authority,
            lenient_base64,
            now,
        } => {
            let raw = inspect::parse_request(&inspect::read_input(file.as_deref())?)?;
            let key = match key {
                Some(path) => Some(inspect::load_key(&path, raw.jwks_kid().as_ref())?),
                None => None,
            };
            let options = inspect::RequestOptions {
                authority,
                key,
                lenient_base64,
            };
            report(inspect::request_report(
                &raw,
                &options,
                now.unwrap_or_else(inspect::now),
            ))
        }
    }
}

fn status(args: StatusArgs) -> Result<(), String> {
    let dir = inspect::status_dir(args.state_dir)?;
    let text = inspect::status_report(&dir, inspect::now())?;
    #[expect(clippy::print_stdout, reason = "the report is the command's output")]
    {
        print!("{text}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Cli, Command};

    #[test]
    fn enroll_takes_a_code_that_begins_with_a_hyphen() {
        // Review finding 8: `enroll --code "$code"` with such a code failed
        // with "unexpected argument".
        let cli = Cli::try_parse_from([
            "aauth-agent-server",
            "enroll",
            "--agent",
            "http://127.0.0.1:4001",
            "--code",
            "-jQ8x_code",
            "--state-dir",
            "./delegate",
        ])
        .unwrap();
        let Command::Enroll(args) = cli.command else {
            panic!("enroll parsed as {:?}", cli.command);
        };
        assert_eq!(args.code, "-jQ8x_code");
    }
}
