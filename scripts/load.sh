#!/usr/bin/env bash
# Load benchmark of the resource: builds the release binaries, starts the
# three parties on loopback, and loads a bare axum handler (the baseline
# peer), the resource's unauthenticated GET /public and its authorized
# GET /data (auth token) in one run, printing requests/s, p50/p99, each
# server's CPU per request against one raw Ed25519 verification timed beside
# the load (with its spread), the resource's memory over the authorized
# phase, and the auth server metadata/JWKS fetches under load; then a page of
# notes with 20 and with 100 notes stored (docs/performance.md).
#
#   scripts/load.sh [--duration SECS] [--workers N] [--public-duration SECS]
#                   [--growth-duration SECS] [--warmup SECS] [--keep]
#
# The reported run is the default: 60 s authorized, 30 s unauthenticated and
# bare, 20 s for each growth phase, 32 workers. Exits non-zero if any request
# failed.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "building the release binaries (first time: a few minutes)…" >&2
cargo build --quiet --locked --release --bins
exec ./target/release/aauth-load "$@"
