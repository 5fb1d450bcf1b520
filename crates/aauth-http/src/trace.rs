//! What a client's trace (the CLI's `--verbose`) shows of each exchange:
//! method, URL, headers and body, with every credential redacted by kind.
//!
//! * Opaque credentials — refresh tokens, request tokens, codes, passwords,
//!   CSRF tokens, cookies — are `[redacted]` wherever they are named: form
//!   fields, JSON members, URL query parameters, `Authorization` and cookie
//!   headers.
//! * A JWT anywhere (in `Signature-Key`, an `Agent-Auth` challenge, a form
//!   or a JSON answer) is shown as its decoded header and claims, never its
//!   signature ([`aauth_protocol::secret::jwt_view`]): a reader can follow
//!   the flow, and nothing printed can be presented again.

use std::borrow::Cow;

use aauth_protocol::secret::{JwtView, jwt_view};
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;
use url::Url;

/// How much of a body the trace shows, once redacted.
pub const TRACE_BODY_PREVIEW: usize = 2048;

/// Names whose values are opaque credentials, in forms, JSON and queries.
const OPAQUE: [&str; 6] = [
    "refresh_token",
    "request_token",
    "code",
    "password",
    "csrf_token",
    "session",
];

/// Headers whose values are credentials whatever they hold.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
];

/// What replaces a credential.
const REDACTED: &str = "[redacted]";

/// One side of an exchange, for [`Trace`].
#[derive(Debug)]
pub enum Exchange<'a> {
    /// A request about to be sent.
    Request {
        /// Method.
        method: &'a Method,
        /// URL.
        url: &'a Url,
        /// Every header sent.
        headers: &'a HeaderMap,
        /// The body.
        body: &'a [u8],
    },
    /// The response received.
    Response {
        /// URL it answers.
        url: &'a Url,
        /// Status.
        status: StatusCode,
        /// Every header received.
        headers: &'a HeaderMap,
        /// The body.
        body: &'a [u8],
    },
}

/// A hook that sees every request and response (`--verbose`). It sees them
/// whole, credentials included: print them with [`render`].
pub trait Trace: Send + Sync {
    /// Called before a request is sent and after its response is read.
    fn exchange(&self, exchange: &Exchange<'_>);
}

/// Prints each exchange, as [`render`] writes it, to standard error.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrTrace;

impl Trace for StderrTrace {
    fn exchange(&self, exchange: &Exchange<'_>) {
        eprint!("{}", render(exchange));
    }
}

/// The exchange as text: a first line (`> METHOD URL` or `< STATUS (URL)`),
/// every header, and the first [`TRACE_BODY_PREVIEW`] bytes of the body,
/// each with its credentials redacted (module docs).
pub fn render(exchange: &Exchange<'_>) -> String {
    let (arrow, first, headers, body) = match exchange {
        Exchange::Request {
            method,
            url,
            headers,
            body,
        } => ('>', format!("{method} {}", url_shown(url)), headers, body),
        Exchange::Response {
            url,
            status,
            headers,
            body,
        } => ('<', format!("{status} ({})", url_shown(url)), headers, body),
    };
    let mut out = format!("{arrow} {first}\n");
    for (name, value) in headers.iter() {
        let value = String::from_utf8_lossy(value.as_bytes());
        let shown = if SECRET_HEADERS.contains(&name.as_str()) {
            REDACTED.to_owned()
        } else if name == http::header::LOCATION {
            Url::parse(&value).map_or_else(|_| jwts_shown(&value), |url| url_shown(&url))
        } else {
            jwts_shown(&value)
        };
        out.push_str(&format!("{arrow} {name}: {shown}\n"));
    }
    if !body.is_empty() {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let shown = body_shown(content_type, body);
        let preview = shown
            .char_indices()
            .nth(TRACE_BODY_PREVIEW)
            .map_or(shown.as_str(), |(end, _)| shown.get(..end).unwrap_or(""));
        out.push_str(&format!("{arrow}\n{arrow} {preview}"));
        if preview.len() < shown.len() {
            out.push_str(&format!(" … ({} bytes in all)", body.len()));
        }
        out.push('\n');
    }
    out
}

/// A URL with its opaque query parameters redacted.
fn url_shown(url: &Url) -> String {
    if url.query().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let pairs: Vec<(String, String)> = url.query_pairs().map(pair_shown).collect();
    shown.query_pairs_mut().clear().extend_pairs(pairs);
    shown.to_string()
}

/// A query or form pair as shown: an opaque credential redacted, JWTs decoded.
fn pair_shown((name, value): (Cow<'_, str>, Cow<'_, str>)) -> (String, String) {
    let value = if OPAQUE.contains(&name.as_ref()) {
        REDACTED.to_owned()
    } else {
        jwts_shown(&value)
    };
    (name.into_owned(), value)
}

/// The body as text: a form or JSON with its credentials redacted, other
/// text with its JWTs shown decoded.
fn body_shown(content_type: &str, body: &[u8]) -> String {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(body).map(pair_shown).collect();
        return pairs
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&");
    }
    if let Ok(mut json) = serde_json::from_slice::<Value>(body) {
        redact_json(&mut json);
        return json.to_string();
    }
    jwts_shown(&String::from_utf8_lossy(body))
}

/// Redacts opaque members and decodes JWT strings, at any depth.
fn redact_json(value: &mut Value) {
    match value {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                if OPAQUE.contains(&name.as_str()) {
                    *member = Value::from(REDACTED);
                } else {
                    redact_json(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::String(text) => {
            if let Some(view) = jwt_view(text) {
                *value = view_json(view);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn view_json(view: JwtView) -> Value {
    serde_json::json!({
        "header": view.header,
        "claims": view.claims,
        "signature": REDACTED,
    })
}

/// `text` with each JWT in it replaced by `<jwt header {…} claims {…}
/// signature [redacted]>`. A JWT is a run of base64url characters and dots
/// that [`jwt_view`] reads.
fn jwts_shown(text: &str) -> String {
    let is_jwt_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_jwt_char) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let end = from.find(|c: char| !is_jwt_char(c)).unwrap_or(from.len());
        let (run, after) = from.split_at(end);
        match jwt_view(run) {
            Some(view) => out.push_str(&format!("<jwt {view}>")),
            None => out.push_str(run),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use aauth_protocol::b64;
    use http::HeaderValue;

    use super::*;

    const SIGNATURE: &str = "c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1zaG93";

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.{SIGNATURE}",
            b64::url_encode(br#"{"alg":"EdDSA","typ":"auth+jwt","kid":"k1"}"#),
            b64::url_encode(claims.as_bytes())
        )
    }

    #[test]
    fn a_token_request_and_its_answer_show_no_credential() {
        // Review finding 5: `call --verbose` printed auth tokens, refresh
        // tokens, codes and request tokens whole.
        let url = Url::parse("https://auth.example/agent/token").unwrap();
        let agent_token = jwt(r#"{"iss":"https://agent.example","sub":"d1"}"#);
        let mut headers = HeaderMap::new();
        headers.insert(
            "signature-key",
            HeaderValue::from_str(&format!("sig=jwt;jwt=\"{agent_token}\"")).unwrap(),
        );
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let form = format!(
            "request_type=code&code=the-code-secret&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&upstream_token={}",
            jwt(r#"{"aud":"https://r1.example"}"#)
        );
        let shown = render(&Exchange::Request {
            method: &Method::POST,
            url: &url,
            headers: &headers,
            body: form.as_bytes(),
        });
        assert!(!shown.contains("the-code-secret"), "{shown}");
        assert!(!shown.contains(SIGNATURE), "{shown}");
        assert!(shown.contains("code=[redacted]"), "{shown}");
        assert!(shown.contains("\"sub\":\"d1\""), "{shown}");
        assert!(shown.contains("\"aud\":\"https://r1.example\""), "{shown}");
        assert!(shown.contains("request_type=code"), "{shown}");

        let answer = serde_json::json!({
            "auth_token": jwt(r#"{"scope":"data.read"}"#),
            "refresh_token": "the-refresh-secret",
            "request_token": "the-request-secret",
            "expires_in": 600,
        })
        .to_string();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let shown = render(&Exchange::Response {
            url: &url,
            status: StatusCode::OK,
            headers: &headers,
            body: answer.as_bytes(),
        });
        for secret in ["the-refresh-secret", "the-request-secret", SIGNATURE] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("\"scope\":\"data.read\""), "{shown}");
        assert!(shown.contains("\"expires_in\":600"), "{shown}");
    }

    #[test]
    fn credentials_in_urls_and_secret_headers_are_redacted() {
        let url =
            Url::parse("https://auth.example/agent/auth?request_token=rt-secret&state=s").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_static("session=cookie-secret"));
        headers.insert(
            "location",
            HeaderValue::from_static("http://127.0.0.1:9/cb?code=code-secret&state=s"),
        );
        let shown = render(&Exchange::Response {
            url: &url,
            status: StatusCode::SEE_OTHER,
            headers: &headers,
            body: b"",
        });
        for secret in ["rt-secret", "cookie-secret", "code-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("state=s"), "{shown}");
    }

    #[test]
    fn long_bodies_are_cut_after_redaction_on_a_character_boundary() {
        let body = "é".repeat(3_000);
        let shown = render(&Exchange::Response {
            url: &Url::parse("https://r.example/").unwrap(),
            status: StatusCode::OK,
            headers: &HeaderMap::new(),
            body: body.as_bytes(),
        });
        assert!(shown.contains("bytes in all"), "{shown}");
    }
}
