#!/usr/bin/env bash
# Builds the three servers and the demo, then runs the three-party demo on
# loopback: every level of AAuth, printed step by step. Needs only a Rust
# toolchain; stops every process it started. Arguments go to the demo
# (--help lists them); CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "building the servers (first time: a few minutes)…" >&2
cargo build --locked --bins
exec "${CARGO_TARGET_DIR:-target}/debug/aauth-demo" "$@"
