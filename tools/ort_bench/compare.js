// SPDX-License-Identifier: Apache-2.0
// Merges the JSON of `facegate bench models` (onednn, opencv) and ort_bench.js, from any number
// of runs (rounds), into one Markdown table: per model the median over rounds of each engine's
// p50, the ratios to ONNX Runtime, oneDNN's load time and its memory per extra session.
//   node compare.js FILE.json...
'use strict';
const fs = require('fs');
const rows = {};   // file -> backend -> [result]
const order = [];
for (const f of process.argv.slice(2)) {
  let data;
  try { data = JSON.parse(fs.readFileSync(f, 'utf8')); } catch (e) { continue; }
  for (const r of data) {
    if (!rows[r.file]) { rows[r.file] = {}; order.push(r.file); }
    (rows[r.file][r.backend] = rows[r.file][r.backend] || []).push(r);
  }
}
const median = (v) => {
  const s = v.filter((x) => x !== undefined).sort((a, b) => a - b);
  if (!s.length) return undefined;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const stat = (file, backend, key) => median((rows[file][backend] || []).map((r) => r[key]));
const fmt = (x, d = 2) => (x === undefined ? 'err' : x.toFixed(d));
const ratio = (a, b) => (a !== undefined && b !== undefined ? (a / b).toFixed(2) + 'x' : '-');
console.log('| model | threads | batch | rounds | onednn p50 ms | opencv p50 ms | onnxruntime p50 ms | onednn/ort | opencv/ort | onednn/opencv | onednn load ms | onednn session MB |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const file of order) {
  const any = Object.values(rows[file])[0][0];
  const o = stat(file, 'onednn', 'p50_ms'), c = stat(file, 'opencv', 'p50_ms'), r = stat(file, 'onnxruntime', 'p50_ms');
  const mem = stat(file, 'onednn', 'session_heap_bytes');
  const n = (rows[file].onednn || []).length;
  console.log(`| ${file} | ${any.threads ?? '-'} | ${any.batch ?? '-'} | ${n} | ${fmt(o)} | ${fmt(c)} | ${fmt(r)} | ${ratio(o, r)} | ${ratio(c, r)} | ${ratio(o, c)} | ${fmt(stat(file, 'onednn', 'load_ms'), 0)} | ${mem === undefined ? '-' : (mem / 1e6).toFixed(2)} |`);
}
