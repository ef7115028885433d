#!/usr/bin/env bash
# Install a pinned nats-py (the Python NATS client) into its own venv: the
# bench's third-party peer, a ten-line responder and the client that times
# the agent's acks against it from outside (`ack_latency`).
#
# Usage: scripts/install-nats-py.sh VERSION
# The venv lands in .tools/nats-py/VERSION/venv (relative to the repository
# root, or to $TOOLS_DIR if set); its python is venv/bin/python. A version
# already present and importable is skipped, so the script is idempotent.
# Needs python3 with venv and pip; no internet beyond PyPI.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${TOOLS_DIR:-$repo_root/.tools}/nats-py"
python="${PYTHON:-python3}"

die() {
    echo "install-nats-py: error: $*" >&2
    exit 1
}

say() {
    echo "install-nats-py: $*"
}

# verify PYTHON VERSION: succeeds if PYTHON imports nats-py VERSION.
verify() {
    local py="$1" version="$2"
    [[ -x "$py" ]] || return 1
    [[ "$("$py" -c 'import importlib.metadata as m; print(m.version("nats-py"))' 2>/dev/null)" == "$version" ]]
}

main() {
    [[ $# -eq 1 ]] || die "usage: $0 VERSION (e.g. $0 2.16.0)"
    local version="$1"
    [[ "$version" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] || die "bad version '$version' (want X.Y.Z)"
    local venv="$tools_dir/$version/venv"
    if verify "$venv/bin/python" "$version"; then
        say "nats-py $version already installed in $venv"
        return 0
    fi
    command -v "$python" >/dev/null || die "$python not found; install python3"
    rm -rf "$venv"
    "$python" -m venv "$venv" || die "cannot create a venv with $python; install python3-venv"
    say "installing nats-py==$version from PyPI into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "nats-py==$version" \
        || die "pip could not install nats-py==$version (is PyPI reachable and the version published?)"
    verify "$venv/bin/python" "$version" || die "$venv/bin/python does not import nats-py $version"
    say "installed nats-py $version in $venv"
}

main "$@"
