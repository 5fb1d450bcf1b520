//! `agent-auth.json`: the `Agent-Auth` challenge (E§4, D§5, profile: P-CH-1,
//! P-CH-2, P-CH-4), read by agents and built by resources.

use aauth_protocol::challenge::{AgentAuth, Level};

use crate::build::{level_name, unique_names};
use crate::schema::{AgentAuthCase, AgentAuthOp, ChallengeValue, VectorFile};
use crate::world::{AUTH, World, origin};
use crate::{Ctx, Report, Result, SCHEMA_VERSION, VectorError, ensure, parse_file};

fn value_of(challenge: &AgentAuth) -> ChallengeValue {
    ChallengeValue {
        level: level_name(challenge.level()).into(),
        user_interaction: challenge.user_interaction_url().map(Into::into),
        resource_token: challenge.resource_token().map(Into::into),
        auth_server: challenge.auth_server().map(Into::into),
    }
}

fn level(name: &str) -> Result<Level> {
    match name {
        "pseudonymous" => Ok(Level::Pseudonymous),
        "identified" => Ok(Level::Identified),
        "authorized" => Ok(Level::Authorized),
        other => Err(VectorError(format!("unknown level {other}"))),
    }
}

fn challenge_of(value: &ChallengeValue) -> Result<AgentAuth> {
    let base = match &value.user_interaction {
        Some(url) => {
            ensure(value.level == "pseudonymous", || {
                "user_interaction is built at the pseudonymous level".into()
            })?;
            AgentAuth::user_interaction(url).ctx("user_interaction")?
        }
        None => AgentAuth::new(level(&value.level)?),
    };
    match (&value.resource_token, &value.auth_server) {
        (Some(token), Some(server)) => base
            .with_resource_token(token, &origin(server)?)
            .ctx("resource_token"),
        (None, None) => Ok(base),
        _ => Err(VectorError(
            "P-CH-4: resource_token and auth_server are built together".into(),
        )),
    }
}

fn parse_case(name: &str, description: &str, header: &str) -> AgentAuthCase {
    let op = match AgentAuth::parse(header) {
        Ok(challenge) => AgentAuthOp::Parse {
            header: header.into(),
            expect: Some(value_of(&challenge)),
            error: None,
            detail: None,
        },
        Err(e) => AgentAuthOp::Parse {
            header: header.into(),
            expect: None,
            error: Some("malformed".into()),
            detail: Some(e.to_string()),
        },
    };
    AgentAuthCase {
        name: name.into(),
        description: description.into(),
        op,
    }
}

fn emit_case(name: &str, description: &str, challenge: &AgentAuth) -> AgentAuthCase {
    AgentAuthCase {
        name: name.into(),
        description: description.into(),
        op: AgentAuthOp::Emit {
            value: value_of(challenge),
            header: challenge.to_header_value(),
        },
    }
}

pub(crate) fn generate(world: &World) -> Result<VectorFile<AgentAuthCase>> {
    let rt = crate::negative::resource_token_for_challenge(world)?;
    let auth = origin(AUTH)?;
    let ui = "https://resource.example/interaction?session=b3BhcXVlLXNlc3Npb24";
    let escaped = r#"https://resource.example/i?note="quoted"&path=a\b"#;
    let p = parse_case;
    let cases = vec![
        p(
            "parse-signature-required",
            "E§4.1: httpsig alone requires a signature (pseudonymous)",
            "httpsig",
        ),
        p(
            "parse-identity-required",
            "E§4.2: identity=?1 requires an identified agent",
            "httpsig; identity=?1",
        ),
        p(
            "parse-identity-bare-boolean",
            "RFC 8941 §3.1.2: a bare parameter is the boolean true, same as identity=?1",
            "httpsig;identity",
        ),
        p(
            "parse-identity-false",
            "RFC 8941: identity=?0 is false, so only a signature is required",
            "httpsig; identity=?0",
        ),
        p(
            "parse-algs-tolerated",
            "P-CH-1: E§4.2's algs inner list is not a valid parameter value; it is tolerated and ignored",
            r#"httpsig; identity=?1; algs=("ed25519" "rsa-pss-sha512")"#,
        ),
        p(
            "parse-auth-token-required",
            "E§4.3: auth-token with the resource token and the auth server",
            &format!(r#"httpsig; auth-token; resource_token="{rt}"; auth_server="{AUTH}""#),
        ),
        p(
            "parse-resource-token-without-auth-server",
            "E§4.7's own example sends a resource_token without auth_server: readers accept it",
            &format!(r#"httpsig; auth-token; resource_token="{rt}""#),
        ),
        p(
            "parse-user-interaction",
            "E§4.4: user_interaction URL",
            &format!(r#"httpsig; user_interaction="{ui}""#),
        ),
        p(
            "parse-user-interaction-with-resource-token",
            "E§4.4: user_interaction together with a resource token",
            &format!(
                r#"httpsig; user_interaction="{ui}"; resource_token="{rt}"; auth_server="{AUTH}""#
            ),
        ),
        p(
            "parse-highest-level-wins",
            "P-CH-2: the highest level named is the one required",
            "httpsig; identity; auth-token",
        ),
        p(
            "parse-unknown-parameter-ignored",
            "E§4.6: unknown parameters are ignored",
            "httpsig; identity; max_age=300",
        ),
        p(
            "parse-escaped-string",
            "RFC 8941 §3.3.3: \\\" and \\\\ inside sf-strings are unescaped",
            r#"httpsig; user_interaction="https://resource.example/i?note=\"quoted\"&path=a\\b""#,
        ),
        p(
            "reject-other-scheme",
            "E§4.6: the scheme is httpsig",
            "Bearer; identity",
        ),
        p(
            "reject-scheme-not-token",
            "E§4.6: httpsig is a token, not a string",
            r#""httpsig"; identity"#,
        ),
        p(
            "reject-identity-not-boolean",
            "E§4.6: identity is a boolean",
            r#"httpsig; identity="yes""#,
        ),
        p(
            "reject-resource-token-not-string",
            "E§4.6: resource_token is an sf-string",
            "httpsig; auth-token; resource_token=abc",
        ),
        p(
            "reject-syntax",
            "RFC 8941 §4.2: not a structured field item",
            "httpsig; ;identity",
        ),
        p(
            "reject-unclosed-algs",
            "P-CH-1: algs is removed only when its inner list is closed",
            r#"httpsig; identity; algs=("ed25519""#,
        ),
        emit_case("emit-signature-required", "E§4.1", &AgentAuth::signature()),
        emit_case(
            "emit-identity-required",
            "E§4.2 / P-CH-1: a true boolean is serialised bare (RFC 8941 §4.1.1.2); algs is never emitted",
            &AgentAuth::identity(),
        ),
        emit_case(
            "emit-auth-token-required",
            "E§4.3 / P-CH-4: resource_token always with auth_server",
            &AgentAuth::auth_token(&rt, &auth).ctx("challenge")?,
        ),
        emit_case(
            "emit-user-interaction",
            "E§4.4 / P-UI-1",
            &AgentAuth::user_interaction(ui).ctx("challenge")?,
        ),
        emit_case(
            "emit-user-interaction-with-resource-token",
            "E§4.4",
            &AgentAuth::user_interaction(ui)
                .ctx("challenge")?
                .with_resource_token(&rt, &auth)
                .ctx("challenge")?,
        ),
        emit_case(
            "emit-escaped-string",
            "RFC 8941 §4.1.6: \" and \\ are escaped in sf-strings",
            &AgentAuth::user_interaction(escaped).ctx("challenge")?,
        ),
    ];
    Ok(VectorFile {
        description: "Agent-Auth challenges (E§4, D§5, P-CH-1/2/4): parse cases map a header value to {level, user_interaction, resource_token, auth_server} or to error \"malformed\" (a reader's failure: no wire error code exists); emit cases map a value to the header a resource sends.".into(),
        version: SCHEMA_VERSION,
        cases,
    })
}

pub(crate) fn check(contents: &str, report: &mut Report) -> Result<()> {
    let file: VectorFile<AgentAuthCase> = parse_file(contents)?;
    unique_names(file.cases.iter().map(|c| c.name.as_str()))?;
    for c in &file.cases {
        let outcome = match &c.op {
            AgentAuthOp::Parse {
                header,
                expect,
                error,
                detail,
            } => match (AgentAuth::parse(header), expect, error) {
                (Ok(challenge), Some(want), None) => {
                    let got = value_of(&challenge);
                    ensure(&got == want, || format!("parsed as {got:?}"))
                }
                (Err(e), None, Some(_)) => {
                    ensure(detail.as_deref() == Some(e.to_string().as_str()), || {
                        format!("refused for another reason: {e}")
                    })
                }
                (Ok(challenge), _, _) => Err(VectorError(format!(
                    "accepted as {:?}",
                    value_of(&challenge)
                ))),
                (Err(e), _, _) => Err(VectorError(format!("refused: {e}"))),
            },
            AgentAuthOp::Emit { value, header } => (|| {
                let challenge = challenge_of(value)?;
                let got = challenge.to_header_value();
                ensure(&got == header, || format!("emitted {got}"))?;
                let back = AgentAuth::parse(header).ctx("reading back")?;
                ensure(back == challenge, || "reads back differently".into())
            })(),
        };
        report.record("agent-auth.json", &c.name, outcome);
    }
    Ok(())
}
