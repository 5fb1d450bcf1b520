//! What the agent server keeps (profile: P-AS-8, P-DEL-1): enrolled
//! delegates and enrollment codes, in one SQLite file created on first
//! start, which fails when the file cannot be written. Codes are stored as
//! SHA-256 hashes (they are 160-bit random, so a plain hash is enough) and
//! marked used, never deleted, so a code cannot be redeemed twice. Queries are plain runtime SQL that PostgreSQL also reads.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use aauth_protocol::b64;
use aauth_protocol::keys::{random_bytes, sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row as _, SqlitePool};

/// Why the store failed. Local failures: answered as 503 by the endpoints,
/// never with their text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, created or queried.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// No randomness for a code or identifier.
    #[error("randomness: {0}")]
    Random(String),
}

/// A one-time enrollment code: 160 random bits, lower-case base32 (P-DEL-1).
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentCode(String);

impl EnrollmentCode {
    /// The code, to hand to the delegate's operator.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for EnrollmentCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrollmentCode([redacted])")
    }
}

/// The agent server's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS delegates (
        sub TEXT PRIMARY KEY,
        jkt TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS enrollment_codes (
        code_hash TEXT PRIMARY KEY,
        sub TEXT,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
    )",
    // One row, rewritten at every start: proof that the file can be written.
    "CREATE TABLE IF NOT EXISTS started (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL
    )",
];

fn hash(code: &str) -> String {
    b64::url_encode(sha256(code.as_bytes()))
}

/// 256 random bits, base64url.
pub fn random_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(b64::url_encode(bytes))
}

/// The alphabet of enrollment codes: RFC 4648 base32 in lower case. No
/// code can begin with `-`, so none is ever read as a command-line flag.
const CODE_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A fresh enrollment code: 160 random bits as 32 characters of
/// [`CODE_ALPHABET`].
fn new_code() -> Result<String, StoreError> {
    let mut bytes = [0u8; 20];
    random_bytes(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    let mut code = String::with_capacity(32);
    // 160 bits are exactly 32 groups of 5.
    let mut bits = 0u64;
    let mut held = 0u32;
    for byte in bytes {
        bits = (bits << 8) | u64::from(byte);
        held += 8;
        while held >= 5 {
            held -= 5;
            let index = usize::try_from((bits >> held) & 0x1f).unwrap_or(0);
            code.push(char::from(
                CODE_ALPHABET.get(index).copied().unwrap_or(b'a'),
            ));
        }
    }
    Ok(code)
}

fn now_i64(now: u64) -> i64 {
    i64::try_from(now).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating on first start) the database file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        if !path.exists() {
            // Enrollment codes and delegates: the owner's only (P-DEL-3).
            aauth_http::runtime::write_private(path, b"").map_err(sqlx::Error::Io)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Self::init(pool).await
    }

    /// A database in memory (tests).
    pub async fn memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        // One connection that never closes: the database lives as long as it.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::init(pool).await
    }

    async fn init(pool: SqlitePool) -> Result<Self, StoreError> {
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        // A read-only file is found here, at start, not at the first
        // enrollment (creating a table that exists writes nothing).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        sqlx::query(
            "INSERT INTO started (id, at) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        )
        .bind(now_i64(now))
        .execute(&pool)
        .await?;
        Ok(Self { pool })
    }

    /// Mints a code valid for `lifetime` seconds from `now`, optionally for
    /// a given delegate `sub` (P-DEL-1: re-enrolling a delegate whose key is
    /// gone). Only its hash is stored.
    pub async fn mint_code(
        &self,
        sub: Option<&str>,
        now: u64,
        lifetime: u32,
    ) -> Result<EnrollmentCode, StoreError> {
        let code = new_code()?;
        sqlx::query(
            "INSERT INTO enrollment_codes (code_hash, sub, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(hash(&code))
        .bind(sub.map(str::to_owned))
        .bind(now_i64(now.saturating_add(u64::from(lifetime))))
        .execute(&self.pool)
        .await?;
        Ok(EnrollmentCode(code))
    }

    /// Redeems `code` and records the delegate in one transaction: `issue`
    /// gets the delegate's `sub` (the code's, or `new_sub`) and makes the
    /// agent token; if it fails, or the code is unknown, used or expired,
    /// nothing changes (P-DEL-2: "A rejected enroll … never uses up a
    /// code"). `Ok(None)`: no such usable code.
    pub async fn enroll<T, E>(
        &self,
        code: &str,
        new_sub: &str,
        jkt: &str,
        now: u64,
        issue: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<Result<T, E>>, StoreError> {
        let now = now_i64(now);
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE enrollment_codes SET used_at = $1
             WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1
             RETURNING sub",
        )
        .bind(now)
        .bind(hash(code))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sub: Option<String> = row.try_get("sub")?;
        let sub = sub.unwrap_or_else(|| new_sub.to_owned());
        let issued = match issue(&sub) {
            Ok(issued) => issued,
            // Dropping the transaction rolls back: the code stays unused.
            Err(e) => return Ok(Some(Err(e))),
        };
        sqlx::query(
            "INSERT INTO delegates (sub, jkt, created_at, updated_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (sub) DO UPDATE SET jkt = excluded.jkt, updated_at = excluded.updated_at",
        )
        .bind(&sub)
        .bind(jkt)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Ok(issued)))
    }

    /// Whether `sub` is an enrolled delegate.
    pub async fn delegate_exists(&self, sub: &str) -> Result<bool, StoreError> {
        Ok(self.delegate_key(sub).await?.is_some())
    }

    /// The thumbprint of the enrolled delegate's current key, if `sub` is
    /// enrolled.
    pub async fn delegate_key(&self, sub: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT jkt FROM delegates WHERE sub = $1")
            .bind(sub.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| row.try_get::<String, _>("jkt"))
            .transpose()
            .map_err(StoreError::from)
    }

    /// Replaces the delegate's key `old_jkt` by `new_jkt` (P-DEL-2). `false`
    /// when `old_jkt` is no longer its key (rotated or re-enrolled since):
    /// a superseded key can never rotate again.
    pub async fn rotate(
        &self,
        sub: &str,
        old_jkt: &str,
        new_jkt: &str,
        now: u64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE delegates SET jkt = $1, updated_at = $2 WHERE sub = $3 AND jkt = $4",
        )
        .bind(new_jkt.to_owned())
        .bind(now_i64(now))
        .bind(sub.to_owned())
        .bind(old_jkt.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_database_that_cannot_be_written_is_refused_at_open() {
        // Review finding 11: found at start, not at the first enrollment.
        // SQLite opens a read-only file read-only, as this does (file modes
        // do not stop root, who may run the tests).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent-server.db");
        drop(Store::open(&path).await.unwrap());
        let read_only = SqlitePoolOptions::new()
            .connect_with(SqliteConnectOptions::new().filename(&path).read_only(true))
            .await
            .unwrap();
        let error = Store::init(read_only).await.unwrap_err();
        assert!(error.to_string().contains("readonly"), "{error}");
        assert!(Store::open(&path).await.is_ok());
    }

    #[test]
    fn codes_are_base32_and_never_look_like_a_flag() {
        // Review finding 8: one base64url code in 64 began with `-`, and
        // `enroll --code "$code"` then read it as a flag.
        let codes: Vec<String> = (0..2_000).map(|_| new_code().unwrap()).collect();
        for code in &codes {
            assert_eq!(code.len(), 32, "{code}");
            assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        }
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len());
        // Every symbol turns up: all 160 bits are used.
        for symbol in CODE_ALPHABET {
            assert!(codes.iter().any(|c| c.as_bytes().contains(symbol)));
        }
    }

    #[tokio::test]
    async fn a_code_is_redeemed_once_and_only_before_it_expires() {
        let store = Store::memory().await.unwrap();
        let code = store.mint_code(None, 1000, 600).await.unwrap();
        let issue = |sub: &str| Ok::<_, ()>(sub.to_owned());
        assert_eq!(
            store
                .enroll(code.as_str(), "d1", "jkt", 1599, issue)
                .await
                .unwrap(),
            Some(Ok("d1".to_owned()))
        );
        assert_eq!(
            store
                .enroll(code.as_str(), "d2", "jkt", 1599, issue)
                .await
                .unwrap(),
            None
        );
        let late = store.mint_code(Some("fixed"), 1000, 600).await.unwrap();
        assert_eq!(
            store
                .enroll(late.as_str(), "d3", "j", 1600, issue)
                .await
                .unwrap(),
            None
        );
        assert!(store.delegate_exists("d1").await.unwrap());
        assert!(!store.delegate_exists("d2").await.unwrap());
        assert!(format!("{code:?}").contains("redacted"));
    }

    #[tokio::test]
    async fn a_failed_issue_leaves_the_code_unused() {
        let store = Store::memory().await.unwrap();
        let code = store.mint_code(Some("keep"), 0, 600).await.unwrap();
        let failed = store
            .enroll(code.as_str(), "x", "j", 1, |_| Err::<(), _>("no"))
            .await
            .unwrap();
        assert_eq!(failed, Some(Err("no")));
        let ok = store
            .enroll(code.as_str(), "x", "j", 1, |sub| {
                Ok::<_, ()>(sub.to_owned())
            })
            .await
            .unwrap();
        assert_eq!(ok, Some(Ok("keep".to_owned())));
    }
}
