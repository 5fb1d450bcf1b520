//! What an AAuth resource publishes: its metadata (E§8.3), its key set, and
//! its resource token endpoint (E§9.2.5).

use aauth_http::server::{ErrorResponse, MAX_FORM_BYTES, json_no_store, parse_form, read_body};
use aauth_protocol::challenge::AgentAuth;
use aauth_protocol::error::Condition;
use aauth_protocol::ids::Scope;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::{Guard, Need};

/// Where the metadata is published (E§8.3).
pub const METADATA_PATH: &str = "/.well-known/aauth-resource";
/// Where the key set is published.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// The resource token endpoint (E§9.2.5).
pub const RESOURCE_TOKEN_PATH: &str = "/resource/token";

/// Longest piece of caller input echoed back in a description.
const MAX_ECHO: usize = 64;

impl Guard {
    /// `GET /.well-known/aauth-resource`, `GET /.well-known/jwks.json` and
    /// `POST /resource/token`, to merge into the application's router.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route(METADATA_PATH, get(metadata))
            .route(JWKS_PATH, get(jwks))
            .route(RESOURCE_TOKEN_PATH, post(resource_token))
            .with_state(self.clone())
    }
}

/// `GET /.well-known/aauth-resource` (E§8.3).
pub async fn metadata(State(guard): State<Guard>) -> Response {
    Json(guard.metadata()).into_response()
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(guard): State<Guard>) -> Response {
    Json(guard.jwks()).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    scope: Option<String>,
    auth_request_url: Option<String>,
}

/// `POST /resource/token` (E§9.2.5): a resource token for the verified
/// agent, for a scope this resource supports.
pub async fn resource_token(State(guard): State<Guard>, request: Request) -> Response {
    let result = async {
        let (parts, body) = request.into_parts();
        let body = read_body(body, MAX_FORM_BYTES.min(guard.max_body())).await?;
        // P-ERR-4: the signature is verified before anything is minted.
        let verified = guard.require(&parts, &body, Need::Identified).await?;
        let form: TokenForm = parse_form(&parts.headers, &body)?;
        if form.auth_request_url.is_some() {
            // profile: P-TOK-7.
            return Err(ErrorResponse::invalid_request(
                "auth_request_url is not supported: E§11 leaves the document format TBD",
            ));
        }
        let Some(text) = form.scope else {
            return Err(ErrorResponse::invalid_request(
                "the form parameter scope is required (E§9.2.5)",
            ));
        };
        // A scope that does not parse is a malformed parameter (P-ERR-1:
        // invalid_request); one that parses but is not ours is invalid_scope.
        let scope = Scope::parse(&text)
            .map_err(|e| ErrorResponse::invalid_request(format!("scope: {e}")))?;
        if let Some(unknown) = scope.tokens().find(|t| guard.scopes().get(t).is_none()) {
            return Err(ErrorResponse::new(
                Condition::ScopeNotAllowed,
                format!(
                    "this resource does not support the scope {:?}",
                    unknown.chars().take(MAX_ECHO).collect::<String>()
                ),
            ));
        }
        Ok((verified, scope))
    }
    .await;
    let (verified, scope) = match result {
        Ok(ok) => ok,
        Err(error) => return error.into_response(),
    };
    match guard.mint_resource_token(&verified, scope) {
        Ok(Some(token)) => json_no_store(
            StatusCode::OK,
            json!({
                "resource_token": token,
                "auth_server": guard.auth_server().as_str(),
                "expires_in": guard.resource_token_lifetime(),
            }),
        ),
        // Unreachable: the identified level always names an agent.
        Ok(None) => ErrorResponse::new(
            Condition::LevelTooLow,
            "the request does not identify an agent",
        )
        .with_challenge(AgentAuth::identity())
        .into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot mint a resource token");
            ErrorResponse::new(
                Condition::ServerFault,
                format!("cannot mint a resource token: {error}"),
            )
            .into_response()
        }
    }
}
