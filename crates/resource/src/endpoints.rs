//! The handlers. Each takes the whole request, so that no axum extractor can
//! answer in plain text: every error is the JSON of P-ERR-1.

use std::net::SocketAddr;

use aauth_http::server::{ErrorResponse, json_no_store, read_body, unix_now};
use aauth_protocol::challenge::{AgentAuth, Level};
use aauth_protocol::error::{Condition, ErrorBody, ErrorCode};
use aauth_protocol::signature_key::{self, SignatureKey};
use aauth_protocol::verify::VerifiedRequest;
use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::caller::Binding;
use crate::config::{CHAIN_SCOPE, READ_SCOPE, WRITE_SCOPE};
use crate::downstream::DownstreamError;
use crate::notes::{self, Owner};
use crate::rate::{Decision, Tier};
use aauth_axum::{Need as Requirement, is_signed, level_name};

async fn body_of(
    state: &AppState,
    request: Request,
    limit: usize,
) -> Result<(axum::http::request::Parts, Bytes), ErrorResponse> {
    let (parts, body) = request.into_parts();
    let limit = limit.min(state.settings().max_body);
    let body = read_body(body, limit).await?;
    Ok((parts, body))
}

/// `GET /.well-known/aauth-agent`: this resource as an agent, with the
/// same key set (E§8.1, profile: P-MD-4).
pub async fn agent_metadata(State(state): State<AppState>) -> Response {
    Json(state.agent_metadata()).into_response()
}

/// 405 for a known path with another method, as JSON.
pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "this endpoint does not accept this method",
        )),
    )
        .into_response()
}

/// `GET /public`: open to all, with progressive rate tiers (E§4.5).
pub async fn public(State(state): State<AppState>, request: Request) -> Response {
    match public_inner(&state, request).await {
        Ok(response) | Err(response) => response,
    }
}

async fn public_inner(state: &AppState, request: Request) -> Result<Response, Response> {
    let (parts, body) = body_of(state, request, usize::MAX)
        .await
        .map_err(IntoResponse::into_response)?;
    let now = unix_now();
    let limiter = state.limiter();
    let rate_limited = |retry_after: u64, next: Option<AgentAuth>| {
        let error = ErrorResponse::new(
            Condition::RateLimited,
            "rate limit of this authentication level exceeded; a higher level has a higher limit",
        )
        .with_retry_after(retry_after);
        match next {
            Some(challenge) => error.with_challenge(challenge),
            None => error,
        }
        .into_response()
    };
    if !is_signed(&parts.headers) {
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        if let Decision::Limited { retry_after } = limiter.check(Tier::Unsigned, &client, now) {
            // E§4.5: the next level, a signature (E§4.1).
            return Err(rate_limited(retry_after, Some(AgentAuth::signature())));
        }
        return Ok(json_no_store(
            StatusCode::OK,
            json!({"message": "public data", "level": "unsigned"}),
        ));
    }
    let verified = state
        .guard()
        .verify(&parts, &body, Requirement::Signed)
        .await
        .map_err(IntoResponse::into_response)?;
    let agent = verified
        .agent()
        .map_or_else(|| verified.thumbprint().to_string(), |a| a.to_string());
    let (tier, caller) = match verified.level() {
        Level::Pseudonymous => (Tier::Pseudonymous, verified.thumbprint().to_string()),
        Level::Identified => (Tier::Identified, agent),
        Level::Authorized => (Tier::Authorized, agent),
    };
    if let Decision::Limited { retry_after } = limiter.check(tier, &caller, now) {
        let next = match tier {
            Tier::Unsigned => Some(AgentAuth::signature()),
            Tier::Pseudonymous => Some(AgentAuth::identity()),
            Tier::Identified => Some(state.guard().auth_token_challenge(&verified, READ_SCOPE)),
            // P-CH-4: Agent-Auth only "when a higher level has a higher limit".
            Tier::Authorized => None,
        };
        return Err(rate_limited(retry_after, next));
    }
    Ok(json_no_store(
        StatusCode::OK,
        json!({"message": "public data", "level": level_name(verified.level())}),
    ))
}

/// `GET /whoami`: who signed the request (identified level or above).
pub async fn whoami(State(state): State<AppState>, request: Request) -> Response {
    let result = async {
        let (parts, body) = body_of(&state, request, usize::MAX).await?;
        state
            .guard()
            .require(&parts, &body, Requirement::Identified)
            .await
    }
    .await;
    match result {
        Ok(verified) => json_no_store(StatusCode::OK, whoami_json(&verified)),
        Err(error) => error.into_response(),
    }
}

fn whoami_json(verified: &VerifiedRequest) -> serde_json::Value {
    let mut out = json!({
        "level": level_name(verified.level()),
        "scheme": verified.scheme().as_str(),
        "agent": verified.agent().map(|a| a.as_str()),
        "delegate": verified.delegate(),
        "key_thumbprint": verified.thumbprint().as_str(),
    });
    if let Some(sub) = verified
        .auth_token()
        .and_then(|t| t.claims().sub.as_deref())
        && let Some(map) = out.as_object_mut()
    {
        map.insert("sub".to_owned(), json!(sub));
    }
    out
}

/// Whose notes an authorized request reaches: the user, else the agent.
fn owner(verified: &VerifiedRequest) -> Result<Owner, ErrorResponse> {
    if let Some(sub) = verified.auth_token().and_then(|t| t.claims().sub.clone()) {
        return Ok(Owner::User(sub));
    }
    verified
        .agent()
        .map(|agent| Owner::Agent(agent.to_string()))
        .ok_or_else(|| {
            ErrorResponse::new(
                Condition::AuthTokenInvalid,
                "the auth token names no agent (E§7.7 step 11)",
            )
            .with_challenge(AgentAuth::new(Level::Authorized))
        })
}

/// `GET /data[?limit=N][&after=ID]`: a page of the owner's notes (auth
/// token with `data.read`), oldest first, with the cursor of the next page.
pub async fn data_get(State(state): State<AppState>, request: Request) -> Response {
    let result = async {
        let (parts, body) = body_of(&state, request, usize::MAX).await?;
        let verified = state
            .guard()
            .require(&parts, &body, Requirement::Authorized { scope: READ_SCOPE })
            .await?;
        let (after, limit) = page_query(parts.uri.query())?;
        Ok::<_, ErrorResponse>((owner(&verified)?, after, limit))
    }
    .await;
    match result {
        Ok((owner, after, limit)) => {
            let page = state.notes().page(&owner, after, limit);
            json_no_store(
                StatusCode::OK,
                json!({"owner": owner, "notes": page.notes, "next": page.next}),
            )
        }
        Err(error) => error.into_response(),
    }
}

/// `after` (a note id) and `limit` (1 to [`notes::MAX_PAGE`], default
/// [`notes::DEFAULT_PAGE`]) from a query; other parameters are ignored.
fn page_query(query: Option<&str>) -> Result<(Option<u64>, usize), ErrorResponse> {
    let mut after = None;
    let mut limit = notes::DEFAULT_PAGE;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "after" => {
                after = Some(value.parse::<u64>().map_err(|_| {
                    ErrorResponse::invalid_request(
                        "after must be the id of a note (the next cursor of a page)",
                    )
                })?);
            }
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=notes::MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ErrorResponse::invalid_request(format!(
                            "limit must be a number from 1 to {}",
                            notes::MAX_PAGE
                        ))
                    })?;
            }
            _ => {}
        }
    }
    Ok((after, limit))
}

/// `GET /chain` (E§3.9): who is acting for whom, as this resource sees it,
/// and the downstream's own answer when one is configured, so the last hop
/// can tell the whole chain from `caller` and the nested `act`.
pub async fn chain(State(state): State<AppState>, request: Request) -> Response {
    let result = async {
        let (parts, body) = body_of(&state, request, usize::MAX).await?;
        let verified = state
            .guard()
            .require(
                &parts,
                &body,
                Requirement::Authorized { scope: CHAIN_SCOPE },
            )
            .await?;
        let downstream = match state.downstream() {
            None => serde_json::Value::Null,
            Some(downstream) => {
                let upstream = presented_token(&parts.headers).ok_or_else(|| {
                    tracing::error!("a verified authorized request without a jwt Signature-Key");
                    ErrorResponse::new(Condition::ServerFault, "cannot read the auth token")
                })?;
                let caller = Binding::of(&verified).ok_or_else(|| {
                    tracing::error!("a verified authorized request without an agent");
                    ErrorResponse::new(Condition::ServerFault, "cannot tell the caller")
                })?;
                match downstream.call(&upstream, &caller).await {
                    Ok(answer) => answer,
                    // profile: P-UI-1 — the caller sends the user here.
                    Err(DownstreamError::NeedsUser { url, need }) => {
                        tracing::info!(downstream = %url, %need, "the downstream needs the user");
                        let why = format!("downstream {url}: {need}");
                        return Err(state.interactions().challenge(caller, need, &why));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the downstream call failed");
                        return Err(ErrorResponse::new(error.condition(), error.description()));
                    }
                }
            }
        };
        Ok::<_, ErrorResponse>(chain_json(&state, &verified, downstream))
    }
    .await;
    match result {
        Ok(value) => json_no_store(StatusCode::OK, value),
        Err(error) => error.into_response(),
    }
}

fn chain_json(
    state: &AppState,
    verified: &VerifiedRequest,
    downstream: serde_json::Value,
) -> serde_json::Value {
    let claims = verified.auth_token().map(|t| t.claims());
    json!({
        "resource": state.settings().identifier.as_str(),
        "caller": verified.agent().map(|a| a.as_str()),
        "delegate": verified.delegate(),
        "sub": claims.and_then(|c| c.sub.as_deref()),
        "act": claims.and_then(|c| c.act.as_ref()),
        "downstream": downstream,
    })
}

/// The auth token the request was signed with, as presented: the `jwt` of
/// its `Signature-Key` (SK0§2.6). Read again after verification, which has
/// already accepted this very header.
fn presented_token(headers: &axum::http::HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all("signature-key")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .collect();
    match signature_key::parse(&lines.join(", ")).ok()?.key {
        SignatureKey::Jwt { jwt } => Some(jwt),
        SignatureKey::Hwk(_) | SignatureKey::JwksUri { .. } | SignatureKey::X509 { .. } => None,
    }
}

#[derive(Debug, Deserialize)]
struct NoteJson {
    text: String,
}

/// The note in a body: `application/json` `{"text": "…"}` or `text/plain`.
fn note_text(headers: &axum::http::HeaderMap, body: &[u8]) -> Result<String, ErrorResponse> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let text = match essence.as_str() {
        "application/json" => {
            serde_json::from_slice::<NoteJson>(body)
                .map_err(|e| {
                    ErrorResponse::invalid_request(format!(
                        "the body must be JSON {{\"text\": \"…\"}}: {e}"
                    ))
                })?
                .text
        }
        "text/plain" => String::from_utf8(body.to_vec())
            .map_err(|_| ErrorResponse::invalid_request("the text body is not UTF-8"))?,
        _ => {
            return Err(ErrorResponse::invalid_request(
                "the body must be application/json or text/plain",
            ));
        }
    };
    if text.len() > notes::MAX_NOTE_BYTES {
        return Err(ErrorResponse::invalid_request(format!(
            "the note is longer than {} bytes",
            notes::MAX_NOTE_BYTES
        )));
    }
    if text.is_empty() {
        return Err(ErrorResponse::invalid_request("the note is empty"));
    }
    Ok(text)
}

/// `POST /data`: stores a note (auth token with `data.write`).
pub async fn data_post(State(state): State<AppState>, request: Request) -> Response {
    let result = async {
        let (parts, body) = body_of(&state, request, usize::MAX).await?;
        let verified = state
            .guard()
            .require(
                &parts,
                &body,
                Requirement::Authorized { scope: WRITE_SCOPE },
            )
            .await?;
        let owner = owner(&verified)?;
        let text = note_text(&parts.headers, &body)?;
        Ok::<_, ErrorResponse>((owner, text))
    }
    .await;
    match result {
        Ok((owner, text)) => {
            let note = state.notes().add(owner, text, unix_now());
            json_no_store(StatusCode::CREATED, json!(note))
        }
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};
    use proptest::prelude::*;

    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(content_type) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        headers
    }

    #[test]
    fn a_note_is_json_text_or_plain_text() {
        let json = note_text(
            &headers("Application/JSON; charset=utf-8"),
            br#"{"text":"a"}"#,
        );
        assert_eq!(json.unwrap(), "a");
        assert_eq!(note_text(&headers("text/plain"), b"b").unwrap(), "b");
        for (ct, body) in [
            ("", &b"x"[..]),
            ("text/html", b"x"),
            ("text/plain", b""),
            ("application/json", b"[]"),
        ] {
            let error = note_text(&headers(ct), body).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{ct}");
        }
    }

    proptest! {
        #[test]
        fn any_note_body_is_a_note_or_a_400(
            content_type in prop::sample::select(vec![
                "application/json", "text/plain", "text/plain; charset=utf-8", "", "x/y",
            ]),
            body in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            if let Err(error) = note_text(&headers(content_type), &body) {
                prop_assert_eq!(error.status(), StatusCode::BAD_REQUEST);
            }
        }
    }
}
