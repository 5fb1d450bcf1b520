//! Compact JWS and token routing (RFC 7515, P-TOK-1): the parser, the
//! unverified peek a verifier routes on, and the declared type. Never a
//! panic; what peeks is a JWS, and its type is the one its header declares.
#![no_main]

use aauth_protocol::ids::OriginMode;
use aauth_protocol::jose::UnverifiedJws;
use aauth_protocol::tokens::{declared_type, peek};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = UnverifiedJws::parse(text);
    let declared = declared_type(text);
    for mode in [OriginMode::Production, OriginMode::Dev] {
        if let Ok(peeked) = peek(text, mode) {
            assert!(parsed.is_ok(), "{text:?} peeks but is not a JWS");
            assert_eq!(declared, Some(peeked.typ), "{text:?}");
        }
    }
});
