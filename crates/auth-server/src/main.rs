//! `aauth-auth-server`: `serve`, `hash-password`, `revoke`.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use aauth_auth_server::config::Config;
use aauth_auth_server::store::{RevokeFilter, Store};
use aauth_auth_server::{AppState, app};
use aauth_http::runtime;
use aauth_http::server::unix_now;
use aauth_http::state;
use argon2::{Argon2, PasswordHasher as _};
use clap::{Parser, Subcommand};

/// An AAuth auth server (E§9): metadata, the agent token endpoint, login and consent.
#[derive(Debug, Parser)]
#[command(name = "aauth-auth-server", version, after_help = runtime::CITATIONS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log at debug level (RUST_LOG refines it); before or after the command.
    #[arg(long, short, global = true)]
    verbose: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    #[command(after_help = runtime::CITATIONS_HELP)]
    Serve(ServeArgs),
    /// Print the argon2id PHC string of a password: typed twice without
    /// echo at a terminal, else read from standard input.
    #[command(after_help = runtime::CITATIONS_HELP)]
    HashPassword,
    /// Revoke refresh tokens; the given filters must all match (P-AS-6).
    #[command(after_help = runtime::CITATIONS_HELP)]
    Revoke {
        /// The configuration file (for the state directory and database).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The auth server's state directory, as given to `serve`.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// The SQLite file (default: auth-server.db in the state directory).
        /// It must exist: `serve` creates it.
        #[arg(long)]
        database: Option<PathBuf>,
        /// Grants of this agent (identifier).
        #[arg(long, required_unless_present_any = ["delegate", "user"])]
        agent: Option<String>,
        /// Grants of this agent delegate (agent token `sub`).
        #[arg(long)]
        delegate: Option<String>,
        /// Grants of this user (username).
        #[arg(long)]
        user: Option<String>,
    },
}

/// The options of `serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The configuration file (TOML); every field has a default.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Dev mode: loopback http identifiers, signature bases in errors,
    /// cookies without Secure. Never expose a dev server.
    #[arg(long)]
    dev: bool,
    /// Address to listen on (dev default 127.0.0.1:0).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The public https URL (required outside dev mode).
    #[arg(long)]
    public_url: Option<String>,
    /// Where the database lives (default: the configuration's `state_dir`,
    /// else $XDG_DATA_HOME/aauth/auth-server).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The SQLite file (default: auth-server.db in the state directory).
    #[arg(long)]
    database: Option<PathBuf>,
    /// Also accept base64url and unpadded Signature values (P-SIG-7).
    #[arg(long)]
    lenient_base64: bool,
    #[command(flatten)]
    connections: runtime::ConnectionLimits,
}

/// The configuration with the command line's database over it, and the
/// database file the state rule gives.
fn load_config(
    path: Option<&PathBuf>,
    state_dir: Option<&PathBuf>,
    database: Option<PathBuf>,
) -> Result<(Config, PathBuf), String> {
    let mut config = match path {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if database.is_some() {
        config.database = database;
    }
    let database = config
        .database_path(state_dir.map(PathBuf::as_path))
        .map_err(|e| e.to_string())?;
    Ok((config, database))
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let ServeArgs {
        config,
        dev,
        listen,
        public_url,
        state_dir,
        database,
        lenient_base64,
        connections,
    } = args;
    let (mut config, database) = load_config(config.as_ref(), state_dir.as_ref(), database)?;
    config.lenient_base64 |= lenient_base64;
    let listen = match (listen, &config.listen) {
        (Some(listen), _) => listen,
        (None, Some(text)) => text
            .parse()
            .map_err(|e| format!("configuration listen {text:?}: {e}"))?,
        (None, None) if dev => SocketAddr::from(([127, 0, 0, 1], 0)),
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    let public_url = public_url.or_else(|| config.public_url.clone());
    let (listener, issuer) = runtime::bind(listen, public_url.as_deref(), dev)
        .await
        .map_err(|e| e.to_string())?;
    let state = AppState::open(config, &database, issuer.clone(), dev)
        .await
        .map_err(|e| e.to_string())?;
    runtime::announce(&issuer);
    tracing::info!(issuer = %issuer, database = %database.display(), "auth server ready");
    runtime::serve(listener, app(state), connections)
        .await
        .map_err(|e| e.to_string())
}

/// The password to hash: typed twice without echo when standard input is
/// a terminal, else read from standard input (one line, at most 4 KiB).
fn read_password() -> Result<String, String> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")
            .map_err(|e| format!("reading the password: {e}"))?;
        let again = rpassword::prompt_password("Password again: ")
            .map_err(|e| format!("reading the password: {e}"))?;
        if first != again {
            return Err("the two passwords differ".into());
        }
        return Ok(first);
    }
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .map_err(|e| format!("reading the password: {e}"))?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_owned())
}

fn hash_password() -> Result<(), String> {
    let password = read_password()?;
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| format!("hashing: {e}"))?;
    #[expect(
        clippy::print_stdout,
        reason = "the PHC string is the command's output"
    )]
    {
        println!("{hash}");
    }
    Ok(())
}

async fn revoke(
    config: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    database: Option<PathBuf>,
    filter: RevokeFilter,
) -> Result<(), String> {
    let (_, database) = load_config(config.as_ref(), state_dir.as_ref(), database)?;
    state::existing(
        &database,
        "auth server database",
        "`aauth-auth-server serve`",
    )?;
    let store = Store::open(&database).await.map_err(|e| e.to_string())?;
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let count = store
        .revoke(&filter, now)
        .await
        .map_err(|e| e.to_string())?;
    store.close().await;
    #[expect(clippy::print_stdout, reason = "the count is the command's output")]
    {
        println!("revoked {count}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::init_tracing(cli.verbose);
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::HashPassword => hash_password(),
        Command::Revoke {
            config,
            state_dir,
            database,
            agent,
            delegate,
            user,
        } => {
            revoke(
                config,
                state_dir,
                database,
                RevokeFilter {
                    agent,
                    delegate_sub: delegate,
                    username: user,
                },
            )
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Once, plainly: the log and standard error are the same stream.
            eprintln!("aauth-auth-server: {error}");
            ExitCode::FAILURE
        }
    }
}
