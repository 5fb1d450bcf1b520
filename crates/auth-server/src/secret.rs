//! Opaque secrets the auth server hands out: request tokens (P-AS-3), codes
//! (P-AS-5), refresh tokens (P-AS-6), session ids and CSRF tokens (P-AS-4).
//!
//! Each is 256 bits from the system's secure generator, base64url without
//! padding. Only a SHA-256 digest of a secret is stored, so a copy of the
//! database does not hand out live tokens; `Debug` prints `[redacted]`.

use aauth_protocol::b64;
use aauth_protocol::keys::{CryptoError, random_bytes, sha256};

/// Longest secret accepted from a peer; ours are 43 characters.
pub const MAX_SECRET_LEN: usize = 256;

/// A secret value, as sent to its holder once.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// 256 fresh random bits, base64url (P-AS-3, P-AS-6: "opaque, 256-bit random").
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = [0u8; 32];
        random_bytes(&mut bytes)?;
        Ok(Self(b64::url_encode(bytes)))
    }

    /// A secret received from a peer; `None` when empty or too long to be ours.
    pub fn received(text: &str) -> Option<Self> {
        (!text.is_empty() && text.len() <= MAX_SECRET_LEN).then(|| Self(text.to_owned()))
    }

    /// The value, for the one response or cookie that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the database keeps: base64url of SHA-256 of the value.
    pub fn digest(&self) -> String {
        b64::url_encode(sha256(self.0.as_bytes()))
    }

    /// Compares with `other` in time independent of where they differ.
    pub fn matches(&self, other: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), other.as_bytes())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Equality whose running time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bit_base64url_and_redacted() {
        // profile: P-AS-3, P-AS-6 — "opaque, 256-bit random".
        let secret = Secret::generate().unwrap();
        assert_eq!(secret.expose().len(), 43);
        assert_eq!(b64::url_decode(secret.expose()).unwrap().len(), 32);
        assert_ne!(secret, Secret::generate().unwrap());
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_ne!(secret.digest(), secret.expose());
    }

    #[test]
    fn received_secrets_are_bounded() {
        assert!(Secret::received("").is_none());
        assert!(Secret::received(&"a".repeat(MAX_SECRET_LEN + 1)).is_none());
        assert!(Secret::received("abc").unwrap().matches("abc"));
        assert!(!Secret::received("abc").unwrap().matches("abd"));
        assert!(!Secret::received("abc").unwrap().matches("ab"));
    }
}
