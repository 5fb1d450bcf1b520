//! Credentials held as text, as their own types (style §5): what whoever
//! holds them can use, so `Debug` never shows them whole.
//!
//! * [`RefreshToken`], [`RequestToken`], [`AuthorizationCode`]: opaque
//!   (E§9.4–9.7, P-AS-3, P-AS-5, P-AS-6); `Debug` prints `[redacted]`.
//! * [`SignedToken`]: a compact JWT an agent presents (an auth token, an
//!   agent token); `Debug` prints its decoded header and claims, which a
//!   reader needs to follow a flow, and never its signature, without which
//!   the text cannot be presented.
//!
//! Each is serialized as the plain string it wraps, so stored files and
//! wire formats do not change. [`jwt_view`] is the same reading for any
//! text that may be a JWT (a trace of a request, say).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::b64;

/// The header and claims of a compact JWT, decoded, without its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtView {
    /// The JOSE header.
    pub header: Value,
    /// The claims.
    pub claims: Value,
}

impl fmt::Display for JwtView {
    /// `header {…} claims {…} signature [redacted]`, one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "header {} claims {} signature [redacted]",
            self.header, self.claims
        )
    }
}

/// Reads `text` as a compact JWS (three base64url segments, the first two
/// JSON objects) without verifying anything; `None` when it is not one.
/// Bounded by [`crate::jose::MAX_COMPACT_LEN`].
pub fn jwt_view(text: &str) -> Option<JwtView> {
    if text.len() > crate::jose::MAX_COMPACT_LEN {
        return None;
    }
    let mut segments = text.split('.');
    let (Some(header), Some(claims), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return None;
    };
    let object = |segment: &str| {
        let bytes = b64::url_decode(segment).ok()?;
        let value: Value = serde_json::from_slice(&bytes).ok()?;
        value.is_object().then_some(value)
    };
    Some(JwtView {
        header: object(header)?,
        claims: object(claims)?,
    })
}

/// A compact JWT presented as a credential: an auth token (E§7) or an
/// agent token (E§5). `Debug` shows its header and claims, never its
/// signature.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SignedToken(String);

impl SignedToken {
    /// Wraps the token's text.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text, to present it (in `Signature-Key`, say).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SignedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match jwt_view(&self.0) {
            Some(view) => write!(f, "SignedToken({view})"),
            None => f.write_str("SignedToken([redacted])"),
        }
    }
}

/// Opaque credentials: wrapped, exposed on purpose, redacted in `Debug`.
macro_rules! opaque_secret {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps the value.
            pub fn new(text: impl Into<String>) -> Self {
                Self(text.into())
            }

            /// The value, to send it where it belongs.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

opaque_secret!(
    /// A refresh token (E§9.7, P-AS-6): it buys new auth tokens for as long
    /// as its grant lives.
    RefreshToken
);
opaque_secret!(
    /// A request token (E§9.4, P-AS-3): it opens the user's consent page.
    RequestToken
);
opaque_secret!(
    /// An authorization code (E§9.5, P-AS-5): it is redeemed once for tokens.
    AuthorizationCode
);

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str, claims: &str, signature: &str) -> String {
        format!(
            "{}.{}.{signature}",
            b64::url_encode(header.as_bytes()),
            b64::url_encode(claims.as_bytes())
        )
    }

    #[test]
    fn opaque_credentials_never_show_in_debug() {
        let refresh = RefreshToken::new("r3fr3sh-s3cret");
        assert_eq!(format!("{refresh:?}"), "RefreshToken([redacted])");
        assert_eq!(refresh.expose(), "r3fr3sh-s3cret");
        assert_eq!(
            format!("{:?}", RequestToken::new("x")),
            "RequestToken([redacted])"
        );
        assert_eq!(
            format!("{:?}", AuthorizationCode::new("x")),
            "AuthorizationCode([redacted])"
        );
        // Stored as the plain string.
        assert_eq!(
            serde_json::to_string(&refresh).unwrap(),
            "\"r3fr3sh-s3cret\""
        );
    }

    #[test]
    fn a_signed_token_shows_its_claims_but_not_its_signature() {
        let text = jwt(
            r#"{"alg":"EdDSA","typ":"auth+jwt"}"#,
            r#"{"iss":"https://auth.example","scope":"data.read"}"#,
            "c2lnbmF0dXJlLXNlY3JldA",
        );
        let shown = format!("{:?}", SignedToken::new(text.clone()));
        assert!(shown.contains("\"scope\":\"data.read\""), "{shown}");
        assert!(shown.contains("auth+jwt"), "{shown}");
        assert!(!shown.contains("c2lnbmF0dXJlLXNlY3JldA"), "{shown}");
        assert!(!shown.contains(&text), "{shown}");
        // Not a JWT: nothing of it.
        let shown = format!("{:?}", SignedToken::new("opaque-secret"));
        assert_eq!(shown, "SignedToken([redacted])");
    }

    #[test]
    fn only_three_segment_json_objects_are_read_as_jwts() {
        assert!(jwt_view(&jwt("{}", "{}", "s")).is_some());
        assert!(jwt_view(&jwt("{}", "[]", "s")).is_none());
        assert!(jwt_view(&jwt("{}", "{}", "s.t")).is_none());
        assert!(jwt_view("a.b").is_none());
        assert!(jwt_view("").is_none());
    }
}
