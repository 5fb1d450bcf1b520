//! `signature-bases.json`: the signature base of every component
//! combination E§10.6 orders (profile: P-SIG-1, P-SIG-1a), and the
//! received parameter order kept in `@signature-params` (P-SIG-2).

use aauth_protocol::httpsig::{SignatureInput, VerifyPolicy, build_signature_base, prepare};
use aauth_protocol::ids::Label;
use aauth_protocol::keys::VerifyingKey;
use aauth_protocol::signature_key::{self, SignatureKey, SignatureKeyField};

use crate::build::{nonce, request, sign_custom, sign_with, unique_names};
use crate::schema::{BaseCase, HttpRequest, KeysFile, VectorFile};
use crate::world::{NOW, RESOURCE_AUTHORITY, World, signing_key};
use crate::{Ctx, Report, Result, SCHEMA_VERSION, VectorError, ensure, parse_file};

const BODY: &str = r#"{"name": "example", "value": 42}"#;

fn case_from(
    name: &str,
    description: &str,
    signed: HttpRequest,
    emitted_by_signer: bool,
    base: String,
) -> Result<BaseCase> {
    let input = SignatureInput::parse(signed.header("signature-input").ctx("Signature-Input")?)
        .ctx("Signature-Input")?;
    let mut request = signed.clone();
    request.authority = Some(RESOURCE_AUTHORITY.into());
    Ok(BaseCase {
        name: name.into(),
        description: description.into(),
        emitted_by_signer,
        created: input.created().ctx("created")?,
        nonce: signed.header("nonce").map(Into::into),
        components: input
            .components()
            .iter()
            .map(|c| c.name().to_owned())
            .collect(),
        request,
        signature_base: base,
    })
}

pub(crate) fn generate(world: &World) -> Result<VectorFile<BaseCase>> {
    let sk = SignatureKeyField::hwk(Label::sig(), world.delegate.public())
        .to_header_value(Default::default())
        .ctx("Signature-Key")?;
    let json = [("Content-Type", "application/json")];
    let combos: [(&str, &str, &str, Option<&str>, bool); 9] = [
        (
            "GET",
            "/data",
            "no query, no body, no nonce: @method @authority @path signature-key",
            None,
            false,
        ),
        (
            "GET",
            "/data?page=2&sort=name",
            "query: @query follows @path",
            None,
            false,
        ),
        (
            "POST",
            "/data",
            "body: content-type and content-digest follow @path (Content-Digest sha-256 emitted)",
            Some(BODY),
            false,
        ),
        (
            "POST",
            "/data?dry_run=1",
            "query and body",
            Some(BODY),
            false,
        ),
        (
            "DELETE",
            "/data/42",
            "nonce: nonce precedes signature-key (E§10.5)",
            None,
            true,
        ),
        (
            "DELETE",
            "/data/42?force=true",
            "query and nonce",
            None,
            true,
        ),
        ("POST", "/data", "body and nonce", Some(BODY), true),
        (
            "POST",
            "/data?async=1",
            "query, body and nonce: every conditional component",
            Some(BODY),
            true,
        ),
        (
            "GET",
            "/search?",
            "P-SIG-1: a target ending in ? has a query: @query is covered and its value is \"?\"",
            None,
            false,
        ),
    ];
    let mut cases = Vec::new();
    for (i, (method, target, what, body, with_nonce)) in combos.into_iter().enumerate() {
        let headers: &[(&str, &str)] = if body.is_some() { &json } else { &[] };
        let unsigned = request(method, target, headers, body);
        let n = u32::try_from(i).ctx("index")?;
        let nonce_value = with_nonce.then(|| nonce(100 + n));
        let (signed, out) = sign_with(
            &unsigned,
            RESOURCE_AUTHORITY,
            &sk,
            &world.delegate.key,
            NOW,
            nonce_value.as_deref(),
            "sig",
        )?;
        let q = if target.contains('?') { "q1" } else { "q0" };
        let b = if body.is_some() { "b1" } else { "b0" };
        let nn = if with_nonce { "n1" } else { "n0" };
        let name = if target.ends_with('?') {
            "empty-query".to_owned()
        } else {
            format!("{q}-{b}-{nn}")
        };
        cases.push(case_from(
            &name,
            &format!("P-SIG-1a / E§10.6 order, {what}; hwk by the RFC 8037 A.1 delegate key; byte-reproducible Ed25519 signature (P-SIG-4)"),
            signed,
            true,
            out.signature_base,
        )?);
    }
    // P-SIG-2: parameters other than `created`, in the order received.
    for (name, params, description) in [
        (
            "received-keyid-before-created",
            format!(r#";keyid="delegate-1";created={NOW}"#),
            "P-SIG-2: a verifier rebuilds @signature-params with the parameters in the order received (keyid before created), never in a fixed order",
        ),
        (
            "received-alg-expires-tag",
            format!(
                r#";alg="ed25519";tag="aauth";expires={};created={NOW}"#,
                NOW + 300
            ),
            "P-SIG-2: alg (agreeing with the key), tag and expires stay in @signature-params in the order received",
        ),
    ] {
        let unsigned = request("GET", "/data", &[], None).push("Signature-Key", &sk);
        let input = format!(r#"sig=("@method" "@authority" "@path" "signature-key"){params}"#);
        let (signed, base) =
            sign_custom(&unsigned, RESOURCE_AUTHORITY, &input, &world.delegate.key)?;
        cases.push(case_from(name, description, signed, false, base)?);
    }
    Ok(VectorFile {
        description: "Signature bases (RFC 9421 §2.5) of AAuth requests for every query × body × nonce combination in E§10.6's order (P-SIG-1a), signed with hwk by the RFC 8037 A.1 delegate key at created = now, plus received parameter orders (P-SIG-2). Each request is shown as sent, signature headers included.".into(),
        version: SCHEMA_VERSION,
        cases,
    })
}

fn check_case(c: &BaseCase, keys: &KeysFile) -> Result<()> {
    let authority = c.request.authority.as_deref().ctx("request.authority")?;
    let view = c.request.view(authority);
    let input = SignatureInput::parse(c.request.header("signature-input").ctx("Signature-Input")?)
        .ctx("Signature-Input")?;
    let base = build_signature_base(&view, &input).ctx("base")?;
    ensure(base == c.signature_base, || {
        format!("signature base is\n{base}")
    })?;
    let names: Vec<&str> = input.components().iter().map(|c| c.name()).collect();
    ensure(names == c.components, || {
        format!("components are {names:?}")
    })?;
    ensure(input.created() == Some(c.created), || {
        "created differs".into()
    })?;
    ensure(c.request.header("nonce") == c.nonce.as_deref(), || {
        "nonce differs".into()
    })?;

    // The AAuth verifier accepts it at `created`, with the hwk key.
    let field = signature_key::parse(c.request.header("signature-key").ctx("Signature-Key")?)
        .ctx("Signature-Key")?;
    let SignatureKey::Hwk(key) = &field.key else {
        return Err(VectorError("Signature-Key is not hwk".into()));
    };
    let prepared =
        prepare(&view, &field.label, &VerifyPolicy::default(), c.created).ctx("prepare")?;
    ensure(prepared.signature_base() == c.signature_base, || {
        "prepare computed another base".into()
    })?;
    prepared
        .verify(&VerifyingKey::new(key).ctx("key")?)
        .ctx("signature")?;

    if c.emitted_by_signer {
        let delegate = signing_key(keys, "delegate")?;
        let (resigned, signed) = sign_with(
            &c.request.unsigned(),
            authority,
            c.request.header("signature-key").ctx("Signature-Key")?,
            &delegate,
            c.created,
            c.nonce.as_deref(),
            field.label.as_str(),
        )?;
        let mut resigned = resigned;
        resigned.authority = c.request.authority.clone();
        ensure(resigned == c.request, || {
            format!("our signer emits {:?}", resigned.headers)
        })?;
        ensure(signed.signature_base == c.signature_base, || {
            "our signer signs another base".into()
        })?;
    }
    Ok(())
}

pub(crate) fn check(contents: &str, keys: &KeysFile, report: &mut Report) -> Result<()> {
    let file: VectorFile<BaseCase> = parse_file(contents)?;
    unique_names(file.cases.iter().map(|c| c.name.as_str()))?;
    for c in &file.cases {
        report.record("signature-bases.json", &c.name, check_case(c, keys));
    }
    Ok(())
}
