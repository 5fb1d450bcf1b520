#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver (chromedriver) are there for
# the browser tests (tests/tests/browser.rs), installing both from the OS
# packages (apt: chromium, chromium-driver) when either is missing, and
# prints the two paths. Does nothing when both are already installed.
#
# CHROME and CHROMEDRIVER name other binaries; the tests read the same two
# variables.
set -euo pipefail

say() { printf 'chromium: %s\n' "$*" >&2; }
fail() { printf 'chromium: error: %s\n' "$*" >&2; exit 1; }

find_chrome() {
  if [ -n "${CHROME:-}" ]; then command -v "$CHROME"; return; fi
  command -v chromium || command -v chromium-browser || command -v google-chrome
}
find_driver() {
  if [ -n "${CHROMEDRIVER:-}" ]; then command -v "$CHROMEDRIVER"; return; fi
  command -v chromedriver
}

if ! find_chrome >/dev/null 2>&1 || ! find_driver >/dev/null 2>&1; then
  "$(dirname "$0")/os-packages.sh" chromium "the browser tests (or set CHROME and CHROMEDRIVER)" \
    chromium chromium-driver fonts-dejavu-core
fi
chrome=$(find_chrome) || fail "no Chromium after installing it"
driver=$(find_driver) || fail "no chromedriver after installing it"
say "$("$chrome" --version 2>/dev/null || echo "$chrome"), $("$driver" --version 2>/dev/null | cut -d' ' -f1-2)"
printf 'CHROME=%s\nCHROMEDRIVER=%s\n' "$chrome" "$driver"
