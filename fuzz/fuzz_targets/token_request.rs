//! The token endpoint's form body (E§9.3–E§9.10, P-AS-1, P-AS-2, P-AS-7):
//! never a panic; every refusal is `invalid_request` or
//! `unsupported_request_type` (P-ERR-1); a body that reads is written back
//! and reads back to the same request. The same bytes as the endpoint's
//! JSON answer: never a panic, and an answer that reads is written back to
//! the same answer.
#![no_main]

use aauth_protocol::error::ErrorCode;
use aauth_protocol::token_request::{TokenRequest, TokenResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = TokenResponse::from_json(data) {
        let json = response.to_json().to_string();
        assert_eq!(
            TokenResponse::from_json(json.as_bytes()).as_ref(),
            Ok(&response),
            "{json}"
        );
    }
    match TokenRequest::from_form(data) {
        Ok(request) => {
            let form = request.to_form();
            let again = TokenRequest::from_form(form.as_bytes())
                .unwrap_or_else(|e| panic!("{form:?}, written from {request:?}, is refused: {e}"));
            assert_eq!(again, request, "{form:?}");
            assert_eq!(again.to_form(), form, "writing is stable");
        }
        Err(error) => {
            let code = error.condition().wire().code;
            assert!(
                matches!(
                    code,
                    ErrorCode::InvalidRequest | ErrorCode::UnsupportedRequestType
                ),
                "{error} answered as {code}"
            );
        }
    }
});
