//! A borrowed view of the request being signed or verified, and header field
//! values as RFC 9421 §2.1 defines them.
//!
//! Nothing is copied: the view borrows the method, target, headers and body
//! from whatever holds them. Headers come through [`HeaderSource`], so an
//! `http::HeaderMap` can be viewed later by implementing one method.

use std::borrow::Cow;
use std::fmt;

/// Header lookup for a request (RFC 9421 §2.1).
pub trait HeaderSource {
    /// Every field line named `name` (given lowercase; lookup must be
    /// case-insensitive), in the order received.
    fn field_lines(&self, name: &str) -> impl Iterator<Item = &str>;
}

impl HeaderSource for [(&str, &str)] {
    fn field_lines(&self, name: &str) -> impl Iterator<Item = &str> {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

impl<const N: usize> HeaderSource for [(&str, &str); N] {
    fn field_lines(&self, name: &str) -> impl Iterator<Item = &str> {
        self.as_slice().field_lines(name)
    }
}

impl HeaderSource for Vec<(&str, &str)> {
    fn field_lines(&self, name: &str) -> impl Iterator<Item = &str> {
        self.as_slice().field_lines(name)
    }
}

impl HeaderSource for [(String, String)] {
    fn field_lines(&self, name: &str) -> impl Iterator<Item = &str> {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl HeaderSource for Vec<(String, String)> {
    fn field_lines(&self, name: &str) -> impl Iterator<Item = &str> {
        self.as_slice().field_lines(name)
    }
}

/// The request as the verifier (or signer) sees it (RFC 9421 §2.2, E§10.3).
pub struct Request<'a, H: ?Sized> {
    /// The method, e.g. `POST` (`@method`, RFC 9421 §2.2.1).
    pub method: &'a str,
    /// The authority the verifier is configured with (`@authority`). Never
    /// the `Host` or `Forwarded` header (E§10.3.1, profile: P-SIG-5). The
    /// signer uses the authority it sends the request to.
    pub authority: &'a str,
    /// The request target as received: absolute path plus optional `?query`.
    pub target: &'a str,
    /// The request's header fields.
    pub headers: &'a H,
    /// The body, if any. An empty body counts as no body (E§10.3).
    pub body: Option<&'a [u8]>,
}

impl<H: ?Sized> Clone for Request<'_, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<H: ?Sized> Copy for Request<'_, H> {}

impl<H: ?Sized> fmt::Debug for Request<'_, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("authority", &self.authority)
            .field("target", &self.target)
            .field("body_len", &self.body.map(<[u8]>::len))
            .finish_non_exhaustive()
    }
}

impl<'a, H: HeaderSource + ?Sized> Request<'a, H> {
    /// The body if it is non-empty (E§10.3: body components "if and only if
    /// the request contains a body").
    pub fn non_empty_body(&self) -> Option<&'a [u8]> {
        self.body.filter(|b| !b.is_empty())
    }

    /// Whether the target has a `?` (E§10.3: `@query` "if and only if").
    pub fn has_query(&self) -> bool {
        self.target.contains('?')
    }

    /// Whether at least one field line named `name` is present.
    pub fn has_field(&self, name: &str) -> bool {
        self.headers.field_lines(name).next().is_some()
    }

    /// The field value per RFC 9421 §2.1: each line's value with leading and
    /// trailing whitespace removed, joined with `", "`. `None` when the field
    /// is absent (an absent field is never signed or verified as empty).
    pub fn field_value(&self, name: &str) -> Option<Cow<'a, str>>
    where
        H: 'a,
    {
        combine(self.headers.field_lines(name))
    }

    /// As [`Request::field_value`], refusing values longer than `max` bytes
    /// before joining them. `Err(())` means too long.
    pub(crate) fn bounded_field_value(
        &self,
        name: &str,
        max: usize,
    ) -> Result<Option<Cow<'a, str>>, ()>
    where
        H: 'a,
    {
        let mut total = 0usize;
        for line in self.headers.field_lines(name) {
            total = total.saturating_add(line.len()).saturating_add(2);
            if total > max.saturating_add(2) {
                return Err(());
            }
        }
        Ok(self.field_value(name))
    }
}

fn trim(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

/// RFC 9421 §2.1: "Strip leading and trailing whitespace from each item in
/// the list" and "Concatenate the list of values together with a single
/// comma (",") and a single space (" ") between each item."
fn combine<'a>(mut lines: impl Iterator<Item = &'a str>) -> Option<Cow<'a, str>> {
    let first = trim(lines.next()?);
    let Some(second) = lines.next() else {
        return Some(Cow::Borrowed(first));
    };
    let mut joined = String::with_capacity(first.len() + second.len() + 2);
    joined.push_str(first);
    for line in std::iter::once(second).chain(lines) {
        joined.push_str(", ");
        joined.push_str(trim(line));
    }
    Some(Cow::Owned(joined))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(headers: &'a [(&'a str, &'a str)]) -> Request<'a, [(&'a str, &'a str)]> {
        Request {
            method: "GET",
            authority: "example.org",
            target: "/",
            headers,
            body: None,
        }
    }

    #[test]
    fn header_names_are_case_insensitive() {
        let headers = [("Content-Type", "text/plain")];
        assert_eq!(
            request(&headers).field_value("content-type").as_deref(),
            Some("text/plain")
        );
    }

    #[test]
    fn multiple_field_lines_are_trimmed_and_joined() {
        // RFC 9421 §2.1 example: "X-OWS-Header:   Leading and trailing whitespace.   "
        let headers = [
            ("Accept", " application/json "),
            ("x", "y"),
            ("accept", "\t*/*"),
        ];
        assert_eq!(
            request(&headers).field_value("accept").as_deref(),
            Some("application/json, */*")
        );
    }

    #[test]
    fn an_absent_field_has_no_value_and_an_empty_one_does() {
        let headers = [("x-empty", "")];
        let req = request(&headers);
        assert_eq!(req.field_value("x-empty").as_deref(), Some(""));
        assert_eq!(req.field_value("x-absent"), None);
    }

    #[test]
    fn bounded_value_refuses_long_fields_before_joining() {
        let long = "a".repeat(10);
        let headers = [("s", long.as_str()), ("s", long.as_str())];
        let req = request(&headers);
        assert!(req.bounded_field_value("s", 21).is_err());
        assert_eq!(req.bounded_field_value("s", 22).unwrap().unwrap().len(), 22);
    }
}
