//! What every AAuth server binary does the same way: logging, binding and
//! announcing its public URL, dev mode, keys kept on disk, and shutting down
//! cleanly.
//!
//! * `--listen 127.0.0.1:0 --dev` binds a free loopback port and derives the
//!   public URL from it (`http://127.0.0.1:PORT`, an identifier only dev mode
//!   accepts: P-MD-1). Outside dev mode the public `https://` URL is
//!   configured, and TLS is terminated in front of the server.
//! * One line on standard output, `listening url=…`, tells scripts and tests
//!   where the server is; everything else goes to standard error.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aauth_protocol::ids::{Kid, Origin, OriginMode};
use aauth_protocol::jwk::{Jwks, JwksKey};
use aauth_protocol::keys::{Algorithm, PrivateJwk, SigningKey};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The public URL is missing or not an acceptable identifier.
    #[error("public URL: {0}")]
    PublicUrl(String),
    /// The key file could not be read, parsed or written.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
}

/// The footer of every command's `--help`: what the citations in the
/// option texts point at.
pub const CITATIONS_HELP: &str = "Citations in this help: E§ is a section of the AAuth explainer, D§ \
     of the draft-hardt-aauth Internet-Draft, SK0§ of the Signature-Key draft (which versions, and \
     where to read them: docs/references.md); P-… is a decision of this implementation's profile \
     where those texts are silent or disagree (docs/profile.md).";

/// Logs to standard error; `RUST_LOG` refines the default level.
pub fn init_tracing(verbose: bool) {
    use std::io::IsTerminal as _;
    // `-v` is this project's debug output; the dependencies' (SQL
    // statements, connection pools, HTTP internals) only when RUST_LOG
    // asks for it.
    let default = if verbose {
        "debug,sqlx=warn,hyper=info,hyper_util=info,h2=info,tower=info,reqwest=info,rustls=info"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // A second initialisation (tests) is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Numbers the requests a process answers, for its log.
static REQUEST_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// One log line per request at info level: method, path (never the query,
/// which can hold a request token), status, the level the signature reached
/// (P-CH-2), the error code when there is one, and the latency; everything
/// logged while answering it carries the same request id (a span).
async fn log_request(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument as _;
    let level = crate::server::LevelReached::default();
    request.extensions_mut().insert(level.clone());
    let id = REQUEST_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let method = request.method().clone();
    let path = request.uri().path().chars().take(200).collect::<String>();
    let span = tracing::info_span!("request", id);
    let started = std::time::Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let error = response
        .extensions()
        .get::<aauth_protocol::error::ErrorCode>()
        .map(|code| code.as_str().to_owned());
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        tracing::info!(
            %method,
            path,
            status = response.status().as_u16(),
            level = level.get().unwrap_or("-"),
            error = error.as_deref().unwrap_or("-"),
            latency_ms,
            "answered"
        );
    });
    response
}

/// Binds `listen` and decides the server's public identifier.
///
/// In dev mode without `public_url`, the identifier is derived from the bound
/// address, which must be loopback. Otherwise `public_url` is required and
/// must be an identifier of the mode (P-MD-1).
pub async fn bind(
    listen: SocketAddr,
    public_url: Option<&str>,
    dev: bool,
) -> Result<(TcpListener, Origin), StartError> {
    let mode = if dev {
        OriginMode::Dev
    } else {
        OriginMode::Production
    };
    if dev && !listen.ip().is_loopback() {
        return Err(StartError::Config(format!(
            "dev mode listens on loopback only, not {listen}"
        )));
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| StartError::Bind {
        addr: listen,
        source,
    })?;
    let url = match (public_url, dev) {
        (Some(url), _) => url.to_owned(),
        (None, true) => format!("http://127.0.0.1:{}", bound.port()),
        (None, false) => {
            return Err(StartError::PublicUrl(
                "--public-url is required outside dev mode (the https origin clients use)".into(),
            ));
        }
    };
    let origin = Origin::parse(&url, mode).map_err(|e| StartError::PublicUrl(e.to_string()))?;
    if dev {
        tracing::warn!(
            url = %origin,
            "DEV MODE: plain http loopback identifiers are accepted and error responses include \
             signature bases; never expose this server"
        );
    }
    Ok((listener, origin))
}

/// Prints the one line scripts wait for: `listening url=…`.
pub fn announce(origin: &Origin) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening url={origin}");
    let _ = stdout.flush();
}

/// Longest a request may take to arrive and be answered; a client that
/// announces a body and never sends it cannot hold a connection longer.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Adds the request time limit: past [`REQUEST_TIMEOUT`] the answer is 408
/// `invalid_request`, as JSON like every other error.
pub fn with_time_limit(router: axum::Router) -> axum::Router {
    use axum::response::IntoResponse as _;
    router.layer(
        tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn(log_request))
            .layer(axum::error_handling::HandleErrorLayer::new(
                |_: tower::BoxError| async {
                    crate::server::ErrorResponse::new(
                        aauth_protocol::error::Condition::RequestTimeout,
                        "the request did not arrive in full within 30 s",
                    )
                    .into_response()
                },
            ))
            .layer(tower::timeout::TimeoutLayer::new(REQUEST_TIMEOUT)),
    )
}

/// How many connections a server holds, and how long a client may take to
/// send a request's headers: a client that opens connections and sends a
/// byte now and then must not exhaust the server's descriptors and memory.
/// The same flags on every server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct ConnectionLimits {
    /// Seconds a client has to send a request's line and headers, and a
    /// kept-alive connection to start its next request, before the
    /// connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub header_timeout: u64,
    /// Connections held open at most; one more is answered 503
    /// `temporarily_unavailable` with `Retry-After` and closed. Keep it
    /// below the process's file descriptor limit.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_connections: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: 10,
            max_connections: 1024,
        }
    }
}

/// Refusals of connections over the limit being written at once; past this
/// a new connection is closed without an answer.
const MAX_REFUSALS: usize = 64;
/// Longest a refusal may take: reading the request's head and writing 503.
const REFUSAL_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves `router` until SIGINT or SIGTERM, then finishes open requests.
/// Every request is bounded by [`REQUEST_TIMEOUT`], every connection by
/// `limits`.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    serve_until(listener, router, limits, shutdown_signal()).await
}

/// [`serve`] until `signal` completes.
pub async fn serve_until(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use std::sync::Arc;
    use tokio::sync::{Semaphore, watch};

    let app = with_time_limit(router);
    // Beyond Semaphore::MAX_PERMITS the semaphore would panic; no machine
    // holds that many connections anyway.
    let connections = Arc::new(Semaphore::new(
        usize::try_from(limits.max_connections)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS),
    ));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let header_timeout = std::time::Duration::from_secs(limits.header_timeout);
    // Dropped when the signal comes: connections then shut down gracefully.
    let (running, stopping) = watch::channel(());
    tokio::spawn(async move {
        signal.await;
        drop(stopping);
    });
    // Each connection holds a receiver; the sender closes when all are gone.
    let (open_tx, open_rx) = watch::channel(());
    let mut refused_logged: Option<std::time::Instant> = None;
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, or the peer gave up: wait, go on.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = running.closed() => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            if refused_logged.is_none_or(|at| at.elapsed().as_secs() >= 10) {
                refused_logged = Some(std::time::Instant::now());
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "too many open connections; refusing new ones with 503"
                );
            }
            if let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(permit);
                });
            }
            continue;
        };
        let app = app.clone();
        let (running, open) = (running.clone(), open_rx.clone());
        tokio::spawn(async move {
            serve_connection(stream, remote, app, header_timeout, running).await;
            drop((permit, open));
        });
    }
    drop(open_rx);
    drop(listener);
    open_tx.closed().await;
    Ok(())
}

/// One connection: HTTP/1.1 with the header timeout, every request given
/// the peer's address as [`axum::extract::ConnectInfo`].
async fn serve_connection(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    app: axum::Router,
    header_timeout: std::time::Duration,
    running: tokio::sync::watch::Sender<()>,
) {
    use tower::ServiceExt as _;
    let service = hyper::service::service_fn(move |mut request: http::Request<_>| {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(remote));
        app.clone().oneshot(request.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%remote, %error, "connection ended");
            }
            return;
        }
        () = running.closed() => {}
    }
    // Shutting down: finish the request in progress, then close.
    connection.as_mut().graceful_shutdown();
    if let Err(error) = connection.await {
        tracing::debug!(%remote, %error, "connection ended");
    }
}

/// Answers a connection over the limit with 503 and closes it.
async fn refuse(stream: tokio::net::TcpStream) {
    use axum::response::IntoResponse as _;
    let service = hyper::service::service_fn(|_request: http::Request<_>| async {
        Ok::<_, std::convert::Infallible>(
            crate::server::ErrorResponse::new(
                aauth_protocol::error::Condition::TooManyConnections,
                "the server has as many connections open as it may; retry after the time in \
                 Retry-After",
            )
            .with_retry_after(1)
            .into_response(),
        )
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(REFUSAL_TIME / 2)
        .keep_alive(false);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let _ = tokio::time::timeout(REFUSAL_TIME, connection).await;
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}

/// A signing key with its `kid`, as kept on disk.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: Kid,
    key: PrivateJwk,
}

/// A server's signing key and its identifier in the server's JWKS.
#[derive(Debug)]
pub struct ServerKey {
    /// The `kid` published in the JWKS and put in token headers.
    pub kid: Kid,
    /// The private key.
    pub key: SigningKey,
}

impl ServerKey {
    /// A fresh Ed25519 key whose `kid` is derived from its thumbprint.
    pub fn generate() -> Result<Self, StartError> {
        let key = SigningKey::generate(Algorithm::Ed25519).map_err(|e| StartError::KeyFile {
            path: PathBuf::new(),
            reason: e.to_string(),
        })?;
        let thumbprint = key.public_key().thumbprint();
        let short: String = thumbprint.as_str().chars().take(16).collect();
        let kid = Kid::new(short).map_err(|e| StartError::KeyFile {
            path: PathBuf::new(),
            reason: e.to_string(),
        })?;
        Ok(Self { kid, key })
    }

    /// Loads the key at `path`, which must exist: for a command that uses a
    /// server's key without being the server (`call --as-server`).
    pub fn load(path: &Path) -> Result<Self, StartError> {
        Self::read(path)?.ok_or_else(|| StartError::KeyFile {
            path: path.to_owned(),
            reason: "no such file; the server's `serve` creates it on first start \
                     (give the same --state-dir or --config)"
                .to_owned(),
        })
    }

    fn read(path: &Path) -> Result<Option<Self>, StartError> {
        let fail = |reason: String| StartError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let stored: StoredKey =
                    serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string()))?;
                let key =
                    SigningKey::from_private_jwk(&stored.key).map_err(|e| fail(e.to_string()))?;
                Ok(Some(Self {
                    kid: stored.kid,
                    key,
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// Loads the key at `path`, or creates it (readable by the owner only)
    /// on first start.
    pub fn load_or_create(path: &Path) -> Result<Self, StartError> {
        let fail = |reason: String| StartError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        match Self::read(path)? {
            Some(key) => Ok(key),
            None => {
                let created = Self::generate()?;
                let stored = StoredKey {
                    kid: created.kid.clone(),
                    key: created
                        .key
                        .to_private_jwk()
                        .map_err(|e| fail(e.to_string()))?,
                };
                let json = serde_json::to_vec_pretty(&stored).map_err(|e| fail(e.to_string()))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
                }
                write_private(path, &json).map_err(|e| fail(e.to_string()))?;
                tracing::info!(path = %path.display(), kid = %created.kid, "created a new signing key");
                Ok(created)
            }
        }
    }

    /// The JWKS document publishing this key.
    pub fn jwks(&self) -> serde_json::Value {
        Jwks::new(vec![JwksKey {
            kid: self.kid.clone(),
            key: self.key.public_key().clone(),
        }])
        .to_json_value()
    }
}

/// Writes `bytes` to a new file readable and writable by the owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("aauth-key-{}", std::process::id()));
        let path = dir.join("server-key.json");
        let _ = std::fs::remove_file(&path);
        let missing = ServerKey::load(&path).unwrap_err().to_string();
        assert!(missing.contains("serve"), "{missing}");
        assert!(!path.exists(), "load creates nothing");
        let first = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(ServerKey::load(&path).unwrap().kid, first.kid);
        let second = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(first.kid, second.kid);
        assert_eq!(first.key.public_key(), second.key.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_the_time_limit_is_408_invalid_request() {
        use tower::ServiceExt as _;
        let slow = axum::Router::new().route(
            "/",
            axum::routing::get(|| async {
                tokio::time::sleep(REQUEST_TIMEOUT * 2).await;
                "late"
            }),
        );
        let response = with_time_limit(slow)
            .oneshot(http::Request::new(axum::body::Body::empty()))
            .await
            .unwrap();
        assert_eq!(response.status(), http::StatusCode::REQUEST_TIMEOUT);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert!(
            std::str::from_utf8(&body)
                .unwrap()
                .contains("\"invalid_request\""),
            "{body:?}"
        );
    }

    #[tokio::test]
    async fn dev_mode_derives_the_loopback_identifier() {
        let (listener, origin) = bind("127.0.0.1:0".parse().unwrap(), None, true)
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(origin.as_str(), format!("http://127.0.0.1:{port}"));
    }

    #[tokio::test]
    async fn production_needs_an_https_public_url() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert!(matches!(
            bind(any, None, false).await,
            Err(StartError::PublicUrl(_))
        ));
        assert!(matches!(
            bind(any, Some("http://127.0.0.1:8080"), false).await,
            Err(StartError::PublicUrl(_))
        ));
        let (_, origin) = bind(any, Some("https://resource.example"), false)
            .await
            .unwrap();
        assert_eq!(origin.as_str(), "https://resource.example");
    }
}
