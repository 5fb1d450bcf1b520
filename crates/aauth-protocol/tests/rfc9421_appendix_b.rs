//! RFC 9421 Appendix B through the crate's public RFC 9421 machinery
//! (profile: P-SIG-8: "The RFC 9421 Appendix B checks apply to the examples
//! that use supported components; B.2.4's signature is verified over the base
//! the RFC gives").
//!
//! The vectors live in `spec-vectors/upstream/rfc9421-appendix-b.json`; they
//! are the RFC's text, verbatim, and say where each value came from. These examples are not
//! AAuth requests (no `signature-key`, `keyid` parameters), so they use
//! `SignatureInput` / `build_signature_base` / `verify_signature` directly,
//! without the AAuth rules that `prepare` adds.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a malformed vector file must fail the test loudly"
)]

use std::path::PathBuf;

use aauth_protocol::content_digest::ContentDigest;
use aauth_protocol::httpsig::{
    HttpSigError, Request, SignatureInput, SignatureValue, build_signature_base, verify_signature,
};
use aauth_protocol::jwk::{JwkMembers, PublicKey};
use aauth_protocol::keys::{Algorithm, PrivateJwk, SigningKey, VerifyingKey};
use serde_json::Value;

fn vectors() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../spec-vectors/upstream/rfc9421-appendix-b.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A message of the vector file, owned.
struct Message {
    method: String,
    authority: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn load(v: &Value, name: &str) -> Self {
        let m = &v["messages"][name];
        let headers: Vec<(String, String)> = m["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        // The RFC's examples take @authority from the target URI, which for
        // these origin-form requests is the Host header. (An AAuth verifier
        // uses its configured authority instead: P-SIG-5.)
        let authority = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        Self {
            method: m["method"].as_str().unwrap_or("").to_owned(),
            authority,
            target: m["request_target"].as_str().unwrap_or("").to_owned(),
            headers,
            body: m["body"].as_str().unwrap().as_bytes().to_vec(),
        }
    }

    fn view(&self) -> Request<'_, Vec<(String, String)>> {
        Request {
            method: &self.method,
            authority: &self.authority,
            target: &self.target,
            headers: &self.headers,
            body: Some(&self.body),
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap()
    }
}

fn example<'v>(v: &'v Value, section: &str) -> &'v Value {
    v["examples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["section"] == section)
        .unwrap_or_else(|| panic!("no example {section}"))
}

fn key_members(v: &Value, name: &str) -> JwkMembers {
    serde_json::from_value(v["keys"][name]["jwk"].clone()).unwrap()
}

fn verifying_key(v: &Value, name: &str) -> VerifyingKey {
    let mut members = key_members(v, name);
    members.d = None;
    VerifyingKey::new(&PublicKey::from_members(&members).unwrap()).unwrap()
}

fn signature_bytes(e: &Value) -> Vec<u8> {
    SignatureValue::parse(e["signature"].as_str().unwrap(), false)
        .unwrap()
        .bytes()
        .to_vec()
}

#[test]
fn signature_bases_match_the_rfc_byte_for_byte() {
    let v = vectors();
    for section in ["B.2.1", "B.2.3", "B.2.5", "B.2.6", "B.3", "B.4"] {
        let e = example(&v, section);
        let msg = Message::load(&v, e["message"].as_str().unwrap());
        let input = SignatureInput::parse(e["signature_input"].as_str().unwrap())
            .unwrap_or_else(|err| panic!("{section}: {err}"));
        assert_eq!(
            input.label().as_str(),
            e["label"].as_str().unwrap(),
            "{section}"
        );
        assert_eq!(
            input.signature_params(),
            e["signature_params"].as_str().unwrap(),
            "{section}"
        );
        let base = build_signature_base(&msg.view(), &input)
            .unwrap_or_else(|err| panic!("{section}: {err}"));
        assert_eq!(base, e["signature_base"].as_str().unwrap(), "{section}");
    }
}

#[test]
fn examples_with_components_outside_the_profile_are_a_typed_error() {
    // profile: P-SIG-8 — B.2.2 uses @query-param, B.2.4 signs a response's @status.
    let v = vectors();
    for (section, component) in [
        ("B.2.2", r#""@query-param";name="Pet""#),
        ("B.2.4", r#""@status""#),
    ] {
        let e = example(&v, section);
        assert_eq!(
            SignatureInput::parse(e["signature_input"].as_str().unwrap()),
            Err(HttpSigError::UnsupportedComponent(component.to_owned())),
            "{section}"
        );
    }
}

#[test]
fn b_2_4_ecdsa_signature_verifies_over_the_rfc_base() {
    // profile: P-SIG-4, P-SIG-8
    let v = vectors();
    let e = example(&v, "B.2.4");
    let key = verifying_key(&v, "test-key-ecc-p256");
    let base = e["signature_base"].as_str().unwrap();
    let sig = signature_bytes(e);
    verify_signature(
        base.as_bytes(),
        &sig,
        Some(Algorithm::EcdsaP256Sha256),
        &key,
    )
    .unwrap();
    verify_signature(base.as_bytes(), &sig, None, &key).unwrap();
    let mut tampered = base.as_bytes().to_vec();
    tampered[10] ^= 1;
    assert_eq!(
        verify_signature(&tampered, &sig, None, &key),
        Err(HttpSigError::SignatureInvalid)
    );
}

#[test]
fn b_3_ecdsa_signature_verifies_over_our_base() {
    // profile: P-SIG-4
    let v = vectors();
    let e = example(&v, "B.3");
    let msg = Message::load(&v, "ttrp-request");
    let input = SignatureInput::parse(e["signature_input"].as_str().unwrap()).unwrap();
    let base = build_signature_base(&msg.view(), &input).unwrap();
    let key = verifying_key(&v, "test-key-ecc-p256");
    verify_signature(base.as_bytes(), &signature_bytes(e), None, &key).unwrap();
}

#[test]
fn b_2_6_ed25519_signature_verifies_and_resigning_reproduces_it() {
    // profile: P-SIG-4 — Ed25519 is deterministic.
    let v = vectors();
    let e = example(&v, "B.2.6");
    let msg = Message::load(&v, "test-request");
    let input = SignatureInput::parse(e["signature_input"].as_str().unwrap()).unwrap();
    let base = build_signature_base(&msg.view(), &input).unwrap();
    let sig = signature_bytes(e);
    let key = verifying_key(&v, "test-key-ed25519");
    verify_signature(base.as_bytes(), &sig, Some(Algorithm::Ed25519), &key).unwrap();
    assert_eq!(
        verify_signature(
            base.as_bytes(),
            &sig,
            Some(Algorithm::EcdsaP256Sha256),
            &key
        ),
        Err(HttpSigError::AlgKeyMismatch {
            alg: "ecdsa-p256-sha256",
            key: "ed25519"
        })
    );

    let private =
        SigningKey::from_private_jwk(&PrivateJwk::new(key_members(&v, "test-key-ed25519")))
            .unwrap();
    assert_eq!(private.sign(base.as_bytes()).unwrap(), sig);
}

#[test]
fn b_4_transformations_verify_or_fail_as_the_rfc_says() {
    let v = vectors();
    let e = example(&v, "B.4");
    let key = verifying_key(&v, "test-key-ed25519");
    let variants = e["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 6);
    for variant in variants {
        let name = variant["message"].as_str().unwrap();
        let expect_valid = variant["expect_valid"].as_bool().unwrap();
        let msg = Message::load(&v, name);
        let input = SignatureInput::parse(msg.header("Signature-Input")).unwrap();
        let signature = SignatureValue::parse(msg.header("Signature"), false).unwrap();
        let base = build_signature_base(&msg.view(), &input).unwrap();
        let result = verify_signature(base.as_bytes(), signature.bytes(), None, &key);
        assert_eq!(result.is_ok(), expect_valid, "{name}: {result:?}");
        if !expect_valid {
            assert_eq!(result, Err(HttpSigError::SignatureInvalid), "{name}");
        }
    }
}

#[test]
fn the_example_content_digests_match_their_bodies() {
    // RFC 9530 sha-512 on receipt (profile: P-SIG-1).
    let v = vectors();
    for name in ["test-request", "test-response"] {
        let msg = Message::load(&v, name);
        ContentDigest::parse(msg.header("Content-Digest"))
            .unwrap()
            .verify(&msg.body)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
