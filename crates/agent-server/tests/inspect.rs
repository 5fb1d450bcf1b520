//! `aauth-agent-server inspect` on the spec vectors: the signature base it
//! shows is the vector's byte for byte, every request vector verifies with
//! the key it names, every token in them decodes and verifies against its
//! issuer's JWKS, and a tampered request or token is reported invalid with
//! exit status 1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test support: a failure here is a test failure"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_aauth-agent-server");

fn vectors(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../spec-vectors")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// The request as on the wire: request line, header lines, empty line, body.
fn raw(request: &Value) -> String {
    let mut text = format!(
        "{} {} HTTP/1.1\r\n",
        request["method"].as_str().unwrap(),
        request["target"].as_str().unwrap()
    );
    for header in request["headers"].as_array().unwrap() {
        text.push_str(&format!(
            "{}: {}\r\n",
            header[0].as_str().unwrap(),
            header[1].as_str().unwrap()
        ));
    }
    text.push_str("\r\n");
    text.push_str(request["body"].as_str().unwrap_or(""));
    text
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn inspect(args: &[&str]) -> (Output, String) {
    let output = Command::new(BIN)
        .arg("inspect")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

/// The JWKS a `jwks_uri` or a token's issuer names, from `directory.json`.
fn jwks_of(issuer: &str) -> String {
    let directory = vectors("directory.json");
    let documents = &directory["documents"];
    let metadata = ["aauth-agent", "aauth-issuer", "aauth-resource"]
        .iter()
        .find_map(|name| documents.get(format!("{issuer}/.well-known/{name}")))
        .unwrap_or_else(|| panic!("no metadata for {issuer}"));
    let jwks_uri = metadata["jwks_uri"].as_str().unwrap();
    documents[jwks_uri].to_string()
}

#[test]
fn the_signature_base_shown_is_the_vectors_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let cases = vectors("signature-bases.json");
    for case in cases["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let request = &case["request"];
        let file = write(dir.path(), name, &raw(request));
        let created = case["created"].as_u64().unwrap().to_string();
        let (output, stdout) = inspect(&[
            "request",
            file.to_str().unwrap(),
            "--authority",
            request["authority"].as_str().unwrap(),
            "--now",
            &created,
        ]);
        let expected = format!(
            "-----\n{}\n-----\n",
            case["signature_base"].as_str().unwrap()
        );
        assert!(stdout.contains(&expected), "{name}: {stdout}");
        assert!(output.status.success(), "{name}: {stdout}");
        assert!(stdout.contains("signature: valid"), "{name}: {stdout}");
    }
}

#[test]
fn every_request_vector_verifies_and_every_token_in_it_checks_out() {
    let dir = tempfile::tempdir().unwrap();
    let cases = vectors("requests.json");
    let mut tokens = 0;
    for case in cases["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let verifier = &case["verifier"];
        let now = case["now"].as_u64().unwrap().to_string();
        let file = write(dir.path(), name, &raw(&case["request"]));
        let mut args = vec![
            "request".to_owned(),
            file.display().to_string(),
            "--authority".to_owned(),
            verifier["authority"].as_str().unwrap().to_owned(),
            "--now".to_owned(),
            now.clone(),
        ];
        if verifier["lenient_base64"].as_bool().unwrap() {
            args.push("--lenient-base64".to_owned());
        }
        let signature_key = case["request"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case("signature-key"))
            .unwrap()[1]
            .as_str()
            .unwrap()
            .to_owned();
        if case["expect"]["scheme"] == "jwks_uri" {
            let id = signature_key
                .split("id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap();
            let jwks = write(dir.path(), &format!("{name}.jwks"), &jwks_of(id));
            args.extend(["--key".to_owned(), jwks.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (output, stdout) = inspect(&args);
        assert!(output.status.success(), "{name}: {stdout}");
        assert!(stdout.contains("profile checks: pass"), "{name}: {stdout}");
        assert!(stdout.contains("signature: valid"), "{name}: {stdout}");
        if let Some(key) = case["expect"]["key_thumbprint"].as_str() {
            assert!(stdout.contains(key), "{name} names the key {key}: {stdout}");
        }

        if let Some(jwt) = signature_key
            .split("jwt=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        {
            tokens += 1;
            let payload = jwt.split('.').nth(1).unwrap();
            let claims: Value = serde_json::from_slice(&base64_url_decode(payload)).unwrap();
            let jwks = write(
                dir.path(),
                &format!("{name}.issuer.jwks"),
                &jwks_of(claims["iss"].as_str().unwrap()),
            );
            let (output, stdout) = inspect(&[
                "token",
                jwt,
                "--jwks",
                jwks.to_str().unwrap(),
                "--now",
                &now,
            ]);
            if verifier["token_leeway"].as_u64().unwrap() > 0 {
                // Accepted only within the verifier's grace after `exp`
                // (P-TOK-5): inspect, which has none, calls it expired.
                assert_eq!(output.status.code(), Some(1), "{name}: {stdout}");
                assert!(stdout.contains("\nexpired\n"), "{name}: {stdout}");
            } else {
                assert!(output.status.success(), "{name}: {stdout}");
            }
            assert!(
                stdout.contains("signature: valid with kid"),
                "{name}: {stdout}"
            );
            assert!(
                stdout.contains("cnf.jwk thumbprint (RFC 7638)"),
                "{name}: {stdout}"
            );

            // One character of the signature changed: the same JWKS refuses it.
            let tampered = tamper(jwt, 2);
            let (output, stdout) = inspect(&[
                "token",
                &tampered,
                "--jwks",
                jwks.to_str().unwrap(),
                "--now",
                &now,
            ]);
            assert_eq!(output.status.code(), Some(1), "{name}: {stdout}");
            assert!(stdout.contains("signature: INVALID"), "{name}: {stdout}");
        }
    }
    assert!(tokens >= 4, "the vectors carry agent and auth tokens");
}

#[test]
fn a_request_changed_after_signing_is_reported_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let cases = vectors("requests.json");
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "hwk-get")
        .unwrap();
    let text = raw(&case["request"]).replace("GET /data", "GET /admin");
    let file = write(dir.path(), "tampered", &text);
    let now = case["now"].as_u64().unwrap().to_string();
    let (output, stdout) = inspect(&[
        "request",
        file.to_str().unwrap(),
        "--authority",
        "resource.example",
        "--now",
        &now,
    ]);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("\"@path\": /admin"), "{stdout}");
    assert!(
        stdout.contains("signature: INVALID with the hwk key"),
        "{stdout}"
    );

    // Read from standard input too, and judged at the real clock: the
    // vector's `created` is long past.
    let mut child = Command::new(BIN)
        .args(["inspect", "request", "--authority", "resource.example"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        raw(&case["request"]).as_bytes(),
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("profile checks: FAIL: signature created at"),
        "{stdout}"
    );
    assert!(
        stdout.contains("signature: valid with the hwk key"),
        "{stdout}"
    );
}

/// `token` with the byte at `segment`'s middle changed.
fn tamper(token: &str, segment: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let part = &mut parts[segment];
    let middle = part.len() / 2;
    let replacement = if &part[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    part.replace_range(middle..=middle, replacement);
    parts.join(".")
}

fn base64_url_decode(text: &str) -> Vec<u8> {
    aauth_protocol::b64::url_decode(text).unwrap()
}
