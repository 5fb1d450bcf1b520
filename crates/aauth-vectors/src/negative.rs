//! `negative.json`: inputs that must be refused, each with exactly one
//! P-ERR-1 error code, and our description as informative `detail`.

use aauth_protocol::b64;
use aauth_protocol::content_digest::sha256_field;
use aauth_protocol::httpsig::SignatureValue;
use aauth_protocol::ids::{Kid, Label, Origin, OriginMode};
use aauth_protocol::jwk::PublicKey;
use aauth_protocol::signature_key::{SignatureKeyField, Syntax};
use aauth_protocol::tokens::agent_token::{self, AgentTokenContext};
use aauth_protocol::tokens::auth_token::{self, AuthTokenContext};
use aauth_protocol::tokens::resource_token::{self, ResourceTokenContext};
use aauth_protocol::tokens::{Audience, KeyLookupError};
use aauth_protocol::verify::{KeyDirectory, KeyOwner};
use serde_json::{Value, json};

use crate::build::{
    self, get, hmac_sha256, nonce, post, raw_jws, raw_jws_with_signature, request,
    resource_verifier, sign_custom, sign_with, unique_names,
};
use crate::schema::{
    AgentTokenContextSpec, AuthTokenContextSpec, HttpRequest, NegativeCase, NegativeInput,
    ResourceTokenContextSpec, VectorFile, VerifierSpec,
};
use crate::tokens::{self, now};
use crate::world::{
    AGENT, AGENT_KID, AUTH, AUTH_KID, Directory, NOW, RESOURCE, RESOURCE_AUTHORITY, RESOURCE_KID,
    World, kid, origin,
};
use crate::{Ctx, Report, Result, SCHEMA_VERSION, VectorError, ensure, parse_file};

/// The resource token shown in `agent-auth.json`'s challenges.
pub(crate) fn resource_token_for_challenge(world: &World) -> Result<String> {
    tokens::sign_resource(world, &tokens::resource_claims(world)?)
}

fn now_i64(now: u64) -> i64 {
    i64::try_from(now).unwrap_or(i64::MAX)
}

fn parse_origin(text: &str) -> Result<Origin> {
    Origin::parse(text, OriginMode::Production).ctx("origin")
}

/// Runs a negative input: `None` when accepted, else (code, detail).
fn outcome(
    input: &NegativeInput,
    now: u64,
    directory: &Directory,
) -> Result<Option<(String, String)>> {
    let lookup = |owner: KeyOwner| {
        move |iss: &Origin, kid: &Kid| -> std::result::Result<PublicKey, KeyLookupError> {
            directory.key(owner, iss, kid)
        }
    };
    let refused = |condition: aauth_protocol::error::Condition, detail: String| {
        Some((condition.wire().code.as_str().to_owned(), detail))
    };
    Ok(match input {
        NegativeInput::Request { verifier, request } => {
            match build::verify(verifier, request, now, directory)? {
                Ok(_) => None,
                Err(rejection) => refused(rejection.error.condition(), rejection.error.to_string()),
            }
        }
        NegativeInput::ResourceToken { context, token } => {
            let auth_server = parse_origin(&context.auth_server)?;
            let agent = parse_origin(&context.agent)?;
            let agent_key = PublicKey::from_json_value(&context.agent_key).ctx("agent_key")?;
            let ctx = ResourceTokenContext::new(now_i64(now), &auth_server, &agent, &agent_key);
            match resource_token::validate(token, &ctx, &lookup(KeyOwner::Resource)) {
                Ok(_) => None,
                Err(e) => refused(e.condition(), e.to_string()),
            }
        }
        NegativeInput::AgentToken { context, token } => {
            let recipient = parse_origin(&context.recipient)?;
            let ctx = AgentTokenContext::new(now_i64(now), &recipient);
            match agent_token::validate(token, &ctx, &lookup(KeyOwner::Agent)) {
                Ok(_) => None,
                Err(e) => refused(e.condition(), e.to_string()),
            }
        }
        NegativeInput::AuthToken { context, token } => {
            let audience = parse_origin(&context.audience)?;
            let trusted = context
                .trusted_auth_servers
                .iter()
                .map(|t| parse_origin(t))
                .collect::<Result<Vec<_>>>()?;
            let ctx = AuthTokenContext::new(now_i64(now), &trusted, &audience);
            match auth_token::validate(token, &ctx, &lookup(KeyOwner::AuthServer)) {
                Ok(_) => None,
                Err(e) => refused(e.condition(), e.to_string()),
            }
        }
    })
}

fn run(c: &NegativeCase, directory: &Directory) -> Result<()> {
    match outcome(&c.input, c.now, directory)? {
        None => Err(VectorError(format!("accepted, expected {}", c.error))),
        Some((code, detail)) => ensure(code == c.error && detail == c.detail, || {
            format!("refused with {code} ({detail})")
        }),
    }
}

struct Gen<'a> {
    world: &'a World,
    directory: Directory,
    cases: Vec<NegativeCase>,
}

impl Gen<'_> {
    fn add(
        &mut self,
        name: &str,
        description: &str,
        input: NegativeInput,
        error: &str,
    ) -> Result<()> {
        let detail = match outcome(&input, NOW, &self.directory).ctx(name)? {
            None => return Err(VectorError(format!("{name}: accepted, expected {error}"))),
            Some((code, detail)) => {
                ensure(code == error, || {
                    format!("{name}: refused with {code} ({detail}), expected {error}")
                })?;
                detail
            }
        };
        self.cases.push(NegativeCase {
            name: name.into(),
            description: description.into(),
            now: NOW,
            input,
            error: error.into(),
            detail,
        });
        Ok(())
    }

    fn req(
        &mut self,
        name: &str,
        description: &str,
        request: HttpRequest,
        error: &str,
    ) -> Result<()> {
        self.req_with(name, description, resource_verifier(), request, error)
    }

    fn req_with(
        &mut self,
        name: &str,
        description: &str,
        verifier: VerifierSpec,
        request: HttpRequest,
        error: &str,
    ) -> Result<()> {
        self.add(
            name,
            description,
            NegativeInput::Request { verifier, request },
            error,
        )
    }

    fn rt(
        &mut self,
        name: &str,
        description: &str,
        token: String,
        agent_key: &PublicKey,
        agent: &str,
        error: &str,
    ) -> Result<()> {
        let context = ResourceTokenContextSpec {
            auth_server: AUTH.into(),
            agent: agent.into(),
            agent_key: agent_key.to_json_value(),
        };
        self.add(
            name,
            description,
            NegativeInput::ResourceToken { context, token },
            error,
        )
    }

    fn agent_token(&mut self, name: &str, description: &str, token: String) -> Result<()> {
        let context = AgentTokenContextSpec {
            recipient: RESOURCE.into(),
        };
        self.add(
            name,
            description,
            NegativeInput::AgentToken { context, token },
            "invalid_agent_token",
        )
    }

    fn auth_token(&mut self, name: &str, description: &str, token: String) -> Result<()> {
        let context = AuthTokenContextSpec {
            audience: RESOURCE.into(),
            trusted_auth_servers: vec![AUTH.into()],
        };
        self.add(
            name,
            description,
            NegativeInput::AuthToken { context, token },
            "invalid_auth_token",
        )
    }

    fn hwk(&self) -> Result<String> {
        SignatureKeyField::hwk(Label::sig(), self.world.delegate.public())
            .to_header_value(Syntax::Sk0)
            .ctx("hwk")
    }

    /// A GET signed by the delegate with `signature_key`.
    fn get_with(&self, signature_key: &str) -> Result<HttpRequest> {
        build::sign_simple(&get(), signature_key, &self.world.delegate.key, NOW, None)
    }

    /// A request carrying `Signature-Key` (hwk) and a custom `Signature-Input`.
    fn custom(&self, unsigned: &HttpRequest, input: &str) -> Result<HttpRequest> {
        let with_sk = unsigned.clone().push("Signature-Key", &self.hwk()?);
        Ok(sign_custom(
            &with_sk,
            RESOURCE_AUTHORITY,
            input,
            &self.world.delegate.key,
        )?
        .0)
    }

    /// A request with a `Signature-Input` the profile cannot even read, and
    /// a well-formed signature over something else.
    fn unreadable_input(&self, input: &str) -> Result<HttpRequest> {
        let signature = self.world.delegate.key.sign(b"unused").ctx("signing")?;
        Ok(get()
            .push("Signature-Key", &self.hwk()?)
            .push("Signature-Input", input)
            .push(
                "Signature",
                &format!("sig=:{}:", b64::std_encode(signature)),
            ))
    }
}

fn token_header(typ: &str, kid: &str) -> Value {
    json!({"alg": "EdDSA", "typ": typ, "kid": kid})
}

/// Sets a claim of a JSON payload.
fn set(payload: &mut Value, name: &str, value: Value) {
    if let Some(object) = payload.as_object_mut() {
        object.insert(name.into(), value);
    }
}

/// Removes a claim from a JSON payload.
fn remove(payload: &mut Value, name: &str) {
    if let Some(object) = payload.as_object_mut() {
        object.shift_remove(name);
    }
}

fn jwt_key(token: &str) -> String {
    format!(r#"sig=jwt;jwt="{token}""#)
}

fn jwe(typ: &str) -> String {
    let header = b64::url_encode(
        json!({"alg": "ECDH-ES", "enc": "A256GCM", "typ": typ, "kid": AUTH_KID}).to_string(),
    );
    let parts = [
        "",
        "aXYtOTYtYml0cw",
        "Y2lwaGVydGV4dA",
        "dGFnLTEyOC1iaXRzLS0",
    ];
    format!("{header}.{}", parts.join("."))
}

#[expect(clippy::too_many_lines, reason = "one line of data per case")]
pub(crate) fn generate(world: &World) -> Result<VectorFile<NegativeCase>> {
    let mut g = Gen {
        world,
        directory: Directory::new(&world.directory_file()?),
        cases: Vec::new(),
    };
    let sig = "invalid_signature";
    let d = &world.delegate.key;
    let hwk = g.hwk()?;
    let sg = g.get_with(&hwk)?;
    let n1 = nonce(1);
    let sp = build::sign_simple(&post(), &hwk, d, NOW, Some(&n1))?;
    let cov = |components: &str| format!("sig=({components});created={NOW}");

    // --- Signature headers and labels (E§10.1.1) ---------------------------
    g.req(
        "unsigned",
        "D§10.1 / P-ERR-1: a request without any signature header",
        get(),
        sig,
    )?;
    g.req(
        "signature-key-missing",
        "E§10: \"All AAuth requests MUST include the Signature-Key header\"",
        sg.clone().without("Signature-Key"),
        sig,
    )?;
    g.req(
        "signature-input-missing",
        "E§10.1.1 step 4: Signature-Input is required",
        sg.clone().without("Signature-Input"),
        sig,
    )?;
    g.req(
        "signature-missing",
        "E§10.1.1 step 5: Signature is required",
        sg.clone().without("Signature"),
        sig,
    )?;
    let other_label = g.custom(
        &get(),
        &format!(r#"other=("@method" "@authority" "@path" "signature-key");created={NOW}"#),
    )?;
    g.req(
        "label-mismatch-signature-input",
        "E§10.1.1 step 6 / P-SIG-3: Signature-Input's label differs from Signature-Key's",
        other_label,
        sig,
    )?;
    let sig_value = sg
        .header("signature")
        .ctx("Signature")?
        .replacen("sig=", "sig2=", 1);
    g.req(
        "label-mismatch-signature",
        "E§10.1.1 step 6 / P-SIG-3: Signature's label differs from the other two",
        sg.clone().with("Signature", &sig_value),
        sig,
    )?;
    g.req("several-signatures", "E§10.1.1 step 4: exactly one label in Signature-Input (a second field line adds a second member)", sg.clone().push("Signature-Input", &format!(r#"sig2=("@method");created={NOW}"#)), sig)?;
    let two =
        format!(r#"{hwk}, sig2=jwks_uri;id="{AGENT}";well-known="aauth-agent";kid="{AGENT_KID}""#);
    g.req(
        "signature-key-two-members",
        "E§10.1.1 step 2: exactly one Signature-Key member",
        sg.clone().with("Signature-Key", &two),
        sig,
    )?;

    // --- Covered components (E§10.3, P-SIG-1, P-SIG-8) ----------------------
    g.req(
        "missing-component-signature-key",
        "E§10: \"signature-key MUST always be a covered component\"",
        g.custom(&get(), &cov(r#""@method" "@authority" "@path""#))?,
        sig,
    )?;
    g.req(
        "missing-component-authority",
        "E§10.3: @authority MUST be covered",
        g.custom(&get(), &cov(r#""@method" "@path" "signature-key""#))?,
        sig,
    )?;
    let q = request("GET", "/data?page=2", &[], None);
    g.req(
        "missing-component-query",
        "E§10.3: @query MUST be covered when the target has a query",
        g.custom(
            &q,
            &cov(r#""@method" "@authority" "@path" "signature-key""#),
        )?,
        sig,
    )?;
    let body_req = post().with("Content-Digest", &sha256_field(br#"{"hello": "world"}"#));
    g.req(
        "missing-component-content-digest",
        "E§10.3: content-digest MUST be covered when there is a body",
        g.custom(
            &body_req,
            &cov(r#""@method" "@authority" "@path" "@query" "content-type" "signature-key""#),
        )?,
        sig,
    )?;
    let with_nonce = get().push("Nonce", &n1);
    g.req(
        "missing-component-nonce",
        "E§10.5: a Nonce header present MUST be covered",
        g.custom(
            &with_nonce,
            &cov(r#""@method" "@authority" "@path" "signature-key""#),
        )?,
        sig,
    )?;
    let mut no_q = g.custom(
        &request("GET", "/data?", &[], None),
        &cov(r#""@method" "@authority" "@path" "@query" "signature-key""#),
    )?;
    no_q.target = "/data".into();
    g.req("query-covered-without-query", "E§10.3: \"@query MUST NOT be included when no query string is present\" (signed for /data?, received as /data)", no_q, sig)?;
    let mut no_body = g.custom(&body_req, &cov(r#""@method" "@authority" "@path" "@query" "content-type" "content-digest" "signature-key""#))?;
    no_body.body = None;
    g.req(
        "body-components-without-body",
        "E§10.3: \"Body-related components MUST NOT be included when there is no body\"",
        no_body,
        sig,
    )?;
    g.req("unknown-component-query-param", "P-SIG-8: @query-param is outside the profile and refused", g.unreadable_input(&format!(r#"sig=("@method" "@authority" "@path" "@query-param";name="a" "signature-key");created={NOW}"#))?, sig)?;
    g.req(
        "duplicate-component",
        "RFC 9421 §2.5: a component listed twice",
        g.unreadable_input(&format!(
            r#"sig=("@method" "@method" "@authority" "@path" "signature-key");created={NOW}"#
        ))?,
        sig,
    )?;
    let extra = VerifierSpec {
        additional_components: vec!["x-request-id".into()],
        ..resource_verifier()
    };
    let id_req = build::sign_simple(&get().push("X-Request-Id", "req-0001"), &hwk, d, NOW, None)?;
    g.req_with(
        "additional-component-missing",
        "D§10.3 / P-SIG-1: a resource's additional_signature_components are required",
        extra,
        id_req,
        sig,
    )?;

    // --- created / expires (E§10.4, P-SIG-2) --------------------------------
    g.req(
        "created-too-old",
        "E§10.4: created more than 60 s before now",
        build::sign_simple(&get(), &hwk, d, NOW - 61, None)?,
        sig,
    )?;
    g.req(
        "created-in-future",
        "E§10.4: created more than 60 s after now",
        build::sign_simple(&get(), &hwk, d, NOW + 61, None)?,
        sig,
    )?;
    g.req(
        "created-missing",
        "E§10.4: \"The Signature-Input header MUST include: created\"",
        g.custom(
            &get(),
            r#"sig=("@method" "@authority" "@path" "signature-key")"#,
        )?,
        sig,
    )?;
    g.req(
        "expires-passed",
        "P-SIG-2 / RFC 9421 §2.3: expires honoured (now >= expires is refused)",
        g.custom(
            &get(),
            &format!(
                r#"sig=("@method" "@authority" "@path" "signature-key");created={};expires={NOW}"#,
                NOW - 10
            ),
        )?,
        sig,
    )?;

    // --- Tampering (the signature covers it) --------------------------------
    let mut m = sg.clone();
    m.method = "DELETE".into();
    g.req(
        "tampered-method",
        "RFC 9421 §2.2.1: @method is covered (signed GET, received DELETE)",
        m,
        sig,
    )?;
    let (other_authority, _) = sign_with(&get(), "other.example", &hwk, d, NOW, None, "sig")?;
    g.req("tampered-authority", "E§10.3.1 / P-SIG-5: signed for other.example; the verifier uses its configured authority resource.example, never Host", other_authority, sig)?;
    let mut p = sg.clone();
    p.target = "/admin".into();
    g.req(
        "tampered-path",
        "@path is covered (signed /data, received /admin)",
        p,
        sig,
    )?;
    let mut tq = build::sign_simple(
        &request("GET", "/data?page=2", &[], None),
        &hwk,
        d,
        NOW,
        None,
    )?;
    tq.target = "/data?page=3".into();
    g.req(
        "tampered-query",
        "@query is covered (signed ?page=2, received ?page=3)",
        tq,
        sig,
    )?;
    let mut tb = sp.clone();
    tb.body = Some(r#"{"hello": "world!"}"#.into());
    g.req(
        "tampered-body",
        "P-SIG-1: the Content-Digest is checked against the received body",
        tb.clone(),
        sig,
    )?;
    let tbd = tb.with("Content-Digest", &sha256_field(br#"{"hello": "world!"}"#));
    g.req(
        "tampered-body-and-digest",
        "content-digest is covered: a body with a recomputed digest breaks the signature",
        tbd,
        sig,
    )?;
    let attacker_hwk = SignatureKeyField::hwk(Label::sig(), world.attacker.public())
        .to_header_value(Syntax::Sk0)
        .ctx("hwk")?;
    g.req(
        "tampered-signature-key",
        "signature-key is covered: swapping in another hwk key breaks the signature",
        sg.clone().with("Signature-Key", &attacker_hwk),
        sig,
    )?;
    let value =
        SignatureValue::parse(sg.header("signature").ctx("Signature")?, false).ctx("Signature")?;
    let mut bytes = value.bytes().to_vec();
    if let Some(first) = bytes.first_mut() {
        *first ^= 0x01;
    }
    g.req(
        "tampered-signature",
        "a signature with one bit flipped does not verify",
        sg.clone()
            .with("Signature", &format!("sig=:{}:", b64::std_encode(&bytes))),
        sig,
    )?;

    // --- alg and encodings (P-SIG-2, P-SIG-4, P-SIG-7) -----------------------
    g.req("alg-key-mismatch", "SK0§3.4 / P-SIG-2: alg=ecdsa-p256-sha256 with an Ed25519 key", g.custom(&get(), &format!(r#"sig=("@method" "@authority" "@path" "signature-key");created={NOW};alg="ecdsa-p256-sha256""#))?, sig)?;
    g.req("signature-parameter-repeated", "P-SIG-2: a repeated signature parameter is refused: RFC 8941 keeps the last, so @signature-params could not be rebuilt as received", sg.clone().with("Signature-Input", &format!(r#"sig=("@method" "@authority" "@path" "signature-key");created={};created={NOW}"#, NOW - 5)), sig)?;
    g.req("alg-unsupported", "P-SIG-4: only ed25519 and ecdsa-p256-sha256", g.custom(&get(), &format!(r#"sig=("@method" "@authority" "@path" "signature-key");created={NOW};alg="rsa-pss-sha512""#))?, sig)?;
    g.req("signature-unpadded-strict", "P-SIG-7: lenient_base64 off: standard base64 without its padding is refused, although RFC 8941 §4.2.7 lets parsers accept it (accepted in requests.json with the switch on)", sg.clone().with("Signature", &format!("sig=:{}:", b64::std_encode(value.bytes()).trim_end_matches('='))), sig)?;
    g.req("signature-base64url-strict", "P-SIG-7: lenient_base64 off: an unpadded base64url Signature is refused (accepted in requests.json with it on)", sg.clone().with("Signature", &format!("sig=:{}:", b64::url_encode(value.bytes()))), sig)?;
    g.req(
        "signature-not-byte-sequence",
        "RFC 9421 §4.2: the Signature member is a byte sequence",
        sg.clone().with(
            "Signature",
            &format!("sig=\"{}\"", b64::std_encode(value.bytes())),
        ),
        sig,
    )?;
    g.req(
        "signature-wrong-length",
        "Ed25519 signatures are 64 bytes",
        sg.clone().with(
            "Signature",
            &format!("sig=:{}:", b64::std_encode([7u8; 32])),
        ),
        sig,
    )?;

    // --- Nonce (E§10.5, P-SIG-6) ----------------------------------------------
    let nonce_verifier = VerifierSpec {
        require_nonce: true,
        ..resource_verifier()
    };
    g.req_with(
        "nonce-required-missing",
        "P-SIG-6: the endpoint requires a Nonce",
        nonce_verifier,
        build::sign_simple(&post(), &hwk, d, NOW, None)?,
        sig,
    )?;
    let short = get().push("Nonce", &b64::url_encode(b"8 bytes!"));
    g.req(
        "nonce-too-short",
        "E§10.5: at least 96 bits of entropy (this one has 64)",
        g.custom(
            &short,
            &cov(r#""@method" "@authority" "@path" "nonce" "signature-key""#),
        )?,
        sig,
    )?;
    let bad = get().push("Nonce", "dmVjdG9yLW5vbmNlLTAwMQ==");
    g.req(
        "nonce-not-base64url",
        "E§10.5: the Nonce is base64url without padding",
        g.custom(
            &bad,
            &cov(r#""@method" "@authority" "@path" "nonce" "signature-key""#),
        )?,
        sig,
    )?;

    // --- Content-Digest (P-SIG-1) ---------------------------------------------
    g.req(
        "content-digest-missing",
        "P-SIG-1: a body needs its Content-Digest",
        sp.clone().without("Content-Digest"),
        sig,
    )?;
    let md5 = post().with("Content-Digest", "md5=:sQqNsWTgdUEFt6mb5y4/5Q==:");
    g.req("content-digest-no-supported-algorithm", "P-SIG-1: sha-256 or sha-512 required", g.custom(&md5, &cov(r#""@method" "@authority" "@path" "@query" "content-type" "content-digest" "signature-key""#))?, sig)?;

    // --- Signature-Key schemes (SK0, P-SK-2..5) -------------------------------
    let a = &world.agent_server.key;
    let jwks = |wk: &str, id: &str, k: &str| {
        format!(r#"sig=jwks_uri;id="{id}";well-known="{wk}";kid="{k}""#)
    };
    g.req(
        "jwks-uri-well-known-not-agent",
        "P-SK-3: only well-known=\"aauth-agent\" establishes agent identity",
        build::sign_simple(
            &get(),
            &jwks("aauth-resource", RESOURCE, RESOURCE_KID),
            &world.resource.key,
            NOW,
            None,
        )?,
        sig,
    )?;
    g.req(
        "jwks-uri-unknown-kid",
        "SK0§2.4: the kid is not in the agent server's JWKS",
        build::sign_simple(
            &get(),
            &jwks("aauth-agent", AGENT, "agent-key-2"),
            a,
            NOW,
            None,
        )?,
        sig,
    )?;
    g.req(
        "jwks-uri-unknown-agent",
        "SK0§2.4: the agent's metadata cannot be fetched (not in directory.json)",
        build::sign_simple(
            &get(),
            &jwks("aauth-agent", "https://unknown.example", AGENT_KID),
            a,
            NOW,
            None,
        )?,
        sig,
    )?;
    g.req(
        "jwks-uri-id-not-origin",
        "P-MD-1: the id is a bare origin (no trailing slash)",
        build::sign_simple(
            &get(),
            &jwks("aauth-agent", "https://agent.example/", AGENT_KID),
            a,
            NOW,
            None,
        )?,
        sig,
    )?;
    g.req(
        "jwks-uri-signed-by-other-key",
        "E§10.7: the signature must verify with the published key (signed by the delegate instead)",
        build::sign_simple(&get(), &jwks("aauth-agent", AGENT, AGENT_KID), d, NOW, None)?,
        sig,
    )?;
    g.req("x509-unsupported", "P-SK-5: x509 is parsed and refused as unsupported", g.get_with(r#"sig=x509;x5u="https://agent.example/chain.pem";x5t="bWNmZjFkNjQ1ZDc2ZjBiMWM1ZDk2ZWE0NjM0NDk3ZjE""#)?, sig)?;
    g.req(
        "direct-jwks-url",
        "P-SK-2: the explainer's direct mode jwks=\"<url>\" is refused",
        g.get_with(&format!(
            r#"sig=(scheme=jwks jwks="{AGENT}/jwks.json" kid="{AGENT_KID}")"#
        ))?,
        sig,
    )?;
    g.req("dwk-and-well-known", "P-SK-2: dwk and well-known both present", g.get_with(&format!(r#"sig=jwks_uri;id="{AGENT}";well-known="aauth-agent";dwk="aauth-agent";kid="{AGENT_KID}""#))?, sig)?;
    g.req(
        "hwk-with-alg",
        "SK0§2.3: hwk MUST NOT carry alg",
        g.get_with(&format!(r#"{hwk};alg="ed25519""#))?,
        sig,
    )?;

    // --- jwt: tokens in Signature-Key (E§5.7, E§7.7, P-SK-4, P-TOK-*) ---------
    let agent_claims = tokens::agent_claims(world)?;
    let agent_payload = serde_json::to_value(&agent_claims).ctx("claims")?;
    let auth_claims = tokens::auth_claims(world)?;
    let auth_payload = serde_json::to_value(&auth_claims).ctx("claims")?;
    let rt = resource_token_for_challenge(world)?;
    let x = b64::url_decode(
        world
            .agent_server
            .public()
            .to_members()
            .x
            .unwrap_or_default()
            .as_str(),
    )
    .ctx("x")?;
    let none_header = json!({"alg": "none", "typ": "agent+jwt", "kid": AGENT_KID});
    let alg_none = raw_jws_with_signature(&none_header, &agent_payload, &[])?;
    let hs_header = json!({"alg": "HS256", "typ": "agent+jwt", "kid": AGENT_KID});
    let hs_input = format!(
        "{}.{}",
        b64::url_encode(hs_header.to_string()),
        b64::url_encode(agent_payload.to_string())
    );
    let hs256 = format!(
        "{hs_input}.{}",
        b64::url_encode(hmac_sha256(&x, hs_input.as_bytes()))
    );
    let jwt_typ = raw_jws(&token_header("JWT", AGENT_KID), &agent_payload, a)?;

    g.req(
        "resource-token-as-signature-key",
        "P-ERR-1: a resource token presented as the jwt of Signature-Key is an invalid auth token",
        g.get_with(&jwt_key(&rt))?,
        "invalid_auth_token",
    )?;
    g.req("jwt-jwe-auth-token", "P-TOK-4: encrypted (JWE) auth tokens are not supported; its header declares auth+jwt, so it is an invalid auth token (P-ERR-1)", g.get_with(&jwt_key(&jwe("auth+jwt")))?, "invalid_auth_token")?;
    g.req("jwt-alg-none", "P-TOK-1: alg none fails to parse; its header declares agent+jwt, so it is an invalid agent token (P-ERR-1)", g.get_with(&jwt_key(&alg_none))?, "invalid_agent_token")?;
    g.req("jwt-hs256", "P-TOK-1: HS256 (here keyed with the agent server's public key, the classic confusion attack) fails to parse; an invalid agent token by its declared typ", g.get_with(&jwt_key(&hs256))?, "invalid_agent_token")?;
    g.req(
        "jwt-unknown-typ",
        "P-SK-4: a jwt whose typ is neither agent+jwt nor auth+jwt cannot be validated by its type: the Signature-Key value is malformed",
        g.get_with(&jwt_key(&jwt_typ))?,
        sig,
    )?;

    let agent_sig = |claims: &aauth_protocol::tokens::agent_token::AgentTokenClaims| {
        tokens::sign_agent(world, claims)
    };
    let mut c = agent_claims.clone();
    c.exp = now() - 1;
    c.iat = Some(now() - 3601);
    g.req(
        "agent-token-expired",
        "E§5.7 step 8 / P-TOK-5: now >= exp is refused (no leeway by default)",
        g.get_with(&jwt_key(&agent_sig(&c)?))?,
        "invalid_agent_token",
    )?;
    let no_kid = raw_jws(
        &json!({"alg": "EdDSA", "typ": "agent+jwt"}),
        &agent_payload,
        a,
    )?;
    g.req(
        "agent-token-missing-kid",
        "E§5.7 step 3 / P-TOK-1: kid required",
        g.get_with(&jwt_key(&no_kid))?,
        "invalid_agent_token",
    )?;
    let mut c = agent_claims.clone();
    c.aud = Some(Audience::One("https://other.example".into()));
    g.req(
        "agent-token-wrong-aud",
        "E§5.7 step 10: aud present and not naming the recipient",
        g.get_with(&jwt_key(&agent_sig(&c)?))?,
        "invalid_agent_token",
    )?;
    let forged = raw_jws(
        &token_header("agent+jwt", AGENT_KID),
        &agent_payload,
        &world.attacker.key,
    )?;
    g.req(
        "agent-token-bad-signature",
        "E§5.7 step 7: signed by a key other than the agent server's agent-key-1",
        g.get_with(&jwt_key(&forged))?,
        "invalid_agent_token",
    )?;
    let mut p = agent_payload.clone();
    set(&mut p, "iss", json!("https://agent.example/"));
    g.req(
        "agent-token-iss-not-origin",
        "E§5.3 / P-MD-1: iss must be a bare https origin",
        g.get_with(&jwt_key(&raw_jws(
            &token_header("agent+jwt", AGENT_KID),
            &p,
            a,
        )?))?,
        "invalid_agent_token",
    )?;
    let other_kid = agent_claims.sign(a, &kid("agent-key-2")?).ctx("token")?;
    g.req(
        "agent-token-unknown-kid",
        "E§5.7 steps 5-6 / P-ERR-1: the key fetch failing is an invalid agent token",
        g.get_with(&jwt_key(&other_kid))?,
        "invalid_agent_token",
    )?;
    let mut c = agent_claims.clone();
    c.iat = Some(now() + 120);
    g.req(
        "agent-token-iat-in-future",
        "P-TOK-5: iat at most 60 s in the future",
        g.get_with(&jwt_key(&agent_sig(&c)?))?,
        "invalid_agent_token",
    )?;
    let mut p = agent_payload.clone();
    remove(&mut p, "sub");
    g.req(
        "agent-token-missing-sub",
        "E§5.7 step 9: sub (the delegate) required",
        g.get_with(&jwt_key(&raw_jws(
            &token_header("agent+jwt", AGENT_KID),
            &p,
            a,
        )?))?,
        "invalid_agent_token",
    )?;
    let mut p = agent_payload.clone();
    remove(&mut p, "cnf");
    g.req(
        "agent-token-missing-cnf",
        "E§5.7 step 11: cnf.jwk required",
        g.get_with(&jwt_key(&raw_jws(
            &token_header("agent+jwt", AGENT_KID),
            &p,
            a,
        )?))?,
        "invalid_agent_token",
    )?;
    let agent_token = agent_sig(&agent_claims)?;
    let by_attacker = build::sign_simple(
        &get(),
        &jwt_key(&agent_token),
        &world.attacker.key,
        NOW,
        None,
    )?;
    g.req("agent-token-cnf-mismatch", "E§5.7 step 12 / P-SK-4: the request is signed by a key other than the agent token's cnf.jwk", by_attacker, "key_binding_failed")?;

    let auth_sig = |claims: &aauth_protocol::tokens::auth_token::AuthTokenClaims| {
        tokens::sign_auth(world, claims)
    };
    let auth_token = auth_sig(&auth_claims)?;
    let by_attacker = build::sign_simple(
        &get(),
        &jwt_key(&auth_token),
        &world.attacker.key,
        NOW,
        None,
    )?;
    g.req("auth-token-cnf-mismatch", "E§7.7 step 13 / P-SK-4: the request is signed by a key other than the auth token's cnf.jwk", by_attacker, "key_binding_failed")?;
    let mut c = auth_claims.clone();
    c.iss = origin("https://other-auth.example")?;
    let untrusted = c.sign(&world.attacker.key, &kid(AUTH_KID)?).ctx("token")?;
    g.req("auth-token-wrong-iss", "E§7.7 step 9 / P-TOK-6: iss is not the resource's auth server (refused before any key fetch)", g.get_with(&jwt_key(&untrusted))?, "invalid_auth_token")?;
    let none_trusted = VerifierSpec {
        trusted_auth_servers: Vec::new(),
        ..resource_verifier()
    };
    g.req_with(
        "auth-token-no-trusted-auth-server",
        "E§7.7 step 9: a verifier that trusts no auth server refuses every auth token",
        none_trusted,
        g.get_with(&jwt_key(&auth_token))?,
        "invalid_auth_token",
    )?;
    let mut c = auth_claims.clone();
    c.aud = Audience::One("https://other-resource.example".into());
    g.req(
        "auth-token-wrong-aud",
        "E§7.7 step 10: aud must name the resource",
        g.get_with(&jwt_key(&auth_sig(&c)?))?,
        "invalid_auth_token",
    )?;
    let mut c = auth_claims.clone();
    c.exp = now();
    c.iat = Some(now() - 600);
    c.nbf = c.iat;
    g.req(
        "auth-token-expired",
        "E§7.7 step 8 / P-TOK-5: now >= exp (exactly at exp) is refused",
        g.get_with(&jwt_key(&auth_sig(&c)?))?,
        "invalid_auth_token",
    )?;
    let forged = raw_jws(
        &token_header("auth+jwt", AUTH_KID),
        &auth_payload,
        &world.attacker.key,
    )?;
    g.req(
        "auth-token-bad-signature",
        "E§7.7 step 7: not signed by the auth server's key",
        g.get_with(&jwt_key(&forged))?,
        "invalid_auth_token",
    )?;
    let mut c = auth_claims.clone();
    c.nbf = Some(now() + 120);
    g.req(
        "auth-token-nbf-in-future",
        "P-TOK-5: nbf at most 60 s in the future",
        g.get_with(&jwt_key(&auth_sig(&c)?))?,
        "invalid_auth_token",
    )?;
    let mut c = auth_claims.clone();
    c.agent = None;
    g.req(
        "auth-token-missing-agent",
        "E§7.3 / P-TOK-4: agent is required unless the agent itself consumes the token (SSO)",
        g.get_with(&jwt_key(&auth_sig(&c)?))?,
        "invalid_auth_token",
    )?;

    // --- Tokens validated on their own ------------------------------------------
    g.agent_token(
        "agent-token-alone-alg-none",
        "E§5.7 step 1 / P-TOK-1: alg none",
        alg_none,
    )?;
    g.agent_token(
        "agent-token-alone-hs256",
        "E§5.7 step 1 / P-TOK-1: HS256",
        hs256,
    )?;
    g.agent_token(
        "agent-token-alone-typ-jwt",
        "E§5.7 step 2: typ must be agent+jwt",
        jwt_typ,
    )?;
    g.agent_token(
        "agent-token-alone-auth-token",
        "E§5.7 step 2: an auth token is not an agent token",
        auth_token.clone(),
    )?;
    g.auth_token(
        "auth-token-alone-jwe",
        "P-TOK-4: encrypted (JWE) auth tokens are not supported",
        jwe("auth+jwt"),
    )?;
    g.auth_token(
        "auth-token-alone-alg-none",
        "E§7.7 step 1 / P-TOK-1: alg none",
        raw_jws_with_signature(
            &json!({"alg": "none", "typ": "auth+jwt", "kid": AUTH_KID}),
            &auth_payload,
            &[],
        )?,
    )?;
    g.auth_token(
        "auth-token-alone-resource-token",
        "E§7.7 step 2 / P-ERR-1: a resource token presented as an auth token",
        rt.clone(),
    )?;
    g.auth_token(
        "auth-token-alone-missing-kid",
        "E§7.7 step 3: kid required",
        raw_jws(
            &json!({"alg": "EdDSA", "typ": "auth+jwt"}),
            &auth_payload,
            &world.auth.key,
        )?,
    )?;

    // --- Resource tokens at the auth server (E§6.5, P-TOK-3, P-TOK-7) -----------
    let rclaims = tokens::resource_claims(world)?;
    let rpayload = serde_json::to_value(&rclaims).ctx("claims")?;
    let rk = &world.resource.key;
    let dk = world.delegate.public();
    let inv = "invalid_resource_token";
    g.rt(
        "resource-token-agent-jkt-mismatch",
        "E§6.5 step 12: agent_jkt is not the thumbprint of the key that signed the request",
        rt.clone(),
        world.attacker.public(),
        AGENT,
        inv,
    )?;
    g.rt(
        "resource-token-agent-mismatch",
        "E§6.5 step 11: agent is not the requesting agent",
        rt.clone(),
        dk,
        "https://other-agent.example",
        inv,
    )?;
    let mut c = rclaims.clone();
    c.aud = Audience::One("https://other-auth.example".into());
    g.rt(
        "resource-token-wrong-aud",
        "E§6.5 step 10: aud is not this auth server",
        tokens::sign_resource(world, &c)?,
        dk,
        AGENT,
        inv,
    )?;
    let mut c = rclaims.clone();
    c.exp = now() - 1;
    c.iat = Some(now() - 301);
    g.rt(
        "resource-token-expired",
        "E§6.5 step 13 / P-TOK-5: now >= exp",
        tokens::sign_resource(world, &c)?,
        dk,
        AGENT,
        inv,
    )?;
    let header = token_header("resource+jwt", RESOURCE_KID);
    let mut p = rpayload.clone();
    remove(&mut p, "scope");
    set(
        &mut p,
        "auth_request_url",
        json!("https://resource.example/auth-request/1"),
    );
    g.rt(
        "resource-token-auth-request-url",
        "P-TOK-7: auth_request_url is not supported: 400 invalid_request",
        raw_jws(&header, &p, rk)?,
        dk,
        AGENT,
        "invalid_request",
    )?;
    let mut p = rpayload.clone();
    set(
        &mut p,
        "auth_request_url",
        json!("https://resource.example/auth-request/1"),
    );
    g.rt(
        "resource-token-scope-and-auth-request-url",
        "P-TOK-3: exactly one of scope and auth_request_url",
        raw_jws(&header, &p, rk)?,
        dk,
        AGENT,
        inv,
    )?;
    let mut p = rpayload.clone();
    remove(&mut p, "scope");
    g.rt(
        "resource-token-missing-scope",
        "P-TOK-3: neither scope nor auth_request_url",
        raw_jws(&header, &p, rk)?,
        dk,
        AGENT,
        inv,
    )?;
    g.rt(
        "resource-token-wrong-typ",
        "E§6.5 step 2: an auth+jwt is not a resource token",
        raw_jws(&token_header("auth+jwt", RESOURCE_KID), &rpayload, rk)?,
        dk,
        AGENT,
        inv,
    )?;
    g.rt(
        "resource-token-alg-none",
        "E§6.5 step 1 / P-TOK-1: alg none",
        raw_jws_with_signature(
            &json!({"alg": "none", "typ": "resource+jwt", "kid": RESOURCE_KID}),
            &rpayload,
            &[],
        )?,
        dk,
        AGENT,
        inv,
    )?;
    g.rt(
        "resource-token-missing-kid",
        "E§6.5 step 3: kid required",
        raw_jws(
            &json!({"alg": "EdDSA", "typ": "resource+jwt"}),
            &rpayload,
            rk,
        )?,
        dk,
        AGENT,
        inv,
    )?;
    g.rt(
        "resource-token-bad-signature",
        "E§6.5 step 9: not signed by the resource's key",
        raw_jws(&header, &rpayload, &world.attacker.key)?,
        dk,
        AGENT,
        inv,
    )?;
    g.rt(
        "resource-token-unknown-kid",
        "E§6.5 steps 5-8: the kid is not in the resource's JWKS",
        rclaims.sign(rk, &kid("resource-key-2")?).ctx("token")?,
        dk,
        AGENT,
        inv,
    )?;

    unique_names(g.cases.iter().map(|c| c.name.as_str()))?;
    Ok(VectorFile {
        description: "Inputs that must be refused, each with exactly one P-ERR-1 error code. kind request: verify like requests.json; kind resource_token: an auth server validating a resource token (E§6.5); kinds agent_token / auth_token: the token validated on its own (E§5.7 steps 1-11, E§7.7 steps 1-12). detail is our error_description: informative, not to be matched.".into(),
        version: SCHEMA_VERSION,
        cases: g.cases,
    })
}

pub(crate) fn check(contents: &str, directory: &Directory, report: &mut Report) -> Result<()> {
    let file: VectorFile<NegativeCase> = parse_file(contents)?;
    unique_names(file.cases.iter().map(|c| c.name.as_str()))?;
    for c in &file.cases {
        report.record("negative.json", &c.name, run(c, directory));
    }
    Ok(())
}
