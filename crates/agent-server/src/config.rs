//! The agent server's configuration file (TOML). Every field has a default,
//! so `--config` is optional in dev mode; command-line flags override it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aauth_http::runtime::StartError;
use aauth_http::state;
use serde::Deserialize;

/// `aauth-agent-server` configuration (E§8.1, P-DEL-1, P-AS-8).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The agent identifier, e.g. `https://agent.example` (P-MD-1);
    /// derived from the bound port in dev mode when absent.
    pub public_url: Option<String>,
    /// Where to listen (default `127.0.0.1:0` in dev mode, `127.0.0.1:8080` otherwise).
    pub listen: Option<SocketAddr>,
    /// Dev mode: loopback `http` identifiers (P-MD-1).
    pub dev: bool,
    /// The state directory (default: `$XDG_DATA_HOME/aauth/agent-server`):
    /// the key, the database, and the grants of `call --as-server`.
    pub state_dir: Option<PathBuf>,
    /// The agent server's signing key, created on first start (default:
    /// `key.json` in the state directory).
    pub key_file: Option<PathBuf>,
    /// The SQLite database, created on first start (P-AS-8; default:
    /// `agent-server.db` in the state directory).
    pub database: Option<PathBuf>,
    /// `name` in the metadata (E§8.1).
    pub name: String,
    /// `logo_uri` in the metadata.
    pub logo_uri: Option<String>,
    /// `homepage` in the metadata.
    pub homepage: Option<String>,
    /// `policy_uri` in the metadata.
    pub policy_uri: Option<String>,
    /// `tos_uri` in the metadata.
    pub tos_uri: Option<String>,
    /// `redirect_uris` in the metadata; loopback URIs match any port at the
    /// auth server (RFC 8252 §7.3, P-AS-4).
    pub redirect_uris: Vec<String>,
    /// Agent token lifetime in seconds (P-TOK-2, default 3600).
    pub agent_token_lifetime: u32,
    /// Enrollment code lifetime in seconds (P-DEL-1, default 600).
    pub enrollment_code_lifetime: u32,
    /// Allowed distance of a signature's `created` from the clock (E§10.4).
    pub max_clock_skew: u64,
    /// Also accept base64url and unpadded `Signature` values, as the early
    /// PyPI `aauth` writes them (P-SIG-7; off by default).
    pub lenient_base64: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            public_url: None,
            listen: None,
            dev: false,
            state_dir: None,
            key_file: None,
            database: None,
            name: "AAuth demo agent".to_owned(),
            logo_uri: None,
            homepage: None,
            policy_uri: None,
            tos_uri: None,
            redirect_uris: vec!["http://127.0.0.1/callback".to_owned()],
            agent_token_lifetime: 3600,
            enrollment_code_lifetime: 600,
            max_clock_skew: 60,
            lenient_base64: false,
        }
    }
}

impl Config {
    /// Reads `path`, or the defaults when `None`; the paths in the file are
    /// relative to its directory.
    pub fn load(path: Option<&Path>) -> Result<Self, StartError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?;
        let mut config: Self = toml::from_str(&text)
            .map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?;
        for slot in [
            &mut config.state_dir,
            &mut config.key_file,
            &mut config.database,
        ] {
            state::resolve_in_config(path, slot);
        }
        Ok(config)
    }

    /// The state directory: the command line's `--state-dir`, else the
    /// file's `state_dir`, else the default. `call --as-server` keeps its
    /// grants there (`tokens.json`, P-DEL-3).
    pub fn dir(&self, state_dir: Option<&Path>) -> Result<PathBuf, StartError> {
        state::state_dir(
            state_dir,
            self.state_dir.as_deref(),
            state::Party::AgentServer,
        )
        .map_err(|e| StartError::Config(e.to_string()))
    }

    /// The signing key: `key_file`, else `key.json` in [`Config::dir`]
    /// (which is only looked for then).
    pub fn key_path(&self, state_dir: Option<&Path>) -> Result<PathBuf, StartError> {
        match &self.key_file {
            Some(file) => Ok(file.clone()),
            None => Ok(self.dir(state_dir)?.join("key.json")),
        }
    }

    /// The database: `database`, else `agent-server.db` in [`Config::dir`]
    /// (which is only looked for then).
    pub fn database_path(&self, state_dir: Option<&Path>) -> Result<PathBuf, StartError> {
        match &self.database {
            Some(file) => Ok(file.clone()),
            None => Ok(self.dir(state_dir)?.join("agent-server.db")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_means_the_defaults_and_unknown_keys_are_refused() {
        let config: Config = toml::from_str("").unwrap();
        assert_eq!(config.name, "AAuth demo agent");
        assert_eq!(config.redirect_uris, ["http://127.0.0.1/callback"]);
        assert_eq!(config.agent_token_lifetime, 3600);
        let config: Config = toml::from_str("agent_token_lifetime = 5\nname = \"x\"").unwrap();
        assert_eq!(
            (config.agent_token_lifetime, config.name.as_str()),
            (5, "x")
        );
        assert!(toml::from_str::<Config>("nmae = \"typo\"").is_err());
    }

    #[test]
    fn files_are_in_the_state_directory_unless_named_relative_to_the_file() {
        let dir = std::env::temp_dir().join(format!("aauth-agent-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("agent-server.toml");
        std::fs::write(&file, "state_dir = \"state\"\ndatabase = \"db/a.db\"\n").unwrap();
        let config = Config::load(Some(&file)).unwrap();
        assert_eq!(config.dir(None).unwrap(), dir.join("state"));
        assert_eq!(config.key_path(None).unwrap(), dir.join("state/key.json"));
        assert_eq!(config.database_path(None).unwrap(), dir.join("db/a.db"));
        // --state-dir wins over the file's state_dir, not over its files.
        let flag = Some(Path::new("flag"));
        assert_eq!(config.key_path(flag).unwrap(), Path::new("flag/key.json"));
        assert_eq!(config.database_path(flag).unwrap(), dir.join("db/a.db"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
