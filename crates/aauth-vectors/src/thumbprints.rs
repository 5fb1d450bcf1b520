//! `thumbprints.json`: JWK → RFC 7638 input and thumbprint.

use aauth_protocol::jwk::PublicKey;
use serde_json::{Value, json};

use crate::build::unique_names;
use crate::schema::{ThumbprintCase, VectorFile};
use crate::world::World;
use crate::{Ctx, Report, Result, SCHEMA_VERSION, ensure, parse_file};

fn case(name: &str, description: &str, jwk: Value) -> Result<ThumbprintCase> {
    let key = PublicKey::from_json_value(&jwk).ctx(name)?;
    Ok(ThumbprintCase {
        name: name.into(),
        description: description.into(),
        jwk,
        thumbprint_input: key.thumbprint_input(),
        thumbprint: key.thumbprint().as_str().to_owned(),
    })
}

pub(crate) fn generate(world: &World) -> Result<VectorFile<ThumbprintCase>> {
    let mut cases = vec![
        case(
            "rfc8037-a3-ed25519",
            "RFC 8037 A.3: the thumbprint of the A.2 Ed25519 public key is kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k (the delegate key of these vectors)",
            json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
        )?,
        case(
            "rfc9421-b13-p256",
            "RFC 7638 §3.2 for an EC key (required members crv, kty, x, y in lexicographic order): the RFC 9421 B.1.3 P-256 key",
            world.p256.public().to_json_value(),
        )?,
        case(
            "optional-members-ignored",
            "RFC 7638 §3.2: only the required members enter the input; kid, alg and use do not change the thumbprint (RFC 9421 B.1.4 key)",
            json!({
                "kid": "agent-key-1", "use": "sig", "alg": "EdDSA",
                "x": "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs", "crv": "Ed25519", "kty": "OKP"
            }),
        )?,
    ];
    for named in [
        &world.agent_server,
        &world.resource,
        &world.auth,
        &world.attacker,
    ] {
        cases.push(case(
            &format!("key-{}", named.name),
            &format!(
                "E§6.3 agent_jkt / RFC 7638: thumbprint of the {} key of keys.json",
                named.name
            ),
            named.public().to_json_value(),
        )?);
    }
    Ok(VectorFile {
        description: "RFC 7638 JWK thumbprints (SHA-256, base64url) of Ed25519 (RFC 8037 §2) and P-256 keys: the canonical input and the thumbprint, as used for agent_jkt (E§6.3) and key identity.".into(),
        version: SCHEMA_VERSION,
        cases,
    })
}

pub(crate) fn check(contents: &str, report: &mut Report) -> Result<()> {
    let file: VectorFile<ThumbprintCase> = parse_file(contents)?;
    unique_names(file.cases.iter().map(|c| c.name.as_str()))?;
    for c in &file.cases {
        let outcome = (|| {
            let key = PublicKey::from_json_value(&c.jwk).ctx("jwk")?;
            ensure(key.thumbprint_input() == c.thumbprint_input, || {
                format!("thumbprint input is {}", key.thumbprint_input())
            })?;
            ensure(key.thumbprint().as_str() == c.thumbprint, || {
                format!("thumbprint is {}", key.thumbprint())
            })
        })();
        report.record("thumbprints.json", &c.name, outcome);
    }
    Ok(())
}
