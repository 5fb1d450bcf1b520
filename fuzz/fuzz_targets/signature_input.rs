//! `Signature-Input` and `Signature` (RFC 9421 §4, P-SIG-2, P-SIG-3,
//! P-SIG-7). The input is the two field values on two lines. Never a
//! panic; a parsed `Signature-Input` written back parses to the same; a
//! `Signature` the strict reader takes, the lenient one takes with the same
//! bytes.
#![no_main]

use aauth_protocol::httpsig::{SignatureInput, SignatureValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (input, signature) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(parsed) = SignatureInput::parse(input) {
        let emitted = parsed
            .to_field_value()
            .unwrap_or_else(|e| panic!("{input:?} parses but cannot be written: {e}"));
        let again = SignatureInput::parse(&emitted)
            .unwrap_or_else(|e| panic!("{emitted:?}, emitted from {input:?}, does not parse: {e}"));
        assert_eq!(again, parsed, "{input:?} → {emitted:?}");
    }
    if let Ok(strict) = SignatureValue::parse(signature, false) {
        let lenient = SignatureValue::parse(signature, true)
            .unwrap_or_else(|e| panic!("{signature:?}: strict reads it, lenient does not: {e}"));
        assert_eq!(strict.bytes(), lenient.bytes(), "{signature:?}");
        assert_eq!(strict.label(), lenient.label(), "{signature:?}");
    }
});
