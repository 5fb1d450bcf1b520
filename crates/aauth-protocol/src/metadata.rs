//! Metadata documents (E§8, D§9, profile: P-MD-1, P-MD-2, P-MD-3): agent
//! (`/.well-known/aauth-agent`), auth server (`aauth-issuer`) and resource
//! (`aauth-resource`) metadata.
//!
//! Parsing is for documents fetched from a peer, so it is hostile-input
//! parsing: bounded size, the identifier member must equal the origin the
//! document was fetched from exactly (P-MD-1), and every URL must be an
//! absolute `https` URL (or, in dev mode, a loopback `http` one). Unknown
//! members are ignored and unknown algorithms skipped (P-MD-2).
//! Serialisation (`serde::Serialize`) is for our own servers.

use std::collections::HashSet;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Serialize};

use crate::ids::{MAX_URL_LEN, Origin, OriginError, OriginMode};
use crate::jose::json_object;
use crate::keys::Algorithm;

/// Well-known name of agent metadata (E§8.1, E§14.1).
pub const AGENT_WELL_KNOWN: &str = "aauth-agent";
/// Well-known name of auth server metadata (E§8.2, E§14.1).
pub const ISSUER_WELL_KNOWN: &str = "aauth-issuer";
/// Well-known name of resource metadata (E§8.3, E§14.1).
pub const RESOURCE_WELL_KNOWN: &str = "aauth-resource";

/// Largest metadata document accepted (profile: P-MD-3).
pub const MAX_METADATA_LEN: usize = 64 * 1024;

/// Why a URL in a metadata document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Longer than [`MAX_URL_LEN`].
    #[error("URL is longer than {MAX_URL_LEN} bytes")]
    TooLong,
    /// No `scheme://`.
    #[error("not an absolute URL")]
    NotAbsolute,
    /// The scheme and authority do not form an acceptable origin.
    #[error("{0}")]
    Origin(OriginError),
    /// A fragment (`#…`).
    #[error("URL must not have a fragment")]
    Fragment,
    /// Characters outside RFC 3986 path and query, or a bad `%` escape.
    #[error("URL path or query contains characters that are not allowed")]
    Chars,
}

/// Whether `rest` is a valid RFC 3986 `path-abempty [ "?" query ]`.
fn valid_path_and_query(rest: &str) -> bool {
    if !(rest.is_empty() || rest.starts_with(['/', '?'])) {
        return false;
    }
    let bytes = rest.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
            continue;
        }
        let allowed = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b);
        if !allowed {
            return false;
        }
        i += 1;
    }
    true
}

/// Splits `scheme://authority` from the path and query.
fn split_url(text: &str) -> Result<(&str, &str), UrlError> {
    if text.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong);
    }
    if text.contains('#') {
        return Err(UrlError::Fragment);
    }
    let authority_start = text.find("://").ok_or(UrlError::NotAbsolute)? + 3;
    let authority_end = text
        .get(authority_start..)
        .and_then(|after| after.find(['/', '?']))
        .map_or(text.len(), |i| authority_start + i);
    let origin = text.get(..authority_end).ok_or(UrlError::NotAbsolute)?;
    let rest = text.get(authority_end..).unwrap_or_default();
    if !valid_path_and_query(rest) {
        return Err(UrlError::Chars);
    }
    Ok((origin, rest))
}

/// An absolute `https` URL whose origin is acceptable under P-MD-1 (in dev
/// mode also a loopback `http` origin), with an optional path and query
/// and no fragment (E§8, profile: P-MD-3).
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct HttpsUrl(String);

impl HttpsUrl {
    /// Parses `text` under `mode`.
    pub fn parse(text: &str, mode: OriginMode) -> Result<Self, UrlError> {
        let (origin, _) = split_url(text)?;
        Origin::parse(origin, mode).map_err(UrlError::Origin)?;
        Ok(Self(text.to_owned()))
    }

    /// `origin` followed by `path` (which starts with `/`), e.g. a `jwks_uri`.
    pub fn from_origin(origin: &Origin, path: &str) -> Result<Self, UrlError> {
        if !path.starts_with('/') {
            return Err(UrlError::Chars);
        }
        let mode = if origin.is_plain_http() {
            OriginMode::Dev
        } else {
            OriginMode::Production
        };
        Self::parse(&format!("{origin}{path}"), mode)
    }

    /// The URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for HttpsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpsUrl({})", self.0)
    }
}

impl fmt::Display for HttpsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A redirect URI an agent registers (E§8.1): an [`HttpsUrl`], or a
/// loopback `http://127.0.0.1` / `http://[::1]` URL with or without a port
/// in any mode (RFC 8252 §7.3, profile: P-AS-4).
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Parses `text` under `mode`.
    pub fn parse(text: &str, mode: OriginMode) -> Result<Self, UrlError> {
        let (origin, _) = split_url(text)?;
        let loopback = origin.strip_prefix("http://").is_some_and(|authority| {
            let port = authority
                .strip_prefix("127.0.0.1")
                .or_else(|| authority.strip_prefix("[::1]"));
            match port {
                Some("") => true,
                Some(port) => port.strip_prefix(':').is_some_and(|p| {
                    !p.starts_with('0') && p.len() <= 5 && p.parse::<u16>().is_ok_and(|n| n != 0)
                }),
                None => false,
            }
        });
        if !loopback {
            Origin::parse(origin, mode).map_err(UrlError::Origin)?;
        }
        Ok(Self(text.to_owned()))
    }

    /// The URI text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedirectUri({})", self.0)
    }
}

/// A `request_type` value (E§9, E§9.11). An open registry: values we do
/// not know are kept as [`RequestType::Unknown`] (style §6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestType {
    /// `auth` (E§9.3).
    Auth,
    /// `code` (E§9.6).
    Code,
    /// `refresh` (E§9.7).
    Refresh,
    /// `exchange` (E§9.10).
    Exchange,
    /// Any other value, as received.
    Unknown(String),
}

impl RequestType {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Auth => "auth",
            Self::Code => "code",
            Self::Refresh => "refresh",
            Self::Exchange => "exchange",
            Self::Unknown(other) => other,
        }
    }

    /// Reads a wire value.
    pub fn from_wire(text: &str) -> Self {
        match text {
            "auth" => Self::Auth,
            "code" => Self::Code,
            "refresh" => Self::Refresh,
            "exchange" => Self::Exchange,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

impl Serialize for RequestType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RequestType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self::from_wire(&text))
    }
}

/// `scope_descriptions` (E§8.3): scope name → human-readable description,
/// in document order. Descriptions are peer text: escape before display.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeDescriptions(Vec<(String, String)>);

impl ScopeDescriptions {
    /// Descriptions from (scope, description) pairs; a later duplicate replaces an earlier one.
    pub fn new<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut out: Vec<(String, String)> = Vec::new();
        for (scope, text) in pairs {
            match out.iter_mut().find(|(s, _)| *s == scope) {
                Some(entry) => entry.1 = text,
                None => out.push((scope, text)),
            }
        }
        Self(out)
    }

    /// The description of `scope`.
    pub fn get(&self, scope: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(s, _)| s == scope)
            .map(|(_, d)| d.as_str())
    }

    /// All (scope, description) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(s, d)| (s.as_str(), d.as_str()))
    }
}

impl Serialize for ScopeDescriptions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (scope, text) in &self.0 {
            map.serialize_entry(scope, text)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ScopeDescriptions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = ScopeDescriptions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object mapping scope names to descriptions")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut seen = HashSet::new();
                let mut pairs = Vec::new();
                while let Some((scope, text)) = access.next_entry::<String, String>()? {
                    if !seen.insert(scope.clone()) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate scope {scope:?} in scope_descriptions"
                        )));
                    }
                    pairs.push((scope, text));
                }
                Ok(ScopeDescriptions(pairs))
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

/// Why a metadata document was refused (P-MD-1, P-MD-3). These surface to
/// peers as key-fetch failures of the token or signature being checked
/// ([`crate::tokens::KeyLookupError::Unavailable`]), so they have no wire
/// row of their own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// Over [`MAX_METADATA_LEN`].
    #[error("metadata document is larger than {MAX_METADATA_LEN} bytes")]
    TooLarge,
    /// Not a JSON object with the required members of the right types.
    #[error("metadata document is invalid: {0}")]
    Json(String),
    /// The identifier member is not the origin the document came from (P-MD-1).
    #[error("metadata \"{member}\" is {got:?}, but the document was fetched from {expected}")]
    WrongIdentifier {
        /// `agent`, `issuer` or `resource`.
        member: &'static str,
        /// The origin the document was fetched from.
        expected: Origin,
        /// What the document says, shortened.
        got: String,
    },
    /// A URL member is not acceptable.
    #[error("metadata \"{member}\": {error}")]
    Url {
        /// The member, with an index for list entries (`redirect_uris[1]`).
        member: String,
        /// Why the URL was refused.
        error: UrlError,
    },
}

fn parse_document<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, MetadataError> {
    if bytes.len() > MAX_METADATA_LEN {
        return Err(MetadataError::TooLarge);
    }
    json_object(bytes).map_err(MetadataError::Json)
}

/// P-MD-1: "The document's `agent` / `issuer` / `resource` field must equal
/// the origin it was fetched from", compared as exact strings.
fn identifier(
    member: &'static str,
    got: &str,
    fetched_from: &Origin,
) -> Result<Origin, MetadataError> {
    if got == fetched_from.as_str() {
        Ok(fetched_from.clone())
    } else {
        Err(MetadataError::WrongIdentifier {
            member,
            expected: fetched_from.clone(),
            got: got.chars().take(128).collect(),
        })
    }
}

fn url(member: &str, text: &str, mode: OriginMode) -> Result<HttpsUrl, MetadataError> {
    HttpsUrl::parse(text, mode).map_err(|error| MetadataError::Url {
        member: member.to_owned(),
        error,
    })
}

fn optional_url(
    member: &str,
    text: Option<&str>,
    mode: OriginMode,
) -> Result<Option<HttpsUrl>, MetadataError> {
    text.map(|t| url(member, t, mode)).transpose()
}

/// Agent metadata, `/.well-known/aauth-agent` (E§8.1, D§9.1, profile: P-MD-2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentMetadata {
    /// The agent identifier.
    pub agent: Origin,
    /// The agent's JWKS.
    pub jwks_uri: HttpsUrl,
    /// Redirect URIs for user flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<RedirectUri>>,
    /// Human-readable name (peer text: escape before display).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Logo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<HttpsUrl>,
    /// Privacy policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<HttpsUrl>,
    /// Terms of service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<HttpsUrl>,
    /// Home page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub homepage: Option<HttpsUrl>,
}

#[derive(Deserialize)]
struct AgentWire {
    agent: String,
    jwks_uri: String,
    redirect_uris: Option<Vec<String>>,
    name: Option<String>,
    logo_uri: Option<String>,
    policy_uri: Option<String>,
    tos_uri: Option<String>,
    homepage: Option<String>,
}

impl AgentMetadata {
    /// Parses agent metadata fetched from `{fetched_from}/.well-known/aauth-agent`.
    pub fn from_json(
        bytes: &[u8],
        fetched_from: &Origin,
        mode: OriginMode,
    ) -> Result<Self, MetadataError> {
        let wire: AgentWire = parse_document(bytes)?;
        let redirect_uris = wire
            .redirect_uris
            .map(|uris| {
                uris.iter()
                    .enumerate()
                    .map(|(i, uri)| {
                        RedirectUri::parse(uri, mode).map_err(|error| MetadataError::Url {
                            member: format!("redirect_uris[{i}]"),
                            error,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Self {
            agent: identifier("agent", &wire.agent, fetched_from)?,
            jwks_uri: url("jwks_uri", &wire.jwks_uri, mode)?,
            redirect_uris,
            name: wire.name,
            logo_uri: optional_url("logo_uri", wire.logo_uri.as_deref(), mode)?,
            policy_uri: optional_url("policy_uri", wire.policy_uri.as_deref(), mode)?,
            tos_uri: optional_url("tos_uri", wire.tos_uri.as_deref(), mode)?,
            homepage: optional_url("homepage", wire.homepage.as_deref(), mode)?,
        })
    }
}

fn http_sig_names<S: serde::Serializer>(
    algs: &[Algorithm],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(algs.iter().map(|alg| alg.http_name()))
}

/// Auth server metadata, `/.well-known/aauth-issuer` (E§8.2, D§9.2,
/// profile: P-MD-2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthServerMetadata {
    /// The auth server's identifier.
    pub issuer: Origin,
    /// The auth server's JWKS.
    pub jwks_uri: HttpsUrl,
    /// Where `request_type` requests go (E§9.3).
    pub agent_token_endpoint: HttpsUrl,
    /// Where users authenticate and consent (E§9.5).
    pub agent_auth_endpoint: HttpsUrl,
    /// HTTP signature algorithms (RFC 9421 names); unknown ones are
    /// skipped on receipt (P-MD-2), absent reads as empty (D§9.2 omits it).
    #[serde(serialize_with = "http_sig_names")]
    pub agent_signing_algs_supported: Vec<Algorithm>,
    /// Supported `request_type` values; absent reads as empty (D§9.2 omits it).
    pub request_types_supported: Vec<RequestType>,
    /// Supported scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct AuthServerWire {
    issuer: String,
    jwks_uri: String,
    agent_token_endpoint: String,
    agent_auth_endpoint: String,
    #[serde(default)]
    agent_signing_algs_supported: Vec<String>,
    #[serde(default)]
    request_types_supported: Vec<RequestType>,
    scopes_supported: Option<Vec<String>>,
}

impl AuthServerMetadata {
    /// Parses auth server metadata fetched from `{fetched_from}/.well-known/aauth-issuer`.
    pub fn from_json(
        bytes: &[u8],
        fetched_from: &Origin,
        mode: OriginMode,
    ) -> Result<Self, MetadataError> {
        let wire: AuthServerWire = parse_document(bytes)?;
        Ok(Self {
            issuer: identifier("issuer", &wire.issuer, fetched_from)?,
            jwks_uri: url("jwks_uri", &wire.jwks_uri, mode)?,
            agent_token_endpoint: url("agent_token_endpoint", &wire.agent_token_endpoint, mode)?,
            agent_auth_endpoint: url("agent_auth_endpoint", &wire.agent_auth_endpoint, mode)?,
            // P-MD-2: "unknown algorithms in lists are skipped".
            agent_signing_algs_supported: wire
                .agent_signing_algs_supported
                .iter()
                .filter_map(|name| Algorithm::from_http_name(name))
                .collect(),
            request_types_supported: wire.request_types_supported,
            scopes_supported: wire.scopes_supported,
        })
    }
}

/// Resource metadata, `/.well-known/aauth-resource` (E§8.3, D§9.3,
/// profile: P-MD-2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceMetadata {
    /// The resource's identifier.
    pub resource: Origin,
    /// The resource's JWKS.
    pub jwks_uri: HttpsUrl,
    /// Where agents request resource tokens (E§9.2.5). E§8.3 requires it;
    /// D§9.3's example omits it, so it is optional on receipt. Ours always emit it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_token_endpoint: Option<HttpsUrl>,
    /// Scopes the resource supports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_scopes: Option<Vec<String>>,
    /// Descriptions for consent screens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_descriptions: Option<ScopeDescriptions>,
    /// Components every signature to this resource must cover (D§9.3, D§10.3, P-SIG-1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_signature_components: Option<Vec<String>>,
    /// A human-readable name for consent pages: an extension of this
    /// profile (neither E§8.3 nor D§9.3 has one; peers ignore it, P-MD-2).
    /// Peer text: escape before display. One longer than
    /// [`MAX_RESOURCE_NAME_CHARS`] or holding control characters is dropped
    /// on receipt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The longest resource `name` shown on a consent page.
pub const MAX_RESOURCE_NAME_CHARS: usize = 100;

#[derive(Deserialize)]
struct ResourceWire {
    resource: String,
    jwks_uri: String,
    resource_token_endpoint: Option<String>,
    supported_scopes: Option<Vec<String>>,
    scope_descriptions: Option<ScopeDescriptions>,
    additional_signature_components: Option<Vec<String>>,
    // Any JSON value: a name that is not a short string is ignored, never
    // a reason to refuse the document.
    name: Option<serde_json::Value>,
}

impl ResourceMetadata {
    /// Parses resource metadata fetched from `{fetched_from}/.well-known/aauth-resource`.
    pub fn from_json(
        bytes: &[u8],
        fetched_from: &Origin,
        mode: OriginMode,
    ) -> Result<Self, MetadataError> {
        let wire: ResourceWire = parse_document(bytes)?;
        Ok(Self {
            resource: identifier("resource", &wire.resource, fetched_from)?,
            jwks_uri: url("jwks_uri", &wire.jwks_uri, mode)?,
            resource_token_endpoint: optional_url(
                "resource_token_endpoint",
                wire.resource_token_endpoint.as_deref(),
                mode,
            )?,
            supported_scopes: wire.supported_scopes,
            scope_descriptions: wire.scope_descriptions,
            additional_signature_components: wire.additional_signature_components,
            name: wire
                .name
                .as_ref()
                .and_then(serde_json::Value::as_str)
                .filter(|name| {
                    !name.trim().is_empty()
                        && name.chars().count() <= MAX_RESOURCE_NAME_CHARS
                        && !name.chars().any(char::is_control)
                })
                .map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn origin(text: &str) -> Origin {
        Origin::parse(text, OriginMode::Dev).unwrap()
    }

    const PROD: OriginMode = OriginMode::Production;

    #[test]
    fn explainer_agent_example_parses() {
        // E§8.1
        let doc = br#"{
          "agent": "https://agent.example",
          "jwks_uri": "https://agent.example/jwks.json",
          "redirect_uris": [
            "https://agent.example/callback",
            "https://agent.example/aauth/callback"
          ],
          "name": "Example Agent",
          "logo_uri": "https://agent.example/logo.png",
          "policy_uri": "https://agent.example/privacy",
          "tos_uri": "https://agent.example/tos",
          "homepage": "https://agent.example"
        }"#;
        let md = AgentMetadata::from_json(doc, &origin("https://agent.example"), PROD).unwrap();
        assert_eq!(md.jwks_uri.as_str(), "https://agent.example/jwks.json");
        assert_eq!(md.redirect_uris.as_ref().unwrap().len(), 2);
        assert_eq!(md.name.as_deref(), Some("Example Agent"));
        assert_eq!(md.homepage.unwrap().as_str(), "https://agent.example");
    }

    #[test]
    fn explainer_auth_server_example_parses_and_skips_unknown_algorithms() {
        // E§8.2; profile: P-MD-2 — `rsa-pss-sha512` is skipped, not fatal.
        let doc = br#"{
          "issuer": "https://auth.example",
          "jwks_uri": "https://auth.example/jwks.json",
          "agent_token_endpoint": "https://auth.example/agent/token",
          "agent_auth_endpoint": "https://auth.example/agent/auth",
          "agent_signing_algs_supported": ["ed25519", "rsa-pss-sha512"],
          "request_types_supported": ["auth", "code", "exchange", "refresh"],
          "scopes_supported": ["profile", "email", "data.read", "data.write"]
        }"#;
        let md = AuthServerMetadata::from_json(doc, &origin("https://auth.example"), PROD).unwrap();
        assert_eq!(md.agent_signing_algs_supported, vec![Algorithm::Ed25519]);
        assert_eq!(
            md.request_types_supported,
            vec![
                RequestType::Auth,
                RequestType::Code,
                RequestType::Exchange,
                RequestType::Refresh
            ]
        );
        assert_eq!(md.scopes_supported.unwrap().len(), 4);
    }

    #[test]
    fn explainer_resource_example_parses_in_order() {
        // E§8.3
        let doc = br#"{
          "resource": "https://resource.example",
          "jwks_uri": "https://resource.example/jwks.json",
          "resource_token_endpoint": "https://resource.example/resource/token",
          "supported_scopes": ["data.read", "data.write", "data.delete"],
          "scope_descriptions": {
            "data.read": "Read access to your data and documents",
            "data.write": "Create and update your data and documents",
            "data.delete": "Permanently delete your data and documents"
          }
        }"#;
        let md =
            ResourceMetadata::from_json(doc, &origin("https://resource.example"), PROD).unwrap();
        let descriptions = md.scope_descriptions.unwrap();
        let order: Vec<&str> = descriptions.iter().map(|(s, _)| s).collect();
        assert_eq!(order, ["data.read", "data.write", "data.delete"]);
        assert_eq!(
            descriptions.get("data.delete"),
            Some("Permanently delete your data and documents")
        );
    }

    #[test]
    fn draft_examples_parse() {
        // D§9.1–9.3: fewer members than the explainer requires.
        AgentMetadata::from_json(
            br#"{"agent": "https://agent.example", "jwks_uri": "https://agent.example/.well-known/jwks.json"}"#,
            &origin("https://agent.example"),
            PROD,
        )
        .unwrap();
        let md = AuthServerMetadata::from_json(
            br#"{"issuer": "https://auth.example", "agent_token_endpoint": "https://auth.example/token",
                 "agent_auth_endpoint": "https://auth.example/authorize",
                 "jwks_uri": "https://auth.example/.well-known/jwks.json"}"#,
            &origin("https://auth.example"),
            PROD,
        )
        .unwrap();
        assert!(md.agent_signing_algs_supported.is_empty());
        let md = ResourceMetadata::from_json(
            br#"{"resource": "https://resource.example", "jwks_uri": "https://resource.example/.well-known/jwks.json",
                 "additional_signature_components": ["content-type", "content-digest"]}"#,
            &origin("https://resource.example"),
            PROD,
        )
        .unwrap();
        assert_eq!(md.resource_token_endpoint, None);
        assert_eq!(
            md.additional_signature_components.unwrap(),
            ["content-type", "content-digest"]
        );
    }

    #[test]
    fn identifier_must_equal_the_fetched_origin_exactly() {
        // profile: P-MD-1
        let from = origin("https://agent.example");
        for other in [
            "https://agent.example/",
            "https://Agent.example",
            "https://other.example",
            "https://agent.example:443",
        ] {
            let doc = json!({"agent": other, "jwks_uri": "https://agent.example/jwks"}).to_string();
            assert!(
                matches!(
                    AgentMetadata::from_json(doc.as_bytes(), &from, PROD),
                    Err(MetadataError::WrongIdentifier {
                        member: "agent",
                        ..
                    })
                ),
                "{other}"
            );
        }
    }

    #[test]
    fn urls_must_be_https_or_dev_loopback() {
        // profile: P-MD-1, P-MD-3
        let from = origin("https://auth.example");
        let doc = |jwks: &str| {
            json!({
                "issuer": "https://auth.example", "jwks_uri": jwks,
                "agent_token_endpoint": "https://auth.example/t", "agent_auth_endpoint": "https://auth.example/a"
            })
            .to_string()
        };
        for (bad, expect) in [
            ("http://auth.example/jwks", "Origin"),
            ("http://127.0.0.1:8080/jwks", "Origin"),
            ("/jwks.json", "NotAbsolute"),
            ("https://auth.example/jwks#k", "Fragment"),
            ("https://auth.example/jw ks", "Chars"),
            ("https://auth.example/%zz", "Chars"),
            ("https://user@auth.example/jwks", "Origin"),
        ] {
            let err = AuthServerMetadata::from_json(doc(bad).as_bytes(), &from, PROD).unwrap_err();
            assert!(
                matches!(&err, MetadataError::Url { member, error } if member == "jwks_uri" && format!("{error:?}").starts_with(expect)),
                "{bad}: {err:?}"
            );
        }
        let long = format!("https://auth.example/{}", "a".repeat(MAX_URL_LEN));
        assert!(matches!(
            AuthServerMetadata::from_json(doc(&long).as_bytes(), &from, PROD),
            Err(MetadataError::Url {
                error: UrlError::TooLong,
                ..
            })
        ));
        let dev_from = origin("http://127.0.0.1:4000");
        let dev_doc = json!({
            "issuer": "http://127.0.0.1:4000", "jwks_uri": "http://127.0.0.1:4000/jwks?x=%20",
            "agent_token_endpoint": "http://localhost:4000/t", "agent_auth_endpoint": "http://127.0.0.1:4000/a"
        })
        .to_string();
        AuthServerMetadata::from_json(dev_doc.as_bytes(), &dev_from, OriginMode::Dev).unwrap();
        assert!(AuthServerMetadata::from_json(dev_doc.as_bytes(), &dev_from, PROD).is_err());
    }

    #[test]
    fn loopback_redirect_uris_are_accepted_in_any_mode() {
        // profile: P-AS-4 (RFC 8252 §7.3)
        for ok in [
            "http://127.0.0.1/cb",
            "http://127.0.0.1:51004/cb",
            "http://[::1]/cb",
            "http://[::1]:8080",
            "https://agent.example/cb?x=1",
        ] {
            RedirectUri::parse(ok, PROD).unwrap();
        }
        for bad in [
            "http://localhost/cb",
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://[::1]x/cb",
            "com.example.app:/cb",
            "https://agent.example/cb#f",
        ] {
            assert!(RedirectUri::parse(bad, PROD).is_err(), "{bad}");
        }
        let doc =
            json!({"agent": "https://agent.example", "jwks_uri": "https://agent.example/jwks",
                         "redirect_uris": ["https://agent.example/cb", "http://evil.example/cb"]})
            .to_string();
        let err = AgentMetadata::from_json(doc.as_bytes(), &origin("https://agent.example"), PROD)
            .unwrap_err();
        assert!(
            matches!(err, MetadataError::Url { ref member, .. } if member == "redirect_uris[1]"),
            "{err:?}"
        );
    }

    #[test]
    fn documents_are_bounded_and_must_be_objects() {
        // profile: P-MD-3
        let from = origin("https://agent.example");
        let mut big =
            json!({"agent": "https://agent.example", "jwks_uri": "https://agent.example/j"})
                .to_string();
        big.pop();
        big.push_str(&format!(r#","pad":"{}"}}"#, "x".repeat(MAX_METADATA_LEN)));
        assert_eq!(
            AgentMetadata::from_json(big.as_bytes(), &from, PROD),
            Err(MetadataError::TooLarge)
        );
        assert!(matches!(
            AgentMetadata::from_json(
                br#"["https://agent.example", "https://agent.example/j"]"#,
                &from,
                PROD
            ),
            Err(MetadataError::Json(_))
        ));
        assert!(matches!(
            AgentMetadata::from_json(br#"{"agent": "https://agent.example"}"#, &from, PROD),
            Err(MetadataError::Json(ref m)) if m.contains("jwks_uri")
        ));
    }

    #[test]
    fn a_resource_name_is_kept_only_when_it_is_short_plain_text() {
        let resource = origin("http://127.0.0.1:4001");
        let parse = |name: serde_json::Value| {
            let doc = json!({
                "resource": "http://127.0.0.1:4001",
                "jwks_uri": "http://127.0.0.1:4001/jwks.json",
                "name": name,
            });
            ResourceMetadata::from_json(doc.to_string().as_bytes(), &resource, OriginMode::Dev)
                .expect("a bad name never refuses the document")
                .name
        };
        assert_eq!(parse(json!("AAuth notes")).as_deref(), Some("AAuth notes"));
        assert_eq!(
            parse(json!("x".repeat(MAX_RESOURCE_NAME_CHARS))).map(|n| n.len()),
            Some(100)
        );
        for dropped in [
            json!("x".repeat(MAX_RESOURCE_NAME_CHARS + 1)),
            json!("two\nlines"),
            json!("   "),
            json!(42),
            json!({"en": "Notes"}),
        ] {
            assert_eq!(parse(dropped.clone()), None, "{dropped}");
        }
    }

    #[test]
    fn unknown_members_are_ignored_and_duplicate_scope_descriptions_refused() {
        let from = origin("https://resource.example");
        let doc =
            br#"{"resource": "https://resource.example", "jwks_uri": "https://resource.example/j",
                       "future_member": {"x": 1}, "scope_descriptions": {"a": "A"}}"#;
        ResourceMetadata::from_json(doc, &from, PROD).unwrap();
        let dup =
            br#"{"resource": "https://resource.example", "jwks_uri": "https://resource.example/j",
                       "scope_descriptions": {"a": "A", "a": "B"}}"#;
        assert!(matches!(
            ResourceMetadata::from_json(dup, &from, PROD),
            Err(MetadataError::Json(_))
        ));
    }

    #[test]
    fn request_types_keep_unknown_values() {
        assert_eq!(
            RequestType::from_wire("device_auth"),
            RequestType::Unknown("device_auth".into())
        );
        let json =
            serde_json::to_string(&[RequestType::Auth, RequestType::Unknown("x".into())]).unwrap();
        assert_eq!(json, r#"["auth","x"]"#);
    }

    #[test]
    fn our_documents_serialise_and_parse_back() {
        let issuer = origin("https://auth.example");
        let md = AuthServerMetadata {
            issuer: issuer.clone(),
            jwks_uri: HttpsUrl::from_origin(&issuer, "/jwks.json").unwrap(),
            agent_token_endpoint: HttpsUrl::from_origin(&issuer, "/agent/token").unwrap(),
            agent_auth_endpoint: HttpsUrl::from_origin(&issuer, "/agent/auth").unwrap(),
            agent_signing_algs_supported: vec![Algorithm::Ed25519, Algorithm::EcdsaP256Sha256],
            request_types_supported: vec![
                RequestType::Auth,
                RequestType::Code,
                RequestType::Refresh,
                RequestType::Exchange,
            ],
            scopes_supported: None,
        };
        let json = serde_json::to_string(&md).unwrap();
        assert!(
            json.contains(r#""agent_signing_algs_supported":["ed25519","ecdsa-p256-sha256"]"#),
            "{json}"
        );
        assert_eq!(
            AuthServerMetadata::from_json(json.as_bytes(), &issuer, PROD).unwrap(),
            md
        );

        let resource = origin("http://127.0.0.1:4001");
        let md = ResourceMetadata {
            resource: resource.clone(),
            jwks_uri: HttpsUrl::from_origin(&resource, "/jwks.json").unwrap(),
            resource_token_endpoint: Some(
                HttpsUrl::from_origin(&resource, "/resource/token").unwrap(),
            ),
            supported_scopes: Some(vec!["b".into(), "a".into()]),
            scope_descriptions: Some(ScopeDescriptions::new([
                ("b".into(), "B".into()),
                ("a".into(), "A".into()),
            ])),
            additional_signature_components: None,
            name: Some("Notes".into()),
        };
        let json = serde_json::to_string(&md).unwrap();
        assert!(
            json.contains(r#""scope_descriptions":{"b":"B","a":"A"}"#),
            "{json}"
        );
        assert_eq!(
            ResourceMetadata::from_json(json.as_bytes(), &resource, OriginMode::Dev).unwrap(),
            md
        );
    }

    #[test]
    fn well_known_names() {
        let o = origin("https://agent.example");
        assert_eq!(
            o.well_known(AGENT_WELL_KNOWN),
            "https://agent.example/.well-known/aauth-agent"
        );
        assert_eq!(ISSUER_WELL_KNOWN, "aauth-issuer");
        assert_eq!(RESOURCE_WELL_KNOWN, "aauth-resource");
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in ".{0,300}") {
            let from = origin("https://x.example");
            let _ = AgentMetadata::from_json(text.as_bytes(), &from, OriginMode::Dev);
            let _ = AuthServerMetadata::from_json(text.as_bytes(), &from, OriginMode::Dev);
            let _ = ResourceMetadata::from_json(text.as_bytes(), &from, OriginMode::Dev);
            let _ = HttpsUrl::parse(&text, OriginMode::Dev);
            let _ = RedirectUri::parse(&text, OriginMode::Production);
        }

        #[test]
        fn url_members_never_panic(url in "[a-z]{0,6}://[ -~]{0,60}") {
            let from = origin("https://x.example");
            let doc = json!({"resource": "https://x.example", "jwks_uri": url, "resource_token_endpoint": url}).to_string();
            let _ = ResourceMetadata::from_json(doc.as_bytes(), &from, OriginMode::Production);
            let _ = RedirectUri::parse(&url, OriginMode::Dev);
        }
    }
}
