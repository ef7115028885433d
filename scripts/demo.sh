#!/usr/bin/env bash
# The demo until the lab lands: a control plane and a small super-cluster
# (lon, ams, dfw; 2 servers each) under geolb-agent, driven only through the
# back channel with geolb: fleet view, a rolling upgrade one server per region
# at a time, a flap, a lame-duck drain, and the event log. Everything it
# starts is stopped on exit, also on Ctrl-C or failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FROM=${DEMO_FROM:-2.12.8}
TO=${DEMO_TO:-2.14.6}
BASE=${DEMO_PORT_BASE:-24200}
BIN=target/release
SERVERS=$PWD/.tools/nats-server
DIR=$(mktemp -d /tmp/geolb-demo.XXXXXX)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

for bin in "$BIN/geolb" "$BIN/geolb-agent" "$SERVERS/$FROM/nats-server" "$SERVERS/$TO/nats-server"; do
    [[ -x $bin ]] || { echo "demo: $bin is missing; run \`make demo\` (it builds and runs \`make tools\`)" >&2; exit 1; }
done

export GEOLB_CONTROL=nats://127.0.0.1:$BASE
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
geolb() { "$BIN/geolb" "$@"; }

step "Control plane on $GEOLB_CONTROL (JetStream on)"
"$SERVERS/$FROM/nats-server" -a 127.0.0.1 -p "$BASE" -js -sd "$DIR/control" >"$DIR/control.log" 2>&1 &
PIDS+=($!)

regions=(lon ams dfw)
# Ports: client, monitor, route, gateway per server, from BASE+10 on.
port() { echo $((BASE + 10 + $1 * 10 + $2)); }
gateways=""
for r in "${!regions[@]}"; do
    urls=""
    for s in 0 1; do urls+="\"nats://127.0.0.1:$(port $((r * 2 + s)) 3)\","; done
    gateways+="    { name: ${regions[$r]}, urls: [${urls%,}] }"$'\n'
done

step "Super-cluster: ${regions[*]}, 2 servers each, nats-server $FROM, each under geolb-agent"
for r in "${!regions[@]}"; do
    region=${regions[$r]}
    for s in 0 1; do
        n=$((r * 2 + s)); other=$((r * 2 + 1 - s)); id=$region-$((s + 1))
        cat >"$DIR/$id.conf" <<CONF
server_name: $id
listen: 127.0.0.1:$(port $n 0)
http: 127.0.0.1:$(port $n 1)
cluster { name: $region, listen: 127.0.0.1:$(port $n 2), no_advertise: true,
          routes: ["nats-route://127.0.0.1:$(port $other 2)"] }
gateway { name: $region, listen: 127.0.0.1:$(port $n 3), gateways: [
$gateways] }
CONF
        "$BIN/geolb-agent" run --id "$id" --region "$region" --role server \
            --monitor "http://127.0.0.1:$(port $n 1)" --servers-dir "$SERVERS" \
            -- "$SERVERS/$FROM/nats-server" -c "$DIR/$id.conf" >"$DIR/$id.log" 2>&1 &
        PIDS+=($!)
    done
done

"$BIN/geolb" watch >"$DIR/events.log" 2>&1 &
PIDS+=($!)

for _ in $(seq 50); do
    live=$(geolb fleet ls --json 2>/dev/null | grep -c '"liveness": "live"' || true)
    [[ $live -ge 6 ]] && break
    sleep 0.3
done
geolb fleet ls

step "Rolling upgrade to $TO, one server per region at a time (each acked only when healthy, routes and gateways back)"
started=$(date +%s%N)
for s in 1 2; do
    "$BIN/geolb" cmd upgrade "lon-$s" --to "$TO" &
    a=$!
    "$BIN/geolb" cmd upgrade "ams-$s" --to "$TO" &
    b=$!
    geolb cmd upgrade "dfw-$s" --to "$TO"
    wait $a $b
done
echo "whole upgrade: $(( ($(date +%s%N) - started) / 1000000 )) ms"

step "Flap: ams-2 paused (SIGSTOP: TCP stays open, nothing answers) 3 x 1s"
geolb cmd flap ams-2 --mode pause --down 1s --up 1s --cycles 3
sleep 6.5

step "Lame-duck drain of dfw-1, then start it again"
geolb cmd stop dfw-1 --mode ldm
geolb cmd start dfw-1

step "Bad input is refused and changes nothing"
geolb cmd upgrade lon-1 --to 9.9.9 || true
geolb cmd start lon-1 || true

step "The fleet now"
sleep 1.5
geolb fleet ls

step "Events seen on the back channel"
sleep 0.5
grep -v '^geolb: watching' "$DIR/events.log" | cut -c12-

echo
echo "demo: done; everything it started is being stopped"
