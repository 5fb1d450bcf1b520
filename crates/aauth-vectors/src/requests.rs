//! `requests.json`: signed requests that verify, for every `Signature-Key`
//! scheme (E§10.7), with what verification establishes (P-CH-2).

use aauth_protocol::b64;
use aauth_protocol::httpsig::{SignatureValue, verify_signature};
use aauth_protocol::ids::Label;
use aauth_protocol::keys::{SigningKey, VerifyingKey};
use aauth_protocol::signature_key::{SignatureKeyField, Syntax};
use aauth_protocol::tokens::Audience;
use aauth_protocol::verify::VerifiedRequest;

use crate::build::{
    self, get, level_name, nonce, post, resource_verifier, sign_custom, sign_with, unique_names,
};
use crate::schema::{Expect, HttpRequest, RequestCase, VectorFile, VerifierSpec};
use crate::tokens::{self, AUTH_SCOPE};
use crate::world::{
    AGENT, AGENT_KID, DELEGATE_SUB, Directory, NOW, RESOURCE, RESOURCE_AUTHORITY, World, kid,
    origin,
};
use crate::{Ctx, Report, Result, SCHEMA_VERSION, VectorError, ensure, parse_file};

/// What a verified request established, in vector form.
pub(crate) fn expect_of(verified: &VerifiedRequest) -> Expect {
    Expect {
        level: level_name(verified.level()).into(),
        scheme: verified.scheme().as_str().into(),
        key_thumbprint: verified.thumbprint().as_str().into(),
        agent: verified.agent().map(|a| a.as_str().to_owned()),
        delegate: verified.delegate().map(str::to_owned),
        scope: verified
            .auth_token()
            .and_then(|t| t.scope())
            .map(ToString::to_string),
    }
}

/// Runs one positive case.
fn run(c: &RequestCase, directory: &Directory) -> Result<()> {
    match build::verify(&c.verifier, &c.request, c.now, directory)? {
        Ok(verified) => {
            let got = expect_of(&verified);
            ensure(got == c.expect, || format!("verified as {got:?}"))
        }
        Err(rejection) => Err(VectorError(format!(
            "refused: {} ({})",
            rejection.error.condition().wire().code,
            rejection.error
        ))),
    }
}

struct Gen<'a> {
    world: &'a World,
    directory: Directory,
    previous: Option<Vec<RequestCase>>,
    cases: Vec<RequestCase>,
}

fn expect(level: &str, scheme: &str, key: &SigningKey) -> Expect {
    Expect {
        level: level.into(),
        scheme: scheme.into(),
        key_thumbprint: key.public_key().thumbprint().as_str().into(),
        agent: None,
        delegate: None,
        scope: None,
    }
}

impl Gen<'_> {
    fn add(
        &mut self,
        name: &str,
        description: &str,
        verifier: VerifierSpec,
        request: HttpRequest,
        expect: Expect,
    ) -> Result<()> {
        let case = RequestCase {
            name: name.into(),
            description: description.into(),
            now: NOW,
            verifier,
            request,
            expect,
        };
        run(&case, &self.directory).ctx(name)?;
        self.cases.push(case);
        Ok(())
    }

    /// A P-256 signed request whose signature is the committed one when that
    /// still verifies over the recomputed base (P-SIG-4: signed once).
    fn p256(&self, name: &str, unsigned: &HttpRequest, nonce: Option<&str>) -> Result<HttpRequest> {
        let key = &self.world.p256.key;
        let sk = SignatureKeyField::hwk(Label::sig(), key.public_key())
            .to_header_value(Syntax::Sk0)
            .ctx("Signature-Key")?;
        let (mut request, signed) =
            sign_with(unsigned, RESOURCE_AUTHORITY, &sk, key, NOW, nonce, "sig")?;
        let committed = self
            .previous
            .as_ref()
            .and_then(|cases| cases.iter().find(|c| c.name == name))
            .and_then(|c| c.request.header("signature").map(str::to_owned));
        if let Some(old) = committed {
            let verifying = VerifyingKey::new(key.public_key()).ctx("p256")?;
            let still_valid = SignatureValue::parse(&old, false).is_ok_and(|value| {
                verify_signature(
                    signed.signature_base.as_bytes(),
                    value.bytes(),
                    None,
                    &verifying,
                )
                .is_ok()
            });
            if still_valid {
                request = request.with("Signature", &old);
            }
        }
        Ok(request)
    }
}

pub(crate) fn generate(
    world: &World,
    previous: &dyn Fn(&str) -> Option<String>,
) -> Result<VectorFile<RequestCase>> {
    let directory = Directory::new(&world.directory_file()?);
    let previous = previous("requests.json")
        .and_then(|text| serde_json::from_str::<VectorFile<RequestCase>>(&text).ok())
        .map(|f| f.cases);
    let mut g = Gen {
        world,
        directory,
        previous,
        cases: Vec::new(),
    };
    let delegate = &world.delegate.key;
    let agent_server = &world.agent_server.key;
    let v = resource_verifier;
    let hwk = SignatureKeyField::hwk(Label::sig(), delegate.public_key())
        .to_header_value(Syntax::Sk0)
        .ctx("hwk")?;
    let jwks = SignatureKeyField::jwks_uri(
        Label::sig(),
        &origin(AGENT)?,
        "aauth-agent",
        kid(AGENT_KID)?,
    )
    .to_header_value(Syntax::Sk0)
    .ctx("jwks_uri")?;
    let agent_token = tokens::sign_agent(world, &tokens::agent_claims(world)?)?;
    let agent_jwt = format!(r#"sig=jwt;jwt="{agent_token}""#);
    let auth_token = tokens::sign_auth(world, &tokens::auth_claims(world)?)?;
    let auth_jwt = format!(r#"sig=jwt;jwt="{auth_token}""#);
    let n1 = nonce(1);
    let sign = |unsigned: &HttpRequest, sk: &str, key: &SigningKey, nonce: Option<&str>| {
        build::sign_simple(unsigned, sk, key, NOW, nonce)
    };

    let pseudonymous = expect("pseudonymous", "hwk", delegate);
    let identified_server = Expect {
        agent: Some(AGENT.into()),
        ..expect("identified", "jwks_uri", agent_server)
    };
    let identified_delegate = Expect {
        agent: Some(AGENT.into()),
        delegate: Some(DELEGATE_SUB.into()),
        ..expect("identified", "jwt", delegate)
    };
    let authorized = Expect {
        agent: Some(AGENT.into()),
        delegate: Some(DELEGATE_SUB.into()),
        scope: Some(AUTH_SCOPE.into()),
        ..expect("authorized", "jwt", delegate)
    };

    g.add(
        "hwk-get",
        "E§10.7 hwk: the inline key verifies; pseudonymous (P-CH-2)",
        v(),
        sign(&get(), &hwk, delegate, None)?,
        pseudonymous.clone(),
    )?;
    g.add(
        "hwk-post-body-nonce",
        "E§10.7 hwk with @query, a body (Content-Digest) and a covered Nonce",
        v(),
        sign(&post(), &hwk, delegate, Some(&n1))?,
        pseudonymous.clone(),
    )?;
    g.add("jwks-uri-get", "E§10.7 jwks_uri / P-SK-3: the agent server signs as the agent; key via metadata → jwks_uri → kid; identified", v(), sign(&get(), &jwks, agent_server, None)?, identified_server.clone())?;
    g.add(
        "jwks-uri-post-body-nonce",
        "E§10.7 jwks_uri with query, body and nonce",
        v(),
        sign(&post(), &jwks, agent_server, Some(&n1))?,
        identified_server.clone(),
    )?;
    g.add("jwt-agent-token-get", "E§5.7 / P-SK-4: agent token validated with the agent server's key, request signed by its cnf.jwk; identified with the delegate", v(), sign(&get(), &agent_jwt, delegate, None)?, identified_delegate.clone())?;
    g.add(
        "jwt-agent-token-post-body-nonce",
        "E§5.7 agent token, with query, body and nonce",
        v(),
        sign(&post(), &agent_jwt, delegate, Some(&n1))?,
        identified_delegate.clone(),
    )?;
    g.add("jwt-auth-token-get", "E§7.7 / P-SK-4: auth token from the trusted auth server, request signed by its cnf.jwk; authorized with the token's scope", v(), sign(&get(), &auth_jwt, delegate, None)?, authorized.clone())?;
    g.add(
        "jwt-auth-token-post-body-nonce",
        "E§7.7 auth token, with query, body and nonce",
        v(),
        sign(&post(), &auth_jwt, delegate, Some(&n1))?,
        authorized.clone(),
    )?;

    let paren_hwk = SignatureKeyField::hwk(Label::sig(), delegate.public_key())
        .to_header_value(Syntax::Parenthesised)
        .ctx("hwk")?;
    g.add(
        "explainer-syntax-hwk",
        "P-SK-2: the explainer's parenthesised Signature-Key (E§10.1), covered as sent",
        v(),
        sign(&get(), &paren_hwk, delegate, None)?,
        pseudonymous.clone(),
    )?;
    let paren_jwks = format!(r#"sig=(scheme=jwks id="{AGENT}" kid="{AGENT_KID}")"#);
    g.add(
        "explainer-syntax-jwks-default-well-known",
        "P-SK-2: parenthesised jwks without well-known defaults to aauth-agent",
        v(),
        sign(&get(), &paren_jwks, agent_server, None)?,
        identified_server.clone(),
    )?;

    let other_label =
        SignatureKeyField::hwk(Label::new("agent-sig").ctx("label")?, delegate.public_key())
            .to_header_value(Syntax::Sk0)
            .ctx("hwk")?;
    let (labelled, _) = sign_with(
        &get(),
        RESOURCE_AUTHORITY,
        &other_label,
        delegate,
        NOW,
        None,
        "agent-sig",
    )?;
    g.add(
        "any-label",
        "P-SIG-3: any label is accepted when the three headers agree",
        v(),
        labelled,
        pseudonymous.clone(),
    )?;

    let signed = sign(&get(), &hwk, delegate, None)?;
    let std_value = signed.header("signature").ctx("Signature")?;
    let bytes = SignatureValue::parse(std_value, false).ctx("Signature")?;
    let url_value = format!("sig=:{}:", b64::url_encode(bytes.bytes()));
    let lenient = VerifierSpec {
        lenient_base64: true,
        ..v()
    };
    let unpadded_value = format!(
        "sig=:{}:",
        b64::std_encode(bytes.bytes()).trim_end_matches('=')
    );
    g.add("lenient-base64-accepts-base64url", "P-SIG-7: with lenient_base64 on, an unpadded base64url Signature (PyPI aauth 0.1.x-0.5) is accepted", lenient.clone(), signed.clone().with("Signature", &url_value), pseudonymous.clone())?;
    g.add(
        "lenient-base64-accepts-unpadded",
        "P-SIG-7: with lenient_base64 on, standard base64 without padding is accepted",
        lenient,
        signed.with("Signature", &unpadded_value),
        pseudonymous.clone(),
    )?;

    g.add(
        "created-at-past-skew-edge",
        "E§10.4 / P-SIG-2: created exactly max_skew (60 s) before now is accepted",
        v(),
        build::sign_simple(&get(), &hwk, delegate, NOW - 60, None)?,
        pseudonymous.clone(),
    )?;
    g.add(
        "created-at-future-skew-edge",
        "E§10.4 / P-SIG-2: created exactly max_skew (60 s) after now is accepted",
        v(),
        build::sign_simple(&get(), &hwk, delegate, NOW + 60, None)?,
        pseudonymous.clone(),
    )?;
    let nonce_verifier = VerifierSpec {
        require_nonce: true,
        ..v()
    };
    g.add(
        "required-nonce-present",
        "P-SIG-6: an endpoint that requires a Nonce accepts a covered one",
        nonce_verifier,
        sign(&post(), &hwk, delegate, Some(&n1))?,
        pseudonymous.clone(),
    )?;

    let extra = VerifierSpec {
        additional_components: vec!["x-request-id".into()],
        ..v()
    };
    let with_id = get()
        .push("X-Request-Id", "req-0001")
        .push("Signature-Key", &hwk);
    let (extra_req, _) = sign_custom(
        &with_id,
        RESOURCE_AUTHORITY,
        &format!(
            r#"sig=("@method" "@authority" "@path" "x-request-id" "signature-key");created={NOW}"#
        ),
        delegate,
    )?;
    g.add(
        "additional-component-covered",
        "D§10.3 / P-SIG-1: a resource's additional_signature_components covered, in any position",
        extra,
        extra_req,
        pseudonymous.clone(),
    )?;

    let body = r#"{"hello": "world"}"#;
    let sha512 = post().with("Content-Digest", "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:").push("Signature-Key", &hwk);
    let mut sha512 = sha512;
    sha512.body = Some(body.into());
    let (sha512_req, _) = sign_custom(
        &sha512,
        RESOURCE_AUTHORITY,
        &format!(
            r#"sig=("@method" "@authority" "@path" "@query" "content-type" "content-digest" "signature-key");created={NOW}"#
        ),
        delegate,
    )?;
    g.add(
        "content-digest-sha512",
        "P-SIG-1: a received sha-512 Content-Digest is accepted and checked",
        v(),
        sha512_req,
        pseudonymous.clone(),
    )?;

    let (expires_req, _) = sign_custom(
        &get().push("Signature-Key", &hwk),
        RESOURCE_AUTHORITY,
        &format!(
            r#"sig=("@method" "@authority" "@path" "signature-key");created={NOW};expires={}"#,
            NOW + 1
        ),
        delegate,
    )?;
    g.add(
        "expires-in-future",
        "P-SIG-2 / RFC 9421 §2.3: expires honoured; one second left is accepted",
        v(),
        expires_req,
        pseudonymous.clone(),
    )?;

    let mut aud_claims = tokens::agent_claims(world)?;
    aud_claims.aud = Some(Audience::Many(vec![
        "https://other.example".into(),
        RESOURCE.into(),
    ]));
    let aud_token = tokens::sign_agent(world, &aud_claims)?;
    g.add(
        "agent-token-aud-array",
        "E§5.7 step 10 / P-TOK-2: an aud array including the recipient is accepted",
        v(),
        sign(
            &get(),
            &format!(r#"sig=jwt;jwt="{aud_token}""#),
            delegate,
            None,
        )?,
        identified_delegate.clone(),
    )?;

    let mut late = tokens::auth_claims(world)?;
    late.exp = tokens::now() - 10;
    late.iat = Some(tokens::now() - 610);
    late.nbf = late.iat;
    let late_token = tokens::sign_auth(world, &late)?;
    let leeway = VerifierSpec {
        token_leeway: 30,
        ..v()
    };
    g.add(
        "auth-token-within-leeway",
        "P-TOK-5: a token 10 s past exp is accepted with a 30 s leeway",
        leeway,
        sign(
            &get(),
            &format!(r#"sig=jwt;jwt="{late_token}""#),
            delegate,
            None,
        )?,
        authorized.clone(),
    )?;

    let p256 = &world.p256.key;
    let p256_expect = expect("pseudonymous", "hwk", p256);
    let req = g.p256("p256-hwk-get", &get(), None)?;
    g.add("p256-hwk-get", "P-SIG-4: ecdsa-p256-sha256 with the RFC 9421 B.1.3 key (hwk); verify-only: signed once and committed, ECDSA being randomised", v(), req, p256_expect.clone())?;
    let req = g.p256("p256-hwk-post-body-nonce", &post(), Some(&n1))?;
    g.add(
        "p256-hwk-post-body-nonce",
        "P-SIG-4: P-256 with query, body and nonce; verify-only",
        v(),
        req,
        p256_expect,
    )?;

    unique_names(g.cases.iter().map(|c| c.name.as_str()))?;
    Ok(VectorFile {
        description: "Signed requests that verify (E§10.7): every Signature-Key scheme (hwk, jwks_uri, jwt with an agent token, jwt with an auth token), both Signature-Key syntaxes, P-256 verify-only cases. Verify each with the case's verifier and now, resolving keys through directory.json; expect gives the level and what it established.".into(),
        version: SCHEMA_VERSION,
        cases: g.cases,
    })
}

pub(crate) fn check(contents: &str, directory: &Directory, report: &mut Report) -> Result<()> {
    let file: VectorFile<RequestCase> = parse_file(contents)?;
    unique_names(file.cases.iter().map(|c| c.name.as_str()))?;
    for c in &file.cases {
        report.record("requests.json", &c.name, run(c, directory));
    }
    Ok(())
}
