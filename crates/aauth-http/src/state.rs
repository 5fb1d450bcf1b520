//! Where every party keeps its state: one rule for all three binaries and
//! the delegate commands.
//!
//! 1. The state directory is `--state-dir DIR`; else `state_dir` in the
//!    configuration file; else the platform's data directory for the party,
//!    `$XDG_DATA_HOME/aauth/<party>` (or `~/.local/share/aauth/<party>` when
//!    `XDG_DATA_HOME` is unset), whatever the current directory.
//! 2. A relative path written in a configuration file is relative to that
//!    file's directory; one given on the command line, to the current
//!    directory.
//! 3. Each file (a key, a database) lives in the state directory under a
//!    fixed name unless a flag or the configuration names it.
//! 4. Only the commands that own the state create it: `serve` (its key and
//!    database) and `enroll` (a delegate). A command that reads state —
//!    `mint-code`, `revoke`, `call`, `renew` — refuses with the directory
//!    it looked in when the state is not there, and creates nothing.

use std::path::{Path, PathBuf};

/// The parties that keep state, each in its own directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// `aauth-auth-server`: its database (keys, grants, sessions).
    AuthServer,
    /// `aauth-agent-server serve`: its key and database.
    AgentServer,
    /// `aauth-resource`: its key.
    Resource,
    /// `aauth-agent-server enroll|renew|call`: a delegate's key, agent token
    /// and grants.
    Delegate,
}

impl Party {
    /// The directory's name under `…/aauth/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Party::AuthServer => "auth-server",
            Party::AgentServer => "agent-server",
            Party::Resource => "resource",
            Party::Delegate => "delegate",
        }
    }
}

/// Why no state directory could be chosen.
#[derive(Debug, thiserror::Error)]
#[error(
    "no state directory for the {party}: neither XDG_DATA_HOME nor HOME is set\n  \
     fix: give --state-dir DIR"
)]
pub struct NoStateDir {
    party: &'static str,
}

/// The state directory under rule 1: `flag`, else `configured` (already
/// resolved against its file by [`in_config`]), else the default.
pub fn state_dir(
    flag: Option<&Path>,
    configured: Option<&Path>,
    party: Party,
) -> Result<PathBuf, NoStateDir> {
    match flag.or(configured) {
        Some(dir) => Ok(dir.to_owned()),
        None => default_state_dir(party, |name| std::env::var_os(name)),
    }
}

/// `$XDG_DATA_HOME/aauth/<party>`, else `$HOME/.local/share/aauth/<party>`,
/// with the environment read through `var`. A relative `XDG_DATA_HOME` is
/// ignored, as the XDG Base Directory specification says.
pub fn default_state_dir(
    party: Party,
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<PathBuf, NoStateDir> {
    let data = var("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            var("HOME")
                .map(PathBuf::from)
                .filter(|p| !p.as_os_str().is_empty())
                .map(|home| home.join(".local").join("share"))
        })
        .ok_or(NoStateDir {
            party: party.dir_name(),
        })?;
    Ok(data.join("aauth").join(party.dir_name()))
}

/// A path written in the configuration file `config_file` (rule 2):
/// absolute as written, else relative to the file's directory.
pub fn in_config(config_file: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    match config_file.parent() {
        Some(dir) => dir.join(path),
        None => path.to_owned(),
    }
}

/// Resolves an optional path of a configuration file in place (rule 2).
pub fn resolve_in_config(config_file: &Path, path: &mut Option<PathBuf>) {
    if let Some(value) = path.as_mut() {
        *value = in_config(config_file, value);
    }
}

/// Rule 4 for a command that only reads: `path` must already exist, or the
/// error says where it looked and what creates it (`made_by`).
pub fn existing(path: &Path, what: &str, made_by: &str) -> Result<(), String> {
    if path.exists() {
        Ok(())
    } else {
        Err(format!(
            "no {what} at {}; {made_by} creates it\n  \
             fix: give the same --state-dir (or --config) as that command, \
             or run it first",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    #[test]
    fn the_default_is_the_xdg_data_directory_of_the_party() {
        let dir = default_state_dir(
            Party::AgentServer,
            env(&[("XDG_DATA_HOME", "/data"), ("HOME", "/home/a")]),
        )
        .unwrap();
        assert_eq!(dir, Path::new("/data/aauth/agent-server"));
        let dir = default_state_dir(Party::Delegate, env(&[("HOME", "/home/a")])).unwrap();
        assert_eq!(dir, Path::new("/home/a/.local/share/aauth/delegate"));
        // A relative XDG_DATA_HOME is invalid and ignored (XDG Base Directory).
        let dir = default_state_dir(
            Party::Resource,
            env(&[("XDG_DATA_HOME", "data"), ("HOME", "/home/a")]),
        )
        .unwrap();
        assert_eq!(dir, Path::new("/home/a/.local/share/aauth/resource"));
        let error = default_state_dir(Party::AuthServer, env(&[])).unwrap_err();
        assert!(error.to_string().contains("--state-dir"), "{error}");
    }

    #[test]
    fn the_flag_wins_over_the_configuration_which_wins_over_the_default() {
        let flag = Path::new("flag");
        let configured = Path::new("/etc/aauth/state");
        assert_eq!(
            state_dir(Some(flag), Some(configured), Party::Resource).unwrap(),
            flag
        );
        assert_eq!(
            state_dir(None, Some(configured), Party::Resource).unwrap(),
            configured
        );
    }

    #[test]
    fn a_relative_path_in_a_configuration_file_is_relative_to_the_file() {
        let file = Path::new("/etc/aauth/resource.toml");
        assert_eq!(
            in_config(file, Path::new("keys/k.json")),
            Path::new("/etc/aauth/keys/k.json")
        );
        assert_eq!(
            in_config(file, Path::new("/var/k.json")),
            Path::new("/var/k.json")
        );
        // A file named without a directory: its directory is the current one.
        assert_eq!(
            in_config(Path::new("r.toml"), Path::new("k.json")),
            Path::new("k.json")
        );
        let mut path = Some(PathBuf::from("db/a.db"));
        resolve_in_config(Path::new("conf/as.toml"), &mut path);
        assert_eq!(path.as_deref(), Some(Path::new("conf/db/a.db")));
    }

    #[test]
    fn a_reading_command_names_what_is_missing_and_who_creates_it() {
        let error = existing(
            Path::new("/nonexistent/aauth/agent-server.db"),
            "agent server database",
            "`aauth-agent-server serve`",
        )
        .unwrap_err();
        assert!(
            error.contains("/nonexistent/aauth/agent-server.db"),
            "{error}"
        );
        assert!(error.contains("serve"), "{error}");
    }
}
