#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The service soak (issue 14, BENCHMARKS.md "Service"): `facegate serve` with 2 live streams (file
# sources looping a clip, paced like cameras) under mixed requests for --seconds: identify with an
# image and with an embedding, detect, verify, subjects create/get/patch/enroll/delete, stream list
# and frame.jpg (bench/wrk/soak.lua), plus SSE clients that come and go and an MJPEG client.
# Passes (exit 0) when no request got a 5xx (wrk's count and serve's own
# facegate_http_requests_total), /readyz is 200 at the end and serve stops cleanly. Prints serve's
# RSS every --sample seconds, at start and at end.
#
#   bench/soak.sh [--seconds 600] [--clients 4] [--sample 30] [--build build/dev]
#                 [--video ../shared/data/videos/intel_head-pose-face-detection-male.mp4]
#
# Not run by CI in full (10 minutes); a 20-30 s run is a smoke test of the driver itself.
set -euo pipefail

seconds=600 clients=4 sample=30 build=build/dev
video=../shared/data/videos/intel_head-pose-face-detection-male.mp4
image=../shared/data/antispoof/real_T1.jpg
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --sample) sample=$2; shift 2 ;;
        --build) build=$2; shift 2 ;;
        --video) video=$2; shift 2 ;;
        --image) image=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "bench/soak.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
F=$build/apps/facegate/facegate
[ -x "$F" ] || { echo "missing $F: build it first" >&2; exit 1; }
for f in "$video" "$image"; do [ -f "$f" ] || { echo "missing $f (../shared data)" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
video=$(realpath "$video") image=$(realpath "$image")

work=$(mktemp -d /tmp/fg-soak-XXXXXX)
serve_pid= pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# The gallery: the test face enrolled, so identify and the streams have someone to name.
(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$work/gallery.key")
"$F" gallery enroll --db "$work/people.db" --key-file "$work/gallery.key" --subject soak-person \
    --image "$image" --force --json > /dev/null
"$F" embed "$image" > "$work/embed.json"
model=$(sed -n 's/.*"model_id": *"\([^"]*\)".*/\1/p' "$work/embed.json" | head -1)
vector=$(tr -d '\n ' < "$work/embed.json" | grep -o '"embedding":\[[^]]*\]' | head -1 | sed 's/"embedding"://')
[ -n "$model" ] && [ -n "$vector" ] || { echo "could not read the embedding of $image" >&2; exit 1; }
printf '{"embedding": %s, "model_id": "%s"}' "$vector" "$model" > "$work/probe.json"

cat > "$work/serve.json" <<EOF
{
  "listen": {"address": "127.0.0.1", "port": 0},
  "auth": {"keys_file": "keys.db"},
  "audit": {"file": "audit.db"},
  "gallery": {"db": "people.db", "key_file": "gallery.key"},
  "streams": [
    {"id": "cam1", "uri": "$video", "loop": true, "pace": true},
    {"id": "cam2", "uri": "$video", "loop": true, "pace": true}
  ]
}
EOF
"$F" serve --config "$work/serve.json" --create-admin-key --json > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
port=
for _ in $(seq 1 600); do
    port=$(sed -n 's/.*"port": *\([0-9][0-9]*\).*/\1/p' "$work/serve.out" 2>/dev/null)
    [ -n "$port" ] && break
    kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
    sleep 0.2
done
[ -n "$port" ] || { echo "serve did not start" >&2; exit 1; }
key=$(sed -n 's/^admin key: //p' "$work/serve.out")

# get PATH: status line and headers to stdout, with the key (bash only: no curl needed).
http_get() {
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET %s HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n' "$1" "$key" >&3
    cat <&3
    exec 3<&-
}
# A long-lived client (SSE or MJPEG) in the background for $3 seconds (then it vanishes without
# a goodbye), counting the bytes it received into $2.
stream_client() {
    ( exec 3<>"/dev/tcp/127.0.0.1/$port"
      printf 'GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n' "$1" "$key" >&3
      timeout "$3" cat <&3 | wc -c > "$2" ) &
    pids+=($!)
}

sleep 3  # the streams open
start_rss=$(rss_kb "$serve_pid")
echo "soak: serve pid $serve_pid port $port; RSS at start ${start_rss} kB; load $(cut -d' ' -f1-3 /proc/loadavg); ${seconds} s"
stream_client "/v1/streams/cam1/mjpeg" "$work/mjpeg.bytes" $((seconds + 5))
for i in 1 2 3; do stream_client "/v1/events" "$work/sse$i.bytes" $((seconds + 5)); done

FG_BENCH_KEY=$key FG_BENCH_IMAGE=$image FG_BENCH_PROBE=$work/probe.json FG_BENCH_STREAM=cam1 \
    wrk -t"$clients" -c"$clients" -d"${seconds}s" --timeout 30s --latency -s bench/wrk/soak.lua \
    "http://127.0.0.1:$port" > "$work/wrk.out" 2>&1 &
wrk_pid=$!
elapsed=0 churn=0
while kill -0 "$wrk_pid" 2>/dev/null; do
    sleep "$sample"; elapsed=$((elapsed + sample))
    echo "soak: t=${elapsed}s RSS $(rss_kb "$serve_pid") kB load $(cut -d' ' -f1-3 /proc/loadavg)"
    # SSE clients that come and go (each vanishes mid-stream after two sample periods).
    churn=$((churn + 1))
    stream_client "/v1/events?stream=cam2" "$work/sse-churn$churn.bytes" $((2 * sample))
done
wait "$wrk_pid" || true
end_rss=$(rss_kb "$serve_pid")
result=$(sed -n 's/^WRK_JSON //p' "$work/wrk.out")
ready=$(http_get /readyz | head -1 | cut -d' ' -f2)
server_5xx=$(http_get /metrics | awk '/^facegate_http_requests_total\{/ && /status="5/ {s += $NF} END {print s + 0}')
kill -INT "$serve_pid"
stopped=0
wait "$serve_pid" || stopped=$?
serve_pid=
echo "soak: wrk $result"
echo "soak: RSS start ${start_rss} kB, end ${end_rss} kB; 5xx counted by serve: $server_5xx; /readyz $ready;" \
     "serve exit $stopped"
sleep 1  # the clients see the server close
echo "soak: bytes received by the MJPEG client $(cat "$work/mjpeg.bytes" 2>/dev/null || echo ?)," \
     "by the first SSE client $(cat "$work/sse1.bytes" 2>/dev/null || echo ?)"
wrk_5xx=$(echo "$result" | sed -n 's/.*"s5xx": *\([0-9]*\).*/\1/p')
if [ "${wrk_5xx:-1}" != 0 ] || [ "$server_5xx" != 0 ] || [ "$ready" != 200 ] || [ "$stopped" != 0 ]; then
    echo "soak: FAILED" >&2
    grep -m 20 -i "error\|warn" "$work/serve.err" >&2 || true
    exit 1
fi
echo "soak: OK"
