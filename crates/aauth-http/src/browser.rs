//! What the servers show and send to a user's browser: small HTML pages
//! (plain forms, inline CSS, no script) in which every piece of peer or user
//! text goes through [`escape`], and the redirect URI rule that decides
//! where a browser may be sent back to (profile: P-AS-4, P-UI-2).

use aauth_protocol::metadata::RedirectUri;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::{Host, Url};

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\
main{max-width:28rem;margin:4rem auto;background:#fff;border-radius:.75rem;padding:2rem;\
box-shadow:0 1px 4px rgba(0,0,0,.12)}h1{font-size:1.3rem;margin-top:0}\
label{display:block;margin:.8rem 0 .3rem;font-weight:600}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.55rem;\
border:1px solid #c5c9d3;border-radius:.4rem;font-size:1rem}\
button{padding:.6rem 1.2rem;border:0;border-radius:.4rem;font-size:1rem;cursor:pointer;margin-top:1rem}\
.primary{background:#2455c3;color:#fff}.secondary{background:#e4e7ee;color:#1d2330;margin-left:.5rem}\
.agent{display:flex;align-items:center;gap:.8rem}.agent img{width:48px;height:48px;border-radius:.4rem}\
ul{padding-left:1.2rem}li{margin:.35rem 0}code{background:#eef0f4;padding:.1rem .3rem;border-radius:.25rem}\
.error{color:#a11b1b}.muted{color:#5d6475;font-size:.9rem}\
button.link{background:none;color:#2455c3;padding:0;margin:0;font-size:inherit;text-decoration:underline}";

/// A whole page around `body` (already escaped HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>\n",
        escape(title)
    )
}

/// An error page: the user stays here, nothing redirects to an unverified URI.
pub fn error(message: &str) -> String {
    page(
        "Cannot continue",
        &format!(
            "<h1>Cannot continue</h1><p class=\"error\">{}</p>\
             <p class=\"muted\">Return to the application and start again.</p>",
            escape(message)
        ),
    )
}

/// The page a flow ends on when it already ended before: where it ended,
/// not an error to start again from (the back button after an answer).
pub fn already_answered(message: &str) -> String {
    page(
        "Already answered",
        &format!(
            "<h1>Already answered</h1><p>{}</p>\
             <p class=\"muted\">Nothing more is needed here; you can close this page.</p>",
            escape(message)
        ),
    )
}

/// An answer that ends a browser's flow here, as an HTML error page: the
/// user stays on this server, nothing redirects to an unchecked URL.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
    answered: bool,
}

impl PageError {
    /// A page with `status` saying `message` (shown to the user: no secrets).
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            answered: false,
        }
    }

    /// 409 on an [`already_answered`] page: the flow ended earlier, as
    /// `message` says.
    pub fn answered(message: impl Into<String>) -> Self {
        Self {
            answered: true,
            ..Self::new(StatusCode::CONFLICT, message)
        }
    }

    /// 400: the link or form is wrong.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 500: this server failed; `error` is logged, not shown.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "a browser flow failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server could not complete the request.",
        )
    }

    /// Its status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = if self.answered {
            already_answered(&self.message)
        } else {
            error(&self.message)
        };
        html_response(self.status, body)
    }
}

/// Whether a request comes from a browser navigating to a page: its
/// `Accept` names `text/html` (API clients send `*/*` or JSON).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
        })
}

/// 404 for a path no route serves, on every server: a page for a browser,
/// the JSON error (`invalid_request`) for anything else.
pub async fn not_found(headers: HeaderMap) -> Response {
    if wants_html(&headers) {
        return html_response(
            StatusCode::NOT_FOUND,
            page(
                "Not found",
                "<h1>Not found</h1><p>There is no page at this address.</p>\
                 <p class=\"muted\">Return to the application and start again.</p>",
            ),
        );
    }
    let mut response =
        crate::server::ErrorResponse::invalid_request("no such endpoint").into_response();
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// `response` with a `Set-Cookie` header, when there is one.
pub fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// An HTML page that is never cached, framed, or given a referrer; it may
/// show images (an agent's logo) and nothing else from elsewhere.
pub fn html_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // No framing (clickjacking on the consent buttons), no script, no
    // third-party anything except the agent's logo.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Every `name=value` pair of the request's `Cookie` headers.
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookies(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// `303 See Other` to `url`, never cached.
pub fn see_other(url: &Url) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    // A URL's serialization is ASCII without controls: a valid header value.
    match HeaderValue::from_str(url.as_str()) {
        Ok(location) => {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Err(error) => {
            return PageError::internal(format!("redirect to {url}: {error}")).into_response();
        }
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// RFC 8252 §7.3: a loopback redirect URI matches on any port.
fn loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback() && ip.octets() == [127, 0, 0, 1],
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        _ => false,
    }
}

/// Whether `requested` is one of the agent's registered `redirect_uris`:
/// exact string match, or for `http://127.0.0.1` / `http://[::1]` the same
/// URI on any port (profile: P-AS-4, RFC 8252 §7.3, in any mode).
pub fn redirect_uri_registered(registered: &[RedirectUri], requested: &str) -> bool {
    let requested_url = Url::parse(requested).ok();
    registered.iter().any(|uri| {
        if uri.as_str() == requested {
            return true;
        }
        let (Ok(a), Some(b)) = (Url::parse(uri.as_str()), requested_url.as_ref()) else {
            return false;
        };
        a.scheme() == "http"
            && b.scheme() == "http"
            && loopback_host(&a)
            && a.host() == b.host()
            && a.path() == b.path()
            && a.query() == b.query()
            && b.username().is_empty()
            && b.password().is_none()
            && b.fragment().is_none()
    })
}

#[cfg(test)]
mod tests {
    use aauth_protocol::ids::OriginMode;

    use super::*;

    fn uris(list: &[&str]) -> Vec<RedirectUri> {
        list.iter()
            .map(|u| RedirectUri::parse(u, OriginMode::Production).unwrap())
            .collect()
    }

    #[test]
    fn redirect_uris_match_exactly_or_on_any_loopback_port() {
        // profile: P-AS-4 — RFC 8252 §7.3 loopback URIs match on any port, in any mode.
        let registered = uris(&[
            "https://agent.example/cb",
            "http://127.0.0.1/callback",
            "http://[::1]:8000/cb",
        ]);
        assert!(redirect_uri_registered(
            &registered,
            "https://agent.example/cb"
        ));
        assert!(!redirect_uri_registered(
            &registered,
            "https://agent.example/cb2"
        ));
        assert!(!redirect_uri_registered(
            &registered,
            "https://agent.example:8443/cb"
        ));
        assert!(redirect_uri_registered(
            &registered,
            "http://127.0.0.1:53124/callback"
        ));
        assert!(redirect_uri_registered(
            &registered,
            "http://127.0.0.1/callback"
        ));
        assert!(redirect_uri_registered(&registered, "http://[::1]:1/cb"));
        assert!(!redirect_uri_registered(
            &registered,
            "http://127.0.0.1:5/other"
        ));
        assert!(!redirect_uri_registered(
            &registered,
            "http://localhost:5/callback"
        ));
        assert!(!redirect_uri_registered(
            &registered,
            "https://127.0.0.1:5/callback"
        ));
        assert!(!redirect_uri_registered(
            &registered,
            "http://u@127.0.0.1:5/callback"
        ));
        assert!(!redirect_uri_registered(
            &registered,
            "http://127.0.0.1:5/callback#x"
        ));
    }

    #[test]
    fn text_is_escaped_in_pages() {
        let html = error("<script>alert(1)</script>");
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(page("<t>", "").contains("<title>&lt;t&gt;</title>"));
    }
}
