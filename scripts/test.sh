#!/usr/bin/env bash
# Runs every check the project has, from a fresh checkout: formatting, lints,
# all tests (unit, property, vectors, app and end-to-end), and doc tests.
# Sets up what it needs by itself (cargo-nextest if missing; the Python peer
# of the interop tests, from PyPI with pinned hashes, in interop/.venv;
# headless Chromium and chromedriver for the browser tests, from the OS
# packages; cargo-fuzz when a nightly toolchain is there for the fuzz smoke).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "the Python peer for the interop tests (interop/setup.sh)"
./interop/setup.sh

step "Chromium and chromedriver for the browser tests (scripts/chromium.sh)"
./scripts/chromium.sh >/dev/null

step "building the server binaries (the end-to-end tests start them)"
cargo build --workspace --bins --locked

step "tests"
cargo nextest run --workspace --locked --no-fail-fast

step "doc tests"
cargo test --workspace --doc --locked

step "fuzz smoke: every fuzz target for 20 s (skipped, saying so, without a nightly toolchain)"
./scripts/fuzz.sh 20
