//! A user at a target's consent pages, played through their HTML forms:
//! sign in on the form with a password field, press the button that
//! approves (or denies) on the next, and follow redirects until the
//! browser reaches the suite's redirect URI. It reads any page that uses
//! plain `<form>`, `<input>` and `<button>` elements; pages that need
//! script are out of its reach, and the suite then asks a person.

use std::collections::HashMap;
use std::time::Duration;

use url::Url;

use crate::wire::Wire;

/// Pages, form posts and redirects followed before giving up.
const MAX_STEPS: usize = 12;

/// One `<form>`: where it goes, how, and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// `action` (empty: the page itself).
    pub action: String,
    /// `get` or `post`.
    pub method: String,
    /// `<input>` elements: name, type, value.
    pub inputs: Vec<(String, String, String)>,
    /// Submit buttons: name, value, text.
    pub buttons: Vec<(String, String, String)>,
}

/// The value of attribute `name` in one tag's text, quoted either way or
/// bare, with the five XML entities decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower.get(from..)?.find(name) {
        let at = from + found;
        from = at + name.len();
        let before = lower.get(..at)?.chars().last();
        if !matches!(before, Some(c) if c.is_whitespace()) {
            continue;
        }
        let rest = tag.get(at + name.len()..)?.trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        let value = match rest.chars().next()? {
            q @ ('"' | '\'') => rest.get(1..)?.split(q).next()?.to_owned(),
            _ => rest
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()?
                .to_owned(),
        };
        return Some(unescape(&value));
    }
    None
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every form on a page.
pub fn forms(html: &str) -> Vec<Form> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = lower.get(from..).and_then(|s| s.find("<form")) {
        let start = from + start;
        let end = lower
            .get(start..)
            .and_then(|s| s.find("</form"))
            .map_or(lower.len(), |e| start + e);
        from = end;
        let Some(block) = html.get(start..end) else {
            break;
        };
        let open = block.split('>').next().unwrap_or_default();
        let mut form = Form {
            action: attribute(open, "action").unwrap_or_default(),
            method: attribute(open, "method")
                .unwrap_or_else(|| "get".to_owned())
                .to_ascii_lowercase(),
            inputs: Vec::new(),
            buttons: Vec::new(),
        };
        let block_lower = block.to_ascii_lowercase();
        for (at, _) in block_lower.match_indices("<input") {
            let tag = block.get(at..).unwrap_or_default();
            let tag = tag.split('>').next().unwrap_or_default();
            let kind = attribute(tag, "type")
                .unwrap_or_else(|| "text".to_owned())
                .to_ascii_lowercase();
            if let Some(name) = attribute(tag, "name") {
                if kind == "submit" {
                    let value = attribute(tag, "value").unwrap_or_default();
                    form.buttons.push((name, value.clone(), value));
                } else {
                    form.inputs
                        .push((name, kind, attribute(tag, "value").unwrap_or_default()));
                }
            }
        }
        for (at, _) in block_lower.match_indices("<button") {
            let tag = block.get(at..).unwrap_or_default();
            let open = tag.split('>').next().unwrap_or_default();
            if attribute(open, "type").is_some_and(|t| !t.eq_ignore_ascii_case("submit")) {
                continue;
            }
            let text = tag
                .get(open.len() + 1..)
                .and_then(|t| t.split('<').next())
                .unwrap_or_default()
                .trim()
                .to_owned();
            form.buttons.push((
                attribute(open, "name").unwrap_or_default(),
                attribute(open, "value").unwrap_or_default(),
                text,
            ));
        }
        out.push(form);
    }
    out
}

/// The fields a form submits: its inputs with the user's name and
/// password filled in, and the chosen button's name and value.
fn fill(form: &Form, user: &str, password: &str, button: Option<usize>) -> Vec<(String, String)> {
    let mut filled_user = false;
    let mut fields = Vec::new();
    for (name, kind, value) in &form.inputs {
        let value = match kind.as_str() {
            "password" => password.to_owned(),
            "text" | "email" if !filled_user => {
                filled_user = true;
                user.to_owned()
            }
            "checkbox" | "radio" => continue,
            _ => value.clone(),
        };
        fields.push((name.clone(), value));
    }
    if let Some((name, value, _)) = button.and_then(|i| form.buttons.get(i))
        && !name.is_empty()
    {
        fields.push((name.clone(), value.clone()));
    }
    fields
}

/// Which button means the decision: its name, value or text says so.
fn decision_button(form: &Form, approve: bool) -> Option<usize> {
    let words: &[&str] = if approve {
        &[
            "approve",
            "allow",
            "accept",
            "authorize",
            "authorise",
            "consent",
            "yes",
        ]
    } else {
        &["deny", "reject", "decline", "refuse", "cancel", "no"]
    };
    form.buttons.iter().position(|(name, value, text)| {
        let all = format!("{name} {value} {text}").to_ascii_lowercase();
        words
            .iter()
            .any(|w| all.split(|c: char| !c.is_alphanumeric()).any(|t| t == *w))
    })
}

/// Plays the user from `start` until the browser is sent to a URL that
/// begins with `stop_at` (the suite's redirect URI), and returns that URL.
pub async fn consent(
    wire: &Wire,
    start: &Url,
    user: &str,
    password: &str,
    approve: bool,
    stop_at: &str,
) -> Result<Url, String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())?;
    let mut cookies: HashMap<String, String> = HashMap::new();
    let mut url = start.clone();
    let mut post: Option<Vec<(String, String)>> = None;
    let mut signed_in = false;
    for _ in 0..MAX_STEPS {
        if url.as_str().starts_with(stop_at) {
            return Ok(url);
        }
        if !wire.is_allowed(&url) {
            return Err(format!(
                "the consent pages lead to {}, outside the origins this run may contact",
                url.origin().ascii_serialization()
            ));
        }
        let jar = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut request = match post.take() {
            Some(fields) => http.post(url.clone()).form(&fields),
            None => http.get(url.clone()),
        };
        if !jar.is_empty() {
            request = request.header("cookie", jar);
        }
        let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            if let Some((name, value)) = text.split(';').next().and_then(|p| p.split_once('=')) {
                cookies.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        if status.is_redirection() {
            let location = location.ok_or("a redirect without Location")?;
            url = url
                .join(&location)
                .map_err(|e| format!("Location {location:?}: {e}"))?;
            continue;
        }
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        let page_forms = forms(&body);
        let login = page_forms
            .iter()
            .find(|f| f.inputs.iter().any(|(_, kind, _)| kind == "password"));
        let (form, fields) = if let Some(form) = login {
            if signed_in {
                return Err("the sign-in form came back: wrong user or password?".to_owned());
            }
            signed_in = true;
            let button = (!form.buttons.is_empty()).then_some(0);
            (form, fill(form, user, password, button))
        } else if let Some((form, button)) = page_forms
            .iter()
            .find_map(|f| decision_button(f, approve).map(|b| (f, b)))
        {
            (form, fill(form, user, password, Some(button)))
        } else {
            return Err(format!("{url}: no sign-in form and no consent button"));
        };
        let action = url
            .join(&form.action)
            .map_err(|e| format!("form action {:?}: {e}", form.action))?;
        if form.method == "post" {
            post = Some(fields);
            url = action;
        } else {
            url = action;
            url.query_pairs_mut().extend_pairs(fields);
        }
    }
    Err(format!(
        "more than {MAX_STEPS} pages without reaching {stop_at}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN: &str = r#"<form method="post" action="/agent/auth/login"><input type="hidden" name="request_token" value="a&amp;b"><label for=u>User</label><input type="text" id="u" name="username" required><input type="password" name="password"><button class="primary" type="submit">Sign in</button></form>"#;
    const CONSENT: &str = r#"<form method='post' action='/agent/auth/consent'><input type=hidden name=csrf value=c1><button type="submit" name="decision" value="approve">Approve</button><button type="submit" name="decision" value="deny">Deny</button></form>"#;

    #[test]
    fn reads_inputs_buttons_and_attributes_quoted_any_way() {
        let login = &forms(LOGIN)[0];
        assert_eq!(login.action, "/agent/auth/login");
        assert_eq!(login.method, "post");
        assert_eq!(
            fill(login, "alice", "pw", Some(0)),
            vec![
                ("request_token".to_owned(), "a&b".to_owned()),
                ("username".to_owned(), "alice".to_owned()),
                ("password".to_owned(), "pw".to_owned()),
            ]
        );
        let consent = &forms(CONSENT)[0];
        assert_eq!(
            consent.inputs,
            vec![("csrf".into(), "hidden".into(), "c1".into())]
        );
        assert_eq!(decision_button(consent, true), Some(0));
        assert_eq!(decision_button(consent, false), Some(1));
        assert_eq!(
            fill(consent, "", "", Some(1)).last().unwrap(),
            &("decision".to_owned(), "deny".to_owned())
        );
    }

    #[test]
    fn a_page_without_forms_has_none() {
        assert!(forms("<p>nothing</p>").is_empty());
        assert!(forms("<form").len() == 1);
    }
}
