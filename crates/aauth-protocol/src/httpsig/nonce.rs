//! The `Nonce` header (E§10.5, profile: P-SIG-6): base64url without padding
//! of at least 96 bits of entropy.

use std::fmt;

use super::HttpSigError;
use crate::b64;
use crate::keys::{CryptoError, random_bytes};

/// A `Nonce` header value: base64url without padding, at least 96 bits
/// (E§10.5). Not a secret: it travels in the clear.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Nonce(String);

impl Nonce {
    /// E§10.5: "at least 96 bits (12 bytes)".
    pub const MIN_BYTES: usize = 12;
    /// Bytes of entropy in the nonces we generate (128 bits).
    pub const GENERATED_BYTES: usize = 16;
    /// Longest value accepted (bounds the replay cache entry).
    pub const MAX_LEN: usize = 256;

    /// Generates a fresh nonce of 128 random bits (P-SIG-6).
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = [0u8; Self::GENERATED_BYTES];
        random_bytes(&mut bytes)?;
        Ok(Self(b64::url_encode(bytes)))
    }

    /// Checks a received `Nonce` value (E§10.5 receiver validation step 2).
    pub fn parse(text: &str) -> Result<Self, HttpSigError> {
        if text.len() > Self::MAX_LEN {
            return Err(HttpSigError::NonceMalformed);
        }
        let bytes = b64::url_decode(text).map_err(|_| HttpSigError::NonceMalformed)?;
        if bytes.len() < Self::MIN_BYTES {
            return Err(HttpSigError::NonceTooShort {
                bits: bytes.len().saturating_mul(8),
            });
        }
        Ok(Self(text.to_owned()))
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// P-SIG-6: whether a request with this method carries a `Nonce` — our
    /// agents send one, and a resource requires one by default — on POST,
    /// PUT, PATCH and DELETE.
    pub fn expected_for(method: &str) -> bool {
        matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

/// When a verifier requires a `Nonce` (P-SIG-6). A `Nonce` that is sent is
/// checked whatever the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonceRule {
    /// Never required.
    #[default]
    Optional,
    /// Required where [`Nonce::expected_for`] says (a resource's default).
    NonIdempotent,
    /// Required on every request (the auth server's token endpoint).
    Always,
}

impl NonceRule {
    /// Whether a request with `method` must carry a `Nonce`.
    pub fn requires(self, method: &str) -> bool {
        match self {
            Self::Optional => false,
            Self::NonIdempotent => Nonce::expected_for(method),
            Self::Always => true,
        }
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.0)
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_nonces_carry_128_bits_and_differ() {
        // profile: P-SIG-6
        let a = Nonce::generate().unwrap();
        let b = Nonce::generate().unwrap();
        assert_eq!(a.as_str().len(), 22);
        assert_ne!(a, b);
        assert_eq!(Nonce::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn accepts_the_explainer_example() {
        // E§10.5: "Nonce: Y3VyaW91c2x5Y3VyaW91cw" (16 bytes).
        assert!(Nonce::parse("Y3VyaW91c2x5Y3VyaW91cw").is_ok());
    }

    #[test]
    fn refuses_fewer_than_96_bits() {
        // E§10.5: 11 bytes are 88 bits.
        assert_eq!(
            Nonce::parse(&b64::url_encode([7u8; 11])),
            Err(HttpSigError::NonceTooShort { bits: 88 })
        );
        assert!(Nonce::parse(&b64::url_encode([7u8; 12])).is_ok());
    }

    #[test]
    fn refuses_padding_standard_alphabet_and_overlong_values() {
        for bad in [
            "Y3VyaW91c2x5Y3VyaW91cw==",
            "Y3VyaW91c2x5Y3VyaW+/cw",
            "",
            &"A".repeat(Nonce::MAX_LEN + 1),
        ] {
            assert!(
                matches!(
                    Nonce::parse(bad),
                    Err(HttpSigError::NonceMalformed | HttpSigError::NonceTooShort { .. })
                ),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_nonces_never_panic(text in ".{0,300}") {
            let _ = Nonce::parse(&text);
        }
    }
}
