//! Differential testing of the RFC 9421 layer against an implementation
//! written apart from this one: the PyPI package `http-message-signatures`
//! 3.0.0 (pinned in `interop/requirements.txt`), through
//! `interop/peer/rfc9421_diff.py`. For seeded random requests and component
//! sets, both sides must build the same signature base, and each must verify
//! the other's signature.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::process::{Command, Stdio};

use aauth_interop::{python, root};
use aauth_protocol::b64;
use aauth_protocol::httpsig::{
    Request, SignatureInput, SignatureValue, build_signature_base, verify_signature,
};
use aauth_protocol::keys::{SigningKey, VerifyingKey};
use serde_json::{Value, json};

/// RFC 8037 A.1's Ed25519 key.
const D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const AUTHORITY: &str = "resource.example";
const CREATED: u64 = 1_767_225_600;
const CASES: usize = 300;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).unwrap()
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.next() % from.len()]
    }
}

/// One random request and the components it covers.
struct Case {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    components: Vec<String>,
}

fn case(rng: &mut Lcg) -> Case {
    let method = rng.pick(&[
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PURGE",
    ]);
    let pieces = [
        "data",
        "a",
        "Notes",
        "x-y_z.~",
        "%20",
        "%2F",
        "caf%C3%A9",
        ":@!$&'()*+,;=",
        "1",
    ];
    let mut path = String::new();
    for _ in 0..rng.next() % 4 {
        path.push('/');
        path.push_str(rng.pick(&pieces));
    }
    if path.is_empty() || rng.next().is_multiple_of(5) {
        path.push('/');
    }
    let query = match rng.next() % 4 {
        0 => None,
        1 => Some(String::new()),
        _ => Some(
            (0..1 + rng.next() % 3)
                .map(|_| {
                    format!(
                        "{}={}",
                        rng.pick(&["a", "q", "Page", "x%20y", ""]),
                        rng.pick(&["1", "", "%2F", "a+b", "?", "=", "caf%C3%A9"])
                    )
                })
                .collect::<Vec<_>>()
                .join("&"),
        ),
    };
    let target = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut headers = Vec::new();
    let names = [
        "Content-Type",
        "accept",
        "X-Multi",
        "Cache-Control",
        "x-Empty",
    ];
    let values = [
        "application/json",
        "  padded  ",
        "\ttabbed\t",
        "a,  b",
        "text/plain; q=0.5",
        "",
        "\"quoted\"",
    ];
    for _ in 0..rng.next() % 5 {
        headers.push((rng.pick(&names).to_owned(), rng.pick(&values).to_owned()));
    }
    headers.push((
        "Signature-Key".to_owned(),
        "sig=hwk;kty=\"OKP\";crv=\"Ed25519\";x=\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\""
            .to_owned(),
    ));
    let mut pool: Vec<String> = vec!["@method".into(), "@authority".into(), "@path".into()];
    if query.is_some() {
        pool.push("@query".into());
    }
    for (name, _) in &headers {
        let lower = name.to_ascii_lowercase();
        if !pool.contains(&lower) {
            pool.push(lower);
        }
    }
    let mut components = Vec::new();
    while !pool.is_empty() && (components.is_empty() || !rng.next().is_multiple_of(4)) {
        components.push(pool.remove(rng.next() % pool.len()));
    }
    Case {
        method: method.to_owned(),
        target,
        headers,
        components,
    }
}

#[test]
fn both_implementations_build_the_same_bases_and_verify_each_others_signatures() {
    let key = SigningKey::ed25519_from_seed(&b64::url_decode(D).unwrap()).unwrap();
    let verifying = VerifyingKey::new(key.public_key()).unwrap();
    let mut rng = Lcg(0x9421_2026);
    let cases: Vec<Case> = (0..CASES).map(|_| case(&mut rng)).collect();

    // Ours first: the Signature-Input both sides use, our base, our signature.
    let mut ours = Vec::new();
    let mut input_cases = Vec::new();
    for c in &cases {
        let list = c
            .components
            .iter()
            .map(|name| format!("\"{name}\""))
            .collect::<Vec<_>>()
            .join(" ");
        let input_text = format!("sig=({list});created={CREATED};keyid=\"k\"");
        let input = SignatureInput::parse(&input_text).unwrap();
        let request = Request {
            method: &c.method,
            authority: AUTHORITY,
            target: &c.target,
            headers: &c.headers,
            body: None,
        };
        let base = build_signature_base(&request, &input);
        let signature = match &base {
            Ok(base) => format!(
                "sig=:{}:",
                b64::std_encode(key.sign(base.as_bytes()).unwrap())
            ),
            Err(_) => "sig=::".to_owned(),
        };
        input_cases.push(json!({
            "method": c.method,
            "url": format!("https://{AUTHORITY}{}", c.target),
            "headers": c.headers,
            "components": c.components,
            "created": CREATED,
            "label": "sig",
            "d": D,
            "ours_signature_input": input_text,
            "ours_signature": signature,
        }));
        ours.push(base);
    }

    let mut child = Command::new(python().unwrap())
        .arg(root().join("peer/rfc9421_diff.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json!({ "cases": input_cases }).to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let theirs: Value = serde_json::from_slice(&output.stdout).unwrap();
    let theirs = theirs["results"].as_array().unwrap();
    assert_eq!(theirs.len(), CASES);

    let mut disagreements = Vec::new();
    let mut compared = 0;
    for (i, ((c, our_base), their)) in cases.iter().zip(&ours).zip(theirs).enumerate() {
        let what = format!(
            "case {i}: {} {} {:?} covering {:?}",
            c.method, c.target, c.headers, c.components
        );
        match (our_base, their["base"].as_str()) {
            (Ok(ours), Some(base)) => {
                compared += 1;
                if ours != base {
                    disagreements.push(format!("{what}\n  ours:   {ours:?}\n  theirs: {base:?}"));
                    continue;
                }
                let value =
                    SignatureValue::parse(their["signature"].as_str().unwrap(), false).unwrap();
                if verify_signature(ours.as_bytes(), value.bytes(), None, &verifying).is_err() {
                    disagreements.push(format!("{what}\n  we do not verify their signature"));
                }
                if their["verifies_ours"] != true {
                    disagreements.push(format!(
                        "{what}\n  they do not verify ours: {}",
                        their["verify_error"]
                    ));
                }
            }
            (Err(e), None) => {
                // Both refuse to build a base: agreement.
                let _ = e;
            }
            (Ok(_), None) => {
                disagreements.push(format!("{what}\n  they refuse: {}", their["error"]))
            }
            (Err(e), Some(_)) => disagreements.push(format!("{what}\n  we refuse: {e}")),
        }
    }
    eprintln!(
        "{compared} of {CASES} cases compared, {} disagreements",
        disagreements.len()
    );
    // Cases both sides refuse (none are generated on purpose) must not
    // quietly become the test.
    assert!(
        compared >= CASES * 9 / 10,
        "only {compared} of {CASES} compared"
    );
    assert!(
        disagreements.is_empty(),
        "{} of {CASES} cases disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
