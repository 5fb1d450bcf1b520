//! Error codes on the wire (D§11, E§12, RFC 6749 §5.2) and the one place that
//! decides, for every failure condition, the HTTP status, the code and whether
//! an `Agent-Auth` challenge goes with it (profile: P-ERR-1, P-ERR-2).
//!
//! Each concern (signature verification, token validation, …) has its own
//! error enum; each maps onto a [`Condition`] with an exhaustive `match`, and
//! [`Condition::wire`] maps every condition to the wire in one exhaustive
//! `match`. Adding a variant anywhere does not compile until someone decides
//! its code.

use std::fmt;

use serde::Serialize;

/// Most characters of peer-sent text an error description repeats (P-ERR-2:
/// descriptions name the failing check without echoing unbounded input).
pub const MAX_ECHO: usize = 64;

/// The first [`MAX_ECHO`] characters of `text`, for error descriptions.
pub fn echo(text: &str) -> String {
    text.chars().take(MAX_ECHO).collect()
}

/// An error code as sent in `{"error": …}`. An open registry (E§12.2
/// leaves codes "TBD"; D§11.2, RFC 6749 §5.2): a code we do not know is
/// kept as [`ErrorCode::Unknown`], never dropped (style §6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// D§11.2.1: the HTTP Message Signature is missing, malformed or failed.
    InvalidSignature,
    /// A `Nonce` already seen within the `created` window (P-SIG-6).
    ReplayedNonce,
    /// The signature verified but its level is below the endpoint's (P-CH-2).
    InsufficientAuthLevel,
    /// D§11.2.2: the agent token failed an E§5.7 step.
    InvalidAgentToken,
    /// D§11.2.3: the resource token failed an E§6.5 step.
    InvalidResourceToken,
    /// D§11.2.4: the auth token failed an E§7.7 step.
    InvalidAuthToken,
    /// D§11.2.5: the signing key is not the token's `cnf.jwk`.
    KeyBindingFailed,
    /// The auth token lacks a scope the operation needs.
    InsufficientScope,
    /// The rate limit of the current level is exceeded (E§4.5).
    RateLimited,
    /// The user must interact (E§9.9, P-UI-1; or an exchange that needs consent).
    InteractionRequired,
    /// RFC 6749 §5.2: malformed request.
    InvalidRequest,
    /// RFC 6749 §5.2: bad code, refresh token or upstream token.
    InvalidGrant,
    /// The upstream token's issuer is not trusted (P-AS-7).
    UntrustedIssuer,
    /// RFC 6749 §5.2: scope not allowed.
    InvalidScope,
    /// Unknown `request_type` (E§9.11).
    UnsupportedRequestType,
    /// RFC 6749 §4.1.2.1: the user denied consent.
    AccessDenied,
    /// RFC 6749 §4.1.2.1: the server itself failed (its database, its
    /// randomness), or a peer it called on the caller's behalf did; never a
    /// consequence of what the caller sent.
    ServerError,
    /// RFC 6749 §4.1.2.1: the server cannot handle the request now (its
    /// replay cache is full, or a peer it called did not answer in time);
    /// the same request may succeed later.
    TemporarilyUnavailable,
    /// A code a peer sent that this crate does not know, as received.
    Unknown(String),
}

impl ErrorCode {
    /// Every code this crate knows, for tests and documentation.
    pub const ALL: [Self; 18] = [
        Self::InvalidSignature,
        Self::ReplayedNonce,
        Self::InsufficientAuthLevel,
        Self::InvalidAgentToken,
        Self::InvalidResourceToken,
        Self::InvalidAuthToken,
        Self::KeyBindingFailed,
        Self::InsufficientScope,
        Self::RateLimited,
        Self::InteractionRequired,
        Self::InvalidRequest,
        Self::InvalidGrant,
        Self::UntrustedIssuer,
        Self::InvalidScope,
        Self::UnsupportedRequestType,
        Self::AccessDenied,
        Self::ServerError,
        Self::TemporarilyUnavailable,
    ];

    /// The code's wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidSignature => "invalid_signature",
            Self::ReplayedNonce => "replayed_nonce",
            Self::InsufficientAuthLevel => "insufficient_auth_level",
            Self::InvalidAgentToken => "invalid_agent_token",
            Self::InvalidResourceToken => "invalid_resource_token",
            Self::InvalidAuthToken => "invalid_auth_token",
            Self::KeyBindingFailed => "key_binding_failed",
            Self::InsufficientScope => "insufficient_scope",
            Self::RateLimited => "rate_limited",
            Self::InteractionRequired => "interaction_required",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidGrant => "invalid_grant",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedRequestType => "unsupported_request_type",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::Unknown(code) => code,
        }
    }

    /// Reads a wire spelling (for clients reading error bodies): a code this
    /// crate does not know is [`ErrorCode::Unknown`].
    pub fn from_wire(text: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .unwrap_or_else(|| Self::Unknown(text.to_owned()))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Which `Agent-Auth` challenge accompanies an error response (P-ERR-1's
/// last column). The HTTP layer fills in the parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// No `Agent-Auth` header.
    None,
    /// The level the endpoint requires (P-CH-4).
    LevelRequired,
    /// `auth-token`, with a fresh resource token when P-CH-4 allows.
    AuthToken,
    /// The next level up (429 with `Retry-After`).
    NextLevel,
    /// `user_interaction="…"`.
    UserInteraction,
    /// `httpsig; identity=?1` (the auth server's caller is not identified).
    Identity,
}

/// Every failure condition of P-ERR-1, one per row of its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    /// Signature missing, malformed, stale, failing, wrong authority, missing
    /// required component or missing required `Nonce`.
    SignatureInvalid,
    /// A replayed `Nonce`.
    NonceReplayed,
    /// Valid signature at too low a level (the normal step-up).
    LevelTooLow,
    /// The agent token failed an E§5.7 step (incl. key fetch failure).
    AgentTokenInvalid,
    /// The auth token failed an E§7.7 step.
    AuthTokenInvalid,
    /// The HTTP signature key is not the token's `cnf.jwk`.
    KeyBindingFailed,
    /// The auth token lacks the scope.
    ScopeInsufficient,
    /// The current level's rate limit is exceeded.
    RateLimited,
    /// The user must interact at a resource (P-UI-1).
    InteractionRequired,
    /// Malformed form body or parameters.
    MalformedRequest,
    /// Body over the endpoint's limit.
    BodyTooLarge,
    /// The request did not arrive in full within the server's time limit.
    RequestTimeout,
    /// Auth server: bad resource token (incl. `agent`/`agent_jkt` mismatch).
    ResourceTokenInvalid,
    /// Auth server: bad, used or foreign code; bad refresh or upstream token; depth exceeded.
    GrantInvalid,
    /// Auth server: upstream issuer not in `trusted_issuers`.
    IssuerUntrusted,
    /// Auth server: scope not allowed.
    ScopeNotAllowed,
    /// Auth server: unknown `request_type`.
    RequestTypeUnsupported,
    /// Auth server: an exchange would need the user's consent.
    ExchangeNeedsInteraction,
    /// The user denied consent (sent on the redirect, not as a JSON body).
    ConsentDenied,
    /// The server failed on its own (storage, randomness, signing): logged
    /// with its detail, answered without it. Not in P-ERR-1's table, which
    /// lists what callers cause; P-ERR-2's "no input yields a 500" holds
    /// because no input reaches this row.
    ServerFault,
    /// The `Nonce` replay cache cannot remember one more entry (it is full,
    /// or the client's share is): the request is refused rather than
    /// accepted unremembered (P-SIG-6). Sent with `Retry-After`.
    ReplayCacheFull,
    /// The server holds as many connections as it may: a new one is
    /// answered this and closed. Sent with `Retry-After`.
    TooManyConnections,
    /// A peer the server called on the caller's behalf (a downstream
    /// resource or its auth server) failed or refused: a bad gateway.
    UpstreamFailed,
    /// A peer the server called on the caller's behalf did not answer in time.
    UpstreamTimeout,
}

/// How a [`Condition`] appears on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    /// HTTP status code.
    pub status: u16,
    /// The `error` member.
    pub code: ErrorCode,
    /// Which `Agent-Auth` challenge goes with it.
    pub challenge: ChallengeKind,
}

impl Wire {
    /// The same status and code with another challenge. P-ERR-1's row "AS:
    /// caller not identified / bad caller signature" is this: the auth
    /// server's token endpoint answers a caller's failure with the code of
    /// the signature row it falls in, and always `httpsig; identity=?1`.
    #[must_use]
    pub fn with_challenge(self, challenge: ChallengeKind) -> Self {
        Self { challenge, ..self }
    }
}

impl Condition {
    /// The P-ERR-1 table, row by row.
    pub fn wire(self) -> Wire {
        use ChallengeKind as C;
        use ErrorCode as E;
        let (status, code, challenge) = match self {
            Self::SignatureInvalid => (401, E::InvalidSignature, C::LevelRequired),
            Self::NonceReplayed => (401, E::ReplayedNonce, C::LevelRequired),
            Self::LevelTooLow => (401, E::InsufficientAuthLevel, C::LevelRequired),
            Self::AgentTokenInvalid => (401, E::InvalidAgentToken, C::LevelRequired),
            Self::AuthTokenInvalid => (401, E::InvalidAuthToken, C::AuthToken),
            Self::KeyBindingFailed => (401, E::KeyBindingFailed, C::LevelRequired),
            Self::ScopeInsufficient => (403, E::InsufficientScope, C::AuthToken),
            Self::RateLimited => (429, E::RateLimited, C::NextLevel),
            Self::InteractionRequired => (401, E::InteractionRequired, C::UserInteraction),
            Self::MalformedRequest => (400, E::InvalidRequest, C::None),
            Self::BodyTooLarge => (413, E::InvalidRequest, C::None),
            Self::RequestTimeout => (408, E::InvalidRequest, C::None),
            Self::ResourceTokenInvalid => (400, E::InvalidResourceToken, C::None),
            Self::GrantInvalid => (400, E::InvalidGrant, C::None),
            Self::IssuerUntrusted => (400, E::UntrustedIssuer, C::None),
            Self::ScopeNotAllowed => (400, E::InvalidScope, C::None),
            Self::RequestTypeUnsupported => (400, E::UnsupportedRequestType, C::None),
            Self::ExchangeNeedsInteraction => (400, E::InteractionRequired, C::None),
            Self::ConsentDenied => (303, E::AccessDenied, C::None),
            Self::ServerFault => (500, E::ServerError, C::None),
            Self::ReplayCacheFull => (503, E::TemporarilyUnavailable, C::None),
            Self::TooManyConnections => (503, E::TemporarilyUnavailable, C::None),
            Self::UpstreamFailed => (502, E::ServerError, C::None),
            Self::UpstreamTimeout => (504, E::TemporarilyUnavailable, C::None),
        };
        Wire {
            status,
            code,
            challenge,
        }
    }
}

/// The JSON error body (D§11.1, RFC 6749 §5.2), plus `required_components`
/// (D§11.2.1) and, in dev mode only, the computed `signature_base` (P-ERR-3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// The code.
    pub error: ErrorCode,
    /// What failed, written for the caller (never secrets or internals).
    pub error_description: String,
    /// The components the signature must cover, when some were missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_components: Option<Vec<String>>,
    /// The signature base the verifier computed (dev mode diagnostics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_base: Option<String>,
}

impl ErrorBody {
    /// A body with just a code and a description.
    pub fn new(error: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: description.into(),
            required_components: None,
            signature_base: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_its_spelling() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), code);
        }
        // A peer's new code is kept, not dropped.
        let new = ErrorCode::from_wire("slow_down");
        assert_eq!(new, ErrorCode::Unknown("slow_down".to_owned()));
        assert_eq!(new.as_str(), "slow_down");
        assert_eq!(serde_json::to_string(&new).unwrap(), "\"slow_down\"");
    }

    /// profile: P-ERR-1 — one assertion per row of the table.
    #[test]
    fn p_err_1_table() {
        use ChallengeKind as C;
        use Condition as K;
        use ErrorCode as E;
        let rows = [
            (
                K::SignatureInvalid,
                401,
                E::InvalidSignature,
                C::LevelRequired,
            ),
            (K::NonceReplayed, 401, E::ReplayedNonce, C::LevelRequired),
            (
                K::LevelTooLow,
                401,
                E::InsufficientAuthLevel,
                C::LevelRequired,
            ),
            (
                K::AgentTokenInvalid,
                401,
                E::InvalidAgentToken,
                C::LevelRequired,
            ),
            (K::AuthTokenInvalid, 401, E::InvalidAuthToken, C::AuthToken),
            (
                K::KeyBindingFailed,
                401,
                E::KeyBindingFailed,
                C::LevelRequired,
            ),
            (
                K::ScopeInsufficient,
                403,
                E::InsufficientScope,
                C::AuthToken,
            ),
            (K::RateLimited, 429, E::RateLimited, C::NextLevel),
            (
                K::InteractionRequired,
                401,
                E::InteractionRequired,
                C::UserInteraction,
            ),
            (K::MalformedRequest, 400, E::InvalidRequest, C::None),
            (K::BodyTooLarge, 413, E::InvalidRequest, C::None),
            (K::RequestTimeout, 408, E::InvalidRequest, C::None),
            (
                K::ResourceTokenInvalid,
                400,
                E::InvalidResourceToken,
                C::None,
            ),
            (K::GrantInvalid, 400, E::InvalidGrant, C::None),
            (K::IssuerUntrusted, 400, E::UntrustedIssuer, C::None),
            (K::ScopeNotAllowed, 400, E::InvalidScope, C::None),
            (
                K::RequestTypeUnsupported,
                400,
                E::UnsupportedRequestType,
                C::None,
            ),
            (
                K::ExchangeNeedsInteraction,
                400,
                E::InteractionRequired,
                C::None,
            ),
            (K::ConsentDenied, 303, E::AccessDenied, C::None),
            (K::ServerFault, 500, E::ServerError, C::None),
            (K::ReplayCacheFull, 503, E::TemporarilyUnavailable, C::None),
            (
                K::TooManyConnections,
                503,
                E::TemporarilyUnavailable,
                C::None,
            ),
            (K::UpstreamFailed, 502, E::ServerError, C::None),
            (K::UpstreamTimeout, 504, E::TemporarilyUnavailable, C::None),
        ];
        for (condition, status, code, challenge) in rows {
            assert_eq!(
                condition.wire(),
                Wire {
                    status,
                    code,
                    challenge
                },
                "{condition:?}"
            );
        }
    }

    /// profile: P-ERR-1, row "AS: caller not identified / bad caller
    /// signature": the code of the signature row, with the identity challenge.
    #[test]
    fn token_endpoint_caller_errors_keep_their_code_with_the_identity_challenge() {
        for (condition, code) in [
            (Condition::SignatureInvalid, ErrorCode::InvalidSignature),
            (Condition::LevelTooLow, ErrorCode::InsufficientAuthLevel),
            (Condition::NonceReplayed, ErrorCode::ReplayedNonce),
            (Condition::AgentTokenInvalid, ErrorCode::InvalidAgentToken),
            (Condition::KeyBindingFailed, ErrorCode::KeyBindingFailed),
        ] {
            let wire = condition.wire().with_challenge(ChallengeKind::Identity);
            assert_eq!(
                wire,
                Wire {
                    status: 401,
                    code,
                    challenge: ChallengeKind::Identity
                }
            );
        }
    }

    #[test]
    fn body_omits_absent_members() {
        let body = ErrorBody::new(ErrorCode::InvalidRequest, "missing redirect_uri");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"invalid_request","error_description":"missing redirect_uri"}"#
        );
    }
}
