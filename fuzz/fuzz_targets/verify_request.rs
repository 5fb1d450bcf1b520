//! `verify_request` on a whole request assembled from fuzz bytes, with the
//! spec vectors' parties and keys so that signatures can verify. The input
//! is `METHOD TARGET`, header lines `name: value`, an empty line, the body.
//!
//! Properties: never a panic; every refusal is one of the rows a request's
//! signature can fall in (P-ERR-1, 401); a verified request stays verified
//! when a header it does not cover is added, and fails when its method —
//! always covered (P-SIG-1) — is changed.
#![no_main]

use std::sync::LazyLock;

use aauth_protocol::error::Condition;
use aauth_protocol::httpsig::Request;
use aauth_protocol::ids::{Origin, OriginMode};
use aauth_protocol::verify::{VerifierConfig, verify_request};
use aauth_vectors::schema::DirectoryFile;
use aauth_vectors::world::{AUTH, RESOURCE};
use aauth_vectors::{Directory, NOW};
use libfuzzer_sys::fuzz_target;

static DIRECTORY: LazyLock<Directory> = LazyLock::new(|| {
    let file: DirectoryFile =
        serde_json::from_str(include_str!("../../spec-vectors/directory.json"))
            .expect("directory.json");
    Directory::new(&file)
});

static CONFIG: LazyLock<VerifierConfig> = LazyLock::new(|| {
    let origin = |text| Origin::parse(text, OriginMode::Production).expect("an origin");
    let mut config = VerifierConfig::new(origin(RESOURCE));
    config.trusted_auth_servers = vec![origin(AUTH)];
    config
});

/// Splits the input into method, target, headers and body.
fn request(text: &str) -> Option<(&str, &str, Vec<(&str, &str)>, Option<&[u8]>)> {
    let (head, body) = match text.split_once("\n\n") {
        Some((head, body)) => (head, Some(body.as_bytes())),
        None => (text, None),
    };
    let mut lines = head.split('\n');
    let (method, target) = lines.next()?.split_once(' ')?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim(), value.trim()))
        .collect();
    Some((method, target, headers, body))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some((method, target, headers, body)) = request(text) else {
        return;
    };
    let config = &*CONFIG;
    let view = |method, headers| Request {
        method,
        authority: &config.authority,
        target,
        headers,
        body,
    };
    match verify_request(&view(method, &headers), config, &*DIRECTORY, NOW) {
        Err(rejection) => {
            let condition = rejection.error.condition();
            assert!(
                matches!(
                    condition,
                    Condition::SignatureInvalid
                        | Condition::AgentTokenInvalid
                        | Condition::AuthTokenInvalid
                        | Condition::KeyBindingFailed
                ),
                "{condition:?} for {text:?}"
            );
            assert_eq!(condition.wire().status, 401);
        }
        Ok(_) => {
            let mut more = headers.clone();
            more.push(("x-fuzz-uncovered", "anything"));
            if let Err(e) = verify_request(&view(method, &more), config, &*DIRECTORY, NOW) {
                panic!("an uncovered header broke a verified request: {e:?}\n{text:?}");
            }
            let other = if method == "GET" { "POST" } else { "GET" };
            assert!(
                verify_request(&view(other, &headers), config, &*DIRECTORY, NOW).is_err(),
                "a verified request still verifies with its method changed: {text:?}"
            );
        }
    }
});
