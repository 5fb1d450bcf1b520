//! `aauth-resource serve`: parses the command line, loads the configuration,
//! binds, announces `listening url=…` and serves until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use aauth_http::runtime::CITATIONS_HELP;
use aauth_http::runtime::{self, ServerKey, StartError};
use aauth_http::state;
use aauth_resource::{AppState, Config, app};
use clap::{Args, Parser, Subcommand};

/// An AAuth resource server.
#[derive(Debug, Parser)]
#[command(name = "aauth-resource", version, about, after_help = CITATIONS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log at debug level (RUST_LOG refines it); before or after the command.
    #[arg(long, short, global = true)]
    verbose: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the resource.
    #[command(after_help = CITATIONS_HELP)]
    Serve(Serve),
}

#[derive(Debug, Args)]
struct Serve {
    /// Configuration file (TOML); every field is optional.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Dev mode: loopback http identifiers, signature bases in error bodies.
    #[arg(long)]
    dev: bool,
    /// Listen address (default 127.0.0.1:0 in dev mode, 127.0.0.1:8080 otherwise).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The public origin (required outside dev mode).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// The one trusted auth server.
    #[arg(long, value_name = "URL")]
    auth_server: Option<String>,
    /// Where the resource keeps its key (default: the configuration's
    /// `state_dir`, else $XDG_DATA_HOME/aauth/resource).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Key file (default: key.json in the state directory).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Require a Nonce on POST/PUT/PATCH/DELETE (P-SIG-6).
    #[arg(long, value_name = "BOOL")]
    require_nonce: Option<bool>,
    /// Accept base64url / unpadded signature values (P-SIG-7).
    #[arg(long)]
    lenient_base64: bool,
    /// Resource token lifetime, seconds.
    #[arg(long, value_name = "SECS")]
    resource_token_lifetime: Option<u32>,
    /// Rate limit window, seconds.
    #[arg(long, value_name = "SECS")]
    rate_window: Option<u64>,
    /// Unsigned requests per window and client address.
    #[arg(long, value_name = "N")]
    rate_unsigned: Option<u32>,
    /// Pseudonymous requests per window and key.
    #[arg(long, value_name = "N")]
    rate_pseudonymous: Option<u32>,
    /// Identified requests per window and agent.
    #[arg(long, value_name = "N")]
    rate_identified: Option<u32>,
    /// Authorized requests per window and agent.
    #[arg(long, value_name = "N")]
    rate_authorized: Option<u32>,
    /// The next resource `GET /chain` calls as an agent, e.g.
    /// http://127.0.0.1:PORT/chain (E§3.9).
    #[arg(long, value_name = "URL")]
    downstream: Option<String>,
    /// The downstream's auth server: the only one given callers' tokens.
    #[arg(long, value_name = "URL")]
    downstream_auth_server: Option<String>,
    /// Sign downstream calls the way a peer reads: strict or py-early.
    #[arg(long, value_enum, value_name = "PRESET")]
    downstream_compat: Option<aauth_http::client::Compat>,
    #[command(flatten)]
    connections: runtime::ConnectionLimits,
}

impl Serve {
    /// The file's configuration with the flags applied over it.
    fn config(&self) -> Result<Config, StartError> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let set = |slot: &mut Option<String>, flag: &Option<String>| {
            if flag.is_some() {
                slot.clone_from(flag);
            }
        };
        set(&mut config.public_url, &self.public_url);
        set(&mut config.auth_server, &self.auth_server);
        set(&mut config.downstream, &self.downstream);
        set(
            &mut config.downstream_auth_server,
            &self.downstream_auth_server,
        );
        if self.listen.is_some() {
            config.listen = self.listen;
        }
        if let Some(compat) = self.downstream_compat {
            config.downstream_compat = compat;
        }
        if self.key_file.is_some() {
            config.key_file.clone_from(&self.key_file);
        }
        if let Some(value) = self.require_nonce {
            config.require_nonce = value;
        }
        config.lenient_base64 |= self.lenient_base64;
        if let Some(value) = self.resource_token_lifetime {
            config.resource_token_lifetime = value;
        }
        let rate = &mut config.rate_limit;
        rate.window = self.rate_window.unwrap_or(rate.window);
        rate.unsigned = self.rate_unsigned.unwrap_or(rate.unsigned);
        rate.pseudonymous = self.rate_pseudonymous.unwrap_or(rate.pseudonymous);
        rate.identified = self.rate_identified.unwrap_or(rate.identified);
        rate.authorized = self.rate_authorized.unwrap_or(rate.authorized);
        Ok(config)
    }

    async fn run(self, verbose: bool) -> Result<(), StartError> {
        runtime::init_tracing(verbose);
        let config = self.config()?;
        let listen = config.listen.unwrap_or_else(|| {
            if self.dev {
                SocketAddr::from(([127, 0, 0, 1], 0))
            } else {
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        });
        // The state directory is only needed for a key file not named.
        let key_path = match &config.key_file {
            Some(file) => file.clone(),
            None => config.key_path(
                &state::state_dir(
                    self.state_dir.as_deref(),
                    config.state_dir.as_deref(),
                    state::Party::Resource,
                )
                .map_err(|e| StartError::Config(e.to_string()))?,
            ),
        };
        let (listener, origin) =
            runtime::bind(listen, config.public_url.as_deref(), self.dev).await?;
        let settings = config.resolve(origin.clone(), self.dev)?;
        let key = ServerKey::load_or_create(&key_path)?;
        tracing::info!(
            resource = %settings.identifier,
            auth_server = %settings.auth_server,
            kid = %key.kid,
            key_file = %key_path.display(),
            downstream = settings.downstream.as_ref().map(|u| u.as_str()),
            "aauth-resource starting"
        );
        let state = AppState::new(settings, key)?;
        runtime::announce(&origin);
        runtime::serve(listener, app(state), self.connections)
            .await
            .map_err(|e| StartError::Config(format!("server: {e}")))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(serve) => serve.run(cli.verbose).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Once, plainly: the log and standard error are the same stream.
            eprintln!("aauth-resource: {error}");
            ExitCode::FAILURE
        }
    }
}
