#!/usr/bin/env bash
# `make demo`: the main job on the lab. Brings up the default lab (lon, ams,
# dfw; three servers each; clients in every region; emulated WAN latency),
# runs the four scenarios (rtt, random, dns and anycast clients side by
# side), prints each report and a
# one-screen summary, and brings the lab down, also on Ctrl-C or failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=${DEMO_BIN:-target/demo}
export GEOLB_LAB_DIR=${DEMO_LAB_DIR:-$PWD/.lab-demo}
GEOLB="$BIN/geolb"
for bin in "$GEOLB" "$BIN/geolb-agent"; do
    [[ -x $bin ]] || { echo "demo: $bin is missing; run \`make demo\`" >&2; exit 1; }
done

config=$(mktemp /tmp/geolb-demo.XXXXXX.toml)
cleanup() {
    "$GEOLB" lab down || true
    rm -f "$config"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# A scenario that misses a target is reported, not fatal: the demo shows all four.
scenario() { step "scenario $*"; "$GEOLB" scenario run "$@" || true; }

"$GEOLB" lab init "$config" >/dev/null 2>&1 || cp /dev/null "$config"
[[ -n ${DEMO_PORTS_BASE:-} ]] && sed -i "s/^ports_base = .*/ports_base = $DEMO_PORTS_BASE/" "$config"

step "lab up (control plane, WAN emulator, 9 servers under agents, clients)"
time "$GEOLB" lab up --config "$config"
"$GEOLB" lab status

scenario rolling-upgrade --to "${DEMO_UPGRADE_TO:-2.14.6}" --strategy one-per-region
# Long enough for the GeoDNS (checks every 10 s, 3 failures) and the
# anycast router (a withdrawal, then each vantage's flip) to act.
scenario dc-outage --region lon --mode kill --duration "${DEMO_OUTAGE:-40s}"
scenario dc-outage --region lon --mode partition --duration "${DEMO_OUTAGE:-40s}"
scenario flap --region ams --servers 1 --mode pause --down 2s --up 2s --cycles 2
scenario scale --region dfw --clients 12

step "summary (also kept on the control plane: geolb report ls / show ID)"
"$GEOLB" report summary --last 5
