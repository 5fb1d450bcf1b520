//! `Agent-Auth` challenges (E§4, P-CH-1..4): never a panic, and a parsed
//! challenge written back out parses to the same challenge.
#![no_main]

use aauth_protocol::challenge::AgentAuth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(challenge) = AgentAuth::parse(text) else {
        return;
    };
    let emitted = challenge.to_header_value();
    let again = AgentAuth::parse(&emitted)
        .unwrap_or_else(|e| panic!("{emitted:?}, emitted from {text:?}, does not parse: {e}"));
    assert_eq!(again, challenge, "{text:?} → {emitted:?}");
});
