//! Headless Chromium driven over WebDriver (chromedriver, through the
//! `fantoccini` crate): a real browser on the pages a person sees. Each
//! page it lands on is photographed under `target/browser/<test>/` and
//! checked for what every page must carry: a language, a title, a heading,
//! a label for every field, text on every button, and alternative text on
//! every image.
//!
//! Chromium and chromedriver come from `CHROME` and `CHROMEDRIVER`, else
//! from `PATH`; `scripts/chromium.sh` installs both from the OS packages.
//! Without them every browser test fails, saying how to get them.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aauth_e2e::harness::{bin_dir, free_port};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use url::Url;

/// How long a page may take to appear.
const PAGE_WAIT: Duration = Duration::from_secs(15);

/// What the browser saw on one page.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The file name of its screenshot, under [`Chromium::shots`].
    pub name: String,
    /// Where the browser was.
    pub url: Url,
    /// `document.title`.
    pub title: String,
    /// The page's visible text (`document.body.innerText`).
    pub text: String,
    /// What the page lacks for a person using a screen reader or a
    /// keyboard (see [`ACCESSIBILITY`]); empty when nothing.
    pub problems: Vec<String>,
}

/// A headless Chromium with its chromedriver, both stopped on drop.
pub struct Chromium {
    driver: Child,
    client: Client,
    profile: tempfile::TempDir,
    shots: PathBuf,
    count: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

/// Finds `program` from the environment variable `var`, else on `PATH`.
fn locate(var: &str, names: &[&str]) -> PathBuf {
    let wanted: Vec<String> = match std::env::var(var) {
        Ok(value) if !value.is_empty() => vec![value],
        _ => names.iter().map(|n| (*n).to_owned()).collect(),
    };
    for name in &wanted {
        let candidate = Path::new(name);
        if candidate.is_absolute() && candidate.is_file() {
            return candidate.to_path_buf();
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        for dir in std::env::split_paths(&path) {
            let full = dir.join(name);
            if full.is_file() {
                return full;
            }
        }
    }
    panic!(
        "the browser tests need {} (set {var}, or run ./scripts/chromium.sh, which installs \
         Chromium and chromedriver from the OS packages)",
        wanted.join(" or ")
    )
}

/// The folder screenshots of test `test` go to: `target/browser/<test>/`.
fn shots_dir(test: &str) -> PathBuf {
    // bin_dir() is target/<profile>; screenshots sit beside it.
    let target = bin_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("browser").join(test)
}

impl Chromium {
    /// Starts chromedriver on a free loopback port and opens a headless
    /// Chromium with a fresh profile through it; screenshots go to
    /// `target/browser/<test>/`.
    pub async fn start(test: &str) -> Self {
        let chrome = locate("CHROME", &["chromium", "chromium-browser", "google-chrome"]);
        let chromedriver = locate("CHROMEDRIVER", &["chromedriver"]);
        let shots = shots_dir(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("the screenshot folder");
        let profile = tempfile::tempdir().expect("a profile folder");
        let port = free_port();
        let log = std::fs::File::create(profile.path().join("chromedriver.log"))
            .expect("chromedriver's log");
        // Its own process group, so that stopping it stops the Chromium it
        // starts too: chromedriver killed alone leaves its browser running.
        let mut driver = Command::new(&chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromedriver.display()));
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = driver.try_wait() {
                panic!("chromedriver exited with {status}");
            }
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-extensions",
                    "--lang=en-US",
                    "--window-size=900,900",
                    format!("--user-data-dir={}", profile.path().join("chrome").display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = match ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&endpoint)
            .await
        {
            Ok(client) => client,
            Err(e) => {
                stop_group(&mut driver);
                let log = std::fs::read_to_string(profile.path().join("chromedriver.log"))
                    .unwrap_or_default();
                panic!("Chromium did not start ({}): {e}\n{log}", chrome.display());
            }
        };
        Self {
            driver,
            client,
            profile,
            shots,
            count: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// The WebDriver session.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Where the screenshots go.
    pub fn shots(&self) -> &Path {
        &self.shots
    }

    /// Every page recorded so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Navigates to `url` (following redirects, as a browser does).
    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("the browser could not open {url}: {e}"));
    }

    /// Where the browser is.
    pub async fn url(&self) -> Url {
        self.client.current_url().await.expect("the current URL")
    }

    /// Runs `script` in the page and returns its value.
    pub async fn run(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("the script failed: {e}\n{script}"))
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.run("return document.body ? document.body.innerText : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until `css` matches an element on the page.
    pub async fn wait_for(&self, css: &str) {
        let deadline = Instant::now() + PAGE_WAIT;
        while self.client.find(Locator::Css(css)).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "no {css} on {} within {PAGE_WAIT:?}: {}",
                self.url().await,
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the browser is at a URL for which `arrived` holds and
    /// the page has loaded.
    pub async fn wait_until(&self, what: &str, arrived: impl Fn(&Url) -> bool) -> Url {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let url = self.url().await;
            let ready = self.run("return document.readyState;").await;
            if arrived(&url) && ready == "complete" {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "the browser did not reach {what} within {PAGE_WAIT:?}; it is at {url}: {}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the field `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no field {css}: {e}"));
        field.clear().await.expect("clear the field");
        field.send_keys(text).await.expect("type into the field");
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing to click at {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Goes back one page in the history.
    pub async fn back(&self) {
        self.client.back().await.expect("back");
    }

    /// Records the page the browser is on as `name`: a screenshot
    /// (`NN-name.png`), its address, title, text and what it lacks.
    pub async fn record(&self, name: &str) -> Seen {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        let file = format!("{n:02}-{name}.png");
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(self.shots.join(&file), png).expect("write the screenshot");
        let problems = match self.run(ACCESSIBILITY).await {
            Value::Array(items) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            other => vec![format!("the check returned {other}")],
        };
        let seen = Seen {
            name: file,
            url: self.url().await,
            title: self.client.title().await.unwrap_or_default(),
            text: self.text().await,
            problems,
        };
        self.seen.lock().unwrap().push(seen.clone());
        seen
    }

    /// Closes the browser and its driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        stop_group(&mut self.driver);
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // After close() this finds the group gone; otherwise (a test that
        // ends without close(), or a panic) it stops chromedriver and every
        // Chromium process it started.
        stop_group(&mut self.driver);
    }
}

/// Kills the process group `leader` leads (chromedriver and the browser it
/// started) and reaps the leader.
fn stop_group(leader: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", leader.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = leader.kill();
    let _ = leader.wait();
}

/// What a page a person sees must carry, checked in the page itself:
/// a language, a title and a heading; a label (or `aria-label`) for every
/// field a person fills; text on every button; `alt` on every image.
/// Returns the list of what is missing.
pub const ACCESSIBILITY: &str = r#"
const problems = [];
const lang = document.documentElement.getAttribute('lang');
if (!lang || !lang.trim()) problems.push('the page declares no language (<html lang>)');
if (!document.title.trim()) problems.push('the page has no title');
if (!document.querySelector('h1')) problems.push('the page has no <h1> heading');
for (const field of document.querySelectorAll('input, select, textarea')) {
  if (field.type === 'hidden') continue;
  const labelled = (field.labels && field.labels.length > 0) ||
    (field.getAttribute('aria-label') || '').trim() !== '';
  if (!labelled) problems.push('the field ' + (field.name || field.id || field.type) + ' has no label');
}
for (const button of document.querySelectorAll('button, input[type=submit]')) {
  const text = (button.innerText || button.value || button.getAttribute('aria-label') || '').trim();
  if (!text) problems.push('a button has no text');
}
for (const img of document.querySelectorAll('img')) {
  if (!img.hasAttribute('alt')) problems.push('an image has no alt text');
}
return problems;
"#;

/// Asserts the page `seen` has nothing missing for a person.
#[track_caller]
pub fn assert_accessible(seen: &Seen) {
    assert!(
        seen.problems.is_empty(),
        "{} ({}) lacks: {:#?}",
        seen.name,
        seen.url,
        seen.problems
    );
}

/// A person at the browser: opens the URL the agent hands over, signs in
/// on the login form (typing, then pressing the button), reads the consent
/// page, presses Approve or Deny, and ends where the redirects take the
/// browser: the agent's loopback callback. Every page is recorded.
pub struct BrowserUser {
    browser: std::sync::Arc<Chromium>,
    username: String,
    password: String,
    decision: aauth_e2e::user::Decision,
}

impl BrowserUser {
    /// A user signing in as `username` who then decides `decision`.
    pub fn new(
        browser: std::sync::Arc<Chromium>,
        username: &str,
        password: &str,
        decision: aauth_e2e::user::Decision,
    ) -> Self {
        Self {
            browser,
            username: username.to_owned(),
            password: password.to_owned(),
            decision,
        }
    }

    /// Signs in on the login page the browser is on.
    pub async fn sign_in(&self) {
        let browser = &self.browser;
        browser.wait_for("#password").await;
        browser.record("login").await;
        browser.fill("#username", &self.username).await;
        browser.fill("#password", &self.password).await;
        browser.click("button[type=submit]").await;
    }

    /// The whole walk from `url` to the agent's callback.
    pub async fn walk(&self, url: &Url) {
        let browser = &self.browser;
        browser.open(url.as_str()).await;
        browser.wait_for("h1").await;
        if browser
            .client()
            .find(Locator::Css("#password"))
            .await
            .is_ok()
        {
            self.sign_in().await;
        }
        browser.wait_for("button[value=approve]").await;
        browser.record("consent").await;
        let button = match self.decision {
            aauth_e2e::user::Decision::Approve => "button[value=approve]",
            aauth_e2e::user::Decision::Deny => "button[value=deny]",
        };
        browser.click(button).await;
        browser
            .wait_until("the agent's callback", |url| {
                url.host_str() == Some("127.0.0.1") && url.path() == "/callback"
            })
            .await;
        browser.record("back-at-the-agent").await;
    }
}

impl aauth_agent::ConsentHandler for BrowserUser {
    fn present<'a>(&'a self, url: &'a Url) -> aauth_agent::consent::PresentFuture<'a> {
        Box::pin(async move {
            self.walk(url).await;
            Ok(())
        })
    }
}
