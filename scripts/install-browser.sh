#!/usr/bin/env bash
# Install Debian's chromium and chromium-driver for the dashboard's browser
# tests (`make tools` runs it). As root it runs apt-get; otherwise it prints
# the one command to run and succeeds, so `make tools` still works for a user
# without root (the browser tests then fail with the same hint when
# GEOLB_REQUIRE_BROWSER=1, or say they were not run).
set -euo pipefail

say() { echo "install-browser: $*"; }

have() {
    command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

if have; then
    say "$(chromium --version 2>/dev/null | head -n1) and chromedriver already installed"
    exit 0
fi

cmd="apt-get install -y --no-install-recommends chromium chromium-driver"
if [[ $(id -u) -ne 0 ]]; then
    say "chromium and chromium-driver are missing; install them with:"
    say "  sudo apt-get update && sudo $cmd"
    exit 0
fi

say "installing chromium and chromium-driver from Debian"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
$cmd -qq >/dev/null
have || { echo "install-browser: error: apt-get ran but chromium or chromedriver is still missing" >&2; exit 1; }
say "$(chromium --version 2>/dev/null | head -n1) installed"
