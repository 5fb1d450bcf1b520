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

/// Where a delegate keeps its key and agent token between runs.
/// [`FileDelegate`] (`key.json` and `agent.json` in a state directory) is
/// the default; implement this to keep them in a keychain or a secret
/// manager instead, and hand it to [`DelegateState::load_from`] and
/// [`crate::enroll_into`].
pub trait DelegateStorage: Send + Sync + std::fmt::Debug {
    /// The key and the agent token saved, or `None` when no delegate was
    /// enrolled here.
    fn load(&self) -> Result<Option<(SigningKey, AgentRecord)>, AgentError>;
    /// Saves the key and the agent token, replacing what was saved (the key
    /// first: a token without its key is useless, a key without a token can
    /// enroll again).
    fn save(&self, key: &SigningKey, record: &AgentRecord) -> Result<(), AgentError>;
    /// Where, in words, for messages.
    fn location(&self) -> String;
    /// The state directory, when the storage is one.
    fn dir(&self) -> Option<&Path> {
        None
    }
}

/// A delegate in a state directory: `key.json` and `agent.json`, readable by
/// their owner only (P-DEL-3).
#[derive(Debug, Clone)]
pub struct FileDelegate {
    dir: PathBuf,
}

impl FileDelegate {
    /// The delegate files in `dir` (created when first written).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }
}

impl DelegateStorage for FileDelegate {
    fn load(&self) -> Result<Option<(SigningKey, AgentRecord)>, AgentError> {
        let key_path = self.dir.join(KEY_FILE);
        let (Some(jwk), Some(record)) = (
            read_json::<PrivateJwk>(&key_path)?,
            read_json::<AgentRecord>(&self.dir.join(AGENT_FILE))?,
        ) else {
            return Ok(None);
        };
        let key = SigningKey::from_private_jwk(&jwk).map_err(|e| io(&key_path, e))?;
        Ok(Some((key, record)))
    }

    fn save(&self, key: &SigningKey, record: &AgentRecord) -> Result<(), AgentError> {
        ensure_dir(&self.dir)?;
        let key_path = self.dir.join(KEY_FILE);
        let jwk = key.to_private_jwk().map_err(|e| io(&key_path, e))?;
        write_json(&key_path, &jwk)?;
        write_json(&self.dir.join(AGENT_FILE), record)
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }
}

/// A delegate's key and agent token, and where they are kept.
#[derive(Debug, Clone)]
pub struct DelegateState {
    /// Where the key and agent token are kept.
    pub storage: Arc<dyn DelegateStorage>,
    /// The signing key (`cnf.jwk` of the agent token).
    pub key: Arc<SigningKey>,
    /// The agent token and what it says.
    pub record: AgentRecord,
}

impl DelegateState {
    /// Loads the delegate in the state directory `dir` ([`FileDelegate`]);
    /// an error says to enroll when it is empty.
    pub fn load(dir: &Path) -> Result<Self, AgentError> {
        Self::load_from(Arc::new(FileDelegate::in_dir(dir)))
    }

    /// Loads the delegate `storage` keeps; an error says to enroll when it
    /// keeps none.
    pub fn load_from(storage: Arc<dyn DelegateStorage>) -> Result<Self, AgentError> {
        let Some((key, record)) = storage.load()? else {
            let hint = storage
                .dir()
                .map_or_else(String::new, |dir| format!(" --state-dir {}", dir.display()));
            return Err(AgentError::State(format!(
                "{} holds no enrolled delegate: run `aauth-agent-server enroll --agent URL --code CODE{hint}` first",
                storage.location()
            )));
        };
        Ok(Self {
            storage,
            key: Arc::new(key),
            record,
        })
    }

    /// The state directory, when the delegate is kept in one.
    pub fn dir(&self) -> Option<&Path> {
        self.storage.dir()
    }

    /// Saves the key and the agent token.
    pub fn save(&self) -> Result<(), AgentError> {
        self.storage.save(&self.key, &self.record)
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

/// Where an agent keeps its grants between runs. [`FileGrants`] (the
/// delegate's `tokens.json`) is the default; implement this to keep them in
/// a database, a keychain or a secret manager instead, and hand it to
/// [`TokenStore::with_storage`].
pub trait GrantStorage: Send + Sync + std::fmt::Debug {
    /// Every grant saved, read once when the store opens (none the first
    /// time).
    fn load(&self) -> Result<Vec<Grant>, AgentError>;
    /// Saves every grant held, replacing what was saved: called after each
    /// change, with the whole set.
    fn save(&self, grants: &[Grant]) -> Result<(), AgentError>;
}

/// Grants in a file (`tokens.json` in a state directory), readable by its
/// owner only (P-DEL-3), written whole after each change.
#[derive(Debug, Clone)]
pub struct FileGrants {
    path: PathBuf,
}

impl FileGrants {
    /// The grants file in `dir` (created when first written).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(TOKENS_FILE),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl GrantStorage for FileGrants {
    fn load(&self) -> Result<Vec<Grant>, AgentError> {
        Ok(read_json::<Vec<Grant>>(&self.path)?.unwrap_or_default())
    }

    fn save(&self, grants: &[Grant]) -> Result<(), AgentError> {
        if let Some(dir) = self.path.parent() {
            ensure_dir(dir)?;
        }
        write_json(&self.path, &grants)
    }
}

/// The agent's auth tokens and refresh tokens: held in memory, and saved
/// through a [`GrantStorage`] after each change when it has one.
#[derive(Debug, Clone, Default)]
pub struct TokenStore {
    storage: Option<Arc<dyn GrantStorage>>,
    grants: Arc<Mutex<Vec<Grant>>>,
}

impl TokenStore {
    /// Tokens kept in memory only.
    pub fn memory() -> Self {
        Self::default()
    }

    /// Tokens kept in `dir/tokens.json` ([`FileGrants`]).
    pub fn in_dir(dir: &Path) -> Result<Self, AgentError> {
        Self::with_storage(Arc::new(FileGrants::in_dir(dir)))
    }

    /// Tokens kept by `storage`, starting with what it saved.
    pub fn with_storage(storage: Arc<dyn GrantStorage>) -> Result<Self, AgentError> {
        let grants = storage.load()?;
        Ok(Self {
            storage: Some(storage),
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
    /// resource, scope), and saves.
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
        self.save(&snapshot)
    }

    /// Forgets the grant for (auth server, resource, scope), and saves.
    pub fn remove(&self, grant: &Grant) -> Result<(), AgentError> {
        let snapshot = {
            let mut grants = self.lock();
            grants.retain(|g| {
                (&g.auth_server, &g.resource, &g.scope)
                    != (&grant.auth_server, &grant.resource, &grant.scope)
            });
            grants.clone()
        };
        self.save(&snapshot)
    }

    /// Every grant held.
    pub fn all(&self) -> Vec<Grant> {
        self.lock().clone()
    }

    fn save(&self, grants: &[Grant]) -> Result<(), AgentError> {
        match &self.storage {
            Some(storage) => storage.save(grants),
            None => Ok(()),
        }
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

    /// The delegate `d1` of `https://agent.example`, with a fresh key, kept
    /// by `storage`.
    fn delegate_d1(storage: Arc<dyn DelegateStorage>) -> DelegateState {
        DelegateState {
            storage,
            key: Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap()),
            record: AgentRecord {
                agent: "https://agent.example".into(),
                sub: "d1".into(),
                agent_token: SignedToken::new("t"),
                expires_at: 5,
            },
        }
    }

    #[test]
    fn state_files_are_private_and_read_back() {
        // profile: P-DEL-3 — "files readable by the owner only".
        let dir = temp_dir("files");
        let state = delegate_d1(Arc::new(FileDelegate::in_dir(&dir)));
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

    /// A storage of the program's own: it sees every save, and a new store
    /// over it starts from the last one.
    #[derive(Debug, Default)]
    struct Recorded(Mutex<Vec<Vec<Grant>>>);

    impl GrantStorage for Recorded {
        fn load(&self) -> Result<Vec<Grant>, AgentError> {
            Ok(self.0.lock().unwrap().last().cloned().unwrap_or_default())
        }

        fn save(&self, grants: &[Grant]) -> Result<(), AgentError> {
            self.0.lock().unwrap().push(grants.to_vec());
            Ok(())
        }
    }

    #[test]
    fn grants_can_live_in_a_storage_of_the_programs_own() {
        let storage = Arc::new(Recorded::default());
        let tokens = TokenStore::with_storage(storage.clone()).unwrap();
        let grant = Grant {
            auth_server: "https://as.example".into(),
            resource: "https://r.example".into(),
            scope: "read".into(),
            auth_token: SignedToken::new("a"),
            expires_at: 1,
            refresh_token: None,
            updated_at: 1,
        };
        tokens.put(grant.clone()).unwrap();
        tokens.remove(&grant).unwrap();
        tokens.put(grant.clone()).unwrap();
        assert_eq!(storage.0.lock().unwrap().len(), 3, "one save per change");
        let reopened = TokenStore::with_storage(storage).unwrap();
        assert_eq!(reopened.all(), [grant]);
    }

    /// A delegate kept by the program itself.
    #[derive(Debug, Default)]
    struct Held(Mutex<Option<(PrivateJwk, AgentRecord)>>);

    impl DelegateStorage for Held {
        fn load(&self) -> Result<Option<(SigningKey, AgentRecord)>, AgentError> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .clone()
                .map(|(jwk, record)| (SigningKey::from_private_jwk(&jwk).unwrap(), record)))
        }

        fn save(&self, key: &SigningKey, record: &AgentRecord) -> Result<(), AgentError> {
            *self.0.lock().unwrap() = Some((key.to_private_jwk().unwrap(), record.clone()));
            Ok(())
        }

        fn location(&self) -> String {
            "the test's memory".into()
        }
    }

    #[test]
    fn a_delegate_can_live_in_a_storage_of_the_programs_own() {
        let storage: Arc<dyn DelegateStorage> = Arc::new(Held::default());
        let error = DelegateState::load_from(storage.clone())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the test's memory holds no enrolled delegate"),
            "{error}"
        );
        assert!(
            !error.contains("--state-dir"),
            "no directory to name: {error}"
        );
        let state = delegate_d1(storage.clone());
        state.save().unwrap();
        let loaded = DelegateState::load_from(storage).unwrap();
        assert_eq!(loaded.key.public_key(), state.key.public_key());
        assert_eq!(loaded.record.sub, "d1");
        assert!(loaded.dir().is_none());
    }

    #[test]
    fn an_empty_directory_says_to_enroll() {
        let error = DelegateState::load(&temp_dir("empty")).unwrap_err();
        assert!(error.to_string().contains("enroll"), "{error}");
    }
}
