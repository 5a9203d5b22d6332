#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs `facegate bench models` on onednn and opencv and ONNX Runtime on the same files, one
# engine after the other in separate processes, and prints a Markdown table with ratios.
#   tools/ort_bench/bench.sh [--threads N] [--batch B] [--runs R] [FILE.onnx ...]
# FACEGATE=path/to/facegate (default build/h-onednn/apps/facegate/facegate).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
facegate="${FACEGATE:-$root/build/h-onednn/apps/facegate/facegate}"
threads=1 batch=1 runs=30
files=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    *) files+=("$1"); shift ;;
  esac
done
[[ -d "$here/node_modules/onnxruntime-node" ]] || (cd "$here" && npm install --no-audit --no-fund >&2)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
model_args=()
for f in "${files[@]}"; do model_args+=(--model "$f"); done
common=(--threads "$threads" --batch "$batch" --runs "$runs" --json)
"$facegate" bench models --backend onednn "${common[@]}" "${model_args[@]}" > "$tmp/onednn.json" || true
"$facegate" bench models --backend opencv "${common[@]}" "${model_args[@]}" > "$tmp/opencv.json" || true
# The same files facegate timed (its default list comes from the installed packs).
mapfile -t paths < <(node -e 'for (const r of JSON.parse(require("fs").readFileSync(process.argv[1]))) if (r.path) console.log(r.path)' "$tmp/onednn.json")
node "$here/ort_bench.js" "${common[@]}" "${paths[@]}" > "$tmp/ort.json" || true
node "$here/compare.js" "$tmp/onednn.json" "$tmp/opencv.json" "$tmp/ort.json"
