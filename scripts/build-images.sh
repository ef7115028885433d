#!/usr/bin/env bash
# Build the geolb-server and geolb-client images from static binaries.
#
# Usage: scripts/build-images.sh [--if-engine]
# Needs the static geolb-agent (`make images` builds it first) and the pinned
# nats-server versions (`make tools`). With --if-engine, a machine without a
# usable Docker engine is told so and the script succeeds (the Docker tests
# then report themselves skipped). Prints each image's size.
#
# Environment: AGENT_BIN (the static agent), NATS_VERSION (the one the server
# image runs), NATS_VERSIONS (all installed in it), BASE (image base, default
# scratch), IMAGE_TAG (default latest).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
agent="${AGENT_BIN:-$repo_root/target/x86_64-unknown-linux-gnu/release/geolb-agent}"
# The default version is written once, in proto/src/lib.rs (DEFAULT_NATS_VERSION).
default_version="$(sed -n 's/^pub const DEFAULT_NATS_VERSION: &str = "\(.*\)";$/\1/p' "$repo_root/proto/src/lib.rs")"
nats_version="${NATS_VERSION:-$default_version}"
read -r -a versions <<< "${NATS_VERSIONS:-$nats_version 2.14.6}"
base="${BASE:-scratch}"
tag="${IMAGE_TAG:-latest}"
servers="$repo_root/.tools/nats-server"
context="$repo_root/target/images"

die() { echo "build-images: error: $*" >&2; exit 1; }

[[ -n "$nats_version" ]] || die "no DEFAULT_NATS_VERSION in $repo_root/proto/src/lib.rs; set NATS_VERSION"

if ! docker info >/dev/null 2>&1; then
    [[ "${1:-}" == "--if-engine" ]] || die "no usable Docker engine (is dockerd running, may you use its socket?)"
    echo "build-images: no usable Docker engine; images not built, the Docker tests will report themselves skipped"
    exit 0
fi
[[ -x "$agent" ]] || die "$agent is missing; run \`make images\`"
file -L "$agent" | grep -q 'static' || die "$agent is not statically linked; run \`make images\`"

rm -rf "$context"
mkdir -p "$context/server/nats-server" "$context/server/tmp" "$context/client/tmp"
for v in "${versions[@]}"; do
    [[ -x "$servers/$v/nats-server" ]] || die "nats-server $v is missing; run \`make tools\`"
    mkdir -p "$context/server/nats-server/$v"
    cp "$servers/$v/nats-server" "$context/server/nats-server/$v/"
done
[[ -d "$context/server/nats-server/$nats_version" ]] || die "NATS_VERSION $nats_version is not in NATS_VERSIONS (${versions[*]})"
for image in server client; do
    cp "$agent" "$context/$image/geolb-agent"
done
cp "$repo_root/docker/nats-server.conf" "$context/server/"

build() {
    local name="$1" dockerfile="$2" dir="$3"
    shift 3
    local log
    log="$(mktemp)"
    # The engine's legacy builder warns about itself on stderr: shown only on failure.
    docker build --quiet --label "io.nats-geolb.owner=images" \
        --build-arg "BASE=$base" "$@" -t "$name:$tag" -f "$dockerfile" "$dir" >/dev/null 2>"$log" \
        || { cat "$log" >&2; rm -f "$log"; die "docker build of $name failed"; }
    rm -f "$log"
    printf 'build-images: %s:%s  %s MB\n' "$name" "$tag" \
        "$(docker image inspect "$name:$tag" --format '{{.Size}}' | awk '{printf "%.1f", $1/1e6}')"
}
build geolb-server "$repo_root/docker/server.Dockerfile" "$context/server" --build-arg "NATS_VERSION=$nats_version" --build-arg "NATS_VERSIONS=${versions[*]}"
build geolb-client "$repo_root/docker/client.Dockerfile" "$context/client"
