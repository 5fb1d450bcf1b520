//! The three parties of the demo, configured to know each other, running as
//! real processes on loopback in dev mode.
//!
//! Ports are picked first so that every configuration file can name the
//! other parties: the auth server's policy names the agent and the resource,
//! the resource names its auth server. Everything lives in one temporary
//! directory (configurations, databases, keys, logs), removed when the world
//! is dropped unless [`Options::keep`] is set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use aauth_agent::{self as agent, Agent, ConsentHandler, DelegateState, Principal, TokenStore};
use aauth_http::client::SigningClient;
use aauth_http::runtime::ServerKey;
use aauth_protocol::ids::{Origin, OriginMode};

use crate::harness::{HarnessError, PORT_RETRIES, Party, binary, free_port, write_file};

/// Alice's password hash: argon2id of `alice-password` (the auth server's
/// example configuration uses the same demo account).
pub const ALICE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$sIg5k3pY4jcdZRoWdPz71A$ZElMNoek3hKlX00ooH+GL3yJ0+QIKRN7lxAadMlJH8s";
/// Alice's user name.
pub const ALICE: &str = "alice";
/// Alice's password.
pub const ALICE_PASSWORD: &str = "alice-password";

/// What can be tuned per run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Auth token lifetime, seconds (short, to show refresh).
    pub auth_token_lifetime: u32,
    /// The resource's rate limits per window: unsigned, pseudonymous,
    /// identified, authorized.
    pub rate_limits: [u32; 4],
    /// The rate window, seconds.
    pub rate_window: u64,
    /// More TOML for the end of the resource's configuration file (tables
    /// such as `[replay_cache]`).
    pub resource_config: String,
    /// More top-level settings for the auth server's configuration file,
    /// before its tables (such as `request_token_lifetime = 1`).
    pub auth_settings: String,
    /// More TOML for the end of the auth server's configuration file (more
    /// `[[autonomous]]` rules, say, for parties from outside the world);
    /// `{agent_url}` and `{resource_url}` in it become the world's.
    pub auth_config: String,
    /// More arguments for every server's `serve` (such as
    /// `--header-timeout 1`).
    pub server_args: Vec<String>,
    /// Keep the run's directory after the world is dropped.
    pub keep: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            auth_token_lifetime: 600,
            rate_limits: [5, 10, 100, 1000],
            rate_window: 60,
            resource_config: String::new(),
            auth_settings: String::new(),
            auth_config: String::new(),
            server_args: Vec::new(),
            keep: false,
        }
    }
}

/// Why the world could not be built or used.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// A process could not be started.
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// An agent-side operation failed.
    #[error(transparent)]
    Agent(#[from] agent::AgentError),
    /// Something else went wrong.
    #[error("{0}")]
    Other(String),
}

/// The three running parties.
#[derive(Debug)]
pub struct World {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    /// The agent server.
    pub agent_server: Party,
    /// The auth server.
    pub auth_server: Party,
    /// The resource.
    pub resource: Party,
    auth_port: u16,
    auth_config: PathBuf,
    agent_config: PathBuf,
    server_args: Vec<String>,
    /// How often the auth server was restarted (each run logs to its own
    /// file: `auth-server-2.log`, `auth-server-3.log`, …).
    restarts: u32,
}

fn client() -> Result<SigningClient, WorldError> {
    SigningClient::new().map_err(|e| WorldError::Other(e.to_string()))
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

impl World {
    /// Writes the configurations and starts the agent server, the auth
    /// server and the resource.
    pub fn start(options: &Options) -> Result<Self, WorldError> {
        let mut retries = PORT_RETRIES;
        loop {
            match Self::start_once(options) {
                Err(WorldError::Harness(error)) if error.is_port_taken() && retries > 0 => {
                    retries -= 1;
                }
                outcome => return outcome,
            }
        }
    }

    fn start_once(options: &Options) -> Result<Self, WorldError> {
        let dir = tempfile::Builder::new()
            .prefix("aauth-world-")
            .tempdir()
            .map_err(|e| WorldError::Other(format!("temporary directory: {e}")))?;
        let root = dir.path().to_owned();
        let (agent_port, auth_port, resource_port) = (free_port(), free_port(), free_port());
        let (agent_url, auth_url, resource_url) =
            (url(agent_port), url(auth_port), url(resource_port));

        let agent_config = write_file(
            &root,
            "agent-server.toml",
            r#"name = "Demo travel agent"
state_dir = "agent-server"
redirect_uris = ["http://127.0.0.1/callback"]
"#,
        )?;
        let auth_config = write_file(
            &root,
            "auth-server.toml",
            &format!(
                r#"database = "auth-server.db"
scopes_supported = ["openid", "profile", "email", "data.read", "data.write"]
auth_token_lifetime = {lifetime}
{settings}
[[users]]
username = "{ALICE}"
password_hash = "{ALICE_HASH}"
sub = "user-alice"
name = "Alice Example"
email = "alice@example.com"
email_verified = true

# The agent server may read notes on its own (E§3.4); writing needs Alice.
[[autonomous]]
agent = "{agent_url}"
resource = "{resource_url}"
scopes = ["data.read"]
{extra}
"#,
                lifetime = options.auth_token_lifetime,
                settings = options.auth_settings,
                extra = options
                    .auth_config
                    .replace("{agent_url}", &agent_url)
                    .replace("{resource_url}", &resource_url),
            ),
        )?;
        let [unsigned, pseudonymous, identified, authorized] = options.rate_limits;
        let resource_config = write_file(
            &root,
            "resource.toml",
            &format!(
                r#"auth_server = "{auth_url}"
key_file = "resource-key.json"

[rate_limit]
window = {window}
unsigned = {unsigned}
pseudonymous = {pseudonymous}
identified = {identified}
authorized = {authorized}
{extra}
"#,
                window = options.rate_window,
                extra = options.resource_config,
            ),
        )?;

        let serve = |config: &Path, port: u16| -> Vec<String> {
            let mut args = vec![
                "serve".into(),
                "--dev".into(),
                "--config".into(),
                config.display().to_string(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
            ];
            args.extend(options.server_args.iter().cloned());
            args
        };
        let agent_server = Party::start(
            "aauth-agent-server",
            "agent-server",
            &serve(&agent_config, agent_port),
            &root,
        )?;
        let auth_server = Party::start(
            "aauth-auth-server",
            "auth-server",
            &serve(&auth_config, auth_port),
            &root,
        )?;
        let resource = Party::start(
            "aauth-resource",
            "resource",
            &serve(&resource_config, resource_port),
            &root,
        )?;
        for (party, expected) in [
            (&agent_server, &agent_url),
            (&auth_server, &auth_url),
            (&resource, &resource_url),
        ] {
            if party.url() != expected {
                return Err(WorldError::Other(format!(
                    "{} announced {} instead of {expected}",
                    party.name(),
                    party.url()
                )));
            }
        }
        let dir = if options.keep {
            let _ = dir.keep();
            None
        } else {
            Some(dir)
        };
        Ok(Self {
            dir,
            root,
            agent_server,
            auth_server,
            resource,
            auth_port,
            auth_config,
            agent_config,
            server_args: options.server_args.clone(),
            restarts: 0,
        })
    }

    /// The run's directory (configurations, databases, keys, logs).
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Keeps the run's directory after the world is dropped (for its logs).
    pub fn keep(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
    }

    /// Whether the directory is removed when the world is dropped.
    pub fn is_temporary(&self) -> bool {
        self.dir.is_some()
    }

    /// Stops the auth server and starts it again on the same port with the
    /// same database (P-AS-8: state survives a restart).
    pub fn restart_auth_server(&mut self) -> Result<(), WorldError> {
        self.restart_auth_server_with(&[], &[])
    }

    /// Stops the auth server and starts it again on the same port under
    /// `wrapper` (see [`Party::start_wrapped`]), with `extra` arguments
    /// after the usual ones (`--database …`, say).
    pub fn restart_auth_server_with(
        &mut self,
        wrapper: &[String],
        extra: &[String],
    ) -> Result<(), WorldError> {
        self.auth_server.stop();
        let mut args = vec![
            "serve".into(),
            "--dev".into(),
            "--config".into(),
            self.auth_config.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{}", self.auth_port),
        ];
        args.extend(self.server_args.iter().cloned());
        args.extend(extra.iter().cloned());
        self.restarts += 1;
        let label = format!("auth-server-{}", self.restarts + 1);
        self.auth_server =
            Party::start_wrapped(wrapper, "aauth-auth-server", &label, &args, &self.root)?;
        Ok(())
    }

    /// Runs `aauth-agent-server mint-code` (the operator's command, P-DEL-1)
    /// and returns the code it printed.
    pub fn mint_code(&self, sub: Option<&str>) -> Result<String, WorldError> {
        mint_code(&self.root, &self.agent_config, sub)
    }

    /// The agent server's own signing key, as it created it on disk.
    pub fn agent_server_key(&self) -> Result<ServerKey, WorldError> {
        ServerKey::load_or_create(&self.root.join("agent-server/key.json"))
            .map_err(|e| WorldError::Other(e.to_string()))
    }

    /// The agent server's identifier.
    pub fn agent_origin(&self) -> Result<Origin, WorldError> {
        Origin::parse(self.agent_server.url(), OriginMode::Dev)
            .map_err(|e| WorldError::Other(e.to_string()))
    }

    /// An agent acting as the agent server itself (`jwks_uri`, E§3.2).
    pub fn server_agent(&self, consent: Arc<dyn ConsentHandler>) -> Result<Agent, WorldError> {
        let key = self.agent_server_key()?;
        let principal = Principal::Server {
            agent: self.agent_origin()?,
            kid: key.kid,
            key: Arc::new(key.key),
        };
        Ok(Agent::new(
            client()?,
            principal,
            TokenStore::memory(),
            consent,
            OriginMode::Dev,
        )?)
    }

    /// Enrolls a new delegate with a freshly minted code, keeping its state
    /// in `name` under the run's directory (P-DEL-1, P-DEL-3).
    pub async fn enroll_delegate(&self, name: &str) -> Result<DelegateState, WorldError> {
        let code = self.mint_code(None)?;
        self.enroll_delegate_with(&code, name).await
    }

    /// Enrolls a new delegate with `code`, keeping its state in `name`.
    pub async fn enroll_delegate_with(
        &self,
        code: &str,
        name: &str,
    ) -> Result<DelegateState, WorldError> {
        enroll(&self.root, self.agent_server.url(), code, name).await
    }

    /// An agent acting as `delegate`, keeping its tokens in the delegate's
    /// state directory.
    pub fn delegate_agent(
        &self,
        delegate: DelegateState,
        consent: Arc<dyn ConsentHandler>,
    ) -> Result<Agent, WorldError> {
        delegate_agent(delegate, consent)
    }
}

/// Runs `aauth-agent-server mint-code --config CONFIG` in `root` (P-DEL-1)
/// and returns the code it printed.
pub fn mint_code(root: &Path, config: &Path, sub: Option<&str>) -> Result<String, WorldError> {
    let mut command = Command::new(binary("aauth-agent-server")?);
    command
        .current_dir(root)
        .env("XDG_DATA_HOME", root.join(crate::harness::DATA_HOME))
        .args(["mint-code", "--config"])
        .arg(config);
    if let Some(sub) = sub {
        command.args(["--sub", sub]);
    }
    let output = command
        .output()
        .map_err(|e| WorldError::Other(format!("mint-code: {e}")))?;
    if !output.status.success() {
        return Err(WorldError::Other(format!(
            "mint-code failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let code = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if code.is_empty() {
        return Err(WorldError::Other("mint-code printed nothing".into()));
    }
    Ok(code)
}

/// Enrolls a new delegate at `agent_server` with `code`, keeping its state
/// in `root/name` (P-DEL-1, P-DEL-3).
pub async fn enroll(
    root: &Path,
    agent_server: &str,
    code: &str,
    name: &str,
) -> Result<DelegateState, WorldError> {
    Ok(agent::enroll(
        &client()?,
        agent_server,
        code,
        &root.join(name),
        OriginMode::Dev,
    )
    .await?)
}

/// An agent acting as `delegate`, keeping its tokens in the delegate's
/// state directory.
pub fn delegate_agent(
    delegate: DelegateState,
    consent: Arc<dyn ConsentHandler>,
) -> Result<Agent, WorldError> {
    let tokens = match delegate.dir() {
        Some(dir) => TokenStore::in_dir(dir)?,
        None => TokenStore::memory(),
    };
    Ok(Agent::new(
        client()?,
        Principal::Delegate(delegate),
        tokens,
        consent,
        OriginMode::Dev,
    )?)
}
