//! `content-digest.json`: the `Content-Digest` we emit and what we accept
//! (RFC 9530, E§10.3, profile: P-SIG-1).

use aauth_protocol::content_digest::{ContentDigest, sha256_field};

use crate::build::unique_names;
use crate::schema::{ContentDigestCase, ContentDigestOp, VectorFile};
use crate::{Report, Result, SCHEMA_VERSION, VectorError, ensure, parse_file};

const HELLO: &str = r#"{"hello": "world"}"#;
const HELLO_SHA256: &str = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
const HELLO_SHA512: &str = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";

/// Receives `header` with `body`: `None` when accepted, else (code, detail).
fn receive(header: &str, body: &str) -> Option<(String, String)> {
    let outcome = ContentDigest::parse(header).and_then(|cd| cd.verify(body.as_bytes()));
    outcome
        .err()
        .map(|e| (e.condition().wire().code.as_str().to_owned(), e.to_string()))
}

fn emit(name: &str, description: &str, body: &str) -> ContentDigestCase {
    ContentDigestCase {
        name: name.into(),
        description: description.into(),
        op: ContentDigestOp::Emit {
            body: body.into(),
            header: sha256_field(body.as_bytes()),
        },
    }
}

fn verify(name: &str, description: &str, header: &str, body: &str) -> ContentDigestCase {
    let (error, detail) = match receive(header, body) {
        Some((code, detail)) => (Some(code), Some(detail)),
        None => (None, None),
    };
    ContentDigestCase {
        name: name.into(),
        description: description.into(),
        op: ContentDigestOp::Verify {
            header: header.into(),
            body: body.into(),
            error,
            detail,
        },
    }
}

pub(crate) fn generate() -> Result<VectorFile<ContentDigestCase>> {
    let cases = vec![
        emit(
            "emit-rfc9530-example",
            "P-SIG-1: we emit sha-256 as an RFC 8941 byte sequence; RFC 9530 §2's example body",
            HELLO,
        ),
        emit(
            "emit-form-body",
            "P-SIG-1: sha-256 of a form body (the token endpoint's content type)",
            "request_type=auth&scope=data.read",
        ),
        verify(
            "accept-sha256",
            "P-SIG-1: sha-256 accepted",
            HELLO_SHA256,
            HELLO,
        ),
        verify(
            "accept-sha512",
            "P-SIG-1: sha-512 accepted (RFC 9421 B.2's Content-Digest)",
            HELLO_SHA512,
            HELLO,
        ),
        verify(
            "accept-both",
            "P-SIG-1: both supported digests present and matching",
            &format!("{HELLO_SHA256}, {HELLO_SHA512}"),
            HELLO,
        ),
        verify(
            "ignore-unknown-algorithm",
            "RFC 9530 §2: a recipient MAY ignore unknown algorithms; one supported digest suffices",
            &format!("md5=:sQqNsWTgdUEFt6mb5y4/5Q==:, {HELLO_SHA256}"),
            HELLO,
        ),
        verify(
            "reject-sha256-mismatch",
            "P-SIG-1: the digest is checked against the received body",
            HELLO_SHA256,
            r#"{"hello": "world!"}"#,
        ),
        verify(
            "reject-sha512-mismatch",
            "P-SIG-1: every supported digest present must match, sha-512 included",
            &format!(
                "{HELLO_SHA256}, sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
            ),
            r#"{"hello": "world!"}"#,
        ),
        verify(
            "reject-no-supported-algorithm",
            "P-SIG-1: sha-256 or sha-512 is required; only unknown algorithms is refused",
            "md5=:sQqNsWTgdUEFt6mb5y4/5Q==:",
            HELLO,
        ),
        verify(
            "reject-not-byte-sequence",
            "RFC 9530 §2: the value is a byte sequence, not base64 text in a token or string",
            "sha-256=\"X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\"",
            HELLO,
        ),
        verify(
            "reject-not-a-dictionary",
            "RFC 9530 §2: the field is an RFC 8941 dictionary",
            "sha-256: X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
            HELLO,
        ),
        verify(
            "reject-duplicate-algorithm",
            "an algorithm listed twice is refused rather than silently keeping the last (RFC 8941 §4.2.2)",
            &format!("{HELLO_SHA256}, sha-256=:AAAA:"),
            HELLO,
        ),
    ];
    Ok(VectorFile {
        description: "Content-Digest (RFC 9530) as the AAuth signing profile uses it (E§10.3, P-SIG-1): what a signer emits for a body, and whether a verifier accepts a received header for a received body.".into(),
        version: SCHEMA_VERSION,
        cases,
    })
}

pub(crate) fn check(contents: &str, report: &mut Report) -> Result<()> {
    let file: VectorFile<ContentDigestCase> = parse_file(contents)?;
    unique_names(file.cases.iter().map(|c| c.name.as_str()))?;
    for c in &file.cases {
        let outcome = match &c.op {
            ContentDigestOp::Emit { body, header } => {
                let emitted = sha256_field(body.as_bytes());
                ensure(&emitted == header, || format!("emitted {emitted}"))
            }
            ContentDigestOp::Verify {
                header,
                body,
                error,
                detail,
            } => match (receive(header, body), error) {
                (None, None) => Ok(()),
                (Some((code, got)), Some(want)) => ensure(
                    &code == want && detail.as_deref() == Some(got.as_str()),
                    || format!("refused with {code} ({got})"),
                ),
                (None, Some(want)) => Err(VectorError(format!("accepted, expected {want}"))),
                (Some((code, got)), None) => Err(VectorError(format!("refused: {code} ({got})"))),
            },
        };
        report.record("content-digest.json", &c.name, outcome);
    }
    Ok(())
}
