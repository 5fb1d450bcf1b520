//! Compact JWS (RFC 7515) for the profile's two algorithms (P-TOK-1).

/// A JWS `alg` of the profile. A closed set: `none`, HMAC and every other
/// algorithm fail to parse (profile: P-TOK-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsAlg {
    /// `EdDSA` with Ed25519 (RFC 8037); `Ed25519` (RFC 9864) is read as a synonym.
    EdDsa,
    /// `ES256`: ECDSA P-256 SHA-256 (RFC 7518 §3.4).
    Es256,
}

impl JwsAlg {
    /// The name we emit.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    /// Parses a received `alg`.
    pub fn from_wire(alg: &str) -> Option<Self> {
        match alg {
            "EdDSA" | "Ed25519" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    /// The key algorithm this JWS algorithm needs.
    pub fn key_algorithm(self) -> crate::keys::Algorithm {
        match self {
            Self::EdDsa => crate::keys::Algorithm::Ed25519,
            Self::Es256 => crate::keys::Algorithm::EcdsaP256Sha256,
        }
    }
}
