//! A request to an auth server's token endpoint (E§9.3, E§9.6, E§9.7,
//! E§9.10 as fixed by P-AS-7): the form body, read into one typed value per
//! `request_type`, and written back.
//!
//! ```text
//! request_type=auth      resource_token | scope | auth_request_url (one), [redirect_uri],
//!                        [upstream_token] (a resource asking while it serves a caller)
//! request_type=code      code, [redirect_uri]
//! request_type=refresh   refresh_token
//! request_type=exchange  resource_token, upstream_token (no scope, no auth_request_url)
//! ```
//!
//! Reading is strict where a mistake would change the meaning: a parameter
//! this module knows may appear once, and each request type needs its own.
//! Parameters it does not know are ignored, as form bodies are extensible.
//! What the auth server does with a well-formed request (its policy, its
//! refusal of `auth_request_url` under P-TOK-7) is its own business.

use crate::error::Condition;
use crate::ids::Scope;
use crate::secret::{AuthorizationCode, RefreshToken, RequestToken, SignedToken};

/// What `request_type=auth` asks for (E§9.3): exactly one of three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthTarget {
    /// Access to a resource, as its resource token describes (E§9.3).
    ResourceToken(String),
    /// Access to the agent itself, at `scope` (E§9.4).
    Scope(Scope),
    /// A request described by a document at this URL (E§11; P-TOK-7: this
    /// profile's auth server refuses it).
    AuthRequestUrl(String),
}

/// One request to the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    /// `request_type=auth` (E§9.3): an auth token, or a request token when
    /// the user must consent (then `redirect_uri` is needed, P-AS-2).
    Auth {
        /// What is asked for.
        target: AuthTarget,
        /// Where the user's browser returns (E§9.5).
        redirect_uri: Option<String>,
        /// The auth token of the caller a resource serves while it asks for
        /// a grant of its own with the user (P-UI-2): an extension of this
        /// profile, so that the consent page can name that caller. Peers
        /// ignore it.
        upstream_token: Option<SignedToken>,
    },
    /// `request_type=code` (E§9.6): the code from the consent redirect.
    Code {
        /// The authorization code.
        code: AuthorizationCode,
        /// The redirect URI the request token was bound to (P-AS-5).
        redirect_uri: Option<String>,
    },
    /// `request_type=refresh` (E§9.7).
    Refresh {
        /// The grant's refresh token (P-AS-6).
        refresh_token: RefreshToken,
    },
    /// `request_type=exchange` (E§9.10, P-AS-7): a resource trades the auth
    /// token it received for one at a downstream resource.
    Exchange {
        /// The downstream resource's resource token.
        resource_token: String,
        /// The auth token the caller received (P-AS-7: in the form).
        upstream_token: SignedToken,
    },
}

/// Why a form is not a token request. Each is a row of the P-ERR-1 table
/// ([`TokenRequestError::condition`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRequestError {
    /// A parameter this module reads appears more than once.
    #[error("malformed form body: the parameter {0} appears more than once")]
    Repeated(&'static str),
    /// No `request_type`.
    #[error("request_type is required (E§9.3)")]
    MissingRequestType,
    /// A `request_type` this auth server does not serve.
    #[error("request_type {0:?} is not supported here; supported: auth, code, refresh, exchange")]
    UnsupportedRequestType(String),
    /// `auth` with none, or more than one, of its three targets.
    #[error("request_type=auth needs exactly one of resource_token or scope (E§9.3)")]
    AuthTarget,
    /// `scope` is not a scope.
    #[error("scope: {0}")]
    Scope(String),
    /// A parameter the request type needs is absent.
    #[error("{0} is required ({1})")]
    Missing(&'static str, &'static str),
    /// `exchange` with a scope of its own.
    #[error(
        "request_type=exchange takes its scope from the resource token; \
         scope and auth_request_url are not accepted (E§9.10)"
    )]
    ExchangeScope,
}

impl TokenRequestError {
    /// The P-ERR-1 row: an unknown `request_type` is
    /// `unsupported_request_type`, anything else `invalid_request`.
    pub fn condition(&self) -> Condition {
        match self {
            Self::UnsupportedRequestType(_) => Condition::RequestTypeUnsupported,
            _ => Condition::MalformedRequest,
        }
    }
}

/// The parameters this module reads, in the order they are written.
const KNOWN: [&str; 8] = [
    "request_type",
    "resource_token",
    "scope",
    "auth_request_url",
    "redirect_uri",
    "code",
    "refresh_token",
    "upstream_token",
];

/// Longest `request_type` echoed in an error.
const ECHO: usize = 64;

impl TokenRequest {
    /// Reads an `application/x-www-form-urlencoded` body (the caller checks
    /// the media type and bounds the size: P-AS-1, 64 KiB).
    pub fn from_form(body: &[u8]) -> Result<Self, TokenRequestError> {
        let mut values: [Option<String>; KNOWN.len()] = Default::default();
        for (name, value) in form_urlencoded::parse(body) {
            let Some(i) = KNOWN.iter().position(|k| *k == name) else {
                continue;
            };
            let (Some(known), Some(slot)) = (KNOWN.get(i), values.get_mut(i)) else {
                continue;
            };
            if slot.is_some() {
                return Err(TokenRequestError::Repeated(known));
            }
            *slot = Some(value.into_owned());
        }
        let [
            request_type,
            resource_token,
            scope,
            auth_request_url,
            redirect_uri,
            code,
            refresh_token,
            upstream_token,
        ] = values;
        let missing = TokenRequestError::Missing;
        match request_type.as_deref() {
            None => Err(TokenRequestError::MissingRequestType),
            Some("auth") => {
                let target = match (resource_token, scope, auth_request_url) {
                    (Some(token), None, None) => AuthTarget::ResourceToken(token),
                    (None, Some(scope), None) => AuthTarget::Scope(
                        Scope::parse(&scope)
                            .map_err(|e| TokenRequestError::Scope(e.to_string()))?,
                    ),
                    (None, None, Some(url)) => AuthTarget::AuthRequestUrl(url),
                    _ => return Err(TokenRequestError::AuthTarget),
                };
                Ok(Self::Auth {
                    target,
                    redirect_uri,
                    upstream_token: upstream_token.map(SignedToken::new),
                })
            }
            Some("code") => Ok(Self::Code {
                code: AuthorizationCode::new(code.ok_or(missing("code", "E§9.6"))?),
                redirect_uri,
            }),
            Some("refresh") => Ok(Self::Refresh {
                refresh_token: RefreshToken::new(
                    refresh_token.ok_or(missing("refresh_token", "E§9.7"))?,
                ),
            }),
            Some("exchange") => {
                if scope.is_some() || auth_request_url.is_some() {
                    return Err(TokenRequestError::ExchangeScope);
                }
                Ok(Self::Exchange {
                    resource_token: resource_token.ok_or(missing("resource_token", "E§9.10"))?,
                    upstream_token: SignedToken::new(upstream_token.ok_or(missing(
                        "upstream_token",
                        "the auth token this caller received, profile P-AS-7",
                    ))?),
                })
            }
            Some(other) => Err(TokenRequestError::UnsupportedRequestType(
                other.chars().take(ECHO).collect(),
            )),
        }
    }

    /// The `request_type` of this request.
    pub fn request_type(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "auth",
            Self::Code { .. } => "code",
            Self::Refresh { .. } => "refresh",
            Self::Exchange { .. } => "exchange",
        }
    }

    /// The form body, `request_type` first.
    pub fn to_form(&self) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("request_type", self.request_type());
        match self {
            Self::Auth {
                target,
                redirect_uri,
                upstream_token,
            } => {
                match target {
                    AuthTarget::ResourceToken(token) => form.append_pair("resource_token", token),
                    AuthTarget::Scope(scope) => form.append_pair("scope", &scope.to_string()),
                    AuthTarget::AuthRequestUrl(url) => form.append_pair("auth_request_url", url),
                };
                if let Some(uri) = redirect_uri {
                    form.append_pair("redirect_uri", uri);
                }
                if let Some(token) = upstream_token {
                    form.append_pair("upstream_token", token.expose());
                }
            }
            Self::Code { code, redirect_uri } => {
                form.append_pair("code", code.expose());
                if let Some(uri) = redirect_uri {
                    form.append_pair("redirect_uri", uri);
                }
            }
            Self::Refresh { refresh_token } => {
                form.append_pair("refresh_token", refresh_token.expose());
            }
            Self::Exchange {
                resource_token,
                upstream_token,
            } => {
                form.append_pair("resource_token", resource_token);
                form.append_pair("upstream_token", upstream_token.expose());
            }
        }
        form.finish()
    }
}

/// The token endpoint's 200 answer (E§9.4, E§9.6, E§9.7, E§9.10): an auth
/// token, or a request token when the user must consent first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenResponse {
    /// An auth token (a direct grant, a redeemed code, a refresh or an
    /// exchange).
    Granted {
        /// The auth token (E§7).
        auth_token: SignedToken,
        /// Its lifetime in seconds (E§9.4); a peer may leave it out.
        expires_in: Option<u64>,
        /// The grant's refresh token, when the server gives one (E§9.7).
        refresh_token: Option<RefreshToken>,
    },
    /// The user must consent: the request token opens the consent page
    /// (E§9.4, E§9.5).
    Pending {
        /// The request token (P-AS-3).
        request_token: RequestToken,
        /// Its lifetime in seconds.
        expires_in: Option<u64>,
    },
}

/// Why a token endpoint's answer is not a [`TokenResponse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenResponseError {
    /// Not a JSON object with the members' types.
    #[error("the answer is not a token response: {0}")]
    Json(String),
    /// Neither `auth_token` nor `request_token`, or both.
    #[error("a token response has exactly one of auth_token and request_token (E§9.4)")]
    Kind,
}

#[derive(serde::Deserialize, serde::Serialize)]
struct ResponseWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_token: Option<SignedToken>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_token: Option<RequestToken>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<RefreshToken>,
}

impl TokenResponse {
    /// Reads the JSON body of a 200 answer; members it does not know are
    /// ignored.
    pub fn from_json(body: &[u8]) -> Result<Self, TokenResponseError> {
        let wire: ResponseWire =
            serde_json::from_slice(body).map_err(|e| TokenResponseError::Json(e.to_string()))?;
        match (wire.auth_token, wire.request_token) {
            (Some(auth_token), None) => Ok(Self::Granted {
                auth_token,
                expires_in: wire.expires_in,
                refresh_token: wire.refresh_token,
            }),
            (None, Some(request_token)) => Ok(Self::Pending {
                request_token,
                expires_in: wire.expires_in,
            }),
            _ => Err(TokenResponseError::Kind),
        }
    }

    /// The JSON body (what an auth server answers).
    pub fn to_json(&self) -> serde_json::Value {
        let wire = match self.clone() {
            Self::Granted {
                auth_token,
                expires_in,
                refresh_token,
            } => ResponseWire {
                auth_token: Some(auth_token),
                request_token: None,
                expires_in,
                refresh_token,
            },
            Self::Pending {
                request_token,
                expires_in,
            } => ResponseWire {
                auth_token: None,
                request_token: Some(request_token),
                expires_in,
                refresh_token: None,
            },
        };
        serde_json::to_value(wire).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn read(body: &str) -> Result<TokenRequest, TokenRequestError> {
        TokenRequest::from_form(body.as_bytes())
    }

    #[test]
    fn each_request_type_reads_its_parameters() {
        assert_eq!(
            read("request_type=auth&resource_token=rt&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb"),
            Ok(TokenRequest::Auth {
                target: AuthTarget::ResourceToken("rt".into()),
                redirect_uri: Some("http://127.0.0.1/cb".into()),
                upstream_token: None,
            })
        );
        assert_eq!(
            read("request_type=auth&scope=openid+profile"),
            Ok(TokenRequest::Auth {
                target: AuthTarget::Scope(Scope::parse("openid profile").unwrap()),
                redirect_uri: None,
                upstream_token: None,
            })
        );
        // A resource asking with the user while it serves a caller.
        assert_eq!(
            read("request_type=auth&resource_token=rt&redirect_uri=r&upstream_token=u.p.t"),
            Ok(TokenRequest::Auth {
                target: AuthTarget::ResourceToken("rt".into()),
                redirect_uri: Some("r".into()),
                upstream_token: Some(SignedToken::new("u.p.t")),
            })
        );
        assert_eq!(
            read("request_type=code&code=c&redirect_uri=r"),
            Ok(TokenRequest::Code {
                code: AuthorizationCode::new("c"),
                redirect_uri: Some("r".into()),
            })
        );
        assert_eq!(
            read("request_type=refresh&refresh_token=x&unknown=ignored"),
            Ok(TokenRequest::Refresh {
                refresh_token: RefreshToken::new("x"),
            })
        );
        assert_eq!(
            read("request_type=exchange&resource_token=a&upstream_token=b"),
            Ok(TokenRequest::Exchange {
                resource_token: "a".into(),
                upstream_token: SignedToken::new("b"),
            })
        );
    }

    #[test]
    fn each_refusal_is_its_row_of_the_error_table() {
        for (body, expected, code) in [
            (
                "",
                TokenRequestError::MissingRequestType,
                ErrorCode::InvalidRequest,
            ),
            (
                "request_type=magic",
                TokenRequestError::UnsupportedRequestType("magic".into()),
                ErrorCode::UnsupportedRequestType,
            ),
            (
                "request_type=auth",
                TokenRequestError::AuthTarget,
                ErrorCode::InvalidRequest,
            ),
            (
                "request_type=auth&scope=a&resource_token=b",
                TokenRequestError::AuthTarget,
                ErrorCode::InvalidRequest,
            ),
            (
                "request_type=code",
                TokenRequestError::Missing("code", "E§9.6"),
                ErrorCode::InvalidRequest,
            ),
            (
                "request_type=code&code=a&code=b",
                TokenRequestError::Repeated("code"),
                ErrorCode::InvalidRequest,
            ),
            (
                "request_type=auth&request_type=refresh&scope=a",
                TokenRequestError::Repeated("request_type"),
                ErrorCode::InvalidRequest,
            ),
            (
                "request_type=exchange&resource_token=a&upstream_token=b&scope=c",
                TokenRequestError::ExchangeScope,
                ErrorCode::InvalidRequest,
            ),
        ] {
            let error = read(body).unwrap_err();
            assert_eq!(error, expected, "{body}");
            assert_eq!(error.condition().wire().code, code, "{body}");
        }
        assert!(matches!(
            read("request_type=auth&scope=%00"),
            Err(TokenRequestError::Scope(_))
        ));
    }

    #[test]
    fn a_long_unknown_request_type_is_echoed_cut() {
        let body = format!("request_type={}", "x".repeat(1000));
        let Err(TokenRequestError::UnsupportedRequestType(echo)) = read(&body) else {
            panic!("refused");
        };
        assert_eq!(echo.len(), ECHO);
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        for request in [
            TokenRequest::Auth {
                target: AuthTarget::ResourceToken("a.b.c".into()),
                redirect_uri: Some("http://127.0.0.1:8080/callback?x=1&y=2".into()),
                upstream_token: Some(SignedToken::new("u.p.t")),
            },
            TokenRequest::Auth {
                target: AuthTarget::Scope(Scope::parse("data.read data.write").unwrap()),
                redirect_uri: None,
                upstream_token: None,
            },
            TokenRequest::Auth {
                target: AuthTarget::AuthRequestUrl("https://r.example/req?a=b".into()),
                redirect_uri: None,
                upstream_token: None,
            },
            TokenRequest::Code {
                code: AuthorizationCode::new("c+d/e="),
                redirect_uri: None,
            },
            TokenRequest::Refresh {
                refresh_token: RefreshToken::new("r&t"),
            },
            TokenRequest::Exchange {
                resource_token: "x".into(),
                upstream_token: SignedToken::new("y"),
            },
        ] {
            let form = request.to_form();
            assert!(form.starts_with("request_type="), "{form}");
            assert_eq!(read(&form), Ok(request), "{form}");
        }
    }

    #[test]
    fn a_token_response_is_a_grant_or_a_pending_request_and_reads_back() {
        let granted = TokenResponse::Granted {
            auth_token: SignedToken::new("h.p.s"),
            expires_in: Some(600),
            refresh_token: Some(RefreshToken::new("r")),
        };
        let pending = TokenResponse::Pending {
            request_token: RequestToken::new("q"),
            expires_in: Some(600),
        };
        for response in [granted, pending] {
            let json = response.to_json().to_string();
            assert_eq!(
                TokenResponse::from_json(json.as_bytes()),
                Ok(response),
                "{json}"
            );
        }
        assert_eq!(
            TokenResponse::from_json(br#"{"auth_token":"a.b.c","future":1}"#),
            Ok(TokenResponse::Granted {
                auth_token: SignedToken::new("a.b.c"),
                expires_in: None,
                refresh_token: None,
            })
        );
        for bad in [
            &br#"{}"#[..],
            br#"{"auth_token":"a","request_token":"b"}"#,
            br#"{"auth_token":5}"#,
            b"[]",
            b"not json",
        ] {
            assert!(TokenResponse::from_json(bad).is_err(), "{bad:?}");
        }
        // Debug never shows a refresh or request token.
        let debug = format!(
            "{:?}",
            TokenResponse::Pending {
                request_token: RequestToken::new("secret-q"),
                expires_in: None
            }
        );
        assert!(!debug.contains("secret-q"), "{debug}");
    }

    #[test]
    fn debug_never_shows_a_code_or_refresh_token() {
        let request = TokenRequest::Refresh {
            refresh_token: RefreshToken::new("very-secret"),
        };
        assert!(!format!("{request:?}").contains("very-secret"));
    }
}
