#!/usr/bin/env bash
# The server CPU cost of one console viewer (BENCHMARKS.md "Console"): `facegate serve` with one
# looping stream at camera speed ("pace"), its CPU time (utime+stime from /proc/PID/stat) over SECONDS without a viewer,
# then over SECONDS with one viewer (the MJPEG of the stream and the SSE events, as the console's
# live page opens them). Usage: tools/console/viewer_cpu.sh FACEGATE CLIP [SECONDS]
set -euo pipefail
BIN=$(realpath "$1"); CLIP=$(realpath "$2"); SECS=${3:-60}
tmp=$(mktemp -d); trap 'kill $pid 2>/dev/null || true; kill $v1 $v2 2>/dev/null || true; rm -rf "$tmp"' EXIT
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$tmp/gallery.key"; chmod 600 "$tmp/gallery.key"
cat > "$tmp/serve.json" <<EOF
{"listen": {"address": "127.0.0.1", "port": 0}, "auth": {"keys_file": "keys.db"},
 "gallery": {"db": "people.db", "key_file": "gallery.key", "create": true}, "engine": {"threads": 1},
 "api": {"mjpeg_fps": 5},
 "streams": [{"id": "cam", "uri": "$CLIP", "loop": true, "pace": true}]}
EOF
(cd "$tmp" && exec "$BIN" serve --config serve.json --create-admin-key --json > serve.out 2> serve.err) &
pid=$!
for _ in $(seq 120); do grep -q '"url"' "$tmp/serve.out" 2>/dev/null && break; sleep 1; done
url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$tmp/serve.out"); key=$(sed -n 's/^admin key: //p' "$tmp/serve.out")
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
sleep 10  # warm-up: models loaded, the stream running
t0=$(ticks); sleep "$SECS"; t1=$(ticks)
curl -s -N -H "X-API-Key: $key" "$url/v1/streams/cam/mjpeg" -o /dev/null & v1=$!
curl -s -N -H "X-API-Key: $key" "$url/v1/events" -o /dev/null & v2=$!
sleep 2
t2=$(ticks); sleep "$SECS"; t3=$(ticks)
awk -v a=$((t1 - t0)) -v b=$((t3 - t2)) -v hz="$hz" -v s="$SECS" 'BEGIN {
  printf "serve CPU without a viewer: %.1f%% of one core\n", 100 * a / hz / s;
  printf "serve CPU with one viewer (MJPEG + SSE): %.1f%% of one core\n", 100 * b / hz / s;
  printf "cost of the viewer: %.1f%% of one core\n", 100 * (b - a) / hz / s }'
