//! The verifier, in two phases so that key resolution (which may need network
//! I/O outside this crate) happens in between: [`prepare`] walks E§10.1.1
//! steps 4–6 and E§10.3–E§10.5 and builds the signature base; the caller
//! resolves the key named by `Signature-Key`; [`Prepared::verify`] checks
//! `alg` against the key and the signature itself.

use super::base::{SignatureInput, SignatureValue, build_signature_base};
use super::components::{Component, FieldName};
use super::nonce::{Nonce, NonceRule};
use super::request::{HeaderSource, Request};
use super::{HttpSigError, MAX_SIGNATURE_FIELD_LEN};
use crate::content_digest::{ContentDigest, ContentDigestError};
use crate::ids::Label;
use crate::keys::{Algorithm, VerifyingKey};

/// What a verifier requires beyond the profile's fixed rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// Allowed distance of `created` from the clock, in seconds (E§10.4,
    /// D§10.4: 60 unless the receiver's policy says otherwise).
    pub max_skew: u64,
    /// When a `Nonce` header is required (P-SIG-6: the token endpoint
    /// always; a resource for non-idempotent methods by default).
    pub require_nonce: NonceRule,
    /// Accept base64url and unpadded signature values (P-SIG-7; off by default).
    pub lenient_base64: bool,
    /// The resource's `additional_signature_components` (D§10.3, D§9.3).
    pub additional_components: Vec<String>,
}

impl Default for VerifyPolicy {
    /// Strict: 60 s, no nonce required, RFC 8941 byte sequences only, no
    /// additional components.
    fn default() -> Self {
        Self {
            max_skew: 60,
            require_nonce: NonceRule::Optional,
            lenient_base64: false,
            additional_components: Vec::new(),
        }
    }
}

/// A request whose signature passed every check that needs no key.
#[derive(Debug, Clone)]
pub struct Prepared {
    label: Label,
    base: String,
    signature: Vec<u8>,
    alg: Option<Algorithm>,
    created: u64,
    expires: Option<u64>,
    nonce: Option<Nonce>,
    components: Vec<Component>,
}

impl Prepared {
    /// The signature base the verifier computed (P-ERR-3 diagnostics).
    pub fn signature_base(&self) -> &str {
        &self.base
    }

    /// The label shared by the three headers.
    pub fn label(&self) -> &Label {
        &self.label
    }

    /// The covered `Nonce`, for the caller's replay cache, keyed by
    /// (authority, key thumbprint, nonce) for the `created` window (P-SIG-6).
    pub fn nonce(&self) -> Option<&Nonce> {
        self.nonce.as_ref()
    }

    /// `created`.
    pub fn created(&self) -> u64 {
        self.created
    }

    /// `expires`, if the signer set one.
    pub fn expires(&self) -> Option<u64> {
        self.expires
    }

    /// The `alg` parameter, if the signer set one.
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The covered components, in the order signed.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// Verifies the signature with the key resolved from `Signature-Key`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), HttpSigError> {
        verify_signature(self.base.as_bytes(), &self.signature, self.alg, key)
    }
}

/// Verifies `signature` over `base` with `key` (RFC 9421 §3.2 steps 8–9).
/// `alg`, when the signer named one, must agree with the key type (P-SIG-2,
/// SK0§3.4); otherwise the algorithm is the key's.
pub fn verify_signature(
    base: &[u8],
    signature: &[u8],
    alg: Option<Algorithm>,
    key: &VerifyingKey,
) -> Result<(), HttpSigError> {
    // SK0§3.4: "Ensure key type matches algorithm requirements" and "Reject
    // algorithm/key mismatches".
    if let Some(alg) = alg
        && alg != key.algorithm()
    {
        return Err(HttpSigError::AlgKeyMismatch {
            alg: alg.http_name(),
            key: key.algorithm().http_name(),
        });
    }
    // Ed25519 (RFC 8032) and ECDSA P-256 as r || s (RFC 9421 §3.3.4): 64 bytes.
    if signature.len() != 64 {
        return Err(HttpSigError::SignatureLength(signature.len()));
    }
    key.verify(base, signature)
        .map_err(|_| HttpSigError::SignatureInvalid)
}

/// The components this request must cover (E§10.3, E§10.5, D§10.3), in
/// E§10.6's order, then the resource's additional ones.
fn required_components<'a, H>(
    request: &Request<'a, H>,
    has_nonce: bool,
    policy: &VerifyPolicy,
) -> Vec<String>
where
    H: HeaderSource + ?Sized + 'a,
{
    let has_query = request.has_query();
    let has_body = request.non_empty_body().is_some();
    let mut required: Vec<String> = vec!["@method".into(), "@authority".into(), "@path".into()];
    if has_query {
        required.push("@query".into());
    }
    if has_body {
        required.push("content-type".into());
        required.push("content-digest".into());
    }
    if has_nonce {
        required.push("nonce".into());
    }
    required.push("signature-key".into());
    for extra in &policy.additional_components {
        // The E§10.3 "MUST NOT"s win over a resource's list: `@query` only
        // with a query, body components only with a body; `nonce` only with
        // a Nonce header (its absence is NonceMissing when required).
        let applies = match extra.as_str() {
            "@query" => has_query,
            "content-type" | "content-digest" => has_body,
            "nonce" => has_nonce,
            _ => true,
        };
        if applies && !required.iter().any(|r| r == extra) {
            required.push(extra.clone());
        }
    }
    required
}

fn field<'a, H>(
    request: &Request<'a, H>,
    name: &'static str,
    display: &'static str,
) -> Result<std::borrow::Cow<'a, str>, HttpSigError>
where
    H: HeaderSource + ?Sized + 'a,
{
    request
        .bounded_field_value(name, MAX_SIGNATURE_FIELD_LEN)
        .map_err(|()| HttpSigError::FieldTooLarge {
            header: display,
            max: MAX_SIGNATURE_FIELD_LEN,
        })?
        .ok_or_else(|| HttpSigError::MissingHeader(display.to_owned()))
}

/// Checks everything that needs no key and builds the signature base
/// (E§10.1.1 steps 4–6, E§10.3–E§10.5, P-SIG-1 to P-SIG-8).
///
/// `signature_key_label` is Lk, the single label of the `Signature-Key`
/// header the caller has already parsed (E§10.1.1 steps 1–3).
/// `request.authority` must be the verifier's configured authority
/// (E§10.3.1, P-SIG-5). `now` is the verifier's clock in Unix seconds.
pub fn prepare<'a, H>(
    request: &Request<'a, H>,
    signature_key_label: &Label,
    policy: &VerifyPolicy,
    now: u64,
) -> Result<Prepared, HttpSigError>
where
    H: HeaderSource + ?Sized + 'a,
{
    // E§10.1.1 step 4: "Parse Signature-Input and verify it contains exactly
    // one label Ls; otherwise reject".
    let input = SignatureInput::parse(&field(request, "signature-input", "Signature-Input")?)?;
    // Step 5: "Parse Signature and verify it contains exactly one label;
    // otherwise reject".
    let signature = SignatureValue::parse(
        &field(request, "signature", "Signature")?,
        policy.lenient_base64,
    )?;
    // Step 6: "Verify that Lk, Ls, and the label in Signature are identical;
    // if any mismatch occurs, reject" (P-SIG-3).
    if input.label() != signature_key_label || signature.label() != signature_key_label {
        return Err(HttpSigError::LabelMismatch {
            signature_key: signature_key_label.as_str().to_owned(),
            signature_input: input.label().as_str().to_owned(),
            signature: signature.label().as_str().to_owned(),
        });
    }

    let covers = |c: &Component| input.components().contains(c);
    let body = request.non_empty_body();

    // E§10.3: "@query MUST NOT be included when no query string is present".
    if covers(&Component::Query) && !request.has_query() {
        return Err(HttpSigError::QueryWithoutQuestionMark);
    }
    // E§10.3: "Body-related components MUST NOT be included when there is no body".
    if body.is_none() {
        for name in [FieldName::CONTENT_TYPE, FieldName::CONTENT_DIGEST] {
            if covers(&Component::Field(name.clone())) {
                return Err(HttpSigError::BodyComponentWithoutBody(
                    name.as_str().to_owned(),
                ));
            }
        }
    }

    // E§10.5: "Verify the nonce has sufficient entropy (at least 96 bits)".
    let nonce = match request.field_value("nonce") {
        Some(text) => Some(Nonce::parse(&text)?),
        None => None,
    };
    // P-SIG-6: endpoints that require a nonce; a resource listing `nonce` in
    // its additional_signature_components requires one too.
    let nonce_required = policy.require_nonce.requires(request.method)
        || policy.additional_components.iter().any(|c| c == "nonce");
    if nonce.is_none() && nonce_required {
        return Err(HttpSigError::NonceMissing);
    }

    // E§10.3 "MUST cover" (always, conditional, and D§10.3's additional
    // components); E§10.5: "When a Nonce header is present in the request,
    // it MUST be included as a covered component".
    let required = required_components(request, nonce.is_some(), policy);
    let missing: Vec<String> = required
        .iter()
        .filter(|r| !input.components().iter().any(|c| c.name() == r.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(HttpSigError::MissingComponents { missing, required });
    }

    // E§10.4: "The Signature-Input header MUST include: created" and "MUST
    // NOT be more than 60 seconds in the past or future relative to the
    // receiver's current time, unless the receiver's policy specifies a
    // different tolerance" (P-SIG-2).
    let created = input.created().ok_or(HttpSigError::CreatedMissing)?;
    if created.saturating_add(policy.max_skew) < now {
        return Err(HttpSigError::CreatedTooOld {
            created,
            now,
            max_skew: policy.max_skew,
        });
    }
    if created > now.saturating_add(policy.max_skew) {
        return Err(HttpSigError::CreatedInFuture {
            created,
            now,
            max_skew: policy.max_skew,
        });
    }
    // RFC 9421 §2.3: "expires: Expiration time as a UNIX timestamp value";
    // honoured when present (P-SIG-2), strictly as for tokens (P-TOK-5).
    if let Some(expires) = input.expires()
        && now >= expires
    {
        return Err(HttpSigError::Expired { expires, now });
    }
    // P-SIG-2 / P-SIG-4: `alg`, if present, names one of our algorithms; it
    // is checked against the key in `verify`.
    let alg = match input.alg() {
        Some(name) => Some(
            Algorithm::from_http_name(name)
                .ok_or_else(|| HttpSigError::UnsupportedAlg(name.to_owned()))?,
        ),
        None => None,
    };

    // P-SIG-1: "the digest is checked against the received body".
    if let Some(body) = body {
        let field = request
            .field_value("content-digest")
            .ok_or(ContentDigestError::Missing)?;
        ContentDigest::parse(&field)?.verify(body)?;
    }

    let base = build_signature_base(request, &input)?;
    Ok(Prepared {
        label: signature_key_label.clone(),
        base,
        signature: signature.bytes().to_vec(),
        alg,
        created,
        expires: input.expires(),
        nonce,
        components: input.components().to_vec(),
    })
}
