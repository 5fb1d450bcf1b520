//! The three AAuth tokens: agent tokens (E§5, D§6, profile: P-TOK-2),
//! resource tokens (E§6, D§7, P-TOK-3) and auth tokens (E§7, D§8, P-TOK-4),
//! all compact JWS (P-TOK-1).
//!
//! Each token module has the claims as they appear on the wire, a builder
//! for the issuer, one `validate` function that walks the spec's numbered
//! steps in order, and a verified type that only `validate` makes.
//!
//! Keys come in through [`IssuerKeys`], so no I/O happens here. The HTTP
//! layer calls [`peek`] (unverified, bounded: steps 1–4) to learn which
//! issuer's metadata and JWKS to fetch, fetches them with the P-MD-3 guards,
//! and then calls `validate` with a lookup over what it fetched.

pub mod agent_token;
pub mod auth_token;
pub mod resource_token;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::b64;
use crate::error::{Condition, echo};
use crate::ids::{Kid, Origin, OriginError, OriginMode};
use crate::jose::{self, JwsError, UnverifiedJws};
use crate::jwk::PublicKey;
use crate::keys::CryptoError;

/// How far in the future `iat` and `nbf` may be (profile: P-TOK-5).
pub const MAX_FUTURE_SKEW: i64 = 60;

/// Which of the three tokens a JWT is, from its `typ` (E§14.4). A
/// registry of media types that may grow: code outside this crate must
/// expect token types it does not know yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenType {
    /// `agent+jwt` (E§5.2).
    Agent,
    /// `resource+jwt` (E§6.2).
    Resource,
    /// `auth+jwt` (E§7.2).
    Auth,
}

impl TokenType {
    /// The `typ` we emit (without the `application/` prefix).
    pub fn typ(self) -> &'static str {
        match self {
            Self::Agent => "agent+jwt",
            Self::Resource => "resource+jwt",
            Self::Auth => "auth+jwt",
        }
    }

    /// The kind a received `typ` names, compared as in [`jose::typ_matches`].
    pub fn from_typ(typ: &str) -> Option<Self> {
        [Self::Agent, Self::Resource, Self::Auth]
            .into_iter()
            .find(|kind| jose::typ_matches(typ, kind.typ()))
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Agent => "an agent token",
            Self::Resource => "a resource token",
            Self::Auth => "an auth token",
        }
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.typ())
    }
}

/// A `typ` that is not the one a validation needs, described so that a
/// token of another kind is named as such (e.g. a resource token presented
/// as an auth token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypMismatch {
    /// The kind the validation needs.
    pub expected: TokenType,
    /// The received `typ`, shortened; `None` when absent.
    pub got: Option<String>,
}

impl TypMismatch {
    fn new(expected: TokenType, got: Option<&str>) -> Self {
        Self {
            expected,
            got: got.map(echo),
        }
    }
}

impl fmt::Display for TypMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expected = self.expected;
        match self.got.as_deref() {
            None => write!(f, "token header has no \"typ\"; expected \"{expected}\""),
            Some(got) => match TokenType::from_typ(got) {
                Some(other) => write!(
                    f,
                    "{} (typ \"{got}\") was presented where {} (typ \"{expected}\") is required",
                    other.noun(),
                    expected.noun()
                ),
                None => write!(f, "token \"typ\" is \"{got}\", expected \"{expected}\""),
            },
        }
    }
}

/// An `aud` claim: one identifier or several (RFC 7519 §4.1.3). We emit a
/// string; an array containing the expected identifier is accepted
/// (profile: P-TOK-2, P-TOK-4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `identifier` is (one of) the audience(s), compared exactly.
    pub fn contains(&self, identifier: &str) -> bool {
        match self {
            Self::One(aud) => aud == identifier,
            Self::Many(auds) => auds.iter().any(|aud| aud == identifier),
        }
    }
}

impl From<&Origin> for Audience {
    fn from(origin: &Origin) -> Self {
        Self::One(origin.as_str().to_owned())
    }
}

/// The `cnf` claim (RFC 7800 §3.2): the key the presenter must sign with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confirmation {
    /// The public key (`cnf.jwk`).
    pub jwk: PublicKey,
}

/// `cnf` as received: parsed into a key in the validation step that needs it.
#[derive(Debug, Deserialize)]
pub(crate) struct ConfirmationReceived {
    pub(crate) jwk: Option<serde_json::Value>,
}

/// Why a key lookup failed. Any failure is the token's failure
/// (P-ERR-1: "incl. key fetch failure").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyLookupError {
    /// The issuer's JWKS has no usable key with this `kid`.
    #[error("the issuer's JWKS has no usable key with kid \"{0}\"")]
    UnknownKid(Kid),
    /// The issuer's metadata or JWKS could not be obtained or was invalid.
    #[error("the issuer's keys could not be obtained: {0}")]
    Unavailable(String),
}

/// Finds an issuer's public key by (`iss`, `kid`) (E§5.7 steps 5–6, E§6.5
/// steps 5–8, E§7.7 steps 5–6). Implementations answer from keys already
/// fetched; the protocol crate does no I/O.
pub trait IssuerKeys {
    /// The key `kid` of `issuer`.
    fn key(&self, issuer: &Origin, kid: &Kid) -> Result<PublicKey, KeyLookupError>;
}

impl<F> IssuerKeys for F
where
    F: Fn(&Origin, &Kid) -> Result<PublicKey, KeyLookupError>,
{
    fn key(&self, issuer: &Origin, kid: &Kid) -> Result<PublicKey, KeyLookupError> {
        self(issuer, kid)
    }
}

/// What a token says about itself before verification (E§5.7, E§6.5,
/// E§7.7 steps 1–4): enough to fetch the issuer's keys, nothing to decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peek {
    /// The token kind, from `typ`.
    pub typ: TokenType,
    /// The signing key's identifier.
    pub kid: Kid,
    /// The issuer, already checked to be an acceptable origin, so the
    /// caller never fetches from an arbitrary URL (profile: P-MD-1, P-MD-3).
    pub iss: Origin,
}

/// Why [`peek`] refused a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeekError {
    /// Step 1: not a structurally valid compact JWS.
    #[error("token is malformed: {0}")]
    Malformed(JwsError),
    /// Step 2: `typ` absent or not one of the three token types.
    #[error("{}", unknown_typ(.0.as_deref()))]
    UnknownTyp(Option<String>),
    /// Step 3: no `kid`.
    #[error("{0} has no \"kid\" in its header")]
    MissingKid(TokenType),
    /// Step 4: the payload is not a claims object with a string `iss`.
    #[error("{typ} claims are malformed: {reason}")]
    Claims {
        /// The token kind.
        typ: TokenType,
        /// What is wrong.
        reason: String,
    },
    /// Step 4: `iss` is missing.
    #[error("{0} has no \"iss\" claim")]
    MissingIss(TokenType),
    /// Step 4: `iss` is not an acceptable origin.
    #[error("{typ} \"iss\" is not an acceptable identifier: {error}")]
    Issuer {
        /// The token kind.
        typ: TokenType,
        /// Why the identifier was refused.
        error: OriginError,
    },
}

impl PeekError {
    /// The P-ERR-1 row, given the kind the caller was expecting there (a
    /// `resource_token` form parameter, or the agent or auth token of a
    /// `Signature-Key` `jwt`). Once `typ` is known, the token's own kind decides.
    pub fn condition(&self, expected: TokenType) -> Condition {
        let kind = match self {
            Self::Malformed(_) | Self::UnknownTyp(_) => expected,
            Self::MissingKid(typ)
            | Self::Claims { typ, .. }
            | Self::MissingIss(typ)
            | Self::Issuer { typ, .. } => *typ,
        };
        match kind {
            TokenType::Agent => Condition::AgentTokenInvalid,
            TokenType::Resource => Condition::ResourceTokenInvalid,
            TokenType::Auth => Condition::AuthTokenInvalid,
        }
    }
}

fn unknown_typ(typ: Option<&str>) -> String {
    match typ {
        None => "token has no \"typ\"; expected agent+jwt, resource+jwt or auth+jwt".to_owned(),
        Some(typ) => format!("token \"typ\" {typ:?} is not agent+jwt, resource+jwt or auth+jwt"),
    }
}

#[derive(Deserialize)]
struct TypOnly {
    typ: Option<String>,
}

/// The token kind a JOSE header declares, read without any other check. It
/// decides nothing but which error code a token that fails to parse gets
/// (P-ERR-1: an auth token failing any E§7.7 step is `invalid_auth_token`,
/// even one that is encrypted or uses `alg: none`).
pub fn declared_type(jwt: &str) -> Option<TokenType> {
    if jwt.len() > jose::MAX_COMPACT_LEN {
        return None;
    }
    let header = jwt.split('.').next()?;
    let bytes = b64::url_decode(header).ok()?;
    let typ = serde_json::from_slice::<TypOnly>(&bytes).ok()?.typ?;
    TokenType::from_typ(&typ)
}

#[derive(Deserialize)]
struct IssOnly {
    iss: Option<String>,
}

/// Reads `typ`, `kid` and `iss` without verifying anything (steps 1–4 of
/// E§5.7 / E§6.5 / E§7.7), bounded by [`jose::MAX_COMPACT_LEN`].
pub fn peek(jwt: &str, mode: OriginMode) -> Result<Peek, PeekError> {
    let jws = UnverifiedJws::parse(jwt).map_err(PeekError::Malformed)?;
    let header = jws.unverified_header();
    let typ = header
        .typ()
        .and_then(TokenType::from_typ)
        .ok_or_else(|| PeekError::UnknownTyp(header.typ().map(echo)))?;
    let kid = header.kid().cloned().ok_or(PeekError::MissingKid(typ))?;
    let claims: IssOnly =
        jws.unverified_claims_for_routing(typ.typ())
            .map_err(|e| PeekError::Claims {
                typ,
                reason: e.to_string(),
            })?;
    let iss = claims.iss.ok_or(PeekError::MissingIss(typ))?;
    let iss = Origin::parse(&iss, mode).map_err(|error| PeekError::Issuer { typ, error })?;
    Ok(Peek { typ, kid, iss })
}

/// Why a builder could not produce claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The random source failed while drawing a `jti`.
    #[error(transparent)]
    Random(#[from] CryptoError),
    /// An extra claim would shadow a registered one.
    #[error("extra claim {0:?} collides with a claim the token defines")]
    ReservedClaim(String),
}

/// A fresh `jti`: 128 random bits, base64url (profile: P-TOK-1a).
pub(crate) fn new_jti() -> Result<String, CryptoError> {
    let mut bytes = [0u8; 16];
    crate::keys::random_bytes(&mut bytes)?;
    Ok(b64::url_encode(bytes))
}

/// `exp + lifetime` without overflow.
/// What the clock check of a token found wrong.
pub(crate) enum ClockFault {
    /// `now` is not before `exp` (+ leeway).
    Expired,
    /// `iat` is more than [`MAX_FUTURE_SKEW`] ahead.
    IssuedInFuture(i64),
    /// `nbf` is more than [`MAX_FUTURE_SKEW`] ahead.
    NotYetValid(i64),
}

/// The clock step of every token's validation (E§5.7 step 8, E§6.5
/// step 13, E§7.7 step 8: "current time MUST be less than expiration").
/// profile: P-TOK-5 — strict `now < exp` plus a configurable leeway (default
/// 0); `iat` and `nbf` may be at most 60 s in the future.
pub(crate) fn check_clock(
    exp: i64,
    iat: Option<i64>,
    nbf: Option<i64>,
    now: i64,
    leeway_secs: u32,
) -> Result<(), ClockFault> {
    if now >= exp.saturating_add(i64::from(leeway_secs)) {
        return Err(ClockFault::Expired);
    }
    let horizon = now.saturating_add(MAX_FUTURE_SKEW);
    if let Some(iat) = iat.filter(|iat| *iat > horizon) {
        return Err(ClockFault::IssuedInFuture(iat));
    }
    if let Some(nbf) = nbf.filter(|nbf| *nbf > horizon) {
        return Err(ClockFault::NotYetValid(nbf));
    }
    Ok(())
}

pub(crate) fn expiry(now: i64, lifetime_secs: u32) -> i64 {
    now.saturating_add(i64::from(lifetime_secs))
}

/// Deserialises an optional NumericDate (RFC 7519 §2): a JSON number of
/// seconds, possibly non-integer, floored to whole seconds.
pub(crate) fn numeric_date<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Option::<serde_json::Number>::deserialize(deserializer)?;
    let Some(number) = value else {
        return Ok(None);
    };
    if let Some(n) = number.as_i64() {
        return Ok(Some(n));
    }
    match number.as_f64() {
        // Bounded to ±2^53 so the cast is exact; real dates are far smaller.
        Some(f) if f.is_finite() && f.abs() < 9_007_199_254_740_992.0 => {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "floored and bounded to ±2^53 just above"
            )]
            let seconds = f.floor() as i64;
            Ok(Some(seconds))
        }
        _ => Err(serde::de::Error::custom("NumericDate out of range")),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Keys, a lookup and a raw signer shared by the token tests.
    use super::*;
    use crate::keys::{Algorithm, SigningKey};

    pub const NOW: i64 = 1_730_217_600;

    pub fn origin(text: &str) -> Origin {
        Origin::parse(text, OriginMode::Production).unwrap()
    }

    pub fn kid(text: &str) -> Kid {
        Kid::new(text.into()).unwrap()
    }

    /// A lookup that knows exactly one (issuer, kid).
    pub fn one_key(
        issuer: Origin,
        id: Kid,
        key: PublicKey,
    ) -> impl Fn(&Origin, &Kid) -> Result<PublicKey, KeyLookupError> {
        move |iss: &Origin, k: &Kid| {
            if iss != &issuer {
                return Err(KeyLookupError::Unavailable(format!(
                    "no metadata for {iss}"
                )));
            }
            if k != &id {
                return Err(KeyLookupError::UnknownKid(k.clone()));
            }
            Ok(key.clone())
        }
    }

    /// Signs arbitrary header and payload JSON (for malformed-claims tests).
    pub fn sign_raw(
        key: &SigningKey,
        header: &serde_json::Value,
        payload: &serde_json::Value,
    ) -> String {
        let input = format!(
            "{}.{}",
            b64::url_encode(header.to_string()),
            b64::url_encode(payload.to_string())
        );
        let sig = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64::url_encode(sig))
    }

    pub fn ed25519() -> SigningKey {
        SigningKey::generate(Algorithm::Ed25519).unwrap()
    }

    pub fn p256() -> SigningKey {
        SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap()
    }

    /// The RFC 8037 A.1 public key the explainer's examples bind in `cnf`.
    pub fn rfc8037_public() -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn token_type_from_typ() {
        assert_eq!(TokenType::from_typ("agent+jwt"), Some(TokenType::Agent));
        assert_eq!(
            TokenType::from_typ("application/RESOURCE+JWT"),
            Some(TokenType::Resource)
        );
        assert_eq!(TokenType::from_typ("Auth+JWT"), Some(TokenType::Auth));
        assert_eq!(TokenType::from_typ("JWT"), None);
    }

    #[test]
    fn peek_reads_typ_kid_and_iss_without_a_key() {
        let key = ed25519();
        let token = sign_raw(
            &key,
            &json!({"alg": "EdDSA", "typ": "application/auth+jwt", "kid": "as-1"}),
            &json!({"iss": "https://auth.example", "aud": "https://resource.example"}),
        );
        assert_eq!(
            peek(&token, OriginMode::Production).unwrap(),
            Peek {
                typ: TokenType::Auth,
                kid: kid("as-1"),
                iss: origin("https://auth.example")
            }
        );
    }

    #[test]
    fn peek_fails_each_step() {
        let key = ed25519();
        let header = json!({"alg": "EdDSA", "typ": "agent+jwt", "kid": "k"});
        type Check = fn(&PeekError) -> bool;
        let cases: [(String, Check); 6] = [
            ("x.y".into(), |e| matches!(e, PeekError::Malformed(_))),
            (
                sign_raw(
                    &key,
                    &json!({"alg": "EdDSA", "typ": "JWT", "kid": "k"}),
                    &json!({}),
                ),
                |e| matches!(e, PeekError::UnknownTyp(Some(_))),
            ),
            (
                sign_raw(
                    &key,
                    &json!({"alg": "EdDSA", "typ": "agent+jwt"}),
                    &json!({}),
                ),
                |e| matches!(e, PeekError::MissingKid(TokenType::Agent)),
            ),
            (
                sign_raw(&key, &header, &json!(["not", "an", "object"])),
                |e| matches!(e, PeekError::Claims { .. }),
            ),
            (sign_raw(&key, &header, &json!({"sub": "x"})), |e| {
                matches!(e, PeekError::MissingIss(TokenType::Agent))
            }),
            (
                sign_raw(&key, &header, &json!({"iss": "https://agent.example/"})),
                |e| matches!(e, PeekError::Issuer { .. }),
            ),
        ];
        for (token, check) in cases {
            let err = peek(&token, OriginMode::Production).unwrap_err();
            assert!(check(&err), "{err:?}");
        }
    }

    #[test]
    fn peek_error_condition_follows_the_known_kind() {
        assert_eq!(
            PeekError::UnknownTyp(None).condition(TokenType::Resource),
            Condition::ResourceTokenInvalid
        );
        assert_eq!(
            PeekError::MissingKid(TokenType::Agent).condition(TokenType::Auth),
            Condition::AgentTokenInvalid
        );
    }

    #[test]
    fn peek_refuses_plain_http_issuer_outside_dev_mode() {
        // profile: P-MD-1 — the caller must never fetch from an unchecked issuer.
        let token = sign_raw(
            &ed25519(),
            &json!({"alg": "EdDSA", "typ": "agent+jwt", "kid": "k"}),
            &json!({"iss": "http://127.0.0.1:4000"}),
        );
        assert!(matches!(
            peek(&token, OriginMode::Production),
            Err(PeekError::Issuer { .. })
        ));
        assert!(peek(&token, OriginMode::Dev).is_ok());
    }

    #[test]
    fn typ_mismatch_names_the_other_token_kind() {
        let text = TypMismatch::new(TokenType::Auth, Some("resource+jwt")).to_string();
        assert_eq!(
            text,
            "a resource token (typ \"resource+jwt\") was presented where an auth token (typ \"auth+jwt\") is required"
        );
    }

    #[test]
    fn numeric_dates_accept_fractions() {
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "numeric_date")]
            exp: Option<i64>,
        }
        let parse = |text: &str| serde_json::from_str::<T>(text).map(|t| t.exp);
        assert_eq!(
            parse(r#"{"exp": 1730218200}"#).unwrap(),
            Some(1_730_218_200)
        );
        assert_eq!(
            parse(r#"{"exp": 1730218200.9}"#).unwrap(),
            Some(1_730_218_200)
        );
        assert_eq!(parse(r#"{"exp": null}"#).unwrap(), None);
        assert_eq!(parse("{}").unwrap(), None);
        assert!(parse(r#"{"exp": 1e300}"#).is_err());
        assert!(parse(r#"{"exp": "1730218200"}"#).is_err());
    }

    #[test]
    fn jti_has_128_bits() {
        // profile: P-TOK-1a
        let jti = new_jti().unwrap();
        assert_eq!(b64::url_decode(&jti).unwrap().len(), 16);
        assert_ne!(jti, new_jti().unwrap());
    }

    proptest! {
        #[test]
        fn peek_never_panics(text in ".{0,400}") {
            let _ = peek(&text, OriginMode::Dev);
        }

        #[test]
        fn peek_never_panics_on_signed_json(payload in ".{0,200}") {
            let token = format!(
                "{}.{}.AAAA",
                b64::url_encode(r#"{"alg":"EdDSA","typ":"auth+jwt","kid":"k"}"#),
                b64::url_encode(payload)
            );
            let _ = peek(&token, OriginMode::Production);
        }
    }
}
