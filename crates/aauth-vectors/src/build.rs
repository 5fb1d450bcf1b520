//! Helpers shared by the generators and the runners: signing requests (with
//! the protocol crate's signer, or with a hand-written `Signature-Input`),
//! hand-crafted JWS, and the verifier configuration of a case.

use aauth_protocol::b64;
use aauth_protocol::challenge::Level;
use aauth_protocol::httpsig::{
    Nonce, Request, SignOptions, SignatureInput, Signed, build_signature_base, sign,
};
use aauth_protocol::httpsig::{NonceRule, VerifyPolicy};
use aauth_protocol::ids::{Label, Origin, OriginMode};
use aauth_protocol::keys::{SigningKey, sha256};
use aauth_protocol::verify::{Rejection, VerifiedRequest, VerifierConfig, verify_request};
use serde_json::Value;

use crate::schema::{HttpRequest, VerifierSpec};
use crate::world::{Directory, RESOURCE, RESOURCE_AUTHORITY};
use crate::{Ctx, Result, VectorError};

/// The headers the signer adds, lowercase.
pub const SIGNATURE_HEADERS: [&str; 5] = [
    "signature-key",
    "nonce",
    "content-digest",
    "signature-input",
    "signature",
];

/// A fixed nonce: base64url of 16 ASCII bytes `vector-nonce-NNN`.
pub fn nonce(n: u32) -> String {
    b64::url_encode(format!("vector-nonce-{n:03}"))
}

/// An unsigned request.
pub fn request(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        authority: None,
        target: target.into(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.map(Into::into),
    }
}

/// A GET of `https://resource.example/data`.
pub fn get() -> HttpRequest {
    request("GET", "/data", &[("Accept", "application/json")], None)
}

/// A POST with a JSON body.
pub fn post() -> HttpRequest {
    request(
        "POST",
        "/data?view=full",
        &[("Content-Type", "application/json")],
        Some(r#"{"hello": "world"}"#),
    )
}

impl HttpRequest {
    /// Removes every field line named `name` (case-insensitive).
    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Replaces the value of every field line named `name`, or appends one.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        let mut found = false;
        for (n, v) in &mut self.headers {
            if n.eq_ignore_ascii_case(name) {
                value.clone_into(v);
                found = true;
            }
        }
        if !found {
            self.headers.push((name.into(), value.into()));
        }
        self
    }

    /// Appends a field line.
    pub fn push(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The value of the first field line named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request without the headers a signer adds.
    pub fn unsigned(&self) -> Self {
        let mut out = self.clone();
        out.headers
            .retain(|(n, _)| !SIGNATURE_HEADERS.iter().any(|s| n.eq_ignore_ascii_case(s)));
        out
    }

    /// A protocol-crate view with `authority` for `@authority`.
    pub fn view<'a>(&'a self, authority: &'a str) -> Request<'a, Vec<(String, String)>> {
        Request {
            method: &self.method,
            authority,
            target: &self.target,
            headers: &self.headers,
            body: self.body.as_deref().map(str::as_bytes),
        }
    }
}

/// Signs `unsigned` with the protocol crate's signer (P-SIG-1a) and returns
/// the request with the added headers appended, and what was signed.
pub fn sign_with(
    unsigned: &HttpRequest,
    authority: &str,
    signature_key: &str,
    key: &SigningKey,
    created: u64,
    nonce_value: Option<&str>,
    label: &str,
) -> Result<(HttpRequest, Signed)> {
    let nonce = nonce_value.map(Nonce::parse).transpose().ctx("nonce")?;
    let options = SignOptions {
        label: Label::new(label).ctx("label")?,
        nonce: nonce.as_ref(),
        ..SignOptions::new(created)
    };
    let signed = sign(&unsigned.view(authority), signature_key, key, &options).ctx("signing")?;
    let mut out = unsigned.clone();
    for (name, value) in signed.headers() {
        out.headers.push((name.into(), value.into()));
    }
    Ok((out, signed))
}

/// [`sign_with`] for the resource, label `sig`, at `now`.
pub fn sign_simple(
    unsigned: &HttpRequest,
    signature_key: &str,
    key: &SigningKey,
    now: u64,
    nonce_value: Option<&str>,
) -> Result<HttpRequest> {
    Ok(sign_with(
        unsigned,
        RESOURCE_AUTHORITY,
        signature_key,
        key,
        now,
        nonce_value,
        "sig",
    )?
    .0)
}

/// Signs a request that already carries every covered header with a
/// hand-written `Signature-Input` value; returns the request with
/// `Signature-Input` and `Signature` appended, and the base.
pub fn sign_custom(
    request: &HttpRequest,
    authority: &str,
    signature_input: &str,
    key: &SigningKey,
) -> Result<(HttpRequest, String)> {
    let input = SignatureInput::parse(signature_input).ctx("custom Signature-Input")?;
    let base = build_signature_base(&request.view(authority), &input).ctx("custom base")?;
    let signature = key.sign(base.as_bytes()).ctx("signing")?;
    let out = request
        .clone()
        .push("Signature-Input", signature_input)
        .push(
            "Signature",
            &format!(
                "{}=:{}:",
                input.label().as_str(),
                b64::std_encode(signature)
            ),
        );
    Ok((out, base))
}

/// A compact JWS over exactly these header and payload objects (serialised
/// compactly, members in the order written), signed with `key`.
pub fn raw_jws(header: &Value, payload: &Value, key: &SigningKey) -> Result<String> {
    let input = format!(
        "{}.{}",
        b64::url_encode(serde_json::to_vec(header).ctx("header")?),
        b64::url_encode(serde_json::to_vec(payload).ctx("payload")?)
    );
    let signature = key.sign(input.as_bytes()).ctx("signing")?;
    Ok(format!("{input}.{}", b64::url_encode(signature)))
}

/// A compact JWS with an arbitrary signature part.
pub fn raw_jws_with_signature(header: &Value, payload: &Value, signature: &[u8]) -> Result<String> {
    Ok(format!(
        "{}.{}.{}",
        b64::url_encode(serde_json::to_vec(header).ctx("header")?),
        b64::url_encode(serde_json::to_vec(payload).ctx("payload")?),
        b64::url_encode(signature)
    ))
}

/// HMAC-SHA-256 (RFC 2104) for the `HS256` key-confusion token.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        for (b, k) in block.iter_mut().zip(sha256(key)) {
            *b = k;
        }
    } else {
        for (b, k) in block.iter_mut().zip(key) {
            *b = *k;
        }
    }
    let mut inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(message);
    let mut outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer).to_vec()
}

/// The resource's verifier: strict defaults, trusting `https://auth.example`.
pub fn resource_verifier() -> VerifierSpec {
    VerifierSpec {
        identifier: RESOURCE.into(),
        authority: RESOURCE_AUTHORITY.into(),
        trusted_auth_servers: vec![crate::world::AUTH.into()],
        origin_mode: "production".into(),
        max_skew: 60,
        require_nonce: false,
        lenient_base64: false,
        additional_components: Vec::new(),
        token_leeway: 0,
    }
}

fn mode(text: &str) -> Result<OriginMode> {
    match text {
        "production" => Ok(OriginMode::Production),
        "dev" => Ok(OriginMode::Dev),
        other => Err(VectorError(format!("unknown origin_mode {other:?}"))),
    }
}

/// The protocol crate's configuration for a case's verifier.
pub fn config(spec: &VerifierSpec) -> Result<VerifierConfig> {
    let origin_mode = mode(&spec.origin_mode)?;
    let parse = |text: &str| Origin::parse(text, origin_mode).ctx("verifier origin");
    Ok(VerifierConfig {
        identifier: parse(&spec.identifier)?,
        authority: spec.authority.clone(),
        trusted_auth_servers: spec
            .trusted_auth_servers
            .iter()
            .map(|t| parse(t))
            .collect::<Result<Vec<_>>>()?,
        origin_mode,
        http: VerifyPolicy {
            max_skew: spec.max_skew,
            require_nonce: if spec.require_nonce {
                NonceRule::Always
            } else {
                NonceRule::Optional
            },
            lenient_base64: spec.lenient_base64,
            additional_components: spec.additional_components.clone(),
        },
        token_leeway_secs: spec.token_leeway,
        // The vectors are a resource's view: auth tokens are callers.
        accept_auth_tokens: true,
    })
}

/// Verifies a case's request, with `@authority` from the verifier (P-SIG-5).
pub fn verify(
    spec: &VerifierSpec,
    request: &HttpRequest,
    now: u64,
    directory: &Directory,
) -> Result<std::result::Result<VerifiedRequest, Rejection>> {
    let config = config(spec)?;
    Ok(verify_request(
        &request.view(&config.authority),
        &config,
        directory,
        now,
    ))
}

/// The vector spelling of a level.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Pseudonymous => "pseudonymous",
        Level::Identified => "identified",
        Level::Authorized => "authorized",
    }
}

/// Fails when two case names repeat.
pub fn unique_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(VectorError(format!("case name {name} is used twice")));
        }
    }
    Ok(())
}
