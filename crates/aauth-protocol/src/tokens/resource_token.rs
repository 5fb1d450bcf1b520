//! Resource tokens, `resource+jwt` (E§6, D§7, profile: P-TOK-3): a
//! resource binds an access request to the requesting agent (`agent`), its
//! current key (`agent_jkt`) and the auth server (`aud`). The auth server
//! validates them by E§6.5.

use serde::{Deserialize, Serialize};

use super::{
    Audience, BuildError, ClockFault, IssuerKeys, KeyLookupError, TokenType, TypMismatch,
    check_clock, expiry, new_jti, numeric_date,
};
use crate::error::Condition;
use crate::ids::{Kid, Origin, OriginError, OriginMode, Scope, StringError, Thumbprint};
use crate::jose::{self, JwsAlg, JwsError, SignError, UnverifiedJws};
use crate::jwk::PublicKey;
use crate::keys::SigningKey;

/// The claims of a resource token (E§6.3, profile: P-TOK-3), as emitted.
/// Our resources always use `scope` (profile: P-TOK-7), so
/// `auth_request_url` is not represented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceTokenClaims {
    /// The resource's identifier.
    pub iss: Origin,
    /// The auth server's identifier (emitted as a string).
    pub aud: Audience,
    /// The requesting agent's identifier.
    pub agent: Origin,
    /// RFC 7638 thumbprint of the agent's current signing key.
    pub agent_jkt: Thumbprint,
    /// Expiration (NumericDate).
    pub exp: i64,
    /// Issued at; always emitted, optional on receipt (profile: P-TOK-1a).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Token identifier; always emitted, optional on receipt (profile: P-TOK-1a).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The requested scope.
    pub scope: Scope,
}

impl ResourceTokenClaims {
    /// Signs the claims as a `resource+jwt` with the resource's key.
    pub fn sign(&self, key: &SigningKey, kid: &Kid) -> Result<String, SignError> {
        jose::sign(key, TokenType::Resource.typ(), kid, self)
    }
}

/// Builds resource token claims for a resource (profile: P-TOK-3).
#[derive(Debug, Clone)]
pub struct ResourceTokenBuilder {
    iss: Origin,
    aud: Origin,
    agent: Origin,
    agent_jkt: Thumbprint,
    scope: Scope,
    lifetime_secs: u32,
    jti: Option<String>,
}

impl ResourceTokenBuilder {
    /// Default lifetime: five minutes (profile: P-TOK-3).
    pub const DEFAULT_LIFETIME_SECS: u32 = 300;

    /// A resource token from `iss` to auth server `aud` for `agent`, whose
    /// request was signed with `agent_key`, asking for `scope`.
    pub fn new(
        iss: Origin,
        aud: Origin,
        agent: Origin,
        agent_key: &PublicKey,
        scope: Scope,
    ) -> Self {
        Self {
            iss,
            aud,
            agent,
            agent_jkt: agent_key.thumbprint(),
            scope,
            lifetime_secs: Self::DEFAULT_LIFETIME_SECS,
            jti: None,
        }
    }

    /// Sets the lifetime in seconds (profile: P-TOK-5: configurable).
    #[must_use]
    pub fn lifetime_secs(mut self, secs: u32) -> Self {
        self.lifetime_secs = secs;
        self
    }

    /// Uses `jti` instead of a fresh random one (fixed vectors, tests).
    #[must_use]
    pub fn jti(mut self, jti: impl Into<String>) -> Self {
        self.jti = Some(jti.into());
        self
    }

    /// The claims issued at `now`, with a fresh `jti` unless one was set.
    pub fn build(&self, now: i64) -> Result<ResourceTokenClaims, BuildError> {
        Ok(ResourceTokenClaims {
            iss: self.iss.clone(),
            aud: Audience::from(&self.aud),
            agent: self.agent.clone(),
            agent_jkt: self.agent_jkt.clone(),
            exp: expiry(now, self.lifetime_secs),
            iat: Some(now),
            jti: Some(match &self.jti {
                Some(jti) => jti.clone(),
                None => new_jti()?,
            }),
            scope: self.scope.clone(),
        })
    }
}

/// What the auth server knows when it validates a resource token.
#[derive(Debug, Clone)]
pub struct ResourceTokenContext<'a> {
    /// Current time, Unix seconds.
    pub now: i64,
    /// This auth server's identifier (step 10).
    pub auth_server: &'a Origin,
    /// The requesting agent's identifier, from its verified request (step 11).
    pub agent: &'a Origin,
    /// The key that signed the request (step 12).
    pub agent_key: &'a PublicKey,
    /// Which issuers are acceptable origins.
    pub origin_mode: OriginMode,
    /// Seconds of grace after `exp` (profile: P-TOK-5; default 0).
    pub leeway_secs: u32,
}

impl<'a> ResourceTokenContext<'a> {
    /// A production-mode context without leeway.
    pub fn new(
        now: i64,
        auth_server: &'a Origin,
        agent: &'a Origin,
        agent_key: &'a PublicKey,
    ) -> Self {
        Self {
            now,
            auth_server,
            agent,
            agent_key,
            origin_mode: OriginMode::Production,
            leeway_secs: 0,
        }
    }
}

/// A resource token that passed E§6.5 steps 1–14. Only [`validate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedResourceToken {
    claims: ResourceTokenClaims,
    kid: Kid,
    alg: JwsAlg,
}

impl VerifiedResourceToken {
    /// The verified claims.
    pub fn claims(&self) -> &ResourceTokenClaims {
        &self.claims
    }

    /// The resource (`iss`).
    pub fn resource(&self) -> &Origin {
        &self.claims.iss
    }

    /// The requested scope (step 14).
    pub fn scope(&self) -> &Scope {
        &self.claims.scope
    }

    /// The resource key that signed the token.
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The JWS algorithm used.
    pub fn alg(&self) -> JwsAlg {
        self.alg
    }
}

/// Why a resource token failed, one variant per E§6.5 step (error code
/// `invalid_resource_token`, D§11.2.3), except [`Self::AuthRequestUrlUnsupported`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceTokenError {
    /// Step 1: not a valid compact JWS.
    #[error("resource token is malformed: {0}")]
    Malformed(JwsError),
    /// Step 2: `typ` is not `resource+jwt`.
    #[error("{0}")]
    WrongTyp(TypMismatch),
    /// Step 3: no `kid`.
    #[error("resource token has no \"kid\" in its header")]
    MissingKid,
    /// Step 4: the payload is not a claims object of the right shape.
    #[error("resource token claims are malformed: {0}")]
    Claims(JwsError),
    /// A claim the step needs is absent.
    #[error("resource token has no \"{0}\" claim")]
    MissingClaim(&'static str),
    /// Step 4: `iss` is not an acceptable resource identifier.
    #[error("resource token \"iss\" is not an acceptable resource identifier: {0}")]
    Issuer(OriginError),
    /// Steps 5–8: the resource's key could not be found.
    #[error("resource token signing key: {0}")]
    KeyLookup(KeyLookupError),
    /// Step 9: the signature does not verify with the resource's key.
    #[error("resource token signature: {0}")]
    Signature(JwsError),
    /// Step 10: `aud` is not this auth server.
    #[error("resource token \"aud\" is not this auth server ({0})")]
    Audience(Origin),
    /// Step 11: `agent` is not the requesting agent.
    #[error("resource token \"agent\" is not the requesting agent ({0})")]
    Agent(Origin),
    /// Step 12: `agent_jkt` is not the thumbprint of the request's signing key.
    #[error(
        "resource token \"agent_jkt\" is not the thumbprint of the key that signed this request"
    )]
    AgentJkt,
    /// Step 13: `now` is not before `exp` (+ leeway).
    #[error("resource token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// Step 13 (profile: P-TOK-5): `iat` more than 60 s in the future.
    #[error("resource token \"iat\" {iat} is in the future (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// Step 13 (profile: P-TOK-5): `nbf` more than 60 s in the future.
    #[error("resource token is not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// Step 14 (profile: P-TOK-3): both `scope` and `auth_request_url`.
    #[error("resource token has both \"scope\" and \"auth_request_url\"; exactly one is allowed")]
    ScopeAndAuthRequestUrl,
    /// Step 14 (profile: P-TOK-3): neither `scope` nor `auth_request_url`.
    #[error("resource token has neither \"scope\" nor \"auth_request_url\"")]
    MissingScope,
    /// Step 14: `scope` is not a valid scope string.
    #[error("resource token \"scope\": {0}")]
    Scope(StringError),
    /// Step 14 (profile: P-TOK-7): `auth_request_url` instead of `scope`.
    #[error("not supported: auth_request_url (E§11 leaves the document format TBD)")]
    AuthRequestUrlUnsupported,
}

impl ResourceTokenError {
    /// The P-ERR-1 row: `invalid_resource_token` for every E§6.5 failure;
    /// `auth_request_url` is 400 `invalid_request` (profile: P-TOK-7).
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
            | Self::Audience(_)
            | Self::Agent(_)
            | Self::AgentJkt
            | Self::Expired { .. }
            | Self::IssuedInFuture { .. }
            | Self::NotYetValid { .. }
            | Self::ScopeAndAuthRequestUrl
            | Self::MissingScope
            | Self::Scope(_) => Condition::ResourceTokenInvalid,
            Self::AuthRequestUrlUnsupported => Condition::MalformedRequest,
        }
    }
}

/// The claims as received: everything optional, so each step can report
/// exactly what is missing. Unknown members are ignored.
#[derive(Deserialize)]
struct Received {
    iss: Option<String>,
    aud: Option<Audience>,
    agent: Option<String>,
    agent_jkt: Option<String>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    jti: Option<String>,
    scope: Option<String>,
    auth_request_url: Option<String>,
}

/// Validates a resource token at the auth server (E§6.5 steps 1–14).
pub fn validate<K: IssuerKeys + ?Sized>(
    token: &str,
    ctx: &ResourceTokenContext<'_>,
    keys: &K,
) -> Result<VerifiedResourceToken, ResourceTokenError> {
    use ResourceTokenError as E;

    // 1. "Parse the JWT and extract the JOSE header"
    let jws = UnverifiedJws::parse(token).map_err(E::Malformed)?;
    let header = jws.unverified_header();

    // 2. "Verify `typ` is "resource+jwt""
    if !header.typ_is(TokenType::Resource.typ()) {
        return Err(E::WrongTyp(TypMismatch::new(
            TokenType::Resource,
            header.typ(),
        )));
    }

    // 3. "Extract `kid` from the JOSE header"
    let kid = header.kid().cloned().ok_or(E::MissingKid)?;

    // 4. "Extract `iss` (resource identifier) from the payload"
    let claims: Received = jws
        .unverified_claims_for_routing(TokenType::Resource.typ())
        .map_err(E::Claims)?;
    let iss = claims.iss.as_deref().ok_or(E::MissingClaim("iss"))?;
    // E§6.3: "iss (REQUIRED): The resource's HTTPS URL identifier" (profile: P-MD-1).
    let iss = Origin::parse(iss, ctx.origin_mode).map_err(E::Issuer)?;

    // 5. "Fetch the resource's metadata from `{iss}/.well-known/aauth-resource`"
    // 6. "Extract `jwks_uri` from the metadata"
    // 7. "Fetch the resource's JWKS from `jwks_uri`"
    // 8. "Match the signing key by `kid`"
    let key = keys.key(&iss, &kid).map_err(E::KeyLookup)?;

    // 9. "Verify the JWT signature using the matched public key"
    jws.verify_signature(&key).map_err(E::Signature)?;

    // 10. "Verify `aud` matches the auth server's identifier"
    let aud = claims.aud.ok_or(E::MissingClaim("aud"))?;
    if !aud.contains(ctx.auth_server.as_str()) {
        return Err(E::Audience(ctx.auth_server.clone()));
    }

    // 11. "Verify `agent` matches the requesting agent's identifier"
    let agent = claims.agent.as_deref().ok_or(E::MissingClaim("agent"))?;
    if agent != ctx.agent.as_str() {
        return Err(E::Agent(ctx.agent.clone()));
    }

    // 12. "Verify `agent_jkt` matches the JWK Thumbprint of the agent's
    //     current signing key"
    let agent_jkt = claims
        .agent_jkt
        .as_deref()
        .ok_or(E::MissingClaim("agent_jkt"))?;
    let thumbprint = ctx.agent_key.thumbprint();
    if agent_jkt != thumbprint.as_str() {
        return Err(E::AgentJkt);
    }

    // 13. "Verify `exp` claim (current time MUST be less than expiration)"
    let exp = claims.exp.ok_or(E::MissingClaim("exp"))?;
    let now = ctx.now;
    check_clock(exp, claims.iat, claims.nbf, now, ctx.leeway_secs).map_err(
        |fault| match fault {
            ClockFault::Expired => E::Expired { exp, now },
            ClockFault::IssuedInFuture(iat) => E::IssuedInFuture { iat, now },
            ClockFault::NotYetValid(nbf) => E::NotYetValid { nbf, now },
        },
    )?;

    // 14. "Extract and process the `scope` or `auth_request_url` for
    //     authorization evaluation" — profile: P-TOK-3, exactly one of them;
    //     P-TOK-7, `auth_request_url` is not supported.
    let scope = match (claims.scope, claims.auth_request_url) {
        (Some(_), Some(_)) => return Err(E::ScopeAndAuthRequestUrl),
        (None, None) => return Err(E::MissingScope),
        (None, Some(_)) => return Err(E::AuthRequestUrlUnsupported),
        (Some(scope), None) => Scope::parse(&scope).map_err(E::Scope)?,
    };

    Ok(VerifiedResourceToken {
        claims: ResourceTokenClaims {
            iss,
            aud,
            agent: ctx.agent.clone(),
            agent_jkt: thumbprint,
            exp,
            iat: claims.iat,
            jti: claims.jti,
            scope,
        },
        kid,
        alg: header.alg(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::{Map, Value, json};

    const RESOURCE: &str = "https://resource.example";
    const AUTH: &str = "https://auth.example";
    const AGENT: &str = "https://agent.example";

    struct Fixture {
        resource: SigningKey,
        agent_key: SigningKey,
        auth: Origin,
        agent: Origin,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                resource: ed25519(),
                agent_key: ed25519(),
                auth: origin(AUTH),
                agent: origin(AGENT),
            }
        }

        fn keys(&self) -> impl IssuerKeys {
            one_key(
                origin(RESOURCE),
                kid("resource-key-1"),
                self.resource.public_key().clone(),
            )
        }

        fn ctx(&self) -> ResourceTokenContext<'_> {
            ResourceTokenContext::new(NOW, &self.auth, &self.agent, self.agent_key.public_key())
        }

        fn header() -> Value {
            json!({"alg": "EdDSA", "typ": "resource+jwt", "kid": "resource-key-1"})
        }

        fn payload(&self) -> Value {
            json!({
                "iss": RESOURCE,
                "aud": AUTH,
                "agent": AGENT,
                "agent_jkt": self.agent_key.public_key().thumbprint(),
                "exp": NOW + 300,
                "iat": NOW,
                "jti": "abc",
                "scope": "data.read data.write"
            })
        }

        fn run(
            &self,
            header: &Value,
            payload: &Value,
        ) -> Result<VerifiedResourceToken, ResourceTokenError> {
            validate(
                &sign_raw(&self.resource, header, payload),
                &self.ctx(),
                &self.keys(),
            )
        }

        fn with(
            &self,
            edit: impl FnOnce(&mut Map<String, Value>),
        ) -> Result<VerifiedResourceToken, ResourceTokenError> {
            let mut payload = self.payload();
            edit(payload.as_object_mut().unwrap());
            self.run(&Self::header(), &payload)
        }
    }

    #[test]
    fn accepts_a_valid_token() {
        let f = Fixture::new();
        let verified = f.with(|_| {}).unwrap();
        assert_eq!(verified.scope().to_string(), "data.read data.write");
        assert_eq!(verified.resource().as_str(), RESOURCE);
        assert_eq!(verified.claims().jti.as_deref(), Some("abc"));
    }

    #[test]
    fn builder_round_trips_for_ed25519_and_p256() {
        // profile: P-TOK-1, P-TOK-1a, P-TOK-3
        for resource in [ed25519(), p256()] {
            for agent_key in [ed25519(), p256()] {
                let (auth, agent) = (origin(AUTH), origin(AGENT));
                let claims = ResourceTokenBuilder::new(
                    origin(RESOURCE),
                    auth.clone(),
                    agent.clone(),
                    agent_key.public_key(),
                    Scope::parse("data.read").unwrap(),
                )
                .build(NOW)
                .unwrap();
                assert_eq!(claims.exp, NOW + 300);
                assert_eq!(claims.iat, Some(NOW));
                assert_eq!(
                    crate::b64::url_decode(claims.jti.as_deref().unwrap())
                        .unwrap()
                        .len(),
                    16
                );
                let token = claims.sign(&resource, &kid("rk")).unwrap();
                let keys = one_key(origin(RESOURCE), kid("rk"), resource.public_key().clone());
                let ctx = ResourceTokenContext::new(NOW, &auth, &agent, agent_key.public_key());
                assert_eq!(validate(&token, &ctx, &keys).unwrap().claims(), &claims);
            }
        }
    }

    #[test]
    fn builder_emits_aud_as_a_string() {
        let claims = ResourceTokenBuilder::new(
            origin(RESOURCE),
            origin(AUTH),
            origin(AGENT),
            ed25519().public_key(),
            Scope::parse("a").unwrap(),
        )
        .lifetime_secs(5)
        .build(NOW)
        .unwrap();
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["aud"], AUTH);
        assert_eq!(json["exp"], NOW + 5);
        assert_eq!(json["scope"], "a");
    }

    #[test]
    fn explainer_example_claims_parse() {
        // E§6.4, signed here with a test key. Nobody holds the key whose
        // thumbprint the example names, so verbatim it passes steps 1–11 and
        // stops exactly at step 12; with our agent's thumbprint it passes.
        let f = Fixture::new();
        let mut payload = json!({
            "iss": "https://resource.example",
            "aud": "https://auth.example",
            "agent": "https://agent.example",
            "agent_jkt": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
            "exp": 1730221200,
            "scope": "data.read data.write"
        });
        assert_eq!(
            f.run(&Fixture::header(), &payload).unwrap_err(),
            ResourceTokenError::AgentJkt
        );
        payload["agent_jkt"] = json!(f.agent_key.public_key().thumbprint());
        let verified = f.run(&Fixture::header(), &payload).unwrap();
        assert_eq!(verified.claims().exp, 1_730_221_200);
        assert_eq!(verified.claims().iat, None); // profile: P-TOK-1a
    }

    #[test]
    fn step_1_rejects_malformed() {
        let f = Fixture::new();
        assert!(matches!(
            validate("a.b", &f.ctx(), &f.keys()),
            Err(ResourceTokenError::Malformed(_))
        ));
    }

    #[test]
    fn step_2_rejects_other_typ() {
        let f = Fixture::new();
        let header = json!({"alg": "EdDSA", "typ": "agent+jwt", "kid": "resource-key-1"});
        assert!(matches!(
            f.run(&header, &f.payload()),
            Err(ResourceTokenError::WrongTyp(_))
        ));
    }

    #[test]
    fn step_3_rejects_missing_kid() {
        let f = Fixture::new();
        let header = json!({"alg": "EdDSA", "typ": "resource+jwt"});
        assert_eq!(
            f.run(&header, &f.payload()).unwrap_err(),
            ResourceTokenError::MissingKid
        );
    }

    #[test]
    fn step_4_rejects_missing_or_bad_iss() {
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("iss");
            })
            .unwrap_err(),
            ResourceTokenError::MissingClaim("iss")
        );
        assert!(matches!(
            f.with(|p| {
                p.insert("iss".into(), json!("resource.example"));
            })
            .unwrap_err(),
            ResourceTokenError::Issuer(_)
        ));
        assert!(matches!(
            f.with(|p| {
                p.insert("aud".into(), json!(7));
            })
            .unwrap_err(),
            ResourceTokenError::Claims(_)
        ));
    }

    #[test]
    fn steps_5_to_8_key_lookup_failure() {
        let f = Fixture::new();
        let header = json!({"alg": "EdDSA", "typ": "resource+jwt", "kid": "gone"});
        assert!(matches!(
            f.run(&header, &f.payload()),
            Err(ResourceTokenError::KeyLookup(_))
        ));
    }

    #[test]
    fn step_9_rejects_bad_signature() {
        let f = Fixture::new();
        let token = sign_raw(&ed25519(), &Fixture::header(), &f.payload());
        assert_eq!(
            validate(&token, &f.ctx(), &f.keys()).unwrap_err(),
            ResourceTokenError::Signature(JwsError::BadSignature)
        );
    }

    #[test]
    fn step_10_aud_must_be_this_auth_server() {
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("aud");
            })
            .unwrap_err(),
            ResourceTokenError::MissingClaim("aud")
        );
        assert_eq!(
            f.with(|p| {
                p.insert("aud".into(), json!("https://other-auth.example"));
            })
            .unwrap_err(),
            ResourceTokenError::Audience(origin(AUTH))
        );
        f.with(|p| {
            p.insert("aud".into(), json!([AUTH]));
        })
        .unwrap();
    }

    #[test]
    fn step_11_agent_must_be_the_requesting_agent() {
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("agent");
            })
            .unwrap_err(),
            ResourceTokenError::MissingClaim("agent")
        );
        assert_eq!(
            f.with(|p| {
                p.insert("agent".into(), json!("https://evil.example"));
            })
            .unwrap_err(),
            ResourceTokenError::Agent(origin(AGENT))
        );
    }

    #[test]
    fn step_12_agent_jkt_must_match_the_signing_key() {
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("agent_jkt");
            })
            .unwrap_err(),
            ResourceTokenError::MissingClaim("agent_jkt")
        );
        let other = ed25519().public_key().thumbprint();
        assert_eq!(
            f.with(|p| {
                p.insert("agent_jkt".into(), json!(other));
            })
            .unwrap_err(),
            ResourceTokenError::AgentJkt
        );
    }

    #[test]
    fn step_13_exp_iat_nbf() {
        // profile: P-TOK-5
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("exp");
            })
            .unwrap_err(),
            ResourceTokenError::MissingClaim("exp")
        );
        assert_eq!(
            f.with(|p| {
                p.insert("exp".into(), json!(NOW));
            })
            .unwrap_err(),
            ResourceTokenError::Expired { exp: NOW, now: NOW }
        );
        assert!(matches!(
            f.with(|p| {
                p.insert("iat".into(), json!(NOW + 61));
            })
            .unwrap_err(),
            ResourceTokenError::IssuedInFuture { .. }
        ));
        assert!(matches!(
            f.with(|p| {
                p.insert("nbf".into(), json!(NOW + 61));
            })
            .unwrap_err(),
            ResourceTokenError::NotYetValid { .. }
        ));
    }

    #[test]
    fn iat_and_jti_are_optional_on_receipt() {
        // profile: P-TOK-1a
        let f = Fixture::new();
        let verified = f
            .with(|p| {
                p.remove("iat");
                p.remove("jti");
            })
            .unwrap();
        assert_eq!(verified.claims().iat, None);
        assert_eq!(verified.claims().jti, None);
    }

    #[test]
    fn step_14_exactly_one_of_scope_and_auth_request_url() {
        // profile: P-TOK-3
        let f = Fixture::new();
        assert_eq!(
            f.with(|p| {
                p.remove("scope");
            })
            .unwrap_err(),
            ResourceTokenError::MissingScope
        );
        assert_eq!(
            f.with(|p| {
                p.insert(
                    "auth_request_url".into(),
                    json!("https://resource.example/req/1"),
                );
            })
            .unwrap_err(),
            ResourceTokenError::ScopeAndAuthRequestUrl
        );
        assert!(matches!(
            f.with(|p| {
                p.insert("scope".into(), json!("a  b"));
            })
            .unwrap_err(),
            ResourceTokenError::Scope(_)
        ));
    }

    #[test]
    fn auth_request_url_is_invalid_request_not_supported() {
        // profile: P-TOK-7
        let f = Fixture::new();
        let err = f
            .with(|p| {
                p.remove("scope");
                p.insert(
                    "auth_request_url".into(),
                    json!("https://resource.example/req/1"),
                );
            })
            .unwrap_err();
        assert_eq!(err, ResourceTokenError::AuthRequestUrlUnsupported);
        assert_eq!(err.condition(), Condition::MalformedRequest);
        assert_eq!(err.condition().wire().status, 400);
        assert_eq!(err.condition().wire().code.as_str(), "invalid_request");
        assert!(
            err.to_string()
                .contains("E§11 leaves the document format TBD")
        );
    }

    #[test]
    fn other_errors_are_invalid_resource_token() {
        // profile: P-ERR-1
        for err in [
            ResourceTokenError::AgentJkt,
            ResourceTokenError::Agent(origin(AGENT)),
            ResourceTokenError::MissingScope,
        ] {
            assert_eq!(err.condition(), Condition::ResourceTokenInvalid);
            assert_eq!(
                err.condition().wire().code.as_str(),
                "invalid_resource_token"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn validate_never_panics(text in ".{0,400}") {
            let f = Fixture::new();
            let _ = validate(&text, &f.ctx(), &f.keys());
        }
    }
}
