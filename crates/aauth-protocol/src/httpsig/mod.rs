//! HTTP Message Signatures (RFC 9421) as the AAuth profile uses them: E§10.3
//! to E§10.6, D§10, profile P-SIG-1 to P-SIG-8.
//!
//! ```text
//!  signer                                   verifier
//!  ──────                                   ────────
//!  sign(request, signature_key, key, opts)  prepare(request, Lk, policy, now)   E§10.1.1 steps 4–6,
//!    components in E§10.6 order               labels, components, created,      E§10.3–10.5
//!    Content-Digest (sha-256) for a body      nonce, Content-Digest, base
//!    ;created=N only                                    │
//!    → Signature-Input, Signature, …        (caller resolves the key from
//!                                            Signature-Key: may need I/O)
//!                                                       │
//!                                           Prepared::verify(&key)              alg ⇔ key, 64 bytes,
//!                                                                               Ed25519 / P-256
//! ```
//!
//! The RFC 9421 machinery ([`SignatureInput`], [`build_signature_base`],
//! [`SignatureValue`], [`verify_signature`]) is public and free of AAuth
//! rules, so RFC 9421 Appendix B examples run through it; [`prepare`] layers
//! the AAuth rules on top.
//!
//! `@authority` always comes from [`Request::authority`], which a verifier
//! fills from its configuration, never from `Host` (E§10.3.1, P-SIG-5).

mod base;
mod components;
mod nonce;
mod request;
pub(crate) mod sf;
mod sign;
#[cfg(test)]
mod tests;
mod verify;

pub use base::{SignatureInput, SignatureValue, build_signature_base};
pub use components::{Component, FieldName};
pub use nonce::{Nonce, NonceRule};
pub use request::{HeaderSource, Request};
pub use sign::{SignError, SignOptions, SignatureEncoding, Signed, sign};
pub use verify::{Prepared, VerifyPolicy, prepare, verify_signature};

use crate::content_digest::ContentDigestError;
use crate::error::Condition;

/// Longest `Signature-Input` or `Signature` field value accepted (all lines
/// together).
pub const MAX_SIGNATURE_FIELD_LEN: usize = 8 * 1024;

/// Most covered components accepted in one signature.
pub const MAX_COMPONENTS: usize = 32;

/// Why a signature was refused. Every variant is an `invalid_signature`
/// (P-ERR-1); the texts are written for the remote caller (P-ERR-2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpSigError {
    /// A required header (`Signature-Input`, `Signature`, or a covered one) is absent.
    #[error("the request has no {0} header")]
    MissingHeader(String),
    /// A signature header is longer than [`MAX_SIGNATURE_FIELD_LEN`].
    #[error("{header} header is longer than {max} bytes")]
    FieldTooLarge {
        /// The header.
        header: &'static str,
        /// The limit.
        max: usize,
    },
    /// A signature header is not the structured field RFC 9421 §4 defines.
    #[error("{header} header is malformed: {reason}")]
    MalformedField {
        /// The header.
        header: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// E§10.1.1 steps 4–5: not exactly one label.
    #[error("{header} header must carry exactly one signature label, found {count}")]
    LabelCount {
        /// The header.
        header: &'static str,
        /// Members found, duplicates included.
        count: usize,
    },
    /// E§10.1.1 step 6: the three labels differ.
    #[error(
        "signature labels differ: Signature-Key {signature_key:?}, Signature-Input {signature_input:?}, Signature {signature:?}"
    )]
    LabelMismatch {
        /// Lk.
        signature_key: String,
        /// Ls.
        signature_input: String,
        /// The label in `Signature`.
        signature: String,
    },
    /// A covered component identifier that is not a valid string or field name.
    #[error("covered component {0} is not a valid component identifier")]
    BadComponent(String),
    /// A derived component or component parameter outside the profile (P-SIG-8).
    #[error(
        "covered component {0} is not supported (supported: @method, @authority, @path, @query and header fields without parameters)"
    )]
    UnsupportedComponent(String),
    /// RFC 9421 §2.5: a component identifier occurs twice.
    #[error("covered component {0} is listed more than once")]
    DuplicateComponent(String),
    /// A signature parameter occurs twice: RFC 8941 would keep the last,
    /// and `@signature-params` could no longer be rebuilt as received.
    #[error("Signature-Input repeats a signature parameter")]
    DuplicateParameter,
    /// More than [`MAX_COMPONENTS`] covered components.
    #[error("signature covers more than {max} components")]
    TooManyComponents {
        /// The limit.
        max: usize,
    },
    /// E§10.3 / D§10.3: required components not covered (D§11.2.1).
    #[error("signature does not cover the required components: {}", missing.join(", "))]
    MissingComponents {
        /// The required components that are not covered.
        missing: Vec<String>,
        /// Every component this request must cover (`required_components`).
        required: Vec<String>,
    },
    /// E§10.3: "`@query` MUST NOT be included when no query string is present".
    #[error("signature covers @query but the request target has no query string")]
    QueryWithoutQuestionMark,
    /// E§10.3: "Body-related components MUST NOT be included when there is no body".
    #[error("signature covers {0} but the request has no body")]
    BodyComponentWithoutBody(String),
    /// The method, authority or target cannot be put into a signature base.
    #[error("the request {0} cannot be used in a signature base")]
    BadRequest(&'static str),
    /// A covered header's value contains control characters.
    #[error("covered header {0} contains control characters")]
    BadHeaderValue(String),
    /// A signature parameter has the wrong type or range (RFC 9421 §2.3).
    #[error("signature parameter {0} has the wrong type or is out of range")]
    BadParameter(&'static str),
    /// E§10.4: "The Signature-Input header MUST include: created".
    #[error("Signature-Input has no created parameter")]
    CreatedMissing,
    /// E§10.4: `created` more than the allowed skew in the past.
    #[error(
        "signature created at {created} is more than {max_skew} s before the verifier's clock ({now})"
    )]
    CreatedTooOld {
        /// `created`.
        created: u64,
        /// The verifier's clock.
        now: u64,
        /// The tolerance.
        max_skew: u64,
    },
    /// E§10.4: `created` more than the allowed skew in the future.
    #[error(
        "signature created at {created} is more than {max_skew} s after the verifier's clock ({now})"
    )]
    CreatedInFuture {
        /// `created`.
        created: u64,
        /// The verifier's clock.
        now: u64,
        /// The tolerance.
        max_skew: u64,
    },
    /// RFC 9421 §2.3: the signature's `expires` has passed.
    #[error("signature expired at {expires} (verifier's clock: {now})")]
    Expired {
        /// `expires`.
        expires: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// `alg` is not `ed25519` or `ecdsa-p256-sha256` (P-SIG-4).
    #[error("signature algorithm {0:?} is not supported (supported: ed25519, ecdsa-p256-sha256)")]
    UnsupportedAlg(String),
    /// SK0§3.4: "Reject algorithm/key mismatches" (P-SIG-2).
    #[error("signature alg {alg} does not match the key type ({key})")]
    AlgKeyMismatch {
        /// The `alg` parameter.
        alg: &'static str,
        /// The algorithm the key implies.
        key: &'static str,
    },
    /// The `Signature` member is not a byte sequence.
    #[error("Signature value is not a byte sequence")]
    BadSignatureEncoding,
    /// Base64url or otherwise non-standard base64 without `lenient_base64` (P-SIG-7).
    #[error(
        "Signature value must be an RFC 8941 byte sequence in standard, padded base64 (base64url or missing padding is not accepted)"
    )]
    NonStandardBase64,
    /// Ed25519 and ECDSA P-256 signatures are 64 bytes.
    #[error("signature is {0} bytes long, expected 64")]
    SignatureLength(usize),
    /// The cryptographic check failed.
    #[error("signature verification failed")]
    SignatureInvalid,
    /// E§10.5: the `Nonce` header is not base64url without padding.
    #[error("Nonce header is not base64url without padding (or is too long)")]
    NonceMalformed,
    /// E§10.5: "at least 96 bits (12 bytes) of cryptographic entropy".
    #[error("Nonce header carries {bits} bits, at least 96 are required")]
    NonceTooShort {
        /// Bits carried.
        bits: usize,
    },
    /// The endpoint requires a `Nonce` header (P-SIG-6).
    #[error("this endpoint requires a Nonce header covered by the signature")]
    NonceMissing,
    /// P-SIG-1: the body does not match `Content-Digest`, or the field is bad.
    #[error(transparent)]
    ContentDigest(#[from] ContentDigestError),
}

impl HttpSigError {
    /// The P-ERR-1 row: every signature failure is `invalid_signature`.
    pub fn condition(&self) -> Condition {
        match self {
            Self::MissingHeader(_)
            | Self::FieldTooLarge { .. }
            | Self::MalformedField { .. }
            | Self::LabelCount { .. }
            | Self::LabelMismatch { .. }
            | Self::BadComponent(_)
            | Self::UnsupportedComponent(_)
            | Self::DuplicateComponent(_)
            | Self::DuplicateParameter
            | Self::TooManyComponents { .. }
            | Self::MissingComponents { .. }
            | Self::QueryWithoutQuestionMark
            | Self::BodyComponentWithoutBody(_)
            | Self::BadRequest(_)
            | Self::BadHeaderValue(_)
            | Self::BadParameter(_)
            | Self::CreatedMissing
            | Self::CreatedTooOld { .. }
            | Self::CreatedInFuture { .. }
            | Self::Expired { .. }
            | Self::UnsupportedAlg(_)
            | Self::AlgKeyMismatch { .. }
            | Self::BadSignatureEncoding
            | Self::NonStandardBase64
            | Self::SignatureLength(_)
            | Self::SignatureInvalid
            | Self::NonceMalformed
            | Self::NonceTooShort { .. }
            | Self::NonceMissing => Condition::SignatureInvalid,
            Self::ContentDigest(e) => e.condition(),
        }
    }

    /// The `required_components` member of D§11.2.1, when components were missing.
    pub fn required_components(&self) -> Option<&[String]> {
        match self {
            Self::MissingComponents { required, .. } => Some(required),
            _ => None,
        }
    }
}
