//! What an agent keeps between runs (profile: P-DEL-3): in a state
//! directory, files readable by the owner only.
//!
//! | file | what |
//! |---|---|
//! | `key.json` | the delegate's private key (JWK) |
//! | `agent.json` | agent identifier, delegate `sub`, agent token and its expiry |
//! | `tokens.json` | auth tokens and refresh tokens per (auth server, resource, scope) |

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aauth_http::runtime::write_private;
use aauth_protocol::keys::{PrivateJwk, SigningKey};
use aauth_protocol::secret::{RefreshToken, SignedToken};
use serde::{Deserialize, Serialize};

use crate::AgentError;

const KEY_FILE: &str = "key.json";
const AGENT_FILE: &str = "agent.json";
const TOKENS_FILE: &str = "tokens.json";

fn io(path: &Path, error: impl std::fmt::Display) -> AgentError {
    AgentError::State(format!("{}: {error}", path.display()))
}

/// Creates `dir` (owner-only on Unix) if it does not exist.
fn ensure_dir(dir: &Path) -> Result<(), AgentError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| io(dir, e))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), AgentError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| io(path, e))?;
    write_private(path, &bytes).map_err(|e| io(path, e))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, AgentError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

/// The delegate's agent token as stored in `agent.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRecord {
    /// The agent server's identifier (the token's `iss`).
    pub agent: String,
    /// The delegate identifier (the token's `sub`).
    pub sub: String,
    /// The agent token.
    pub agent_token: SignedToken,
    /// When it expires (Unix seconds), from `expires_in`.
    pub expires_at: u64,
}

/// A delegate's key and agent token, loaded from its state directory.
#[derive(Debug, Clone)]
pub struct DelegateState {
    /// The state directory.
    pub dir: PathBuf,
    /// The signing key (`cnf.jwk` of the agent token).
    pub key: Arc<SigningKey>,
    /// The agent token and what it says.
    pub record: AgentRecord,
}

impl DelegateState {
    /// Loads the delegate in `dir`; an error says to enroll when it is empty.
    pub fn load(dir: &Path) -> Result<Self, AgentError> {
        let key_path = dir.join(KEY_FILE);
        let agent_path = dir.join(AGENT_FILE);
        let (Some(jwk), Some(record)) = (
            read_json::<PrivateJwk>(&key_path)?,
            read_json::<AgentRecord>(&agent_path)?,
        ) else {
            return Err(AgentError::State(format!(
                "{} holds no enrolled delegate: run `aauth-agent-server enroll --agent URL --code CODE --state-dir {}` first",
                dir.display(),
                dir.display()
            )));
        };
        let key = SigningKey::from_private_jwk(&jwk).map_err(|e| io(&key_path, e))?;
        Ok(Self {
            dir: dir.to_owned(),
            key: Arc::new(key),
            record,
        })
    }

    /// Writes the key and the agent token (the key first: a token without
    /// its key is useless, a key without a token can re-enroll).
    pub fn save(&self) -> Result<(), AgentError> {
        ensure_dir(&self.dir)?;
        let key_path = self.dir.join(KEY_FILE);
        let jwk = self.key.to_private_jwk().map_err(|e| io(&key_path, e))?;
        write_json(&key_path, &jwk)?;
        write_json(&self.dir.join(AGENT_FILE), &self.record)
    }
}

/// An auth token (and its refresh token) for one (auth server, resource, scope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The auth server's identifier.
    pub auth_server: String,
    /// The resource's identifier (the resource token's `iss`).
    pub resource: String,
    /// The scope granted (the resource token's `scope`).
    pub scope: String,
    /// The auth token.
    pub auth_token: SignedToken,
    /// When the auth token expires (Unix seconds).
    pub expires_at: u64,
    /// The refresh token, when the auth server gave one (E§9.7).
    pub refresh_token: Option<RefreshToken>,
    /// When this grant was obtained or refreshed, to prefer the newest.
    pub updated_at: u64,
}

/// Auth tokens and refresh tokens, in `tokens.json` or in memory only.
#[derive(Debug, Clone, Default)]
pub struct TokenStore {
    path: Option<PathBuf>,
    grants: Arc<Mutex<Vec<Grant>>>,
}

impl TokenStore {
    /// Tokens kept in memory only.
    pub fn memory() -> Self {
        Self::default()
    }

    /// Tokens kept in `dir/tokens.json` (created when first written).
    pub fn in_dir(dir: &Path) -> Result<Self, AgentError> {
        let path = dir.join(TOKENS_FILE);
        let grants = read_json::<Vec<Grant>>(&path)?.unwrap_or_default();
        Ok(Self {
            path: Some(path),
            grants: Arc::new(Mutex::new(grants)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Grant>> {
        // A poisoned lock only means another task panicked mid-update of a
        // plain Vec; its contents are still whole.
        self.grants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The newest grant for `resource`.
    pub fn newest_for(&self, resource: &str) -> Option<Grant> {
        self.lock()
            .iter()
            .filter(|g| g.resource == resource)
            .max_by_key(|g| g.updated_at)
            .cloned()
    }

    /// Stores `grant`, replacing the one for the same (auth server,
    /// resource, scope), and writes the file.
    pub fn put(&self, grant: Grant) -> Result<(), AgentError> {
        let snapshot = {
            let mut grants = self.lock();
            grants.retain(|g| {
                (&g.auth_server, &g.resource, &g.scope)
                    != (&grant.auth_server, &grant.resource, &grant.scope)
            });
            grants.push(grant);
            grants.clone()
        };
        self.write(&snapshot)
    }

    /// Forgets the grant for (auth server, resource, scope).
    pub fn remove(&self, grant: &Grant) -> Result<(), AgentError> {
        let snapshot = {
            let mut grants = self.lock();
            grants.retain(|g| {
                (&g.auth_server, &g.resource, &g.scope)
                    != (&grant.auth_server, &grant.resource, &grant.scope)
            });
            grants.clone()
        };
        self.write(&snapshot)
    }

    /// Every grant held.
    pub fn all(&self) -> Vec<Grant> {
        self.lock().clone()
    }

    fn write(&self, grants: &[Grant]) -> Result<(), AgentError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            ensure_dir(dir)?;
        }
        write_json(path, &grants)
    }
}

#[cfg(test)]
mod tests {
    use aauth_protocol::keys::Algorithm;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("aauth-agent-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn state_files_are_private_and_read_back() {
        // profile: P-DEL-3 — "files readable by the owner only".
        let dir = temp_dir("files");
        let state = DelegateState {
            dir: dir.clone(),
            key: Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap()),
            record: AgentRecord {
                agent: "https://agent.example".into(),
                sub: "d1".into(),
                agent_token: SignedToken::new("t"),
                expires_at: 5,
            },
        };
        state.save().unwrap();
        let tokens = TokenStore::in_dir(&dir).unwrap();
        let grant = Grant {
            auth_server: "https://as.example".into(),
            resource: "https://r.example".into(),
            scope: "read".into(),
            auth_token: SignedToken::new("a"),
            expires_at: 1,
            refresh_token: Some(RefreshToken::new("r")),
            updated_at: 1,
        };
        tokens.put(grant.clone()).unwrap();
        tokens
            .put(Grant {
                auth_token: SignedToken::new("b"),
                updated_at: 2,
                ..grant.clone()
            })
            .unwrap();

        let loaded = DelegateState::load(&dir).unwrap();
        assert_eq!(loaded.key.public_key(), state.key.public_key());
        assert_eq!(loaded.record.sub, "d1");
        let again = TokenStore::in_dir(&dir).unwrap();
        assert_eq!(again.all().len(), 1);
        assert_eq!(
            again
                .newest_for("https://r.example")
                .unwrap()
                .auth_token
                .expose(),
            "b"
        );
        // The files keep plain strings; Debug shows none of them.
        let shown = format!("{:?}", again.all());
        assert!(!shown.contains("\"r\""), "{shown}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for file in [KEY_FILE, AGENT_FILE, TOKENS_FILE] {
                let mode = std::fs::metadata(dir.join(file))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{file}");
            }
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        again.remove(&grant).unwrap();
        assert!(TokenStore::in_dir(&dir).unwrap().all().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_directory_says_to_enroll() {
        let error = DelegateState::load(&temp_dir("empty")).unwrap_err();
        assert!(error.to_string().contains("enroll"), "{error}");
    }
}
