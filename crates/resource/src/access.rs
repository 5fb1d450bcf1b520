//! Deciding access: verify the signature, compare the level with what the
//! endpoint needs, check the scope, and answer every shortfall with its
//! P-ERR-1 row and `Agent-Auth` challenge (E§4, P-CH-2..4, P-ERR-1, P-ERR-4).
//!
//! Resource tokens are minted only from a [`VerifiedRequest`] that names an
//! agent, so a request whose signature failed can never receive one
//! (P-ERR-4), and a pseudonymous one is sent for an identity first (P-CH-3).

use aauth_http::server::{ErrorResponse, Rejected, unix_now};
use aauth_protocol::challenge::{AgentAuth, Level};
use aauth_protocol::error::{ChallengeKind, Condition};
use aauth_protocol::ids::{Origin, Scope};
use aauth_protocol::jwk::PublicKey;
use aauth_protocol::tokens::resource_token::ResourceTokenBuilder;
use aauth_protocol::verify::VerifiedRequest;
use axum::http::{HeaderMap, request::Parts};

use crate::AppState;

/// What an endpoint needs from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Any verified signature (`hwk` or better).
    Signed,
    /// An identified agent (E§4.2).
    Identified,
    /// An auth token granting `scope` (E§4.3, E§7.7 step 14).
    Authorized {
        /// The scope the operation needs.
        scope: &'static str,
    },
}

impl Requirement {
    /// The level it stands for (P-CH-2).
    pub fn level(self) -> Level {
        match self {
            Self::Signed => Level::Pseudonymous,
            Self::Identified => Level::Identified,
            Self::Authorized { .. } => Level::Authorized,
        }
    }
}

/// Whether the request carries any of the signature headers. A request with
/// none is unsigned; one with some is judged by its signature (P-ERR-1: a
/// present-but-invalid signature is never treated as unsigned).
pub fn is_signed(headers: &HeaderMap) -> bool {
    ["signature", "signature-input", "signature-key"]
        .iter()
        .any(|name| headers.contains_key(*name))
}

/// The error for a failed verification, with the challenge P-ERR-1's last
/// column names. A resource token only for an auth token that was genuine
/// but expired, on a request its key signed ("when the signature verified
/// with a trusted key"); never otherwise (P-ERR-4).
pub fn rejection(state: &AppState, rejected: Rejected, requirement: Requirement) -> ErrorResponse {
    let challenge = match rejected.condition.wire().challenge {
        ChallengeKind::None | ChallengeKind::UserInteraction => None,
        ChallengeKind::LevelRequired | ChallengeKind::NextLevel => {
            Some(AgentAuth::new(requirement.level()))
        }
        // An invalid auth token: ask for a (valid) auth token.
        ChallengeKind::AuthToken => Some(match (&rejected.expired_token_holder, requirement) {
            (Some(holder), Requirement::Authorized { scope }) => {
                auth_token_challenge_for(state, &holder.agent, &holder.key, scope)
            }
            _ => AgentAuth::new(Level::Authorized),
        }),
        ChallengeKind::Identity => Some(AgentAuth::identity()),
    };
    let error = rejected.into_error();
    match challenge {
        Some(challenge) => error.with_challenge(challenge),
        None => error,
    }
}

/// Verifies the request's signature; a failure is answered for an endpoint
/// needing `requirement`.
pub async fn verify(
    state: &AppState,
    parts: &Parts,
    body: &[u8],
    requirement: Requirement,
) -> Result<VerifiedRequest, ErrorResponse> {
    state
        .verifier()
        .verify(parts, body)
        .await
        .map_err(|rejected| rejection(state, rejected, requirement))
}

/// Verifies the request and checks it meets `requirement`.
pub async fn require(
    state: &AppState,
    parts: &Parts,
    body: &[u8],
    requirement: Requirement,
) -> Result<VerifiedRequest, ErrorResponse> {
    let verified = verify(state, parts, body, requirement).await?;
    check(state, &verified, requirement)?;
    Ok(verified)
}

/// The level and scope checks for a verified request.
pub fn check(
    state: &AppState,
    verified: &VerifiedRequest,
    requirement: Requirement,
) -> Result<(), ErrorResponse> {
    let level = verified.level();
    if !level.satisfies(requirement.level()) {
        let error = ErrorResponse::new(
            Condition::LevelTooLow,
            format!(
                "this endpoint needs the {} level; the request is {}",
                level_name(requirement.level()),
                level_name(level)
            ),
        );
        let challenge = match (requirement, level) {
            // P-CH-3: "A request signed only with hwk to an endpoint needing
            // authorization gets the identity challenge first (a resource
            // token needs an agent)".
            (_, Level::Pseudonymous) => AgentAuth::identity(),
            (Requirement::Authorized { scope }, _) => auth_token_challenge(state, verified, scope),
            (Requirement::Signed | Requirement::Identified, _) => {
                AgentAuth::new(requirement.level())
            }
        };
        return Err(error.with_challenge(challenge));
    }
    if let Requirement::Authorized { scope } = requirement {
        // E§7.7 step 14: "Verify the scope claim (if present) authorizes the
        // requested operation". No scope claim authorizes no operation.
        let granted = verified
            .auth_token()
            .and_then(|token| token.scope())
            .is_some_and(|granted| granted.contains(scope));
        if !granted {
            return Err(ErrorResponse::new(
                Condition::ScopeInsufficient,
                format!("the auth token does not grant the scope {scope}"),
            )
            .with_challenge(auth_token_challenge(state, verified, scope)));
        }
    }
    Ok(())
}

/// Mints a resource token for `scope`, bound to the verified agent and the
/// key that signed this request (P-TOK-3: `agent_jkt`). `None` when the
/// request names no agent (P-CH-4).
pub fn mint_resource_token(
    state: &AppState,
    verified: &VerifiedRequest,
    scope: Scope,
) -> Result<Option<String>, String> {
    let Some(agent) = verified.agent() else {
        return Ok(None);
    };
    mint_for(state, agent, verified.key(), scope).map(Some)
}

/// Mints a resource token for `scope`, for `agent` signing with `key`.
fn mint_for(
    state: &AppState,
    agent: &Origin,
    key: &PublicKey,
    scope: Scope,
) -> Result<String, String> {
    let settings = state.settings();
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let claims = ResourceTokenBuilder::new(
        settings.identifier.clone(),
        settings.auth_server.clone(),
        agent.clone(),
        key,
        scope,
    )
    .lifetime_secs(settings.resource_token_lifetime)
    .build(now)
    .map_err(|e| e.to_string())?;
    claims
        .sign(state.key(), state.kid())
        .map_err(|e| e.to_string())
}

/// `httpsig;auth-token;resource_token="…";auth_server="…"` for `scope`
/// (E§4.3). Without an agent (or if minting fails, which is logged) the
/// bare `httpsig;auth-token`.
pub fn auth_token_challenge(
    state: &AppState,
    verified: &VerifiedRequest,
    scope: &str,
) -> AgentAuth {
    match verified.agent() {
        Some(agent) => auth_token_challenge_for(state, agent, verified.key(), scope),
        None => AgentAuth::new(Level::Authorized),
    }
}

/// `httpsig;auth-token;resource_token="…";auth_server="…"` for `agent`
/// signing with `key`; the bare challenge if minting fails (logged).
fn auth_token_challenge_for(
    state: &AppState,
    agent: &Origin,
    key: &PublicKey,
    scope: &str,
) -> AgentAuth {
    let bare = AgentAuth::new(Level::Authorized);
    let scope = match Scope::parse(scope) {
        Ok(scope) => scope,
        Err(error) => {
            tracing::error!(%error, scope, "cannot express the scope");
            return bare;
        }
    };
    match mint_for(state, agent, key, scope) {
        Ok(token) => {
            AgentAuth::auth_token(&token, &state.settings().auth_server).unwrap_or_else(|error| {
                tracing::error!(%error, "cannot put the resource token in Agent-Auth");
                bare
            })
        }
        Err(error) => {
            tracing::error!(%error, "cannot mint a resource token");
            bare
        }
    }
}

/// The level's name in responses.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Pseudonymous => "pseudonymous",
        Level::Identified => "identified",
        Level::Authorized => "authorized",
    }
}
