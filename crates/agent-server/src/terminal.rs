//! The person at the terminal during `call`: where to open the consent
//! page, how to come back when the browser is on another machine (paste the
//! address it ends at), and how long is left.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aauth_agent::consent::{LineFuture, PresentFuture, open_in_browser};
use aauth_agent::{CallbackPrompt, ConsentHandler};
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines, Stdin};
use url::Url;

/// Prints the consent or interaction page's address once, opens it in a
/// browser here unless told not to, and says how to finish from elsewhere.
#[derive(Debug, Clone, Copy)]
pub struct TerminalConsent {
    /// Try to open a browser on this machine.
    pub open_browser: bool,
}

impl ConsentHandler for TerminalConsent {
    fn present<'a>(&'a self, url: &'a Url) -> PresentFuture<'a> {
        Box::pin(async move {
            eprintln!("\nOpen this address in a browser to continue:\n\n  {url}\n");
            if self.open_browser
                && let Some(said) = open_in_browser(url)
            {
                eprintln!("({said})");
            }
            // E§9.5 redirect_uri, P-UI-2 return_url: where the browser returns.
            let back = url
                .query_pairs()
                .find(|(k, _)| k == "redirect_uri" || k == "return_url")
                .map(|(_, v)| v.into_owned());
            if let Some(back) = back {
                eprintln!(
                    "When you have answered, the browser returns to {back}.\n\
                     If it cannot reach this machine (the page does not load), copy the address \
                     it shows, paste it here and press Enter."
                );
            }
            Ok(())
        })
    }
}

/// Standard input for pasted addresses; standard error for what the person
/// is told: a countdown updated in place on a terminal, a line every 30 s
/// otherwise.
pub struct TerminalPrompt {
    lines: tokio::sync::Mutex<Lines<BufReader<Stdin>>>,
    live: bool,
    /// A countdown line is on screen, not yet ended by a newline.
    open_line: AtomicBool,
}

impl TerminalPrompt {
    /// Reads standard input; updates the countdown in place when standard
    /// error is a terminal.
    pub fn new() -> Self {
        Self {
            lines: tokio::sync::Mutex::new(BufReader::new(tokio::io::stdin()).lines()),
            live: std::io::stderr().is_terminal(),
            open_line: AtomicBool::new(false),
        }
    }

    /// Ends the countdown's line, if one is open, before other output.
    pub fn end_line(&self) {
        if self.open_line.swap(false, Ordering::SeqCst) {
            eprintln!();
        }
    }
}

/// `4:05` for 245 s.
fn clock(left: Duration) -> String {
    let secs = left.as_secs();
    format!("{}:{:02}", secs / 60, secs % 60)
}

impl CallbackPrompt for TerminalPrompt {
    fn read_line(&self) -> LineFuture<'_> {
        Box::pin(async move {
            let mut lines = self.lines.lock().await;
            lines.next_line().await.ok().flatten()
        })
    }

    fn tell(&self, line: &str) {
        self.end_line();
        eprintln!("{line}");
    }

    fn countdown(&self, left: Duration) {
        if self.live {
            eprint!(
                "\r  waiting for the browser: {} left (--consent-timeout) ",
                clock(left)
            );
            let _ = std::io::stderr().flush();
            self.open_line.store(true, Ordering::SeqCst);
        } else if left.as_secs().is_multiple_of(30) && left.as_secs() > 0 {
            eprintln!(
                "waiting for the browser: {} left (--consent-timeout)",
                clock(left)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_countdown_reads_as_minutes_and_seconds() {
        assert_eq!(clock(Duration::from_secs(300)), "5:00");
        assert_eq!(clock(Duration::from_secs(245)), "4:05");
        assert_eq!(clock(Duration::from_secs(9)), "0:09");
    }
}
