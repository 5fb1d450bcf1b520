//! The committed spec vectors: every case passes against `aauth_protocol`,
//! and the files are exactly what the generator writes.
#![expect(clippy::panic, reason = "test: a missing vector file fails loudly")]

use aauth_vectors::schema::{DirectoryFile, KeysFile};
use aauth_vectors::{Directory, FILES, check_file, generate, spec_vectors_dir};

fn read(name: &str) -> String {
    let path = spec_vectors_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `cargo run -p aauth-vectors --bin generate-vectors`",
            path.display()
        )
    })
}

#[test]
fn every_committed_case_passes_against_the_protocol_crate() {
    let keys: KeysFile = serde_json::from_str(&read("keys.json")).unwrap();
    let directory_file: DirectoryFile = serde_json::from_str(&read("directory.json")).unwrap();
    let directory = Directory::new(&directory_file);
    let mut failures = Vec::new();
    let mut total = 0;
    for name in FILES {
        match check_file(name, &read(name), &keys, &directory) {
            Ok(report) => {
                total += report.passed;
                failures.extend(report.failures);
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s) ({total} passed):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total > 0);
}

#[test]
fn committed_files_are_what_the_generator_writes() {
    for (name, generated) in generate().unwrap() {
        let committed = read(&name);
        assert!(
            committed == generated,
            "spec-vectors/{name} differs from the generator's output; run `cargo run -p aauth-vectors --bin generate-vectors` and commit the result"
        );
    }
}

#[test]
fn there_are_at_least_forty_negative_cases() {
    let negative: serde_json::Value = serde_json::from_str(&read("negative.json")).unwrap();
    assert!(negative["cases"].as_array().unwrap().len() >= 40);
}

#[test]
fn all_eight_query_body_nonce_combinations_are_pinned() {
    // profile: P-SIG-1a — "Vectors cover all eight query × body × nonce combinations".
    let bases: serde_json::Value = serde_json::from_str(&read("signature-bases.json")).unwrap();
    let names: Vec<&str> = bases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for q in ["q0", "q1"] {
        for b in ["b0", "b1"] {
            for n in ["n0", "n1"] {
                let name = format!("{q}-{b}-{n}");
                assert!(names.contains(&name.as_str()), "missing {name}");
            }
        }
    }
}
