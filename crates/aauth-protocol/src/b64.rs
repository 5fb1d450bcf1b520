//! Base64 helpers: base64url without padding (JOSE, RFC 7515 §2) and the
//! standard padded alphabet (RFC 8941 byte sequences).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Encodes as base64url without padding, as JOSE requires.
pub fn url_encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes strict base64url without padding (the only form JOSE allows).
pub fn url_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text)
}

/// Encodes with the standard alphabet and padding (an RFC 8941 byte sequence body).
pub fn std_encode(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// Decodes any of the four base64 variants: standard or url-safe alphabet,
/// padded or not. Only used behind the `lenient_base64` switch (profile: P-SIG-7).
pub fn lenient_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let url = text.contains(['-', '_']);
    let padded = text.ends_with('=');
    match (url, padded) {
        (false, true) => STANDARD.decode(text),
        (false, false) => STANDARD_NO_PAD.decode(text),
        (true, true) => URL_SAFE.decode(text),
        (true, false) => URL_SAFE_NO_PAD.decode(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_round_trip_has_no_padding() {
        let encoded = url_encode([0xfb, 0xff]);
        assert_eq!(encoded, "-_8");
        assert_eq!(url_decode(&encoded).unwrap(), vec![0xfb, 0xff]);
    }

    #[test]
    fn url_decode_rejects_padding_and_standard_alphabet() {
        assert!(url_decode("-_8=").is_err());
        assert!(url_decode("+/8").is_err());
    }

    #[test]
    fn lenient_accepts_all_four_forms() {
        for text in ["+/8=", "+/8", "-_8=", "-_8"] {
            assert_eq!(lenient_decode(text).unwrap(), vec![0xfb, 0xff], "{text}");
        }
    }
}
