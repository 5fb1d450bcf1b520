//! `aauth-agent-server`: the agent server (`serve`, `mint-code`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use aauth_agent_server::store::Store;
use aauth_agent_server::{AppState, Config, app};
use aauth_http::runtime::{self, ServerKey, StartError};
use aauth_http::server::unix_now;
use clap::{Parser, Subcommand};

/// AAuth agent server and agent CLI.
#[derive(Debug, Parser)]
#[command(name = "aauth-agent-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the agent server: metadata, JWKS, delegate enroll and renew.
    Serve(ServeArgs),
    /// Mint a one-time enrollment code (10 min by default) and print it.
    MintCode(MintArgs),
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
    /// Key file (overrides the config).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Database file (overrides the config).
    #[arg(long)]
    database: Option<PathBuf>,
    /// Agent token lifetime in seconds (overrides the config).
    #[arg(long)]
    agent_token_lifetime: Option<u32>,
    /// Log at debug level.
    #[arg(long)]
    verbose: bool,
}

#[derive(Debug, clap::Args)]
struct MintArgs {
    /// TOML configuration file (for the database path).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Database file (overrides the config).
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
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::MintCode(args) => mint_code(args).await,
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

async fn serve(args: ServeArgs) -> Result<(), String> {
    runtime::init_tracing(args.verbose);
    let mut config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    let dev = args.dev || config.dev;
    if let Some(url) = args.public_url {
        config.public_url = Some(url);
    }
    if let Some(path) = args.key_file {
        config.key_file = path;
    }
    if let Some(path) = args.database {
        config.database = path;
    }
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
    let key = ServerKey::load_or_create(&config.key_file).map_err(|e| e.to_string())?;
    let store = Store::open(&config.database)
        .await
        .map_err(|e| StartError::Config(format!("{}: {e}", config.database.display())))
        .map_err(|e| e.to_string())?;
    let state =
        AppState::new(origin.clone(), key, store, &config, dev).map_err(|e| e.to_string())?;
    runtime::announce(&origin);
    tracing::info!(agent = %origin, "agent server ready");
    runtime::serve(listener, app(state))
        .await
        .map_err(|e| e.to_string())
}

async fn mint_code(args: MintArgs) -> Result<(), String> {
    let config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    let database = args.database.unwrap_or(config.database);
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
