//! Protocol identifiers as parsed types (style: parse, don't validate).
//!
//! * [`Origin`]: agent, resource and auth server identifiers (profile: P-MD-1).
//! * [`Kid`], [`Thumbprint`], [`Scope`]: the other strings the wire carries.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::b64;

/// Longest identifier or URL we accept anywhere; longer input is hostile.
pub const MAX_URL_LEN: usize = 2048;

/// Which origins are acceptable as identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OriginMode {
    /// `https://host[:port]` only (E§8, P-MD-1).
    #[default]
    Production,
    /// Also `http://127.0.0.1:PORT` and `http://localhost:PORT`, for running
    /// the parties on one machine. Never the default; servers log it loudly.
    Dev,
}

/// An origin used as an AAuth identifier: `https://host` with a lowercase
/// host, no default port, no path, no trailing slash, no query or fragment.
/// Compared as exact strings; anything else is rejected, never normalised.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Origin(String);

/// Why a string is not an acceptable [`Origin`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// Over [`MAX_URL_LEN`].
    #[error("identifier longer than {MAX_URL_LEN} bytes")]
    TooLong,
    /// Not `https://` (or, in dev mode, loopback `http://`).
    #[error("identifier must start with https:// (got {0:?})")]
    Scheme(String),
    /// A path, trailing slash, query, fragment or userinfo.
    #[error("identifier must be a bare origin without path, slash, query, fragment or userinfo")]
    NotBare,
    /// Uppercase letters or characters outside a DNS name / IPv4 address.
    #[error("identifier host must be a lowercase DNS name or IPv4 address")]
    Host,
    /// A port that is empty, not a number, zero, has leading zeros, or is the default 443.
    #[error(
        "identifier port must be a number 1-65535 without leading zeros, and not the default 443"
    )]
    Port,
    /// `http://` to something other than `127.0.0.1`/`localhost` with a port, or outside dev mode.
    #[error(
        "plain http identifiers are allowed only in dev mode, for 127.0.0.1 or localhost with a port"
    )]
    DevOnly,
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-'])
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !host.contains("..")
}

fn valid_port(port: &str) -> bool {
    !port.is_empty()
        && !port.starts_with('0')
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0)
}

impl Origin {
    /// Parses `text` as an identifier under `mode`.
    pub fn parse(text: &str, mode: OriginMode) -> Result<Self, OriginError> {
        if text.len() > MAX_URL_LEN {
            return Err(OriginError::TooLong);
        }
        let (secure, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(OriginError::Scheme(text.chars().take(16).collect()));
        };
        if rest.contains(['/', '?', '#', '@', '\\']) {
            return Err(OriginError::NotBare);
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        if !valid_host(host) {
            return Err(OriginError::Host);
        }
        if let Some(port) = port
            && (!valid_port(port) || (secure && port == "443"))
        {
            return Err(OriginError::Port);
        }
        if !secure {
            let loopback = matches!(host, "127.0.0.1" | "localhost");
            if mode != OriginMode::Dev || !loopback || port.is_none() {
                return Err(OriginError::DevOnly);
            }
        }
        Ok(Self(text.to_owned()))
    }

    /// The identifier as it appears on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `{origin}/.well-known/{name}` (RFC 8615).
    pub fn well_known(&self, name: &str) -> String {
        format!("{}/.well-known/{name}", self.0)
    }

    /// The authority (`host[:port]`) for `@authority` (E§10.3.1).
    pub fn authority(&self) -> &str {
        self.0
            .strip_prefix("https://")
            .or_else(|| self.0.strip_prefix("http://"))
            .unwrap_or(&self.0)
    }

    /// Whether this is a dev-mode loopback `http://` origin.
    pub fn is_plain_http(&self) -> bool {
        self.0.starts_with("http://")
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({})", self.0)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Origin {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// Why a short protocol string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StringError {
    /// Empty.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// Too long.
    #[error("{0} is longer than {1} bytes")]
    TooLong(&'static str, usize),
    /// Contains characters outside the allowed set.
    #[error("{0} contains characters that are not allowed")]
    Chars(&'static str),
}

/// A JWK key identifier (`kid`): non-empty printable ASCII, at most 256 bytes.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Kid(String);

impl Kid {
    /// Longest `kid` accepted.
    pub const MAX_LEN: usize = 256;

    /// Checks and wraps a key identifier.
    pub fn new(kid: String) -> Result<Self, StringError> {
        if kid.is_empty() {
            return Err(StringError::Empty("kid"));
        }
        if kid.len() > Self::MAX_LEN {
            return Err(StringError::TooLong("kid", Self::MAX_LEN));
        }
        if !kid.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(StringError::Chars("kid"));
        }
        Ok(Self(kid))
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Kid {
    type Error = StringError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Kid> for String {
    fn from(kid: Kid) -> Self {
        kid.0
    }
}

impl fmt::Debug for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kid({:?})", self.0)
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An RFC 7638 SHA-256 JWK thumbprint, base64url without padding (43 chars).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Thumbprint(String);

impl Thumbprint {
    /// Wraps a SHA-256 digest.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        Self(b64::url_encode(digest))
    }

    /// The base64url text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Thumbprint {
    type Error = StringError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.len() != 43 {
            return Err(StringError::Chars("thumbprint"));
        }
        let bytes = b64::url_decode(&value).map_err(|_| StringError::Chars("thumbprint"))?;
        if bytes.len() != 32 {
            return Err(StringError::Chars("thumbprint"));
        }
        Ok(Self(value))
    }
}

impl From<Thumbprint> for String {
    fn from(t: Thumbprint) -> Self {
        t.0
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({})", self.0)
    }
}

impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A space-separated list of scope tokens (RFC 6749 §3.3): each token is
/// one or more of `%x21 / %x23-5B / %x5D-7E`, tokens separated by single spaces.
/// Order is kept as received; duplicates are removed.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(Vec<String>);

impl Scope {
    /// Longest scope string accepted.
    pub const MAX_LEN: usize = 4096;

    /// Parses a scope string.
    pub fn parse(text: &str) -> Result<Self, StringError> {
        if text.len() > Self::MAX_LEN {
            return Err(StringError::TooLong("scope", Self::MAX_LEN));
        }
        let mut tokens: Vec<String> = Vec::new();
        for token in text.split(' ') {
            if token.is_empty() {
                return Err(StringError::Chars("scope"));
            }
            if !token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err(StringError::Chars("scope"));
            }
            if !tokens.iter().any(|t| t == token) {
                tokens.push(token.to_owned());
            }
        }
        Ok(Self(tokens))
    }

    /// Builds a scope from tokens (each checked as in [`Scope::parse`]).
    pub fn from_tokens<I, S>(tokens: I) -> Result<Self, StringError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined: Vec<String> = tokens.into_iter().map(|s| s.as_ref().to_owned()).collect();
        Self::parse(&joined.join(" "))
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether `token` is included.
    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    /// Whether every token of `other` is included.
    pub fn includes(&self, other: &Scope) -> bool {
        other.tokens().all(|t| self.contains(t))
    }

    /// Whether no token is present.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<String> for Scope {
    type Error = StringError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Scope> for String {
    fn from(scope: Scope) -> Self {
        scope.0.join(" ")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.0.join(" "))
    }
}

/// A signature label (RFC 9421 §4.1): the dictionary key shared by
/// `Signature-Input`, `Signature` and `Signature-Key` (E§10.1.1). An RFC 8941
/// key: `lcalpha / "*"` then `lcalpha / DIGIT / "_" / "-" / "." / "*"`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Label(String);

impl Label {
    /// Longest label accepted.
    pub const MAX_LEN: usize = 64;

    /// Checks and wraps a label.
    pub fn new(label: impl Into<String>) -> Result<Self, StringError> {
        let label = label.into();
        let mut bytes = label.bytes();
        match bytes.next() {
            None => return Err(StringError::Empty("label")),
            Some(first) if !(first.is_ascii_lowercase() || first == b'*') => {
                return Err(StringError::Chars("label"));
            }
            Some(_) => {}
        }
        if label.len() > Self::MAX_LEN {
            return Err(StringError::TooLong("label", Self::MAX_LEN));
        }
        if !bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b'*')
        }) {
            return Err(StringError::Chars("label"));
        }
        Ok(Self(label))
    }

    /// The label we emit (P-SIG-3).
    pub fn sig() -> Self {
        Self("sig".to_owned())
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Label {
    type Error = StringError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Label> for String {
    fn from(label: Label) -> Self {
        label.0
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Label({})", self.0)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bare_https_origins() {
        for ok in [
            "https://agent.example",
            "https://a.example:8443",
            "https://10.0.0.1",
        ] {
            assert_eq!(
                Origin::parse(ok, OriginMode::Production).unwrap().as_str(),
                ok
            );
        }
    }

    #[test]
    fn rejects_anything_that_would_need_normalising() {
        // profile: P-MD-1
        let cases = [
            ("https://agent.example/", OriginError::NotBare),
            ("https://agent.example/path", OriginError::NotBare),
            ("https://agent.example?q", OriginError::NotBare),
            ("https://agent.example#f", OriginError::NotBare),
            ("https://user@agent.example", OriginError::NotBare),
            ("https://Agent.example", OriginError::Host),
            ("https://agent.example:443", OriginError::Port),
            ("https://agent.example:", OriginError::Port),
            ("https://agent.example:080", OriginError::Port),
            ("https://agent.example:70000", OriginError::Port),
            ("https://", OriginError::Host),
            ("https://[::1]:80", OriginError::Host),
            ("http://agent.example", OriginError::DevOnly),
        ];
        for (text, err) in cases {
            assert_eq!(
                Origin::parse(text, OriginMode::Production),
                Err(err),
                "{text}"
            );
        }
        assert!(matches!(
            Origin::parse("ftp://agent.example", OriginMode::Dev),
            Err(OriginError::Scheme(_))
        ));
    }

    #[test]
    fn loopback_http_only_in_dev_mode_with_a_port() {
        for text in ["http://127.0.0.1:4000", "http://localhost:4000"] {
            assert_eq!(
                Origin::parse(text, OriginMode::Production),
                Err(OriginError::DevOnly)
            );
            assert!(Origin::parse(text, OriginMode::Dev).is_ok());
        }
        assert_eq!(
            Origin::parse("http://127.0.0.1", OriginMode::Dev),
            Err(OriginError::DevOnly)
        );
        assert_eq!(
            Origin::parse("http://10.0.0.1:80", OriginMode::Dev),
            Err(OriginError::DevOnly)
        );
    }

    #[test]
    fn authority_and_well_known() {
        let o = Origin::parse("https://a.example:8443", OriginMode::Production).unwrap();
        assert_eq!(o.authority(), "a.example:8443");
        assert_eq!(
            o.well_known("aauth-agent"),
            "https://a.example:8443/.well-known/aauth-agent"
        );
    }

    #[test]
    fn scope_parses_rfc6749_tokens() {
        let s = Scope::parse("data.read data.write data.read").unwrap();
        assert_eq!(s.to_string(), "data.read data.write");
        assert!(s.contains("data.write"));
        assert!(s.includes(&Scope::parse("data.read").unwrap()));
        for bad in ["", "a  b", " a", "a\"b", "a\\b", "caf\u{e9}"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn label_is_an_sf_key() {
        for ok in ["sig", "sig-b21", "*x", "a.b_c"] {
            assert!(Label::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Sig", "1sig", "si g", "sig=", &"a".repeat(65)] {
            assert!(Label::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kid_rules() {
        assert!(Kid::new(String::new()).is_err());
        assert!(Kid::new("k\n".into()).is_err());
        assert!(Kid::new("x".repeat(257)).is_err());
        assert_eq!(Kid::new("key-1".into()).unwrap().as_str(), "key-1");
    }
}
