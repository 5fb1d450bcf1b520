//! The profile `aauth-2026-01`: AAuth as it stood from November 2025 to
//! January 2026 — the explainer of 21 November 2025 (`E§`), the
//! Internet-Draft of 9 January 2026 (`D§`), `Signature-Key` draft -00
//! (`SK0§`) — with this project's decisions where they leave a gap
//! (`P-…`, `docs/profile.md`). A check cites the rule it tests; where the
//! sources leave the answer open (most error codes), the profile's choice
//! is what is expected, and the citation says so.

mod agent;
mod agent_server;
mod auth_server;
mod resource;

use std::sync::Arc;

use aauth_http::client::{Identity, SignerStyle};
use aauth_protocol::b64;
use aauth_protocol::jwk::Jwks;
use aauth_protocol::keys::{SigningKey, VerifyingKey};
use serde_json::Value;
use url::Url;

use crate::craft::Draft;
use crate::jws;
use crate::profile::{
    AgentServerTarget, AgentTarget, AuthServerTarget, Checks, Profile, ResourceTarget,
};
use crate::run::Run;
use crate::wire::Sent;

/// The profile's name.
pub const NAME: &str = "aauth-2026-01";

/// The profile of the November 2025 – January 2026 sources.
#[derive(Debug, Clone, Copy)]
pub struct Early;

impl Profile for Early {
    fn name(&self) -> &'static str {
        NAME
    }

    fn about(&self) -> &'static str {
        "explainer 2025-11-21, draft-hardt-aauth 2026-01-09, Signature-Key -00, with docs/profile.md"
    }

    fn resource<'a>(&'a self, run: &'a mut Run, target: &'a ResourceTarget) -> Checks<'a> {
        Box::pin(resource::run(run, target))
    }

    fn auth_server<'a>(&'a self, run: &'a mut Run, target: &'a AuthServerTarget) -> Checks<'a> {
        Box::pin(auth_server::run(run, target))
    }

    fn agent_server<'a>(&'a self, run: &'a mut Run, target: &'a AgentServerTarget) -> Checks<'a> {
        Box::pin(agent_server::run(run, target))
    }

    fn agent<'a>(&'a self, run: &'a mut Run, target: &'a AgentTarget) -> Checks<'a> {
        Box::pin(agent::run(run, target))
    }
}

/// How the run writes its well-formed requests (see
/// [`Settings::style`](crate::run::Settings::style)).
#[derive(Debug, Clone)]
struct Signer {
    style: SignerStyle,
}

impl Signer {
    fn of(run: &Run) -> Self {
        Self {
            style: run.settings.style.clone(),
        }
    }

    /// The label every request is signed under.
    fn label(&self) -> &str {
        self.style.label.as_str()
    }

    /// The well-formed request signed as `identity`.
    fn draft(
        &self,
        identity: &Identity,
        method: &str,
        url: Url,
        body: Option<(&[u8], &str)>,
    ) -> Draft {
        let signature_key = identity
            .signature_key_labelled(self.style.label.clone())
            .to_header_value(self.style.syntax)
            .unwrap_or_default();
        self.raw(method, url, body, signature_key, identity.key().clone())
    }

    /// A request with a `Signature-Key` written by hand, signed by `key`.
    fn raw(
        &self,
        method: &str,
        url: Url,
        body: Option<(&[u8], &str)>,
        signature_key: String,
        key: Arc<SigningKey>,
    ) -> Draft {
        let mut draft = Draft::new(method, url, body, signature_key, key);
        draft.label = self.label().to_owned();
        draft.encoding = self.style.encoding;
        draft
    }

    /// A form POST signed as `identity`.
    fn form(&self, identity: &Identity, url: Url, pairs: &[(&str, &str)]) -> Draft {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.draft(
            identity,
            "POST",
            url,
            Some((body.as_bytes(), "application/x-www-form-urlencoded")),
        )
    }
}

/// `path` on `base`.
fn at(base: &Url, path: &str) -> Url {
    base.join(path).unwrap_or_else(|_| base.clone())
}

/// A URL from a document the target served.
fn url_member(document: &Value, member: &str) -> Result<Url, String> {
    let text = document
        .get(member)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no string member {member:?}"))?;
    Url::parse(text).map_err(|e| format!("{member} {text:?}: {e}"))
}

/// Fetches a JSON document with no AAuth headers.
async fn fetch_json(run: &Run, url: &Url) -> Result<Value, String> {
    let seen = run.wire.get(url).await.map_err(|e| e.to_string())?;
    if seen.status != 200 {
        return Err(format!("{url} answered {}", seen.status));
    }
    seen.json
        .clone()
        .ok_or_else(|| format!("{url} did not answer JSON"))
}

/// Fetches and parses a JWKS.
async fn fetch_jwks(run: &Run, url: &Url) -> Result<Jwks, String> {
    let seen = run.wire.get(url).await.map_err(|e| e.to_string())?;
    if seen.status != 200 {
        return Err(format!("{url} answered {}", seen.status));
    }
    Jwks::from_json(&seen.body).map_err(|e| e.to_string())
}

/// A JWKS document carries no private key member (RFC 7517 §9.3).
fn jwks_is_public(document: &Value) -> Result<String, String> {
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no keys array")?;
    if keys.is_empty() {
        return Err("an empty key set".to_owned());
    }
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            if key.get(private).is_some() {
                return Err(format!("a key with the private member {private:?}"));
            }
        }
    }
    Ok(format!("{} public keys", keys.len()))
}

/// Verifies a compact JWS against `jwks` by its `kid`; its header and
/// claims.
fn verify_token(token: &str, jwks: &Jwks) -> Result<(Value, Value), String> {
    let header = jws::header_of(token).ok_or("the header does not parse")?;
    let claims = jws::claims(token).ok_or("the claims do not parse")?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or("no kid in the header")?;
    let key = jwks
        .keys()
        .iter()
        .find(|k| k.kid.as_str() == kid)
        .ok_or_else(|| format!("kid {kid:?} is not in the issuer's JWKS"))?;
    let (input, signature) = token.rsplit_once('.').ok_or("not a compact JWS")?;
    let signature = b64::url_decode(signature).map_err(|_| "the signature is not base64url")?;
    let verifier = VerifyingKey::new(&key.key).map_err(|e| e.to_string())?;
    verifier
        .verify(input.as_bytes(), &signature)
        .map_err(|_| format!("the signature does not verify with kid {kid:?}"))?;
    Ok((header, claims))
}

/// A claim as a string.
fn claim<'v>(claims: &'v Value, name: &str) -> Option<&'v str> {
    claims.get(name).and_then(Value::as_str)
}

/// Checks each `(what, ok)` pair; the first failure, or a summary.
fn all_of(checks: &[(&str, bool)], summary: String) -> Result<String, String> {
    match checks.iter().find(|(_, ok)| !ok) {
        Some((what, _)) => Err(format!("{what}; {summary}")),
        None => Ok(summary),
    }
}

/// A request signed as `identity` by the suite's own signer, then sent as
/// is. The base is returned for the diagnostics of a failure.
fn signed(draft: &Draft) -> (Sent, String) {
    let finished = draft.finish();
    (finished.sent, finished.base)
}

/// Whether `key`'s public JWK is `jwk`.
fn is_key(jwk: Option<&Value>, key: &SigningKey) -> bool {
    jwk.is_some_and(|jwk| {
        aauth_protocol::jwk::PublicKey::from_json_value(jwk)
            .is_ok_and(|k| k.thumbprint() == key.public_key().thumbprint())
    })
}

/// A pseudo-random generator for the garbage sweep: seeded, so a run can
/// be repeated exactly.
#[derive(Debug)]
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// `len` visible ASCII characters (what an HTTP header can carry).
    fn visible(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'!' + u8::try_from(self.next() % 94).unwrap_or(0)))
            .collect()
    }
}

/// A fresh key for a delegate or an attacker.
fn key() -> Arc<SigningKey> {
    crate::host::new_key()
}
