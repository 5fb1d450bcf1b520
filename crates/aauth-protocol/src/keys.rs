//! Signing and verification keys: Ed25519 (RFC 8032) and ECDSA P-256 with
//! SHA-256, through aws-lc-rs.
//!
//! Both algorithms produce 64-byte signatures: Ed25519 natively, ECDSA as the
//! fixed-width `r || s` that RFC 9421 §3.3.4 and RFC 7518 §3.4 both require.
//! Private keys print `[redacted]` (style: secrets are their own types).

use std::fmt;

use aws_lc_rs::encoding::AsBigEndian as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, ParsedPublicKey,
};
use serde::{Deserialize, Serialize};

use crate::b64;
use crate::jwk::{JwkError, JwkMembers, PublicKey};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// SHA-512 of `data`.
pub fn sha512(data: &[u8]) -> [u8; 64] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, data);
    let mut out = [0u8; 64];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Fills `buf` from the operating system's secure random source.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    use aws_lc_rs::rand::SecureRandom as _;
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| CryptoError::Random)
}

/// A signature algorithm of the profile (P-SIG-4, P-TOK-1), named both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RFC 9421 `ed25519`; JWS `EdDSA`.
    Ed25519,
    /// RFC 9421 `ecdsa-p256-sha256`; JWS `ES256`.
    EcdsaP256Sha256,
}

impl Algorithm {
    /// The RFC 9421 algorithm name (HTTP Signature Algorithms registry).
    pub fn http_name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256Sha256 => "ecdsa-p256-sha256",
        }
    }

    /// Parses an RFC 9421 `alg` parameter; `None` for any other algorithm.
    pub fn from_http_name(name: &str) -> Option<Self> {
        match name {
            "ed25519" => Some(Self::Ed25519),
            "ecdsa-p256-sha256" => Some(Self::EcdsaP256Sha256),
            _ => None,
        }
    }

    /// The JWS `alg` we emit for this algorithm.
    pub fn jws_alg(self) -> crate::jose::JwsAlg {
        match self {
            Self::Ed25519 => crate::jose::JwsAlg::EdDsa,
            Self::EcdsaP256Sha256 => crate::jose::JwsAlg::Es256,
        }
    }
}

/// A failure inside the crypto library.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Key generation failed.
    #[error("key generation failed")]
    KeyGeneration,
    /// The private key material was rejected.
    #[error("private key rejected: {0}")]
    KeyRejected(String),
    /// Signing failed.
    #[error("signing failed")]
    Signing,
    /// The random source failed.
    #[error("the system random source failed")]
    Random,
    /// A signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// The public key is not a valid point or encoding.
    #[error("public key rejected")]
    BadPublicKey,
}

/// The uncompressed SEC1 encoding of a P-256 point: `0x04 || x || y`.
fn sec1_point(x: &[u8; 32], y: &[u8; 32]) -> Vec<u8> {
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    point
}

/// A private signing key. `Debug` never shows key material.
pub struct SigningKey {
    inner: SigningInner,
    public: PublicKey,
}

enum SigningInner {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .field("private", &"[redacted]")
            .finish()
    }
}

fn p256_public(pair: &EcdsaKeyPair) -> Result<PublicKey, CryptoError> {
    // Uncompressed SEC1 point: 0x04 || x || y.
    let point = pair.public_key().as_ref();
    match point {
        [0x04, rest @ ..] if rest.len() == 64 => {
            let mut x = [0u8; 32];
            let mut y = [0u8; 32];
            x.copy_from_slice(rest.get(..32).ok_or(CryptoError::BadPublicKey)?);
            y.copy_from_slice(rest.get(32..).ok_or(CryptoError::BadPublicKey)?);
            Ok(PublicKey::P256 { x, y })
        }
        _ => Err(CryptoError::BadPublicKey),
    }
}

fn ed25519_public(pair: &Ed25519KeyPair) -> Result<PublicKey, CryptoError> {
    let bytes: [u8; 32] = pair
        .public_key()
        .as_ref()
        .try_into()
        .map_err(|_| CryptoError::BadPublicKey)?;
    Ok(PublicKey::Ed25519(bytes))
}

impl SigningKey {
    /// Generates a fresh key for `alg`.
    pub fn generate(alg: Algorithm) -> Result<Self, CryptoError> {
        match alg {
            Algorithm::Ed25519 => {
                let pair = Ed25519KeyPair::generate().map_err(|_| CryptoError::KeyGeneration)?;
                Self::from_ed25519(pair)
            }
            Algorithm::EcdsaP256Sha256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| CryptoError::KeyGeneration)?;
                let public = p256_public(&pair)?;
                Ok(Self {
                    inner: SigningInner::P256(pair),
                    public,
                })
            }
        }
    }

    fn from_ed25519(pair: Ed25519KeyPair) -> Result<Self, CryptoError> {
        let public = ed25519_public(&pair)?;
        Ok(Self {
            inner: SigningInner::Ed25519(pair),
            public,
        })
    }

    /// Imports an Ed25519 key from its 32-byte seed (RFC 8032 §5.1.5).
    pub fn ed25519_from_seed(seed: &[u8]) -> Result<Self, CryptoError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| CryptoError::KeyRejected(e.to_string()))?;
        Self::from_ed25519(pair)
    }

    /// Imports a private JWK (`d` plus the public members, which must agree).
    pub fn from_private_jwk(jwk: &PrivateJwk) -> Result<Self, JwkError> {
        let members = &jwk.0;
        let public = PublicKey::from_members_ignoring_private(members)?;
        let d = members.d.as_deref().ok_or(JwkError::MissingMember("d"))?;
        if d.len() != 43 {
            return Err(JwkError::BadMember("d"));
        }
        let d = b64::url_decode(d).map_err(|_| JwkError::BadMember("d"))?;
        let key = match &public {
            PublicKey::Ed25519(x) => {
                let pair = Ed25519KeyPair::from_seed_and_public_key(&d, x)
                    .map_err(|_| JwkError::BadMember("d"))?;
                Self::from_ed25519(pair).map_err(|_| JwkError::BadMember("d"))?
            }
            PublicKey::P256 { x, y } => {
                let point = sec1_point(x, y);
                let pair = EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &d,
                    &point,
                )
                .map_err(|_| JwkError::BadMember("d"))?;
                Self {
                    inner: SigningInner::P256(pair),
                    public: public.clone(),
                }
            }
        };
        Ok(key)
    }

    /// Exports the private JWK (for storing the key on disk).
    pub fn to_private_jwk(&self) -> Result<PrivateJwk, CryptoError> {
        let d = match &self.inner {
            SigningInner::Ed25519(pair) => {
                let seed = pair.seed().map_err(|_| CryptoError::Signing)?;
                let bin = seed.as_be_bytes().map_err(|_| CryptoError::Signing)?;
                b64::url_encode(bin.as_ref())
            }
            SigningInner::P256(pair) => {
                let bin = pair
                    .private_key()
                    .as_be_bytes()
                    .map_err(|_| CryptoError::Signing)?;
                b64::url_encode(bin.as_ref())
            }
        };
        let mut members = self.public.to_members();
        members.d = Some(d);
        Ok(PrivateJwk(members))
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.public.http_sig_alg()
    }

    /// Signs `message`: Ed25519 (deterministic) or ECDSA P-256 SHA-256 as
    /// fixed-width `r || s` (randomised).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.inner {
            SigningInner::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            SigningInner::P256(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| CryptoError::Signing),
        }
    }
}

/// A private JWK as stored on disk. `Debug` never shows `d`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrivateJwk(JwkMembers);

impl PrivateJwk {
    /// Wraps JWK members that include `d`.
    pub fn new(members: JwkMembers) -> Self {
        Self(members)
    }

    /// The members, `d` included. Handle with care.
    pub fn members(&self) -> &JwkMembers {
        &self.0
    }
}

impl fmt::Debug for PrivateJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateJwk")
            .field("kty", &self.0.kty)
            .field("crv", &self.0.crv)
            .field("x", &self.0.x)
            .field("d", &"[redacted]")
            .finish()
    }
}

/// A public key parsed once for repeated verification.
#[derive(Clone)]
pub struct VerifyingKey {
    parsed: ParsedPublicKey,
    alg: Algorithm,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Parses `key` for verification (validates the EC point).
    pub fn new(key: &PublicKey) -> Result<Self, CryptoError> {
        let (parsed, alg) = match key {
            PublicKey::Ed25519(x) => (
                ParsedPublicKey::new(&ED25519, x).map_err(|_| CryptoError::BadPublicKey)?,
                Algorithm::Ed25519,
            ),
            PublicKey::P256 { x, y } => {
                let point = sec1_point(x, y);
                (
                    ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                        .map_err(|_| CryptoError::BadPublicKey)?,
                    Algorithm::EcdsaP256Sha256,
                )
            }
        };
        Ok(Self { parsed, alg })
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Verifies `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        self.parsed
            .verify_sig(message, signature)
            .map_err(|_| CryptoError::BadSignature)
    }
}

impl PublicKey {
    /// Verifies `signature` over `message` with this key (parses it first;
    /// keep a [`VerifyingKey`] to verify many times).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        VerifyingKey::new(self)?.verify(message, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc8037_private() -> PrivateJwk {
        PrivateJwk::new(JwkMembers {
            kty: Some("OKP".into()),
            crv: Some("Ed25519".into()),
            d: Some("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A".into()),
            x: Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into()),
            ..JwkMembers::default()
        })
    }

    #[test]
    fn rfc8032_test1_signature_of_empty_message() {
        // RFC 8037 A.1 is RFC 8032 §7.1 TEST 1; its signature of "" is known.
        let key = SigningKey::from_private_jwk(&rfc8037_private()).unwrap();
        let sig = key.sign(b"").unwrap();
        assert_eq!(
            b64::url_encode(&sig),
            "5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc-bRr0lv18FlbviRlUUFDjnoQCw"
        );
        key.public_key().verify(b"", &sig).unwrap();
        assert_eq!(
            key.public_key().verify(b"x", &sig),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn private_jwk_round_trips_for_both_algorithms() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            let key = SigningKey::generate(alg).unwrap();
            let jwk = key.to_private_jwk().unwrap();
            let back = SigningKey::from_private_jwk(&jwk).unwrap();
            assert_eq!(back.public_key(), key.public_key());
            let sig = back.sign(b"message").unwrap();
            assert_eq!(sig.len(), 64);
            key.public_key().verify(b"message", &sig).unwrap();
        }
    }

    #[test]
    fn private_key_material_is_redacted_in_debug() {
        let key = SigningKey::from_private_jwk(&rfc8037_private()).unwrap();
        let jwk = key.to_private_jwk().unwrap();
        for text in [format!("{key:?}"), format!("{jwk:?}")] {
            assert!(text.contains("[redacted]"), "{text}");
            assert!(!text.contains("nWGxne"), "{text}");
        }
    }

    #[test]
    fn mismatched_private_and_public_members_are_rejected() {
        let mut members = rfc8037_private().members().clone();
        members.x = Some("JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs".into());
        assert!(SigningKey::from_private_jwk(&PrivateJwk::new(members)).is_err());
    }

    #[test]
    fn http_names_round_trip() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            assert_eq!(Algorithm::from_http_name(alg.http_name()), Some(alg));
        }
        assert_eq!(Algorithm::from_http_name("rsa-pss-sha512"), None);
    }
}
