//! The signer (E§10.3, E§10.6, profile: P-SIG-1, P-SIG-1a, P-SIG-6, P-SIG-7).
//!
//! Components are chosen by E§10.3's "if and only if" rules and emitted in
//! E§10.6's order, `@method @authority @path [@query] [content-type
//! content-digest] [nonce] signature-key`, with the single parameter
//! `;created=N`. A non-empty body gets a `Content-Digest: sha-256=:…:`.

use sfv::{DictSerializer, KeyRef, RefBareItem};

use super::HttpSigError;
use super::base::{SignatureInput, build_signature_base};
use super::components::{Component, FieldName};
use super::nonce::Nonce;
use super::request::{HeaderSource, Request};
use crate::content_digest;
use crate::ids::Label;
use crate::keys::{CryptoError, SigningKey};

/// Why signing failed. These are local failures, never sent to a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// E§10.3: a body requires `content-type` to be covered.
    #[error("a request with a body needs a Content-Type header to sign")]
    ContentTypeMissing,
    /// The request already carries a header the signer emits.
    #[error("the request already has a {0} header; the signer sets it")]
    HeaderConflict(&'static str),
    /// The request cannot be put into a signature base.
    #[error(transparent)]
    Base(#[from] HttpSigError),
    /// The key failed to sign.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// What to sign with, besides the key (P-SIG-1a).
#[derive(Debug, Clone)]
pub struct SignOptions<'a> {
    /// The label shared by the three headers (P-SIG-3: we emit `sig`).
    pub label: Label,
    /// `created`, from the caller's clock (the crate has none).
    pub created: u64,
    /// The `Nonce` to send and cover, if any (E§10.5, P-SIG-6).
    pub nonce: Option<&'a Nonce>,
    /// The resource's `additional_signature_components` (D§10.3): covered
    /// too, each where E§10.3 allows it (`@query` only with a query, body
    /// components only with a body, `nonce` only with a nonce). Header
    /// fields named here must be present on the request.
    pub additional_components: &'a [String],
    /// How the `Signature` value is written (P-SIG-7).
    pub encoding: SignatureEncoding,
}

/// How a signer writes the `Signature` value (profile: P-SIG-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureEncoding {
    /// An RFC 8941 byte sequence: standard base64 with padding, what RFC
    /// 9421 asks for and what we emit.
    #[default]
    ByteSequence,
    /// base64url without padding between the colons: **not** RFC 8941.
    /// Only for a peer that reads nothing else (the early PyPI `aauth`,
    /// whose verifier decodes only this); a strict verifier refuses it.
    UnpaddedBase64Url,
}

impl SignOptions<'_> {
    /// Label `sig`, no nonce.
    pub fn new(created: u64) -> Self {
        Self {
            label: Label::sig(),
            created,
            nonce: None,
            additional_components: &[],
            encoding: SignatureEncoding::ByteSequence,
        }
    }
}

/// The headers a signed request carries, and the base that was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `Signature-Key`, as the caller supplied it.
    pub signature_key: String,
    /// `Nonce`, if one was covered.
    pub nonce: Option<String>,
    /// `Content-Digest`, when the request has a body.
    pub content_digest: Option<String>,
    /// `Signature-Input`.
    pub signature_input: String,
    /// `Signature`: an RFC 8941 byte sequence, standard padded base64 (P-SIG-7).
    pub signature: String,
    /// The signature base that was signed (for diagnostics and vectors).
    pub signature_base: String,
}

impl Signed {
    /// The headers to add to the request, in a stable order.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = vec![("Signature-Key", self.signature_key.as_str())];
        if let Some(nonce) = &self.nonce {
            headers.push(("Nonce", nonce));
        }
        if let Some(digest) = &self.content_digest {
            headers.push(("Content-Digest", digest));
        }
        headers.push(("Signature-Input", &self.signature_input));
        headers.push(("Signature", &self.signature));
        headers
    }
}

/// The request's own headers plus the ones the signer adds.
struct WithAdded<'a, H: ?Sized> {
    request: &'a H,
    added: [(&'static str, Option<&'a str>); 3],
}

impl<H: HeaderSource + ?Sized> HeaderSource for WithAdded<'_, H> {
    fn field_lines(&self, name: &str) -> impl Iterator<Item = &str> {
        self.request.field_lines(name).chain(
            self.added
                .iter()
                .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                .filter_map(|(_, v)| *v),
        )
    }
}

/// Signs `request` (P-SIG-1, P-SIG-1a). `signature_key` is the
/// `Signature-Key` field value the caller built; it, the nonce and the
/// digest must not already be among the request's headers. Returns every
/// header to add and the signature base.
pub fn sign<'a, H>(
    request: &Request<'a, H>,
    signature_key: &str,
    key: &SigningKey,
    options: &SignOptions<'_>,
) -> Result<Signed, SignError>
where
    H: HeaderSource + ?Sized + 'a,
{
    for (name, display) in [
        ("signature-key", "Signature-Key"),
        ("nonce", "Nonce"),
        ("content-digest", "Content-Digest"),
        ("signature-input", "Signature-Input"),
        ("signature", "Signature"),
    ] {
        if request.has_field(name) {
            return Err(SignError::HeaderConflict(display));
        }
    }
    let body = request.non_empty_body();
    let content_digest = body.map(content_digest::sha256_field);

    // E§10.3 / E§10.6 order.
    let mut components = vec![Component::Method, Component::Authority, Component::Path];
    // E§10.3: "@query: MUST be included if and only if the request target
    // contains a query string (indicated by the presence of ?)".
    if request.has_query() {
        components.push(Component::Query);
    }
    // E§10.3: "content-type and content-digest: MUST be included if and only
    // if the request contains a body".
    if body.is_some() {
        if !request.has_field("content-type") {
            return Err(SignError::ContentTypeMissing);
        }
        components.push(Component::Field(FieldName::CONTENT_TYPE));
        components.push(Component::Field(FieldName::CONTENT_DIGEST));
    }
    // E§10.5: "When a Nonce header is present in the request, it MUST be
    // included as a covered component".
    if options.nonce.is_some() {
        components.push(Component::Field(FieldName::NONCE));
    }
    // D§10.3: "Resources MAY require additional components via
    // additional_signature_components"; the rules above already cover the
    // profile's own components exactly when E§10.3 allows them.
    for name in options.additional_components {
        let already = matches!(
            name.as_str(),
            "@method"
                | "@authority"
                | "@path"
                | "@query"
                | "content-type"
                | "content-digest"
                | "nonce"
                | "signature-key"
        );
        if already {
            continue;
        }
        let field = Component::Field(FieldName::new(name)?);
        if !components.contains(&field) {
            components.push(field);
        }
    }
    // E§10: "signature-key MUST always be a covered component".
    components.push(Component::Field(FieldName::SIGNATURE_KEY));

    let input = SignatureInput::new(options.label.clone(), components, options.created)?;
    let headers = WithAdded {
        request: request.headers,
        added: [
            ("signature-key", Some(signature_key)),
            ("nonce", options.nonce.map(Nonce::as_str)),
            ("content-digest", content_digest.as_deref()),
        ],
    };
    let view = Request {
        method: request.method,
        authority: request.authority,
        target: request.target,
        headers: &headers,
        body: request.body,
    };
    let signature_base = build_signature_base(&view, &input)?;
    let signature_bytes = key.sign(signature_base.as_bytes())?;

    let label_key =
        KeyRef::from_str(options.label.as_str()).map_err(|e| HttpSigError::MalformedField {
            header: "Signature",
            reason: e.to_string(),
        })?;
    let signature = match options.encoding {
        SignatureEncoding::ByteSequence => {
            let mut ser = DictSerializer::new();
            let _ = ser.bare_item(label_key, RefBareItem::ByteSequence(&signature_bytes));
            ser.finish().unwrap_or_default()
        }
        // Not a structured field, so sfv cannot write it; the label is an
        // sf-key (checked above) and base64url needs no escaping.
        SignatureEncoding::UnpaddedBase64Url => format!(
            "{}=:{}:",
            label_key.as_str(),
            crate::b64::url_encode(&signature_bytes)
        ),
    };

    Ok(Signed {
        signature_key: signature_key.to_owned(),
        nonce: options.nonce.map(|n| n.as_str().to_owned()),
        content_digest,
        signature_input: input.to_field_value()?,
        signature,
        signature_base,
    })
}
