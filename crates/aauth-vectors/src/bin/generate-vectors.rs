//! Rewrites `spec-vectors/*.json` from the fixed world:
//! `cargo run -p aauth-vectors --bin generate-vectors`.

use std::process::ExitCode;

#[expect(
    clippy::print_stdout,
    reason = "a command-line tool reporting what it wrote"
)]
fn main() -> ExitCode {
    let dir = aauth_vectors::spec_vectors_dir();
    let files = match aauth_vectors::generate() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("generate-vectors: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("generate-vectors: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (name, contents) in files {
        let path = dir.join(&name);
        if let Err(e) = std::fs::write(&path, &contents) {
            eprintln!("generate-vectors: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        let cases = serde_json::from_str::<serde_json::Value>(&contents)
            .ok()
            .and_then(|v| v.get("cases").and_then(|c| c.as_array()).map(Vec::len));
        match cases {
            Some(n) => println!("wrote spec-vectors/{name} ({n} cases)"),
            None => println!("wrote spec-vectors/{name}"),
        }
    }
    ExitCode::SUCCESS
}
