#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The service figures of BENCHMARKS.md "Service" (issue 14), side by side in one run:
#   embedding: POST /v1/identify with an embedding against a SIZE-template gallery, wrk with
#              --conns connections, vs Gallery::Identify in process on --threads threads;
#   image:     POST /v1/identify with a 640x480 JPEG holding one face, vs decode + detect + align
#              + embed + search in process on --threads threads (one inference thread each).
# Rounds alternate in-process and HTTP runs; the medians are printed at the end.
#
#   bench/service.sh [--mode embedding|image|all] [--size 100000] [--seconds 10] [--rounds 3]
#                    [--conns 64] [--image-conns 8] [--threads 2] [--dir /tmp/fg-service-bench]
#                    [--build build/dev] [--no-audit]
#
# Needs wrk (Debian), a built tree (facegate, fg_service_bench) and the default model pack. The
# gallery data is made once in --dir (100k templates: ~1 min) and reused.
set -euo pipefail

mode=all size=100000 seconds=10 rounds=3 conns=64 image_conns=8 threads=2
dir=/tmp/fg-service-bench build=build/dev audit=1
image=../shared/data/antispoof/real_T1.jpg
while [ $# -gt 0 ]; do
    case "$1" in
        --mode) mode=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --conns) conns=$2; shift 2 ;;
        --image-conns) image_conns=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --build) build=$2; shift 2 ;;
        --image) image=$2; shift 2 ;;
        --no-audit) audit=0; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "bench/service.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
F=$build/apps/facegate/facegate
B=$build/bench/fg_service_bench
for x in "$F" "$B"; do [ -x "$x" ] || { echo "missing $x: build it first" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d /tmp/fg-service-run-XXXXXX)
serve_pid=
cleanup() {
    if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# start_serve GALLERY_DB COMPUTE_QUEUE: sets serve_pid, port, key.
start_serve() {
    local audit_line=
    [ "$audit" = 1 ] && audit_line="\"audit\": {\"file\": \"$work/audit.db\"},"
    cat > "$work/serve.json" <<EOF
{
  "listen": {"address": "127.0.0.1", "port": 0},
  "threads": {"io": 2, "compute": $threads, "compute_queue": $2},
  "auth": {"keys_file": "$work/keys.db"},
  $audit_line
  "engine": {"pack": "default", "threads": 1},
  "gallery": {"db": "$1", "key_file": "$dir/gallery.key"}
}
EOF
    rm -f "$work/serve.out"
    "$F" serve --config "$work/serve.json" --create-admin-key --json > "$work/serve.out" 2> "$work/serve.err" &
    serve_pid=$!
    for _ in $(seq 1 600); do
        grep -q '"port"' "$work/serve.out" 2>/dev/null && break
        kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
        sleep 0.2
    done
    port=$(sed -n 's/.*"port": *\([0-9][0-9]*\).*/\1/p' "$work/serve.out")
    key=$(sed -n 's/^admin key: //p' "$work/serve.out")
    [ -n "$port" ] && [ -n "$key" ] || { echo "serve did not start" >&2; cat "$work/serve.err" >&2; exit 1; }
    echo "serve pid $serve_pid on port $port, RSS $(rss_kb "$serve_pid") kB at start"
}

stop_serve() {
    echo "serve RSS $(rss_kb "$serve_pid") kB at end"
    kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=
}

field() { sed -n "s/.*\"$1\": *\([0-9.][0-9.]*\).*/\1/p"; }
median() { sort -n | awk '{v[NR]=$1} END {if (NR) print (NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

# run_rounds NAME IN_PROCESS_COMMAND... ; wrk arguments in $wrk_args
run_rounds() {
    local name=$1; shift
    : > "$work/$name.inproc"; : > "$work/$name.http"
    for r in $(seq 1 "$rounds"); do
        local a b
        a=$("$@" | tail -1)
        b=$(FG_BENCH_KEY=$key wrk $wrk_args | grep '^WRK_JSON' | sed 's/^WRK_JSON //')
        echo "round $r in-process: $a"
        echo "round $r http:       $b   (load $(cut -d' ' -f1-3 /proc/loadavg))"
        echo "$a" >> "$work/$name.inproc"; echo "$b" >> "$work/$name.http"
    done
    local ip hp
    ip=$(field rate < "$work/$name.inproc" | median)
    hp=$(field rate < "$work/$name.http" | median)
    echo "== $name (medians of $rounds): in-process $ip/s (p50 $(field p50_ms < "$work/$name.inproc" | median) ms," \
         "p99 $(field p99_ms < "$work/$name.inproc" | median) ms); HTTP $hp/s (p50 $(field p50_ms < "$work/$name.http" | median) ms," \
         "p99 $(field p99_ms < "$work/$name.http" | median) ms, non-2xx $(field non2xx < "$work/$name.http" | awk '{s+=$1} END {print s+0}'));" \
         "ratio $(awk -v h="$hp" -v i="$ip" 'BEGIN {printf "%.2f", h / i}')"
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; build $build; audit $audit"
if [ "$mode" = embedding ] || [ "$mode" = all ]; then
    if [ ! -f "$dir/gallery.db" ]; then
        # The templates must be of serve's embedder (it refuses a gallery of another model).
        model=$("$F" embed "$image" 2>/dev/null | tr ',' '\n' | sed -n 's/.*"model_id": *"\([^"]*\)".*/\1/p' | head -1)
        [ -n "$model" ] || { echo "cannot tell the default pack's model id (facegate embed $image)" >&2; exit 1; }
        "$B" make "$dir" "$size" "$model"
    fi
    start_serve "$dir/gallery.db" 16
    wrk_args="-t2 -c$conns -d${seconds}s --latency -s $dir/identify.lua http://127.0.0.1:$port/v1/identify"
    # The CLI re-executes itself with these two settings; the helper does not (README).
    run_rounds embedding env OMP_WAIT_POLICY=passive GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
        "$B" identify "$dir" "$threads" "$seconds"
    stop_serve
fi
if [ "$mode" = image ] || [ "$mode" = all ]; then
    [ -f "$image" ] || { echo "missing $image (../shared data)" >&2; exit 1; }
    mkdir -p "$dir"
    [ -f "$dir/gallery.key" ] || { echo "run --mode embedding first (it makes $dir)" >&2; exit 1; }
    if [ ! -f "$dir/image.db" ]; then
        "$F" gallery enroll --db "$dir/image.db" --key-file "$dir/gallery.key" --subject t1 --image "$image" \
            --force --json > /dev/null
    fi
    start_serve "$dir/image.db" "$image_conns"
    export FG_BENCH_IMAGE=$image
    wrk_args="-t1 -c$image_conns -d${seconds}s --timeout 30s --latency -s bench/wrk/identify_image.lua http://127.0.0.1:$port/v1/identify"
    run_rounds image env OMP_WAIT_POLICY=passive GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
        "$B" image "$dir/image.db" "$image" "$threads" "$seconds"
    stop_serve
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
