//! Compact JWS written by hand, so that tokens can be wrong in exactly one
//! way: `alg: none`, HS256 keyed with a public key, a `typ` of another
//! token, a hostile `kid`, claims a conforming issuer would never write.

use aauth_protocol::b64;
use aauth_protocol::jwk::PublicKey;
use aauth_protocol::keys::{SigningKey, sha256};
use serde_json::{Value, json};

/// A JOSE header for Ed25519 with `typ` and `kid`.
pub fn header(typ: &str, kid: &str) -> Value {
    json!({"alg": "EdDSA", "typ": typ, "kid": kid})
}

/// `header.payload` as compact JWS input.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64::url_encode(header.to_string()),
        b64::url_encode(claims.to_string())
    )
}

/// A token signed by `key` over `header` and `claims`.
pub fn sign(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let signature = key.sign(input.as_bytes()).unwrap_or_default();
    format!("{input}.{}", b64::url_encode(signature))
}

/// A compact JWS over raw `payload` bytes (not JSON).
pub fn sign_bytes(key: &SigningKey, header: &Value, payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64::url_encode(header.to_string()),
        b64::url_encode(payload)
    );
    let signature = key.sign(input.as_bytes()).unwrap_or_default();
    format!("{input}.{}", b64::url_encode(signature))
}

/// An unsecured token: `alg: none` and an empty signature (RFC 7519 §6).
pub fn unsecured(typ: &str, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": typ, "kid": kid});
    format!("{}.", signing_input(&header, claims))
}

/// HS256 keyed with the bytes of `public` as a JWK: the algorithm
/// confusion attack on verifiers that take `alg` from the token.
pub fn hs256_with_public_key(typ: &str, kid: &str, public: &PublicKey, claims: &Value) -> String {
    let header = json!({"alg": "HS256", "typ": typ, "kid": kid});
    let input = signing_input(&header, claims);
    let secret = public.to_json_value().to_string();
    format!(
        "{input}.{}",
        b64::url_encode(hmac_sha256(secret.as_bytes(), input.as_bytes()))
    )
}

/// HMAC-SHA-256 (RFC 2104) from the SHA-256 the protocol crate exposes.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        if let Some(head) = block.get_mut(..32) {
            head.copy_from_slice(&sha256(key));
        }
    } else if let Some(head) = block.get_mut(..key.len()) {
        head.copy_from_slice(key);
    }
    let mut inner = Vec::with_capacity(64 + message.len());
    inner.extend(block.iter().map(|b| b ^ 0x36));
    inner.extend_from_slice(message);
    let inner_hash = sha256(&inner);
    let mut outer = Vec::with_capacity(96);
    outer.extend(block.iter().map(|b| b ^ 0x5c));
    outer.extend_from_slice(&inner_hash);
    sha256(&outer)
}

/// The claims of a compact JWS, unverified; `None` when they do not parse.
pub fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&b64::url_decode(payload).ok()?).ok()
}

/// The JOSE header of a compact JWS, unverified.
pub fn header_of(token: &str) -> Option<Value> {
    let header = token.split('.').next()?;
    serde_json::from_slice(&b64::url_decode(header).ok()?).ok()
}

/// `token` with one claim changed and the signature kept: no longer valid.
pub fn tampered(token: &str, claim: &str, value: Value) -> String {
    let mut parts = token.splitn(3, '.');
    let (Some(header), Some(_), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return token.to_owned();
    };
    let mut payload = claims(token).unwrap_or_else(|| json!({}));
    if let Some(object) = payload.as_object_mut() {
        object.insert(claim.to_owned(), value);
    }
    format!(
        "{header}.{}.{signature}",
        b64::url_encode(payload.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2.
    #[test]
    fn hmac_matches_rfc_4231() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            b64::std_encode(mac),
            b64::std_encode([
                0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
                0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9,
                0x64, 0xec, 0x38, 0x43
            ])
        );
    }

    #[test]
    fn tampering_keeps_the_header_and_signature() {
        let token = "eyJhIjoxfQ.eyJiIjoyfQ.c2ln";
        let changed = tampered(token, "b", json!(3));
        assert!(changed.starts_with("eyJhIjoxfQ.") && changed.ends_with(".c2ln"));
        assert_eq!(claims(&changed).unwrap()["b"], 3);
    }
}
