//! The HTML of the login and consent pages (E§9.5, profile: P-AS-4): plain
//! forms, inline CSS, no script. Every piece of peer or user text goes
//! through [`escape`]; nothing is interpolated raw.

use std::fmt::Write as _;

pub use aauth_http::browser::{error, escape, page};

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
