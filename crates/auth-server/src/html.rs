//! The HTML of the login and consent pages (E§9.5, profile: P-AS-4): plain
//! forms, inline CSS, no script. Every piece of peer or user text goes
//! through [`escape`]; nothing is interpolated raw.

use std::fmt::Write as _;

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
.error{color:#a11b1b}.muted{color:#5d6475;font-size:.9rem}";

/// A whole page around `body` (already escaped HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>\n",
        escape(title)
    )
}

/// The hidden fields that carry the request through a form.
#[derive(Debug, Clone)]
pub struct Carry<'a> {
    /// The request token.
    pub request_token: &'a str,
    /// The redirect URI.
    pub redirect_uri: &'a str,
    /// The agent's `state`, if any.
    pub state: Option<&'a str>,
    /// The session's CSRF token.
    pub csrf: &'a str,
}

impl Carry<'_> {
    fn hidden(&self) -> String {
        let mut out = String::new();
        for (name, value) in [
            ("request_token", Some(self.request_token)),
            ("redirect_uri", Some(self.redirect_uri)),
            ("state", self.state),
            ("csrf_token", Some(self.csrf)),
        ] {
            if let Some(value) = value {
                let _ = write!(
                    out,
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                    escape(value)
                );
            }
        }
        out
    }
}

/// The login form (P-AS-4), with an optional error line.
pub fn login(carry: &Carry<'_>, agent_name: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1><p class=\"muted\">to continue to {}</p>{error}\
             <form method=\"post\" action=\"/agent/auth/login\">{}\
             <label for=\"username\">Username</label>\
             <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
             <label for=\"password\">Password</label>\
             <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
             <button class=\"primary\" type=\"submit\">Sign in</button></form>",
            escape(agent_name),
            carry.hidden()
        ),
    )
}

/// What the consent page shows (E§9.5 step 3).
#[derive(Debug, Clone)]
pub struct ConsentView<'a> {
    /// The agent's display name (metadata `name`, else its identifier).
    pub agent_name: &'a str,
    /// The agent identifier.
    pub agent: &'a str,
    /// The agent's logo.
    pub logo_uri: Option<&'a str>,
    /// The resource identifier.
    pub resource: &'a str,
    /// Whether the agent asks for access to itself (SSO, E§3.5).
    pub is_self: bool,
    /// Each scope with its description, if known.
    pub scopes: Vec<(&'a str, Option<String>)>,
    /// The signed-in user.
    pub username: &'a str,
}

/// The consent page with approve and deny buttons (P-AS-4).
pub fn consent(carry: &Carry<'_>, view: &ConsentView<'_>) -> String {
    let logo = view
        .logo_uri
        .map(|uri| format!("<img src=\"{}\" alt=\"\">", escape(uri)))
        .unwrap_or_default();
    let target = if view.is_self {
        "itself (sign-in and its own API)".to_owned()
    } else {
        format!("<code>{}</code>", escape(view.resource))
    };
    let mut scopes = String::new();
    for (scope, description) in &view.scopes {
        let _ = match description {
            Some(d) => write!(
                scopes,
                "<li><code>{}</code> — {}</li>",
                escape(scope),
                escape(d)
            ),
            None => write!(scopes, "<li><code>{}</code></li>", escape(scope)),
        };
    }
    page(
        "Authorize access",
        &format!(
            "<div class=\"agent\">{logo}<div><h1>{}</h1><div class=\"muted\">{}</div></div></div>\
             <p>wants access to {target} on your behalf.</p><ul>{scopes}</ul>\
             <p class=\"muted\">Signed in as {}.</p>\
             <form method=\"post\" action=\"/agent/auth/consent\">{}\
             <button class=\"primary\" type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
             <button class=\"secondary\" type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\
             </form>",
            escape(view.agent_name),
            escape(view.agent),
            escape(view.username),
            carry.hidden()
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_is_escaped_everywhere() {
        let carry = Carry {
            request_token: "\"><script>",
            redirect_uri: "https://a.example/cb?x=1&y=2",
            state: Some("<s>"),
            csrf: "c",
        };
        let view = ConsentView {
            agent_name: "<b>Evil</b>",
            agent: "https://agent.example",
            logo_uri: Some("https://agent.example/logo.png\" onerror=\"x"),
            resource: "https://r.example",
            is_self: false,
            scopes: vec![("data.read", Some("<img src=x>".into()))],
            username: "alice",
        };
        let html = consent(&carry, &view);
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>Evil"));
        assert!(!html.contains("<img src=x>"));
        assert!(!html.contains("\" onerror"));
        assert!(html.contains("&lt;b&gt;Evil&lt;/b&gt;"));
        assert!(html.contains("x=1&amp;y=2"));
        assert!(!login(&carry, "<i>", Some("<e>")).contains("<i>"));
        assert!(!error("<x>").contains("<x>"));
    }
}
