#!/usr/bin/env bash
# Counts the instructions one iteration of each aauth-http verifier benchmark
# case executes, under callgrind: all of them, those of the Ed25519
# verification inside, and the rest (the verifier's own work). Instruction
# counts do not move with the machine's load, so two checkouts can be compared
# on a shared machine where wall-clock times cannot.
#
#   ./scripts/bench-instructions.sh [CASE ...]   (default: every case)
#
# Needs valgrind (Debian: apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 1; }
command -v callgrind_annotate >/dev/null || { echo "callgrind_annotate is required (it comes with valgrind)" >&2; exit 1; }

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(verifier/authorized-cached verifier/pseudonymous)

echo "building the benchmark (release)…" >&2
bench=$(cargo bench -p aauth-http --bench verifier --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -x "$bench" ] || { echo "could not find the benchmark executable" >&2; exit 1; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
printf '%-28s %10s %14s %10s %10s\n' case iterations instructions ed25519 rest
for case in "${cases[@]}"; do
  # Only what runs inside criterion's measured iterations is counted.
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    --toggle-collect='criterion::bencher::Bencher*::iter*' \
    "$bench" --bench --profile-time 3 "$case" >/dev/null 2>&1
  annotated=$(callgrind_annotate --inclusive=yes --tree=calling "$out" 2>/dev/null)
  line=$(grep -A1 '\*  ???:criterion::bencher::Bencher<M>::iter' <<<"$annotated" \
    | grep 'Runtime::block_on (' || true)
  [ -n "$line" ] || { echo "$case: no iterations found in the profile" >&2; exit 1; }
  total=$(awk '{print $1}' <<<"$line" | tr -d ,)
  iterations=$(sed 's/.*(\([0-9,]*\)x).*/\1/' <<<"$line" | tr -d ,)
  ed25519=$(grep '\*  ???:aws_lc_0_[0-9_]*_ED25519_verify ' <<<"$annotated" \
    | head -n 1 | awk '{print $1}' | tr -d ,)
  ed25519=${ed25519:-0}
  printf '%-28s %10d %14d %10d %10d\n' "$case" "$iterations" \
    $((total / iterations)) $((ed25519 / iterations)) $(((total - ed25519) / iterations))
done
