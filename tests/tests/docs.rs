//! The documentation a reader follows: every Markdown file that cites the
//! specifications (`E§`, `D§`, `SK0§`) links to `docs/references.md`, which
//! says which texts those are; and every command's help that cites them
//! explains the notation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failure here is a test failure"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The Markdown files a reader meets, outside build output and installed
/// packages.
fn markdown(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && !["target", "corpus", "artifacts"].contains(&name.as_str())
            {
                markdown(&path, found);
            }
        } else if name.ends_with(".md") {
            found.push(path);
        }
    }
}

#[test]
fn every_document_that_cites_the_specifications_links_to_the_references() {
    let root = repository();
    let mut files = Vec::new();
    markdown(&root, &mut files);
    assert!(files.len() >= 8, "{files:?}");
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        if !["E§", "D§", "SK0§"].iter().any(|c| text.contains(c)) {
            continue;
        }
        checked += 1;
        let references = root.join("docs/references.md");
        let linked = text
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
            .map(|target| target.split('#').next().unwrap_or(target))
            .filter(|target| target.ends_with("references.md"))
            .any(|target| {
                file.parent()
                    .unwrap()
                    .join(target)
                    .canonicalize()
                    .is_ok_and(|p| p == references.canonicalize().unwrap())
            });
        assert!(
            linked || file.ends_with("docs/references.md"),
            "{} cites the specifications without a link to docs/references.md",
            file.display()
        );
    }
    assert!(checked >= 6, "{checked}");
}

#[test]
fn every_help_that_cites_the_specifications_explains_the_notation() {
    let commands: &[(&str, &[&str])] = &[
        ("aauth-agent-server", &[]),
        ("aauth-agent-server", &["serve"]),
        ("aauth-agent-server", &["call"]),
        ("aauth-agent-server", &["enroll"]),
        ("aauth-agent-server", &["inspect", "request"]),
        ("aauth-auth-server", &[]),
        ("aauth-auth-server", &["serve"]),
        ("aauth-auth-server", &["revoke"]),
        ("aauth-resource", &[]),
        ("aauth-resource", &["serve"]),
    ];
    for (binary, args) in commands {
        let output = Command::new(aauth_e2e::harness::binary(binary).unwrap())
            .args(*args)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{binary} {args:?}");
        let cites = help.contains('§') || help.contains("(P-");
        if cites {
            assert!(
                help.contains("docs/references.md") && help.contains("docs/profile.md"),
                "{binary} {args:?} cites without explaining:\n{help}"
            );
        }
    }
}
