//! The three token validators (E§5.7, E§6.5, E§7.7), with the spec
//! vectors' parties and keys (`spec-vectors/directory.json`) so that real
//! signatures can verify. The first byte chooses the validator, the rest is
//! the token. Never a panic, and every refusal is the error-table row of
//! its kind of token (P-ERR-1).
#![no_main]

use std::sync::LazyLock;

use aauth_protocol::error::Condition;
use aauth_protocol::ids::{Kid, Origin, OriginMode};
use aauth_protocol::jwk::PublicKey;
use aauth_protocol::tokens::{KeyLookupError, agent_token, auth_token, resource_token};
use aauth_protocol::verify::{KeyDirectory, KeyOwner};
use aauth_vectors::schema::DirectoryFile;
use aauth_vectors::world::{AGENT, AUTH, RESOURCE};
use aauth_vectors::{Directory, NOW};
use libfuzzer_sys::fuzz_target;

static DIRECTORY: LazyLock<Directory> = LazyLock::new(|| {
    let file: DirectoryFile =
        serde_json::from_str(include_str!("../../spec-vectors/directory.json"))
            .expect("directory.json");
    Directory::new(&file)
});

fn origin(text: &str) -> Origin {
    Origin::parse(text, OriginMode::Production).expect("an origin")
}

fn keys(owner: KeyOwner) -> impl Fn(&Origin, &Kid) -> Result<PublicKey, KeyLookupError> {
    move |issuer, kid| DIRECTORY.key(owner, issuer, kid)
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let Ok(token) = std::str::from_utf8(rest) else {
        return;
    };
    let now = i64::try_from(NOW).expect("a time");
    let (agent, auth, resource) = (origin(AGENT), origin(AUTH), origin(RESOURCE));
    match choice % 3 {
        0 => {
            let ctx = agent_token::AgentTokenContext::new(now, &resource);
            if let Err(e) = agent_token::validate(token, &ctx, &keys(KeyOwner::Agent)) {
                assert_eq!(
                    e.condition(),
                    Condition::AgentTokenInvalid,
                    "{token:?}: {e}"
                );
            }
        }
        1 => {
            // The delegate key the vectors' resource tokens are bound to
            // (RFC 8037 A.1), so that their later steps are reached too.
            let key = PublicKey::from_json_value(&serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
            }))
            .expect("a key");
            let ctx = resource_token::ResourceTokenContext::new(now, &auth, &agent, &key);
            if let Err(e) = resource_token::validate(token, &ctx, &keys(KeyOwner::Resource)) {
                assert_eq!(
                    e.condition(),
                    Condition::ResourceTokenInvalid,
                    "{token:?}: {e}"
                );
            }
        }
        _ => {
            let trusted = [auth.clone()];
            let ctx = auth_token::AuthTokenContext::new(now, &trusted, &resource);
            if let Err(e) = auth_token::validate(token, &ctx, &keys(KeyOwner::AuthServer)) {
                assert_eq!(e.condition(), Condition::AuthTokenInvalid, "{token:?}: {e}");
            }
        }
    }
});
