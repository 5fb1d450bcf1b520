//! The agent server's configuration file (TOML). Every field has a default,
//! so `--config` is optional in dev mode; command-line flags override it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aauth_http::runtime::StartError;
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
    /// The agent server's signing key, created on first start.
    pub key_file: PathBuf,
    /// The SQLite database, created on first start (P-AS-8).
    pub database: PathBuf,
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
    /// Where `call --as-server` keeps its auth and refresh tokens (P-DEL-3).
    pub state_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            public_url: None,
            listen: None,
            dev: false,
            key_file: PathBuf::from(".aauth/agent-server/key.json"),
            database: PathBuf::from(".aauth/agent-server/agent-server.db"),
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
            state_dir: PathBuf::from(".aauth/agent-server/state"),
        }
    }
}

impl Config {
    /// Reads `path`, or the defaults when `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, StartError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| StartError::Config(format!("{}: {e}", path.display())))
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
}
