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

/// The login form (P-AS-4), with an optional error line and the user name
/// typed before (kept after a wrong password).
pub fn login(
    carry: &Carry<'_>,
    agent_name: &str,
    error: Option<&str>,
    username: Option<&str>,
) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let (value, focus) = match username {
        Some(name) => (format!(" value=\"{}\"", escape(name)), ("", " autofocus")),
        None => (String::new(), (" autofocus", "")),
    };
    page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1><p class=\"muted\">to continue to {}</p>{error}\
             <form method=\"post\" action=\"/agent/auth/login\">{}\
             <label for=\"username\">Username</label>\
             <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required{value}{}>\
             <label for=\"password\">Password</label>\
             <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required{}>\
             <button class=\"primary\" type=\"submit\">Sign in</button></form>",
            escape(agent_name),
            carry.hidden(),
            focus.0,
            focus.1,
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
    /// The resource's `name` from its metadata, when it gives one.
    pub resource_name: Option<&'a str>,
    /// When a resource asks while serving a caller: that agent's name (or
    /// identifier) and identifier, proven by its auth token.
    pub on_behalf_of: Option<(&'a str, &'a str)>,
    /// Whether the agent asks for access to itself (SSO, E§3.5).
    pub is_self: bool,
    /// Each scope with its description, if known.
    pub scopes: Vec<(&'a str, Option<String>)>,
    /// The signed-in user.
    pub username: &'a str,
    /// The delegate's `sub`, when a delegate (not the agent server itself)
    /// asks (P-AS-3: the request is bound to it).
    pub delegate: Option<&'a str>,
    /// This auth server's identifier.
    pub issuer: &'a str,
    /// How long each auth token lives, seconds (P-TOK-4).
    pub token_lifetime: u64,
    /// How long the grant can be renewed, seconds (P-AS-6).
    pub grant_lifetime: u64,
}

/// A duration in words: "10 minutes", "1 hour", "30 days".
pub fn duration(seconds: u64) -> String {
    let (count, unit) = match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3_600 && s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
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
        match view.resource_name {
            Some(name) => format!(
                "<strong>{}</strong> (<code>{}</code>)",
                escape(name),
                escape(view.resource)
            ),
            None => format!("<code>{}</code>", escape(view.resource)),
        }
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
    let delegate = view
        .delegate
        .map(|sub| format!(", through its delegate <code>{}</code>", escape(sub)))
        .unwrap_or_default();
    let upstream = view
        .on_behalf_of
        .map(|(name, agent)| {
            let who = if name == agent {
                format!("<code>{}</code>", escape(agent))
            } else {
                format!(
                    "<strong>{}</strong> (<code>{}</code>)",
                    escape(name),
                    escape(agent)
                )
            };
            format!("<p>It asks while serving a request from {who}.</p>")
        })
        .unwrap_or_default();
    page(
        "Authorize access",
        &format!(
            "<div class=\"agent\">{logo}<div><h1>{}</h1><div class=\"muted\">{}</div></div></div>\
             <p>wants access to {target} on your behalf{delegate}.</p>{upstream}<ul>{scopes}</ul>\
             <p class=\"muted\">Each access lasts {}; the agent can renew it for {} \
             unless you revoke it.</p>\
             <p class=\"muted\">Signed in as {} at {}.</p>\
             <form method=\"post\" action=\"/agent/auth/consent\">{}\
             <button class=\"primary\" type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
             <button class=\"secondary\" type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\
             </form>\
             <form method=\"post\" action=\"/agent/auth/logout\">{}\
             <p class=\"muted\">Not {}? <button class=\"link\" type=\"submit\">Sign out</button></p></form>",
            escape(view.agent_name),
            escape(view.agent),
            duration(view.token_lifetime),
            duration(view.grant_lifetime),
            escape(view.username),
            escape(view.issuer),
            carry.hidden(),
            carry.hidden(),
            escape(view.username),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_words() {
        assert_eq!(duration(600), "10 minutes");
        assert_eq!(duration(3600), "1 hour");
        assert_eq!(duration(30 * 86_400), "30 days");
        assert_eq!(duration(90), "90 seconds");
        assert_eq!(duration(1), "1 second");
    }

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
            resource_name: Some("<u>Notes</u>"),
            on_behalf_of: Some(("<Travel>", "https://agent.example")),
            is_self: false,
            scopes: vec![("data.read", Some("<img src=x>".into()))],
            username: "alice",
            delegate: Some("<d>"),
            issuer: "https://as.example",
            token_lifetime: 600,
            grant_lifetime: 30 * 86_400,
        };
        let html = consent(&carry, &view);
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>Evil"));
        assert!(!html.contains("<img src=x>"));
        assert!(!html.contains("\" onerror"));
        assert!(html.contains("&lt;b&gt;Evil&lt;/b&gt;"));
        assert!(html.contains("x=1&amp;y=2"));
        assert!(html.contains("&lt;d&gt;") && !html.contains("<d>"));
        assert!(html.contains(
            "<strong>&lt;u&gt;Notes&lt;/u&gt;</strong> (<code>https://r.example</code>)"
        ));
        assert!(html.contains(
            "serving a request from <strong>&lt;Travel&gt;</strong> (<code>https://agent.example</code>)"
        ));
        assert!(html.contains("Each access lasts 10 minutes; the agent can renew it for 30 days"));
        assert!(!login(&carry, "<i>", Some("<e>"), Some("\"><b>")).contains("<b>"));
        assert!(!error("<x>").contains("<x>"));
    }
}
