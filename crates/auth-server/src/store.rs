//! What the auth server creates at run time, in SQLite (profile: P-AS-8):
//! its signing keys, pending requests (P-AS-3), login sessions (P-AS-4),
//! authorization codes (P-AS-5) and grants with their refresh tokens
//! (P-AS-6). Everything survives a restart.
//!
//! Queries are plain runtime SQL with `$N` parameters and types that
//! PostgreSQL also accepts (`TEXT`, `BIGINT`, `RETURNING`), so a PostgreSQL
//! store is a matter of a second pool type; nothing is checked against a
//! database at build time. Secrets are stored as SHA-256 digests only
//! ([`crate::secret::Secret::digest`]).

use std::path::Path;
use std::time::Duration;

use sqlx::Row as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow,
};

/// The schema, created at every start if absent.
const SCHEMA: [&str; 7] = [
    "CREATE TABLE IF NOT EXISTS signing_keys (
        kid TEXT PRIMARY KEY,
        private_jwk TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS pending_requests (
        token_hash TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        delegate_sub TEXT,
        resource TEXT NOT NULL,
        scope TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        upstream_agent TEXT
    )",
    "CREATE TABLE IF NOT EXISTS login_sessions (
        session_hash TEXT PRIMARY KEY,
        username TEXT,
        csrf_token TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS codes (
        code_hash TEXT PRIMARY KEY,
        request_hash TEXT NOT NULL,
        agent TEXT NOT NULL,
        delegate_sub TEXT,
        username TEXT NOT NULL,
        resource TEXT NOT NULL,
        scope TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS grants (
        refresh_hash TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        delegate_sub TEXT,
        username TEXT,
        resource TEXT NOT NULL,
        scope TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT
    )",
    // What became of a request token, kept until it would have expired, so
    // that the back button after an answer says where the flow ended.
    "CREATE TABLE IF NOT EXISTS answered_requests (
        token_hash TEXT PRIMARY KEY,
        approved BIGINT NOT NULL,
        username TEXT NOT NULL,
        agent TEXT NOT NULL,
        resource TEXT NOT NULL,
        answered_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    // One row, rewritten at every start: proof that the file can be written.
    "CREATE TABLE IF NOT EXISTS started (
        id BIGINT PRIMARY KEY,
        at BIGINT NOT NULL
    )",
];

/// Columns added to a table after it was first created: (table, column,
/// the statement that adds it). A database made by an earlier version gets
/// them at open.
const ADDED_COLUMNS: [(&str, &str, &str); 1] = [(
    "pending_requests",
    "upstream_agent",
    "ALTER TABLE pending_requests ADD COLUMN upstream_agent TEXT",
)];

/// A database failure. Its text is for the operator's log, never a peer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// The file or its folder cannot be created, or cannot be written (a
    /// read-only file or disk), found before SQLite's own, vaguer, "unable
    /// to open database file".
    #[error("the database {} cannot be written: {source}", path.display())]
    NotWritable {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A signing key row.
#[derive(Debug, Clone)]
pub struct KeyRow {
    /// The `kid`.
    pub kid: String,
    /// The private JWK as JSON.
    pub private_jwk: String,
}

/// A request waiting for the user's consent (P-AS-3): bound to the agent,
/// the delegate, the request and the `redirect_uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    /// Digest of the request token.
    pub token_hash: String,
    /// The agent identifier.
    pub agent: String,
    /// The agent token's `sub`, when a delegate asked.
    pub delegate_sub: Option<String>,
    /// The resource identifier (the agent's own for SSO).
    pub resource: String,
    /// The requested scope.
    pub scope: String,
    /// Where the user returns.
    pub redirect_uri: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The agent on whose behalf a resource asks, proven by the upstream
    /// auth token it sent (an extension of this profile), for the consent
    /// page.
    pub upstream_agent: Option<String>,
}

/// The user's answer to a pending request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Approved (a code was issued) or denied.
    pub approved: bool,
    /// Who answered.
    pub username: String,
}

/// A request token that was answered, and what its answer was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// The answer.
    pub answer: Answer,
    /// The agent that asked.
    pub agent: String,
    /// The resource it asked for.
    pub resource: String,
    /// When, Unix seconds.
    pub answered_at: i64,
}

/// A browser session: anonymous until the user logs in (P-AS-4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Digest of the session cookie.
    pub session_hash: String,
    /// The logged-in user.
    pub username: Option<String>,
    /// The token every form of this session carries.
    pub csrf_token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// An authorization code (P-AS-5): single use, bound to the request, its
/// agent, delegate and `redirect_uri`, and the user who consented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// Digest of the code.
    pub code_hash: String,
    /// Digest of the request token it answers.
    pub request_hash: String,
    /// The agent identifier.
    pub agent: String,
    /// The delegate `sub`.
    pub delegate_sub: Option<String>,
    /// The user.
    pub username: String,
    /// The resource identifier.
    pub resource: String,
    /// The granted scope.
    pub scope: String,
    /// The bound redirect URI.
    pub redirect_uri: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A grant and its refresh token (P-AS-6): bound to agent, delegate, user,
/// resource and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Digest of the refresh token.
    pub refresh_hash: String,
    /// The agent identifier.
    pub agent: String,
    /// The delegate `sub`.
    pub delegate_sub: Option<String>,
    /// The user, absent for autonomous grants.
    pub username: Option<String>,
    /// The resource identifier.
    pub resource: String,
    /// The granted scope.
    pub scope: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// When an operator revoked it.
    pub revoked_at: Option<i64>,
}

/// Which grants `revoke` ends; the given filters must all match (P-AS-6).
#[derive(Debug, Clone, Default)]
pub struct RevokeFilter {
    /// The agent identifier.
    pub agent: Option<String>,
    /// The delegate `sub`.
    pub delegate_sub: Option<String>,
    /// The username.
    pub username: Option<String>,
}

/// The auth server's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

fn text(row: &SqliteRow, column: &str) -> Result<String, StoreError> {
    Ok(row.try_get::<String, _>(column)?)
}

fn optional(row: &SqliteRow, column: &str) -> Result<Option<String>, StoreError> {
    Ok(row.try_get::<Option<String>, _>(column)?)
}

fn time(row: &SqliteRow, column: &str) -> Result<i64, StoreError> {
    Ok(row.try_get::<i64, _>(column)?)
}

fn code_row(row: &SqliteRow) -> Result<CodeRecord, StoreError> {
    Ok(CodeRecord {
        code_hash: text(row, "code_hash")?,
        request_hash: text(row, "request_hash")?,
        agent: text(row, "agent")?,
        delegate_sub: optional(row, "delegate_sub")?,
        username: text(row, "username")?,
        resource: text(row, "resource")?,
        scope: text(row, "scope")?,
        redirect_uri: text(row, "redirect_uri")?,
        expires_at: time(row, "expires_at")?,
    })
}

async fn insert_code(
    connection: &mut SqliteConnection,
    code: &CodeRecord,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO codes (code_hash, request_hash, agent, delegate_sub, username, resource,
         scope, redirect_uri, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&code.code_hash)
    .bind(&code.request_hash)
    .bind(&code.agent)
    .bind(&code.delegate_sub)
    .bind(&code.username)
    .bind(&code.resource)
    .bind(&code.scope)
    .bind(&code.redirect_uri)
    .bind(now)
    .bind(code.expires_at)
    .execute(connection)
    .await?;
    Ok(())
}

async fn insert_grant(
    connection: &mut SqliteConnection,
    grant: &Grant,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO grants (refresh_hash, agent, delegate_sub, username, resource, scope,
         created_at, expires_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&grant.refresh_hash)
    .bind(&grant.agent)
    .bind(&grant.delegate_sub)
    .bind(&grant.username)
    .bind(&grant.resource)
    .bind(&grant.scope)
    .bind(now)
    .bind(grant.expires_at)
    .bind(grant.revoked_at)
    .execute(connection)
    .await?;
    Ok(())
}

impl Store {
    /// Opens (creating on first start, readable by the owner only) the
    /// SQLite file at `path`, creates the schema if absent, and fails unless
    /// the file can be written.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let not_writable = |source| StoreError::NotWritable {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(not_writable)?;
        }
        if path.exists() {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(not_writable)?;
        } else {
            // The file holds the private signing key: owner only.
            aauth_http::runtime::write_private(path, b"").map_err(not_writable)?;
        }
        Self::connect(
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5)),
        )
        .await
    }

    /// Connects with `options`, creates the schema if absent, and fails
    /// unless the database can be written.
    async fn connect(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        // Columns added since a database was created, added to it.
        for (table, column, alter) in ADDED_COLUMNS {
            let present = sqlx::query("SELECT 1 FROM pragma_table_info($1) WHERE name = $2")
                .bind(table)
                .bind(column)
                .fetch_optional(&pool)
                .await?
                .is_some();
            if !present {
                sqlx::query(alter).execute(&pool).await?;
            }
        }
        // A read-only file is found here, at start, not at the first code
        // redemption (creating a table that exists writes nothing).
        sqlx::query(
            "INSERT INTO started (id, at) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        )
        .bind(i64::try_from(aauth_http::server::unix_now()).unwrap_or(i64::MAX))
        .execute(&pool)
        .await?;
        Ok(Self { pool })
    }

    /// Closes every connection (tests reopen the file afterwards).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The signing keys, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, private_jwk FROM signing_keys ORDER BY created_at DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(KeyRow {
                    kid: text(row, "kid")?,
                    private_jwk: text(row, "private_jwk")?,
                })
            })
            .collect()
    }

    /// Stores a new signing key.
    pub async fn add_signing_key(&self, key: &KeyRow, now: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO signing_keys (kid, private_jwk, created_at) VALUES ($1, $2, $3)")
            .bind(&key.kid)
            .bind(&key.private_jwk)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a pending request, unless its agent already has `limit`
    /// unexpired ones (`false`): agents are open by design, so their pending
    /// requests must not grow without bound. Expired requests are dropped first.
    pub async fn insert_request(
        &self,
        request: &PendingRequest,
        now: i64,
        limit: u32,
    ) -> Result<bool, StoreError> {
        // One transaction, begun by a write: concurrent requests of one agent
        // are counted one after the other, so the bound holds.
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM pending_requests WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let pending: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM pending_requests WHERE agent = $1")
                .bind(&request.agent)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        if pending >= i64::from(limit) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO pending_requests
             (token_hash, agent, delegate_sub, resource, scope, redirect_uri, created_at,
              expires_at, upstream_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&request.token_hash)
        .bind(&request.agent)
        .bind(&request.delegate_sub)
        .bind(&request.resource)
        .bind(&request.scope)
        .bind(&request.redirect_uri)
        .bind(now)
        .bind(request.expires_at)
        .bind(&request.upstream_agent)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    fn request_row(row: &SqliteRow) -> Result<PendingRequest, StoreError> {
        Ok(PendingRequest {
            token_hash: text(row, "token_hash")?,
            agent: text(row, "agent")?,
            delegate_sub: optional(row, "delegate_sub")?,
            resource: text(row, "resource")?,
            scope: text(row, "scope")?,
            redirect_uri: text(row, "redirect_uri")?,
            expires_at: time(row, "expires_at")?,
            upstream_agent: optional(row, "upstream_agent")?,
        })
    }

    /// The pending request with this token digest, if any (expired or not).
    pub async fn request(&self, token_hash: &str) -> Result<Option<PendingRequest>, StoreError> {
        let row = sqlx::query(
            "SELECT token_hash, agent, delegate_sub, resource, scope, redirect_uri, expires_at,
                    upstream_agent
             FROM pending_requests WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::request_row).transpose()
    }

    /// Answers the pending request in one transaction: it is removed (a
    /// decision uses it up) and, when `code` makes one from it, the code is
    /// stored, and the `answer` is remembered until the request would have
    /// expired ([`Store::answered`]). A crash leaves either the request,
    /// still waiting, or the code: never a consent given and lost. `None`
    /// when no such request waits.
    pub async fn answer_request(
        &self,
        token_hash: &str,
        answer: &Answer,
        code: impl FnOnce(&PendingRequest) -> Option<CodeRecord>,
        now: i64,
    ) -> Result<Option<PendingRequest>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "DELETE FROM pending_requests WHERE token_hash = $1
             RETURNING token_hash, agent, delegate_sub, resource, scope, redirect_uri, expires_at,
                       upstream_agent",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(request) = row.as_ref().map(Self::request_row).transpose()? else {
            return Ok(None);
        };
        if let Some(code) = code(&request) {
            insert_code(&mut tx, &code, now).await?;
        }
        sqlx::query(
            "INSERT OR REPLACE INTO answered_requests
             (token_hash, approved, username, agent, resource, answered_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&request.token_hash)
        .bind(i64::from(answer.approved))
        .bind(&answer.username)
        .bind(&request.agent)
        .bind(&request.resource)
        .bind(now)
        .bind(request.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(request))
    }

    /// How the request with this token digest was answered, while its token
    /// would still be live.
    pub async fn answered(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<Answered>, StoreError> {
        let row = sqlx::query(
            "SELECT approved, username, agent, resource, answered_at FROM answered_requests
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|row| {
                Ok(Answered {
                    answer: Answer {
                        approved: time(row, "approved")? != 0,
                        username: text(row, "username")?,
                    },
                    agent: text(row, "agent")?,
                    resource: text(row, "resource")?,
                    answered_at: time(row, "answered_at")?,
                })
            })
            .transpose()
    }

    /// Stores a session, ending the one whose digest is `replaces` in the
    /// same transaction (login replaces the anonymous session, P-AS-4): a
    /// crash leaves the old session or the new one, never neither.
    pub async fn insert_session(
        &self,
        session: &Session,
        replaces: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(old) = replaces {
            sqlx::query("DELETE FROM login_sessions WHERE session_hash = $1")
                .bind(old)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO login_sessions (session_hash, username, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.session_hash)
        .bind(&session.username)
        .bind(&session.csrf_token)
        .bind(now)
        .bind(session.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session with this digest, if it has not expired.
    pub async fn session(
        &self,
        session_hash: &str,
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT session_hash, username, csrf_token, expires_at FROM login_sessions
             WHERE session_hash = $1 AND expires_at > $2",
        )
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Session {
                session_hash: text(&row, "session_hash")?,
                username: optional(&row, "username")?,
                csrf_token: text(&row, "csrf_token")?,
                expires_at: time(&row, "expires_at")?,
            })
        })
        .transpose()
    }

    /// Redeems a code in one transaction (E§9.5: "Authorization codes MUST
    /// be single-use"): it is removed whoever presents it, so a leaked code
    /// is dead after one attempt, and when `decide` accepts the presenter
    /// the grant it returns is stored with it. A crash leaves either the
    /// code, still redeemable, or the grant: never a consent used up without
    /// its grant. `None` when no such code exists.
    pub async fn redeem_code<T, R>(
        &self,
        code_hash: &str,
        decide: impl FnOnce(&CodeRecord) -> Result<(Grant, T), R>,
        now: i64,
    ) -> Result<Option<Result<T, R>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "DELETE FROM codes WHERE code_hash = $1
             RETURNING code_hash, request_hash, agent, delegate_sub, username, resource, scope,
                       redirect_uri, expires_at",
        )
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(record) = row.as_ref().map(code_row).transpose()? else {
            return Ok(None);
        };
        let outcome = match decide(&record) {
            Ok((grant, value)) => {
                insert_grant(&mut tx, &grant, now).await?;
                Ok(value)
            }
            Err(refusal) => Err(refusal),
        };
        tx.commit().await?;
        Ok(Some(outcome))
    }

    /// Stores a code as the consent page would, outside any request.
    #[cfg(test)]
    async fn insert_code_for_tests(&self, code: &CodeRecord, now: i64) {
        let mut connection = self.pool.acquire().await.unwrap();
        insert_code(&mut connection, code, now).await.unwrap();
    }

    /// Stores a grant.
    pub async fn insert_grant(&self, grant: &Grant, now: i64) -> Result<(), StoreError> {
        let mut connection = self.pool.acquire().await?;
        insert_grant(&mut connection, grant, now).await
    }

    /// The grant of this refresh token digest.
    pub async fn grant(&self, refresh_hash: &str) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query(
            "SELECT refresh_hash, agent, delegate_sub, username, resource, scope, expires_at,
                    revoked_at
             FROM grants WHERE refresh_hash = $1",
        )
        .bind(refresh_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Grant {
                refresh_hash: text(&row, "refresh_hash")?,
                agent: text(&row, "agent")?,
                delegate_sub: optional(&row, "delegate_sub")?,
                username: optional(&row, "username")?,
                resource: text(&row, "resource")?,
                scope: text(&row, "scope")?,
                expires_at: time(&row, "expires_at")?,
                revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?,
            })
        })
        .transpose()
    }

    /// Revokes the live grants matching every filter given; returns how many.
    /// An empty filter revokes nothing.
    pub async fn revoke(&self, filter: &RevokeFilter, now: i64) -> Result<u64, StoreError> {
        if filter.agent.is_none() && filter.delegate_sub.is_none() && filter.username.is_none() {
            return Ok(0);
        }
        // `$N IS NULL OR column = $N` keeps one static statement for every
        // combination of filters.
        let result = sqlx::query(
            "UPDATE grants SET revoked_at = $1
             WHERE revoked_at IS NULL
               AND ($2 IS NULL OR agent = $2)
               AND ($3 IS NULL OR delegate_sub = $3)
               AND ($4 IS NULL OR username = $4)",
        )
        .bind(now)
        .bind(&filter.agent)
        .bind(&filter.delegate_sub)
        .bind(&filter.username)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Deletes expired requests, sessions and codes (grants stay for the
    /// record until they expire, then go too).
    pub async fn purge_expired(&self, now: i64) -> Result<(), StoreError> {
        for statement in [
            "DELETE FROM pending_requests WHERE expires_at <= $1",
            "DELETE FROM answered_requests WHERE expires_at <= $1",
            "DELETE FROM login_sessions WHERE expires_at <= $1",
            "DELETE FROM codes WHERE expires_at <= $1",
            "DELETE FROM grants WHERE expires_at <= $1",
        ] {
            sqlx::query(statement).bind(now).execute(&self.pool).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "aauth-as-store-{}-{name}-{}",
            std::process::id(),
            aauth_http::server::unix_now()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("state.db")
    }

    fn grant(hash: &str, agent: &str, delegate: Option<&str>, user: Option<&str>) -> Grant {
        Grant {
            refresh_hash: hash.into(),
            agent: agent.into(),
            delegate_sub: delegate.map(Into::into),
            username: user.map(Into::into),
            resource: "https://r.example".into(),
            scope: "a".into(),
            expires_at: 2_000,
            revoked_at: None,
        }
    }

    #[tokio::test]
    async fn a_database_that_cannot_be_written_is_refused_at_open() {
        // Review finding 11: a read-only file in a writable folder opened,
        // and the first code redemption failed with a 500. SQLite opens such
        // a file read-only, as this does (whoever runs the test: file modes
        // do not stop root).
        let path = temp_db("read-only");
        Store::open(&path).await.unwrap().close().await;
        let read_only = SqliteConnectOptions::new().filename(&path).read_only(true);
        let error = Store::connect(read_only).await.unwrap_err();
        assert!(error.to_string().contains("readonly"), "{error}");
        Store::open(&path).await.unwrap().close().await;
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn an_agent_has_a_bounded_number_of_pending_requests() {
        let path = temp_db("pending-limit");
        let store = Store::open(&path).await.unwrap();
        let request = |hash: &str, agent: &str, expires_at: i64| PendingRequest {
            token_hash: hash.into(),
            agent: agent.into(),
            delegate_sub: None,
            resource: "https://r.example".into(),
            scope: "a".into(),
            redirect_uri: "https://agent.example/cb".into(),
            expires_at,
            upstream_agent: None,
        };
        let a = "https://a.example";
        assert!(
            store
                .insert_request(&request("1", a, 2_000), 1_000, 2)
                .await
                .unwrap()
        );
        assert!(
            store
                .insert_request(&request("2", a, 2_000), 1_000, 2)
                .await
                .unwrap()
        );
        assert!(
            !store
                .insert_request(&request("3", a, 2_000), 1_000, 2)
                .await
                .unwrap()
        );
        // Another agent has its own allowance; expired requests free it up.
        assert!(
            store
                .insert_request(&request("4", "https://b.example", 2_000), 1_000, 2)
                .await
                .unwrap()
        );
        assert!(
            store
                .insert_request(&request("5", a, 3_000), 2_000, 2)
                .await
                .unwrap()
        );
        store.close().await;
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn everything_survives_reopening_the_file() {
        // profile: P-AS-8
        let path = temp_db("reopen");
        let store = Store::open(&path).await.unwrap();
        let request = PendingRequest {
            token_hash: "t".into(),
            agent: "https://agent.example".into(),
            delegate_sub: Some("d1".into()),
            resource: "https://r.example".into(),
            scope: "a b".into(),
            redirect_uri: "https://agent.example/cb".into(),
            expires_at: 1_600,
            upstream_agent: Some("https://upstream.example".into()),
        };
        assert!(store.insert_request(&request, 1_000, 100).await.unwrap());
        store
            .insert_grant(&grant("g", "https://agent.example", None, None), 1_000)
            .await
            .unwrap();
        store
            .add_signing_key(
                &KeyRow {
                    kid: "k".into(),
                    private_jwk: "{}".into(),
                },
                1_000,
            )
            .await
            .unwrap();
        store.close().await;

        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.request("t").await.unwrap(), Some(request.clone()));
        assert_eq!(
            store
                .answer_request("t", &alice(false), |_| None, 1_000)
                .await
                .unwrap(),
            Some(request)
        );
        assert_eq!(
            store
                .answer_request("t", &alice(false), |_| None, 1_000)
                .await
                .unwrap(),
            None
        );
        assert!(store.grant("g").await.unwrap().is_some());
        assert_eq!(store.signing_keys().await.unwrap().len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the file holds the private key");
        }
        store.close().await;
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    fn alice(approved: bool) -> Answer {
        Answer {
            approved,
            username: "alice".into(),
        }
    }

    fn code(hash: &str) -> CodeRecord {
        CodeRecord {
            code_hash: hash.into(),
            request_hash: "r".into(),
            agent: "https://a.example".into(),
            delegate_sub: None,
            username: "alice".into(),
            resource: "https://r.example".into(),
            scope: "a".into(),
            redirect_uri: "https://a.example/cb".into(),
            expires_at: 2_000,
        }
    }

    #[tokio::test]
    async fn a_database_made_before_a_column_was_added_gets_it_at_open() {
        let path = temp_db("old-schema");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let old = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(
            "CREATE TABLE pending_requests (token_hash TEXT PRIMARY KEY, agent TEXT NOT NULL,
             delegate_sub TEXT, resource TEXT NOT NULL, scope TEXT NOT NULL,
             redirect_uri TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)",
        )
        .execute(&old)
        .await
        .unwrap();
        old.close().await;
        let store = Store::open(&path).await.unwrap();
        let pending = PendingRequest {
            token_hash: "t".into(),
            agent: "https://a.example".into(),
            delegate_sub: None,
            resource: "https://r.example".into(),
            scope: "a".into(),
            redirect_uri: "https://a.example/cb".into(),
            expires_at: 1_600,
            upstream_agent: Some("https://u.example".into()),
        };
        assert!(store.insert_request(&pending, 1_000, 10).await.unwrap());
        assert_eq!(store.request("t").await.unwrap(), Some(pending));
        store.close().await;
        // Opening again finds the column and adds nothing.
        Store::open(&path).await.unwrap().close().await;
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn an_answer_is_remembered_until_the_request_would_have_expired() {
        let path = temp_db("answered");
        let store = Store::open(&path).await.unwrap();
        let pending = PendingRequest {
            token_hash: "t".into(),
            agent: "https://a.example".into(),
            delegate_sub: None,
            resource: "https://r.example".into(),
            scope: "a".into(),
            redirect_uri: "https://a.example/cb".into(),
            expires_at: 1_600,
            upstream_agent: None,
        };
        assert!(store.insert_request(&pending, 1_000, 10).await.unwrap());
        assert_eq!(store.answered("t", 1_000).await.unwrap(), None);
        store
            .answer_request("t", &alice(true), |_| None, 1_100)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store.answered("t", 1_200).await.unwrap(),
            Some(Answered {
                answer: alice(true),
                agent: "https://a.example".into(),
                resource: "https://r.example".into(),
                answered_at: 1_100,
            })
        );
        assert_eq!(store.answered("t", 1_600).await.unwrap(), None, "expired");
        store.purge_expired(1_600).await.unwrap();
        assert_eq!(store.answered("t", 1_200).await.unwrap(), None, "purged");
        store.close().await;
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn a_code_is_redeemed_with_its_grant_or_not_at_all() {
        // E§9.5 single use, and review finding 9: the code and its grant
        // change together.
        let path = temp_db("redeem");
        let store = Store::open(&path).await.unwrap();
        store
            .answer_request("missing", &alice(true), |_| Some(code("never")), 1_000)
            .await
            .unwrap();
        assert!(store.grant("g").await.unwrap().is_none());

        let pending = PendingRequest {
            token_hash: "t".into(),
            agent: "https://a.example".into(),
            delegate_sub: None,
            resource: "https://r.example".into(),
            scope: "a".into(),
            redirect_uri: "https://a.example/cb".into(),
            expires_at: 1_600,
            upstream_agent: None,
        };
        assert!(store.insert_request(&pending, 1_000, 10).await.unwrap());
        store
            .answer_request("t", &alice(true), |_| Some(code("c1")), 1_000)
            .await
            .unwrap()
            .unwrap();

        // A refused presenter uses the code up and stores nothing.
        let refused: Option<Result<(), &str>> = store
            .redeem_code("c1", |_| Err("another agent"), 1_001)
            .await
            .unwrap();
        assert_eq!(refused, Some(Err("another agent")));
        assert_eq!(
            store
                .redeem_code("c1", |_| Ok((grant("g", "a", None, None), ())), 1_002)
                .await
                .unwrap(),
            None::<Result<(), ()>>
        );
        assert!(store.grant("g").await.unwrap().is_none());

        // A grant that cannot be stored leaves the code as it was.
        store
            .answer_request("t2", &alice(false), |_| None, 1_000)
            .await
            .unwrap();
        store.insert_code_for_tests(&code("c2"), 1_000).await;
        store
            .insert_grant(&grant("taken", "a", None, None), 1_000)
            .await
            .unwrap();
        let failed: Result<Option<Result<(), ()>>, StoreError> = store
            .redeem_code("c2", |_| Ok((grant("taken", "a", None, None), ())), 1_003)
            .await;
        assert!(failed.is_err(), "the grant's key is already used");
        let redeemed = store
            .redeem_code("c2", |_| Ok((grant("g2", "a", None, None), ())), 1_004)
            .await
            .unwrap();
        assert_eq!(redeemed, Some(Ok::<(), ()>(())));
        assert!(store.grant("g2").await.unwrap().is_some());
        store.close().await;
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn a_login_session_replaces_the_anonymous_one_in_one_step() {
        // P-AS-4: a new session id at login; the anonymous one ends with it.
        let path = temp_db("sessions");
        let store = Store::open(&path).await.unwrap();
        let session = |hash: &str, user: Option<&str>| Session {
            session_hash: hash.into(),
            username: user.map(Into::into),
            csrf_token: "c".into(),
            expires_at: 2_000,
        };
        store
            .insert_session(&session("anon", None), None, 1_000)
            .await
            .unwrap();
        store
            .insert_session(&session("alice", Some("alice")), Some("anon"), 1_000)
            .await
            .unwrap();
        assert_eq!(store.session("anon", 1_000).await.unwrap(), None);
        assert_eq!(
            store.session("alice", 1_000).await.unwrap(),
            Some(session("alice", Some("alice")))
        );
        // A new session that cannot be stored leaves the old one as it was.
        store
            .insert_session(&session("bob-anon", None), None, 1_000)
            .await
            .unwrap();
        assert!(
            store
                .insert_session(&session("alice", Some("alice")), Some("bob-anon"), 1_000)
                .await
                .is_err()
        );
        assert!(store.session("bob-anon", 1_000).await.unwrap().is_some());
        store.close().await;
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn revoke_matches_every_given_filter() {
        // profile: P-AS-6 — "revocable with an operator command (by agent, delegate or user)".
        let path = temp_db("revoke");
        let store = Store::open(&path).await.unwrap();
        let a = "https://a.example";
        let b = "https://b.example";
        for g in [
            grant("1", a, Some("d1"), Some("alice")),
            grant("2", a, Some("d2"), None),
            grant("3", b, Some("d1"), Some("bob")),
            grant("4", b, None, Some("alice")),
        ] {
            store.insert_grant(&g, 1_000).await.unwrap();
        }
        let filter =
            |agent: Option<&str>, delegate: Option<&str>, user: Option<&str>| RevokeFilter {
                agent: agent.map(Into::into),
                delegate_sub: delegate.map(Into::into),
                username: user.map(Into::into),
            };
        assert_eq!(
            store
                .revoke(&filter(None, None, None), 1_100)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .revoke(&filter(Some(b), Some("d1"), None), 1_100)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .revoke(&filter(None, None, Some("alice")), 1_100)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .revoke(&filter(Some(a), None, None), 1_100)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .revoke(&filter(Some(a), None, None), 1_100)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store.grant("2").await.unwrap().unwrap().revoked_at,
            Some(1_100)
        );
        store.close().await;
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
