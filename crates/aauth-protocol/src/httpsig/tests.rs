//! Behaviour tests for the signer and the two-phase verifier: one per rule of
//! E§10.1.1, E§10.3–E§10.5 and profile P-SIG-1 to P-SIG-8.

use proptest::prelude::*;

use super::*;
use crate::b64;
use crate::content_digest::{ContentDigestError, DigestAlgorithm};
use crate::error::Condition;
use crate::ids::Label;
use crate::keys::{Algorithm, SigningKey, VerifyingKey};

const NOW: u64 = 1_730_217_600;
const AUTHORITY: &str = "resource.example";
const SIGNATURE_KEY: &str =
    r#"sig=hwk;kty="OKP";crv="Ed25519";x="JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs""#;

/// An owned request, as a server would hold it.
#[derive(Debug, Clone)]
struct Msg {
    method: String,
    authority: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Msg {
    fn new(method: &str, target: &str, body: &[u8]) -> Self {
        let mut headers = vec![("Host".to_owned(), "ignored.example".to_owned())];
        if !body.is_empty() {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        Self {
            method: method.into(),
            authority: AUTHORITY.into(),
            target: target.into(),
            headers,
            body: body.to_vec(),
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

    fn sign(mut self, key: &SigningKey, nonce: Option<&Nonce>) -> (Self, Signed) {
        let options = SignOptions {
            nonce,
            ..SignOptions::new(NOW)
        };
        let signed = sign(&self.view(), SIGNATURE_KEY, key, &options).unwrap();
        for (name, value) in signed.headers() {
            self.headers.push((name.to_owned(), value.to_owned()));
        }
        (self, signed)
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    fn remove(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Replaces the signature with one over `input` (a whole
    /// `Signature-Input` value), for inputs our signer would not emit.
    fn resign_with_input(&mut self, key: &SigningKey, input: &str) {
        self.set("Signature-Input", input);
        let parsed = SignatureInput::parse(input).unwrap();
        let base = build_signature_base(&self.view(), &parsed).unwrap();
        let sig = key.sign(base.as_bytes()).unwrap();
        let label = parsed.label().as_str().to_owned();
        self.set("Signature", &format!("{label}=:{}:", b64::std_encode(sig)));
    }

    fn prepare(&self, policy: &VerifyPolicy) -> Result<Prepared, HttpSigError> {
        prepare(&self.view(), &Label::sig(), policy, NOW)
    }

    fn verify(&self, key: &SigningKey) -> Result<Prepared, HttpSigError> {
        let prepared = self.prepare(&VerifyPolicy::default())?;
        prepared.verify(&verifying(key))?;
        Ok(prepared)
    }
}

fn ed25519() -> SigningKey {
    // RFC 9421 B.1.4 test-key-ed25519 seed.
    let seed = b64::url_decode("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU").unwrap();
    SigningKey::ed25519_from_seed(&seed).unwrap()
}

fn p256() -> SigningKey {
    SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap()
}

fn verifying(key: &SigningKey) -> VerifyingKey {
    VerifyingKey::new(key.public_key()).unwrap()
}

fn signed_post(key: &SigningKey) -> Msg {
    Msg::new(
        "POST",
        "/api/data?confirm=true",
        br#"{"action":"update","value":42}"#,
    )
    .sign(key, None)
    .0
}

// ── round trips ─────────────────────────────────────────────────────────────

#[test]
fn all_eight_query_body_nonce_combinations_round_trip_with_both_algorithms() {
    // profile: P-SIG-1, P-SIG-1a, P-SIG-4
    let nonce = Nonce::generate().unwrap();
    for key in [ed25519(), p256()] {
        for query in [false, true] {
            for body in [false, true] {
                for with_nonce in [false, true] {
                    let target = if query {
                        "/api/data?user=alice"
                    } else {
                        "/api/data"
                    };
                    let body_bytes: &[u8] = if body { b"{\"a\":1}" } else { b"" };
                    let msg = Msg::new("POST", target, body_bytes);
                    let (msg, signed) = msg.sign(&key, with_nonce.then_some(&nonce));

                    let mut expected = vec!["\"@method\"", "\"@authority\"", "\"@path\""];
                    if query {
                        expected.push("\"@query\"");
                    }
                    if body {
                        expected.extend(["\"content-type\"", "\"content-digest\""]);
                    }
                    if with_nonce {
                        expected.push("\"nonce\"");
                    }
                    expected.push("\"signature-key\"");
                    assert_eq!(
                        signed.signature_input,
                        format!("sig=({});created={NOW}", expected.join(" ")),
                        "{query} {body} {with_nonce}"
                    );
                    assert_eq!(signed.content_digest.is_some(), body);

                    let prepared = msg.verify(&key).unwrap();
                    assert_eq!(prepared.signature_base(), signed.signature_base);
                    assert_eq!(prepared.created(), NOW);
                    assert_eq!(prepared.label().as_str(), "sig");
                    assert_eq!(prepared.nonce(), with_nonce.then_some(&nonce));
                    assert_eq!(prepared.components().len(), expected.len());
                }
            }
        }
    }
}

#[test]
fn ed25519_signing_is_byte_reproducible() {
    // profile: P-SIG-4
    let nonce = Nonce::parse("Y3VyaW91c2x5Y3VyaW91cw").unwrap();
    let sign_once = || {
        // RFC 9530 §2's example body, so the digest is the RFC's.
        Msg::new("POST", "/api/data", br#"{"hello": "world"}"#)
            .sign(&ed25519(), Some(&nonce))
            .1
    };
    let signed = sign_once();
    assert_eq!(signed, sign_once());
    assert_eq!(
        signed.signature_base,
        format!(
            "\"@method\": POST\n\"@authority\": resource.example\n\"@path\": /api/data\n\
             \"content-type\": application/json\n\
             \"content-digest\": sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\n\
             \"nonce\": Y3VyaW91c2x5Y3VyaW91cw\n\"signature-key\": {SIGNATURE_KEY}\n\
             \"@signature-params\": (\"@method\" \"@authority\" \"@path\" \"content-type\" \
             \"content-digest\" \"nonce\" \"signature-key\");created={NOW}"
        )
    );
    // P-SIG-7: an RFC 8941 byte sequence, standard padded base64.
    assert!(signed.signature.starts_with("sig=:") && signed.signature.ends_with("==:"));
}

#[test]
fn emitted_headers_are_complete_and_ordered() {
    let nonce = Nonce::generate().unwrap();
    let (_, signed) = Msg::new("POST", "/x", b"{}").sign(&ed25519(), Some(&nonce));
    let names: Vec<&str> = signed.headers().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "Signature-Key",
            "Nonce",
            "Content-Digest",
            "Signature-Input",
            "Signature"
        ]
    );
}

#[test]
fn a_non_created_parameter_order_is_preserved_in_signature_params() {
    // profile: P-SIG-2 — the verifier serialises the parameters as received.
    let key = ed25519();
    let mut msg = Msg::new("GET", "/x", b"");
    msg.set("Signature-Key", SIGNATURE_KEY);
    msg.resign_with_input(
        &key,
        &format!(r#"sig=("@method" "@authority" "@path" "signature-key");keyid="x";created={NOW}"#),
    );
    let prepared = msg.verify(&key).unwrap();
    assert!(prepared.signature_base().ends_with(&format!(
        r#""@signature-params": ("@method" "@authority" "@path" "signature-key");keyid="x";created={NOW}"#
    )));
}

#[test]
fn keyid_tag_nonce_and_unknown_parameters_stay_in_the_base() {
    // profile: P-SIG-2
    let key = ed25519();
    let mut msg = Msg::new("GET", "/x", b"");
    msg.set("Signature-Key", SIGNATURE_KEY);
    let input = format!(
        r#"sig=("@method" "@authority" "@path" "signature-key");tag="t";nonce="n";created={NOW};future=?1;keyid="k""#
    );
    msg.resign_with_input(&key, &input);
    let prepared = msg.verify(&key).unwrap();
    assert!(prepared.signature_base().ends_with(&format!(
        r#";tag="t";nonce="n";created={NOW};future;keyid="k""#
    )));
}

#[test]
fn extra_header_components_are_allowed() {
    // profile: P-SIG-1 — "Other extra header components are allowed."
    let key = ed25519();
    let mut msg = Msg::new("GET", "/x", b"");
    msg.set("Signature-Key", SIGNATURE_KEY);
    msg.set("Date", "Tue, 20 Apr 2021 02:07:55 GMT");
    msg.resign_with_input(
        &key,
        &format!(r#"sig=("date" "@method" "@authority" "@path" "signature-key");created={NOW}"#),
    );
    msg.verify(&key).unwrap();
}

// ── tampering ───────────────────────────────────────────────────────────────

#[test]
fn tampering_with_any_covered_part_fails() {
    for key in [ed25519(), p256()] {
        let original = signed_post(&key);
        original.verify(&key).unwrap();

        let mut method = original.clone();
        method.method = "PUT".into();
        let mut authority = original.clone();
        // P-SIG-5: a request signed for another authority fails.
        authority.authority = "other.example".into();
        let mut path = original.clone();
        path.target = "/api/other?confirm=true".into();
        let mut query = original.clone();
        query.target = "/api/data?confirm=false".into();
        let mut signature_key = original.clone();
        signature_key.set("Signature-Key", &SIGNATURE_KEY.replace("JrQL", "KrQL"));
        for (what, msg) in [
            ("method", method),
            ("authority", authority),
            ("path", path),
            ("query", query),
            ("signature-key", signature_key),
        ] {
            assert_eq!(
                msg.verify(&key).unwrap_err(),
                HttpSigError::SignatureInvalid,
                "{what}"
            );
        }

        let mut body = original.clone();
        body.body = br#"{"action":"delete","value":42}"#.to_vec();
        assert_eq!(
            body.verify(&key).unwrap_err(),
            HttpSigError::ContentDigest(ContentDigestError::Mismatch(DigestAlgorithm::Sha256))
        );
    }
}

#[test]
fn authority_comes_from_configuration_never_from_host() {
    // profile: P-SIG-5, E§10.3.1
    let key = ed25519();
    let mut msg = signed_post(&key);
    msg.set("Host", "attacker.example");
    msg.verify(&key).unwrap();
    msg.set("Host", AUTHORITY);
    msg.authority = "attacker.example".into();
    assert_eq!(
        msg.verify(&key).unwrap_err(),
        HttpSigError::SignatureInvalid
    );
}

#[test]
fn a_signature_by_another_key_fails() {
    let msg = signed_post(&ed25519());
    let other = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let prepared = msg.prepare(&VerifyPolicy::default()).unwrap();
    assert_eq!(
        prepared.verify(&verifying(&other)),
        Err(HttpSigError::SignatureInvalid)
    );
}

// ── labels (E§10.1.1, P-SIG-3) ──────────────────────────────────────────────

#[test]
fn labels_must_be_identical_in_all_three_headers() {
    // profile: P-SIG-3
    let key = ed25519();
    let msg = signed_post(&key);
    assert_eq!(
        prepare(
            &msg.view(),
            &Label::new("other").unwrap(),
            &VerifyPolicy::default(),
            NOW
        )
        .unwrap_err(),
        HttpSigError::LabelMismatch {
            signature_key: "other".into(),
            signature_input: "sig".into(),
            signature: "sig".into(),
        }
    );
    let mut renamed = msg.clone();
    let sig = renamed
        .view()
        .field_value("signature")
        .unwrap()
        .replacen("sig=", "sig2=", 1);
    renamed.set("Signature", &sig);
    assert!(matches!(
        renamed.prepare(&VerifyPolicy::default()),
        Err(HttpSigError::LabelMismatch { .. })
    ));
}

#[test]
fn any_label_is_accepted_when_all_three_agree() {
    // profile: P-SIG-3 — "Emitted label: sig; any label is accepted."
    let key = ed25519();
    let label = Label::new("agent-1").unwrap();
    let mut msg = Msg::new("GET", "/x", b"");
    let options = SignOptions {
        label: label.clone(),
        ..SignOptions::new(NOW)
    };
    let sk = SIGNATURE_KEY.replacen("sig=", "agent-1=", 1);
    let signed = sign(&msg.view(), &sk, &key, &options).unwrap();
    for (n, v) in signed.headers() {
        msg.set(n, v);
    }
    let prepared = prepare(&msg.view(), &label, &VerifyPolicy::default(), NOW).unwrap();
    prepared.verify(&verifying(&key)).unwrap();
    assert_eq!(prepared.label(), &label);
}

#[test]
fn more_than_one_signature_is_refused_even_under_one_repeated_label() {
    // E§10.1.1 steps 4 and 5; a second field line with the same label would
    // be silently collapsed by an RFC 8941 parser.
    let key = ed25519();
    let msg = signed_post(&key);
    let input = msg
        .view()
        .field_value("signature-input")
        .unwrap()
        .into_owned();
    let signature = msg.view().field_value("signature").unwrap().into_owned();

    let mut two_inputs = msg.clone();
    two_inputs.headers.push(("Signature-Input".into(), input));
    assert_eq!(
        two_inputs.prepare(&VerifyPolicy::default()).unwrap_err(),
        HttpSigError::LabelCount {
            header: "Signature-Input",
            count: 2
        }
    );
    let mut two_signatures = msg.clone();
    two_signatures
        .headers
        .push(("Signature".into(), signature.replacen("sig=", "other=", 1)));
    assert_eq!(
        two_signatures
            .prepare(&VerifyPolicy::default())
            .unwrap_err(),
        HttpSigError::LabelCount {
            header: "Signature",
            count: 2
        }
    );
}

#[test]
fn missing_signature_headers_are_named() {
    let msg = signed_post(&ed25519());
    for (name, display) in [
        ("signature-input", "Signature-Input"),
        ("signature", "Signature"),
    ] {
        let mut m = msg.clone();
        m.remove(name);
        assert_eq!(
            m.prepare(&VerifyPolicy::default()).unwrap_err(),
            HttpSigError::MissingHeader(display.into())
        );
    }
}

#[test]
fn oversized_signature_headers_are_refused_before_parsing() {
    let mut msg = signed_post(&ed25519());
    let huge = "a".repeat(MAX_SIGNATURE_FIELD_LEN / 2);
    msg.headers.push(("Signature-Input".into(), huge.clone()));
    msg.headers.push(("Signature-Input".into(), huge));
    assert_eq!(
        msg.prepare(&VerifyPolicy::default()).unwrap_err(),
        HttpSigError::FieldTooLarge {
            header: "Signature-Input",
            max: MAX_SIGNATURE_FIELD_LEN
        }
    );
}

// ── covered components (E§10.3, P-SIG-1, D§10.3) ────────────────────────────

fn with_input(components: &str, target: &str, body: &[u8]) -> Msg {
    let mut msg = Msg::new("POST", target, body);
    msg.set("Signature-Key", SIGNATURE_KEY);
    if !body.is_empty() {
        msg.set("Content-Digest", &crate::content_digest::sha256_field(body));
    }
    msg.set(
        "Signature-Input",
        &format!("sig=({components});created={NOW}"),
    );
    msg.set(
        "Signature",
        &format!("sig=:{}:", b64::std_encode([0u8; 64])),
    );
    msg
}

#[test]
fn missing_required_components_carry_the_full_required_list() {
    // profile: P-SIG-1; D§11.2.1 `required_components`.
    let msg = with_input(
        r#""@method" "@authority" "@path" "content-type""#,
        "/x?y",
        b"{}",
    );
    let err = msg.prepare(&VerifyPolicy::default()).unwrap_err();
    assert_eq!(
        err,
        HttpSigError::MissingComponents {
            missing: vec![
                "@query".into(),
                "content-digest".into(),
                "signature-key".into()
            ],
            required: [
                "@method",
                "@authority",
                "@path",
                "@query",
                "content-type",
                "content-digest",
                "signature-key"
            ]
            .map(String::from)
            .to_vec(),
        }
    );
    assert_eq!(err.required_components().map(<[String]>::len), Some(7));
    assert_eq!(
        err.to_string(),
        "signature does not cover the required components: @query, content-digest, signature-key"
    );
}

#[test]
fn signature_key_must_always_be_covered() {
    // E§10: "signature-key MUST always be a covered component".
    let msg = with_input(r#""@method" "@authority" "@path""#, "/x", b"");
    assert!(matches!(
        msg.prepare(&VerifyPolicy::default()),
        Err(HttpSigError::MissingComponents { missing, .. }) if missing == ["signature-key"]
    ));
}

#[test]
fn a_present_nonce_header_must_be_covered() {
    // E§10.5: "When a Nonce header is present in the request, it MUST be
    // included as a covered component". profile: P-SIG-1
    let mut msg = with_input(
        r#""@method" "@authority" "@path" "signature-key""#,
        "/x",
        b"",
    );
    msg.set("Nonce", "Y3VyaW91c2x5Y3VyaW91cw");
    assert!(matches!(
        msg.prepare(&VerifyPolicy::default()),
        Err(HttpSigError::MissingComponents { missing, .. }) if missing == ["nonce"]
    ));
}

#[test]
fn query_covered_without_a_question_mark_is_refused() {
    // profile: P-SIG-1; E§10.3 "MUST NOT be included when no query string is present".
    let msg = with_input(
        r#""@method" "@authority" "@path" "@query" "signature-key""#,
        "/x",
        b"",
    );
    assert_eq!(
        msg.prepare(&VerifyPolicy::default()).unwrap_err(),
        HttpSigError::QueryWithoutQuestionMark
    );
}

#[test]
fn body_components_covered_without_a_body_are_refused() {
    // profile: P-SIG-1; E§10.3 "Body-related components MUST NOT be included
    // when there is no body".
    for name in ["content-type", "content-digest"] {
        let mut msg = with_input(
            &format!(r#""@method" "@authority" "@path" "{name}" "signature-key""#),
            "/x",
            b"",
        );
        msg.set("Content-Type", "application/json");
        msg.set("Content-Digest", "sha-256=:AA==:");
        assert_eq!(
            msg.prepare(&VerifyPolicy::default()).unwrap_err(),
            HttpSigError::BodyComponentWithoutBody(name.into())
        );
    }
}

#[test]
fn additional_components_from_resource_metadata_are_required() {
    // profile: P-SIG-1; D§10.3 additional_signature_components.
    let key = ed25519();
    let mut msg = Msg::new("GET", "/x", b"");
    msg.set("Date", "today");
    let (msg, _) = msg.sign(&key, None);
    let policy = VerifyPolicy {
        additional_components: vec!["date".into(), "content-digest".into()],
        ..VerifyPolicy::default()
    };
    // content-digest is not required without a body (E§10.3's MUST NOT wins).
    assert_eq!(
        msg.prepare(&policy).unwrap_err(),
        HttpSigError::MissingComponents {
            missing: vec!["date".into()],
            required: ["@method", "@authority", "@path", "signature-key", "date"]
                .map(String::from)
                .to_vec(),
        }
    );
}

#[test]
fn the_signer_covers_a_resources_additional_components() {
    // profile: P-SIG-1; D§10.3 — what the verifier requires, the signer covers,
    // with E§10.3's MUST NOTs applied the same way on both sides.
    let key = ed25519();
    let additional: Vec<String> = ["date", "@query", "content-digest", "nonce", "date"]
        .map(String::from)
        .to_vec();
    let mut msg = Msg::new("GET", "/x", b"");
    msg.set("Date", "today");
    let options = SignOptions {
        additional_components: &additional,
        ..SignOptions::new(NOW)
    };
    let signed = sign(&msg.view(), SIGNATURE_KEY, &key, &options).unwrap();
    assert_eq!(
        signed.signature_input,
        format!(r#"sig=("@method" "@authority" "@path" "date" "signature-key");created={NOW}"#)
    );
    for (name, value) in signed.headers() {
        msg.headers.push((name.to_owned(), value.to_owned()));
    }
    let policy = VerifyPolicy {
        additional_components: vec!["date".into(), "@query".into(), "content-digest".into()],
        ..VerifyPolicy::default()
    };
    msg.prepare(&policy)
        .unwrap()
        .verify(&verifying(&key))
        .unwrap();

    // A listed header the request does not carry cannot be signed.
    let bare = Msg::new("GET", "/x", b"");
    assert!(matches!(
        sign(&bare.view(), SIGNATURE_KEY, &key, &options),
        Err(SignError::Base(HttpSigError::MissingHeader(_)))
    ));
}

#[test]
fn unsupported_components_are_a_typed_error() {
    // profile: P-SIG-8
    for component in [
        r#""@target-uri""#,
        r#""@query-param";name="a""#,
        r#""content-digest";sf"#,
    ] {
        let msg = with_input(
            &format!(r#""@method" "@authority" "@path" "signature-key" {component}"#),
            "/x?a=1",
            b"",
        );
        assert_eq!(
            msg.prepare(&VerifyPolicy::default()).unwrap_err(),
            HttpSigError::UnsupportedComponent(component.into())
        );
    }
}

#[test]
fn a_covered_header_that_is_absent_is_an_error() {
    let mut msg = with_input(
        r#""@method" "@authority" "@path" "signature-key" "x-absent""#,
        "/x",
        b"",
    );
    msg.remove("x-absent");
    assert_eq!(
        msg.prepare(&VerifyPolicy::default()).unwrap_err(),
        HttpSigError::MissingHeader("x-absent".into())
    );
}

// ── parameters (E§10.4, P-SIG-2) ────────────────────────────────────────────

fn with_params(params: &str) -> Msg {
    let key = ed25519();
    let mut msg = Msg::new("GET", "/x", b"");
    msg.set("Signature-Key", SIGNATURE_KEY);
    msg.resign_with_input(
        &key,
        &format!(r#"sig=("@method" "@authority" "@path" "signature-key"){params}"#),
    );
    msg
}

#[test]
fn created_is_required() {
    // profile: P-SIG-2; E§10.4 "MUST include: created".
    assert_eq!(
        with_params(r#";keyid="k""#)
            .prepare(&VerifyPolicy::default())
            .unwrap_err(),
        HttpSigError::CreatedMissing
    );
}

#[test]
fn created_must_be_within_60_seconds_by_default() {
    // profile: P-SIG-2; E§10.4, D§10.4.
    let policy = VerifyPolicy::default();
    for ok in [NOW - 60, NOW, NOW + 60] {
        with_params(&format!(";created={ok}"))
            .prepare(&policy)
            .unwrap();
    }
    assert_eq!(
        with_params(&format!(";created={}", NOW - 61))
            .prepare(&policy)
            .unwrap_err(),
        HttpSigError::CreatedTooOld {
            created: NOW - 61,
            now: NOW,
            max_skew: 60
        }
    );
    assert_eq!(
        with_params(&format!(";created={}", NOW + 61))
            .prepare(&policy)
            .unwrap_err(),
        HttpSigError::CreatedInFuture {
            created: NOW + 61,
            now: NOW,
            max_skew: 60
        }
    );
}

#[test]
fn the_skew_is_configurable() {
    // profile: P-SIG-2 "(configurable)".
    let policy = VerifyPolicy {
        max_skew: 5,
        ..VerifyPolicy::default()
    };
    assert!(matches!(
        with_params(&format!(";created={}", NOW - 6)).prepare(&policy),
        Err(HttpSigError::CreatedTooOld { .. })
    ));
    let huge = VerifyPolicy {
        max_skew: u64::MAX,
        ..VerifyPolicy::default()
    };
    with_params(";created=0").prepare(&huge).unwrap();
}

#[test]
fn expires_is_honoured() {
    // profile: P-SIG-2
    with_params(&format!(";created={NOW};expires={}", NOW + 1))
        .prepare(&VerifyPolicy::default())
        .unwrap();
    assert_eq!(
        with_params(&format!(";created={NOW};expires={NOW}"))
            .prepare(&VerifyPolicy::default())
            .unwrap_err(),
        HttpSigError::Expired {
            expires: NOW,
            now: NOW
        }
    );
}

#[test]
fn alg_must_be_one_of_ours_and_agree_with_the_key() {
    // profile: P-SIG-2, P-SIG-4; SK0§3.4.
    let key = ed25519();
    with_params(&format!(r#";created={NOW};alg="ed25519""#))
        .verify(&key)
        .unwrap();
    assert_eq!(
        with_params(&format!(r#";created={NOW};alg="hmac-sha256""#))
            .prepare(&VerifyPolicy::default())
            .unwrap_err(),
        HttpSigError::UnsupportedAlg("hmac-sha256".into())
    );
    let prepared = with_params(&format!(r#";created={NOW};alg="ecdsa-p256-sha256""#))
        .prepare(&VerifyPolicy::default())
        .unwrap();
    assert_eq!(prepared.alg(), Some(Algorithm::EcdsaP256Sha256));
    assert_eq!(
        prepared.verify(&verifying(&key)),
        Err(HttpSigError::AlgKeyMismatch {
            alg: "ecdsa-p256-sha256",
            key: "ed25519"
        })
    );
}

// ── nonce (E§10.5, P-SIG-6) ─────────────────────────────────────────────────

#[test]
fn a_nonce_must_carry_96_bits_of_base64url() {
    // E§10.5; profile: P-SIG-6
    let key = ed25519();
    for (nonce, err) in [
        (
            b64::url_encode([1u8; 11]),
            HttpSigError::NonceTooShort { bits: 88 },
        ),
        (
            "Y3VyaW91c2x5Y3VyaW91cw==".to_owned(),
            HttpSigError::NonceMalformed,
        ),
    ] {
        let mut msg = Msg::new("POST", "/x", b"");
        msg.set("Nonce", &nonce);
        msg.set("Signature-Key", SIGNATURE_KEY);
        msg.resign_with_input(
            &key,
            &format!(
                r#"sig=("@method" "@authority" "@path" "nonce" "signature-key");created={NOW}"#
            ),
        );
        assert_eq!(msg.prepare(&VerifyPolicy::default()).unwrap_err(), err);
    }
}

#[test]
fn a_required_nonce_must_be_present() {
    // profile: P-SIG-6 — token endpoint and non-idempotent resource methods.
    let require = VerifyPolicy {
        require_nonce: NonceRule::Always,
        ..VerifyPolicy::default()
    };
    let key = ed25519();
    let without = signed_post(&key);
    assert_eq!(
        without.prepare(&require).unwrap_err(),
        HttpSigError::NonceMissing
    );
    let nonce = Nonce::generate().unwrap();
    let (with, _) = Msg::new("POST", "/x", b"{}").sign(&key, Some(&nonce));
    assert_eq!(with.prepare(&require).unwrap().nonce(), Some(&nonce));
    let listed = VerifyPolicy {
        additional_components: vec!["nonce".into()],
        ..VerifyPolicy::default()
    };
    assert_eq!(
        without.prepare(&listed).unwrap_err(),
        HttpSigError::NonceMissing
    );
}

// ── body (P-SIG-1, RFC 9530) ────────────────────────────────────────────────

#[test]
fn the_content_digest_is_checked_against_the_body() {
    // profile: P-SIG-1
    let key = ed25519();
    let mut msg = signed_post(&key);
    msg.remove("Content-Digest");
    assert_eq!(
        msg.prepare(&VerifyPolicy::default()).unwrap_err(),
        HttpSigError::ContentDigest(ContentDigestError::Missing)
    );
}

#[test]
fn an_empty_body_counts_as_no_body() {
    // E§10.3: body components "if and only if the request contains a body".
    let key = ed25519();
    let (msg, signed) = Msg::new("POST", "/x", b"").sign(&key, None);
    assert!(signed.content_digest.is_none());
    assert!(!signed.signature_input.contains("content-"));
    msg.verify(&key).unwrap();
}

// ── signature value (P-SIG-7) ───────────────────────────────────────────────

fn with_url_safe_signature(key: &SigningKey) -> Msg {
    let mut msg = signed_post(key);
    let sig = msg.view().field_value("signature").unwrap().into_owned();
    let bytes = SignatureValue::parse(&sig, false).unwrap().bytes().to_vec();
    msg.set("Signature", &format!("sig=:{}:", b64::url_encode(bytes)));
    msg
}

#[test]
fn base64url_signatures_verify_with_the_lenient_switch() {
    // profile: P-SIG-7 — PyPI `aauth` writes unpadded base64url.
    let lenient = VerifyPolicy {
        lenient_base64: true,
        ..VerifyPolicy::default()
    };
    for key in [ed25519(), p256()] {
        let msg = with_url_safe_signature(&key);
        let prepared = msg.prepare(&lenient).unwrap();
        prepared.verify(&verifying(&key)).unwrap();
    }
}

#[test]
fn a_base64url_signature_with_url_characters_is_refused_strictly() {
    // profile: P-SIG-7 (deterministic: a fixed value with '-' and '_').
    let mut msg = signed_post(&ed25519());
    let url = b64::url_encode([0xfb, 0xff].repeat(32));
    assert!(url.contains(['-', '_']));
    msg.set("Signature", &format!("sig=:{url}:"));
    assert_eq!(
        msg.prepare(&VerifyPolicy::default()).unwrap_err(),
        HttpSigError::NonStandardBase64
    );
}

#[test]
fn signatures_must_be_64_bytes() {
    let key = ed25519();
    let mut msg = signed_post(&key);
    msg.set(
        "Signature",
        &format!("sig=:{}:", b64::std_encode([0u8; 63])),
    );
    let prepared = msg.prepare(&VerifyPolicy::default()).unwrap();
    assert_eq!(
        prepared.verify(&verifying(&key)),
        Err(HttpSigError::SignatureLength(63))
    );
}

// ── signer errors ───────────────────────────────────────────────────────────

#[test]
fn signing_a_body_needs_a_content_type() {
    let mut msg = Msg::new("POST", "/x", b"{}");
    msg.remove("Content-Type");
    assert_eq!(
        sign(
            &msg.view(),
            SIGNATURE_KEY,
            &ed25519(),
            &SignOptions::new(NOW)
        ),
        Err(SignError::ContentTypeMissing)
    );
}

#[test]
fn the_signer_refuses_headers_it_sets_itself() {
    for name in [
        "Signature-Key",
        "nonce",
        "Content-Digest",
        "Signature-Input",
        "signature",
    ] {
        let mut msg = Msg::new("POST", "/x", b"{}");
        msg.set(name, "x");
        assert!(
            matches!(
                sign(
                    &msg.view(),
                    SIGNATURE_KEY,
                    &ed25519(),
                    &SignOptions::new(NOW)
                ),
                Err(SignError::HeaderConflict(_))
            ),
            "{name}"
        );
    }
}

#[test]
fn the_signer_refuses_a_created_outside_the_sf_integer_range() {
    let msg = Msg::new("GET", "/x", b"");
    assert_eq!(
        sign(
            &msg.view(),
            SIGNATURE_KEY,
            &ed25519(),
            &SignOptions::new(u64::MAX)
        ),
        Err(SignError::Base(HttpSigError::BadParameter("created")))
    );
}

// ── error mapping ───────────────────────────────────────────────────────────

#[test]
fn every_signature_error_is_invalid_signature() {
    // profile: P-ERR-1
    for err in [
        HttpSigError::SignatureInvalid,
        HttpSigError::NonceMissing,
        HttpSigError::CreatedTooOld {
            created: 0,
            now: 0,
            max_skew: 0,
        },
        HttpSigError::ContentDigest(ContentDigestError::NoSupportedAlgorithm),
    ] {
        assert_eq!(err.condition(), Condition::SignatureInvalid, "{err:?}");
        assert_eq!(err.required_components(), None);
    }
}

// ── hostile input ───────────────────────────────────────────────────────────

proptest! {
    #[test]
    fn arbitrary_signature_headers_never_panic(
        input in ".{0,200}",
        signature in ".{0,200}",
        digest in ".{0,120}",
        nonce in proptest::option::of("[A-Za-z0-9_=-]{0,30}"),
        lenient in any::<bool>(),
        target in "/[ -~]{0,20}",
    ) {
        let mut msg = Msg::new("POST", &target, b"{}");
        msg.set("Signature-Key", SIGNATURE_KEY);
        msg.set("Signature-Input", &input);
        msg.set("Signature", &signature);
        msg.set("Content-Digest", &digest);
        if let Some(nonce) = nonce {
            msg.set("Nonce", &nonce);
        }
        let policy = VerifyPolicy { lenient_base64: lenient, ..VerifyPolicy::default() };
        if let Ok(prepared) = msg.prepare(&policy) {
            let _ = prepared.verify(&verifying(&ed25519()));
        }
    }

    #[test]
    fn plausible_signature_inputs_never_panic(
        components in proptest::collection::vec(
            prop_oneof![
                Just("\"@method\"".to_owned()),
                Just("\"@authority\"".to_owned()),
                Just("\"@path\"".to_owned()),
                Just("\"@query\"".to_owned()),
                Just("\"content-type\"".to_owned()),
                Just("\"content-digest\"".to_owned()),
                Just("\"nonce\"".to_owned()),
                Just("\"signature-key\"".to_owned()),
                "\"[a-z@-]{1,10}\"",
            ],
            0..12,
        ),
        created in proptest::option::of(any::<i64>()),
        expires in proptest::option::of(any::<i64>()),
        query in any::<bool>(),
        body in any::<bool>(),
    ) {
        let mut params = String::new();
        if let Some(c) = created {
            params.push_str(&format!(";created={}", c % 1_000_000_000_000_000));
        }
        if let Some(e) = expires {
            params.push_str(&format!(";expires={}", e % 1_000_000_000_000_000));
        }
        let target = if query { "/x?q" } else { "/x" };
        let body: &[u8] = if body { b"{}" } else { b"" };
        let mut msg = with_input(&components.join(" "), target, body);
        msg.set("Signature-Input", &format!("sig=({}){params}", components.join(" ")));
        let _ = msg.prepare(&VerifyPolicy::default());
    }
}

#[test]
fn the_nonce_rule_for_resources_covers_exactly_the_non_idempotent_methods() {
    // profile: P-SIG-6 — POST, PUT, PATCH and DELETE; the agent's signer and
    // a resource's verifier read the same list.
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        assert!(NonceRule::NonIdempotent.requires(method), "{method}");
        assert!(Nonce::expected_for(method), "{method}");
    }
    for method in ["GET", "HEAD", "OPTIONS", "post"] {
        assert!(!NonceRule::NonIdempotent.requires(method), "{method}");
    }
    assert!(NonceRule::Always.requires("GET"));
    assert!(!NonceRule::Optional.requires("POST"));
}

#[test]
fn the_signer_writes_unpadded_base64url_under_another_label_only_when_asked() {
    // profile: P-SIG-7 — for a peer that reads nothing else (the early PyPI
    // `aauth`); strict verifiers refuse it, lenient ones verify it.
    let key = ed25519();
    let msg = Msg::new("POST", "/data", br#"{"a":1}"#);
    let label = Label::new("sig1".to_owned()).unwrap();
    let signature_key = SIGNATURE_KEY.replacen("sig=", "sig1=", 1);
    let options = SignOptions {
        label: label.clone(),
        encoding: SignatureEncoding::UnpaddedBase64Url,
        ..SignOptions::new(NOW)
    };
    let signed = sign(&msg.view(), &signature_key, &key, &options).unwrap();
    let value = signed
        .signature
        .strip_prefix("sig1=:")
        .and_then(|v| v.strip_suffix(':'))
        .unwrap();
    assert!(!value.contains('='), "{value}");
    assert_eq!(b64::url_decode(value).unwrap().len(), 64);
    assert!(signed.signature_input.starts_with("sig1=("));

    let mut received = msg;
    for (name, value) in signed.headers() {
        received.headers.push((name.to_owned(), value.to_owned()));
    }
    let strict = prepare(&received.view(), &label, &VerifyPolicy::default(), NOW);
    assert_eq!(strict.unwrap_err(), HttpSigError::NonStandardBase64);
    let lenient = VerifyPolicy {
        lenient_base64: true,
        ..VerifyPolicy::default()
    };
    prepare(&received.view(), &label, &lenient, NOW)
        .unwrap()
        .verify(&verifying(&key))
        .unwrap();

    // By default: an RFC 8941 byte sequence.
    let signed = sign(
        &Msg::new("GET", "/", b"").view(),
        SIGNATURE_KEY,
        &key,
        &SignOptions::new(NOW),
    )
    .unwrap();
    assert!(signed.signature.ends_with("==:"), "{}", signed.signature);
}
