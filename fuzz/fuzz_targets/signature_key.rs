//! `Signature-Key` in both syntaxes (SK0§2, P-SK-1, P-SK-2): never a
//! panic, and what parses is emitted and parsed back to the same key in
//! either syntax.
#![no_main]

use aauth_protocol::signature_key::{self, Syntax};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(field) = signature_key::parse(text) else {
        return;
    };
    for syntax in [Syntax::Sk0, Syntax::Parenthesised] {
        // Not every key can be written in both syntaxes (P-SK-2); what is
        // written must read back the same.
        if let Ok(emitted) = field.to_header_value(syntax) {
            let again = signature_key::parse(&emitted).unwrap_or_else(|e| {
                panic!("{emitted:?}, emitted from {text:?}, does not parse: {e}")
            });
            assert_eq!(again.key, field.key, "{text:?} → {emitted:?}");
            assert_eq!(again.label, field.label, "{text:?} → {emitted:?}");
        }
    }
});
