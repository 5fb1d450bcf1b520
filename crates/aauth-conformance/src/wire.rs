//! The suite's HTTP client: every request bounded in time and size, sent
//! only to origins the run allows (the target's, what the target names on
//! the same host, the suite's own loopback listeners, and any the user
//! allows with `--allow-origin`), redirects never followed.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aauth_http::client::target;
use aauth_protocol::challenge::{AgentAuth, Level};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use url::Url;

/// Largest answer read; more is cut off (and said).
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// A request as the suite sends it: exactly these headers, this body.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The method (any token, so hostile ones can be sent too).
    pub method: String,
    /// The absolute URL.
    pub url: Url,
    /// Header lines, in order, repeated names allowed.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Sent {
    /// A request with no headers and no body.
    pub fn new(method: &str, url: Url) -> Self {
        Self {
            method: method.to_owned(),
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The value of the first header `name`, if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Replaces every line of header `name` with one line `value`.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.remove_header(name);
        self.headers.push((name.to_owned(), value.into()));
    }

    /// Removes every line of header `name`.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// One line for a report: the method, the path and query, and the
    /// AAuth headers, each cut to a readable length.
    pub fn describe(&self) -> String {
        let mut text = format!("{} {}", self.method, target(&self.url));
        for (name, value) in &self.headers {
            let lower = name.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "signature-key" | "signature-input" | "signature" | "nonce" | "content-digest"
            ) {
                text.push_str(&format!("; {name}: {}", cut(value, 160)));
            }
        }
        if !self.body.is_empty() {
            text.push_str(&format!("; body {} bytes", self.body.len()));
        }
        text
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// An answer as received.
#[derive(Clone)]
pub struct Seen {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (at most [`MAX_ANSWER_BYTES`]).
    pub body: Bytes,
    /// The JSON body, when it is JSON.
    pub json: Option<serde_json::Value>,
}

impl fmt::Debug for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Seen {
    /// The body's `error`, when it has one.
    pub fn error(&self) -> Option<&str> {
        self.json.as_ref()?.get("error")?.as_str()
    }

    /// The body's `error_description`.
    pub fn description(&self) -> Option<&str> {
        self.json.as_ref()?.get("error_description")?.as_str()
    }

    /// The signature base a target in diagnostic mode reports (P-ERR-3).
    pub fn signature_base(&self) -> Option<&str> {
        self.json.as_ref()?.get("signature_base")?.as_str()
    }

    /// A member of the JSON body as a string.
    pub fn string(&self, member: &str) -> Option<&str> {
        self.json.as_ref()?.get(member)?.as_str()
    }

    /// The raw `Agent-Auth` value.
    pub fn agent_auth_raw(&self) -> Option<&str> {
        self.headers.get("agent-auth")?.to_str().ok()
    }

    /// The `Agent-Auth` challenge, parsed; `Err` carries the parse error.
    pub fn agent_auth(&self) -> Option<Result<AgentAuth, String>> {
        let raw = self.headers.get("agent-auth")?;
        Some(
            raw.to_str()
                .map_err(|_| "not visible ASCII".to_owned())
                .and_then(|text| AgentAuth::parse(text).map_err(|e| e.to_string())),
        )
    }

    /// The level the challenge asks for, when it parses.
    pub fn level(&self) -> Option<Level> {
        self.agent_auth()?.ok().map(|c| c.level())
    }

    /// The resource token of the challenge, if any.
    pub fn resource_token(&self) -> Option<String> {
        self.agent_auth()?
            .ok()
            .and_then(|c| c.resource_token().map(str::to_owned))
    }

    /// One line: status, error, description and challenge.
    pub fn describe(&self) -> String {
        let mut text = self.status.to_string();
        if let Some(error) = self.error() {
            text.push(' ');
            text.push_str(error);
        }
        if let Some(description) = self.description() {
            text.push_str(&format!(" ({})", cut(description, 200)));
        }
        if let Some(challenge) = self.agent_auth_raw() {
            text.push_str(&format!("; Agent-Auth: {}", cut(challenge, 160)));
        }
        if self.json.is_none() && !self.body.is_empty() && self.status >= 400 {
            text.push_str(&format!(
                "; body: {}",
                cut(&String::from_utf8_lossy(&self.body), 120)
            ));
        }
        text
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The URL's origin is not one the run may contact.
    NotAllowed(String),
    /// The request could not be built (a header the HTTP stack refuses).
    Build(String),
    /// No answer in time.
    Timeout,
    /// The connection failed.
    Transport(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAllowed(origin) => write!(
                f,
                "not sent: {origin} is outside the origins this run may contact"
            ),
            Self::Build(why) => write!(f, "not sent: {why}"),
            Self::Timeout => f.write_str("no answer in time"),
            Self::Transport(why) => write!(f, "connection failed: {why}"),
        }
    }
}

/// The bounded client.
#[derive(Clone)]
pub struct Wire {
    http: reqwest::Client,
    allowed: Arc<Mutex<Vec<String>>>,
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wire")
            .field("allowed", &self.allowed_origins())
            .finish()
    }
}

impl Wire {
    /// A client whose every request ends within `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            allowed: Arc::default(),
        })
    }

    /// Allows requests to `url`'s origin.
    pub fn allow(&self, url: &Url) {
        let origin = url.origin().ascii_serialization();
        if let Ok(mut allowed) = self.allowed.lock()
            && !allowed.contains(&origin)
        {
            allowed.push(origin);
        }
    }

    /// The origins allowed so far.
    pub fn allowed_origins(&self) -> Vec<String> {
        self.allowed.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Allows `url`'s origin when it is on the same host as `of`: what a
    /// target names on its own host (its auth server on another port, its
    /// JWKS) may be contacted; anything elsewhere needs `--allow-origin`.
    pub fn allow_same_host(&self, url: &Url, of: &Url) -> bool {
        if url.host_str().is_some() && url.host_str() == of.host_str() {
            self.allow(url);
            true
        } else {
            self.is_allowed(url)
        }
    }

    /// Whether `url`'s origin may be contacted.
    pub fn is_allowed(&self, url: &Url) -> bool {
        let origin = url.origin().ascii_serialization();
        self.allowed
            .lock()
            .map(|a| a.contains(&origin))
            .unwrap_or(false)
    }

    /// Sends `sent` and reads the answer, at most [`MAX_ANSWER_BYTES`].
    pub async fn send(&self, sent: &Sent) -> Result<Seen, WireError> {
        if !self.is_allowed(&sent.url) {
            return Err(WireError::NotAllowed(
                sent.url.origin().ascii_serialization(),
            ));
        }
        let method = Method::from_bytes(sent.method.as_bytes())
            .map_err(|_| WireError::Build(format!("method {:?}", sent.method)))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &sent.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| WireError::Build(format!("header name {name:?}")))?;
            let value = HeaderValue::from_bytes(value.as_bytes())
                .map_err(|_| WireError::Build(format!("a value of {name}")))?;
            headers.append(name, value);
        }
        let mut builder = self.http.request(method, sent.url.clone()).headers(headers);
        if !sent.body.is_empty() {
            builder = builder.body(sent.body.clone());
        }
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                WireError::Timeout
            } else {
                WireError::Transport(chain(&e))
            }
        };
        let mut response = builder.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
            body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
            if body.len() >= MAX_ANSWER_BYTES {
                break;
            }
        }
        let json = serde_json::from_slice(&body).ok();
        Ok(Seen {
            status,
            headers,
            body: Bytes::from(body),
            json,
        })
    }

    /// `GET url` with no AAuth headers.
    pub async fn get(&self, url: &Url) -> Result<Seen, WireError> {
        self.send(&Sent::new("GET", url.clone())).await
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn origins_not_allowed_are_never_contacted() {
        let wire = Wire::new(Duration::from_secs(1)).unwrap();
        let url = Url::parse("http://127.0.0.1:9/x").unwrap();
        assert!(matches!(
            wire.get(&url).await,
            Err(WireError::NotAllowed(origin)) if origin == "http://127.0.0.1:9"
        ));
        let target = Url::parse("http://127.0.0.1:8/").unwrap();
        assert!(wire.allow_same_host(&url, &target));
        assert!(!wire.allow_same_host(&Url::parse("http://example.com/").unwrap(), &target));
    }

    #[test]
    fn a_description_shows_the_aauth_headers_cut_short() {
        let mut sent = Sent::new("GET", Url::parse("http://h/p?q=1").unwrap());
        sent.set_header("Signature", "x".repeat(500));
        sent.set_header("Accept", "text/plain");
        let text = sent.describe();
        assert!(text.starts_with("GET /p?q=1; Signature: xxx"), "{text}");
        assert!(!text.contains("Accept"));
        assert!(text.ends_with('…'));
    }
}
