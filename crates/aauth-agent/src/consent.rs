//! Sending the user somewhere and getting them back (E§9.5, E§9.9, RFC 8252):
//! a one-shot loopback listener at `http://127.0.0.1:PORT/callback` and the
//! [`ConsentHandler`] that hands the URL to the user.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aauth_http::browser::{escape, page};
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use tokio::sync::oneshot;
use url::Url;

use crate::AgentError;

/// The future a [`ConsentHandler`] returns.
pub type PresentFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// The future of [`CallbackPrompt::read_line`].
pub type LineFuture<'a> = Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>>;

/// Hands a URL to the user: the auth server's consent page (E§9.5) or a
/// resource's interaction page (E§9.9). It returns once the URL is handed
/// over; the agent then waits for the redirect to its callback.
pub trait ConsentHandler: Send + Sync {
    /// Presents `url` to the user.
    fn present<'a>(&'a self, url: &'a Url) -> PresentFuture<'a>;
}

/// Prints the URL to standard error and opens a browser when one is
/// available — never when `CI` is set or there is no display.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrowserConsent;

impl ConsentHandler for BrowserConsent {
    fn present<'a>(&'a self, url: &'a Url) -> PresentFuture<'a> {
        Box::pin(async move {
            eprintln!("Open this URL to continue:\n  {url}");
            if let Some(said) = open_in_browser(url) {
                eprintln!("({said})");
            }
            Ok(())
        })
    }
}

/// For an agent with no user at hand (a resource calling on, a service):
/// a climb that needs the user's consent ends with [`AgentError::Consent`]
/// instead of showing an address to nobody. Such a program brings the user
/// in through its own pages with [`crate::Agent::consent_url`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUser;

impl ConsentHandler for NoUser {
    fn present<'a>(&'a self, _url: &'a Url) -> PresentFuture<'a> {
        Box::pin(async { Err("this agent has no user at hand to ask".to_owned()) })
    }
}

/// Opens `url` in a browser on this machine when one can be shown (never
/// under `CI`; on Linux only with a display). Says what happened, or `None`
/// when there is no browser to open.
pub fn open_in_browser(url: &Url) -> Option<String> {
    let opener = browser_opener()?;
    Some(
        match std::process::Command::new(opener)
            .arg(url.as_str())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(_) => format!("opened with {opener}"),
            Err(e) => format!("could not run {opener}: {e}"),
        },
    )
}

/// The program that opens a URL in a browser here, if a browser can be
/// shown: never under `CI`, and on Linux only with a display.
fn browser_opener() -> Option<&'static str> {
    if std::env::var_os("CI").is_some() {
        return None;
    }
    if cfg!(target_os = "macos") {
        return Some("open");
    }
    if cfg!(target_os = "windows") {
        return Some("explorer");
    }
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    display.then_some("xdg-open")
}

/// What came back to the callback: its query parameters.
pub type Callback = HashMap<String, String>;

type Slot = Arc<Mutex<Option<oneshot::Sender<Callback>>>>;

/// A one-shot loopback listener for `redirect_uri` / `return_url` (RFC 8252
/// §7.3): the first request to `/callback` is delivered, then it stops.
#[derive(Debug)]
pub struct CallbackListener {
    redirect_uri: Url,
    received: oneshot::Receiver<Callback>,
    task: tokio::task::JoinHandle<()>,
    slot: Slot,
}

/// Hands a [`CallbackListener`] its callback from text a person pasted: the
/// whole address their browser was sent to (when it could not load it,
/// being on another machine), or just its query.
#[derive(Debug, Clone)]
pub struct Deliverer {
    redirect_uri: Url,
    slot: Slot,
}

/// Longest pasted text read.
const MAX_PASTE: usize = 8 * 1024;

impl Deliverer {
    /// Reads `text` as the browser's address at the callback and delivers
    /// its query, or says what is wrong with it (for the person to try
    /// again). The address must be this listener's, port and path included:
    /// a code meant for another request is not taken.
    pub fn deliver(&self, text: &str) -> Result<(), String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("nothing was pasted".into());
        }
        if text.len() > MAX_PASTE {
            return Err(format!("that is longer than {MAX_PASTE} bytes"));
        }
        let query = if text.starts_with("http://") || text.starts_with("https://") {
            let url = Url::parse(text).map_err(|e| format!("that is not an address: {e}"))?;
            let expected = &self.redirect_uri;
            if url.origin() != expected.origin() || url.path() != expected.path() {
                return Err(format!(
                    "that address is not this request's {expected} (paste the address the \
                     browser shows after you answered)"
                ));
            }
            url.query().unwrap_or_default().to_owned()
        } else {
            text.trim_start_matches('?').to_owned()
        };
        let callback: Callback = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let sender = self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or("this request was already completed")?;
        sender
            .send(callback)
            .map_err(|_| "the agent stopped waiting".to_owned())
    }
}

/// A person at a terminal while the agent waits for the browser: they can
/// paste the address the browser ended at, and are told how long is left.
pub trait CallbackPrompt: Send + Sync {
    /// The next line the person typed, `None` at the end of input.
    fn read_line(&self) -> LineFuture<'_>;
    /// Tells the person something (why a paste was not taken).
    fn tell(&self, line: &str);
    /// Called once a second while waiting, with the time left.
    fn countdown(&self, left: Duration);
}

impl Drop for CallbackListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The page the browser lands on back at the agent, styled like the
/// servers' pages: it says how the flow ended, from the callback's query
/// (E§9.5: `code`, or `error`).
fn done_page(query: &Callback) -> String {
    let (heading, line) = match (query.get("code"), query.get("error").map(String::as_str)) {
        (_, Some("access_denied")) => (
            "Access denied",
            "You denied access. The agent has been told; you can close this window.".to_owned(),
        ),
        (_, Some(error)) => (
            "Not completed",
            format!(
                "The request ended with the error {}. Return to the agent for details.",
                escape(error)
            ),
        ),
        (Some(_), None) => (
            "Access approved",
            "You can close this window and return to the agent.".to_owned(),
        ),
        (None, None) => (
            "Done",
            "You can close this window and return to the agent.".to_owned(),
        ),
    };
    page(heading, &format!("<h1>{heading}</h1><p>{line}</p>"))
}

async fn callback(State(slot): State<Slot>, Query(query): Query<Callback>) -> Html<String> {
    let sender = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match sender {
        Some(sender) => {
            let html = done_page(&query);
            let _ = sender.send(query);
            Html(html)
        }
        None => Html(page(
            "Already completed",
            "<h1>Already completed</h1><p>This request was already completed. \
             You can close this window.</p>",
        )),
    }
}

impl CallbackListener {
    /// Binds `127.0.0.1:0` and starts serving `/callback`.
    pub async fn bind() -> Result<Self, AgentError> {
        Self::bind_on(0).await
    }

    /// Binds `127.0.0.1:port` (any free port for 0) and starts serving
    /// `/callback`: a fixed port is one a user can forward from the machine
    /// their browser runs on (`ssh -L port:127.0.0.1:port`).
    pub async fn bind_on(port: u16) -> Result<Self, AgentError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| {
                AgentError::Consent(format!(
                    "cannot listen on 127.0.0.1:{port} for the browser's return: {e}"
                ))
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| AgentError::Consent(e.to_string()))?
            .port();
        let redirect_uri = Url::parse(&format!("http://127.0.0.1:{port}/callback"))
            .map_err(|e| AgentError::Consent(e.to_string()))?;
        let (sender, received) = oneshot::channel();
        let slot: Slot = Arc::new(Mutex::new(Some(sender)));
        let router = Router::new()
            .route("/callback", get(callback))
            .with_state(Arc::clone(&slot));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            redirect_uri,
            received,
            task,
            slot,
        })
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// A way to hand this listener the callback by other means than the
    /// browser reaching it: the address the browser was sent to, pasted.
    pub fn deliverer(&self) -> Deliverer {
        Deliverer {
            redirect_uri: self.redirect_uri.clone(),
            slot: Arc::clone(&self.slot),
        }
    }

    /// Waits up to `timeout` for the callback.
    pub async fn wait(mut self, timeout: Duration) -> Result<Callback, AgentError> {
        let outcome = tokio::time::timeout(timeout, &mut self.received).await;
        // Give the browser its page before the listener goes away (on drop).
        tokio::time::sleep(Duration::from_millis(50)).await;
        match outcome {
            Ok(Ok(query)) => Ok(query),
            Ok(Err(_)) => Err(AgentError::Consent("the callback listener stopped".into())),
            Err(_) => Err(AgentError::Consent(format!(
                "no callback within {} s",
                timeout.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_callback_is_delivered_with_its_query() {
        let listener = CallbackListener::bind().await.unwrap();
        let mut url = listener.redirect_uri().clone();
        assert!(url.as_str().starts_with("http://127.0.0.1:"));
        url.set_query(Some("code=abc&state=xyz"));
        let page = reqwest::get(url.clone())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Access approved"), "{page}");
        assert!(page.contains("lang=\"en\""), "{page}");
        let query = listener.wait(Duration::from_secs(5)).await.unwrap();
        assert_eq!(query.get("code").map(String::as_str), Some("abc"));
        assert_eq!(query.get("state").map(String::as_str), Some("xyz"));
    }

    #[tokio::test]
    async fn waiting_times_out() {
        let listener = CallbackListener::bind().await.unwrap();
        let error = listener.wait(Duration::from_millis(10)).await.unwrap_err();
        assert!(error.to_string().contains("no callback"), "{error}");
    }

    #[tokio::test]
    async fn a_pasted_address_is_taken_only_when_it_is_this_listeners() {
        let listener = CallbackListener::bind().await.unwrap();
        let deliverer = listener.deliverer();
        let here = listener.redirect_uri().clone();
        for (text, why) in [
            ("", "nothing was pasted"),
            (
                "http://127.0.0.1:9/callback?code=c&state=s",
                "not this request's",
            ),
            (
                &format!("{}?code=c", here.as_str().replace("/callback", "/other")),
                "not this request's",
            ),
            (&"x".repeat(MAX_PASTE + 1), "longer than"),
            ("http://[::1", "not an address"),
        ] {
            let error = deliverer.deliver(text).unwrap_err();
            assert!(error.contains(why), "{text:?}: {error}");
        }
        // The whole address, with spaces around it, is taken.
        deliverer
            .deliver(&format!("  {here}?code=abc&state=xyz \n"))
            .unwrap();
        let error = deliverer.deliver("code=again&state=xyz").unwrap_err();
        assert!(error.contains("already completed"), "{error}");
        let query = listener.wait(Duration::from_secs(5)).await.unwrap();
        assert_eq!(query.get("code").map(String::as_str), Some("abc"));
        assert_eq!(query.get("state").map(String::as_str), Some("xyz"));
    }

    #[tokio::test]
    async fn a_pasted_query_alone_is_taken() {
        let listener = CallbackListener::bind().await.unwrap();
        listener
            .deliverer()
            .deliver("?error=access_denied&state=s")
            .unwrap();
        let query = listener.wait(Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            query.get("error").map(String::as_str),
            Some("access_denied")
        );
    }

    #[tokio::test]
    async fn a_fixed_port_is_listened_on_and_a_taken_one_is_a_clear_error() {
        let first = CallbackListener::bind().await.unwrap();
        let port = first.redirect_uri().port().unwrap();
        let error = CallbackListener::bind_on(port).await.unwrap_err();
        assert!(
            error.to_string().contains(&format!("127.0.0.1:{port}")),
            "{error}"
        );
    }

    #[test]
    fn the_done_page_says_how_the_flow_ended() {
        let query = |pairs: &[(&str, &str)]| -> Callback {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(done_page(&query(&[("code", "c")])).contains("Access approved"));
        assert!(done_page(&query(&[("error", "access_denied")])).contains("Access denied"));
        let odd = done_page(&query(&[("error", "<b>x</b>")]));
        assert!(
            odd.contains("Not completed") && odd.contains("&lt;b&gt;"),
            "{odd}"
        );
        assert!(done_page(&query(&[])).contains("<h1>Done</h1>"));
    }

    #[test]
    fn no_browser_under_ci() {
        // Tests run with or without CI set; only check the CI rule holds
        // when it is set.
        if std::env::var_os("CI").is_some() {
            assert_eq!(browser_opener(), None);
        }
    }
}
