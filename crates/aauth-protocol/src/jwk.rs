//! JSON Web Keys (RFC 7517) for the two key types AAuth uses here, JWK Sets,
//! and RFC 7638 thumbprints.
//!
//! `PublicKey` is the parsed form of a public JWK: an Ed25519 key (RFC 8037,
//! `kty: "OKP"`) or a P-256 key (RFC 7518 §6.2, `kty: "EC"`). It is what
//! `cnf.jwk`, `hwk` and JWKS members become once parsed. Other key types are
//! a typed error where a key is required, and skipped inside a JWK Set
//! (profile: P-MD-2, "unknown algorithms in lists are skipped").

use std::fmt;

use crate::keys::sha256;
use serde::{Deserialize, Serialize};

use crate::b64;
use crate::ids::{Kid, Thumbprint};

/// Upper bound on members kept from one JWK Set; hostile documents cannot
/// make us hold more.
pub const MAX_JWKS_KEYS: usize = 64;

/// A parsed public key of a supported type.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// `kty: "OKP"`, `crv: "Ed25519"`: the 32-byte public key.
    Ed25519([u8; 32]),
    /// `kty: "EC"`, `crv: "P-256"`: affine coordinates, big-endian.
    P256 {
        /// x coordinate.
        x: [u8; 32],
        /// y coordinate.
        y: [u8; 32],
    },
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ed25519(x) => write!(f, "Ed25519({})", b64::url_encode(x)),
            Self::P256 { x, y } => {
                write!(f, "P256({}, {})", b64::url_encode(x), b64::url_encode(y))
            }
        }
    }
}

/// Why a JWK could not become a [`PublicKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    /// The JSON is not a JWK object.
    #[error("not a JWK object: {0}")]
    Json(String),
    /// `kty` is missing.
    #[error("JWK has no \"kty\"")]
    MissingKty,
    /// A key type or curve outside the profile (RSA, P-384, X25519, …).
    #[error("unsupported key type {kty:?} with curve {crv:?} (supported: OKP/Ed25519, EC/P-256)")]
    Unsupported {
        /// The `kty` member.
        kty: String,
        /// The `crv` member, if any.
        crv: Option<String>,
    },
    /// A required member is missing.
    #[error("JWK member \"{0}\" is missing")]
    MissingMember(&'static str),
    /// A member is not base64url or has the wrong length.
    #[error("JWK member \"{0}\" is not a base64url value of the right length")]
    BadMember(&'static str),
    /// The EC point is not on the curve.
    #[error("JWK EC point is not on the P-256 curve")]
    NotOnCurve,
    /// A private member (`d`) was present where only a public key may appear.
    #[error("JWK contains the private member \"d\" where only a public key is allowed")]
    PrivateMemberPresent,
}

/// The members of a JWK as they appear on the wire. Every member is optional
/// here so that parsing can report precisely which one is missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkMembers {
    /// Key type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kty: Option<String>,
    /// Curve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// Public key (OKP) or x coordinate (EC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// y coordinate (EC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Private key material; never accepted where a public key is expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
    /// Key identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Intended algorithm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Intended use.
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

fn fixed32(member: &'static str, value: Option<&str>) -> Result<[u8; 32], JwkError> {
    let text = value.ok_or(JwkError::MissingMember(member))?;
    // 32 bytes are 43 base64url characters; refuse anything longer before decoding.
    if text.len() != 43 {
        return Err(JwkError::BadMember(member));
    }
    let bytes = b64::url_decode(text).map_err(|_| JwkError::BadMember(member))?;
    bytes.try_into().map_err(|_| JwkError::BadMember(member))
}

impl PublicKey {
    /// Parses the public part of a JWK. A `d` member is refused: a private key
    /// must never travel where a public key is expected.
    pub fn from_members(members: &JwkMembers) -> Result<Self, JwkError> {
        if members.d.is_some() {
            return Err(JwkError::PrivateMemberPresent);
        }
        Self::from_members_ignoring_private(members)
    }

    pub(crate) fn from_members_ignoring_private(members: &JwkMembers) -> Result<Self, JwkError> {
        let kty = members.kty.as_deref().ok_or(JwkError::MissingKty)?;
        let crv = members.crv.as_deref();
        match (kty, crv) {
            ("OKP", Some("Ed25519")) => Ok(Self::Ed25519(fixed32("x", members.x.as_deref())?)),
            ("EC", Some("P-256")) => {
                let x = fixed32("x", members.x.as_deref())?;
                let y = fixed32("y", members.y.as_deref())?;
                let key = Self::P256 { x, y };
                // Reject points that are not on the curve now, not at first use.
                crate::keys::VerifyingKey::new(&key).map_err(|_| JwkError::NotOnCurve)?;
                Ok(key)
            }
            (kty, crv) => Err(JwkError::Unsupported {
                kty: kty.to_owned(),
                crv: crv.map(str::to_owned),
            }),
        }
    }

    /// Parses a public JWK from a JSON value (e.g. `cnf.jwk`).
    pub fn from_json_value(value: &serde_json::Value) -> Result<Self, JwkError> {
        let members = JwkMembers::deserialize(value).map_err(|e| JwkError::Json(e.to_string()))?;
        Self::from_members(&members)
    }

    /// The JWK members of this key (`kty`, `crv`, `x`, and `y` for EC).
    pub fn to_members(&self) -> JwkMembers {
        match self {
            Self::Ed25519(x) => JwkMembers {
                kty: Some("OKP".into()),
                crv: Some("Ed25519".into()),
                x: Some(b64::url_encode(x)),
                ..JwkMembers::default()
            },
            Self::P256 { x, y } => JwkMembers {
                kty: Some("EC".into()),
                crv: Some("P-256".into()),
                x: Some(b64::url_encode(x)),
                y: Some(b64::url_encode(y)),
                ..JwkMembers::default()
            },
        }
    }

    /// The key as a JSON object with its required members only.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self.to_members()).unwrap_or(serde_json::Value::Null)
    }

    /// The RFC 7638 canonical JSON: the required members, lexicographically
    /// ordered, no whitespace.
    pub fn thumbprint_input(&self) -> String {
        match self {
            Self::Ed25519(x) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                b64::url_encode(x)
            ),
            Self::P256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64::url_encode(x),
                b64::url_encode(y)
            ),
        }
    }

    /// RFC 7638 SHA-256 thumbprint, base64url (the `agent_jkt` of E§6.3).
    pub fn thumbprint(&self) -> Thumbprint {
        Thumbprint::from_digest(&sha256(self.thumbprint_input().as_bytes()))
    }

    /// The HTTP signature algorithm this key type implies (profile: P-SIG-2).
    pub fn http_sig_alg(&self) -> crate::keys::Algorithm {
        match self {
            Self::Ed25519(_) => crate::keys::Algorithm::Ed25519,
            Self::P256 { .. } => crate::keys::Algorithm::EcdsaP256Sha256,
        }
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_members().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let members = JwkMembers::deserialize(deserializer)?;
        Self::from_members(&members).map_err(serde::de::Error::custom)
    }
}

/// One usable member of a JWK Set: a supported key and its `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksKey {
    /// The key identifier; JWKS members without one cannot be selected and are skipped.
    pub kid: Kid,
    /// The public key.
    pub key: PublicKey,
}

/// A JWK Set (RFC 7517 §5), reduced to the members we can use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<JwksKey>,
}

/// Why a JWK Set document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not JSON, or no `keys` array.
    #[error("not a JWK Set: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct JwksWire {
    keys: Vec<serde_json::Value>,
}

impl Jwks {
    /// A set of the given keys.
    pub fn new(keys: Vec<JwksKey>) -> Self {
        Self { keys }
    }

    /// Parses a JWKS document. Members of unsupported types, without `kid`,
    /// with private parts or otherwise malformed are skipped (P-MD-2); at
    /// most [`MAX_JWKS_KEYS`] are kept.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwksError> {
        let wire: JwksWire =
            serde_json::from_slice(bytes).map_err(|e| JwksError::Malformed(e.to_string()))?;
        let keys = wire
            .keys
            .iter()
            .filter_map(|value| {
                let members = JwkMembers::deserialize(value).ok()?;
                let kid = Kid::new(members.kid.clone()?).ok()?;
                let key = PublicKey::from_members(&members).ok()?;
                Some(JwksKey { kid, key })
            })
            .take(MAX_JWKS_KEYS)
            .collect();
        Ok(Self { keys })
    }

    /// Selects the key with this `kid` (E§5.7 step 6).
    pub fn find(&self, kid: &Kid) -> Option<&PublicKey> {
        self.keys.iter().find(|k| &k.kid == kid).map(|k| &k.key)
    }

    /// The usable keys.
    pub fn keys(&self) -> &[JwksKey] {
        &self.keys
    }

    /// The JWKS document: `{"keys":[{kty,crv,x,(y),kid,alg,use}]}`.
    pub fn to_json_value(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|k| {
                let mut members = k.key.to_members();
                members.kid = Some(k.kid.as_str().to_owned());
                members.alg = Some(k.key.http_sig_alg().jws_alg().as_str().to_owned());
                members.use_ = Some("sig".to_owned());
                serde_json::to_value(members).unwrap_or(serde_json::Value::Null)
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn rfc8037_a3_thumbprint() {
        let key = PublicKey::from_json_value(&serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": RFC8037_X
        }))
        .unwrap();
        assert_eq!(
            key.thumbprint_input(),
            r#"{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#
        );
        assert_eq!(
            key.thumbprint().as_str(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn p256_thumbprint_orders_members() {
        let key = PublicKey::from_json_value(&serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": "qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA",
            "y": "Mc4nN9LTDOBhfoUeg8Ye9WedFRhnZXZJA12Qp0zZ6F0"
        }))
        .unwrap();
        assert!(
            key.thumbprint_input()
                .starts_with(r#"{"crv":"P-256","kty":"EC","x":"#)
        );
        assert_eq!(key.thumbprint().as_str().len(), 43);
    }

    #[test]
    fn rejects_private_member_in_public_position() {
        let err = PublicKey::from_json_value(&serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": RFC8037_X,
            "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
        }))
        .unwrap_err();
        assert_eq!(err, JwkError::PrivateMemberPresent);
    }

    #[test]
    fn rejects_unsupported_types_and_bad_members() {
        let rsa = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        assert!(matches!(
            PublicKey::from_json_value(&rsa),
            Err(JwkError::Unsupported { .. })
        ));
        let short = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"});
        assert_eq!(
            PublicKey::from_json_value(&short),
            Err(JwkError::BadMember("x"))
        );
        let missing = serde_json::json!({"kty": "EC", "crv": "P-256", "x": RFC8037_X});
        assert_eq!(
            PublicKey::from_json_value(&missing),
            Err(JwkError::MissingMember("y"))
        );
    }

    #[test]
    fn rejects_p256_point_off_curve() {
        let off = serde_json::json!({"kty": "EC", "crv": "P-256", "x": RFC8037_X, "y": RFC8037_X});
        assert_eq!(PublicKey::from_json_value(&off), Err(JwkError::NotOnCurve));
    }

    #[test]
    fn jwks_skips_unusable_members() {
        let doc = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X},
            {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "k1"}
        ]});
        let jwks = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
        assert_eq!(jwks.keys().len(), 1);
        assert!(jwks.find(&Kid::new("k1".into()).unwrap()).is_some());
        assert!(jwks.find(&Kid::new("r".into()).unwrap()).is_none());
    }

    #[test]
    fn jwks_without_keys_array_is_malformed() {
        assert!(Jwks::from_json(b"{}").is_err());
        assert!(Jwks::from_json(b"not json").is_err());
    }
}
