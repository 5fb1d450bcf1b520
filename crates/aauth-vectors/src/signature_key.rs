//! `signature-key.json`: parsing both `Signature-Key` syntaxes into one
//! typed value, and emitting it (SK0§2, E§10.1, profile: P-SK-1 to P-SK-5).

use aauth_protocol::ids::Label;
use aauth_protocol::jwk::PublicKey;
use aauth_protocol::signature_key::{self, SignatureKey, SignatureKeyField, Syntax};
use serde_json::{Map, Value};

use crate::build::unique_names;
use crate::schema::{SignatureKeyCase, SignatureKeyOp, SignatureKeyValue, VectorFile};
use crate::world::{AGENT, AGENT_KID, World, kid, origin};
use crate::{Ctx, Report, Result, SCHEMA_VERSION, VectorError, ensure, parse_file};

fn syntax_name(syntax: Syntax) -> &'static str {
    match syntax {
        Syntax::Sk0 => "sk0",
        Syntax::Parenthesised => "parenthesised",
    }
}

/// The typed value of a parsed or built field.
fn value_of(field: &SignatureKeyField, with_syntax: bool) -> SignatureKeyValue {
    let mut params = Map::new();
    let mut put = |name: &str, value: &str| {
        params.insert(name.into(), Value::String(value.into()));
    };
    match &field.key {
        SignatureKey::Hwk(key) => {
            let members = key.to_members();
            for (name, value) in [
                ("kty", members.kty),
                ("crv", members.crv),
                ("x", members.x),
                ("y", members.y),
            ] {
                if let Some(value) = value {
                    put(name, &value);
                }
            }
        }
        SignatureKey::JwksUri {
            id,
            well_known,
            kid,
        } => {
            put("id", id);
            put("well-known", well_known);
            put("kid", kid.as_str());
        }
        SignatureKey::Jwt { jwt } => put("jwt", jwt),
        SignatureKey::X509 { x5u, x5t } => {
            put("x5u", x5u);
            put("x5t", x5t);
        }
    }
    SignatureKeyValue {
        label: field.label.as_str().to_owned(),
        syntax: with_syntax.then(|| syntax_name(field.syntax).to_owned()),
        scheme: field.key.scheme().as_str().to_owned(),
        params,
    }
}

fn param<'a>(value: &'a SignatureKeyValue, name: &str) -> Result<&'a str> {
    value
        .params
        .get(name)
        .and_then(Value::as_str)
        .ctx(&format!("param {name}"))
}

/// The field a typed value describes.
fn field_of(value: &SignatureKeyValue) -> Result<SignatureKeyField> {
    let label = Label::new(value.label.as_str()).ctx("label")?;
    let key = match value.scheme.as_str() {
        "hwk" => SignatureKey::Hwk(
            PublicKey::from_json_value(&Value::Object(value.params.clone())).ctx("hwk")?,
        ),
        "jwks_uri" => SignatureKey::JwksUri {
            id: param(value, "id")?.to_owned(),
            well_known: param(value, "well-known")?.to_owned(),
            kid: kid(param(value, "kid")?)?,
        },
        "jwt" => SignatureKey::Jwt {
            jwt: param(value, "jwt")?.to_owned(),
        },
        "x509" => SignatureKey::X509 {
            x5u: param(value, "x5u")?.to_owned(),
            x5t: param(value, "x5t")?.to_owned(),
        },
        other => return Err(VectorError(format!("unknown scheme {other}"))),
    };
    Ok(SignatureKeyField {
        label,
        key,
        syntax: Syntax::Sk0,
    })
}

fn parse_case(name: &str, description: &str, header: &str) -> SignatureKeyCase {
    let op = match signature_key::parse(header) {
        Ok(field) => SignatureKeyOp::Parse {
            header: header.into(),
            expect: Some(value_of(&field, true)),
            error: None,
            detail: None,
        },
        Err(e) => SignatureKeyOp::Parse {
            header: header.into(),
            expect: None,
            error: Some(e.condition().wire().code.as_str().to_owned()),
            detail: Some(e.to_string()),
        },
    };
    SignatureKeyCase {
        name: name.into(),
        description: description.into(),
        op,
    }
}

fn emit_case(name: &str, description: &str, field: &SignatureKeyField) -> Result<SignatureKeyCase> {
    Ok(SignatureKeyCase {
        name: name.into(),
        description: description.into(),
        op: SignatureKeyOp::Emit {
            value: value_of(field, false),
            sk0: field.to_header_value(Syntax::Sk0).ctx(name)?,
            parenthesised: field.to_header_value(Syntax::Parenthesised).ctx(name)?,
        },
    })
}

pub(crate) fn generate(world: &World) -> Result<VectorFile<SignatureKeyCase>> {
    let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    let hwk = format!(r#"sig=hwk;kty="OKP";crv="Ed25519";x="{x}""#);
    let p256 = world.p256.public().to_members();
    let (px, py) = (p256.x.unwrap_or_default(), p256.y.unwrap_or_default());
    let jwks = format!(r#"sig=jwks_uri;id="{AGENT}";well-known="aauth-agent";kid="{AGENT_KID}""#);
    let jwt = "eyJhbGciOiJFZERTQSJ9.e30.c2ln";
    let p = |name: &str, description: &str, header: &str| parse_case(name, description, header);
    let cases = vec![
        p(
            "parse-sk0-hwk",
            "SK0§2.3 / P-SK-1: hwk in SK0's dictionary syntax",
            &hwk,
        ),
        p(
            "parse-sk0-hwk-p256",
            "SK0§2.3: an EC P-256 hwk key carries y",
            &format!(r#"sig=hwk;kty="EC";crv="P-256";x="{px}";y="{py}""#),
        ),
        p(
            "parse-sk0-jwks-uri",
            "SK0§2.4 / P-SK-3: id, well-known and kid",
            &jwks,
        ),
        p(
            "parse-sk0-jwt",
            "SK0§2.6: the jwt is carried verbatim (validated later by its typ, P-SK-4)",
            &format!(r#"sig=jwt;jwt="{jwt}""#),
        ),
        p(
            "parse-sk0-x509",
            "SK0§2.5 / P-SK-5: x509 is parsed (and refused later by the verifier as unsupported)",
            r#"sig=x509;x5u="https://agent.example/chain.pem";x5t="bWNmZjFkNjQ1ZDc2ZjBiMWM1ZDk2ZWE0NjM0NDk3ZjE""#,
        ),
        p(
            "parse-sk0-other-label",
            "P-SIG-3: any label is accepted",
            &format!(r#"agent-sig=hwk;kty="OKP";crv="Ed25519";x="{x}""#),
        ),
        p(
            "parse-sk0-scheme-alias-jwks",
            "P-SK-2: the scheme jwks means jwks_uri in both syntaxes",
            &format!(r#"sig=jwks;id="{AGENT}";well-known="aauth-agent";kid="{AGENT_KID}""#),
        ),
        p(
            "parse-sk0-dwk-alias",
            "P-SK-2: dwk means well-known in both syntaxes",
            &format!(r#"sig=jwks_uri;id="{AGENT}";dwk="aauth-agent";kid="{AGENT_KID}""#),
        ),
        p(
            "parse-sk0-unknown-parameter-ignored",
            "SK0§2: unknown parameters are ignored",
            &format!(r#"sig=hwk;kty="OKP";crv="Ed25519";x="{x}";note="ignored""#),
        ),
        p(
            "parse-sk0-hwk-kid-tolerated",
            "SK0§2.3: a kid on hwk is tolerated and ignored",
            &format!(r#"sig=hwk;kty="OKP";crv="Ed25519";x="{x}";kid="k1""#),
        ),
        p(
            "parse-sk0-whitespace",
            "RFC 8941 §4.2: leading and trailing spaces are discarded",
            &format!("  {hwk} "),
        ),
        p(
            "parse-paren-hwk",
            "E§10.1 / P-SK-2: the explainer's parenthesised form gives the same typed value",
            &format!(r#"sig=(scheme=hwk kty="OKP" crv="Ed25519" x="{x}")"#),
        ),
        p(
            "parse-paren-jwks-default-well-known",
            "P-SK-2: in the parenthesised form only, a missing well-known defaults to aauth-agent",
            &format!(r#"sig=(scheme=jwks id="{AGENT}" kid="{AGENT_KID}")"#),
        ),
        p(
            "parse-paren-jwks-dwk",
            "P-SK-2: dwk alias in the parenthesised form",
            &format!(r#"sig=(scheme=jwks_uri id="{AGENT}" dwk="aauth-agent" kid="{AGENT_KID}")"#),
        ),
        p(
            "parse-paren-jwt",
            "E§10.1 / P-SK-2: jwt in the parenthesised form",
            &format!(r#"sig=(scheme=jwt jwt="{jwt}")"#),
        ),
        p(
            "reject-sk0-jwks-uri-without-well-known",
            "P-SK-3: well-known is required in SK0's syntax (the default applies only to the parenthesised form)",
            &format!(r#"sig=jwks_uri;id="{AGENT}";kid="{AGENT_KID}""#),
        ),
        p(
            "reject-paren-direct-jwks-url",
            "P-SK-2: the explainer's direct mode jwks=\"<url>\" is refused, naming the parameter",
            r#"sig=(scheme=jwks jwks="https://agent.example/jwks.json" kid="agent-key-1")"#,
        ),
        p(
            "reject-sk0-direct-jwks-url",
            "P-SK-2: the direct mode is refused in SK0's syntax too",
            r#"sig=jwks_uri;jwks="https://agent.example/jwks.json";kid="agent-key-1""#,
        ),
        p(
            "reject-dwk-and-well-known",
            "P-SK-2: dwk and well-known both present is ambiguous",
            &format!(
                r#"sig=jwks_uri;id="{AGENT}";well-known="aauth-agent";dwk="aauth-agent";kid="{AGENT_KID}""#
            ),
        ),
        p(
            "reject-two-members",
            "E§10.1.1 step 2: exactly one member",
            &format!(
                r#"{hwk}, other=jwks_uri;id="{AGENT}";well-known="aauth-agent";kid="{AGENT_KID}""#
            ),
        ),
        p(
            "reject-repeated-label",
            "E§10.1.1 step 2: a repeated label is two members (not collapsed into the last)",
            &format!("{hwk}, {hwk}"),
        ),
        p(
            "reject-hwk-alg",
            "SK0§2.3: \"The alg parameter MUST NOT be present\"",
            &format!(r#"sig=hwk;kty="OKP";crv="Ed25519";x="{x}";alg="ed25519""#),
        ),
        p(
            "reject-hwk-bad-x",
            "SK0§2.3: x must be a 32-byte Ed25519 key",
            r#"sig=hwk;kty="OKP";crv="Ed25519";x="11qYAYKxCrfVS_7TyWQHOg""#,
        ),
        p(
            "reject-hwk-unsupported-key-type",
            "P-SIG-4: only OKP/Ed25519 and EC/P-256 keys",
            r#"sig=hwk;kty="RSA";n="0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc";e="AQAB""#,
        ),
        p(
            "reject-unknown-scheme",
            "SK0§5.2.2: hwk, jwks_uri, jwt, x509 (and the jwks alias)",
            r#"sig=jkt;jkt="abc""#,
        ),
        p(
            "reject-scheme-parameter-in-sk0",
            "SK0§2: in the dictionary form the scheme is the member value, not a parameter",
            &format!(r#"sig=hwk;scheme=hwk;kty="OKP";crv="Ed25519";x="{x}""#),
        ),
        p(
            "reject-duplicate-parameter",
            "a parameter named twice is refused rather than silently keeping one",
            &format!(r#"sig=(scheme=hwk kty="OKP" crv="Ed25519" x="{x}" x="{x}")"#),
        ),
        p(
            "reject-inner-list-in-sk0",
            "SK0§2: the member value is a scheme token, not an inner list",
            r#"sig=("hwk" "OKP")"#,
        ),
        p(
            "reject-paren-trailing-parameters",
            "P-SK-2: everything is inside the parentheses; trailing ;parameters are refused",
            &format!(r#"sig=(scheme=hwk kty="OKP" crv="Ed25519" x="{x}");alg="ed25519""#),
        ),
        p(
            "reject-empty",
            "E§10: Signature-Key must carry a member",
            " ",
        ),
        emit_case(
            "emit-hwk-ed25519",
            "P-SK-1: hwk emitted as SK0's dictionary (and, on switch, the parenthesised form)",
            &SignatureKeyField::hwk(Label::sig(), world.delegate.public()),
        )?,
        emit_case(
            "emit-hwk-p256",
            "P-SK-1: an EC P-256 hwk key",
            &SignatureKeyField::hwk(Label::sig(), world.p256.public()),
        )?,
        emit_case(
            "emit-jwks-uri",
            "P-SK-1 / P-SK-2: jwks_uri; the parenthesised form spells the scheme jwks and keeps well-known explicit",
            &SignatureKeyField::jwks_uri(
                Label::sig(),
                &origin(AGENT)?,
                "aauth-agent",
                kid(AGENT_KID)?,
            ),
        )?,
        emit_case(
            "emit-jwt",
            "P-SK-1: jwt",
            &SignatureKeyField::jwt(Label::sig(), jwt),
        )?,
    ];
    Ok(VectorFile {
        description: "Signature-Key (SK0§2, E§10.1, P-SK-1..5): parse cases map a header value, in SK0's dictionary syntax or the explainer's parenthesised syntax, to one typed value {label, syntax, scheme, params} or to an error code; emit cases map a typed value to both syntaxes.".into(),
        version: SCHEMA_VERSION,
        cases,
    })
}

pub(crate) fn check(contents: &str, report: &mut Report) -> Result<()> {
    let file: VectorFile<SignatureKeyCase> = parse_file(contents)?;
    unique_names(file.cases.iter().map(|c| c.name.as_str()))?;
    for c in &file.cases {
        let outcome = match &c.op {
            SignatureKeyOp::Parse {
                header,
                expect,
                error,
                detail,
            } => match (signature_key::parse(header), expect, error) {
                (Ok(field), Some(want), None) => {
                    let got = value_of(&field, true);
                    ensure(&got == want, || format!("parsed as {got:?}"))
                }
                (Err(e), None, Some(want)) => {
                    let code = e.condition().wire().code;
                    let code = code.as_str();
                    ensure(
                        code == want && detail.as_deref() == Some(e.to_string().as_str()),
                        || format!("refused with {code} ({e})"),
                    )
                }
                (Ok(field), _, _) => Err(VectorError(format!(
                    "accepted as {:?}",
                    value_of(&field, true)
                ))),
                (Err(e), _, _) => Err(VectorError(format!("refused: {e}"))),
            },
            SignatureKeyOp::Emit {
                value,
                sk0,
                parenthesised,
            } => (|| {
                let field = field_of(value)?;
                let got_sk0 = field.to_header_value(Syntax::Sk0).ctx("sk0")?;
                let got_paren = field
                    .to_header_value(Syntax::Parenthesised)
                    .ctx("parenthesised")?;
                ensure(&got_sk0 == sk0, || format!("emitted {got_sk0}"))?;
                ensure(&got_paren == parenthesised, || {
                    format!("emitted {got_paren}")
                })?;
                // Both spellings read back as the same typed value.
                for text in [sk0, parenthesised] {
                    let back = signature_key::parse(text).ctx("reading back")?;
                    ensure(value_of(&back, false) == *value, || {
                        format!("{text} reads back differently")
                    })?;
                }
                Ok(())
            })(),
        };
        report.record("signature-key.json", &c.name, outcome);
    }
    Ok(())
}
