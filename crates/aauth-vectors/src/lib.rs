//! # aauth-vectors
//!
//! The generator and the runner of the AAuth spec vectors in `spec-vectors/`:
//! JSON files with fixed keys and a fixed clock that pin the wire formats,
//! the signing profile and the verification outcomes of `aauth-protocol`,
//! so that other implementations can check themselves against ours.
//!
//! * [`generate`] rebuilds every file deterministically (Ed25519 signatures
//!   are deterministic; P-256 signatures are reused from the committed files
//!   while they still verify, see `spec-vectors/README.md`).
//! * [`check_file`] runs every case of one committed file against
//!   `aauth_protocol`, resolving keys through `directory.json` exactly as a
//!   verifier would (metadata → `jwks_uri` → JWKS → `kid`).

mod agent_auth;
mod bases;
mod build;
mod content_digest;
mod negative;
mod requests;
pub mod schema;
mod signature_key;
mod thumbprints;
mod token_requests;
mod tokens;
pub mod world;

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

pub use world::{Directory, NOW};

/// Version of the vector schema, in every file's `version`.
pub const SCHEMA_VERSION: u32 = 1;

/// A generation or check failure, described for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorError(pub String);

impl fmt::Display for VectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for VectorError {}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, VectorError>;

/// Adds what was being done to an error or a missing value.
pub(crate) trait Ctx<T> {
    /// Maps the failure to a [`VectorError`] naming `what`.
    fn ctx(self, what: &str) -> Result<T>;
}

impl<T, E: fmt::Display> Ctx<T> for std::result::Result<T, E> {
    fn ctx(self, what: &str) -> Result<T> {
        self.map_err(|e| VectorError(format!("{what}: {e}")))
    }
}

impl<T> Ctx<T> for Option<T> {
    fn ctx(self, what: &str) -> Result<T> {
        self.ok_or_else(|| VectorError(format!("{what}: missing")))
    }
}

/// Fails with `message` unless `condition` holds.
pub(crate) fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<()> {
    if condition {
        Ok(())
    } else {
        Err(VectorError(message()))
    }
}

/// The vector files, in the order they are generated and documented.
pub const FILES: [&str; 10] = [
    "keys.json",
    "directory.json",
    "thumbprints.json",
    "content-digest.json",
    "signature-key.json",
    "agent-auth.json",
    "token-requests.json",
    "signature-bases.json",
    "requests.json",
    "negative.json",
];

/// `<workspace>/spec-vectors`, where the committed files live.
pub fn spec_vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("spec-vectors")
}

/// Pretty JSON with a trailing newline: the committed form of every file.
pub(crate) fn to_file_text<T: Serialize>(value: &T) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value).ctx("serialising a vector file")?;
    text.push('\n');
    Ok(text)
}

/// Every vector file as `(file name, contents)`, rebuilt from the fixed world.
/// P-256 signatures already committed in `spec-vectors/` are reused while
/// they still verify over the recomputed signature base (ECDSA signing is
/// randomised; profile: P-SIG-4).
pub fn generate() -> Result<Vec<(String, String)>> {
    let dir = spec_vectors_dir();
    generate_with(&|name: &str| std::fs::read_to_string(dir.join(name)).ok())
}

/// [`generate`], reading previously committed files through `previous`.
pub fn generate_with(previous: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>> {
    let world = world::World::new()?;
    Ok(vec![
        ("keys.json".to_owned(), to_file_text(&world.keys_file()?)?),
        (
            "directory.json".to_owned(),
            to_file_text(&world.directory_file()?)?,
        ),
        (
            "thumbprints.json".to_owned(),
            to_file_text(&thumbprints::generate(&world)?)?,
        ),
        (
            "content-digest.json".to_owned(),
            to_file_text(&content_digest::generate()?)?,
        ),
        (
            "signature-key.json".to_owned(),
            to_file_text(&signature_key::generate(&world)?)?,
        ),
        (
            "agent-auth.json".to_owned(),
            to_file_text(&agent_auth::generate(&world)?)?,
        ),
        (
            "token-requests.json".to_owned(),
            to_file_text(&token_requests::generate(&world)?)?,
        ),
        (
            "signature-bases.json".to_owned(),
            to_file_text(&bases::generate(&world)?)?,
        ),
        (
            "requests.json".to_owned(),
            to_file_text(&requests::generate(&world, previous)?)?,
        ),
        (
            "negative.json".to_owned(),
            to_file_text(&negative::generate(&world)?)?,
        ),
    ])
}

/// The outcome of checking one file: how many cases passed, and a
/// `file: case: problem` line for each that did not.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Cases that passed.
    pub passed: usize,
    /// One line per failing case.
    pub failures: Vec<String>,
}

impl Report {
    pub(crate) fn record(&mut self, file: &str, case: &str, outcome: Result<()>) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(e) => self.failures.push(format!("{file}: {case}: {e}")),
        }
    }
}

/// Checks every case of the committed file `file_name` (its `contents`)
/// against `aauth_protocol`. `keys` and `directory` are the committed
/// `keys.json` and `directory.json`.
pub fn check_file(
    file_name: &str,
    contents: &str,
    keys: &schema::KeysFile,
    directory: &Directory,
) -> Result<Report> {
    let mut report = Report::default();
    match file_name {
        "keys.json" => world::check_keys(contents, &mut report)?,
        "directory.json" => world::check_directory(contents, keys, &mut report)?,
        "thumbprints.json" => thumbprints::check(contents, &mut report)?,
        "content-digest.json" => content_digest::check(contents, &mut report)?,
        "signature-key.json" => signature_key::check(contents, &mut report)?,
        "agent-auth.json" => agent_auth::check(contents, &mut report)?,
        "token-requests.json" => token_requests::check(contents, &mut report)?,
        "signature-bases.json" => bases::check(contents, keys, &mut report)?,
        "requests.json" => requests::check(contents, directory, &mut report)?,
        "negative.json" => negative::check(contents, directory, &mut report)?,
        other => return Err(VectorError(format!("unknown vector file {other}"))),
    }
    Ok(report)
}

/// Parses one vector file.
pub(crate) fn parse_file<C: serde::de::DeserializeOwned>(
    contents: &str,
) -> Result<schema::VectorFile<C>> {
    serde_json::from_str(contents).ctx("parsing the vector file")
}
