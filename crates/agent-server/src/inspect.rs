//! `inspect` and `status`: what an implementer reaches for when a token or
//! a signature does not do what they expect, and what a user asks of a
//! delegate's state directory.
//!
//! * `inspect token` decodes an agent, resource or auth token without
//!   verifying it (header, claims, times in words, the `cnf` key's RFC 7638
//!   thumbprint) and, given a JWKS, checks its signature with the `kid` key.
//! * `inspect request` reads a raw HTTP/1.1 request and shows its
//!   `Signature-Key`, the components `Signature-Input` covers, the
//!   signature base this implementation builds, the profile's checks and
//!   whether the signature verifies with the request's own key or a given
//!   one.
//! * `status` shows who a delegate is, its key, its agent token's expiry
//!   and its grants.
//!
//! Everything read is bounded: a token or request at most 1 MiB, a fetched
//! JWKS by the guarded fetch (P-MD-3).

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use aauth_agent::{DelegateState, TokenStore};
use aauth_http::fetch::Fetcher;
use aauth_http::server::unix_now;
use aauth_protocol::b64;
use aauth_protocol::httpsig::{
    self, Request, SignatureInput, SignatureValue, VerifyPolicy, build_signature_base,
};
use aauth_protocol::ids::{Kid, OriginMode};
use aauth_protocol::jose::UnverifiedJws;
use aauth_protocol::jwk::{Jwks, PublicKey};
use aauth_protocol::keys::{Algorithm, VerifyingKey};
use aauth_protocol::signature_key::{self, SignatureKey};
use aauth_protocol::tokens::TokenType;
use serde_json::Value;

/// The most read from a file or standard input.
const MAX_INPUT: u64 = 1024 * 1024;

/// `path`'s contents, or standard input's for `-` or no path.
pub fn read_input(path: Option<&Path>) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    match path {
        Some(path) if path != Path::new("-") => std::fs::File::open(path)
            .and_then(|file| file.take(MAX_INPUT + 1).read_to_end(&mut bytes))
            .map_err(|e| format!("{}: {e}", path.display()))?,
        _ => std::io::stdin()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("standard input: {e}"))?,
    };
    if bytes.len() as u64 > MAX_INPUT {
        return Err(format!("the input is longer than {MAX_INPUT} bytes"));
    }
    Ok(bytes)
}

/// A duration in words: `4 min 12 s`, `3 h 2 min`, `2 d 5 h`.
pub fn duration_words(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// A Unix time relative to `now`: `in 4 min 12 s` or `3 h 2 min ago`.
pub fn when(time: u64, now: u64) -> String {
    if time == now {
        "now".to_owned()
    } else if time > now {
        format!("in {}", duration_words(time - now))
    } else {
        format!("{} ago", duration_words(now - time))
    }
}

/// Where keys come from: a JWKS file or URL.
pub async fn load_jwks(source: &str, mode: OriginMode) -> Result<Jwks, String> {
    let bytes = if source.starts_with("https://") || source.starts_with("http://") {
        let fetcher = Fetcher::new(mode).map_err(|e| e.to_string())?;
        fetcher
            .get(source)
            .await
            .map_err(|e| format!("{source}: {e}"))?
            .body
            .to_vec()
    } else {
        read_input(Some(Path::new(source)))?
    };
    Jwks::from_json(&bytes).map_err(|e| format!("{source}: {e}"))
}

/// A public key from a JWK file, a JWKS file (the member named `kid`, or
/// its only one) or a key file written by this implementation (`{kid, key}`
/// or a private JWK, whose private part is ignored).
pub fn load_key(path: &Path, kid: Option<&Kid>) -> Result<PublicKey, String> {
    let bytes = read_input(Some(path))?;
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| fail(&e))?;
    if value.get("keys").is_some() {
        let jwks = Jwks::from_json(&bytes).map_err(|e| fail(&e))?;
        return pick(&jwks, kid).map_err(|e| fail(&e));
    }
    let jwk = value.get("key").unwrap_or(&value);
    PublicKey::from_json_value(jwk).map_err(|e| fail(&e))
}

/// The key named `kid` in `jwks`, or its only key when no `kid` is asked for.
fn pick(jwks: &Jwks, kid: Option<&Kid>) -> Result<PublicKey, String> {
    match kid {
        Some(kid) => jwks.find(kid).cloned().ok_or_else(|| {
            let kids: Vec<&str> = jwks.keys().iter().map(|k| k.kid.as_str()).collect();
            format!("no key with kid {:?} (the set has {kids:?})", kid.as_str())
        }),
        None => match jwks.keys() {
            [only] => Ok(only.key.clone()),
            keys => Err(format!(
                "{} usable keys and no kid to choose one",
                keys.len()
            )),
        },
    }
}

fn json_segment(segment: &str) -> Option<Value> {
    serde_json::from_slice(&b64::url_decode(segment).ok()?).ok()
}

/// `inspect token`: the report, and whether everything checked passed.
pub fn token_report(token: &str, jwks: Option<&Jwks>, now: u64) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    let token = token.trim();
    let segments: Vec<&str> = token.split('.').collect();
    let (header, claims) = match segments.as_slice() {
        [h, p, _] => (json_segment(h), json_segment(p)),
        _ => (None, None),
    };
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let parsed = UnverifiedJws::parse(token);
    if let Err(e) = &parsed {
        ok = false;
        let _ = writeln!(out, "not a valid compact JWS for this profile: {e}");
    }
    let Some(header) = header else {
        let _ = writeln!(out, "the header does not decode as base64url JSON");
        return (out, false);
    };
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    let kind = TokenType::from_typ(typ);
    let _ = writeln!(
        out,
        "{}",
        match kind {
            Some(TokenType::Agent) => "agent token (agent+jwt, E§5.2)",
            Some(TokenType::Resource) => "resource token (resource+jwt, E§6.2)",
            Some(TokenType::Auth) => "auth token (auth+jwt, E§7.2)",
            _ => "not an AAuth token: typ is none of agent+jwt, resource+jwt, auth+jwt",
        }
    );
    let _ = writeln!(out, "header {}", pretty(&header));
    let Some(claims) = claims else {
        let _ = writeln!(out, "the payload does not decode as base64url JSON");
        return (out, false);
    };
    let _ = writeln!(out, "claims {}", pretty(&claims));
    for (claim, meaning) in [("iat", "issued"), ("nbf", "not before"), ("exp", "expires")] {
        if let Some(time) = claims.get(claim).and_then(Value::as_u64) {
            let _ = writeln!(out, "{meaning}: {}", when(time, now));
        }
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_u64)
        && exp <= now
    {
        ok = false;
        let _ = writeln!(out, "expired");
    }
    match claims.pointer("/cnf/jwk").map(PublicKey::from_json_value) {
        Some(Ok(key)) => {
            let _ = writeln!(
                out,
                "cnf.jwk thumbprint (RFC 7638): {}",
                key.thumbprint().as_str()
            );
        }
        Some(Err(e)) => {
            ok = false;
            let _ = writeln!(out, "cnf.jwk is not a usable key: {e}");
        }
        None => {}
    }
    if let Some(jkt) = claims.get("agent_jkt").and_then(Value::as_str) {
        let _ = writeln!(out, "agent_jkt (the agent's key thumbprint): {jkt}");
    }
    if let Some(act) = claims.get("act") {
        let _ = writeln!(
            out,
            "act: issued by token exchange for the caller {} (E§3.9)",
            act.get("sub").and_then(Value::as_str).unwrap_or("?")
        );
    }
    match (jwks, &parsed, kind) {
        (None, _, _) => {
            let _ = writeln!(out, "signature: not checked (give --jwks FILE|URL)");
        }
        (Some(jwks), Ok(jws), Some(kind)) => {
            let kid = jws.unverified_header().kid().cloned();
            let verdict = pick(jwks, kid.as_ref()).and_then(|key| {
                jws.verify::<Value>(kind.typ(), &key)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
            match verdict {
                Ok(()) => {
                    let _ = writeln!(
                        out,
                        "signature: valid with kid {}",
                        kid.as_ref().map(Kid::as_str).unwrap_or("?")
                    );
                }
                Err(e) => {
                    ok = false;
                    let _ = writeln!(out, "signature: INVALID: {e}");
                }
            }
        }
        (Some(_), _, _) => {
            ok = false;
            let _ = writeln!(out, "signature: not checked: not a token of this profile");
        }
    }
    (out, ok)
}

/// A raw HTTP/1.1 request, as read from a file.
#[derive(Debug)]
pub struct RawRequest {
    method: String,
    target: String,
    /// From an absolute-form target (`GET https://host/path HTTP/1.1`).
    authority: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    /// The `kid` of a `jwks_uri` Signature-Key: the member of a JWKS given
    /// with `--key` that verifies.
    pub fn jwks_kid(&self) -> Option<Kid> {
        let (_, value) = self.headers.iter().find(|(n, _)| n == "signature-key")?;
        match signature_key::parse(value).ok()?.key {
            SignatureKey::JwksUri { kid, .. } => Some(kid),
            _ => None,
        }
    }
}

/// Parses the request line, the header lines up to the empty line (CRLF or
/// LF) and the rest as the body.
pub fn parse_request(bytes: &[u8]) -> Result<RawRequest, String> {
    let split = |at: usize, separator: usize| {
        let (head, rest) = bytes.split_at(at);
        (head, rest.get(separator..).unwrap_or_default())
    };
    let (head, body) = match find(bytes, b"\r\n\r\n") {
        Some(at) => split(at, 4),
        None => match find(bytes, b"\n\n") {
            Some(at) => split(at, 2),
            None => (bytes, &b""[..]),
        },
    };
    let head = std::str::from_utf8(head).map_err(|_| "the request head is not UTF-8")?;
    let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "the first line {request_line:?} is not a request line (METHOD TARGET HTTP/1.1)"
        ));
    };
    let (authority, target) = match target.split_once("://") {
        Some((_, rest)) => {
            let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
            (Some(authority.to_owned()), path.to_owned())
        }
        None => (None, target.to_owned()),
    };
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("the header line {line:?} has no colon"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(RawRequest {
        method: method.to_owned(),
        target,
        authority,
        headers,
        body: body.to_vec(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What `inspect request` is told besides the request.
#[derive(Debug, Default)]
pub struct RequestOptions {
    /// The authority the verifier is configured with (P-SIG-5); default:
    /// the absolute target's, else the `Host` header's.
    pub authority: Option<String>,
    /// A key to verify with instead of the request's own.
    pub key: Option<PublicKey>,
    /// Accept base64url and unpadded `Signature` values (P-SIG-7).
    pub lenient_base64: bool,
}

/// `inspect request`: the report, and whether the signature verifies and
/// the profile's checks pass.
pub fn request_report(raw: &RawRequest, options: &RequestOptions, now: u64) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    let host = raw
        .headers
        .iter()
        .find(|(n, _)| n == "host")
        .map(|(_, v)| v.clone());
    let authority = options
        .authority
        .clone()
        .or_else(|| raw.authority.clone())
        .or(host)
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "request: {} {} (@authority {authority:?}; a verifier uses the one it is configured with, P-SIG-5)",
        raw.method, raw.target
    );
    let headers: Vec<(&str, &str)> = raw
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = Request {
        method: &raw.method,
        authority: &authority,
        target: &raw.target,
        headers: headers.as_slice(),
        body: Some(&raw.body),
    };
    let field = |name: &str| request.field_value(name);

    // Signature-Key (SK0§2, E§10.1.1 steps 1–3).
    let signature_key = match field("signature-key") {
        None => {
            let _ = writeln!(out, "Signature-Key: absent (E§10.1.1 step 1)");
            None
        }
        Some(value) => match signature_key::parse(&value) {
            Ok(parsed) => {
                let _ = writeln!(
                    out,
                    "Signature-Key: label {}, scheme {}, {} syntax",
                    parsed.label.as_str(),
                    parsed.key.scheme(),
                    match parsed.syntax {
                        signature_key::Syntax::Sk0 => "SK0 dictionary (P-SK-1)",
                        signature_key::Syntax::Parenthesised => "parenthesised (P-SK-2)",
                    }
                );
                describe_key(&mut out, &parsed.key);
                Some(parsed)
            }
            Err(e) => {
                ok = false;
                let _ = writeln!(out, "Signature-Key: cannot be parsed: {e}");
                None
            }
        },
    };

    let input = match field("signature-input").map(|v| SignatureInput::parse(&v)) {
        None => {
            let _ = writeln!(out, "Signature-Input: absent");
            return (out, false);
        }
        Some(Err(e)) => {
            let _ = writeln!(out, "Signature-Input: cannot be parsed: {e}");
            return (out, false);
        }
        Some(Ok(input)) => input,
    };
    let components: Vec<&str> = input.components().iter().map(|c| c.name()).collect();
    let _ = writeln!(
        out,
        "Signature-Input: label {}, covers {components:?}",
        input.label().as_str()
    );
    if let Some(created) = input.created() {
        let _ = writeln!(out, "  created {created} ({})", when(created, now));
    }
    if let Some(expires) = input.expires() {
        let _ = writeln!(out, "  expires {expires} ({})", when(expires, now));
    }
    if let Some(alg) = input.alg() {
        let _ = writeln!(out, "  alg {alg}");
    }
    let signature =
        match field("signature").map(|v| SignatureValue::parse(&v, options.lenient_base64)) {
            None => {
                let _ = writeln!(out, "Signature: absent");
                return (out, false);
            }
            Some(Err(e)) => {
                let _ = writeln!(out, "Signature: cannot be parsed: {e}");
                return (out, false);
            }
            Some(Ok(signature)) => signature,
        };
    let _ = writeln!(
        out,
        "Signature: label {}, {} bytes",
        signature.label().as_str(),
        signature.bytes().len()
    );

    let base = match build_signature_base(&request, &input) {
        Ok(base) => base,
        Err(e) => {
            let _ = writeln!(out, "signature base: cannot be built: {e}");
            return (out, false);
        }
    };
    let _ = writeln!(out, "signature base (RFC 9421 §2.5), between the lines:");
    let _ = writeln!(out, "-----\n{base}\n-----");

    // The profile's checks that need no key (E§10.1.1 steps 4–6, E§10.3–10.5).
    if let Some(parsed) = &signature_key {
        let policy = VerifyPolicy {
            lenient_base64: options.lenient_base64,
            ..VerifyPolicy::default()
        };
        match httpsig::prepare(&request, &parsed.label, &policy, now) {
            Ok(_) => {
                let _ = writeln!(out, "profile checks: pass");
            }
            Err(e) => {
                ok = false;
                let _ = writeln!(out, "profile checks: FAIL: {e}");
            }
        }
    }

    let (key, from) = match (&options.key, signature_key.as_ref().map(|s| &s.key)) {
        (Some(key), _) => (Some(key.clone()), "the given key"),
        (None, Some(SignatureKey::Hwk(key))) => (Some(key.clone()), "the hwk key"),
        (None, Some(SignatureKey::Jwt { jwt })) => (jwt_cnf_key(jwt), "the token's cnf.jwk"),
        _ => (None, ""),
    };
    let Some(key) = key else {
        let _ = writeln!(
            out,
            "signature: not checked (give --key FILE: a JWK, a JWKS or a key file)"
        );
        return (out, false);
    };
    let alg = input.alg().and_then(Algorithm::from_http_name);
    let verdict = VerifyingKey::new(&key)
        .map_err(|e| e.to_string())
        .and_then(|verifying| {
            httpsig::verify_signature(base.as_bytes(), signature.bytes(), alg, &verifying)
                .map_err(|e| e.to_string())
        });
    match verdict {
        Ok(()) => {
            let _ = writeln!(
                out,
                "signature: valid with {from} (thumbprint {})",
                key.thumbprint().as_str()
            );
        }
        Err(e) => {
            ok = false;
            let _ = writeln!(
                out,
                "signature: INVALID with {from} (thumbprint {}): {e}",
                key.thumbprint().as_str()
            );
        }
    }
    (out, ok)
}

fn describe_key(out: &mut String, key: &SignatureKey) {
    let _ = match key {
        SignatureKey::Hwk(key) => writeln!(
            out,
            "  inline public key, thumbprint {} (pseudonymous, SK0§2.3)",
            key.thumbprint().as_str()
        ),
        SignatureKey::JwksUri {
            id,
            well_known,
            kid,
        } => writeln!(
            out,
            "  key {} in the JWKS named by {id}/.well-known/{well_known} (SK0§2.4)",
            kid.as_str()
        ),
        SignatureKey::Jwt { jwt } => {
            let kind = jwt
                .split('.')
                .next()
                .and_then(json_segment)
                .and_then(|h| h.get("typ").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            writeln!(
                out,
                "  a token of type {kind} (SK0§2.6), whose cnf.jwk signs; `inspect token` decodes it"
            )
        }
        SignatureKey::X509 { .. } => {
            writeln!(
                out,
                "  an x509 chain (SK0§2.5), which this profile refuses (P-SK-5)"
            )
        }
    };
}

fn jwt_cnf_key(jwt: &str) -> Option<PublicKey> {
    let claims = json_segment(jwt.split('.').nth(1)?)?;
    PublicKey::from_json_value(claims.pointer("/cnf/jwk")?).ok()
}

/// `status`: a delegate's state directory in words.
pub fn status_report(dir: &Path, now: u64) -> Result<String, String> {
    let state = DelegateState::load(dir).map_err(|e| e.to_string())?;
    let tokens = TokenStore::in_dir(dir).map_err(|e| e.to_string())?;
    let mut out = String::new();
    let record = &state.record;
    let _ = writeln!(out, "delegate {} of agent {}", record.sub, record.agent);
    let _ = writeln!(out, "state directory {}", dir.display());
    let _ = writeln!(
        out,
        "key thumbprint {} ({})",
        state.key.public_key().thumbprint().as_str(),
        state.key.algorithm().http_name()
    );
    let expiry = if record.expires_at > now {
        format!("valid, expires {}", when(record.expires_at, now))
    } else {
        format!(
            "EXPIRED {}; `renew` needs a valid one, else enroll again",
            when(record.expires_at, now)
        )
    };
    let _ = writeln!(out, "agent token {expiry}");
    let grants = tokens.all();
    if grants.is_empty() {
        let _ = writeln!(out, "grants: none");
    }
    for grant in grants {
        let _ = writeln!(
            out,
            "grant: {} scope {:?} from {}: auth token {}{}",
            grant.resource,
            grant.scope,
            grant.auth_server,
            if grant.expires_at > now {
                format!("expires {}", when(grant.expires_at, now))
            } else {
                format!("expired {}", when(grant.expires_at, now))
            },
            if grant.refresh_token.is_some() {
                ", refresh token held"
            } else {
                ", no refresh token"
            }
        );
    }
    Ok(out)
}

/// The state directory `status` reads.
pub fn status_dir(flag: Option<PathBuf>) -> Result<PathBuf, String> {
    aauth_http::state::state_dir(flag.as_deref(), None, aauth_http::state::Party::Delegate)
        .map_err(|e| e.to_string())
}

/// Now, for the reports.
pub fn now() -> u64 {
    unix_now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_words() {
        assert_eq!(duration_words(42), "42 s");
        assert_eq!(duration_words(252), "4 min 12 s");
        assert_eq!(duration_words(3 * 3600 + 120), "3 h 2 min");
        assert_eq!(duration_words(2 * 86_400 + 5 * 3600), "2 d 5 h");
        assert_eq!(when(1_000 + 252, 1_000), "in 4 min 12 s");
        assert_eq!(when(1_000, 1_000 + 42), "42 s ago");
        assert_eq!(when(1_000, 1_000), "now");
    }

    #[test]
    fn a_raw_request_is_read_with_crlf_or_lf_and_an_absolute_target() {
        let raw = parse_request(b"POST https://r.example/a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\r\nhi").unwrap();
        assert_eq!(
            (raw.method.as_str(), raw.target.as_str()),
            ("POST", "/a?b=1")
        );
        assert_eq!(raw.authority.as_deref(), Some("r.example"));
        assert_eq!(raw.headers[1], ("content-type".into(), "text/plain".into()));
        assert_eq!(raw.body, b"hi");
        let raw = parse_request(b"GET /x HTTP/1.1\nHost: h\n").unwrap();
        assert_eq!((raw.target.as_str(), raw.body.len()), ("/x", 0));
        assert!(parse_request(b"nonsense").is_err());
        assert!(parse_request(b"GET / HTTP/1.1\nno colon here\n\n").is_err());
    }

    #[test]
    fn a_token_that_is_not_a_jws_is_reported_not_panicked_on() {
        for input in ["", "a.b", "a.b.c", "....", "eyJ9.eyJ9.x"] {
            let (report, ok) = token_report(input, None, 0);
            assert!(!ok, "{input:?}: {report}");
        }
    }
}
