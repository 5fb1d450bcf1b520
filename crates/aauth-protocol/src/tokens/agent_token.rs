//! Agent tokens, `agent+jwt` (E§5, D§6, profile: P-TOK-2): an agent
//! server binds a delegate's key (`cnf.jwk`) to the agent's identity (`iss`)
//! and the delegate's stable identifier (`sub`). Validation walks E§5.7.

use serde::{Deserialize, Serialize};

use super::{
    Audience, BuildError, ClockFault, Confirmation, ConfirmationReceived, IssuerKeys,
    KeyLookupError, TokenType, TypMismatch, check_clock, expiry, numeric_date,
};
use crate::error::Condition;
use crate::ids::{Kid, Origin, OriginError, OriginMode};
use crate::jose::{self, JwsAlg, JwsError, SignError, UnverifiedJws};
use crate::jwk::{JwkError, PublicKey};
use crate::keys::SigningKey;

/// The claims of an agent token (E§5.3, E§5.4), as emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentTokenClaims {
    /// The agent server's identifier (the agent identifier).
    pub iss: Origin,
    /// The agent delegate identifier, stable across key rotations.
    pub sub: String,
    /// Expiration (NumericDate).
    pub exp: i64,
    /// Issued at; always emitted, optional on receipt (profile: P-TOK-1a).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The delegate's signing key.
    pub cnf: Confirmation,
    /// Recipients that may accept the token (E§5.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

impl AgentTokenClaims {
    /// Signs the claims as an `agent+jwt` with the agent server's key.
    pub fn sign(&self, key: &SigningKey, kid: &Kid) -> Result<String, SignError> {
        jose::sign(key, TokenType::Agent.typ(), kid, self)
    }
}

/// Builds agent token claims for an agent server (profile: P-TOK-2).
#[derive(Debug, Clone)]
pub struct AgentTokenBuilder {
    iss: Origin,
    sub: String,
    cnf: PublicKey,
    aud: Option<Audience>,
    lifetime_secs: u32,
}

impl AgentTokenBuilder {
    /// Default lifetime: one hour (profile: P-TOK-2).
    pub const DEFAULT_LIFETIME_SECS: u32 = 3600;

    /// An agent token from `iss` for delegate `sub`, binding `cnf`.
    pub fn new(iss: Origin, sub: impl Into<String>, cnf: PublicKey) -> Self {
        Self {
            iss,
            sub: sub.into(),
            cnf,
            aud: None,
            lifetime_secs: Self::DEFAULT_LIFETIME_SECS,
        }
    }

    /// Restricts the recipients (E§5.4).
    #[must_use]
    pub fn audience(mut self, aud: Audience) -> Self {
        self.aud = Some(aud);
        self
    }

    /// Sets the lifetime in seconds (profile: P-TOK-5: configurable).
    #[must_use]
    pub fn lifetime_secs(mut self, secs: u32) -> Self {
        self.lifetime_secs = secs;
        self
    }

    /// The claims issued at `now`.
    pub fn build(&self, now: i64) -> Result<AgentTokenClaims, BuildError> {
        Ok(AgentTokenClaims {
            iss: self.iss.clone(),
            sub: self.sub.clone(),
            exp: expiry(now, self.lifetime_secs),
            iat: Some(now),
            cnf: Confirmation {
                jwk: self.cnf.clone(),
            },
            aud: self.aud.clone(),
        })
    }
}

/// What the recipient knows when it validates an agent token.
#[derive(Debug, Clone)]
pub struct AgentTokenContext<'a> {
    /// Current time, Unix seconds.
    pub now: i64,
    /// The recipient's own identifier, for `aud` (step 10).
    pub recipient: &'a Origin,
    /// Which issuers are acceptable origins.
    pub origin_mode: OriginMode,
    /// Seconds of grace after `exp` (profile: P-TOK-5; default 0).
    pub leeway_secs: u32,
}

impl<'a> AgentTokenContext<'a> {
    /// A production-mode context without leeway.
    pub fn new(now: i64, recipient: &'a Origin) -> Self {
        Self {
            now,
            recipient,
            origin_mode: OriginMode::Production,
            leeway_secs: 0,
        }
    }
}

/// An agent token that passed E§5.7 steps 1–11. Only [`validate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAgentToken {
    claims: AgentTokenClaims,
    kid: Kid,
    alg: JwsAlg,
}

impl VerifiedAgentToken {
    /// The verified claims.
    pub fn claims(&self) -> &AgentTokenClaims {
        &self.claims
    }

    /// The agent identifier (`iss`).
    pub fn agent(&self) -> &Origin {
        &self.claims.iss
    }

    /// The agent delegate identifier (`sub`).
    pub fn delegate(&self) -> &str {
        &self.claims.sub
    }

    /// The key the HTTP request must be signed with (step 12 is the
    /// caller's: a mismatch is `key_binding_failed`).
    pub fn cnf_key(&self) -> &PublicKey {
        &self.claims.cnf.jwk
    }

    /// The agent server key that signed the token.
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The JWS algorithm used.
    pub fn alg(&self) -> JwsAlg {
        self.alg
    }
}

/// Why an agent token failed, one variant per E§5.7 step (error code
/// `invalid_agent_token`, D§11.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentTokenError {
    /// Step 1: not a valid compact JWS.
    #[error("agent token is malformed: {0}")]
    Malformed(JwsError),
    /// Step 2: `typ` is not `agent+jwt`.
    #[error("{0}")]
    WrongTyp(TypMismatch),
    /// Step 3: no `kid`.
    #[error("agent token has no \"kid\" in its header")]
    MissingKid,
    /// Step 4: the payload is not a claims object of the right shape.
    #[error("agent token claims are malformed: {0}")]
    Claims(JwsError),
    /// A claim the step needs is absent.
    #[error("agent token has no \"{0}\" claim")]
    MissingClaim(&'static str),
    /// Step 4: `iss` is not an acceptable agent identifier.
    #[error("agent token \"iss\" is not an acceptable agent identifier: {0}")]
    Issuer(OriginError),
    /// Steps 5–6: the agent server's key could not be found.
    #[error("agent token signing key: {0}")]
    KeyLookup(KeyLookupError),
    /// Step 7: the signature does not verify with the agent server's key.
    #[error("agent token signature: {0}")]
    Signature(JwsError),
    /// Step 8: `now` is not before `exp` (+ leeway).
    #[error("agent token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// Step 8 (profile: P-TOK-5): `iat` more than 60 s in the future.
    #[error("agent token \"iat\" {iat} is in the future (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// Step 8 (profile: P-TOK-5): `nbf` more than 60 s in the future.
    #[error("agent token is not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// Step 10: `aud` is present and does not include the recipient.
    #[error("agent token \"aud\" does not include {0}")]
    Audience(Origin),
    /// Step 11: `cnf.jwk` is not a supported public key.
    #[error("agent token \"cnf.jwk\": {0}")]
    Cnf(JwkError),
}

impl AgentTokenError {
    /// The P-ERR-1 row: every E§5.7 failure, key fetch included, is
    /// `invalid_agent_token`.
    pub fn condition(&self) -> Condition {
        match self {
            Self::Malformed(_)
            | Self::WrongTyp(_)
            | Self::MissingKid
            | Self::Claims(_)
            | Self::MissingClaim(_)
            | Self::Issuer(_)
            | Self::KeyLookup(_)
            | Self::Signature(_)
            | Self::Expired { .. }
            | Self::IssuedInFuture { .. }
            | Self::NotYetValid { .. }
            | Self::Audience(_)
            | Self::Cnf(_) => Condition::AgentTokenInvalid,
        }
    }
}

/// The claims as received: everything optional, so each step can report
/// exactly what is missing. Unknown members are ignored.
#[derive(Deserialize)]
struct Received {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    aud: Option<Audience>,
    cnf: Option<ConfirmationReceived>,
}

/// Validates an agent token presented in `Signature-Key` (E§5.7 steps
/// 1–11). Step 12 — the HTTP signature was made with `cnf.jwk` — is the
/// caller's, with [`VerifiedAgentToken::cnf_key`].
pub fn validate<K: IssuerKeys + ?Sized>(
    token: &str,
    ctx: &AgentTokenContext<'_>,
    keys: &K,
) -> Result<VerifiedAgentToken, AgentTokenError> {
    use AgentTokenError as E;

    // 1. "Parse the JWT and extract the JOSE header"
    let jws = UnverifiedJws::parse(token).map_err(E::Malformed)?;
    let header = jws.unverified_header();

    // 2. "Verify `typ` is "agent+jwt""
    if !header.typ_is(TokenType::Agent.typ()) {
        return Err(E::WrongTyp(TypMismatch::new(
            TokenType::Agent,
            header.typ(),
        )));
    }

    // 3. "Extract `kid` from the JOSE header"
    let kid = header.kid().cloned().ok_or(E::MissingKid)?;

    // 4. "Extract `iss` (agent) from the payload"
    let claims: Received = jws
        .unverified_claims_for_routing(TokenType::Agent.typ())
        .map_err(E::Claims)?;
    let iss = claims.iss.as_deref().ok_or(E::MissingClaim("iss"))?;
    // E§5.3: "iss (REQUIRED): The agent server's HTTPS URL" (profile: P-MD-1).
    let iss = Origin::parse(iss, ctx.origin_mode).map_err(E::Issuer)?;

    // 5. "Fetch the agent server's JWKS (from metadata at `iss`)"
    // 6. "Match the signing key by `kid`"
    let key = keys.key(&iss, &kid).map_err(E::KeyLookup)?;

    // 7. "Verify the JWT signature using the matched public key"
    jws.verify_signature(&key).map_err(E::Signature)?;

    // 8. "Verify the `exp` claim (current time MUST be less than expiration)"
    let exp = claims.exp.ok_or(E::MissingClaim("exp"))?;
    let now = ctx.now;
    check_clock(exp, claims.iat, claims.nbf, now, ctx.leeway_secs).map_err(
        |fault| match fault {
            ClockFault::Expired => E::Expired { exp, now },
            ClockFault::IssuedInFuture(iat) => E::IssuedInFuture { iat, now },
            ClockFault::NotYetValid(nbf) => E::NotYetValid { nbf, now },
        },
    )?;

    // 9. "Verify the `sub` claim is present (agent delegate identifier)"
    let sub = claims
        .sub
        .filter(|sub| !sub.is_empty())
        .ok_or(E::MissingClaim("sub"))?;

    // 10. "If `aud` claim is present, verify the recipient's identifier is
    //     included in the audience"
    if let Some(aud) = &claims.aud
        && !aud.contains(ctx.recipient.as_str())
    {
        return Err(E::Audience(ctx.recipient.clone()));
    }

    // 11. "Extract the public key from `cnf.jwk`"
    let jwk = claims
        .cnf
        .and_then(|cnf| cnf.jwk)
        .ok_or(E::MissingClaim("cnf.jwk"))?;
    let cnf = PublicKey::from_json_value(&jwk).map_err(E::Cnf)?;

    // 12. "Verify that the HTTPSig request signature was created with the key
    //     from `cnf.jwk`" — the caller's step, with `cnf_key()`.
    Ok(VerifiedAgentToken {
        claims: AgentTokenClaims {
            iss,
            sub,
            exp,
            iat: claims.iat,
            cnf: Confirmation { jwk: cnf },
            aud: claims.aud,
        },
        kid,
        alg: header.alg(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::{Value, json};

    const AGENT: &str = "https://agent.example";
    const RESOURCE: &str = "https://resource.example";

    struct Fixture {
        server: SigningKey,
        delegate: SigningKey,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                server: ed25519(),
                delegate: ed25519(),
            }
        }

        fn keys(&self) -> impl IssuerKeys {
            one_key(
                origin(AGENT),
                kid("agent-key-1"),
                self.server.public_key().clone(),
            )
        }

        fn header(&self) -> Value {
            json!({"alg": "EdDSA", "typ": "agent+jwt", "kid": "agent-key-1"})
        }

        fn payload(&self) -> Value {
            json!({
                "iss": AGENT,
                "sub": "spiffe://example.com/workload/api-service",
                "exp": NOW + 3600,
                "iat": NOW,
                "cnf": {"jwk": self.delegate.public_key()}
            })
        }

        fn validate_raw(
            &self,
            header: &Value,
            payload: &Value,
        ) -> Result<VerifiedAgentToken, AgentTokenError> {
            let token = sign_raw(&self.server, header, payload);
            let recipient = origin(RESOURCE);
            validate(
                &token,
                &AgentTokenContext::new(NOW, &recipient),
                &self.keys(),
            )
        }

        fn with(
            &self,
            edit: impl FnOnce(&mut serde_json::Map<String, Value>),
        ) -> Result<VerifiedAgentToken, AgentTokenError> {
            let mut payload = self.payload();
            edit(payload.as_object_mut().unwrap());
            self.validate_raw(&self.header(), &payload)
        }
    }

    #[test]
    fn accepts_a_valid_token() {
        let f = Fixture::new();
        let verified = f.validate_raw(&f.header(), &f.payload()).unwrap();
        assert_eq!(verified.agent().as_str(), AGENT);
        assert_eq!(
            verified.delegate(),
            "spiffe://example.com/workload/api-service"
        );
        assert_eq!(verified.cnf_key(), f.delegate.public_key());
        assert_eq!(verified.kid().as_str(), "agent-key-1");
        assert_eq!(verified.claims().iat, Some(NOW));
    }

    #[test]
    fn builder_round_trips_for_ed25519_and_p256() {
        // profile: P-TOK-1, P-TOK-2
        for server in [ed25519(), p256()] {
            for delegate in [ed25519(), p256()] {
                let claims =
                    AgentTokenBuilder::new(origin(AGENT), "d-1", delegate.public_key().clone())
                        .build(NOW)
                        .unwrap();
                assert_eq!(claims.exp, NOW + 3600);
                assert_eq!(claims.iat, Some(NOW));
                let token = claims.sign(&server, &kid("k")).unwrap();
                let keys = one_key(origin(AGENT), kid("k"), server.public_key().clone());
                let recipient = origin(RESOURCE);
                let verified =
                    validate(&token, &AgentTokenContext::new(NOW, &recipient), &keys).unwrap();
                assert_eq!(verified.claims(), &claims);
                assert_eq!(verified.alg(), server.algorithm().jws_alg());
            }
        }
    }

    #[test]
    fn explainer_example_claims_parse() {
        // E§5.5, signed here with a test key (the explainer's has no signature).
        let f = Fixture::new();
        let payload = json!({
            "iss": "https://agent.example",
            "sub": "spiffe://example.com/workload/api-service",
            "exp": 1730218200,
            "cnf": {"jwk": rfc8037_public()}
        });
        let token = sign_raw(&f.server, &f.header(), &payload);
        let recipient = origin(RESOURCE);
        let verified = validate(
            &token,
            &AgentTokenContext::new(1_730_218_199, &recipient),
            &f.keys(),
        )
        .unwrap();
        assert_eq!(verified.claims().iat, None); // profile: P-TOK-1a — optional on receipt
        assert_eq!(
            verified.cnf_key().thumbprint().as_str(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn step_1_rejects_malformed_jws() {
        let recipient = origin(RESOURCE);
        let err = validate(
            "not.a-jws",
            &AgentTokenContext::new(NOW, &recipient),
            &Fixture::new().keys(),
        )
        .unwrap_err();
        assert!(matches!(err, AgentTokenError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn step_2_rejects_other_typ() {
        let f = Fixture::new();
        for typ in [json!("auth+jwt"), json!("JWT"), Value::Null] {
            let header = json!({"alg": "EdDSA", "typ": typ, "kid": "agent-key-1"});
            let err = f.validate_raw(&header, &f.payload()).unwrap_err();
            assert!(matches!(err, AgentTokenError::WrongTyp(_)), "{err:?}");
        }
        // profile: P-TOK-1 — case-insensitive, with or without `application/`.
        let header = json!({"alg": "EdDSA", "typ": "application/Agent+JWT", "kid": "agent-key-1"});
        f.validate_raw(&header, &f.payload()).unwrap();
    }

    #[test]
    fn step_3_rejects_missing_kid() {
        let f = Fixture::new();
        let err = f
            .validate_raw(&json!({"alg": "EdDSA", "typ": "agent+jwt"}), &f.payload())
            .unwrap_err();
        assert_eq!(err, AgentTokenError::MissingKid);
    }

    #[test]
    fn step_4_rejects_missing_or_bad_iss_and_bad_claims() {
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("iss");
            })
            .unwrap_err(),
            AgentTokenError::MissingClaim("iss")
        );
        assert!(matches!(
            f.with(|p| {
                p.insert("iss".into(), json!("https://agent.example/"));
            })
            .unwrap_err(),
            AgentTokenError::Issuer(OriginError::NotBare)
        ));
        assert!(matches!(
            f.with(|p| {
                p.insert("sub".into(), json!(42));
            })
            .unwrap_err(),
            AgentTokenError::Claims(_)
        ));
    }

    #[test]
    fn steps_5_6_key_lookup_failure_is_invalid_agent_token() {
        // P-ERR-1: "incl. key fetch failure"
        let f = Fixture::new();
        let header = json!({"alg": "EdDSA", "typ": "agent+jwt", "kid": "other"});
        let err = f.validate_raw(&header, &f.payload()).unwrap_err();
        assert!(matches!(
            err,
            AgentTokenError::KeyLookup(KeyLookupError::UnknownKid(_))
        ));
        assert_eq!(err.condition(), Condition::AgentTokenInvalid);
    }

    #[test]
    fn step_7_rejects_bad_signature() {
        let f = Fixture::new();
        let token = sign_raw(&ed25519(), &f.header(), &f.payload());
        let recipient = origin(RESOURCE);
        let err =
            validate(&token, &AgentTokenContext::new(NOW, &recipient), &f.keys()).unwrap_err();
        assert_eq!(err, AgentTokenError::Signature(JwsError::BadSignature));
    }

    #[test]
    fn step_8_exp_is_strict_with_optional_leeway() {
        // profile: P-TOK-5
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("exp");
            })
            .unwrap_err(),
            AgentTokenError::MissingClaim("exp")
        );
        let token = sign_raw(&f.server, &f.header(), &f.payload());
        let recipient = origin(RESOURCE);
        let mut ctx = AgentTokenContext::new(NOW + 3600, &recipient);
        assert_eq!(
            validate(&token, &ctx, &f.keys()).unwrap_err(),
            AgentTokenError::Expired {
                exp: NOW + 3600,
                now: NOW + 3600
            }
        );
        ctx.now = NOW + 3599;
        validate(&token, &ctx, &f.keys()).unwrap();
        ctx.now = NOW + 3604;
        ctx.leeway_secs = 5;
        validate(&token, &ctx, &f.keys()).unwrap();
    }

    #[test]
    fn step_8_iat_and_nbf_may_be_at_most_60s_ahead() {
        // profile: P-TOK-5
        let f = Fixture::new();
        f.with(|p| {
            p.insert("iat".into(), json!(NOW + 60));
        })
        .unwrap();
        assert_eq!(
            f.with(|p| {
                p.insert("iat".into(), json!(NOW + 61));
            })
            .unwrap_err(),
            AgentTokenError::IssuedInFuture {
                iat: NOW + 61,
                now: NOW
            }
        );
        f.with(|p| {
            p.insert("nbf".into(), json!(NOW + 60));
        })
        .unwrap();
        assert_eq!(
            f.with(|p| {
                p.insert("nbf".into(), json!(NOW + 61));
            })
            .unwrap_err(),
            AgentTokenError::NotYetValid {
                nbf: NOW + 61,
                now: NOW
            }
        );
    }

    #[test]
    fn step_9_requires_sub() {
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("sub");
            })
            .unwrap_err(),
            AgentTokenError::MissingClaim("sub")
        );
        assert_eq!(
            f.with(|p| {
                p.insert("sub".into(), json!(""));
            })
            .unwrap_err(),
            AgentTokenError::MissingClaim("sub")
        );
    }

    #[test]
    fn step_10_aud_when_present_must_include_recipient() {
        // profile: P-TOK-2 — optional `aud`, string or array.
        let f = Fixture::new();
        f.with(|p| {
            p.insert("aud".into(), json!(RESOURCE));
        })
        .unwrap();
        f.with(|p| {
            p.insert("aud".into(), json!(["https://x.example", RESOURCE]));
        })
        .unwrap();
        for aud in [
            json!("https://x.example"),
            json!([]),
            json!(["https://x.example"]),
        ] {
            assert_eq!(
                f.with(|p| {
                    p.insert("aud".into(), aud);
                })
                .unwrap_err(),
                AgentTokenError::Audience(origin(RESOURCE))
            );
        }
    }

    #[test]
    fn step_11_requires_a_supported_cnf_jwk() {
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("cnf");
            })
            .unwrap_err(),
            AgentTokenError::MissingClaim("cnf.jwk")
        );
        assert_eq!(
            f.with(|p| {
                p.insert("cnf".into(), json!({}));
            })
            .unwrap_err(),
            AgentTokenError::MissingClaim("cnf.jwk")
        );
        assert!(matches!(
            f.with(|p| {
                p.insert(
                    "cnf".into(),
                    json!({"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
                );
            })
            .unwrap_err(),
            AgentTokenError::Cnf(JwkError::Unsupported { .. })
        ));
    }

    #[test]
    fn every_error_is_invalid_agent_token() {
        // profile: P-ERR-1
        let errors = [
            AgentTokenError::MissingKid,
            AgentTokenError::MissingClaim("sub"),
            AgentTokenError::KeyLookup(KeyLookupError::Unavailable("timeout".into())),
            AgentTokenError::Expired { exp: 0, now: 1 },
        ];
        for err in errors {
            assert_eq!(err.condition(), Condition::AgentTokenInvalid);
            assert_eq!(err.condition().wire().code.as_str(), "invalid_agent_token");
        }
    }

    proptest::proptest! {
        #[test]
        fn validate_never_panics(text in ".{0,400}") {
            let recipient = origin(RESOURCE);
            let keys = |_: &Origin, k: &Kid| Err(KeyLookupError::UnknownKid(k.clone()));
            let _ = validate(&text, &AgentTokenContext::new(NOW, &recipient), &keys);
        }
    }
}
