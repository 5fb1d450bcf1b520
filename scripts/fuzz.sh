#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo fuzz, coverage-guided libFuzzer)
# for SECONDS each, from the seed corpus spec-vectors/ gives (fuzz/seeds.py).
#
#   ./scripts/fuzz.sh              a smoke: 20 s per target (what the test command runs)
#   ./scripts/fuzz.sh 1800         a long run: 30 minutes per target
#   ./scripts/fuzz.sh 60 tokens    one target
#
# Needs a nightly toolchain (cargo fuzz builds with sanitizers); without
# one it says so and exits 0, since the stable build and tests do not depend
# on it. cargo-fuzz is installed from crates.io when missing. A crash, a
# hang (10 s) or more than 2 GiB of memory fails the run, and libFuzzer
# leaves the input under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
shift || true
say() { printf 'fuzz: %s\n' "$*"; }

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  say "SKIPPED: no nightly toolchain (rustup toolchain install nightly), so no fuzzing ran"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

python3 fuzz/seeds.py
say "building the targets (nightly, address sanitizer)"
cargo +nightly fuzz build
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
logs=target/fuzz-logs
mkdir -p "$logs"
for target in "${targets[@]}"; do
  log="$logs/$target.log"
  say "$target for ${seconds} s (log: $log)"
  if ! cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    say "$target FAILED; the input is under fuzz/artifacts/$target/"
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" |
    sed "s/^/fuzz:   /" || true
  grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 | sed "s/^/fuzz:   /" || true
done
say "every target ran ${seconds} s without a finding"
