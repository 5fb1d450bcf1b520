//! Covered components (RFC 9421 §2) in the scope of the profile: the derived
//! components `@method`, `@authority`, `@path`, `@query` (§2.2) and header
//! fields (§2.1), without component parameters (profile: P-SIG-8).

use std::borrow::Cow;
use std::fmt;

use sfv::{BareItem, Item, ItemSerializer, RefBareItem, StringRef};

use super::HttpSigError;
use super::request::{HeaderSource, Request};
use crate::error::echo;

/// A covered component the profile supports (RFC 9421 §2, profile: P-SIG-8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Component {
    /// `@method` (RFC 9421 §2.2.1).
    Method,
    /// `@authority` (§2.2.3), from the verifier's configuration (P-SIG-5).
    Authority,
    /// `@path` (§2.2.6).
    Path,
    /// `@query` (§2.2.7), only when the target has a `?` (P-SIG-1).
    Query,
    /// An HTTP field by its lowercase name (§2.1).
    Field(FieldName),
}

/// A lowercase HTTP field name (RFC 9110 §5.1 token, RFC 9421 §2.1: "the
/// lowercased form of its field name").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldName(Cow<'static, str>);

impl FieldName {
    /// `content-type`.
    pub const CONTENT_TYPE: Self = Self(Cow::Borrowed("content-type"));
    /// `content-digest` (RFC 9530).
    pub const CONTENT_DIGEST: Self = Self(Cow::Borrowed("content-digest"));
    /// `nonce` (E§10.5).
    pub const NONCE: Self = Self(Cow::Borrowed("nonce"));
    /// `signature-key` (E§10, SK0).
    pub const SIGNATURE_KEY: Self = Self(Cow::Borrowed("signature-key"));

    /// Checks a field name: a non-empty lowercase token.
    pub fn new(name: &str) -> Result<Self, HttpSigError> {
        let ok = !name.is_empty()
            && name.len() <= 128
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            });
        if ok {
            Ok(Self(Cow::Owned(name.to_owned())))
        } else {
            Err(HttpSigError::BadComponent(echo(name)))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Component {
    /// The component name as it appears (quoted) in `Signature-Input`.
    pub fn name(&self) -> &str {
        match self {
            Self::Method => "@method",
            Self::Authority => "@authority",
            Self::Path => "@path",
            Self::Query => "@query",
            Self::Field(name) => name.as_str(),
        }
    }

    /// Parses a component identifier (RFC 9421 §2: an sf-string with
    /// parameters). Parameters (`sf`, `key`, `bs`, `req`, `tr`, `name`) and
    /// derived components outside the profile are refused (P-SIG-8).
    pub(crate) fn from_item(item: &Item) -> Result<Self, HttpSigError> {
        let BareItem::String(name) = &item.bare_item else {
            return Err(HttpSigError::BadComponent(echo(&serialize_item(item))));
        };
        let name = name.as_str();
        if !item.params.is_empty() {
            return Err(HttpSigError::UnsupportedComponent(echo(&serialize_item(
                item,
            ))));
        }
        match name {
            "@method" => Ok(Self::Method),
            "@authority" => Ok(Self::Authority),
            "@path" => Ok(Self::Path),
            "@query" => Ok(Self::Query),
            // P-SIG-8: `@target-uri`, `@scheme`, `@request-target`,
            // `@query-param`, `@status` and any unregistered derived name are
            // refused with the same typed error, never a panic.
            _ if name.starts_with('@') => Err(HttpSigError::UnsupportedComponent(echo(
                &serialize_item(item),
            ))),
            _ => FieldName::new(name).map(Self::Field),
        }
    }

    /// The component identifier as an sf-string item (no parameters).
    pub(crate) fn to_item(&self) -> Result<Item, HttpSigError> {
        let s = StringRef::from_str(self.name())
            .map_err(|_| HttpSigError::BadComponent(echo(self.name())))?;
        Ok(Item::new(s))
    }

    /// The component value (RFC 9421 §2.1, §2.2) for `request`.
    pub(crate) fn value<'a, H>(
        &self,
        request: &Request<'a, H>,
    ) -> Result<Cow<'a, str>, HttpSigError>
    where
        H: HeaderSource + ?Sized + 'a,
    {
        let value = match self {
            // §2.2.1: "The value is the method name ... case-sensitive".
            Self::Method => {
                if !is_token(request.method) {
                    return Err(HttpSigError::BadRequest("method"));
                }
                Cow::Borrowed(request.method)
            }
            // §2.2.3: "The value MUST be normalized ... the host lowercased".
            Self::Authority => {
                let authority = request.authority;
                if authority.is_empty() || !authority.bytes().all(is_visible) {
                    return Err(HttpSigError::BadRequest("authority"));
                }
                if authority.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(authority.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(authority)
                }
            }
            // §2.2.6: "the target path of the request message".
            Self::Path => Cow::Borrowed(split_target(request.target)?.0),
            // §2.2.7: "the query ... including the leading ? character";
            // E§10.3: covering @query without a query is refused (P-SIG-1).
            Self::Query => match split_target(request.target)?.1 {
                Some(q) => Cow::Borrowed(q),
                None => return Err(HttpSigError::QueryWithoutQuestionMark),
            },
            Self::Field(name) => {
                let value = request
                    .field_value(name.as_str())
                    .ok_or_else(|| HttpSigError::MissingHeader(name.as_str().to_owned()))?;
                // A line break would let one field forge further base lines.
                if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                    return Err(HttpSigError::BadHeaderValue(name.as_str().to_owned()));
                }
                value
            }
        };
        Ok(value)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Splits an origin-form target into the path and the query with its `?`.
pub(crate) fn split_target(target: &str) -> Result<(&str, Option<&str>), HttpSigError> {
    if !target.starts_with('/') || !target.bytes().all(|b| is_visible(b) && b != b'#') {
        return Err(HttpSigError::BadRequest("target"));
    }
    Ok(match target.find('?') {
        Some(at) => (
            target.get(..at).unwrap_or(target),
            Some(target.get(at..).unwrap_or("?")),
        ),
        None => (target, None),
    })
}

fn is_visible(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An item serialised as it appears in `Signature-Input` (for messages and
/// the signature base).
pub(crate) fn serialize_item(item: &Item) -> String {
    ItemSerializer::new()
        .bare_item(RefBareItem::from(&item.bare_item))
        .parameters(&item.params)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfv::Parser;

    fn parse(text: &str) -> Result<Component, HttpSigError> {
        let item: Item = Parser::new(text).parse().unwrap();
        Component::from_item(&item)
    }

    #[test]
    fn parses_the_profile_components() {
        assert_eq!(parse("\"@method\"").unwrap(), Component::Method);
        assert_eq!(parse("\"@authority\"").unwrap(), Component::Authority);
        assert_eq!(parse("\"@path\"").unwrap(), Component::Path);
        assert_eq!(parse("\"@query\"").unwrap(), Component::Query);
        assert_eq!(
            parse("\"signature-key\"").unwrap(),
            Component::Field(FieldName::SIGNATURE_KEY)
        );
    }

    #[test]
    fn refuses_derived_components_outside_the_profile() {
        // profile: P-SIG-8
        for text in [
            "\"@target-uri\"",
            "\"@scheme\"",
            "\"@request-target\"",
            "\"@query-param\";name=\"Pet\"",
            "\"@status\"",
            "\"@signature-params\"",
            "\"@unknown\"",
        ] {
            assert!(
                matches!(parse(text), Err(HttpSigError::UnsupportedComponent(ref s)) if s == text),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_component_parameters() {
        // profile: P-SIG-8
        for text in [
            "\"content-digest\";sf",
            "\"signature-key\";key=\"sig\"",
            "\"x\";bs",
            "\"content-type\";req",
            "\"x\";tr",
        ] {
            assert!(
                matches!(parse(text), Err(HttpSigError::UnsupportedComponent(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_malformed_identifiers() {
        for text in [
            "\"Content-Type\"",
            "\"\"",
            "\"a b\"",
            "method",
            "1",
            ":AA==:",
        ] {
            assert!(
                matches!(parse(text), Err(HttpSigError::BadComponent(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn query_is_kept_verbatim_with_its_question_mark() {
        // profile: P-SIG-1 — "/x?" gives "@query" = "?".
        assert_eq!(split_target("/x?").unwrap(), ("/x", Some("?")));
        assert_eq!(split_target("/x?a=1&b").unwrap(), ("/x", Some("?a=1&b")));
        assert_eq!(split_target("/x").unwrap(), ("/x", None));
        assert_eq!(split_target("/a?b?c").unwrap(), ("/a", Some("?b?c")));
    }

    #[test]
    fn refuses_targets_that_are_not_origin_form() {
        for bad in ["", "x", "*", "https://a/x", "/a b", "/a\n", "/a#f"] {
            assert!(
                matches!(split_target(bad), Err(HttpSigError::BadRequest("target"))),
                "{bad:?}"
            );
        }
    }
}
