//! Starting the real server binaries on loopback and stopping them again.
//!
//! Each party runs as its own process in dev mode on a port picked up front
//! (so that configuration files can name each other before anything starts),
//! announces itself with one `listening url=…` line on standard output, and
//! writes its log to a file in the run's directory. Dropping a [`Party`]
//! terminates the process, so a failing test or an interrupted demo leaves
//! nothing running.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to announce itself.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `XDG_DATA_HOME` of every party the harness starts, inside its run
/// directory: a party given no state directory keeps its state there, never
/// in the home directory of whoever runs the tests.
pub const DATA_HOME: &str = "xdg-data";

/// Why a party could not be started.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The binary is not where the build puts it.
    #[error("{0} not found; build the servers first (`cargo build --bins`), or set AAUTH_BIN_DIR")]
    MissingBinary(PathBuf),
    /// Spawning failed.
    #[error("cannot start {name}: {source}")]
    Spawn {
        /// The binary.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// The process stayed silent instead of announcing itself.
    #[error("{name} did not announce itself within {timeout:?}; its log is {log}")]
    NotReady {
        /// The binary.
        name: String,
        /// How long we waited.
        timeout: Duration,
        /// Where its log is.
        log: String,
    },
    /// The process exited before announcing itself.
    #[error("{name} exited ({status}) before announcing itself; the end of its log:\n{tail}")]
    Exited {
        /// The binary.
        name: String,
        /// How it exited.
        status: String,
        /// The last lines of its log (its start-up error).
        tail: String,
    },
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The directory holding the server binaries: `AAUTH_BIN_DIR`, or the
/// target directory this executable was built into.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AAUTH_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    // Test executables live in target/<profile>/deps.
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    dir
}

/// The path of binary `name`, checked to exist.
pub fn binary(name: &str) -> Result<PathBuf, HarnessError> {
    let path = bin_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::MissingBinary(path))
    }
}

/// Ports [`free_port`] draws from: below Linux's default range of ephemeral
/// ports (32768–60999), which outgoing connections take their local ports
/// from. A port the kernel hands out for `:0` is in that range, and in the
/// moment between releasing it and the server binding it, any connection
/// on the machine may take it.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Times a world is started afresh, on new ports, when a server finds the
/// port it was given taken: between [`free_port`] releasing a port and the
/// server binding it, another test on the machine may take it.
pub const PORT_RETRIES: usize = 3;

/// A free loopback port (bound and released; the servers bind it next),
/// drawn at random from [`PORTS`]; `:0`'s answer if none is found.
pub fn free_port() -> u16 {
    let span = u32::from(PORTS.end - PORTS.start);
    for _ in 0..64 {
        let mut bytes = [0u8; 4];
        if aauth_protocol::keys::random_bytes(&mut bytes).is_err() {
            break;
        }
        let offset = u16::try_from(u32::from_le_bytes(bytes) % span).unwrap_or(0);
        let port = PORTS.start + offset;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

impl HarnessError {
    /// Whether a server exited because its port was taken in the meantime
    /// (see [`PORT_RETRIES`]); no other failure is retried.
    pub fn is_port_taken(&self) -> bool {
        matches!(self, Self::Exited { tail, .. } if tail.contains("Address already in use"))
    }
}

/// A running server process.
#[derive(Debug)]
pub struct Party {
    name: String,
    child: Option<Child>,
    url: String,
    log: PathBuf,
}

impl Party {
    /// Starts `name` with `args` (stderr to `<dir>/<label>.log`) and waits for
    /// its `listening url=` line.
    pub fn start(
        name: &str,
        label: &str,
        args: &[String],
        dir: &Path,
    ) -> Result<Self, HarnessError> {
        Self::start_wrapped(&[], name, label, args, dir)
    }

    /// [`Party::start`] under `wrapper`: the command run is `wrapper`
    /// followed by the binary and `args` (a wrapper such as `unshare … sh
    /// -c '…; exec "$@"'` must end by exec'ing them, so that the process
    /// kept is the server's).
    pub fn start_wrapped(
        wrapper: &[String],
        name: &str,
        label: &str,
        args: &[String],
        dir: &Path,
    ) -> Result<Self, HarnessError> {
        let binary = binary(name)?;
        let log = dir.join(format!("{label}.log"));
        let log_file = std::fs::File::create(&log).map_err(|source| HarnessError::Io {
            path: log.clone(),
            source,
        })?;
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        let mut child = command
            .args(args)
            .current_dir(dir)
            .env("XDG_DATA_HOME", dir.join(DATA_HOME))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                name: name.to_owned(),
                source,
            })?;
        let not_ready = || HarnessError::NotReady {
            name: name.to_owned(),
            timeout: READY_TIMEOUT,
            log: log.display().to_string(),
        };
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(not_ready());
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening url=") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(url) => Ok(Self {
                name: name.to_owned(),
                child: Some(child),
                url,
                log,
            }),
            // Its standard output closed without the line: it exited.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child
                    .wait()
                    .map_or_else(|e| e.to_string(), |status| status.to_string());
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines
                    .get(lines.len().saturating_sub(10)..)
                    .unwrap_or_default()
                    .join("\n");
                Err(HarnessError::Exited {
                    name: name.to_owned(),
                    status,
                    tail,
                })
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(not_ready())
            }
        }
    }

    /// The URL it announced.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Stops it (SIGTERM, then SIGKILL after two seconds) and waits.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        #[cfg(unix)]
        {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            for _ in 0..20 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills it at once (SIGKILL: no shutdown, as in a crash) and waits.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The binary's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Party {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf, HarnessError> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|source| HarnessError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_whose_port_is_taken_is_told_apart_from_other_failures() {
        // What World::start and Chain::start retry on fresh ports, and only it.
        let dir = tempfile::tempdir().unwrap();
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let serve = |listen: String| {
            vec![
                "serve".to_owned(),
                "--dev".to_owned(),
                "--auth-server".to_owned(),
                "http://127.0.0.1:1".to_owned(),
                "--listen".to_owned(),
                listen,
            ]
        };
        let taken = Party::start(
            "aauth-resource",
            "taken",
            &serve(format!("127.0.0.1:{port}")),
            dir.path(),
        )
        .unwrap_err();
        assert!(taken.is_port_taken(), "{taken}");

        // A server that fails for another reason is not retried.
        let mut args = serve(format!("127.0.0.1:{}", free_port()));
        args.truncate(2);
        let other = Party::start("aauth-resource", "other", &args, dir.path()).unwrap_err();
        assert!(!other.is_port_taken(), "{other}");
    }
}

/// `aauth-conformance agent` running: the suite's resource, which an agent
/// under test calls; [`SuiteAgent::finish`] waits for its verdict.
#[derive(Debug)]
pub struct SuiteAgent {
    child: Child,
    /// Kept open to the end: the suite prints its table there.
    stdout: BufReader<std::process::ChildStdout>,
    url: String,
}

impl SuiteAgent {
    /// Starts `aauth-conformance agent ARGS…` (which name `--listen`) and
    /// reads the URL of its resource from its first line.
    pub fn start(args: &[&str]) -> Result<Self, HarnessError> {
        const NAME: &str = "aauth-conformance";
        let mut child = Command::new(binary(NAME)?)
            .arg("agent")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                name: NAME.into(),
                source,
            })?;
        let exited = |child: &mut Child| HarnessError::Exited {
            name: NAME.into(),
            status: child
                .try_wait()
                .ok()
                .flatten()
                .map_or_else(|| "running".into(), |s| s.to_string()),
            tail: String::new(),
        };
        let Some(stdout) = child.stdout.take() else {
            return Err(exited(&mut child));
        };
        let mut stdout = BufReader::new(stdout);
        let mut first = String::new();
        let _ = stdout.read_line(&mut first);
        match first.trim().strip_prefix("listening url=") {
            Some(url) => Ok(Self {
                url: url.to_owned(),
                child,
                stdout,
            }),
            None => Err(exited(&mut child)),
        }
    }

    /// The suite's resource.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits for the run to end: whether it exited 0, and the table it
    /// printed.
    pub fn finish(mut self) -> (bool, String) {
        let mut table = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stdout, &mut table);
        let success = self.child.wait().is_ok_and(|s| s.success());
        (success, table)
    }
}
