// SPDX-License-Identifier: Apache-2.0
// Times ONNX models with ONNX Runtime (onnxruntime-node) the way `facegate bench models` does:
// fixed-seed random inputs, warm-up runs, then p50/p90 of timed runs. Benchmark-only.
//
// node ort_bench.js [--threads N] [--batch B] [--runs R] [--warmup W] [--json] FILE.onnx...
'use strict';
const ort = require('onnxruntime-node');
const path = require('path');

function parseArgs(argv) {
  const a = { threads: 1, batch: 1, runs: 30, warmup: 5, json: false, files: [] };
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i];
    if (k === '--json') a.json = true;
    else if (['--threads', '--batch', '--runs', '--warmup'].includes(k)) a[k.slice(2)] = Number(argv[++i]);
    else a.files.push(k);
  }
  return a;
}

// Same generator family as the C++ side is not needed: timings do not depend on the values.
function randomData(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; ++i) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s / 4294967296 * 2 - 1;
  }
  return out;
}

function percentile(v, p) {
  const s = [...v].sort((x, y) => x - y);
  const pos = p * (s.length - 1);
  const lo = Math.floor(pos), hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

async function benchOne(file, a) {
  const opts = {
    intraOpNumThreads: a.threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(file, opts);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const feeds = (batch) => {
    const f = {};
    session.inputMetadata.forEach((m, i) => {
      // Dynamic dims: batch for dim 0, 640 for spatial dims (the detectors' size).
      const dims = m.shape.map((d, k) => (k === 0 ? batch : (typeof d === 'number' && d > 0 ? d : 640)));
      const n = dims.reduce((x, y) => x * y, 1);
      f[session.inputNames[i]] = new ort.Tensor('float32', randomData(n, 42 + i), dims);
    });
    return f;
  };
  // A graph fixed at batch 1 runs the batch item by item, as facegate does.
  let batched = true, calls = 1, f = feeds(a.batch);
  if (a.batch > 1) {
    try { await session.run(f); } catch (e) { batched = false; calls = a.batch; f = feeds(1); }
  }
  const times = [];
  for (let r = 0; r < a.warmup + a.runs; ++r) {
    const s = process.hrtime.bigint();
    for (let c = 0; c < calls; ++c) await session.run(f);
    if (r >= a.warmup) times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  return {
    file: path.basename(file), path: file, backend: 'onnxruntime', threads: a.threads,
    batch: a.batch, batched, runs: a.runs, p50_ms: percentile(times, 0.5),
    p90_ms: percentile(times, 0.9), load_ms: loadMs,
  };
}

(async () => {
  const a = parseArgs(process.argv.slice(2));
  const out = [];
  let ok = true;
  for (const f of a.files) {
    try {
      const r = await benchOne(f, a);
      out.push(r);
      if (!a.json) {
        console.log(`${r.file.padEnd(34)} onnxruntime t=${r.threads} b=${r.batch}  p50 ${r.p50_ms.toFixed(3)} ms  p90 ${r.p90_ms.toFixed(3)} ms  load ${r.load_ms.toFixed(1)} ms`);
      }
    } catch (e) {
      ok = false;
      out.push({ file: path.basename(f), backend: 'onnxruntime', error: String(e) });
      console.error(`error: ${f}: ${e}`);
    }
  }
  if (a.json) console.log(JSON.stringify(out, null, 2));
  process.exit(ok ? 0 : 1);
})();
