// SPDX-License-Identifier: Apache-2.0
// Merges the JSON of `facegate bench models` (onednn, opencv) and ort_bench.js into one table
// with ratios to ONNX Runtime. node compare.js onednn.json opencv.json ort.json
'use strict';
const fs = require('fs');
const [oneFile, cvFile, ortFile] = process.argv.slice(2);
const load = (f) => Object.fromEntries(JSON.parse(fs.readFileSync(f, 'utf8')).map((r) => [r.file, r]));
const one = load(oneFile), cv = load(cvFile), ort = load(ortFile);
const fmt = (r) => (r && r.p50_ms !== undefined ? r.p50_ms.toFixed(2) : 'err');
const ratio = (a, b) => (a && b && a.p50_ms !== undefined && b.p50_ms !== undefined
  ? (a.p50_ms / b.p50_ms).toFixed(2) + 'x' : '-');
console.log('| model | threads | batch | onednn p50 ms | opencv p50 ms | onnxruntime p50 ms | onednn/ort | opencv/ort | onednn/opencv | onednn load ms |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const file of Object.keys(one)) {
  const o = one[file], c = cv[file], r = ort[file];
  console.log(`| ${file} | ${o.threads} | ${o.batch} | ${fmt(o)} | ${fmt(c)} | ${fmt(r)} | ${ratio(o, r)} | ${ratio(c, r)} | ${ratio(o, c)} | ${o.load_ms !== undefined ? o.load_ms.toFixed(0) : '-'} |`);
}
