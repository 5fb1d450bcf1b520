//! The `Signature-Key` request header: where the key that verifies the HTTP
//! signature comes from (SK0§2, E§10.1, E§10.1.1; profile: P-SK-1, P-SK-2,
//! P-SK-3, P-SK-5).
//!
//! Two spellings reach us and both become one typed [`SignatureKeyField`]:
//!
//! * SK0's structured-field Dictionary (SK0§2; what we emit, P-SK-1), parsed
//!   and serialised through `sfv`:
//!   `sig=hwk;kty="OKP";crv="Ed25519";x="…"`,
//!   `sig=jwks_uri;id="https://agent.example";well-known="aauth-agent";kid="k1"`,
//!   `sig=jwt;jwt="…"`, `sig=x509;x5u="…";x5t="…"`.
//! * The explainer's parenthesised form (E§10.1, E§10.6; P-SK-2),
//!   `sig=(scheme=hwk kty="OKP" crv="Ed25519" x="…")`. `name=value` inside an
//!   inner list is not a structured field, so when sfv refuses a value that
//!   starts `label=(`, a small, bounded, hand-written parser reads it: a
//!   label, `=(`, space-separated `name=value` pairs whose value is
//!   an sf-token or an sf-string, `)`, and nothing after it. (E§10.1 speaks
//!   of "an Inner List whose parameters describe key discovery", but every
//!   example and the deployed peer put everything inside the parentheses;
//!   trailing `;parameters` are rejected.)
//!
//! Rules shared by both spellings (P-SK-2): the scheme `jwks` means
//! `jwks_uri`, the parameter `dwk` means `well-known` (both present is an
//! error), the explainer's direct mode `jwks="<url>"` is refused, a parameter
//! named twice is refused, and unknown parameters are ignored. Only in the
//! parenthesised form does a missing `well-known` default to `aauth-agent`.
//! The parser does not fetch or trust anything: the verifier parses `id` as
//! an [`Origin`] in its mode, refuses a `well-known` other
//! than `aauth-agent` (P-SK-3), validates a `jwt` by its `typ` (P-SK-4) and
//! reports `x509` as unsupported (P-SK-5).
//!
//! Every error maps to `invalid_signature` (P-ERR-1: "malformed …
//! `Signature-Key`").

use std::convert::Infallible;
use std::fmt;

use sfv::visitor::{DictionaryVisitor, EntryVisitor, Ignored, ItemVisitor, ParameterVisitor};
use sfv::{BareItemFromInput, DictSerializer, ItemSerializer, KeyRef, Parser, StringRef, TokenRef};

use crate::error::{Condition, echo};
use crate::ids::{Kid, Label, Origin, StringError};
use crate::jwk::{JwkError, JwkMembers, PublicKey};

/// Longest `Signature-Key` value read; a `jwt` is a few KiB at most.
pub const MAX_HEADER_LEN: usize = 16 * 1024;

/// Most parameters one member may carry (the largest scheme needs five).
pub const MAX_PARAMETERS: usize = 32;

/// The `well-known` name that identifies an agent (E§8.1, P-SK-3), and the
/// parenthesised form's default when `well-known` is absent (P-SK-2).
pub const AAUTH_AGENT_WELL_KNOWN: &str = "aauth-agent";

/// A key distribution scheme (SK0§5.2.2). A registry that grows (SK4 adds
/// `jkt-jwt`): code outside this crate must expect schemes it does not
/// know yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// SK0§2.3 Header Web Key: the public key inline.
    Hwk,
    /// SK0§2.4 identified signer, key found through metadata.
    JwksUri,
    /// SK0§2.6 a JWT whose `cnf.jwk` is the key.
    Jwt,
    /// SK0§2.5 X.509 certificate chain.
    X509,
}

impl Scheme {
    /// The SK0 spelling: `hwk`, `jwks_uri`, `jwt`, `x509`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hwk => "hwk",
            Self::JwksUri => "jwks_uri",
            Self::Jwt => "jwt",
            Self::X509 => "x509",
        }
    }

    /// Reads a scheme name; `jwks` is the explainer's name for `jwks_uri` (P-SK-2).
    fn from_wire(name: &str) -> Option<Self> {
        match name {
            "hwk" => Some(Self::Hwk),
            "jwks_uri" | "jwks" => Some(Self::JwksUri),
            "jwt" => Some(Self::Jwt),
            "x509" => Some(Self::X509),
            _ => None,
        }
    }

    /// The scheme as an sf-token in the given syntax. The parenthesised form
    /// spells `jwks_uri` as the explainer does, `jwks`, which is what its
    /// peers understand (E§10.1, P-SK-2).
    fn token(self, syntax: Syntax) -> &'static TokenRef {
        match (self, syntax) {
            (Self::Hwk, _) => sfv::token_ref("hwk"),
            (Self::JwksUri, Syntax::Sk0) => sfv::token_ref("jwks_uri"),
            (Self::JwksUri, Syntax::Parenthesised) => sfv::token_ref("jwks"),
            (Self::Jwt, _) => sfv::token_ref("jwt"),
            (Self::X509, _) => sfv::token_ref("x509"),
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the verification key comes from: one member of `Signature-Key` (SK0§2.3–2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureKey {
    /// SK0§2.3 — inline public key (kty/crv/x[/y]); `alg` present → error (SK0
    /// "MUST NOT be present"); `kid` tolerated and ignored.
    Hwk(PublicKey),
    /// SK0§2.4 — `id`, `well-known`, `kid` all REQUIRED (P-SK-3). `id` is kept
    /// as the raw string; the caller parses it as an Origin with its mode.
    JwksUri {
        /// Signer identifier, as received.
        id: String,
        /// Metadata document name under `/.well-known/`, as received.
        well_known: String,
        /// Key identifier in the signer's JWKS.
        kid: Kid,
    },
    /// SK0§2.6 — a compact JWT carrying `cnf.jwk` (an agent or auth token, P-SK-4).
    Jwt {
        /// The compact JWT, as received.
        jwt: String,
    },
    /// SK0§2.5 — parsed so that it can be reported as unsupported (P-SK-5).
    X509 {
        /// URL of the PEM certificate chain.
        x5u: String,
        /// BASE64URL(SHA256(DER(leaf certificate))).
        x5t: String,
    },
}

impl SignatureKey {
    /// The scheme of this key reference (SK0§5.2.2).
    pub fn scheme(&self) -> Scheme {
        match self {
            Self::Hwk(_) => Scheme::Hwk,
            Self::JwksUri { .. } => Scheme::JwksUri,
            Self::Jwt { .. } => Scheme::Jwt,
            Self::X509 { .. } => Scheme::X509,
        }
    }

    /// The parameters we emit, in SK0's order, by name.
    fn wire_parameters(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Hwk(key) => {
                let JwkMembers { kty, crv, x, y, .. } = key.to_members();
                [("kty", kty), ("crv", crv), ("x", x), ("y", y)]
                    .into_iter()
                    .filter_map(|(name, value)| value.map(|v| (name, v)))
                    .collect()
            }
            Self::JwksUri {
                id,
                well_known,
                kid,
            } => vec![
                ("id", id.clone()),
                ("well-known", well_known.clone()),
                ("kid", kid.as_str().to_owned()),
            ],
            Self::Jwt { jwt } => vec![("jwt", jwt.clone())],
            Self::X509 { x5u, x5t } => vec![("x5u", x5u.clone()), ("x5t", x5t.clone())],
        }
    }
}

/// Which spelling of the header was received, or is to be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Syntax {
    /// SK0§2's structured-field Dictionary (P-SK-1); what we emit by default.
    #[default]
    Sk0,
    /// The explainer's `label=(scheme=… name="…" …)` (E§10.1, P-SK-2).
    Parenthesised,
}

/// A parsed `Signature-Key` header: its one label and key reference (E§10.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureKeyField {
    /// The dictionary member name; must equal the `Signature-Input` and
    /// `Signature` labels (E§10.1.1 step 6, checked by the verifier).
    pub label: Label,
    /// Where the key comes from.
    pub key: SignatureKey,
    /// The spelling it arrived in (constructors set [`Syntax::Sk0`]).
    pub syntax: Syntax,
}

/// Why a `Signature-Key` value was refused. Every variant is a malformed
/// `Signature-Key` (P-ERR-1: `invalid_signature`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureKeyError {
    /// Over [`MAX_HEADER_LEN`].
    #[error("Signature-Key is longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    /// Empty or only spaces.
    #[error("Signature-Key is empty")]
    Empty,
    /// Not a structured-field Dictionary (RFC 8941 §4.2.2).
    #[error("Signature-Key is not a valid structured-field dictionary: {0}")]
    Syntax(String),
    /// The parenthesised form broke its grammar at a byte offset.
    #[error("Signature-Key is malformed at byte {at}: expected {expected}")]
    Parenthesised {
        /// Offset into the header value.
        at: usize,
        /// What the grammar needed there.
        expected: &'static str,
    },
    /// E§10.1.1 step 2: more than one member (a repeated label counts twice).
    #[error("Signature-Key must contain exactly one member, found more than one")]
    MultipleMembers,
    /// The label is not a valid signature label.
    #[error("Signature-Key label is invalid: {0}")]
    Label(StringError),
    /// SK0§2: the member value must be a scheme token, not an inner list.
    #[error("Signature-Key member must be a scheme token with parameters, not an inner list")]
    InnerList,
    /// SK0§2: the scheme is a token.
    #[error("Signature-Key scheme must be a token, not a {0}")]
    SchemeNotToken(&'static str),
    /// A scheme outside SK0§5.2.2 (and the `jwks` alias).
    #[error("Signature-Key scheme {0:?} is unknown (known: hwk, jwks_uri, jwt, x509)")]
    UnknownScheme(String),
    /// The parenthesised form has no `scheme=`.
    #[error("Signature-Key has no \"scheme\" parameter")]
    MissingScheme,
    /// A `scheme` parameter in SK0 syntax, where the scheme is the member value.
    #[error(
        "Signature-Key parameter \"scheme\" is not allowed in the dictionary form, where the scheme is the member value"
    )]
    SchemeParameter,
    /// Over [`MAX_PARAMETERS`].
    #[error("Signature-Key has more than {MAX_PARAMETERS} parameters")]
    TooManyParameters,
    /// The same parameter twice.
    #[error("Signature-Key parameter {0:?} appears more than once")]
    DuplicateParameter(String),
    /// A parameter of the wrong structured-field type.
    #[error("Signature-Key parameter {name:?} must be a {expected}, not a {got}")]
    ParameterType {
        /// The parameter.
        name: &'static str,
        /// The type it must have.
        expected: &'static str,
        /// The type it had.
        got: &'static str,
    },
    /// A parameter the scheme requires is absent (SK0§2.4–2.6, P-SK-3).
    #[error("Signature-Key scheme {scheme} requires the parameter {name:?}")]
    MissingParameter {
        /// The scheme.
        scheme: Scheme,
        /// The missing parameter.
        name: &'static str,
    },
    /// P-SK-2: `dwk` is an alias of `well-known`; both at once is ambiguous.
    #[error("Signature-Key has both \"well-known\" and its alias \"dwk\"")]
    ConflictingWellKnown,
    /// P-SK-2: the explainer's direct JWKS mode (E§10.7 mode 1) is not supported.
    #[error(
        "Signature-Key parameter \"jwks\" (direct JWKS URL) is not supported: send id, well-known and kid"
    )]
    DirectJwksUrl,
    /// SK0§2.3: "The alg parameter MUST NOT be present".
    #[error("Signature-Key hwk must not contain \"alg\" (the algorithm follows from the key)")]
    HwkAlg,
    /// The hwk parameters are not a supported public key.
    #[error("Signature-Key hwk key is invalid: {0}")]
    HwkKey(JwkError),
    /// The jwks_uri `kid` is not a valid key identifier.
    #[error("Signature-Key kid is invalid: {0}")]
    Kid(StringError),
    /// Emitting: a value is not printable ASCII, so no sf-string can carry it.
    #[error("Signature-Key parameter {0:?} cannot be sent: it is not printable ASCII")]
    NotRepresentable(&'static str),
}

impl SignatureKeyError {
    /// The P-ERR-1 row: a malformed `Signature-Key` is `invalid_signature`.
    pub fn condition(&self) -> Condition {
        match self {
            Self::TooLong
            | Self::Empty
            | Self::Syntax(_)
            | Self::Parenthesised { .. }
            | Self::MultipleMembers
            | Self::Label(_)
            | Self::InnerList
            | Self::SchemeNotToken(_)
            | Self::UnknownScheme(_)
            | Self::MissingScheme
            | Self::SchemeParameter
            | Self::TooManyParameters
            | Self::DuplicateParameter(_)
            | Self::ParameterType { .. }
            | Self::MissingParameter { .. }
            | Self::ConflictingWellKnown
            | Self::DirectJwksUrl
            | Self::HwkAlg
            | Self::HwkKey(_)
            | Self::Kid(_)
            | Self::NotRepresentable(_) => Condition::SignatureInvalid,
        }
    }
}

/// Parses a `Signature-Key` header value in either syntax (SK0§2, E§10.1, P-SK-2).
pub fn parse(header_value: &str) -> Result<SignatureKeyField, SignatureKeyError> {
    if header_value.len() > MAX_HEADER_LEN {
        return Err(SignatureKeyError::TooLong);
    }
    // RFC 8941 §4.2: leading and trailing spaces are discarded.
    let value = header_value.trim_matches(' ');
    if value.is_empty() {
        return Err(SignatureKeyError::Empty);
    }
    match parse_sk0(value) {
        // `name=value` pairs inside parentheses are not a structured field, so
        // the explainer's form always fails sfv; a label directly followed by
        // `=(` then goes to its own parser, whose errors are the precise ones.
        Err(SignatureKeyError::Syntax(_))
            if value.trim_start_matches(is_key_char).starts_with("=(") =>
        {
            let offset = header_value.len() - header_value.trim_start_matches(' ').len();
            parse_parenthesised(value, offset)
        }
        result => result,
    }
}

impl SignatureKeyField {
    /// `label=hwk;kty=…` for a public key (SK0§2.3).
    pub fn hwk(label: Label, key: &PublicKey) -> Self {
        Self {
            label,
            key: SignatureKey::Hwk(key.clone()),
            syntax: Syntax::Sk0,
        }
    }

    /// `label=jwks_uri;id=…;well-known=…;kid=…` (SK0§2.4, P-SK-3).
    pub fn jwks_uri(label: Label, id: &Origin, well_known: &str, kid: Kid) -> Self {
        Self {
            label,
            key: SignatureKey::JwksUri {
                id: id.as_str().to_owned(),
                well_known: well_known.to_owned(),
                kid,
            },
            syntax: Syntax::Sk0,
        }
    }

    /// `label=jwt;jwt=…` for an agent or auth token (SK0§2.6).
    pub fn jwt(label: Label, token: impl Into<String>) -> Self {
        Self {
            label,
            key: SignatureKey::Jwt { jwt: token.into() },
            syntax: Syntax::Sk0,
        }
    }

    /// The header value in the given syntax: SK0's dictionary through `sfv`
    /// (P-SK-1), or the explainer's parenthesised form (P-SK-2, with
    /// `scheme=jwks` and an explicit `well-known`). Fails only when a value
    /// is not printable ASCII.
    pub fn to_header_value(&self, syntax: Syntax) -> Result<String, SignatureKeyError> {
        let parameters = self.key.wire_parameters();
        let checked = parameters
            .iter()
            .map(|(name, value)| {
                let key = KeyRef::from_str(name)
                    .map_err(|_| SignatureKeyError::NotRepresentable(name))?;
                let value = StringRef::from_str(value)
                    .map_err(|_| SignatureKeyError::NotRepresentable(name))?;
                Ok((key, value))
            })
            .collect::<Result<Vec<_>, SignatureKeyError>>()?;
        let label = KeyRef::from_str(self.label.as_str())
            .map_err(|_| SignatureKeyError::NotRepresentable("label"))?;
        let scheme = self.key.scheme().token(syntax);
        match syntax {
            Syntax::Sk0 => {
                let mut dict = DictSerializer::new();
                dict.bare_item(label, scheme).parameters(checked);
                dict.finish().ok_or(SignatureKeyError::Empty)
            }
            Syntax::Parenthesised => {
                // Not a structured field, so no sfv serialiser exists for the
                // whole; the label, names and scheme are valid sf-keys and
                // sf-tokens by construction, and each value is an sf-string
                // serialised (quoted and escaped) by sfv.
                let mut out = String::with_capacity(
                    64 + parameters.iter().map(|(_, v)| v.len() + 16).sum::<usize>(),
                );
                out.push_str(label.as_str());
                out.push_str("=(scheme=");
                out.push_str(scheme.as_str());
                for (name, value) in checked {
                    out.push(' ');
                    out.push_str(name.as_str());
                    out.push('=');
                    let _: &mut String = ItemSerializer::with_buffer(&mut out)
                        .bare_item(value)
                        .finish();
                }
                out.push(')');
                Ok(out)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Reading: both syntaxes collect a label, a scheme and parameters as written,
// then one function gives them meaning.

/// A parameter value as written, before its meaning is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Raw {
    /// An sf-string (unescaped).
    String(String),
    /// An sf-token.
    Token(String),
    /// Another structured-field type, named for the error description.
    Other(&'static str),
}

impl Raw {
    fn kind(&self) -> &'static str {
        match self {
            Self::String(_) => "string",
            Self::Token(_) => "token",
            Self::Other(kind) => kind,
        }
    }
}

impl From<BareItemFromInput<'_>> for Raw {
    fn from(item: BareItemFromInput<'_>) -> Self {
        match item {
            BareItemFromInput::String(s) => Self::String(s.as_str().to_owned()),
            BareItemFromInput::Token(t) => Self::Token(t.as_str().to_owned()),
            BareItemFromInput::Integer(_) => Self::Other("integer"),
            BareItemFromInput::Decimal(_) => Self::Other("decimal"),
            BareItemFromInput::ByteSequence(_) => Self::Other("byte sequence"),
            BareItemFromInput::Boolean(_) => Self::Other("boolean"),
            BareItemFromInput::Date(_) => Self::Other("date"),
            BareItemFromInput::DisplayString(_) => Self::Other("display string"),
        }
    }
}

/// Where the scheme is written.
enum SchemeSource {
    /// SK0: the member's bare item.
    Item(Raw),
    /// Parenthesised: the `scheme=` pair.
    Parameter,
}

/// The parameters of one member, as written and in order.
struct Parameters(Vec<(String, Raw)>);

impl Parameters {
    /// Refuses repeats. RFC 8941 would keep the last; for a key reference an
    /// ambiguous header is refused instead.
    fn new(list: Vec<(String, Raw)>) -> Result<Self, SignatureKeyError> {
        for (index, (name, _)) in list.iter().enumerate() {
            if list.iter().skip(index + 1).any(|(other, _)| other == name) {
                return Err(SignatureKeyError::DuplicateParameter(echo(name)));
            }
        }
        Ok(Self(list))
    }

    fn get(&self, name: &str) -> Option<&Raw> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// An optional sf-string parameter.
    fn string(&self, name: &'static str) -> Result<Option<&str>, SignatureKeyError> {
        match self.get(name) {
            None => Ok(None),
            Some(Raw::String(value)) => Ok(Some(value)),
            Some(other) => Err(SignatureKeyError::ParameterType {
                name,
                expected: "string",
                got: other.kind(),
            }),
        }
    }

    /// A required sf-string parameter.
    fn required(&self, scheme: Scheme, name: &'static str) -> Result<&str, SignatureKeyError> {
        self.string(name)?
            .ok_or(SignatureKeyError::MissingParameter { scheme, name })
    }
}

/// Gives a member read in either syntax its meaning (SK0§2.3–2.6, P-SK-2, P-SK-3).
fn interpret(
    label: &str,
    scheme: SchemeSource,
    list: Vec<(String, Raw)>,
    syntax: Syntax,
) -> Result<SignatureKeyField, SignatureKeyError> {
    let label = Label::new(label).map_err(SignatureKeyError::Label)?;
    let params = Parameters::new(list)?;
    let scheme = match scheme {
        SchemeSource::Item(item) => {
            // The scheme is the member value; a `scheme` parameter beside it
            // could only be read two ways.
            if params.get("scheme").is_some() {
                return Err(SignatureKeyError::SchemeParameter);
            }
            item
        }
        SchemeSource::Parameter => params
            .get("scheme")
            .cloned()
            .ok_or(SignatureKeyError::MissingScheme)?,
    };
    let scheme = match scheme {
        Raw::Token(name) => {
            // profile: P-SK-2 — the scheme alias `jwks` means `jwks_uri`.
            Scheme::from_wire(&name).ok_or_else(|| SignatureKeyError::UnknownScheme(echo(&name)))?
        }
        other => return Err(SignatureKeyError::SchemeNotToken(other.kind())),
    };

    let key = match scheme {
        Scheme::Hwk => {
            // SK0§2.3: "The alg parameter MUST NOT be present".
            if params.get("alg").is_some() {
                return Err(SignatureKeyError::HwkAlg);
            }
            // SK0§2.3: "The kid parameter SHOULD NOT be used" — tolerated, ignored.
            let members = JwkMembers {
                kty: params.string("kty")?.map(str::to_owned),
                crv: params.string("crv")?.map(str::to_owned),
                x: params.string("x")?.map(str::to_owned),
                y: params.string("y")?.map(str::to_owned),
                // Carried through so that `from_members` refuses a private key.
                d: params.get("d").map(|_| String::new()),
                ..JwkMembers::default()
            };
            SignatureKey::Hwk(PublicKey::from_members(&members).map_err(SignatureKeyError::HwkKey)?)
        }
        Scheme::JwksUri => {
            // profile: P-SK-2 — the explainer's direct mode `jwks="<url>"` is refused.
            if params.get("jwks").is_some() {
                return Err(SignatureKeyError::DirectJwksUrl);
            }
            // SK0§2.4: "id (REQUIRED) - Signer identifier (HTTPS URL)".
            let id = params.required(scheme, "id")?.to_owned();
            // SK0§2.4: "well-known (REQUIRED)"; profile: P-SK-2 — `dwk` is its
            // alias, and only the parenthesised form defaults it.
            let well_known = match (params.string("well-known")?, params.string("dwk")?) {
                (Some(_), Some(_)) => return Err(SignatureKeyError::ConflictingWellKnown),
                (Some(name), None) | (None, Some(name)) => name.to_owned(),
                (None, None) => match syntax {
                    Syntax::Parenthesised => AAUTH_AGENT_WELL_KNOWN.to_owned(),
                    Syntax::Sk0 => {
                        return Err(SignatureKeyError::MissingParameter {
                            scheme,
                            name: "well-known",
                        });
                    }
                },
            };
            // SK0§2.4: "kid (REQUIRED) - Key identifier".
            let kid = Kid::new(params.required(scheme, "kid")?.to_owned())
                .map_err(SignatureKeyError::Kid)?;
            SignatureKey::JwksUri {
                id,
                well_known,
                kid,
            }
        }
        Scheme::Jwt => SignatureKey::Jwt {
            // SK0§2.6: "jwt (REQUIRED) - Compact-serialized JWT".
            jwt: params.required(scheme, "jwt")?.to_owned(),
        },
        Scheme::X509 => SignatureKey::X509 {
            // SK0§2.5: "x5u (REQUIRED)", "x5t (REQUIRED)".
            x5u: params.required(scheme, "x5u")?.to_owned(),
            x5t: params.required(scheme, "x5t")?.to_owned(),
        },
    };
    Ok(SignatureKeyField { label, key, syntax })
}

/// RFC 8941 §3.1.2 key characters after the first.
fn is_key_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.' | '*')
}

// ---------------------------------------------------------------------------
// SK0 syntax, through sfv's visitor API.

/// Parses SK0§2's Dictionary. sfv calls `entry` once for every member as
/// written — including a repeated label, which its `Dictionary` type (an
/// IndexMap) would silently collapse into the last one — so counting `entry`
/// calls counts the members actually sent (E§10.1.1 step 2). Syntax errors
/// anywhere in the field fail the parse before any member is interpreted.
fn parse_sk0(value: &str) -> Result<SignatureKeyField, SignatureKeyError> {
    // SK0§2: "a Structured Field Dictionary [RFC8941]" — no RFC 9651 types.
    let collected = Parser::new(value)
        .with_version(sfv::Version::Rfc8941)
        .parse_dictionary_with_visitor(Sk0Visitor::default())
        .map_err(|e| SignatureKeyError::Syntax(e.to_string()))?;
    let Sk0Visitor { members, first } = collected;
    // E§10.1.1 step 2: "Verify `Signature-Key` contains exactly one
    // dictionary member; otherwise reject".
    let first = match (members, first) {
        (1, Some(first)) => first,
        (0, _) => return Err(SignatureKeyError::Empty),
        _ => return Err(SignatureKeyError::MultipleMembers),
    };
    if first.too_many {
        return Err(SignatureKeyError::TooManyParameters);
    }
    let scheme = first.scheme.ok_or(SignatureKeyError::InnerList)?;
    interpret(
        &first.label,
        SchemeSource::Item(scheme),
        first.parameters,
        Syntax::Sk0,
    )
}

#[derive(Default)]
struct Sk0Visitor {
    members: usize,
    first: Option<Sk0Member>,
}

#[derive(Default)]
struct Sk0Member {
    label: String,
    /// The bare item; `None` when the value was an inner list.
    scheme: Option<Raw>,
    parameters: Vec<(String, Raw)>,
    too_many: bool,
}

impl<'de> DictionaryVisitor<'de> for Sk0Visitor {
    type Out = Self;
    type Error = Infallible;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Self::Error> {
        self.members = self.members.saturating_add(1);
        if self.members == 1 {
            let member = self.first.insert(Sk0Member {
                label: key.as_str().to_owned(),
                ..Sk0Member::default()
            });
            Ok(Some(member))
        } else {
            // Still syntax-checked by sfv; its content no longer matters.
            Ok(None)
        }
    }

    fn finish(self) -> Result<Self::Out, Self::Error> {
        Ok(self)
    }
}

impl<'de> EntryVisitor<'de> for &mut Sk0Member {
    type Error = Infallible;

    fn item(self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        Ok(self)
    }

    fn inner_list(self) -> Result<impl sfv::visitor::InnerListVisitor<'de>, Self::Error> {
        self.scheme = None;
        Ok(Ignored)
    }
}

impl<'de> ItemVisitor<'de> for &mut Sk0Member {
    type Out = ();
    type Error = Infallible;

    fn bare_item(
        self,
        bare_item: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = Self::Out>, Self::Error> {
        self.scheme = Some(Raw::from(bare_item));
        Ok(self)
    }
}

impl<'de> ParameterVisitor<'de> for &mut Sk0Member {
    type Out = ();
    type Error = Infallible;

    fn parameter(
        &mut self,
        key: &'de KeyRef,
        value: BareItemFromInput<'de>,
    ) -> Result<(), Self::Error> {
        // Every occurrence is kept, so that `interpret` can refuse repeats.
        if self.parameters.len() < MAX_PARAMETERS {
            self.parameters
                .push((key.as_str().to_owned(), Raw::from(value)));
        } else {
            self.too_many = true;
        }
        Ok(())
    }

    fn finish(self) -> Result<Self::Out, Self::Error> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The explainer's parenthesised syntax (E§10.1, P-SK-2), by hand:
//
//   field = label "=(" *SP pair *( 1*SP pair ) *SP ")"
//   pair  = sf-key "=" ( sf-token / sf-string )
//
// `label` and `sf-key` are RFC 8941 keys, `sf-token` and `sf-string` are as
// in RFC 8941 §3.3.4 and §3.3.3. Leading and trailing spaces of the whole
// value were trimmed by `parse`; nothing else may follow `)`.

/// A position in the parenthesised form; every step is bounded by the input.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    /// Added to positions in errors (the spaces trimmed before the value).
    offset: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn error(&self, expected: &'static str) -> SignatureKeyError {
        SignatureKeyError::Parenthesised {
            at: self.pos + self.offset,
            expected,
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), SignatureKeyError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn skip_spaces(&mut self) -> usize {
        let start = self.pos;
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Takes bytes while `accept` holds, as a slice of the input.
    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&accept) {
            self.pos += 1;
        }
        // Only ASCII bytes are accepted, so both ends are char boundaries.
        self.text.get(start..self.pos).unwrap_or_default()
    }

    /// RFC 8941 §3.1.2: `( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`.
    fn key(&mut self, expected: &'static str) -> Result<&'a str, SignatureKeyError> {
        match self.peek() {
            Some(b) if b.is_ascii_lowercase() || b == b'*' => {
                Ok(self.take_while(|b| is_key_char(char::from(b))))
            }
            _ => Err(self.error(expected)),
        }
    }

    /// RFC 8941 §3.3.4: `( ALPHA / "*" ) *( tchar / ":" / "/" )`.
    fn token(&mut self) -> &'a str {
        self.take_while(|b| is_tchar(b) || b == b':' || b == b'/')
    }

    /// RFC 8941 §4.2.5: a quoted string with `\"` and `\\` escapes, printable ASCII.
    fn string(&mut self) -> Result<String, SignatureKeyError> {
        self.expect(b'"', "'\"'")?;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("closing '\"'")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(char::from(c));
                            self.pos += 1;
                        }
                        _ => return Err(self.error("'\"' or '\\' after '\\'")),
                    }
                }
                Some(c @ 0x20..=0x7e) => {
                    out.push(char::from(c));
                    self.pos += 1;
                }
                Some(_) => return Err(self.error("printable ASCII inside the string")),
            }
        }
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

fn parse_parenthesised(value: &str, offset: usize) -> Result<SignatureKeyField, SignatureKeyError> {
    let mut cur = Cursor {
        text: value,
        pos: 0,
        offset,
    };
    let label = cur.key("a label")?;
    cur.expect(b'=', "'=' after the label")?;
    cur.expect(b'(', "'(' after 'label='")?;
    let mut list: Vec<(String, Raw)> = Vec::new();
    loop {
        let spaces = cur.skip_spaces();
        if cur.peek() == Some(b')') {
            cur.pos += 1;
            break;
        }
        if !list.is_empty() && spaces == 0 {
            return Err(cur.error("' ' or ')' after a value"));
        }
        if list.len() == MAX_PARAMETERS {
            return Err(SignatureKeyError::TooManyParameters);
        }
        let name = cur.key("a parameter name or ')'")?;
        cur.expect(b'=', "'=' after the parameter name")?;
        let raw = match cur.peek() {
            Some(b'"') => Raw::String(cur.string()?),
            Some(b) if b.is_ascii_alphabetic() || b == b'*' => Raw::Token(cur.token().to_owned()),
            _ => return Err(cur.error("a token or a quoted string")),
        };
        list.push((name.to_owned(), raw));
    }
    match cur.peek() {
        None => {}
        // E§10.1.1 step 2: exactly one member.
        Some(b',') => return Err(SignatureKeyError::MultipleMembers),
        Some(_) => return Err(cur.error("end of the header after ')'")),
    }
    interpret(label, SchemeSource::Parameter, list, Syntax::Parenthesised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OriginMode;
    use proptest::prelude::*;

    /// RFC 9421 B.1.4 / RFC 8037 Ed25519 public key, as in SK0§2.6 (E§10.1
    /// prints it truncated as `JrQLj5P...`).
    const ED25519_X: &str = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs";
    /// RFC 7515 A.3 P-256 key, which SK0§2.3 prints truncated.
    const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn ed25519() -> PublicKey {
        PublicKey::from_json_value(&serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": ED25519_X
        }))
        .unwrap()
    }

    fn p256() -> PublicKey {
        PublicKey::from_json_value(&serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y
        }))
        .unwrap()
    }

    fn kid(text: &str) -> Kid {
        Kid::new(text.to_owned()).unwrap()
    }

    fn jwks_uri(id: &str, well_known: &str, k: &str) -> SignatureKey {
        SignatureKey::JwksUri {
            id: id.to_owned(),
            well_known: well_known.to_owned(),
            kid: kid(k),
        }
    }

    fn err(header: &str) -> SignatureKeyError {
        parse(header).unwrap_err()
    }

    // --- SK0 syntax: the examples of SK0§2.3–2.6 -----------------------------

    #[test]
    fn reads_sk0_hwk_ed25519_example() {
        // SK0§2.3, with the full key.
        let field = parse(&format!(
            r#"sig=hwk;kty="OKP";crv="Ed25519";x="{ED25519_X}""#
        ))
        .unwrap();
        assert_eq!(field.label, Label::sig());
        assert_eq!(field.key, SignatureKey::Hwk(ed25519()));
        assert_eq!(field.syntax, Syntax::Sk0);
        assert_eq!(field.key.scheme(), Scheme::Hwk);
    }

    #[test]
    fn reads_sk0_hwk_p256_example() {
        // SK0§2.3 EC example, with the full RFC 7515 A.3 key.
        let field = parse(&format!(
            r#"sig=hwk;kty="EC";crv="P-256";x="{P256_X}";y="{P256_Y}""#
        ))
        .unwrap();
        assert_eq!(field.key, SignatureKey::Hwk(p256()));
    }

    #[test]
    fn rejects_hwk_rsa_as_unsupported_key_type() {
        // SK0§2.3 RSA example: outside the profile (P-SIG-4).
        let e = err(r#"sig=hwk;kty="RSA";n="0vx7agoebGcQ";e="AQAB""#);
        assert!(
            matches!(&e, SignatureKeyError::HwkKey(JwkError::Unsupported { kty, .. }) if kty == "RSA"),
            "{e:?}"
        );
        assert!(e.to_string().contains("RSA"), "{e}");
    }

    #[test]
    fn reads_sk0_jwks_uri_example() {
        // SK0§2.4.
        let field = parse(
            r#"sig=jwks_uri;id="https://agent.example";well-known="aauth-agent";kid="key-1""#,
        )
        .unwrap();
        assert_eq!(
            field.key,
            jwks_uri("https://agent.example", "aauth-agent", "key-1")
        );
        assert_eq!(field.key.scheme().as_str(), "jwks_uri");
    }

    #[test]
    fn reads_sk0_x509_example_so_it_can_be_reported_unsupported() {
        // SK0§2.5; profile: P-SK-5 — parsed, the verifier reports it unsupported.
        let field = parse(
            r#"sig=x509;x5u="https://agent.example/.well-known/cert.pem";x5t="bWcoon4QTVn8Q6xiY0ekMD6L8bNLMkuDV2KtvsFc1nM""#,
        )
        .unwrap();
        assert_eq!(
            field.key,
            SignatureKey::X509 {
                x5u: "https://agent.example/.well-known/cert.pem".into(),
                x5t: "bWcoon4QTVn8Q6xiY0ekMD6L8bNLMkuDV2KtvsFc1nM".into(),
            }
        );
        assert_eq!(field.key.scheme().as_str(), "x509");
    }

    #[test]
    fn reads_sk0_jwt_example() {
        // SK0§2.6.
        let field = parse(r#"sig=jwt;jwt="eyJhbGciOiJFUzI1NiI...""#).unwrap();
        assert_eq!(
            field.key,
            SignatureKey::Jwt {
                jwt: "eyJhbGciOiJFUzI1NiI...".into()
            }
        );
    }

    #[test]
    fn reads_jwt_with_space_after_semicolon_as_in_the_draft() {
        // D§6.2 / D§8.2 write `sig=jwt; jwt="…"`; RFC 8941 allows SP after ';'.
        let field =
            parse(r#"sig=jwt; jwt="eyJhbGciOiJFZERTQSIsInR5cCI6ImFnZW50K2p3dCJ9...""#).unwrap();
        assert_eq!(field.key.scheme(), Scheme::Jwt);
    }

    #[test]
    fn accepts_any_label_and_surrounding_spaces() {
        // profile: P-SIG-3 — any label is accepted.
        let field = parse(&format!(
            r#"  sig1=hwk;kty="OKP";crv="Ed25519";x="{ED25519_X}"  "#
        ))
        .unwrap();
        assert_eq!(field.label.as_str(), "sig1");
    }

    // --- E§10.1.1 step 2: exactly one member ---------------------------------

    #[test]
    fn rejects_two_members_as_in_sk0_multiple_signatures_example() {
        // SK0§2.2's example; E§10.1.1 step 2 "exactly one dictionary member".
        let e = err(
            r#"sig1=jwt;jwt="eyJ...", sig2=jwks_uri;id="https://example.com";well-known="meta";kid="k1""#,
        );
        assert_eq!(e, SignatureKeyError::MultipleMembers);
    }

    #[test]
    fn rejects_the_same_label_twice_although_sfv_would_keep_the_last() {
        // E§10.1.1 step 2: a repeated label is two members, not one.
        let header = r#"sig=jwt;jwt="a", sig=jwt;jwt="b""#;
        let dict: sfv::Dictionary = Parser::new(header).parse().unwrap();
        assert_eq!(dict.len(), 1, "sfv's Dictionary collapses the repeat");
        assert_eq!(err(header), SignatureKeyError::MultipleMembers);
    }

    #[test]
    fn rejects_a_second_member_in_the_parenthesised_form() {
        let e = err(r#"sig=(scheme=jwt jwt="a"), other=(scheme=jwt jwt="b")"#);
        assert_eq!(e, SignatureKeyError::MultipleMembers);
    }

    #[test]
    fn rejects_empty_and_blank_values() {
        assert_eq!(err(""), SignatureKeyError::Empty);
        assert_eq!(err("   "), SignatureKeyError::Empty);
    }

    // --- The explainer's parenthesised form (P-SK-2) -------------------------

    #[test]
    fn reads_explainer_hwk_example() {
        // profile: P-SK-2 — E§10.1 / E§10.6, with the full key.
        let field = parse(&format!(
            r#"sig=(scheme=hwk kty="OKP" crv="Ed25519" x="{ED25519_X}")"#
        ))
        .unwrap();
        assert_eq!(field.label, Label::sig());
        assert_eq!(field.key, SignatureKey::Hwk(ed25519()));
        assert_eq!(field.syntax, Syntax::Parenthesised);
    }

    #[test]
    fn both_syntaxes_give_the_same_key() {
        // profile: P-SK-2 — "producing the same typed value".
        let sk0 = parse(&format!(
            r#"sig=hwk;kty="OKP";crv="Ed25519";x="{ED25519_X}""#
        ))
        .unwrap();
        let paren = parse(&format!(
            r#"sig=(scheme=hwk kty="OKP" crv="Ed25519" x="{ED25519_X}")"#
        ))
        .unwrap();
        assert_eq!(sk0.label, paren.label);
        assert_eq!(sk0.key, paren.key);
    }

    #[test]
    fn reads_the_deployed_peers_jwks_form_with_default_well_known() {
        // profile: P-SK-2 — PyPI `aauth` writes `(scheme=jwks id="…" kid="…")`;
        // in this form only, a missing well-known means aauth-agent.
        let field = parse(r#"sig1=(scheme=jwks id="https://agent.example" kid="key-1")"#).unwrap();
        assert_eq!(
            field.key,
            jwks_uri("https://agent.example", "aauth-agent", "key-1")
        );
    }

    #[test]
    fn sk0_jwks_uri_requires_well_known() {
        // profile: P-SK-3 — id, well-known and kid are required in SK0 syntax.
        assert_eq!(
            err(r#"sig=jwks_uri;id="https://agent.example";kid="k1""#),
            SignatureKeyError::MissingParameter {
                scheme: Scheme::JwksUri,
                name: "well-known"
            }
        );
    }

    #[test]
    fn jwks_uri_requires_id_and_kid() {
        // profile: P-SK-3.
        for (header, name) in [
            (r#"sig=jwks_uri;well-known="aauth-agent";kid="k1""#, "id"),
            (
                r#"sig=jwks_uri;id="https://agent.example";well-known="aauth-agent""#,
                "kid",
            ),
            (r#"sig=(scheme=jwks kid="k1")"#, "id"),
            (r#"sig=(scheme=jwks id="https://agent.example")"#, "kid"),
        ] {
            assert_eq!(
                err(header),
                SignatureKeyError::MissingParameter {
                    scheme: Scheme::JwksUri,
                    name
                },
                "{header}"
            );
        }
    }

    #[test]
    fn keeps_other_well_known_names_for_the_verifier_to_judge() {
        // profile: P-SK-3 — the verifier, not the parser, refuses them.
        let field =
            parse(r#"sig=jwks_uri;id="https://example.com";well-known="meta";kid="k1""#).unwrap();
        assert_eq!(field.key, jwks_uri("https://example.com", "meta", "k1"));
    }

    #[test]
    fn scheme_alias_jwks_means_jwks_uri_in_both_syntaxes() {
        // profile: P-SK-2.
        let sk0 = parse(r#"sig=jwks;id="https://agent.example";well-known="aauth-agent";kid="k1""#)
            .unwrap();
        let paren = parse(
            r#"sig=(scheme=jwks_uri id="https://agent.example" well-known="aauth-agent" kid="k1")"#,
        )
        .unwrap();
        let expected = jwks_uri("https://agent.example", "aauth-agent", "k1");
        assert_eq!(sk0.key, expected);
        assert_eq!(paren.key, expected);
    }

    #[test]
    fn dwk_means_well_known_in_both_syntaxes() {
        // profile: P-SK-2.
        let sk0 =
            parse(r#"sig=jwks_uri;id="https://agent.example";dwk="aauth-agent";kid="k1""#).unwrap();
        let paren =
            parse(r#"sig=(scheme=jwks id="https://agent.example" dwk="other" kid="k1")"#).unwrap();
        assert_eq!(
            sk0.key,
            jwks_uri("https://agent.example", "aauth-agent", "k1")
        );
        assert_eq!(paren.key, jwks_uri("https://agent.example", "other", "k1"));
    }

    #[test]
    fn rejects_dwk_together_with_well_known_in_both_syntaxes() {
        // profile: P-SK-2 — "both dwk and well-known present → reject".
        for header in [
            r#"sig=jwks_uri;id="https://a.example";well-known="aauth-agent";dwk="aauth-agent";kid="k1""#,
            r#"sig=(scheme=jwks id="https://a.example" well-known="aauth-agent" dwk="x" kid="k1")"#,
        ] {
            assert_eq!(
                err(header),
                SignatureKeyError::ConflictingWellKnown,
                "{header}"
            );
        }
    }

    #[test]
    fn rejects_the_explainers_direct_jwks_mode_naming_the_parameter() {
        // profile: P-SK-2 — E§10.7 mode 1 `jwks="<url>"` is refused.
        for header in [
            r#"sig=(scheme=jwks jwks="https://agent.example/jwks.json" kid="k1")"#,
            r#"sig=jwks;jwks="https://agent.example/jwks.json";kid="k1""#,
        ] {
            let e = err(header);
            assert_eq!(e, SignatureKeyError::DirectJwksUrl, "{header}");
            assert!(e.to_string().contains("\"jwks\""));
        }
    }

    #[test]
    fn reads_explainer_jwt_form() {
        let field = parse(r#"sig=(scheme=jwt jwt="eyJhbGciOiJFZERTQSJ9.e30.c2ln")"#).unwrap();
        assert_eq!(
            field.key,
            SignatureKey::Jwt {
                jwt: "eyJhbGciOiJFZERTQSJ9.e30.c2ln".into()
            }
        );
    }

    #[test]
    fn parenthesised_form_tolerates_spaces_inside_the_parentheses() {
        let field = parse(&format!(
            r#"sig=(  scheme=hwk   kty="OKP" crv="Ed25519"  x="{ED25519_X}"  )"#
        ))
        .unwrap();
        assert_eq!(field.key, SignatureKey::Hwk(ed25519()));
    }

    #[test]
    fn parenthesised_form_rejects_broken_grammar_with_a_position() {
        let cases: [(&str, usize, &str); 9] = [
            (r#"sig=(scheme=hwk"#, 15, "' ' or ')' after a value"),
            (
                r#"sig=(scheme=hwkkty="OKP")"#,
                18,
                "' ' or ')' after a value",
            ),
            (r#"sig=(scheme=hwk kty="OKP)"#, 25, "closing '\"'"),
            (
                r#"sig=(scheme=hwk kty=1)"#,
                20,
                "a token or a quoted string",
            ),
            (
                r#"sig=(scheme=hwk Kty="OKP")"#,
                16,
                "a parameter name or ')'",
            ),
            (
                r#"sig=(scheme=hwk kty)"#,
                19,
                "'=' after the parameter name",
            ),
            (
                r#"sig=(scheme=jwt jwt="a\b")"#,
                23,
                "'\"' or '\\' after '\\'",
            ),
            (
                r#"sig=(scheme=jwt jwt="a");x=1"#,
                24,
                "end of the header after ')'",
            ),
            (
                r#" sig=(scheme=jwt jwt="a") x"#,
                25,
                "end of the header after ')'",
            ),
        ];
        for (header, at, expected) in cases {
            assert_eq!(
                err(header),
                SignatureKeyError::Parenthesised { at, expected },
                "{header}"
            );
        }
    }

    #[test]
    fn parenthesised_form_needs_a_token_scheme() {
        assert_eq!(err(r#"sig=(kty="OKP")"#), SignatureKeyError::MissingScheme);
        assert_eq!(
            err(r#"sig=(scheme="hwk")"#),
            SignatureKeyError::SchemeNotToken("string")
        );
    }

    #[test]
    fn parenthesised_form_rejects_non_ascii() {
        assert_eq!(
            err("sig=(scheme=jwt jwt=\"caf\u{e9}\")"),
            SignatureKeyError::Parenthesised {
                at: 24,
                expected: "printable ASCII inside the string"
            }
        );
    }

    // --- Parameters and schemes ----------------------------------------------

    #[test]
    fn rejects_unknown_scheme_naming_it() {
        for header in [r#"sig=dpop;jwk="x""#, r#"sig=(scheme=dpop jwk="x")"#] {
            let e = err(header);
            assert_eq!(e, SignatureKeyError::UnknownScheme("dpop".into()));
            assert!(e.to_string().contains("dpop"));
        }
    }

    #[test]
    fn rejects_a_scheme_that_is_not_a_token() {
        assert_eq!(
            err(r#"sig="hwk";kty="OKP""#),
            SignatureKeyError::SchemeNotToken("string")
        );
        assert_eq!(err("sig=1"), SignatureKeyError::SchemeNotToken("integer"));
        assert_eq!(err("sig"), SignatureKeyError::SchemeNotToken("boolean"));
    }

    #[test]
    fn rejects_an_inner_list_member_in_sk0_syntax() {
        assert_eq!(err(r#"sig=("hwk")"#), SignatureKeyError::InnerList);
        assert_eq!(err("sig=()"), SignatureKeyError::InnerList);
        assert_eq!(err(r#"sig=(hwk);kty="OKP""#), SignatureKeyError::InnerList);
    }

    #[test]
    fn rejects_a_scheme_parameter_in_sk0_syntax() {
        assert_eq!(
            err(r#"sig=jwt;scheme=hwk;jwt="a""#),
            SignatureKeyError::SchemeParameter
        );
    }

    #[test]
    fn rejects_duplicate_parameters_in_both_syntaxes() {
        for header in [
            r#"sig=jwt;jwt="a";jwt="b""#,
            r#"sig=(scheme=jwt jwt="a" jwt="b")"#,
            r#"sig=(scheme=jwt scheme=hwk jwt="a")"#,
        ] {
            assert!(
                matches!(err(header), SignatureKeyError::DuplicateParameter(_)),
                "{header}"
            );
        }
    }

    #[test]
    fn rejects_parameters_of_the_wrong_type() {
        assert_eq!(
            err(r#"sig=jwt;jwt=abc"#),
            SignatureKeyError::ParameterType {
                name: "jwt",
                expected: "string",
                got: "token"
            }
        );
        assert_eq!(
            err(r#"sig=hwk;kty="OKP";crv="Ed25519";x=:AAAA:"#),
            SignatureKeyError::ParameterType {
                name: "x",
                expected: "string",
                got: "byte sequence"
            }
        );
        assert_eq!(
            err(r#"sig=(scheme=jwt jwt=abc)"#),
            SignatureKeyError::ParameterType {
                name: "jwt",
                expected: "string",
                got: "token"
            }
        );
    }

    #[test]
    fn rejects_missing_required_parameters() {
        for (header, scheme, name) in [
            ("sig=jwt", Scheme::Jwt, "jwt"),
            (
                r#"sig=x509;x5u="https://a.example/c.pem""#,
                Scheme::X509,
                "x5t",
            ),
            (r#"sig=x509;x5t="abc""#, Scheme::X509, "x5u"),
        ] {
            assert_eq!(
                err(header),
                SignatureKeyError::MissingParameter { scheme, name },
                "{header}"
            );
        }
        assert_eq!(
            err(r#"sig=hwk;kty="OKP";crv="Ed25519""#),
            SignatureKeyError::HwkKey(JwkError::MissingMember("x"))
        );
        assert_eq!(
            err(&format!(r#"sig=hwk;crv="Ed25519";x="{ED25519_X}""#)),
            SignatureKeyError::HwkKey(JwkError::MissingKty)
        );
    }

    #[test]
    fn rejects_hwk_with_alg() {
        // SK0§2.3: "The alg parameter MUST NOT be present".
        assert_eq!(
            err(&format!(
                r#"sig=hwk;kty="OKP";crv="Ed25519";x="{ED25519_X}";alg="EdDSA""#
            )),
            SignatureKeyError::HwkAlg
        );
    }

    #[test]
    fn ignores_kid_on_hwk() {
        // SK0§2.3: "The kid parameter SHOULD NOT be used" — tolerated.
        let field = parse(&format!(
            r#"sig=hwk;kty="OKP";crv="Ed25519";x="{ED25519_X}";kid="k1""#
        ))
        .unwrap();
        assert_eq!(field.key, SignatureKey::Hwk(ed25519()));
    }

    #[test]
    fn rejects_hwk_with_a_private_key() {
        let e = err(&format!(
            r#"sig=hwk;kty="OKP";crv="Ed25519";x="{ED25519_X}";d="nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A""#
        ));
        assert_eq!(e, SignatureKeyError::HwkKey(JwkError::PrivateMemberPresent));
    }

    #[test]
    fn rejects_hwk_with_a_bad_key() {
        assert_eq!(
            err(r#"sig=hwk;kty="OKP";crv="Ed25519";x="JrQLj5P...""#),
            SignatureKeyError::HwkKey(JwkError::BadMember("x"))
        );
        assert_eq!(
            err(&format!(
                r#"sig=hwk;kty="EC";crv="P-256";x="{P256_X}";y="{P256_X}""#
            )),
            SignatureKeyError::HwkKey(JwkError::NotOnCurve)
        );
    }

    #[test]
    fn ignores_unknown_parameters() {
        let field = parse(r#"sig=jwt;jwt="a";future=?1;n=3"#).unwrap();
        assert_eq!(field.key, SignatureKey::Jwt { jwt: "a".into() });
        let field = parse(r#"sig=(scheme=jwt future=tok jwt="a")"#).unwrap();
        assert_eq!(field.key, SignatureKey::Jwt { jwt: "a".into() });
    }

    #[test]
    fn rejects_an_invalid_kid() {
        assert!(matches!(
            err(r#"sig=jwks_uri;id="https://a.example";well-known="aauth-agent";kid="""#),
            SignatureKeyError::Kid(StringError::Empty("kid"))
        ));
    }

    #[test]
    fn rejects_bad_labels() {
        let long = "a".repeat(65);
        assert!(matches!(
            err(&format!(r#"{long}=jwt;jwt="a""#)),
            SignatureKeyError::Label(_)
        ));
        assert!(matches!(
            err(&format!(r#"{long}=(scheme=jwt jwt="a")"#)),
            SignatureKeyError::Label(_)
        ));
        assert!(matches!(
            err(r#"Sig=jwt;jwt="a""#),
            SignatureKeyError::Syntax(_)
        ));
    }

    #[test]
    fn rejects_rfc9651_only_types_even_in_ignored_parameters() {
        // SK0§2 is defined on RFC 8941: dates and display strings are not in it.
        for header in [
            r#"sig=jwt;jwt="a";when=@1659578233"#,
            r#"sig=jwt;jwt="a";note=%"x""#,
        ] {
            assert!(parse(header).is_err(), "{header}");
        }
    }

    #[test]
    fn rejects_sk0_syntax_errors() {
        for header in [
            r#"sig=jwt;jwt="a"#,
            r#"sig=jwt;jwt="a","#,
            r#"sig=jwt;jwt="a" x"#,
            "sig=jwt;jwt=\"caf\u{e9}\"",
        ] {
            assert!(
                matches!(err(header), SignatureKeyError::Syntax(_)),
                "{header}"
            );
        }
    }

    #[test]
    fn bounds_the_input_length_but_reads_a_large_jwt() {
        let jwt = "e".repeat(10 * 1024);
        let field = parse(&format!(r#"sig=jwt;jwt="{jwt}""#)).unwrap();
        assert_eq!(field.key, SignatureKey::Jwt { jwt });
        let too_long = format!(r#"sig=jwt;jwt="{}""#, "e".repeat(MAX_HEADER_LEN));
        assert_eq!(err(&too_long), SignatureKeyError::TooLong);
    }

    #[test]
    fn bounds_the_number_of_parameters() {
        let many: String = (0..40).map(|i| format!(";p{i}=1")).collect();
        assert_eq!(
            err(&format!(r#"sig=jwt;jwt="a"{many}"#)),
            SignatureKeyError::TooManyParameters
        );
        let many: String = (0..40).map(|i| format!(" p{i}=a")).collect();
        assert_eq!(
            err(&format!(r#"sig=(scheme=jwt jwt="a"{many})"#)),
            SignatureKeyError::TooManyParameters
        );
    }

    #[test]
    fn every_error_is_invalid_signature() {
        // profile: P-ERR-1 — "malformed … Signature-Key" → invalid_signature.
        for header in [
            "",
            "sig=jwt",
            "sig=(",
            r#"sig=dpop;a="b""#,
            r#"a=jwt;jwt="a", b=jwt;jwt="b""#,
        ] {
            let wire = err(header).condition().wire();
            assert_eq!(wire.code, crate::error::ErrorCode::InvalidSignature);
            assert_eq!(wire.status, 401);
        }
    }

    // --- Emitting -------------------------------------------------------------

    #[test]
    fn emits_sk0_syntax_through_sfv() {
        // profile: P-SK-1.
        let hwk = SignatureKeyField::hwk(Label::sig(), &ed25519());
        assert_eq!(
            hwk.to_header_value(Syntax::Sk0).unwrap(),
            format!(r#"sig=hwk;kty="OKP";crv="Ed25519";x="{ED25519_X}""#)
        );
        let ec = SignatureKeyField::hwk(Label::sig(), &p256());
        assert_eq!(
            ec.to_header_value(Syntax::Sk0).unwrap(),
            format!(r#"sig=hwk;kty="EC";crv="P-256";x="{P256_X}";y="{P256_Y}""#)
        );
        let origin = Origin::parse("https://agent.example", OriginMode::Production).unwrap();
        let jwks = SignatureKeyField::jwks_uri(Label::sig(), &origin, "aauth-agent", kid("k1"));
        assert_eq!(
            jwks.to_header_value(Syntax::Sk0).unwrap(),
            r#"sig=jwks_uri;id="https://agent.example";well-known="aauth-agent";kid="k1""#
        );
        let jwt = SignatureKeyField::jwt(Label::sig(), "eyJ.eyJ.sig");
        assert_eq!(
            jwt.to_header_value(Syntax::Sk0).unwrap(),
            r#"sig=jwt;jwt="eyJ.eyJ.sig""#
        );
    }

    #[test]
    fn emits_the_parenthesised_form_on_request() {
        // profile: P-SK-2 — "A switch makes our agents emit the parenthesised form".
        let hwk = SignatureKeyField::hwk(Label::sig(), &ed25519());
        assert_eq!(
            hwk.to_header_value(Syntax::Parenthesised).unwrap(),
            format!(r#"sig=(scheme=hwk kty="OKP" crv="Ed25519" x="{ED25519_X}")"#)
        );
        let origin = Origin::parse("https://agent.example", OriginMode::Production).unwrap();
        let jwks = SignatureKeyField::jwks_uri(Label::sig(), &origin, "aauth-agent", kid("k1"));
        assert_eq!(
            jwks.to_header_value(Syntax::Parenthesised).unwrap(),
            r#"sig=(scheme=jwks id="https://agent.example" well-known="aauth-agent" kid="k1")"#
        );
    }

    #[test]
    fn escapes_quotes_and_backslashes_in_both_syntaxes() {
        let field = SignatureKeyField {
            label: Label::new("sig-1").unwrap(),
            key: jwks_uri(r#"https://a"b\c"#, r#"w"k"#, r#"k\"1"#),
            syntax: Syntax::Sk0,
        };
        let sk0 = field.to_header_value(Syntax::Sk0).unwrap();
        assert_eq!(
            sk0,
            r#"sig-1=jwks_uri;id="https://a\"b\\c";well-known="w\"k";kid="k\\\"1""#
        );
        assert_eq!(parse(&sk0).unwrap(), field);
        let paren = field.to_header_value(Syntax::Parenthesised).unwrap();
        assert_eq!(
            paren,
            r#"sig-1=(scheme=jwks id="https://a\"b\\c" well-known="w\"k" kid="k\\\"1")"#
        );
        let reparsed = parse(&paren).unwrap();
        assert_eq!(reparsed.key, field.key);
        assert_eq!(reparsed.syntax, Syntax::Parenthesised);
    }

    #[test]
    fn refuses_to_emit_non_ascii_values() {
        let field = SignatureKeyField::jwt(Label::sig(), "caf\u{e9}");
        for syntax in [Syntax::Sk0, Syntax::Parenthesised] {
            assert_eq!(
                field.to_header_value(syntax),
                Err(SignatureKeyError::NotRepresentable("jwt"))
            );
        }
    }

    // --- Properties -------------------------------------------------------------

    fn arb_key() -> impl Strategy<Value = SignatureKey> {
        let printable = "[ -~]{0,60}";
        prop_oneof![
            any::<[u8; 32]>().prop_map(|x| SignatureKey::Hwk(PublicKey::Ed25519(x))),
            Just(SignatureKey::Hwk(p256())),
            (printable, printable, "[ -~]{1,40}").prop_map(|(id, wk, k)| SignatureKey::JwksUri {
                id,
                well_known: wk,
                kid: Kid::new(k).unwrap(),
            }),
            "[ -~]{0,300}".prop_map(|jwt| SignatureKey::Jwt { jwt }),
            (printable, printable).prop_map(|(x5u, x5t)| SignatureKey::X509 { x5u, x5t }),
        ]
    }

    fn arb_field() -> impl Strategy<Value = SignatureKeyField> {
        (
            "[a-z*][a-z0-9_.*-]{0,12}",
            arb_key(),
            prop_oneof![Just(Syntax::Sk0), Just(Syntax::Parenthesised)],
        )
            .prop_map(|(label, key, syntax)| SignatureKeyField {
                label: Label::new(label).unwrap(),
                key,
                syntax,
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_strings(s in ".{0,400}") {
            let _ = parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_miss_headers(
            s in r#"[a-z*]{1,4}=\(?(scheme=[a-z_]{1,8} )?([a-z-]{1,4}=("[ -~]{0,12}"?|[A-Za-z0-9:/]{0,6})[ ;]?){0,5}\)?[ ,;]?"#
        ) {
            let _ = parse(&s);
        }

        #[test]
        fn parse_of_emit_is_identity_in_both_syntaxes(field in arb_field()) {
            let header = field.to_header_value(field.syntax).unwrap();
            prop_assert_eq!(parse(&header).unwrap(), field);
        }
    }
}
