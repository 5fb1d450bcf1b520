//! The auth server's configuration file (TOML, profile: P-AS-2a): its public
//! URL, the database file, users, the autonomous-access policy, the trusted
//! upstream issuers and exchange rules (P-AS-7), and every lifetime in seconds (P-AS-3, P-AS-5, P-AS-6, P-TOK-5). The file is the
//! source of truth for users and policy; SQLite keeps what is created at run
//! time. Every field has a default, so a dev server needs no file at all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aauth_http::state;
use aauth_protocol::ids::{Origin, OriginMode, Scope};
use argon2::password_hash::phc::PasswordHash;
use serde::Deserialize;

/// The scopes that control token claims rather than resource access
/// (E§7.4: "identity scopes like `openid`, `profile`, `email`").
pub const IDENTITY_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// Whether `scope` is an identity scope (E§7.4).
pub fn is_identity_scope(scope: &str) -> bool {
    IDENTITY_SCOPES.contains(&scope)
}

/// The configuration file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The auth server's identifier (`https://…`; dev mode derives it).
    pub public_url: Option<String>,
    /// Where to listen (dev default `127.0.0.1:0`).
    pub listen: Option<String>,
    /// The state directory (default: `$XDG_DATA_HOME/aauth/auth-server`).
    pub state_dir: Option<PathBuf>,
    /// The SQLite file, created on first start (P-AS-8; default:
    /// `auth-server.db` in the state directory).
    pub database: Option<PathBuf>,
    /// Users who can log in (P-AS-2a).
    pub users: Vec<UserConfig>,
    /// Agents that may act without a user (P-AS-2a).
    pub autonomous: Vec<AutonomousConfig>,
    /// Auth servers whose tokens may be exchanged here (P-AS-7, P-TOK-6).
    pub trusted_issuers: Vec<String>,
    /// Exchange rules (P-AS-7): what a caller may receive for an upstream token.
    pub exchange: Vec<ExchangeConfig>,
    /// Deepest `act` chain an exchanged token may carry (P-AS-7: 5).
    pub max_exchange_depth: usize,
    /// `scopes_supported` in the metadata (E§8.2); identity scopes by default.
    pub scopes_supported: Vec<String>,
    /// Auth token lifetime, seconds (P-TOK-4: 600).
    pub auth_token_lifetime: u32,
    /// Request token lifetime, seconds (P-AS-3: 600).
    pub request_token_lifetime: u32,
    /// Authorization code lifetime, seconds (P-AS-5: 60).
    pub code_lifetime: u32,
    /// Refresh token lifetime, seconds (P-AS-6: 30 days).
    pub refresh_token_lifetime: u64,
    /// Login session lifetime, seconds (P-AS-4).
    pub session_lifetime: u64,
    /// Allowed distance of a signature's `created` from the clock (P-SIG-2: 60).
    pub max_skew: u64,
    /// Grace after a token's `exp` (P-TOK-5: 0).
    pub token_leeway: u32,
    /// Also accept base64url and unpadded `Signature` values, as the early
    /// PyPI `aauth` writes them (P-SIG-7; off by default).
    pub lenient_base64: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            public_url: None,
            listen: None,
            state_dir: None,
            database: None,
            users: Vec::new(),
            autonomous: Vec::new(),
            trusted_issuers: Vec::new(),
            exchange: Vec::new(),
            max_exchange_depth: 5,
            scopes_supported: IDENTITY_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            auth_token_lifetime: 600,
            request_token_lifetime: 600,
            code_lifetime: 60,
            refresh_token_lifetime: 30 * 24 * 60 * 60,
            session_lifetime: 60 * 60,
            max_skew: 60,
            token_leeway: 0,
            lenient_base64: false,
        }
    }
}

/// A `[[users]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The login name.
    pub username: String,
    /// An argon2 PHC string (`aauth-auth-server hash-password`).
    pub password_hash: String,
    /// The `sub` claim; defaults to the username.
    pub sub: Option<String>,
    /// The `name` claim (scope `profile`).
    pub name: Option<String>,
    /// The `email` claim (scope `email`).
    pub email: Option<String>,
    /// The `email_verified` claim (scope `email`).
    pub email_verified: Option<bool>,
}

/// An `[[autonomous]]` rule: `agent` may obtain tokens for `resource` with
/// any subset of `scopes` without a user (P-AS-2a, E§3.4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutonomousConfig {
    /// The agent identifier.
    pub agent: String,
    /// The resource identifier; the agent's own for self access (E§3.5).
    pub resource: String,
    /// The scopes granted directly.
    pub scopes: Vec<String>,
}

/// An `[[exchange]]` rule (P-AS-7): `caller`, presenting an auth token from
/// `upstream_issuer`, may receive downstream tokens for any subset of
/// `scopes` without a user; `consent_scopes` are those that would need the
/// user's consent, which an exchange never asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// The auth server that issued the upstream token; must be in `trusted_issuers`.
    pub upstream_issuer: String,
    /// The calling resource (signing as itself, P-MD-4).
    pub caller: String,
    /// The downstream scopes granted by exchange.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The downstream scopes that would need the user (400 `interaction_required`).
    #[serde(default)]
    pub consent_scopes: Vec<String>,
}

/// A user, ready for login checks and token claims.
#[derive(Debug, Clone)]
pub struct User {
    /// The login name.
    pub username: String,
    /// The PHC string (a password digest; never logged).
    password_hash: String,
    /// The `sub` claim.
    pub sub: String,
    /// The `name` claim.
    pub name: Option<String>,
    /// The `email` claim.
    pub email: Option<String>,
    /// The `email_verified` claim.
    pub email_verified: Option<bool>,
}

impl User {
    /// The stored PHC string.
    pub fn password_hash(&self) -> &str {
        &self.password_hash
    }
}

/// A parsed autonomous rule.
#[derive(Debug, Clone)]
pub struct AutonomousRule {
    /// The agent.
    pub agent: Origin,
    /// The resource.
    pub resource: Origin,
    /// The scopes it may receive directly.
    pub scopes: Scope,
}

/// A parsed exchange rule (P-AS-7).
#[derive(Debug, Clone)]
pub struct ExchangeRule {
    /// The upstream auth server.
    pub upstream_issuer: Origin,
    /// The calling resource.
    pub caller: Origin,
    /// Scopes granted by exchange.
    pub scopes: Vec<String>,
    /// Scopes that would need the user.
    pub consent_scopes: Vec<String>,
}

/// What the exchange rules say about a request (P-AS-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeDecision {
    /// Every requested scope is granted by exchange.
    Grant,
    /// Some requested scope would need the user's consent: 400
    /// `interaction_required`, the resource falls back to P-UI.
    NeedsConsent,
    /// No rule, or a scope outside the rule: 400 `invalid_scope`.
    NotAllowed,
}

/// The policy and users, checked once at start.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    users: HashMap<String, User>,
    autonomous: Vec<AutonomousRule>,
    trusted_issuers: Vec<Origin>,
    exchange: Vec<ExchangeRule>,
}

impl Policy {
    /// The user `username`.
    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.get(username)
    }

    /// P-AS-2a: a direct grant when a rule for (`agent`, `resource`) covers
    /// every requested scope; never for identity scopes, which need a user.
    pub fn allows_autonomous(&self, agent: &Origin, resource: &Origin, scope: &Scope) -> bool {
        if scope.tokens().any(is_identity_scope) {
            return false;
        }
        self.autonomous.iter().any(|rule| {
            &rule.agent == agent && &rule.resource == resource && rule.scopes.includes(scope)
        })
    }

    /// The auth servers whose tokens may be exchanged (P-AS-7, P-TOK-6).
    pub fn trusted_issuers(&self) -> &[Origin] {
        &self.trusted_issuers
    }

    /// P-AS-7: the exchange rule for (`upstream_issuer`, `caller`) decides;
    /// without one, nothing is allowed.
    pub fn exchange(
        &self,
        upstream_issuer: &Origin,
        caller: &Origin,
        scope: &Scope,
    ) -> ExchangeDecision {
        let Some(rule) = self
            .exchange
            .iter()
            .find(|rule| &rule.upstream_issuer == upstream_issuer && &rule.caller == caller)
        else {
            return ExchangeDecision::NotAllowed;
        };
        let granted = |s: &str| rule.scopes.iter().any(|g| g == s);
        let consent = |s: &str| rule.consent_scopes.iter().any(|c| c == s);
        if scope.tokens().all(granted) {
            ExchangeDecision::Grant
        } else if scope.tokens().all(|s| granted(s) || consent(s)) {
            ExchangeDecision::NeedsConsent
        } else {
            ExchangeDecision::NotAllowed
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is not a configuration.
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A value is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads `path`; the paths in it are relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|reason| ConfigError::Parse {
            path: path.to_owned(),
            reason,
        })?;
        state::resolve_in_config(path, &mut config.state_dir);
        state::resolve_in_config(path, &mut config.database);
        Ok(config)
    }

    /// The database file: `database`, else `auth-server.db` in the state
    /// directory (`state_dir` wins over the file's `state_dir`).
    pub fn database_path(&self, state_dir: Option<&Path>) -> Result<PathBuf, ConfigError> {
        if let Some(database) = &self.database {
            return Ok(database.clone());
        }
        let dir = state::state_dir(
            state_dir,
            self.state_dir.as_deref(),
            state::Party::AuthServer,
        )
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(dir.join("auth-server.db"))
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks users and rules under `mode` (identifiers: P-MD-1).
    pub fn policy(&self, mode: OriginMode) -> Result<Policy, ConfigError> {
        let mut users = HashMap::new();
        for user in &self.users {
            if user.username.is_empty() {
                return Err(ConfigError::Invalid("a user has an empty username".into()));
            }
            PasswordHash::new(&user.password_hash).map_err(|e| {
                ConfigError::Invalid(format!(
                    "user {:?}: password_hash is not a PHC string: {e}",
                    user.username
                ))
            })?;
            let parsed = User {
                username: user.username.clone(),
                password_hash: user.password_hash.clone(),
                sub: user.sub.clone().unwrap_or_else(|| user.username.clone()),
                name: user.name.clone(),
                email: user.email.clone(),
                email_verified: user.email_verified,
            };
            if users.insert(user.username.clone(), parsed).is_some() {
                return Err(ConfigError::Invalid(format!(
                    "user {:?} is listed twice",
                    user.username
                )));
            }
        }
        let origin = |what: &str, text: &str| {
            Origin::parse(text, mode)
                .map_err(|e| ConfigError::Invalid(format!("autonomous {what} {text:?}: {e}")))
        };
        let autonomous = self
            .autonomous
            .iter()
            .map(|rule| {
                Ok(AutonomousRule {
                    agent: origin("agent", &rule.agent)?,
                    resource: origin("resource", &rule.resource)?,
                    scopes: Scope::from_tokens(&rule.scopes).map_err(|e| {
                        ConfigError::Invalid(format!("autonomous scopes for {}: {e}", rule.agent))
                    })?,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let trusted_issuers = self
            .trusted_issuers
            .iter()
            .map(|text| {
                Origin::parse(text, mode)
                    .map_err(|e| ConfigError::Invalid(format!("trusted_issuers {text:?}: {e}")))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let mut exchange: Vec<ExchangeRule> = Vec::with_capacity(self.exchange.len());
        for rule in &self.exchange {
            let parsed = exchange_rule(rule, mode)?;
            // A rule for an issuer that is not trusted could never apply.
            if !trusted_issuers.contains(&parsed.upstream_issuer) {
                return Err(ConfigError::Invalid(format!(
                    "exchange upstream_issuer {} is not in trusted_issuers",
                    parsed.upstream_issuer
                )));
            }
            if exchange
                .iter()
                .any(|r| r.upstream_issuer == parsed.upstream_issuer && r.caller == parsed.caller)
            {
                return Err(ConfigError::Invalid(format!(
                    "exchange rule for upstream_issuer {} and caller {} is listed twice",
                    parsed.upstream_issuer, parsed.caller
                )));
            }
            exchange.push(parsed);
        }
        Ok(Policy {
            users,
            autonomous,
            trusted_issuers,
            exchange,
        })
    }
}

/// Checks one `[[exchange]]` entry under `mode`.
fn exchange_rule(rule: &ExchangeConfig, mode: OriginMode) -> Result<ExchangeRule, ConfigError> {
    let origin = |what: &str, text: &str| {
        Origin::parse(text, mode)
            .map_err(|e| ConfigError::Invalid(format!("exchange {what} {text:?}: {e}")))
    };
    // Each entry is one scope token (a space would smuggle in two).
    let scopes = |what: &str, list: &[String]| {
        list.iter()
            .map(|token| match Scope::parse(token) {
                Ok(scope) if scope.tokens().count() == 1 => Ok(token.clone()),
                Ok(_) => Err(format!("{token:?} is more than one scope token")),
                Err(e) => Err(e.to_string()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                ConfigError::Invalid(format!("exchange {what} for caller {}: {e}", rule.caller))
            })
    };
    Ok(ExchangeRule {
        upstream_issuer: origin("upstream_issuer", &rule.upstream_issuer)?,
        caller: origin("caller", &rule.caller)?,
        scopes: scopes("scopes", &rule.scopes)?,
        consent_scopes: scopes("consent_scopes", &rule.consent_scopes)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../examples/auth-server.toml");

    #[test]
    fn the_committed_example_parses_and_checks() {
        let config = Config::parse(EXAMPLE).unwrap();
        let policy = config.policy(OriginMode::Dev).unwrap();
        assert!(policy.user("alice").is_some());
        assert_eq!(config.code_lifetime, 60);
    }

    /// The example with its commented exchange configuration switched on.
    fn example_with_exchange() -> String {
        let keys = [
            "trusted_issuers",
            "[[exchange]]",
            "upstream_issuer",
            "caller",
            "scopes",
            "consent_scopes",
        ];
        EXAMPLE
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if keys.iter().any(|k| rest.starts_with(k)) => rest,
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_commented_exchange_example_parses_and_checks() {
        // profile: P-AS-7
        let text = example_with_exchange();
        let config = Config::parse(&text).unwrap();
        assert_eq!(config.exchange.len(), 1);
        let policy = config.policy(OriginMode::Production).unwrap();
        let auth1 = Origin::parse("https://auth1.example", OriginMode::Production).unwrap();
        let resource1 = Origin::parse("https://resource1.example", OriginMode::Production).unwrap();
        assert_eq!(policy.trusted_issuers(), std::slice::from_ref(&auth1));
        let scope = Scope::parse("data.read").unwrap();
        assert_eq!(
            policy.exchange(&auth1, &resource1, &scope),
            ExchangeDecision::Grant
        );
    }

    #[test]
    fn defaults_follow_the_profile() {
        // profile: P-AS-3 (600 s), P-AS-5 (60 s), P-AS-6 (30 days), P-TOK-4 (600 s).
        let config = Config::parse("").unwrap();
        assert_eq!(config.request_token_lifetime, 600);
        assert_eq!(config.code_lifetime, 60);
        assert_eq!(config.refresh_token_lifetime, 2_592_000);
        assert_eq!(config.auth_token_lifetime, 600);
        assert_eq!(
            config.database_path(Some(Path::new("/s"))).unwrap(),
            PathBuf::from("/s/auth-server.db")
        );
        // profile: P-AS-7 — depth limit 5; nothing trusted or exchanged by default.
        assert_eq!(config.max_exchange_depth, 5);
        assert!(config.trusted_issuers.is_empty() && config.exchange.is_empty());
    }

    const EXCHANGE: &str = "trusted_issuers = [\"https://auth1.example\"]\n\
        [[exchange]]\nupstream_issuer = \"https://auth1.example\"\n\
        caller = \"https://resource1.example\"\nscopes = [\"a\", \"b\"]\n\
        consent_scopes = [\"c\"]\n";

    #[test]
    fn exchange_rules_grant_ask_for_consent_or_refuse() {
        // profile: P-AS-7 — within `scopes` → grant; any consent scope (and
        // none outside both) → interaction_required; else invalid_scope.
        let policy = Config::parse(EXCHANGE)
            .unwrap()
            .policy(OriginMode::Production)
            .unwrap();
        let o = |s: &str| Origin::parse(s, OriginMode::Production).unwrap();
        let (auth1, resource1) = (o("https://auth1.example"), o("https://resource1.example"));
        let decide = |iss: &Origin, caller: &Origin, scope: &str| {
            policy.exchange(iss, caller, &Scope::parse(scope).unwrap())
        };
        use ExchangeDecision::{Grant, NeedsConsent, NotAllowed};
        assert_eq!(decide(&auth1, &resource1, "a b"), Grant);
        assert_eq!(decide(&auth1, &resource1, "b"), Grant);
        assert_eq!(decide(&auth1, &resource1, "a c"), NeedsConsent);
        assert_eq!(decide(&auth1, &resource1, "c"), NeedsConsent);
        assert_eq!(decide(&auth1, &resource1, "c d"), NotAllowed);
        assert_eq!(decide(&auth1, &resource1, "d"), NotAllowed);
        assert_eq!(
            decide(&o("https://auth2.example"), &resource1, "a"),
            NotAllowed
        );
        assert_eq!(
            decide(&auth1, &o("https://resource2.example"), "a"),
            NotAllowed
        );
    }

    #[test]
    fn exchange_rules_must_name_a_trusted_issuer_once() {
        // profile: P-AS-7, P-TOK-6 — a rule for an untrusted issuer could
        // never apply: refused at start, as is a duplicate rule.
        let untrusted = EXCHANGE.replace(
            "trusted_issuers = [\"https://auth1.example\"]",
            "trusted_issuers = []",
        );
        let error = Config::parse(&untrusted)
            .unwrap()
            .policy(OriginMode::Production)
            .unwrap_err();
        assert!(
            error.to_string().contains("not in trusted_issuers"),
            "{error}"
        );
        let rule = EXCHANGE.split_once("[[exchange]]").unwrap().1;
        let twice = format!("{EXCHANGE}[[exchange]]{rule}");
        let error = Config::parse(&twice)
            .unwrap()
            .policy(OriginMode::Production)
            .unwrap_err();
        assert!(error.to_string().contains("listed twice"), "{error}");
        let bad_issuer = "trusted_issuers = [\"http://auth1.example\"]\n";
        assert!(
            Config::parse(bad_issuer)
                .unwrap()
                .policy(OriginMode::Production)
                .is_err()
        );
        let bad_scope = EXCHANGE.replace("\"c\"", "\"c d\"");
        assert!(
            Config::parse(&bad_scope)
                .unwrap()
                .policy(OriginMode::Production)
                .is_err()
        );
        assert!(
            Config::parse("[[exchange]]\nupstream_issuer = \"x\"\ncaller = \"y\"\ncolour = 1\n")
                .is_err()
        );
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(Config::parse("colour = 1").is_err());
        let bad_hash = "[[users]]\nusername = \"a\"\npassword_hash = \"plain\"\n";
        assert!(
            Config::parse(bad_hash)
                .unwrap()
                .policy(OriginMode::Dev)
                .is_err()
        );
        let bad_agent = "[[autonomous]]\nagent = \"http://agent.example\"\nresource = \"https://r.example\"\nscopes = [\"a\"]\n";
        assert!(
            Config::parse(bad_agent)
                .unwrap()
                .policy(OriginMode::Production)
                .is_err()
        );
    }

    #[test]
    fn autonomous_rules_cover_scopes_but_never_identity_scopes() {
        // profile: P-AS-2a
        let text = "[[autonomous]]\nagent = \"https://agent.example\"\nresource = \"https://r.example\"\nscopes = [\"a\", \"b\", \"openid\"]\n";
        let policy = Config::parse(text)
            .unwrap()
            .policy(OriginMode::Production)
            .unwrap();
        let agent = Origin::parse("https://agent.example", OriginMode::Production).unwrap();
        let resource = Origin::parse("https://r.example", OriginMode::Production).unwrap();
        let other = Origin::parse("https://other.example", OriginMode::Production).unwrap();
        let scope = |s: &str| Scope::parse(s).unwrap();
        assert!(policy.allows_autonomous(&agent, &resource, &scope("a b")));
        assert!(policy.allows_autonomous(&agent, &resource, &scope("b")));
        assert!(!policy.allows_autonomous(&agent, &resource, &scope("a c")));
        assert!(!policy.allows_autonomous(&agent, &resource, &scope("openid")));
        assert!(!policy.allows_autonomous(&other, &resource, &scope("a")));
        assert!(!policy.allows_autonomous(&agent, &other, &scope("a")));
    }
}
