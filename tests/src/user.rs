//! A user at the auth server's pages, played by a program: it opens the
//! URL an agent hands over (an auth server's consent page, or a resource's
//! interaction page that redirects onward to one), signs in through the
//! real login form, approves or denies on the real consent form, and
//! follows the redirects back to the agent's loopback callback — exactly
//! what a browser would send, cookies included (E§9.5, E§9.9, profile:
//! P-AS-4, P-UI-2).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aauth_agent::ConsentHandler;
use aauth_agent::consent::PresentFuture;
use url::Url;

/// What the user decides on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Press "Approve".
    Approve,
    /// Press "Deny".
    Deny,
}

/// Reports one line per step the user takes.
pub type Narrator = Arc<dyn Fn(&str) + Send + Sync>;

/// A user with a name, a password and a decision.
#[derive(Clone)]
pub struct PlayedUser {
    username: String,
    password: String,
    decision: Decision,
    narrate: Narrator,
    http: reqwest::Client,
    cookies: Arc<Mutex<HashMap<String, String>>>,
    visited: Arc<Mutex<Vec<Url>>>,
}

impl std::fmt::Debug for PlayedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlayedUser")
            .field("username", &self.username)
            .field("decision", &self.decision)
            .finish_non_exhaustive()
    }
}

/// One page as the browser got it.
struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl PlayedUser {
    /// A user who signs in as `username` and then decides `decision`.
    pub fn new(username: &str, password: &str, decision: Decision, narrate: Narrator) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_default();
        Self {
            username: username.to_owned(),
            password: password.to_owned(),
            decision,
            narrate,
            http,
            cookies: Arc::default(),
            visited: Arc::default(),
        }
    }

    /// Every URL the browser was sent to so far (opened or redirected to),
    /// in order; form submissions are not counted.
    pub fn visited(&self) -> Vec<Url> {
        self.visited.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The browser's path so far: origin and path of every page it was
    /// sent to, a page reloaded in place (the login page that becomes the
    /// consent page) counted once.
    pub fn stops(&self) -> Vec<String> {
        let mut stops: Vec<String> = Vec::new();
        for url in self.visited() {
            let stop = format!("{}{}", url.origin().ascii_serialization(), url.path());
            if stops.last() != Some(&stop) {
                stops.push(stop);
            }
        }
        stops
    }

    /// `GET url`, as a navigation.
    async fn open(&self, url: &Url) -> Result<Page, String> {
        if let Ok(mut visited) = self.visited.lock() {
            visited.push(url.clone());
        }
        self.page(self.http.get(url.clone())).await
    }

    fn cookie_header(&self) -> String {
        let jar = self.cookies.lock().map(|j| j.clone()).unwrap_or_default();
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&self, response: &reqwest::Response) {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=')
                && let Ok(mut jar) = self.cookies.lock()
            {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    async fn page(&self, request: reqwest::RequestBuilder) -> Result<Page, String> {
        let response = request
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .map_err(|e| format!("the browser could not load the page: {e}"))?;
        self.keep_cookies(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        Ok(Page {
            status,
            location,
            body,
        })
    }

    async fn submit(
        &self,
        base: &Url,
        page: &Page,
        extra: &[(&str, &str)],
    ) -> Result<Page, String> {
        let action = form_action(&page.body).ok_or("the page has no form")?;
        let url = base
            .join(&action)
            .map_err(|e| format!("form action {action:?}: {e}"))?;
        let mut fields = hidden_fields(&page.body);
        fields.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.page(self.http.post(url).form(&fields)).await
    }

    async fn follow(&self, base: &Url, page: &Page) -> Result<(Url, Page), String> {
        let location = page
            .location
            .as_deref()
            .ok_or_else(|| format!("expected a redirect, got {}", page.status))?;
        let url = base
            .join(location)
            .map_err(|e| format!("redirect {location:?}: {e}"))?;
        let next = self.open(&url).await?;
        Ok((url, next))
    }

    /// Follows redirects from `page`, at `url`, to the first page that is
    /// not one, saying where each sends the browser.
    async fn settle(&self, mut url: Url, mut page: Page) -> Result<(Url, Page), String> {
        for _ in 0..MAX_REDIRECTS {
            if !(300..400).contains(&page.status) {
                return Ok((url, page));
            }
            let location = page.location.clone().unwrap_or_default();
            (self.narrate)(&format!(
                "{} redirects the browser to {}",
                url.origin().ascii_serialization(),
                shorten(&location)
            ));
            (url, page) = self.follow(&url, &page).await?;
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }

    async fn visit(&self, start: &Url) -> Result<(), String> {
        let say = |line: &str| (self.narrate)(line);
        say(&format!("the user opens {}", shorten(start.as_str())));
        let first = self.open(start).await?;
        let (mut here, mut page) = self.settle(start.clone(), first).await?;
        if page.status != 200 {
            return Err(format!(
                "{} answered {}: {}",
                here.origin().ascii_serialization(),
                page.status,
                text_of(&page.body)
            ));
        }
        if page.body.contains("/agent/auth/login") {
            say(&format!("the login page: signing in as {}", self.username));
            let after = self
                .submit(
                    &here,
                    &page,
                    &[("username", &self.username), ("password", &self.password)],
                )
                .await?;
            (here, page) = self.follow(&here, &after).await?;
        }
        if !page.body.contains("/agent/auth/consent") {
            return Err(format!(
                "expected the consent page, got: {}",
                text_of(&page.body)
            ));
        }
        say(&format!("the consent page says: {}", text_of(&page.body)));
        // A resource asking while it serves a caller: the page names it.
        if let Some(serving) = page
            .body
            .split("<p>It asks while serving a request from ")
            .nth(1)
            .and_then(|rest| rest.split("</p>").next())
        {
            say(&format!(
                "… and that it asks while serving a request from {}",
                text_of(&format!("<body>{serving}"))
                    .replace("( ", "(")
                    .replace(" )", ")")
            ));
        }
        let decision = match self.decision {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        };
        say(&format!("the user presses {decision:?}"));
        let decided = self.submit(&here, &page, &[("decision", decision)]).await?;
        let (back_at, back) = self.settle(here, decided).await?;
        if back.status >= 400 {
            return Err(format!(
                "{} answered {}: {}",
                back_at.origin().ascii_serialization(),
                back.status,
                text_of(&back.body)
            ));
        }
        Ok(())
    }
}

/// Most redirects followed in a row, as browsers bound them.
const MAX_REDIRECTS: usize = 20;

impl ConsentHandler for PlayedUser {
    fn present<'a>(&'a self, url: &'a Url) -> PresentFuture<'a> {
        Box::pin(async move { self.visit(url).await })
    }
}

fn shorten(text: &str) -> String {
    clip(text, 90)
}

/// `text` in at most `max` characters, ending with `…` when it was cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        let head: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{head}…")
    } else {
        text.to_owned()
    }
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of `name="…"` in a tag's text.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = tag.get(start..)?;
    let end = rest.find('"')?;
    rest.get(..end).map(unescape)
}

/// The first `<form>` of the page, up to its end.
fn first_form(html: &str) -> &str {
    let form = html.split_once("<form").map_or("", |(_, rest)| rest);
    form.split_once("</form>")
        .map_or(form, |(inside, _)| inside)
}

/// The hidden inputs of the page's first form (the one [`form_action`]
/// names; the consent page's second form is the sign-out one).
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    first_form(html)
        .split("<input")
        .skip(1)
        .filter_map(|chunk| {
            let tag = chunk.split('>').next()?;
            if !tag.contains("type=\"hidden\"") {
                return None;
            }
            Some((attribute(tag, "name")?, attribute(tag, "value")?))
        })
        .collect()
}

/// The `action` of the page's form.
pub fn form_action(html: &str) -> Option<String> {
    let tag = html.split("<form").nth(1)?.split('>').next()?;
    attribute(tag, "action")
}

/// The visible text of an HTML page, squeezed onto one line.
pub fn text_of(html: &str) -> String {
    let body = html.split("<body").nth(1).unwrap_or(html);
    let mut out = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let squeezed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    shorten(&unescape(&squeezed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_the_first_forms_fields() {
        let html = r#"<form action="/a"><input type="hidden" name="x" value="1"></form><form action="/b"><input type="hidden" name="x" value="2"></form>"#;
        assert_eq!(form_action(html).as_deref(), Some("/a"));
        assert_eq!(hidden_fields(html), vec![("x".to_owned(), "1".to_owned())]);
    }

    #[test]
    fn reads_hidden_fields_and_the_action() {
        let html = r#"<form method="post" action="/agent/auth/login"><input type="hidden" name="request_token" value="a&amp;b"><input type="hidden" name="csrf_token" value="c"><input type="text" name="username"></form>"#;
        assert_eq!(form_action(html).as_deref(), Some("/agent/auth/login"));
        assert_eq!(
            hidden_fields(html),
            vec![
                ("request_token".to_owned(), "a&b".to_owned()),
                ("csrf_token".to_owned(), "c".to_owned())
            ]
        );
    }
}
