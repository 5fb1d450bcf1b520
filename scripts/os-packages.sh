#!/usr/bin/env bash
# Installs OS packages with apt-get, as root or through sudo, for the
# scripts that need something the machine lacks:
#
#   scripts/os-packages.sh WHO WHY PACKAGE...
#
# WHO prefixes every line (the calling script's name), WHY says what the
# packages are for in the error when they cannot be installed.
set -euo pipefail

who=$1 why=$2
shift 2
fail() { printf '%s: error: %s\n' "$who" "$*" >&2; exit 1; }

command -v apt-get >/dev/null 2>&1 ||
  fail "$why needs $* and there is no apt-get to install them; install them and rerun"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "installing $* for $why needs root or sudo"
  sudo="sudo"
fi
printf '%s: installing %s from the OS packages\n' "$who" "$*" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
