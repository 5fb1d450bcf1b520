//! `Content-Digest` (RFC 9530, P-SIG-1). The input is the field value, a
//! newline, and the body. Never a panic; the digest we emit for any body
//! parses and verifies against it, and fails against another body.
#![no_main]

use aauth_protocol::content_digest::{ContentDigest, sha256_field};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (field, body) = data.split_at(split);
    let body = body.get(1..).unwrap_or_default();
    if let Ok(field) = std::str::from_utf8(field)
        && let Ok(digest) = ContentDigest::parse(field)
    {
        let _ = digest.verify(body);
    }
    let ours = sha256_field(body);
    let parsed = ContentDigest::parse(&ours).unwrap_or_else(|e| panic!("{ours:?}: {e}"));
    parsed
        .verify(body)
        .unwrap_or_else(|e| panic!("our digest of the body does not verify: {e}"));
    let mut other = body.to_vec();
    other.push(0);
    assert!(
        parsed.verify(&other).is_err(),
        "a digest verified another body"
    );
});
