//! An agent under test. The suite serves a resource of its own — this
//! project's reference resource, strict, in dev mode — on its listener,
//! says which requests to make, records every request the agent sends and
//! every answer, and grades them when each scenario has succeeded or the
//! wait is over: the signature profile of each request, `created`, the
//! `Nonce` and body components of each POST, and how the agent climbed
//! after each challenge.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aauth_axum::{Caller, Guard, Need};
use aauth_http::runtime::{ConnectionLimits, ServerKey, serve_until};
use aauth_protocol::httpsig::SignatureEncoding;
use aauth_protocol::ids::{Origin, OriginMode};
use aauth_protocol::signature_key::{self, SignatureKey};
use aauth_protocol::tokens::{TokenType, declared_type};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;

use crate::profile::AgentTarget;
use crate::run::{Run, case};
use aauth_http::server::unix_now;

/// Largest refusal body read for its `error`.
const KEPT_BODY: usize = 64 * 1024;

/// One request the agent sent and what it got.
#[derive(Debug, Clone)]
struct Exchange {
    method: String,
    path: String,
    /// `hwk`, `jwks_uri`, `jwt agent+jwt`, `jwt auth+jwt`, or why none.
    signer: String,
    signature_input: Option<String>,
    nonce: Option<String>,
    has_body: bool,
    received: u64,
    status: u16,
    error: Option<String>,
}

impl Exchange {
    fn describe(&self) -> String {
        format!(
            "{} {} signed {} → {}{}",
            self.method,
            self.path,
            self.signer,
            self.status,
            self.error
                .as_ref()
                .map(|e| format!(" {e}"))
                .unwrap_or_default()
        )
    }

    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The covered components as written, e.g. `"@method"`.
    fn covers(&self, component: &str) -> bool {
        self.signature_input
            .as_deref()
            .is_some_and(|input| input.contains(&format!("\"{component}\"")))
    }

    /// `created` of the signature, if it reads as an integer.
    fn created(&self) -> Option<u64> {
        let input = self.signature_input.as_deref()?;
        let rest = input.split(";created=").nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }
}

type Log = Arc<Mutex<Vec<Exchange>>>;

fn signer_of(value: Option<&str>) -> String {
    let Some(value) = value else {
        return "unsigned".to_owned();
    };
    match signature_key::parse(value) {
        Ok(field) => match field.key {
            SignatureKey::Hwk(_) => "hwk".to_owned(),
            SignatureKey::JwksUri { .. } => "jwks_uri".to_owned(),
            SignatureKey::Jwt { jwt } => match declared_type(&jwt) {
                Some(TokenType::Agent) => "jwt agent+jwt".to_owned(),
                Some(TokenType::Auth) => "jwt auth+jwt".to_owned(),
                Some(TokenType::Resource) => "jwt resource+jwt".to_owned(),
                Some(_) | None => "jwt (another token)".to_owned(),
            },
            SignatureKey::X509 { .. } => "x509".to_owned(),
        },
        Err(e) => format!("an unreadable Signature-Key ({e})"),
    }
}

async fn record(State(log): State<Log>, request: Request, next: Next) -> Response {
    let mut exchange = {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Exchange {
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            signer: signer_of(header("signature-key").as_deref()),
            signature_input: header("signature-input"),
            nonce: header("nonce"),
            has_body: header("content-length").is_some_and(|l| l != "0")
                || header("transfer-encoding").is_some(),
            received: unix_now(),
            status: 0,
            error: None,
        }
    };
    let response = next.run(request).await;
    exchange.status = response.status().as_u16();
    // Only a refusal's body is read, for its `error`: error bodies are
    // small, and a success passes through to the agent untouched.
    let response = if response.status().is_success() {
        response
    } else {
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, KEPT_BODY).await.unwrap_or_default();
        exchange.error = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
        Response::from_parts(parts, Body::from(bytes))
    };
    if let Ok(mut log) = log.lock()
        && log.len() < 10_000
    {
        log.push(exchange);
    }
    response
}

/// The scenario: what the agent is asked to do, and the check it makes.
struct Step {
    id: &'static str,
    rule: &'static str,
    method: &'static str,
    path: &'static str,
    what: &'static str,
    needs_auth_server: bool,
}

const STEPS: &[Step] = &[
    Step {
        id: "agent.public.reached",
        rule: "E§4.1",
        method: "GET",
        path: "/public",
        what: "any signature",
        needs_auth_server: false,
    },
    Step {
        id: "agent.whoami.reached",
        rule: "E§4.2",
        method: "GET",
        path: "/whoami",
        what: "an identified agent",
        needs_auth_server: false,
    },
    Step {
        id: "agent.data.reached",
        rule: "E§9",
        method: "GET",
        path: "/data",
        what: "an auth token with data.read",
        needs_auth_server: true,
    },
    Step {
        id: "agent.write.reached",
        rule: "E§9",
        method: "POST",
        path: "/data",
        what: "an auth token with data.write, a JSON body {\"text\": …}",
        needs_auth_server: true,
    },
];

/// Runs the agent role.
pub(super) async fn run(run: &mut Run, target: &AgentTarget) {
    // A --compat style that writes the peer's encodings also reads them.
    let lenient = run.settings.style.encoding == SignatureEncoding::UnpaddedBase64Url;
    let (origin, log) = match start(target, lenient).await {
        Ok(started) => started,
        Err(e) => {
            run.skip(case("agent.resource", "E§3", "the suite's resource"), e);
            return;
        }
    };
    let steps: Vec<&Step> = STEPS
        .iter()
        .filter(|s| !s.needs_auth_server || target.auth_server.is_some())
        .collect();
    (target.announce)(&format!(
        "listening url={origin}\n\nPoint the agent under test at:\n{}\nThe run ends when each has been answered 2xx, or after {} s.",
        steps
            .iter()
            .map(|s| format!("  {:<4} {origin}{:<8} ({})", s.method, s.path, s.what))
            .collect::<Vec<_>>()
            .join("\n"),
        target.wait.as_secs()
    ));
    let deadline = Instant::now() + target.wait;
    loop {
        let done = log.lock().map(|l| {
            steps.iter().all(|s| {
                l.iter()
                    .any(|e| e.method == s.method && e.path == s.path && e.ok())
            })
        });
        if done.unwrap_or(false) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let exchanges = log.lock().map(|l| l.clone()).unwrap_or_default();
    grade(run, target, &steps, &exchanges);
}

/// What every step's route answers: who called, at which level.
async fn answer(caller: Caller) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "level": aauth_axum::level_name(caller.level()),
        "agent": caller.agent().map(|a| a.as_str()),
        "delegate": caller.delegate(),
    }))
}

/// Starts the suite's resource; its origin and the log it fills.
async fn start(target: &AgentTarget, lenient: bool) -> Result<(String, Log), String> {
    let listener = TcpListener::bind(&target.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", target.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let origin = format!("http://{local}");
    let auth_server = target
        .auth_server
        .as_ref()
        .map_or("http://127.0.0.1:1".to_owned(), |u| {
            u.origin().ascii_serialization()
        });
    let identifier = Origin::parse(&origin, OriginMode::Dev).map_err(|e| e.to_string())?;
    let auth_server = Origin::parse(&auth_server, OriginMode::Dev).map_err(|e| e.to_string())?;
    let key = ServerKey::generate().map_err(|e| e.to_string())?;
    // The suite's resource: one route per step, each needing what its step
    // says, built on aauth-axum like the project's own resource.
    let guard = Guard::builder(identifier, auth_server, key)
        .dev(true)
        .lenient_base64(lenient)
        .name("AAuth conformance suite")
        .scope("data.read", "Read the suite's notes")
        .scope("data.write", "Write the suite's notes")
        .build()
        .map_err(|e| e.to_string())?;
    let routes = Router::new()
        .route("/public", get(answer).layer(guard.layer(Need::Signed)))
        .route("/whoami", get(answer).layer(guard.layer(Need::Identified)))
        .route(
            "/data",
            get(answer)
                .layer(guard.layer(Need::scope("data.read")))
                .merge(post(answer).layer(guard.layer(Need::scope("data.write")))),
        )
        .merge(guard.routes());
    let log: Log = Arc::default();
    let router = routes.layer(middleware::from_fn_with_state(log.clone(), record));
    tokio::spawn(serve_until(
        listener,
        router,
        ConnectionLimits::default(),
        std::future::pending(),
    ));
    Ok((origin, log))
}

fn grade(run: &mut Run, target: &AgentTarget, steps: &[&Step], log: &[Exchange]) {
    let sent = format!("{} requests from the agent", log.len());
    for step in steps {
        let tried: Vec<&Exchange> = log
            .iter()
            .filter(|e| e.method == step.method && e.path == step.path)
            .collect();
        run.verdict(
            case(
                step.id,
                step.rule,
                format!("{} {} reaches 2xx", step.method, step.path),
            ),
            sent.clone(),
            format!("a 2xx for {} {} ({})", step.method, step.path, step.what),
            match tried.iter().find(|e| e.ok()) {
                Some(e) => Ok(format!("{} after {} tries", e.describe(), tried.len())),
                None if tried.is_empty() => Err("never requested".to_owned()),
                None => Err(tried.last().map(|e| e.describe()).unwrap_or_default()),
            },
        );
    }
    if target.auth_server.is_none() {
        run.skip(
            case(
                "agent.authorized",
                "E§9",
                "GET and POST /data with an auth token",
            ),
            "no --auth-server was given for the suite's resource to name",
        );
    }

    // The climb: after a challenge for a higher level, the next request to
    // that path is signed at that level.
    let climbed = log.iter().enumerate().find_map(|(i, e)| {
        let asked = e.status == 401 && e.error.as_deref() == Some("insufficient_auth_level");
        if !asked {
            return None;
        }
        let next = log
            .iter()
            .skip(i + 1)
            .find(|n| n.path == e.path && n.method == e.method)?;
        (next.signer == e.signer).then(|| format!("{} then {}", e.describe(), next.describe()))
    });
    run.verdict(
        case(
            "agent.climb",
            "E§4",
            "after a challenge for a higher level the agent steps up",
        ),
        sent.clone(),
        "no retry at the level a challenge refused",
        match climbed {
            Some(stuck) => Err(format!("retried at the same level: {stuck}")),
            None => {
                Ok("every challenge for a higher level was answered by a higher level".to_owned())
            }
        },
    );

    // Every signature verified under the strict profile.
    let broken = log.iter().find(|e| {
        matches!(
            e.error.as_deref(),
            Some(
                "invalid_signature"
                    | "key_binding_failed"
                    | "invalid_agent_token"
                    | "invalid_auth_token"
                    | "replayed_nonce"
            )
        ) && e.signer != "unsigned"
    });
    run.verdict(
        case(
            "agent.signatures.verify",
            "E§10.7",
            "every signed request verifies",
        ),
        sent.clone(),
        "no signed request refused for its signature, token or Nonce",
        match broken {
            Some(e) => Err(e.describe()),
            None => Ok(format!("{} requests", log.len())),
        },
    );

    let base = ["@method", "@authority", "@path", "signature-key"];
    let missing = log.iter().find_map(|e| {
        let gap = base
            .iter()
            .find(|c| e.signature_input.is_some() && !e.covers(c))?;
        Some(format!("{}: {gap} not covered", e.describe()))
    });
    run.verdict(
        case(
            "agent.signatures.components",
            "P-SIG-1",
            "every signature covers the four base components",
        ),
        sent.clone(),
        "@method, @authority, @path and signature-key in every Signature-Input",
        missing.map_or_else(|| Ok("all covered".to_owned()), Err),
    );

    let skewed = log.iter().find_map(|e| {
        let created = e.created()?;
        (created.abs_diff(e.received) > 60).then(|| {
            format!(
                "{}: created {created}, received {}",
                e.describe(),
                e.received
            )
        })
    });
    run.verdict(
        case(
            "agent.signatures.created",
            "P-SIG-2",
            "created is within 60 s of the resource's clock",
        ),
        sent.clone(),
        "|created − now| ≤ 60 s on every request",
        skewed.map_or_else(|| Ok("all fresh".to_owned()), Err),
    );

    let posts: Vec<&Exchange> = log.iter().filter(|e| e.method == "POST").collect();
    if posts.is_empty() {
        run.skip(
            case(
                "agent.post.nonce",
                "P-SIG-6",
                "a POST carries a covered Nonce",
            ),
            "the agent sent no POST",
        );
    } else {
        let bad = posts
            .iter()
            .find(|e| e.nonce.is_none() || !e.covers("nonce"));
        run.verdict(
            case(
                "agent.post.nonce",
                "P-SIG-6",
                "every POST carries a covered Nonce",
            ),
            sent.clone(),
            "Nonce sent and nonce covered",
            bad.map_or_else(
                || Ok(format!("{} POSTs", posts.len())),
                |e| Err(e.describe()),
            ),
        );
        let bad = posts
            .iter()
            .find(|e| e.has_body && !(e.covers("content-type") && e.covers("content-digest")));
        run.verdict(
            case(
                "agent.post.body",
                "P-SIG-1",
                "a POST body is covered by content-type and content-digest",
            ),
            sent.clone(),
            "both covered on every request with a body",
            bad.map_or_else(
                || Ok(format!("{} POSTs", posts.len())),
                |e| Err(e.describe()),
            ),
        );
    }
    let mut seen = HashSet::new();
    let repeated = log
        .iter()
        .filter_map(|e| e.nonce.as_deref())
        .find(|n| !seen.insert(*n));
    run.verdict(
        case("agent.nonce.unique", "E§10.5", "no Nonce is sent twice"),
        sent,
        "every Nonce value fresh",
        repeated.map_or_else(
            || Ok(format!("{} nonces", seen.len())),
            |n| Err(format!("{n} sent twice")),
        ),
    );
}
