//! `Content-Digest` (RFC 9530 §2) for signed request bodies (E§10.3,
//! profile: P-SIG-1).
//!
//! We emit `sha-256`; on receipt we accept `sha-256` and `sha-512`. The field
//! is an RFC 8941 dictionary from algorithm name to byte sequence. Members
//! with algorithms we do not support are ignored (RFC 9530 §2: "a recipient
//! MAY ignore any or all digests"), but at least one supported digest must be
//! present, and every supported digest present must match the body received.

use std::fmt;

use sfv::{BareItem, DictSerializer, KeyRef, ListEntry, RefBareItem};

use crate::error::Condition;
use crate::httpsig::sf;
use crate::keys::{sha256, sha512};

/// Longest `Content-Digest` field value accepted. Both supported digests
/// together need under 150 bytes; the rest is room for ignored algorithms.
pub const MAX_FIELD_LEN: usize = 1024;

/// A digest algorithm of the Hash Algorithms for HTTP Digest Fields registry
/// that this crate supports (RFC 9530 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// `sha-256`, the one we emit.
    Sha256,
    /// `sha-512`, accepted on receipt.
    Sha512,
}

impl DigestAlgorithm {
    /// The registered algorithm key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha512 => "sha-512",
        }
    }

    /// The supported algorithm for a registered key, or `None` (ignored).
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "sha-256" => Some(Self::Sha256),
            "sha-512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn matches(self, body: &[u8], digest: &[u8]) -> bool {
        match self {
            Self::Sha256 => sha256(body).as_slice() == digest,
            Self::Sha512 => sha512(body).as_slice() == digest,
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a `Content-Digest` field was refused. Texts are written for the
/// remote caller (they become `error_description`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentDigestError {
    /// The request has a body but no `Content-Digest` field.
    #[error("the request has a body but no Content-Digest header")]
    Missing,
    /// The field value is longer than [`MAX_FIELD_LEN`].
    #[error("Content-Digest header is longer than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// Not an RFC 8941 dictionary.
    #[error("Content-Digest header is not a structured field dictionary: {0}")]
    Malformed(String),
    /// An algorithm appears twice (RFC 8941 parsers would keep only the last).
    #[error("Content-Digest header lists the algorithm {0:?} more than once")]
    DuplicateAlgorithm(String),
    /// A supported algorithm's value is not a byte sequence.
    #[error("Content-Digest {0} value is not a byte sequence")]
    NotByteSequence(DigestAlgorithm),
    /// Only algorithms we do not support are present.
    #[error("Content-Digest header has no sha-256 or sha-512 digest")]
    NoSupportedAlgorithm,
    /// A supported digest does not match the body received.
    #[error("Content-Digest {0} does not match the request body")]
    Mismatch(DigestAlgorithm),
}

impl ContentDigestError {
    /// The P-ERR-1 row: a body that does not match its signed digest is a
    /// failing signature.
    pub fn condition(&self) -> Condition {
        match self {
            Self::Missing
            | Self::TooLarge { .. }
            | Self::Malformed(_)
            | Self::DuplicateAlgorithm(_)
            | Self::NotByteSequence(_)
            | Self::NoSupportedAlgorithm
            | Self::Mismatch(_) => Condition::SignatureInvalid,
        }
    }
}

/// The `Content-Digest` field value we emit for `body`: `sha-256=:…:`
/// (RFC 9530 §2, profile: P-SIG-1).
pub fn sha256_field(body: &[u8]) -> String {
    let digest = sha256(body);
    let mut ser = DictSerializer::new();
    ser.bare_item(
        KeyRef::constant("sha-256"),
        RefBareItem::ByteSequence(&digest),
    );
    ser.finish().unwrap_or_default()
}

/// A received `Content-Digest` field, reduced to the digests we support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentDigest {
    digests: Vec<(DigestAlgorithm, Vec<u8>)>,
}

impl ContentDigest {
    /// Parses a received field value (RFC 9530 §2).
    pub fn parse(field_value: &str) -> Result<Self, ContentDigestError> {
        if field_value.len() > MAX_FIELD_LEN {
            return Err(ContentDigestError::TooLarge { max: MAX_FIELD_LEN });
        }
        let parsed = sf::parse_dictionary(field_value)
            .map_err(|e| ContentDigestError::Malformed(e.to_string()))?;
        if let Some(repeated) = parsed.first_duplicate {
            return Err(ContentDigestError::DuplicateAlgorithm(repeated));
        }
        let mut digests = Vec::new();
        for (key, entry) in &parsed.dict {
            // RFC 9530 §2: unknown algorithms are ignored.
            let Some(alg) = DigestAlgorithm::from_key(key.as_str()) else {
                continue;
            };
            match entry {
                ListEntry::Item(item) => match &item.bare_item {
                    BareItem::ByteSequence(bytes) => digests.push((alg, bytes.clone())),
                    _ => return Err(ContentDigestError::NotByteSequence(alg)),
                },
                ListEntry::InnerList(_) => return Err(ContentDigestError::NotByteSequence(alg)),
            }
        }
        if digests.is_empty() {
            return Err(ContentDigestError::NoSupportedAlgorithm);
        }
        Ok(Self { digests })
    }

    /// Checks every supported digest against `body` (profile: P-SIG-1: "the
    /// digest is checked against the received body").
    pub fn verify(&self, body: &[u8]) -> Result<(), ContentDigestError> {
        for (alg, digest) in &self.digests {
            if !alg.matches(body, digest) {
                return Err(ContentDigestError::Mismatch(*alg));
            }
        }
        Ok(())
    }

    /// The supported algorithms present, in the order received.
    pub fn algorithms(&self) -> impl Iterator<Item = DigestAlgorithm> + '_ {
        self.digests.iter().map(|(alg, _)| *alg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emits_sha256_as_an_rfc8941_byte_sequence() {
        // RFC 9530 §2 example body.
        assert_eq!(
            sha256_field(b"{\"hello\": \"world\"}"),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
    }

    #[test]
    fn accepts_the_rfc9421_sha512_example() {
        // RFC 9421 B.2 test request.
        let cd = ContentDigest::parse("sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:").unwrap();
        cd.verify(b"{\"hello\": \"world\"}").unwrap();
        assert_eq!(
            cd.verify(b"{\"hello\": \"world!\"}"),
            Err(ContentDigestError::Mismatch(DigestAlgorithm::Sha512))
        );
    }

    #[test]
    fn every_supported_digest_present_must_match() {
        // profile: P-SIG-1
        let body = b"body";
        let good256 = sha256_field(body);
        let bad512 = "sha-512=:AAAA:";
        let cd = ContentDigest::parse(&format!("{good256}, {bad512}")).unwrap();
        assert_eq!(
            cd.verify(body),
            Err(ContentDigestError::Mismatch(DigestAlgorithm::Sha512))
        );
    }

    #[test]
    fn ignores_unknown_algorithms_but_needs_one_supported() {
        let body = b"body";
        let field = format!("md5=:AAAA:, unixsum=12, {}", sha256_field(body));
        let cd = ContentDigest::parse(&field).unwrap();
        assert_eq!(
            cd.algorithms().collect::<Vec<_>>(),
            [DigestAlgorithm::Sha256]
        );
        cd.verify(body).unwrap();
        assert_eq!(
            ContentDigest::parse("md5=:AAAA:"),
            Err(ContentDigestError::NoSupportedAlgorithm)
        );
    }

    #[test]
    fn rejects_malformed_values_precisely() {
        assert!(matches!(
            ContentDigest::parse("sha-256=:X48E"),
            Err(ContentDigestError::Malformed(_))
        ));
        assert_eq!(
            ContentDigest::parse("sha-256=\"x\""),
            Err(ContentDigestError::NotByteSequence(DigestAlgorithm::Sha256))
        );
        assert_eq!(
            ContentDigest::parse("sha-512=(:AA==:)"),
            Err(ContentDigestError::NotByteSequence(DigestAlgorithm::Sha512))
        );
        assert_eq!(
            ContentDigest::parse(&"a".repeat(MAX_FIELD_LEN + 1)),
            Err(ContentDigestError::TooLarge { max: MAX_FIELD_LEN })
        );
    }

    #[test]
    fn rejects_a_repeated_algorithm_that_sfv_would_collapse() {
        let body = b"body";
        let field = format!("sha-256=:AAAA:, {}", sha256_field(body));
        assert_eq!(
            ContentDigest::parse(&field),
            Err(ContentDigestError::DuplicateAlgorithm("sha-256".into()))
        );
    }

    #[test]
    fn every_error_is_an_invalid_signature() {
        // profile: P-ERR-1
        assert_eq!(
            ContentDigestError::Missing.condition(),
            Condition::SignatureInvalid
        );
    }

    proptest! {
        #[test]
        fn arbitrary_field_values_never_panic(text in ".{0,300}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(cd) = ContentDigest::parse(&text) {
                let _ = cd.verify(&body);
            }
        }

        #[test]
        fn emitted_field_round_trips(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let cd = ContentDigest::parse(&sha256_field(&body)).unwrap();
            prop_assert!(cd.verify(&body).is_ok());
        }
    }
}
