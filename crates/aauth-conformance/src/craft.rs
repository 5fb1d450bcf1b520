//! The suite's own RFC 9421 signer, written apart from the library's so
//! that it can write what a conforming signer never would: any label, any
//! component list, any parameters, a base that differs from what is sent.
//!
//! A [`Draft`] starts as the profile's well-formed request (P-SIG-1,
//! P-SIG-1a: `@method @authority @path [@query] [content-type
//! content-digest] [nonce] signature-key;created=now`); a hostile check
//! changes it, then [`Draft::finish`] signs the base and gives the request
//! to send, which the check may change again (tampering after signing).

use std::sync::Arc;

use aauth_protocol::b64;
use aauth_protocol::httpsig::SignatureEncoding;
use aauth_protocol::keys::SigningKey;
use url::Url;

use aauth_http::client::{authority, target};
use aauth_http::server::unix_now;
use aauth_protocol::content_digest::sha256_field;
use aauth_protocol::httpsig::Nonce;

use crate::wire::Sent;

/// A request being built and signed.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The method sent (and, unless overridden, signed).
    pub method: String,
    /// The URL sent.
    pub url: Url,
    /// The body.
    pub body: Vec<u8>,
    /// Headers sent besides the three signature headers: `Content-Type`,
    /// `Content-Digest`, `Nonce` and any other.
    pub headers: Vec<(String, String)>,
    /// The `Signature-Key` value.
    pub signature_key: String,
    /// The label of `Signature-Input` and `Signature`.
    pub label: String,
    /// The covered components, each as written in the inner list (quoted,
    /// with any parameters): `"@method"`, `"content-type"`.
    pub components: Vec<String>,
    /// The signature parameters after the inner list, e.g. `;created=1`.
    pub params: String,
    /// Values to put in the base instead of the request's own, by
    /// component identifier as written: what was signed differs from what
    /// is sent.
    pub base_values: Vec<(String, String)>,
    /// The key that signs.
    pub key: Arc<SigningKey>,
    /// How the `Signature` value is written.
    pub encoding: SignatureEncoding,
}

/// A fresh `Nonce` value: 128 random bits, base64url (E§10.5). Empty
/// only when the system has no randomness, which fails the check using it.
pub fn fresh_nonce() -> String {
    Nonce::generate()
        .map(|nonce| nonce.as_str().to_owned())
        .unwrap_or_default()
}

impl Draft {
    /// The profile's well-formed request: the components E§10.3 asks for,
    /// `created` now, a `Nonce` on POST/PUT/PATCH/DELETE (P-SIG-6), and a
    /// `Content-Digest` when there is a body.
    pub fn new(
        method: &str,
        url: Url,
        body: Option<(&[u8], &str)>,
        signature_key: String,
        key: Arc<SigningKey>,
    ) -> Self {
        let mut components = vec![quoted("@method"), quoted("@authority"), quoted("@path")];
        if url.query().is_some() {
            components.push(quoted("@query"));
        }
        let mut headers = Vec::new();
        let body = match body {
            Some((bytes, content_type)) if !bytes.is_empty() => {
                headers.push(("Content-Type".to_owned(), content_type.to_owned()));
                headers.push(("Content-Digest".to_owned(), sha256_field(bytes)));
                components.push(quoted("content-type"));
                components.push(quoted("content-digest"));
                bytes.to_vec()
            }
            _ => Vec::new(),
        };
        if matches!(method, "POST" | "PUT" | "PATCH" | "DELETE") {
            headers.push(("Nonce".to_owned(), fresh_nonce()));
            components.push(quoted("nonce"));
        }
        components.push(quoted("signature-key"));
        Self {
            method: method.to_owned(),
            url,
            body,
            headers,
            signature_key,
            label: "sig".to_owned(),
            components,
            params: format!(";created={}", unix_now()),
            base_values: Vec::new(),
            key,
            encoding: SignatureEncoding::ByteSequence,
        }
    }

    /// A form POST (`application/x-www-form-urlencoded`).
    pub fn form(
        url: Url,
        pairs: &[(&str, &str)],
        signature_key: String,
        key: Arc<SigningKey>,
    ) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Self::new(
            "POST",
            url,
            Some((body.as_bytes(), "application/x-www-form-urlencoded")),
            signature_key,
            key,
        )
    }

    /// Removes `component` (unquoted name) from the covered list.
    pub fn uncover(&mut self, name: &str) {
        let item = quoted(name);
        self.components.retain(|c| *c != item);
    }

    /// Covers `component` (unquoted name) just before `signature-key`.
    pub fn cover(&mut self, name: &str) {
        let at = self
            .components
            .iter()
            .position(|c| c == "\"signature-key\"")
            .unwrap_or(self.components.len());
        self.components.insert(at, quoted(name));
    }

    /// Sets header `name` (every line of it replaced by one).
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.into()));
    }

    /// The `created` parameter set to `created`, other parameters dropped.
    pub fn created(&mut self, created: i64) {
        self.params = format!(";created={created}");
    }

    /// The value component `item` takes in the base.
    fn value_of(&self, item: &str) -> Option<String> {
        if let Some((_, value)) = self.base_values.iter().find(|(c, _)| c == item) {
            return Some(value.clone());
        }
        let name = item.strip_prefix('"')?.strip_suffix('"')?;
        match name {
            "@method" => Some(self.method.clone()),
            "@authority" => authority(&self.url).ok(),
            "@path" => Some(self.url.path().to_owned()),
            "@query" => Some(format!("?{}", self.url.query().unwrap_or_default())),
            "@target-uri" => Some(self.url.to_string()),
            "@request-target" => Some(target(&self.url)),
            "@scheme" => Some(self.url.scheme().to_owned()),
            "signature-key" => Some(self.signature_key.clone()),
            field => {
                let lines: Vec<&str> = self
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(field))
                    .map(|(_, v)| v.trim())
                    .collect();
                (!lines.is_empty()).then(|| lines.join(", "))
            }
        }
    }

    /// The inner list and parameters: `("@method" …);created=…`.
    pub fn signature_params(&self) -> String {
        format!("({}){}", self.components.join(" "), self.params)
    }

    /// The signature base (RFC 9421 §2.5). A component the request lacks
    /// gets an empty value: the verifier must refuse before it gets there.
    pub fn base(&self) -> String {
        let mut base = String::new();
        for item in &self.components {
            let value = self.value_of(item).unwrap_or_default();
            base.push_str(&format!("{item}: {value}\n"));
        }
        base.push_str(&format!(
            "\"@signature-params\": {}",
            self.signature_params()
        ));
        base
    }

    /// Signs the base; the request to send, its base and its raw signature.
    pub fn finish(&self) -> Finished {
        let base = self.base();
        let signature = self.key.sign(base.as_bytes()).unwrap_or_default();
        let mut headers = self.headers.clone();
        headers.push(("Signature-Key".to_owned(), self.signature_key.clone()));
        headers.push((
            "Signature-Input".to_owned(),
            format!("{}={}", self.label, self.signature_params()),
        ));
        headers.push((
            "Signature".to_owned(),
            signature_member(&self.label, self.encoding, &signature),
        ));
        Finished {
            sent: Sent {
                method: self.method.clone(),
                url: self.url.clone(),
                headers,
                body: self.body.clone(),
            },
            base,
            signature,
            label: self.label.clone(),
            encoding: self.encoding,
        }
    }
}

/// `label=:…:` with `bytes` written as `encoding` says.
pub fn signature_member(label: &str, encoding: SignatureEncoding, bytes: &[u8]) -> String {
    match encoding {
        SignatureEncoding::UnpaddedBase64Url => format!("{label}=:{}:", b64::url_encode(bytes)),
        SignatureEncoding::ByteSequence => format!("{label}=:{}:", b64::std_encode(bytes)),
    }
}

/// A signed draft.
#[derive(Debug, Clone)]
pub struct Finished {
    /// What to send.
    pub sent: Sent,
    /// The base that was signed.
    pub base: String,
    /// The raw signature.
    pub signature: Vec<u8>,
    /// The label it was signed under.
    pub label: String,
    /// How its `Signature` value is written.
    pub encoding: SignatureEncoding,
}

impl Finished {
    /// A `Signature` value carrying `bytes` the way this one was written.
    pub fn signature_member(&self, bytes: &[u8]) -> String {
        signature_member(&self.label, self.encoding, bytes)
    }

    /// `label=` of this signature.
    pub fn prefix(&self) -> String {
        format!("{}=", self.label)
    }
}

/// `"name"`.
pub fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

/// The first line where two signature bases differ, numbered from 1, with
/// both versions: what a person needs to find a canonicalisation bug.
pub fn first_difference(ours: &str, theirs: &str) -> Option<String> {
    let mut a = ours.lines();
    let mut b = theirs.lines();
    let mut n = 0;
    loop {
        n += 1;
        match (a.next(), b.next()) {
            (None, None) => return None,
            (x, y) if x == y => {}
            (x, y) => {
                return Some(format!(
                    "signature bases differ at line {n}:\n  suite:  {}\n  target: {}",
                    x.unwrap_or("(end)"),
                    y.unwrap_or("(end)")
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aauth_protocol::httpsig::{self, SignOptions};
    use aauth_protocol::keys::Algorithm;

    fn key() -> Arc<SigningKey> {
        Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap())
    }

    /// The suite's signer and the library's agree byte for byte on a
    /// well-formed request: two independent writings of one profile.
    #[test]
    fn the_well_formed_draft_matches_the_librarys_signer() {
        let key = key();
        let url = Url::parse("http://127.0.0.1:8080/data?x=1").unwrap();
        let mut draft = Draft::new(
            "POST",
            url,
            Some((b"{\"a\":1}", "application/json")),
            "sig=hwk;kty=\"OKP\"".to_owned(),
            key.clone(),
        );
        draft.created(1_730_217_600);
        let nonce_text = draft
            .headers
            .iter()
            .find(|(n, _)| n == "Nonce")
            .map(|(_, v)| v.clone())
            .unwrap();
        let nonce = httpsig::Nonce::parse(&nonce_text).unwrap();
        let plain = vec![("content-type".to_owned(), "application/json".to_owned())];
        let view = httpsig::Request {
            method: "POST",
            authority: "127.0.0.1:8080",
            target: "/data?x=1",
            headers: &plain,
            body: Some(b"{\"a\":1}"),
        };
        let options = SignOptions {
            nonce: Some(&nonce),
            ..SignOptions::new(1_730_217_600)
        };
        let library = httpsig::sign(&view, "sig=hwk;kty=\"OKP\"", &key, &options).unwrap();
        assert_eq!(draft.base(), library.signature_base);
        let finished = draft.finish();
        assert_eq!(
            finished.sent.header("Signature").unwrap(),
            library.signature
        );
        assert_eq!(
            finished.sent.header("Signature-Input").unwrap(),
            library.signature_input
        );
    }

    #[test]
    fn base_values_change_what_is_signed_not_what_is_sent() {
        let mut draft = Draft::new(
            "GET",
            Url::parse("http://h/p").unwrap(),
            None,
            "sig=x".to_owned(),
            key(),
        );
        draft
            .base_values
            .push((quoted("@path"), "/other".to_owned()));
        let finished = draft.finish();
        assert!(finished.base.contains("\"@path\": /other\n"));
        assert_eq!(finished.sent.url.path(), "/p");
    }

    #[test]
    fn the_first_difference_names_the_line() {
        assert_eq!(first_difference("a\nb", "a\nb"), None);
        let text = first_difference("a\nb\nc", "a\nB\nc").unwrap();
        assert!(
            text.contains("line 2") && text.contains("suite:  b") && text.contains("target: B")
        );
        assert!(first_difference("a", "a\nb").unwrap().contains("(end)"));
    }
}
