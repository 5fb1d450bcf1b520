//! The state rule (README, "Where state lives"): every party keeps its state
//! in one directory, by default the platform's data directory for it, so the
//! README's commands work from any directory; paths in a configuration file
//! are relative to the file; a command that only reads state creates none;
//! and every state file is ignored by git.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failure here is a test failure"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aauth_e2e::harness::{DATA_HOME, Party, binary, free_port, write_file};

/// Runs `aauth-agent-server ARGS` in `cwd` with `XDG_DATA_HOME=data`.
fn agent_cli(cwd: &Path, data: &Path, args: &[&str]) -> Output {
    Command::new(binary("aauth-agent-server").unwrap())
        .current_dir(cwd)
        .env("XDG_DATA_HOME", data)
        .args(args)
        .output()
        .unwrap()
}

/// Every file under `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    found.sort();
    found
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_readmes_commands_keep_state_in_the_data_directory_and_work_from_anywhere() {
    let root = tempfile::tempdir().unwrap();
    let (serve_dir, elsewhere) = (root.path().join("serve"), root.path().join("elsewhere"));
    std::fs::create_dir_all(&serve_dir).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    // `Party::start` gives the server XDG_DATA_HOME=<its directory>/DATA_HOME.
    let data = serve_dir.join(DATA_HOME);
    let port = free_port();
    let agent_server = Party::start(
        "aauth-agent-server",
        "agent-server",
        &[
            "serve".into(),
            "--dev".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ],
        &serve_dir,
    )
    .unwrap();

    // mint-code from another directory finds the server's database.
    let minted = agent_cli(&elsewhere, &data, &["mint-code"]);
    assert!(minted.status.success(), "{}", stderr(&minted));
    let code = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    let enrolled = agent_cli(
        &elsewhere,
        &data,
        &[
            "enroll",
            "--dev",
            "--agent",
            agent_server.url(),
            "--code",
            &code,
        ],
    );
    assert!(enrolled.status.success(), "{}", stderr(&enrolled));
    assert!(
        stderr(&enrolled).contains(&format!(
            "state in {}",
            data.join("aauth/delegate").display()
        )),
        "{}",
        stderr(&enrolled)
    );
    let metadata = format!("{}/.well-known/aauth-agent", agent_server.url());
    let called = agent_cli(&elsewhere, &data, &["call", "--dev", "GET", &metadata]);
    assert!(called.status.success(), "{}", stderr(&called));

    let state: Vec<PathBuf> = files(&data)
        .into_iter()
        // SQLite's write-ahead log files come and go with the server.
        .filter(|f| {
            !f.to_str().unwrap().ends_with("-wal") && !f.to_str().unwrap().ends_with("-shm")
        })
        .collect();
    assert_eq!(
        state,
        [
            "aauth/agent-server/agent-server.db",
            "aauth/agent-server/key.json",
            "aauth/delegate/agent.json",
            "aauth/delegate/key.json",
        ]
        .map(PathBuf::from)
    );
    assert_eq!(
        files(&elsewhere),
        Vec::<PathBuf>::new(),
        "nothing in the current directory"
    );
    assert_eq!(
        files(&serve_dir)
            .into_iter()
            .filter(|f| !f.starts_with(DATA_HOME))
            .collect::<Vec<_>>(),
        [PathBuf::from("agent-server.log")],
        "only the harness's log beside the server"
    );
    assert_ignored_by_git(&files(&data));
}

#[test]
fn a_command_that_only_reads_state_refuses_and_creates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("empty-data-home");
    let config = write_file(
        root.path(),
        "agent-server.toml",
        "public_url = \"http://127.0.0.1:4001\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    for (args, says) in [
        (vec!["mint-code"], "no agent server database at"),
        (
            vec![
                "call",
                "--dev",
                "--as-server",
                "--config",
                config,
                "GET",
                "http://127.0.0.1:1/",
            ],
            "no such file; the server's `serve` creates it",
        ),
        (
            vec!["call", "--dev", "GET", "http://127.0.0.1:1/"],
            "holds no enrolled delegate",
        ),
        (vec!["renew", "--dev"], "holds no enrolled delegate"),
    ] {
        let output = agent_cli(root.path(), &data, &args);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(&data.join("aauth").display().to_string()),
            "{args:?} names where it looked: {}",
            stderr(&output)
        );
        assert!(!data.exists(), "{args:?} created {:?}", files(&data));
    }
    let revoked = Command::new(binary("aauth-auth-server").unwrap())
        .current_dir(root.path())
        .env("XDG_DATA_HOME", &data)
        .args(["revoke", "--user", "alice"])
        .output()
        .unwrap();
    assert!(!revoked.status.success());
    assert!(
        stderr(&revoked).contains(&format!(
            "no auth server database at {}",
            data.join("aauth/auth-server/auth-server.db").display()
        )),
        "{}",
        stderr(&revoked)
    );
    assert!(!data.exists(), "revoke created {:?}", files(&data));
}

#[test]
fn paths_in_a_configuration_file_are_relative_to_the_file_and_flags_win() {
    let root = tempfile::tempdir().unwrap();
    let (conf, cwd) = (root.path().join("conf"), root.path().join("cwd"));
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&conf).unwrap();
    let auth_config = write_file(&conf, "auth-server.toml", "database = \"db/auth.db\"\n").unwrap();
    let resource_config = write_file(
        &conf,
        "resource.toml",
        "auth_server = \"http://127.0.0.1:9\"\nstate_dir = \"resource-state\"\n",
    )
    .unwrap();
    let serve = |config: &Path, extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "serve".to_owned(),
            "--dev".to_owned(),
            "--listen".to_owned(),
            format!("127.0.0.1:{}", free_port()),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let mut auth = Party::start(
        "aauth-auth-server",
        "auth-server",
        &serve(&auth_config, &[]),
        &cwd,
    )
    .unwrap();
    let mut resource = Party::start(
        "aauth-resource",
        "resource",
        &serve(&resource_config, &[]),
        &cwd,
    )
    .unwrap();
    // --state-dir on the command line wins over the file's, relative to
    // the current directory.
    let mut flagged = Party::start(
        "aauth-resource",
        "resource-flagged",
        &serve(&resource_config, &["--state-dir", "from-flag"]),
        &cwd,
    )
    .unwrap();
    for party in [&mut auth, &mut resource, &mut flagged] {
        party.stop();
    }
    assert!(
        conf.join("db/auth.db").is_file(),
        "{:?}",
        files(root.path())
    );
    assert!(
        conf.join("resource-state/key.json").is_file(),
        "{:?}",
        files(root.path())
    );
    assert!(
        cwd.join("from-flag/key.json").is_file(),
        "{:?}",
        files(root.path())
    );
    assert!(
        !cwd.join(DATA_HOME).exists(),
        "nothing in the default place: {:?}",
        files(&cwd)
    );
}

/// Each state file, wherever a user points `--state-dir` inside a clone of
/// this repository, is ignored by git: no private key is committed by
/// accident.
fn assert_ignored_by_git(state_files: &[PathBuf]) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut names: Vec<String> = Vec::new();
    for file in state_files {
        let name = file.file_name().unwrap().to_str().unwrap();
        names.push(name.to_owned());
        names.push(format!("delegate/{name}"));
        names.push(format!("some/state/{name}"));
    }
    // The names the servers use when a configuration sets no state_dir
    // but is read from the repository's directory.
    names.extend(
        [
            "auth-server.db",
            "auth-server.db-wal",
            "resource/key.json",
            "tokens.json",
        ]
        .map(str::to_owned),
    );
    for name in names {
        let status = Command::new("git")
            .current_dir(repo)
            .args(["check-ignore", "--quiet", "--no-index", &name])
            .status()
            .expect("git is needed to check .gitignore");
        assert!(status.success(), "{name} is not ignored by .gitignore");
    }
}

#[test]
fn without_a_home_a_server_starts_when_its_files_are_named_and_says_what_to_give_otherwise() {
    let root = tempfile::tempdir().unwrap();
    let no_home = |binary: &str, args: &[&str]| {
        Command::new(binary)
            .current_dir(root.path())
            .env_remove("HOME")
            .env_remove("XDG_DATA_HOME")
            .args(args)
            .output()
            .unwrap()
    };
    let resource = binary("aauth-resource").unwrap();
    let resource = resource.to_str().unwrap();
    // No key file named and nowhere to put one: a clear refusal.
    let refused = no_home(
        resource,
        &[
            "serve",
            "--dev",
            "--auth-server",
            "http://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("neither XDG_DATA_HOME nor HOME is set")
            && stderr(&refused).contains("--state-dir"),
        "{}",
        stderr(&refused)
    );
    // Every file named: the directory is not needed. (mint-code stands in
    // for the agent server: it resolves the same files, then finds no
    // database there.)
    let agent = binary("aauth-agent-server").unwrap();
    let minted = no_home(
        agent.to_str().unwrap(),
        &["mint-code", "--database", "named.db"],
    );
    assert!(
        stderr(&minted).contains("no agent server database at named.db"),
        "{}",
        stderr(&minted)
    );
    assert!(!root.path().join("named.db").exists());
}
