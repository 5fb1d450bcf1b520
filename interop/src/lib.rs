//! # aauth-interop
//!
//! Live interop with the early-form Python peer, PyPI `aauth` 0.1.0: the
//! harness that starts the thin drivers in `interop/peer/` (written here,
//! on top of that library only) beside this project's servers. The tests in
//! `interop/tests/` run both ways between the two implementations
//! (`python.rs`; `docs/interop.md` has the matrix they measure), and set
//! the RFC 9421 layer against the independent `http-message-signatures`
//! package (`rfc9421.rs`; `docs/robustness.md`).
//!
//! The peer lives in `interop/.venv`, which `interop/setup.sh` creates (the
//! README's test command runs it first). Without it every test here fails,
//! saying so: interop that cannot run is not interop that passed.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// How long a driver has to say it is listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The `interop/` directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of `interop/.venv` (or `AAUTH_INTEROP_PYTHON`), checked to
/// exist and to hold the peer.
pub fn python() -> Result<PathBuf, String> {
    let python = std::env::var_os("AAUTH_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    if !python.is_file() {
        return Err(format!(
            "{} is missing: run interop/setup.sh (the README's test command does) \
             to install the Python peer",
            python.display()
        ));
    }
    Ok(python)
}

/// The driver script.
pub fn driver() -> PathBuf {
    root().join("peer/aauth_peer.py")
}

/// A driver serving until dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Starts `aauth_peer.py ARGS…` and waits for its `listening url=` line.
    pub fn start(args: &[&str]) -> Result<Self, String> {
        let mut child = Command::new(python()?)
            .arg(driver())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the Python peer: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening url=") {
                    let _ = sender.send(url.to_owned());
                }
            }
        });
        match receiver.recv_timeout(START_TIMEOUT) {
            Ok(url) => Ok(Self { child, url }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "the Python peer ({}) did not start within {} s",
                    args.join(" "),
                    START_TIMEOUT.as_secs()
                ))
            }
        }
    }

    /// Its origin.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a run of the peer's agent printed: one JSON object per step, and
/// whether it exited 0.
#[derive(Debug)]
pub struct AgentRun {
    /// The steps, in order.
    pub steps: Vec<Value>,
    /// Every call's last answer was 2xx.
    pub success: bool,
    /// Standard error, for failure messages.
    pub stderr: String,
}

impl AgentRun {
    /// The statuses of the steps, as `step status` pairs (`request 200`).
    pub fn statuses(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s["step"].as_str().unwrap_or("?"),
                    s["status"].as_u64().unwrap_or(0)
                )
            })
            .collect()
    }
}

/// Runs the peer's agent with its agent server on `port` and `calls`
/// (`SCHEME,METHOD,URL`).
pub fn agent(port: u16, calls: &[String]) -> Result<AgentRun, String> {
    let output = Command::new(python()?)
        .arg(driver())
        .args(["agent", "--port", &port.to_string()])
        .args(calls)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run the Python agent: {e}"))?;
    let steps = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    Ok(AgentRun {
        steps,
        success: output.status.success(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}
