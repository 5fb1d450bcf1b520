//! The binary over a real socket: `serve` announces its URL and answers,
//! `hash-password` prints a PHC string, `revoke` prints a count.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use argon2::{Argon2, PasswordVerifier as _};

const BIN: &str = env!("CARGO_BIN_EXE_aauth-auth-server");

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("aauth-as-bin-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn hash_password_prints_an_argon2id_phc_string() {
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let hash = String::from_utf8(output.stdout).unwrap();
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(Argon2::default().verify_password(b"s3cret", hash).is_ok());
}

#[test]
fn hash_password_at_a_terminal_asks_twice_without_echo() {
    // A pseudo-terminal from util-linux `script`: the password is typed
    // there, twice, and never shown.
    let mut child = Command::new("script")
        .args(["-qec", &format!("{BIN} hash-password"), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` provides the terminal for this test");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 || tx.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    // Each line is typed once its prompt is up.
    for prompt in ["Password: ", "Password again: "] {
        while !String::from_utf8_lossy(&seen).contains(prompt) {
            let chunk = rx
                .recv_timeout(std::time::Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no {prompt:?}: {:?}", String::from_utf8_lossy(&seen)));
            seen.extend(chunk);
        }
        // The prompt is written just before echo is turned off: type as a
        // person would, a moment later.
        std::thread::sleep(std::time::Duration::from_millis(300));
        stdin.write_all(b"s3cret\n").unwrap();
        stdin.flush().unwrap();
    }
    let status = child.wait().unwrap();
    seen.extend(rx.iter().flatten());
    let text = String::from_utf8_lossy(&seen);
    assert!(status.success(), "{text}");
    assert!(
        text.contains("Password: ") && text.contains("Password again: "),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "the password was echoed: {text}");
    let hash = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("$argon2id$"))
        .unwrap_or_else(|| panic!("no PHC string in {text:?}"));
    assert!(Argon2::default().verify_password(b"s3cret", hash).is_ok());
}

#[test]
fn serve_announces_answers_and_stops_on_sigterm_then_revoke_counts() {
    let dir = temp_dir("serve");
    let database = dir.join("state").join("auth.db");
    let mut child = Command::new(BIN)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--database"])
        .arg(&database)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening url=")
        .expect("the ready line")
        .to_owned();
    let authority = url.strip_prefix("http://").unwrap();

    let mut stream = TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "GET /.well-known/aauth-issuer HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains(&format!("\"issuer\":\"{url}\"")),
        "{response}"
    );
    assert!(database.exists(), "the database is created on first start");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success(), "graceful exit 0");

    let output = Command::new(BIN)
        .args(["revoke", "--user", "alice", "--database"])
        .arg(&database)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        "revoked 0"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn revoke_needs_a_filter() {
    let output = Command::new(BIN)
        .args(["revoke", "--database", "/nonexistent/never.db"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn a_fatal_start_up_error_is_printed_once() {
    let output = Command::new(BIN)
        .args(["serve", "--dev", "--database", "/proc/no-such-dir/auth.db"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("cannot be written").count(), 1, "{stderr}");
    assert!(
        stderr.contains("aauth-auth-server: configuration: database: the database /proc/no-such-dir/auth.db cannot be written"),
        "{stderr}"
    );
}
