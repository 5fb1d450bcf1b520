//! The resource's configuration: a TOML file whose every field has a
//! default, overridden by command-line flags, resolved into [`Settings`]
//! once the public identifier is known.
//!
//! ```toml
//! public_url = "https://notes.example"      # dev: derived from the bound port
//! listen = "127.0.0.1:8080"                 # dev default: 127.0.0.1:0
//! auth_server = "https://auth.example"      # the ONE trusted auth server (required)
//! name = "AAuth notes"                      # shown on auth servers' consent pages when
//!                                           # this resource asks a user as an agent (P-UI-2)
//! state_dir = "/var/lib/aauth/resource"    # default: $XDG_DATA_HOME/aauth/resource
//! key_file = "key.json"                     # default: key.json in the state directory
//!                                           # (paths in this file are relative to it)
//! resource_token_lifetime = 300             # seconds (P-TOK-3)
//! require_nonce = true                      # POST/PUT/PATCH/DELETE (P-SIG-6)
//! max_body = 1048576                        # bytes (P-ERR-1)
//! max_skew = 60                             # seconds around `created` (P-SIG-2)
//! token_leeway = 0                          # seconds after `exp` (P-TOK-5)
//! lenient_base64 = false                    # P-SIG-7
//! downstream = "https://next.example/chain" # GET /chain calls it (E§3.9); default: none
//! downstream_auth_server = "https://auth2.example" # required with downstream: the only
//!                                                  # auth server given callers' tokens
//! downstream_compat = "strict"              # or "py-early": sign downstream the way the
//!                                           # early PyPI aauth reads (P-SIG-7)
//!
//! [scopes]                                  # E§8.3, in this order
//! "data.read" = "Read your notes"
//! "data.write" = "Create and change your notes"
//! "chain.read" = "See the chain of services acting for you"
//!
//! [rate_limit]                              # E§4.5, a fixed window per level
//! window = 60
//! unsigned = 5
//! pseudonymous = 10
//! identified = 100
//! authorized = 1000
//!
//! [replay_cache]                            # P-SIG-6; full: 503 + Retry-After
//! capacity = 1000000                        # Nonces remembered in all
//! per_client = 65536                        # per key; per address for hwk keys
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aauth_http::client::Compat;
use aauth_http::replay::ReplayLimits;
use aauth_http::runtime::StartError;
use aauth_http::state;
use aauth_protocol::ids::{Origin, OriginMode, Scope};
use aauth_protocol::metadata::{HttpsUrl, ScopeDescriptions};
use serde::Deserialize;
use url::Url;

/// The scope `GET /data` needs.
pub const READ_SCOPE: &str = "data.read";
/// The scope `POST /data` needs.
pub const WRITE_SCOPE: &str = "data.write";
/// The scope `GET /chain` needs.
pub const CHAIN_SCOPE: &str = "chain.read";

/// Default `name` of the resource as an agent.
pub const DEFAULT_NAME: &str = "AAuth notes";

/// Default key file name, inside the state directory.
pub const DEFAULT_KEY_FILE: &str = "key.json";

/// The configuration file (TOML). Every field is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The resource's identifier (P-MD-1); in dev mode derived from the bound port.
    pub public_url: Option<String>,
    /// Where to listen; default `127.0.0.1:0` in dev mode, `127.0.0.1:8080` otherwise.
    pub listen: Option<SocketAddr>,
    /// The one auth server whose tokens are accepted (E§7.7 step 9).
    pub auth_server: Option<String>,
    /// The name in `/.well-known/aauth-agent`, shown on a downstream auth
    /// server's consent page (P-MD-2, P-UI-2).
    pub name: String,
    /// The state directory (default: `$XDG_DATA_HOME/aauth/resource`).
    pub state_dir: Option<PathBuf>,
    /// The signing key (default: `key.json` in the state directory).
    pub key_file: Option<PathBuf>,
    /// Supported scopes and their descriptions, in order (E§8.3).
    pub scopes: ScopeDescriptions,
    /// Lifetime of resource tokens, seconds (P-TOK-3: default 5 min).
    pub resource_token_lifetime: u32,
    /// Require a covered `Nonce` on POST/PUT/PATCH/DELETE (P-SIG-6).
    pub require_nonce: bool,
    /// Largest request body, bytes (P-ERR-1: 1 MiB).
    pub max_body: usize,
    /// Allowed distance of a signature's `created` from the clock, seconds (P-SIG-2).
    pub max_skew: u64,
    /// Grace after a token's `exp`, seconds (P-TOK-5).
    pub token_leeway: u32,
    /// Accept base64url / unpadded signature values (P-SIG-7).
    pub lenient_base64: bool,
    /// The progressive rate tiers of `GET /public` (E§4.5).
    pub rate_limit: RateLimits,
    /// The bounds of the `Nonce` replay cache (P-SIG-6).
    pub replay_cache: ReplayLimits,
    /// The URL `GET /chain` calls, acting as an agent (E§3.9, P-MD-4); its
    /// scope need is learnt from its challenge.
    pub downstream: Option<String>,
    /// The auth server the downstream's challenges must name: the only one
    /// this resource sends a caller's auth token to (required with
    /// `downstream`).
    pub downstream_auth_server: Option<String>,
    /// How this resource signs its downstream calls: our profile, or a
    /// peer's quirks.
    pub downstream_compat: Compat,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            public_url: None,
            listen: None,
            auth_server: None,
            name: DEFAULT_NAME.to_owned(),
            state_dir: None,
            key_file: None,
            scopes: default_scopes(),
            resource_token_lifetime: 300,
            require_nonce: true,
            max_body: 1024 * 1024,
            max_skew: 60,
            token_leeway: 0,
            lenient_base64: false,
            rate_limit: RateLimits::default(),
            replay_cache: ReplayLimits::default(),
            downstream: None,
            downstream_auth_server: None,
            downstream_compat: Compat::Strict,
        }
    }
}

fn default_scopes() -> ScopeDescriptions {
    ScopeDescriptions::new([
        (READ_SCOPE.to_owned(), "Read your notes".to_owned()),
        (
            WRITE_SCOPE.to_owned(),
            "Create and change your notes".to_owned(),
        ),
        (
            CHAIN_SCOPE.to_owned(),
            "See the chain of services acting for you".to_owned(),
        ),
    ])
}

/// Requests allowed per window at each level (E§4.5's example uses 10 / 100
/// / 1000 a minute). Unsigned requests count per client address,
/// pseudonymous ones per key thumbprint, the others per agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// The fixed window, seconds.
    pub window: u64,
    /// Unsigned requests per client address.
    pub unsigned: u32,
    /// `hwk` requests per key thumbprint.
    pub pseudonymous: u32,
    /// Identified requests per agent.
    pub identified: u32,
    /// Authorized requests per agent.
    pub authorized: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            window: 60,
            unsigned: 5,
            pseudonymous: 10,
            identified: 100,
            authorized: 1000,
        }
    }
}

impl Config {
    /// Parses a configuration file's text.
    pub fn from_toml(text: &str) -> Result<Self, StartError> {
        toml::from_str(text).map_err(|e| StartError::Config(e.to_string()))
    }

    /// Reads and parses the file at `path`; the paths in it are relative
    /// to its directory.
    pub fn load(path: &Path) -> Result<Self, StartError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?;
        let mut config = Self::from_toml(&text)
            .map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?;
        state::resolve_in_config(path, &mut config.state_dir);
        state::resolve_in_config(path, &mut config.key_file);
        Ok(config)
    }

    /// The key file: the one named, else `key.json` in `state_dir`.
    pub fn key_path(&self, state_dir: &Path) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| state_dir.join(DEFAULT_KEY_FILE))
    }

    /// Checks the configuration and resolves it for the identifier `public`.
    pub fn resolve(self, public: Origin, dev: bool) -> Result<Settings, StartError> {
        let mode = if dev {
            OriginMode::Dev
        } else {
            OriginMode::Production
        };
        let auth_server = self.auth_server.as_deref().ok_or_else(|| {
            StartError::Config(
                "auth_server is required (in the file or as --auth-server URL)".to_owned(),
            )
        })?;
        let auth_server = Origin::parse(auth_server, mode)
            .map_err(|e| StartError::Config(format!("auth_server: {e}")))?;
        for (name, _) in self.scopes.iter() {
            // Each name must be one scope token (RFC 6749 §3.3).
            match Scope::parse(name) {
                Ok(scope) if scope.tokens().count() == 1 => {}
                _ => {
                    return Err(StartError::Config(format!(
                        "scopes: {name:?} is not a single scope token"
                    )));
                }
            }
        }
        for needed in [READ_SCOPE, WRITE_SCOPE, CHAIN_SCOPE] {
            if self.scopes.get(needed).is_none() {
                return Err(StartError::Config(format!(
                    "scopes must include {needed:?}: an endpoint needs it"
                )));
            }
        }
        let downstream = self
            .downstream
            .as_deref()
            .map(|text| downstream_url(text, &public, mode))
            .transpose()?;
        // The exchange sends the caller's auth token to the downstream's
        // auth server: that server is configured, never taken from a peer.
        let downstream_auth_server = match (&downstream, self.downstream_auth_server.as_deref()) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(StartError::Config(
                    "downstream needs downstream_auth_server: the auth server trusted with \
                     callers' tokens in the exchange"
                        .to_owned(),
                ));
            }
            (Some(_), Some(text)) => Some(Origin::parse(text, mode).map_err(|e| {
                StartError::Config(format!("downstream_auth_server {text:?}: {e}"))
            })?),
        };
        let rate = self.rate_limit;
        if rate.window == 0 {
            return Err(StartError::Config(
                "rate_limit.window must be at least 1 second".to_owned(),
            ));
        }
        if self.resource_token_lifetime == 0 {
            return Err(StartError::Config(
                "resource_token_lifetime must be at least 1 second".to_owned(),
            ));
        }
        if self.name.trim().is_empty() {
            return Err(StartError::Config("name must not be empty".to_owned()));
        }
        self.replay_cache.check().map_err(StartError::Config)?;
        Ok(Settings {
            identifier: public,
            auth_server,
            name: self.name,
            dev,
            scopes: self.scopes,
            resource_token_lifetime: self.resource_token_lifetime,
            require_nonce: self.require_nonce,
            max_body: self.max_body,
            max_skew: self.max_skew,
            token_leeway: self.token_leeway,
            lenient_base64: self.lenient_base64,
            rate_limit: rate,
            replay_cache: self.replay_cache,
            downstream,
            downstream_auth_server,
            downstream_compat: self.downstream_compat,
        })
    }
}

/// The downstream URL: absolute, on an acceptable origin (P-MD-1: `https`,
/// or loopback `http` in dev mode), and not this resource itself (a call to
/// itself would only recurse until the auth server's depth limit).
fn downstream_url(text: &str, public: &Origin, mode: OriginMode) -> Result<Url, StartError> {
    let bad = |reason: String| StartError::Config(format!("downstream {text:?}: {reason}"));
    let checked = HttpsUrl::parse(text, mode).map_err(|e| bad(e.to_string()))?;
    let url = Url::parse(checked.as_str()).map_err(|e| bad(e.to_string()))?;
    let origin = url.origin().ascii_serialization();
    if Origin::parse(&origin, mode).is_ok_and(|o| &o == public) {
        return Err(bad("it is this resource itself".to_owned()));
    }
    Ok(url)
}

/// The checked configuration a running resource uses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This resource's identifier: `iss` of its resource tokens, `aud` of
    /// the auth tokens it accepts, and the `@authority` it verifies (P-SIG-5).
    pub identifier: Origin,
    /// The one trusted auth server (P-TOK-6).
    pub auth_server: Origin,
    /// The name this resource shows as an agent (P-MD-2).
    pub name: String,
    /// Dev mode: loopback `http` identifiers, signature bases in errors (P-ERR-3).
    pub dev: bool,
    /// Supported scopes with descriptions, in order.
    pub scopes: ScopeDescriptions,
    /// Seconds.
    pub resource_token_lifetime: u32,
    /// Nonce required on non-idempotent methods.
    pub require_nonce: bool,
    /// Bytes.
    pub max_body: usize,
    /// Seconds.
    pub max_skew: u64,
    /// Seconds.
    pub token_leeway: u32,
    /// P-SIG-7.
    pub lenient_base64: bool,
    /// E§4.5.
    pub rate_limit: RateLimits,
    /// P-SIG-6.
    pub replay_cache: ReplayLimits,
    /// The URL `GET /chain` calls (E§3.9), if any.
    pub downstream: Option<Url>,
    /// The downstream's auth server, with `downstream`.
    pub downstream_auth_server: Option<Origin>,
    /// How downstream calls are signed.
    pub downstream_compat: Compat,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(text: &str) -> Origin {
        Origin::parse(text, OriginMode::Dev).unwrap()
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.resource_token_lifetime, 300);
        assert_eq!(config.name, DEFAULT_NAME);
        assert!(config.require_nonce);
        assert_eq!(config.max_body, 1_048_576);
        assert_eq!(config.max_skew, 60);
        assert_eq!(config.token_leeway, 0);
        assert!(!config.lenient_base64);
        assert_eq!(config.rate_limit, RateLimits::default());
        let scopes: Vec<_> = config.scopes.iter().collect();
        assert_eq!(
            scopes,
            [
                ("data.read", "Read your notes"),
                ("data.write", "Create and change your notes"),
                ("chain.read", "See the chain of services acting for you"),
            ]
        );
        assert_eq!(
            config.key_path(Path::new("/state")),
            Path::new("/state/key.json")
        );
    }

    #[test]
    fn paths_in_the_file_are_relative_to_the_file() {
        let dir =
            std::env::temp_dir().join(format!("aauth-resource-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("resource.toml");
        std::fs::write(&file, "state_dir = \"state\"\nkey_file = \"keys/k.json\"\n").unwrap();
        let config = Config::load(&file).unwrap();
        assert_eq!(config.state_dir, Some(dir.join("state")));
        assert_eq!(
            config.key_path(Path::new("/elsewhere")),
            dir.join("keys/k.json")
        );
        std::fs::write(&file, "key_file = \"/abs/k.json\"\n").unwrap();
        let config = Config::load(&file).unwrap();
        assert_eq!(config.key_path(Path::new("/s")), Path::new("/abs/k.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scopes_keep_the_order_of_the_file() {
        let config = Config::from_toml(
            "[scopes]\n\"data.write\" = \"W\"\n\"data.read\" = \"R\"\n\"b.z\" = \"Z\"\n\"a.a\" = \"A\"\n",
        )
        .unwrap();
        let names: Vec<_> = config.scopes.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["data.write", "data.read", "b.z", "a.a"]);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(Config::from_toml("require_nonse = false").is_err());
        assert!(Config::from_toml("[rate_limit]\nunsigned = -1").is_err());
        let no_auth = Config::default().resolve(dev("http://127.0.0.1:7000"), true);
        assert!(matches!(no_auth, Err(StartError::Config(_))));
        let mut config = Config::from_toml("auth_server = \"http://127.0.0.1:7001\"").unwrap();
        assert!(
            config
                .clone()
                .resolve(dev("http://127.0.0.1:7000"), false)
                .is_err(),
            "plain http is a dev-mode identifier only (P-MD-1)"
        );
        config.scopes = ScopeDescriptions::new([("data.read".into(), "R".into())]);
        assert!(config.resolve(dev("http://127.0.0.1:7000"), true).is_err());
    }

    #[test]
    fn a_downstream_is_an_acceptable_url_other_than_this_resource() {
        // profile: P-MD-1 (the downstream's origin), P-MD-4
        let base = "auth_server = \"http://127.0.0.1:7001\"\n";
        let resolve = |downstream: &str, dev_mode: bool| {
            Config::from_toml(&format!(
                "{base}downstream = \"{downstream}\"\ndownstream_auth_server = \"https://auth2.example\""
            ))
                .unwrap()
                .resolve(dev("http://127.0.0.1:7000"), dev_mode)
        };
        let settings = resolve("http://127.0.0.1:7002/chain", true).unwrap();
        assert_eq!(
            settings.downstream.unwrap().as_str(),
            "http://127.0.0.1:7002/chain"
        );
        assert!(
            resolve("http://127.0.0.1:7000/chain", true).is_err(),
            "itself"
        );
        assert!(
            resolve("http://example.com/chain", true).is_err(),
            "not loopback"
        );
        assert!(resolve("/chain", true).is_err(), "relative");
        let none = Config::from_toml(base)
            .unwrap()
            .resolve(dev("http://127.0.0.1:7000"), true)
            .unwrap();
        assert!(none.downstream.is_none());
    }

    #[test]
    fn rate_limits_can_be_set_one_by_one() {
        let config = Config::from_toml("[rate_limit]\nwindow = 2\nunsigned = 1").unwrap();
        assert_eq!(config.rate_limit.window, 2);
        assert_eq!(config.rate_limit.unsigned, 1);
        assert_eq!(config.rate_limit.pseudonymous, 10);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_configuration_text_parses_or_is_a_config_error(text in "\\PC{0,200}") {
            match Config::from_toml(&text) {
                Ok(_) | Err(StartError::Config(_)) => {}
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
