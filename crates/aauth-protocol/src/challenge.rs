//! The `Agent-Auth` response header: the level of authentication a resource
//! requires, and where to get more (E§4, D§5; profile: P-CH-1, P-CH-2,
//! P-CH-4).
//!
//! The header is an RFC 8941 Item: the token `httpsig` with parameters
//! (E§4.6). Parsed and serialised through `sfv`:
//!
//! ```text
//! httpsig                                                   E§4.1  pseudonymous
//! httpsig;identity                                          E§4.2  identified
//! httpsig;auth-token;resource_token="…";auth_server="…"     E§4.3  authorized
//! httpsig;user_interaction="…"[;resource_token="…";auth_server="…"]   E§4.4
//! ```
//!
//! `identity=?1` and the bare `identity` are the same boolean; RFC 8941
//! §4.1.1.2 serialises a true parameter without its value, so that is what we
//! emit (the explainer writes `identity=?1`; readers must treat both alike).
//! `algs` is never emitted: E§4.2's inner list is not a valid parameter value,
//! so an incoming `algs=(…)` would make the whole field unparsable. It is
//! tolerated and ignored (P-CH-1) by removing it, before sfv parses the rest,
//! with a bounded pre-pass that only looks at parameter positions (a `;`
//! outside any string). Other unknown parameters are ignored.
//!
//! Reading is lenient in one place: `resource_token` without `auth_server`
//! is accepted, because E§4.7's own example sends exactly that; the agent
//! decides what to do with it. What we build always pairs them (P-CH-4).
//!
//! These errors never reach the wire as an error response: agents read
//! challenges, and servers build them from values they control. So, unlike
//! the verifier's errors, they have no P-ERR-1 row and no `condition()`.

use std::borrow::Cow;

use sfv::visitor::{ItemVisitor, ParameterVisitor};
use sfv::{BareItemFromInput, ItemSerializer, KeyRef, Parser};

use crate::error::echo;
use crate::ids::Origin;

/// Longest `Agent-Auth` value read; a resource token is a few KiB at most.
pub const MAX_HEADER_LEN: usize = 16 * 1024;

const HTTPSIG: &sfv::TokenRef = sfv::token_ref("httpsig");
const IDENTITY: &KeyRef = sfv::key_ref("identity");
const AUTH_TOKEN: &KeyRef = sfv::key_ref("auth-token");
const RESOURCE_TOKEN: &KeyRef = sfv::key_ref("resource_token");
const AUTH_SERVER: &KeyRef = sfv::key_ref("auth_server");
const USER_INTERACTION: &KeyRef = sfv::key_ref("user_interaction");

/// An authentication level (D§4.3, P-CH-2), ordered:
/// `Pseudonymous < Identified < Authorized`. A higher level satisfies a
/// lower one ([`Level::satisfies`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `httpsig` (E§4.1): any signed request, `hwk` or better.
    Pseudonymous,
    /// `httpsig; identity=?1` (E§4.2): `jwks_uri` agent server, or `jwt` agent token.
    Identified,
    /// `httpsig; auth-token` (E§4.3): `jwt` auth token.
    Authorized,
}

impl Level {
    /// Whether a request at this level meets `required` (P-CH-2: "A higher
    /// level satisfies a lower one").
    pub fn satisfies(self, required: Level) -> bool {
        self >= required
    }
}

/// A parsed or built `Agent-Auth` challenge (E§4, D§5).
///
/// Every string it holds is a valid sf-string (printable ASCII), so
/// [`AgentAuth::to_header_value`] cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAuth {
    level: Level,
    user_interaction: Option<sfv::String>,
    resource_token: Option<sfv::String>,
    auth_server: Option<sfv::String>,
}

/// Why an `Agent-Auth` value could not be read or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Over [`MAX_HEADER_LEN`].
    #[error("Agent-Auth is longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    /// Not a structured-field Item (RFC 8941 §4.2.3).
    #[error("Agent-Auth is not a valid structured-field item: {0}")]
    Syntax(String),
    /// E§4.6: "`httpsig`: Authentication scheme (REQUIRED for all responses)".
    #[error("Agent-Auth scheme {0:?} is not httpsig")]
    NotHttpsig(String),
    /// The item is not a token at all.
    #[error("Agent-Auth must start with the token httpsig, not a {0}")]
    SchemeNotToken(&'static str),
    /// A known parameter of the wrong type (E§4.6).
    #[error("Agent-Auth parameter {name:?} must be a {expected}, not a {got}")]
    ParameterType {
        /// The parameter.
        name: &'static str,
        /// The type E§4.6 gives it.
        expected: &'static str,
        /// The type it had.
        got: &'static str,
    },
    /// Building: a value is not printable ASCII, so no sf-string can carry it.
    #[error("Agent-Auth parameter {0:?} cannot be sent: it is not printable ASCII")]
    NotRepresentable(&'static str),
}

impl AgentAuth {
    /// The bare challenge for a level: `httpsig`, `httpsig;identity` or
    /// `httpsig;auth-token` (E§4.1–4.3, D§5.1–5.3; e.g. the 429 "next level" of E§4.5).
    pub fn new(level: Level) -> Self {
        Self {
            level,
            user_interaction: None,
            resource_token: None,
            auth_server: None,
        }
    }

    /// `httpsig` (E§4.1): a signature with any scheme is required.
    pub fn signature() -> Self {
        Self::new(Level::Pseudonymous)
    }

    /// `httpsig;identity` (E§4.2): a verifiable agent identity is required.
    pub fn identity() -> Self {
        Self::new(Level::Identified)
    }

    /// `httpsig;auth-token;resource_token="…";auth_server="…"` (E§4.3): an
    /// auth token is required; the resource token and the auth server always
    /// travel together (P-CH-4).
    pub fn auth_token(resource_token: &str, auth_server: &Origin) -> Result<Self, ChallengeError> {
        Self::new(Level::Authorized).with_resource_token(resource_token, auth_server)
    }

    /// `httpsig;user_interaction="…"` (E§4.4, P-UI-1): the user must visit `url`.
    pub fn user_interaction(url: &str) -> Result<Self, ChallengeError> {
        Ok(Self {
            user_interaction: Some(sf_string("user_interaction", url)?),
            ..Self::new(Level::Pseudonymous)
        })
    }

    /// Adds a resource token and its auth server (E§4.3, and E§4.4's
    /// "downstream resource parameters"), always as a pair (P-CH-4).
    pub fn with_resource_token(
        self,
        resource_token: &str,
        auth_server: &Origin,
    ) -> Result<Self, ChallengeError> {
        Ok(Self {
            resource_token: Some(sf_string("resource_token", resource_token)?),
            auth_server: Some(sf_string("auth_server", auth_server.as_str())?),
            ..self
        })
    }

    /// The level the resource requires.
    pub fn level(&self) -> Level {
        self.level
    }

    /// `user_interaction`: where to send the user (E§4.4).
    pub fn user_interaction_url(&self) -> Option<&str> {
        self.user_interaction.as_ref().map(|s| s.as_str())
    }

    /// `resource_token`: the resource token to present to the auth server (E§4.3).
    pub fn resource_token(&self) -> Option<&str> {
        self.resource_token.as_ref().map(|s| s.as_str())
    }

    /// `auth_server`: the auth server's identifier, as received (the agent
    /// parses it as an [`Origin`] in its mode).
    pub fn auth_server(&self) -> Option<&str> {
        self.auth_server.as_ref().map(|s| s.as_str())
    }

    /// Parses an `Agent-Auth` header value (E§4.6, P-CH-1).
    pub fn parse(header_value: &str) -> Result<Self, ChallengeError> {
        if header_value.len() > MAX_HEADER_LEN {
            return Err(ChallengeError::TooLong);
        }
        // profile: P-CH-1 — "an incoming `algs` is tolerated and ignored".
        let without_algs = strip_algs(header_value);
        // E§4: "using HTTP structured fields per RFC 8941" — no RFC 9651 types.
        Parser::new(without_algs.as_ref())
            .with_version(sfv::Version::Rfc8941)
            .parse_item_with_visitor(ChallengeVisitor::default())
            .map_err(|e| ChallengeError::Syntax(e.to_string()))?
    }

    /// The header value, serialised through sfv (RFC 8941 §4.1.3). Parameter
    /// order follows E§4's examples; `algs` is never emitted (P-CH-1).
    pub fn to_header_value(&self) -> String {
        let mut ser = ItemSerializer::new().bare_item(HTTPSIG);
        ser = match self.level {
            Level::Pseudonymous => ser,
            Level::Identified => ser.parameter(IDENTITY, true),
            Level::Authorized => ser.parameter(AUTH_TOKEN, true),
        };
        for (name, value) in [
            (USER_INTERACTION, &self.user_interaction),
            (RESOURCE_TOKEN, &self.resource_token),
            (AUTH_SERVER, &self.auth_server),
        ] {
            if let Some(value) = value {
                ser = ser.parameter(name, value);
            }
        }
        ser.finish()
    }
}

fn sf_string(name: &'static str, value: &str) -> Result<sfv::String, ChallengeError> {
    sfv::String::from_string(value.to_owned()).map_err(|_| ChallengeError::NotRepresentable(name))
}

fn kind(item: &BareItemFromInput<'_>) -> &'static str {
    match item {
        BareItemFromInput::Integer(_) => "integer",
        BareItemFromInput::Decimal(_) => "decimal",
        BareItemFromInput::String(_) => "string",
        BareItemFromInput::ByteSequence(_) => "byte sequence",
        BareItemFromInput::Boolean(_) => "boolean",
        BareItemFromInput::Token(_) => "token",
        BareItemFromInput::Date(_) => "date",
        BareItemFromInput::DisplayString(_) => "display string",
    }
}

// ---------------------------------------------------------------------------
// The `algs` pre-pass.

/// Removes every `;algs=(…)` parameter, so that sfv can read the rest.
///
/// In an Item, a `;` outside an sf-string only ever starts a parameter (tokens,
/// keys and byte sequences cannot contain one), so the scan tracks strings and
/// their `\` escapes and looks at nothing else. One linear pass: when an
/// `algs=(` has no closing `)` the field is unparsable whatever we do, so the
/// input is returned unchanged for sfv to report.
fn strip_algs(input: &str) -> Cow<'_, str> {
    let bytes = input.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    let mut in_string = false;
    while let Some(&b) = bytes.get(i) {
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b';' && algs_follows(bytes, i + 1) {
            let Some(end) = inner_list_end(bytes, i + 1) else {
                return Cow::Borrowed(input);
            };
            // Only ASCII delimiters are cut at, so both ends are char boundaries.
            let kept = out.get_or_insert_with(|| String::with_capacity(input.len()));
            kept.push_str(input.get(copied..i).unwrap_or_default());
            copied = end;
            i = end;
            continue;
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(input),
        Some(mut kept) => {
            kept.push_str(input.get(copied..).unwrap_or_default());
            Cow::Owned(kept)
        }
    }
}

/// Whether `bytes[start..]` is `*SP "algs=("` (RFC 8941 allows spaces after `;`).
fn algs_follows(bytes: &[u8], start: usize) -> bool {
    let rest = bytes.get(start..).unwrap_or_default();
    let rest = rest
        .iter()
        .position(|&b| b != b' ')
        .and_then(|n| rest.get(n..))
        .unwrap_or_default();
    rest.starts_with(b"algs=(")
}

/// The index just past the `)` closing the inner list opened after `start`.
fn inner_list_end(bytes: &[u8], start: usize) -> Option<usize> {
    let open = start + bytes.get(start..)?.iter().position(|&b| b == b'(')?;
    let mut i = open + 1;
    let mut in_string = false;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b')' => return Some(i),
                _ => {}
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Reading through sfv's visitor API.

/// Collects the item. Per RFC 8941 §4.2.3.2 a repeated parameter overrides
/// the earlier one, so each slot is simply overwritten, errors included.
struct ChallengeVisitor {
    scheme: Result<(), ChallengeError>,
    identity: Result<bool, ChallengeError>,
    auth_token: Result<bool, ChallengeError>,
    user_interaction: Result<Option<sfv::String>, ChallengeError>,
    resource_token: Result<Option<sfv::String>, ChallengeError>,
    auth_server: Result<Option<sfv::String>, ChallengeError>,
}

impl Default for ChallengeVisitor {
    fn default() -> Self {
        Self {
            scheme: Ok(()),
            identity: Ok(false),
            auth_token: Ok(false),
            user_interaction: Ok(None),
            resource_token: Ok(None),
            auth_server: Ok(None),
        }
    }
}

fn boolean(name: &'static str, value: &BareItemFromInput<'_>) -> Result<bool, ChallengeError> {
    match value {
        BareItemFromInput::Boolean(b) => Ok(*b),
        other => Err(ChallengeError::ParameterType {
            name,
            expected: "boolean",
            got: kind(other),
        }),
    }
}

fn string(
    name: &'static str,
    value: BareItemFromInput<'_>,
) -> Result<Option<sfv::String>, ChallengeError> {
    match value {
        BareItemFromInput::String(s) => Ok(Some(s.into_owned())),
        other => Err(ChallengeError::ParameterType {
            name,
            expected: "string",
            got: kind(&other),
        }),
    }
}

impl<'de> ItemVisitor<'de> for ChallengeVisitor {
    type Out = Result<AgentAuth, ChallengeError>;
    type Error = std::convert::Infallible;

    fn bare_item(
        mut self,
        bare_item: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = Self::Out>, Self::Error> {
        // E§4.6: "`httpsig`: Authentication scheme (REQUIRED for all responses)".
        self.scheme = match bare_item {
            BareItemFromInput::Token(token) if token == HTTPSIG => Ok(()),
            BareItemFromInput::Token(token) => {
                Err(ChallengeError::NotHttpsig(echo(token.as_str())))
            }
            other => Err(ChallengeError::SchemeNotToken(kind(&other))),
        };
        Ok(self)
    }
}

impl<'de> ParameterVisitor<'de> for ChallengeVisitor {
    type Out = Result<AgentAuth, ChallengeError>;
    type Error = std::convert::Infallible;

    fn parameter(
        &mut self,
        key: &'de KeyRef,
        value: BareItemFromInput<'de>,
    ) -> Result<(), Self::Error> {
        // E§4.6 names the parameters and their types; others are ignored.
        match key.as_str() {
            "identity" => self.identity = boolean("identity", &value),
            "auth-token" => self.auth_token = boolean("auth-token", &value),
            "user_interaction" => self.user_interaction = string("user_interaction", value),
            "resource_token" => self.resource_token = string("resource_token", value),
            "auth_server" => self.auth_server = string("auth_server", value),
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<Self::Out, Self::Error> {
        Ok(self.into_challenge())
    }
}

impl ChallengeVisitor {
    fn into_challenge(self) -> Result<AgentAuth, ChallengeError> {
        self.scheme?;
        // P-CH-2: the highest level named is the one required.
        let level = if self.auth_token? {
            Level::Authorized
        } else if self.identity? {
            Level::Identified
        } else {
            Level::Pseudonymous
        };
        Ok(AgentAuth {
            level,
            user_interaction: self.user_interaction?,
            resource_token: self.resource_token?,
            auth_server: self.auth_server?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OriginMode;
    use proptest::prelude::*;

    /// E§4.3's resource token example.
    const E43_RESOURCE_TOKEN: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6InJlc291cmNlK2p3dCIsImtpZCI6InJlc291cmNlLWtleS0xIn0.eyJpc3MiOiJodHRwczovL3Jlc291cmNlLmV4YW1wbGUiLCJhdWQiOiJodHRwczovL2F1dGguZXhhbXBsZSIsImFnZW50IjoiaHR0cHM6Ly9hZ2VudC5leGFtcGxlIiwiYWdlbnRfamt0IjoiTnpiTHNYaDh1RENjZC02TU53WEY0V183bm9XWEZaQWZIa3hac1JHQzlYcyIsImV4cCI6MTczMDIyMTIwMCwic2NvcGUiOiJkYXRhLnJlYWQgZGF0YS53cml0ZSJ9.signature";

    fn auth_example() -> Origin {
        Origin::parse("https://auth.example", OriginMode::Production).unwrap()
    }

    fn parse(header: &str) -> AgentAuth {
        AgentAuth::parse(header).unwrap()
    }

    // --- The spec's examples ----------------------------------------------------

    #[test]
    fn reads_signature_required() {
        // E§4.1, D§5.1.
        assert_eq!(parse("httpsig"), AgentAuth::signature());
        assert_eq!(parse("httpsig").level(), Level::Pseudonymous);
    }

    #[test]
    fn reads_identity_required() {
        // E§4.2, D§5.2, and E§4.5's 401 and 429 examples.
        assert_eq!(parse("httpsig; identity=?1"), AgentAuth::identity());
    }

    #[test]
    fn ignores_algs_and_reads_the_rest() {
        // profile: P-CH-1 — E§4.2's `algs` inner list is not a valid parameter
        // value: sfv alone refuses the field, we drop `algs` and read the rest.
        let header = r#"httpsig; identity=?1; algs=("ed25519" "rsa-pss-sha512")"#;
        assert!(Parser::new(header).parse::<sfv::Item>().is_err());
        assert_eq!(parse(header), AgentAuth::identity());

        let header = r#"httpsig;algs=("ed25519");auth-token; algs=();resource_token="rt";auth_server="https://auth.example""#;
        let challenge = parse(header);
        assert_eq!(challenge.level(), Level::Authorized);
        assert_eq!(challenge.resource_token(), Some("rt"));
        assert_eq!(challenge.auth_server(), Some("https://auth.example"));
    }

    #[test]
    fn algs_with_parentheses_inside_its_strings_is_removed_whole() {
        // profile: P-CH-1.
        let header = r#"httpsig;algs=("a)b" "c\"d)");identity"#;
        assert_eq!(parse(header), AgentAuth::identity());
    }

    #[test]
    fn leaves_algs_text_inside_strings_alone() {
        let url = "https://r.example/i?x=;algs=(y)";
        let header = format!(r#"httpsig;user_interaction="{url}""#);
        assert_eq!(parse(&header).user_interaction_url(), Some(url));
    }

    #[test]
    fn rejects_rfc9651_only_types() {
        // E§4 cites RFC 8941: dates and display strings are not in it.
        for header in ["httpsig;identity;when=@1659578233", r#"httpsig;note=%"x""#] {
            assert!(
                matches!(AgentAuth::parse(header), Err(ChallengeError::Syntax(_))),
                "{header}"
            );
        }
    }

    #[test]
    fn unclosed_algs_is_a_syntax_error() {
        assert!(matches!(
            AgentAuth::parse(r#"httpsig;identity;algs=("ed25519""#),
            Err(ChallengeError::Syntax(_))
        ));
    }

    #[test]
    fn reads_authorization_required() {
        // E§4.3.
        let header = format!(
            r#"httpsig; auth-token; resource_token="{E43_RESOURCE_TOKEN}"; auth_server="https://auth.example""#
        );
        let expected = AgentAuth::auth_token(E43_RESOURCE_TOKEN, &auth_example()).unwrap();
        assert_eq!(parse(&header), expected);
        // D§5.3 and E§4.5's 403 example, with elided tokens.
        let challenge = parse(
            r#"httpsig; auth-token; resource_token="..."; auth_server="https://auth.example""#,
        );
        assert_eq!(challenge.level(), Level::Authorized);
        assert_eq!(challenge.resource_token(), Some("..."));
        let challenge = parse(
            r#"httpsig; auth-token; resource_token="eyJhbGc..."; auth_server="https://auth.example""#,
        );
        assert_eq!(challenge.resource_token(), Some("eyJhbGc..."));
    }

    #[test]
    fn reads_user_interaction_required() {
        // E§4.4, both examples.
        let url = "https://resource.example/auth?session=xyz";
        let challenge = parse(&format!(r#"httpsig; user_interaction="{url}""#));
        assert_eq!(challenge, AgentAuth::user_interaction(url).unwrap());
        assert_eq!(challenge.level(), Level::Pseudonymous);

        let challenge = parse(&format!(
            r#"httpsig; user_interaction="{url}"; resource_token="eyJhbGc..."; auth_server="https://auth.example""#
        ));
        let expected = AgentAuth::user_interaction(url)
            .unwrap()
            .with_resource_token("eyJhbGc...", &auth_example())
            .unwrap();
        assert_eq!(challenge, expected);
    }

    #[test]
    fn accepts_resource_token_without_auth_server_when_reading() {
        // profile: P-CH-4 governs what we send; E§4.7's own example omits
        // `auth_server`, so an agent reads it and decides what to do.
        let challenge = parse(r#"httpsig; auth-token; resource_token="eyJhbGc...""#);
        assert_eq!(challenge.resource_token(), Some("eyJhbGc..."));
        assert_eq!(challenge.auth_server(), None);
    }

    // --- Levels (P-CH-2) --------------------------------------------------------------

    #[test]
    fn a_higher_level_satisfies_a_lower_one() {
        // profile: P-CH-2 — pseudonymous < identified < authorized.
        use Level::*;
        assert!(Pseudonymous < Identified && Identified < Authorized);
        for (have, need, ok) in [
            (Pseudonymous, Pseudonymous, true),
            (Pseudonymous, Identified, false),
            (Pseudonymous, Authorized, false),
            (Identified, Pseudonymous, true),
            (Identified, Identified, true),
            (Identified, Authorized, false),
            (Authorized, Pseudonymous, true),
            (Authorized, Identified, true),
            (Authorized, Authorized, true),
        ] {
            assert_eq!(have.satisfies(need), ok, "{have:?} for {need:?}");
        }
    }

    #[test]
    fn the_highest_level_named_wins() {
        assert_eq!(
            parse("httpsig;identity;auth-token").level(),
            Level::Authorized
        );
        assert_eq!(
            parse("httpsig;auth-token;identity=?0").level(),
            Level::Authorized
        );
    }

    #[test]
    fn false_booleans_do_not_raise_the_level() {
        assert_eq!(parse("httpsig;identity=?0"), AgentAuth::signature());
        assert_eq!(parse("httpsig;auth-token=?0"), AgentAuth::signature());
    }

    #[test]
    fn a_repeated_parameter_overrides_the_earlier_one() {
        // RFC 8941 §4.2.3.2, errors included.
        assert_eq!(
            parse(r#"httpsig;identity="x";identity"#),
            AgentAuth::identity()
        );
        assert_eq!(
            parse("httpsig;identity;identity=?0"),
            AgentAuth::signature()
        );
        let challenge = parse(r#"httpsig;user_interaction="a";user_interaction="b""#);
        assert_eq!(challenge.user_interaction_url(), Some("b"));
    }

    #[test]
    fn ignores_unknown_parameters() {
        assert_eq!(
            parse(r#"httpsig; identity=?1; realm="x"; max_age=60; scope=read"#),
            AgentAuth::identity()
        );
    }

    // --- Rejections ---------------------------------------------------------------------

    #[test]
    fn rejects_other_schemes_naming_them() {
        let e = AgentAuth::parse(r#"Bearer; realm="x""#).unwrap_err();
        assert_eq!(e, ChallengeError::NotHttpsig("Bearer".into()));
        assert!(e.to_string().contains("Bearer"));
        assert_eq!(
            AgentAuth::parse(r#""httpsig""#),
            Err(ChallengeError::SchemeNotToken("string"))
        );
        assert_eq!(
            AgentAuth::parse("?1"),
            Err(ChallengeError::SchemeNotToken("boolean"))
        );
    }

    #[test]
    fn rejects_known_parameters_of_the_wrong_type() {
        for (header, name, expected, got) in [
            (r#"httpsig;identity="yes""#, "identity", "boolean", "string"),
            ("httpsig;auth-token=1", "auth-token", "boolean", "integer"),
            (
                "httpsig;auth-token;resource_token=abc",
                "resource_token",
                "string",
                "token",
            ),
            (
                "httpsig;auth_server=:AAAA:",
                "auth_server",
                "string",
                "byte sequence",
            ),
            (
                "httpsig;user_interaction=?1",
                "user_interaction",
                "string",
                "boolean",
            ),
        ] {
            assert_eq!(
                AgentAuth::parse(header),
                Err(ChallengeError::ParameterType {
                    name,
                    expected,
                    got
                }),
                "{header}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_single_item() {
        for header in [
            "",
            "httpsig, httpsig",
            "httpsig;",
            r#"httpsig;resource_token="unterminated"#,
            "httpsig;user_interaction=\"caf\u{e9}\"",
            "(httpsig)",
        ] {
            assert!(
                matches!(AgentAuth::parse(header), Err(ChallengeError::Syntax(_))),
                "{header:?}"
            );
        }
    }

    #[test]
    fn bounds_the_input_length() {
        let header = format!(r#"httpsig;resource_token="{}""#, "a".repeat(MAX_HEADER_LEN));
        assert_eq!(AgentAuth::parse(&header), Err(ChallengeError::TooLong));
    }

    // --- Emitting -------------------------------------------------------------------------

    #[test]
    fn emits_each_challenge_through_sfv() {
        // profile: P-CH-1 — RFC 8941 serialisation: a true boolean is bare.
        assert_eq!(AgentAuth::signature().to_header_value(), "httpsig");
        assert_eq!(AgentAuth::identity().to_header_value(), "httpsig;identity");
        assert_eq!(
            AgentAuth::new(Level::Authorized).to_header_value(),
            "httpsig;auth-token"
        );
        assert_eq!(
            AgentAuth::auth_token("eyJ.eyJ.sig", &auth_example())
                .unwrap()
                .to_header_value(),
            r#"httpsig;auth-token;resource_token="eyJ.eyJ.sig";auth_server="https://auth.example""#
        );
        assert_eq!(
            AgentAuth::user_interaction("https://r.example/i?session=xyz")
                .unwrap()
                .with_resource_token("eyJ", &auth_example())
                .unwrap()
                .to_header_value(),
            r#"httpsig;user_interaction="https://r.example/i?session=xyz";resource_token="eyJ";auth_server="https://auth.example""#
        );
    }

    #[test]
    fn never_emits_algs() {
        // profile: P-CH-1.
        for level in [Level::Pseudonymous, Level::Identified, Level::Authorized] {
            assert!(!AgentAuth::new(level).to_header_value().contains("algs"));
        }
    }

    #[test]
    fn escapes_quotes_and_backslashes() {
        let url = r#"https://r.example/i?q="a\b""#;
        let challenge = AgentAuth::user_interaction(url).unwrap();
        let header = challenge.to_header_value();
        assert_eq!(
            header,
            r#"httpsig;user_interaction="https://r.example/i?q=\"a\\b\"""#
        );
        assert_eq!(parse(&header), challenge);
        assert_eq!(parse(&header).user_interaction_url(), Some(url));
    }

    #[test]
    fn refuses_to_build_non_ascii_values() {
        assert_eq!(
            AgentAuth::user_interaction("https://r.example/caf\u{e9}"),
            Err(ChallengeError::NotRepresentable("user_interaction"))
        );
        assert_eq!(
            AgentAuth::auth_token("t\n", &auth_example()),
            Err(ChallengeError::NotRepresentable("resource_token"))
        );
    }

    // --- Properties --------------------------------------------------------------------

    fn arb_challenge() -> impl Strategy<Value = AgentAuth> {
        let text = proptest::option::of("[ -~]{0,80}");
        (
            prop_oneof![
                Just(Level::Pseudonymous),
                Just(Level::Identified),
                Just(Level::Authorized)
            ],
            text.clone(),
            proptest::option::of(("[ -~]{0,200}", "[a-z]{1,10}")),
        )
            .prop_map(|(level, url, pair)| {
                let mut challenge = match url {
                    Some(url) => AgentAuth {
                        level,
                        ..AgentAuth::user_interaction(&url).unwrap()
                    },
                    None => AgentAuth::new(level),
                };
                if let Some((token, host)) = pair {
                    let server =
                        Origin::parse(&format!("https://{host}.example"), OriginMode::Production)
                            .unwrap();
                    challenge = challenge.with_resource_token(&token, &server).unwrap();
                }
                challenge
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_strings(s in ".{0,400}") {
            let _ = AgentAuth::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_miss_headers(
            s in r#"httpsig(;[ ]?(algs=\(("[ -~]{0,6}"?| |\)){0,4}|[a-z_-]{1,10}(=("[ -~]{0,10}"?|\?[01]|[0-9]{1,3}))?)){0,6}"#
        ) {
            let _ = AgentAuth::parse(&s);
        }

        #[test]
        fn parse_of_emit_is_identity(challenge in arb_challenge()) {
            prop_assert_eq!(AgentAuth::parse(&challenge.to_header_value()).unwrap(), challenge);
        }

        #[test]
        fn algs_anywhere_after_the_scheme_changes_nothing(
            challenge in arb_challenge(),
            // Valid inner lists of sf-strings, with parentheses and escapes inside.
            algs in r#"\( ?("([a-z0-9()-]|\\\\|\\"){0,6}" ?){0,3}\)"#,
        ) {
            let header = challenge.to_header_value();
            let with_algs = header.replacen("httpsig", &format!("httpsig;algs={algs}"), 1);
            prop_assert_eq!(AgentAuth::parse(&with_algs).unwrap(), challenge.clone());
            let at_end = format!("{header}; algs={algs}");
            prop_assert_eq!(AgentAuth::parse(&at_end).unwrap(), challenge);
        }
    }
}
