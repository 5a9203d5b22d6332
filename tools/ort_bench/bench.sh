#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Times the same ONNX files with `facegate bench models` (onednn, opencv) and ONNX Runtime and
# prints a Markdown table with ratios. Each engine runs in its own process; the engines take
# turns per model (onednn, opencv, ort on file 1, then file 2, ...) and the whole sweep is
# repeated --rounds times, the table giving the median over rounds of each p50: on a shared,
# loaded machine the load drifts by the minute, and interleaving keeps the ratios fair.
#   tools/ort_bench/bench.sh [--threads N] [--batch B] [--runs R] [--rounds K] [FILE.onnx ...]
# FACEGATE=path/to/facegate (default build/h-onednn/apps/facegate/facegate).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
facegate="${FACEGATE:-$root/build/h-onednn/apps/facegate/facegate}"
threads=1 batch=1 runs=30 rounds=1
files=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) files+=("$1"); shift ;;
  esac
done
[[ -d "$here/node_modules/onnxruntime-node" ]] || (cd "$here" && npm install --no-audit --no-fund >&2)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
common=(--threads "$threads" --batch "$batch" --runs "$runs" --json)
if [[ ${#files[@]} -eq 0 ]]; then
  # The default list of facegate: every installed model of the built-in packs.
  "$facegate" bench models --backend onednn --threads 1 --runs 1 --warmup 0 --json > "$tmp/list.out" || true
  mapfile -t files < <(node -e 'for (const r of JSON.parse(require("fs").readFileSync(process.argv[1]))) if (r.path) console.log(r.path)' "$tmp/list.out")
fi
for ((r = 0; r < rounds; ++r)); do
  for i in "${!files[@]}"; do
    f="${files[$i]}"
    "$facegate" bench models --backend onednn "${common[@]}" --model "$f" > "$tmp/onednn.$r.$i.json" || true
    "$facegate" bench models --backend opencv "${common[@]}" --model "$f" > "$tmp/opencv.$r.$i.json" || true
    node "$here/ort_bench.js" "${common[@]}" "$f" > "$tmp/ort.$r.$i.json" 2>/dev/null || true
  done
done
node "$here/compare.js" "$tmp"/*.json
