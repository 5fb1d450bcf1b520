//! Compact JWS (RFC 7515 §3.1, §5.2, §7.1) for the profile's two
//! algorithms, `EdDSA` and `ES256` (profile: P-TOK-1).
//!
//! Receiving a JWS is two steps, and the type system keeps them apart
//! (style §11): [`UnverifiedJws::parse`] checks the structure (bounded size,
//! exactly three strict base64url parts, a JSON-object header, a `alg` from
//! the closed set, no `crit`); then [`UnverifiedJws::verify`] checks `typ`,
//! `kid` and the signature and only then reads the claims, yielding a
//! [`Verified`]. Before verification the header is reachable only through
//! [`UnverifiedJws::unverified_header`] and the claims only through
//! [`UnverifiedJws::unverified_claims_for_routing`], which checks `typ` first.
//!
//! [`sign`] produces `{"alg","typ","kid"}`-headed tokens; [`sign_key_proof`]
//! and [`verify_key_proof`] handle the `{"alg"}`-only proof of possession of
//! a new delegate key (profile: P-DEL-2).

use std::fmt;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use crate::b64;
use crate::error::echo;
use crate::ids::Kid;
use crate::jwk::PublicKey;
use crate::keys::{CryptoError, SigningKey};

/// Longest compact JWS accepted; anything longer is refused before decoding.
pub const MAX_COMPACT_LEN: usize = 16 * 1024;

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

impl fmt::Display for JwsAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a compact JWS was refused. Descriptions are written for the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Longer than [`MAX_COMPACT_LEN`].
    #[error("token is longer than {MAX_COMPACT_LEN} bytes")]
    TooLong,
    /// Five dot-separated parts: a JWE (RFC 7516 §7.1), which the profile does not support.
    #[error("encrypted (JWE) tokens are not supported")]
    Encrypted,
    /// Not exactly three dot-separated parts.
    #[error("token is not a compact JWS: it must have exactly three dot-separated parts")]
    NotThreeParts,
    /// A part is not strict base64url without padding.
    #[error("JWS {0} is not base64url without padding")]
    Base64(&'static str),
    /// The protected header is not a JSON object of the expected shape.
    #[error("JWS header is not a valid JSON object: {0}")]
    Header(String),
    /// The header has no `alg`.
    #[error("JWS header has no \"alg\"")]
    MissingAlg,
    /// An `alg` outside the closed set (`none`, HMAC, RSA, …).
    #[error("JWS \"alg\" {0:?} is not accepted (supported: EdDSA, ES256)")]
    UnsupportedAlg(String),
    /// The header has `crit`; no extension is understood (RFC 7515 §4.1.11).
    #[error("JWS header has \"crit\"; no critical extension is supported")]
    Crit,
    /// `typ` absent or not the expected media type.
    #[error("JWS \"typ\" is {got:?}, expected {expected:?}")]
    WrongTyp {
        /// The media type required here.
        expected: &'static str,
        /// What the header carries, shortened.
        got: Option<String>,
    },
    /// The header has no `kid`.
    #[error("JWS header has no \"kid\"")]
    MissingKid,
    /// The verification key is not of the type `alg` names.
    #[error("JWS \"alg\" {alg} does not match the key type of the issuer's key \"{key}\"")]
    KeyAlgMismatch {
        /// The JWS algorithm.
        alg: JwsAlg,
        /// The key's HTTP signature algorithm name.
        key: &'static str,
    },
    /// The signature does not verify.
    #[error("JWS signature does not verify")]
    BadSignature,
    /// The payload is not a JSON object of the expected shape.
    #[error("JWS payload is not a valid claims object: {0}")]
    Claims(String),
    /// A key proof's payload is not the expected value (profile: P-DEL-2).
    #[error("key proof payload does not match the expected value")]
    PayloadMismatch,
}

/// Why signing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The crypto library refused.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The claims could not be serialised.
    #[error("claims could not be serialised: {0}")]
    Json(String),
}

/// Whether a received `typ` names the media type `expected` (e.g.
/// `agent+jwt`): compared case-insensitively, with or without the
/// `application/` prefix (RFC 7515 §4.1.9, profile: P-TOK-1).
pub fn typ_matches(received: &str, expected: &str) -> bool {
    const PREFIX: &str = "application/";
    let bare = match received.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => {
            received.get(PREFIX.len()..).unwrap_or_default()
        }
        _ => received,
    };
    bare.eq_ignore_ascii_case(expected)
}

/// Set to `true` when a member is present with any value, `null` included.
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer)?;
        Ok(Self(true))
    }
}

/// The protected header members the profile reads; others are ignored.
#[derive(Deserialize)]
struct HeaderWire {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<Kid>,
    #[serde(default)]
    crit: Present,
}

/// Deserialises `bytes` as a JSON object (never an array, which serde would
/// otherwise accept positionally for a struct).
pub(crate) fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return Err("not a JSON object".to_owned());
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// A parsed JOSE header (RFC 7515 §4): the algorithm, and `typ`/`kid` as
/// received (the token validations check them in their own steps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoseHeader {
    alg: JwsAlg,
    typ: Option<String>,
    kid: Option<Kid>,
}

impl JoseHeader {
    /// The signature algorithm.
    pub fn alg(&self) -> JwsAlg {
        self.alg
    }

    /// `typ` as received.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// Whether `typ` names `expected` (see [`typ_matches`]).
    pub fn typ_is(&self, expected: &str) -> bool {
        self.typ
            .as_deref()
            .is_some_and(|t| typ_matches(t, expected))
    }

    /// `kid`, if present.
    pub fn kid(&self) -> Option<&Kid> {
        self.kid.as_ref()
    }
}

/// A structurally valid compact JWS whose signature has not been checked.
#[derive(Debug, Clone)]
pub struct UnverifiedJws<'a> {
    signing_input: &'a str,
    header: JoseHeader,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> UnverifiedJws<'a> {
    /// Parses a compact JWS (RFC 7515 §7.1), bounded by [`MAX_COMPACT_LEN`].
    pub fn parse(compact: &'a str) -> Result<Self, JwsError> {
        if compact.len() > MAX_COMPACT_LEN {
            return Err(JwsError::TooLong);
        }
        match compact.bytes().filter(|&b| b == b'.').count() {
            2 => {}
            // RFC 7516 §7.1: five parts are a JWE (profile: P-TOK-4).
            4 => return Err(JwsError::Encrypted),
            _ => return Err(JwsError::NotThreeParts),
        }
        let (signing_input, signature) = compact.rsplit_once('.').ok_or(JwsError::NotThreeParts)?;
        let (header, payload) = signing_input
            .split_once('.')
            .ok_or(JwsError::NotThreeParts)?;
        let header = b64::url_decode(header).map_err(|_| JwsError::Base64("header"))?;
        let payload = b64::url_decode(payload).map_err(|_| JwsError::Base64("payload"))?;
        let signature = b64::url_decode(signature).map_err(|_| JwsError::Base64("signature"))?;

        let wire: HeaderWire = json_object(&header).map_err(JwsError::Header)?;
        // RFC 7515 §4.1.11: unknown critical extensions MUST be rejected; we know none.
        if wire.crit.0 {
            return Err(JwsError::Crit);
        }
        let alg = wire.alg.ok_or(JwsError::MissingAlg)?;
        // profile: P-TOK-1 — `none`, HMAC and anything else fail here.
        let alg = JwsAlg::from_wire(&alg).ok_or_else(|| JwsError::UnsupportedAlg(echo(&alg)))?;
        Ok(Self {
            signing_input,
            header: JoseHeader {
                alg,
                typ: wire.typ,
                kid: wire.kid,
            },
            payload,
            signature,
        })
    }

    /// The header before any verification: for routing (which validation to
    /// run, which key to fetch), never for decisions.
    pub fn unverified_header(&self) -> &JoseHeader {
        &self.header
    }

    /// The claims before the signature is verified, only to find the issuer
    /// whose key verifies them (E§5.7 step 4). `typ` is checked first, so a
    /// token of another kind is never read as this one (style §11).
    pub fn unverified_claims_for_routing<T: DeserializeOwned>(
        &self,
        expected_typ: &'static str,
    ) -> Result<T, JwsError> {
        self.check_typ(expected_typ)?;
        json_object(&self.payload).map_err(JwsError::Claims)
    }

    fn check_typ(&self, expected: &'static str) -> Result<(), JwsError> {
        if self.header.typ_is(expected) {
            Ok(())
        } else {
            Err(JwsError::WrongTyp {
                expected,
                got: self.header.typ.as_deref().map(echo),
            })
        }
    }

    /// Verifies the signature with `key` (RFC 7515 §5.2 step 8): the key's
    /// type must be the one `alg` names; the signature covers
    /// `ASCII(BASE64URL(header) || '.' || BASE64URL(payload))`.
    pub(crate) fn verify_signature(&self, key: &PublicKey) -> Result<(), JwsError> {
        let key_alg = key.http_sig_alg();
        if key_alg != self.header.alg.key_algorithm() {
            return Err(JwsError::KeyAlgMismatch {
                alg: self.header.alg,
                key: key_alg.http_name(),
            });
        }
        key.verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| JwsError::BadSignature)
    }

    /// Checks `typ`, requires `kid`, verifies the signature with `key`, and
    /// only then reads the claims.
    pub fn verify<T: DeserializeOwned>(
        &self,
        expected_typ: &'static str,
        key: &PublicKey,
    ) -> Result<Verified<T>, JwsError> {
        self.check_typ(expected_typ)?;
        if self.header.kid.is_none() {
            return Err(JwsError::MissingKid);
        }
        self.verify_signature(key)?;
        let claims = json_object(&self.payload).map_err(JwsError::Claims)?;
        Ok(Verified {
            header: self.header.clone(),
            claims,
        })
    }
}

/// Claims whose JWS signature, `typ` and `kid` have been checked. Only
/// [`UnverifiedJws::verify`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T> {
    header: JoseHeader,
    claims: T,
}

impl<T> Verified<T> {
    /// The verified header.
    pub fn header(&self) -> &JoseHeader {
        &self.header
    }

    /// The verified claims.
    pub fn claims(&self) -> &T {
        &self.claims
    }

    /// The verified claims, by value.
    pub fn into_claims(self) -> T {
        self.claims
    }
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    typ: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

fn sign_parts(
    key: &SigningKey,
    header: &HeaderOut<'_>,
    payload: &[u8],
) -> Result<String, SignError> {
    let header = serde_json::to_vec(header).map_err(|e| SignError::Json(e.to_string()))?;
    let mut compact = b64::url_encode(header);
    compact.push('.');
    compact.push_str(&b64::url_encode(payload));
    let signature = key.sign(compact.as_bytes())?;
    compact.push('.');
    compact.push_str(&b64::url_encode(signature));
    Ok(compact)
}

/// Signs `claims` as a compact JWS with the protected header
/// `{"alg","typ","kid"}`; `alg` follows the key (profile: P-TOK-1).
pub fn sign<T: Serialize + ?Sized>(
    key: &SigningKey,
    typ: &str,
    kid: &Kid,
    claims: &T,
) -> Result<String, SignError> {
    let payload = serde_json::to_vec(claims).map_err(|e| SignError::Json(e.to_string()))?;
    let header = HeaderOut {
        alg: key.algorithm().jws_alg().as_str(),
        typ: Some(typ),
        kid: Some(kid.as_str()),
    };
    sign_parts(key, &header, &payload)
}

/// Signs a key proof (profile: P-DEL-2): a compact JWS whose protected
/// header is only `{"alg":"EdDSA"}` (`ES256` for P-256) over `payload`.
pub fn sign_key_proof(key: &SigningKey, payload: &[u8]) -> Result<String, SignError> {
    let header = HeaderOut {
        alg: key.algorithm().jws_alg().as_str(),
        typ: None,
        kid: None,
    };
    sign_parts(key, &header, payload)
}

/// Verifies a key proof (profile: P-DEL-2): signed by `key`, with the
/// payload exactly `expected_payload` (the request's `Nonce` value).
pub fn verify_key_proof(
    compact: &str,
    key: &PublicKey,
    expected_payload: &[u8],
) -> Result<(), JwsError> {
    let jws = UnverifiedJws::parse(compact)?;
    jws.verify_signature(key)?;
    if jws.payload != expected_payload {
        return Err(JwsError::PayloadMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Algorithm;
    use proptest::prelude::*;
    use serde_json::json;

    fn kid() -> Kid {
        Kid::new("k1".into()).unwrap()
    }

    fn compact(header: &serde_json::Value, payload: &serde_json::Value, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64::url_encode(header.to_string()),
            b64::url_encode(payload.to_string()),
            b64::url_encode(sig)
        )
    }

    /// A token signed by `key` over an arbitrary header.
    fn signed_with_header(key: &SigningKey, header: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            b64::url_encode(header.to_string()),
            b64::url_encode(json!({"iss": "https://a.example"}).to_string())
        );
        let sig = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64::url_encode(sig))
    }

    #[test]
    fn round_trips_for_both_algorithms() {
        // profile: P-TOK-1
        for (alg, name) in [
            (Algorithm::Ed25519, "EdDSA"),
            (Algorithm::EcdsaP256Sha256, "ES256"),
        ] {
            let key = SigningKey::generate(alg).unwrap();
            let token = sign(&key, "agent+jwt", &kid(), &json!({"sub": "x"})).unwrap();
            let header: serde_json::Value =
                serde_json::from_slice(&b64::url_decode(token.split('.').next().unwrap()).unwrap())
                    .unwrap();
            assert_eq!(
                header.to_string(),
                format!(r#"{{"alg":"{name}","typ":"agent+jwt","kid":"k1"}}"#)
            );
            let jws = UnverifiedJws::parse(&token).unwrap();
            let verified: Verified<serde_json::Value> =
                jws.verify("agent+jwt", key.public_key()).unwrap();
            assert_eq!(verified.claims()["sub"], "x");
            assert_eq!(verified.header().kid(), Some(&kid()));
        }
    }

    #[test]
    fn rejects_alg_none_hmac_and_unknown() {
        // profile: P-TOK-1 — the JWS alg is a closed set.
        for alg in ["none", "HS256", "HS512", "RS256", "ES384", "eddsa", ""] {
            let token = compact(
                &json!({"alg": alg, "typ": "agent+jwt", "kid": "k"}),
                &json!({}),
                b"",
            );
            assert_eq!(
                UnverifiedJws::parse(&token).unwrap_err(),
                JwsError::UnsupportedAlg(alg.to_owned()),
                "{alg}"
            );
        }
        let token = compact(&json!({"typ": "agent+jwt", "kid": "k"}), &json!({}), b"");
        assert_eq!(
            UnverifiedJws::parse(&token).unwrap_err(),
            JwsError::MissingAlg
        );
    }

    #[test]
    fn reads_ed25519_alg_as_eddsa() {
        // profile: P-TOK-1 (RFC 9864)
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let token = signed_with_header(
            &key,
            &json!({"alg": "Ed25519", "typ": "agent+jwt", "kid": "k1"}),
        );
        let jws = UnverifiedJws::parse(&token).unwrap();
        assert_eq!(jws.unverified_header().alg(), JwsAlg::EdDsa);
        jws.verify::<serde_json::Value>("agent+jwt", key.public_key())
            .unwrap();
    }

    #[test]
    fn rejects_crit_even_when_null() {
        for crit in [json!(["exp"]), json!(null)] {
            let token = compact(
                &json!({"alg": "EdDSA", "typ": "agent+jwt", "kid": "k", "crit": crit}),
                &json!({}),
                b"",
            );
            assert_eq!(UnverifiedJws::parse(&token).unwrap_err(), JwsError::Crit);
        }
    }

    #[test]
    fn rejects_jwe_with_a_distinct_error() {
        // profile: P-TOK-4
        assert_eq!(
            UnverifiedJws::parse("a.b.c.d.e").unwrap_err(),
            JwsError::Encrypted
        );
        for bad in ["", "a", "a.b", "a.b.c.d", "a.b.c.d.e.f"] {
            assert_eq!(
                UnverifiedJws::parse(bad).unwrap_err(),
                JwsError::NotThreeParts,
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_oversized_input_before_decoding() {
        let long = "a".repeat(MAX_COMPACT_LEN + 1);
        assert_eq!(UnverifiedJws::parse(&long).unwrap_err(), JwsError::TooLong);
    }

    #[test]
    fn rejects_padded_or_standard_base64() {
        let good = compact(
            &json!({"alg": "EdDSA", "kid": "k"}),
            &json!({}),
            &[0xfb; 64],
        );
        let (h, rest) = good.split_once('.').unwrap();
        assert_eq!(
            UnverifiedJws::parse(&format!("{h}=.{rest}")).unwrap_err(),
            JwsError::Base64("header")
        );
        let std_sig = good.replace('-', "+").replace('_', "/");
        assert!(matches!(
            UnverifiedJws::parse(&std_sig).unwrap_err(),
            JwsError::Base64(_)
        ));
    }

    #[test]
    fn header_must_be_a_json_object() {
        let token = format!(
            "{}.{}.",
            b64::url_encode(r#"["EdDSA","agent+jwt","k"]"#),
            b64::url_encode("{}")
        );
        assert!(matches!(
            UnverifiedJws::parse(&token).unwrap_err(),
            JwsError::Header(_)
        ));
        let dup = format!(
            "{}.{}.",
            b64::url_encode(r#"{"alg":"EdDSA","alg":"none"}"#),
            b64::url_encode("{}")
        );
        assert!(matches!(
            UnverifiedJws::parse(&dup).unwrap_err(),
            JwsError::Header(_)
        ));
    }

    #[test]
    fn typ_is_case_insensitive_with_optional_application_prefix() {
        // profile: P-TOK-1
        for typ in [
            "agent+jwt",
            "AGENT+JWT",
            "application/agent+jwt",
            "Application/Agent+JWT",
        ] {
            assert!(typ_matches(typ, "agent+jwt"), "{typ}");
        }
        for typ in [
            "auth+jwt",
            "JWT",
            "application/",
            "app/agent+jwt",
            "application/application/agent+jwt",
            "agent+jwt ",
        ] {
            assert!(!typ_matches(typ, "agent+jwt"), "{typ}");
        }
    }

    #[test]
    fn claims_are_not_read_before_typ_is_checked() {
        // style §11
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let token = sign(&key, "resource+jwt", &kid(), &json!({"iss": "x"})).unwrap();
        let jws = UnverifiedJws::parse(&token).unwrap();
        assert!(matches!(
            jws.unverified_claims_for_routing::<serde_json::Value>("auth+jwt"),
            Err(JwsError::WrongTyp {
                expected: "auth+jwt",
                ..
            })
        ));
        assert!(matches!(
            jws.verify::<serde_json::Value>("auth+jwt", key.public_key()),
            Err(JwsError::WrongTyp { .. })
        ));
    }

    #[test]
    fn verify_requires_kid() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let token = signed_with_header(&key, &json!({"alg": "EdDSA", "typ": "agent+jwt"}));
        let jws = UnverifiedJws::parse(&token).unwrap();
        assert_eq!(
            jws.verify::<serde_json::Value>("agent+jwt", key.public_key())
                .unwrap_err(),
            JwsError::MissingKid
        );
    }

    #[test]
    fn key_type_must_match_alg() {
        let ed = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let p256 = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let token = sign(&ed, "agent+jwt", &kid(), &json!({})).unwrap();
        let jws = UnverifiedJws::parse(&token).unwrap();
        assert!(matches!(
            jws.verify::<serde_json::Value>("agent+jwt", p256.public_key()),
            Err(JwsError::KeyAlgMismatch {
                alg: JwsAlg::EdDsa,
                ..
            })
        ));
        // An ES256 header over an Ed25519 signature is refused on the key type too.
        let forged = signed_with_header(
            &ed,
            &json!({"alg": "ES256", "typ": "agent+jwt", "kid": "k1"}),
        );
        let jws = UnverifiedJws::parse(&forged).unwrap();
        assert!(matches!(
            jws.verify::<serde_json::Value>("agent+jwt", ed.public_key()),
            Err(JwsError::KeyAlgMismatch {
                alg: JwsAlg::Es256,
                ..
            })
        ));
    }

    #[test]
    fn tampered_payload_fails_the_signature() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let token = sign(&key, "agent+jwt", &kid(), &json!({"sub": "a"})).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64::url_encode(json!({"sub": "b"}).to_string()),
            parts[2]
        );
        let jws = UnverifiedJws::parse(&tampered).unwrap();
        assert_eq!(
            jws.verify::<serde_json::Value>("agent+jwt", key.public_key())
                .unwrap_err(),
            JwsError::BadSignature
        );
    }

    #[test]
    fn key_proof_has_alg_only_header_and_checks_payload() {
        // profile: P-DEL-2
        for (alg, header) in [
            (Algorithm::Ed25519, r#"{"alg":"EdDSA"}"#),
            (Algorithm::EcdsaP256Sha256, r#"{"alg":"ES256"}"#),
        ] {
            let key = SigningKey::generate(alg).unwrap();
            let proof = sign_key_proof(&key, b"nonce-value").unwrap();
            let first = proof.split('.').next().unwrap();
            assert_eq!(b64::url_decode(first).unwrap(), header.as_bytes());
            verify_key_proof(&proof, key.public_key(), b"nonce-value").unwrap();
            assert_eq!(
                verify_key_proof(&proof, key.public_key(), b"other"),
                Err(JwsError::PayloadMismatch)
            );
            let other = SigningKey::generate(alg).unwrap();
            assert_eq!(
                verify_key_proof(&proof, other.public_key(), b"nonce-value"),
                Err(JwsError::BadSignature)
            );
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,600}") {
            let _ = UnverifiedJws::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_three_base64_parts(
            h in proptest::collection::vec(any::<u8>(), 0..200),
            p in proptest::collection::vec(any::<u8>(), 0..200),
            s in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let token = format!("{}.{}.{}", b64::url_encode(&h), b64::url_encode(&p), b64::url_encode(&s));
            if let Ok(jws) = UnverifiedJws::parse(&token) {
                let _ = jws.unverified_claims_for_routing::<serde_json::Value>("agent+jwt");
            }
        }

        #[test]
        fn sign_then_verify_round_trips(sub in "[ -~]{0,64}") {
            let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
            let token = sign(&key, "auth+jwt", &kid(), &json!({"sub": sub})).unwrap();
            let verified: Verified<serde_json::Value> =
                UnverifiedJws::parse(&token).unwrap().verify("auth+jwt", key.public_key()).unwrap();
            prop_assert_eq!(verified.claims()["sub"].as_str(), Some(sub.as_str()));
        }
    }
}
