// A console left open (issue 15: "a console open for an hour does not grow the server's
// memory"): `facegate serve` with one looping stream at camera speed, the console in headless
// Chromium logged in with an admin key, moving between its pages as an operator would (mostly the
// live view: MJPEG + SSE), while serve's RSS (VmRSS) is sampled every 30 s. Prints one JSON
// line per sample and a summary (BENCHMARKS.md "Console").
// --no-viewer is the control run: the same serve, stream, warm-up and sampling (including the
// pauses of the page rounds, so samples fall at the same minutes), but no browser, so RSS growth
// can be attributed to the stream or to the viewer.
//
//   node tools/console/console_soak.mjs --facegate build/dev/apps/facegate/facegate \
//        --clip ../shared/data/videos/intel_head-pose-face-detection-male.mp4 [--minutes 60] \
//        [--no-viewer]
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';

// `--name value` pairs; a `--flag` not followed by a value is true.
const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) =>
  (v.startsWith('--') ? [...a, [v.slice(2), (all[i + 1] ?? '--').startsWith('--') ? true : all[i + 1]]]
                      : a), []));
const BIN = path.resolve(args.facegate || 'build/dev/apps/facegate/facegate');
const CLIP = path.resolve(args.clip || '');
const MINUTES = Number(args.minutes || 60);
const VIEWER = !args['no-viewer'];
if (!fs.existsSync(BIN) || !fs.existsSync(CLIP)) {
  console.error('usage: console_soak.mjs --facegate BIN --clip VIDEO [--minutes N] [--no-viewer]');
  process.exit(2);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-console-soak-'));
fs.writeFileSync(path.join(tmp, 'gallery.key'), Buffer.from(Array.from({length: 32}, () =>
  Math.floor(Math.random() * 256))).toString('hex'), {mode: 0o600});
fs.writeFileSync(path.join(tmp, 'serve.json'), JSON.stringify({
  listen: {address: '127.0.0.1', port: 0}, auth: {keys_file: 'keys.db'},
  gallery: {db: 'people.db', key_file: 'gallery.key', create: true}, engine: {threads: 1},
  api: {mjpeg_fps: 5}, streams: [{id: 'cam', uri: CLIP, loop: true, pace: true}]}));
const serve = spawn(BIN, ['serve', '--config', 'serve.json', '--create-admin-key', '--json'],
                    {cwd: tmp, stdio: ['ignore', 'pipe', 'pipe']});
let out = '';
serve.stdout.on('data', d => { out += d; });
serve.stderr.on('data', () => {});
let browser;
const cleanup = async () => {
  if (browser) await browser.close().catch(() => {});
  serve.kill('SIGTERM');
  fs.rmSync(tmp, {recursive: true, force: true});
};
process.on('SIGINT', async () => { await cleanup(); process.exit(130); });

const sleep = ms => new Promise(r => setTimeout(r, ms));
for (let i = 0; i < 240 && !/"url"/.test(out); i++) await sleep(500);
const url = (out.match(/"url":"([^"]+)"/) || [])[1];
const key = (out.match(/^admin key: (\S+)/m) || [])[1];
if (!url || !key) { console.error('serve did not start'); await cleanup(); process.exit(1); }

const rssKb = () => Number((fs.readFileSync(`/proc/${serve.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/) || [])[1]);
let page;
const openConsole = async () => {
  browser = await chromium.launch({executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
           '--disable-background-networking', '--disable-component-update', '--no-first-run']});
  page = await (await browser.newContext({viewport: {width: 1280, height: 720}})).newPage();
  page.setDefaultTimeout(60000);
  await page.goto(url + '/console/');
  await page.getByLabel('API key').fill(key);
  await page.keyboard.press('Enter');
  await page.locator('#who-name').filter({hasText: 'serve-admin'}).waitFor();
  await page.getByRole('link', {name: 'Live'}).click();
};
try {
  if (VIEWER) await openConsole();
  await sleep(60000);  // warm-up: models loaded, the stream and the viewer running
  const samples = [];
  const t0 = Date.now();
  const pages = ['Strangers & history', 'Gallery', 'Settings', 'Live'];
  for (let i = 0; Date.now() - t0 < MINUTES * 60000; i++) {
    const s = {minute: Math.round((Date.now() - t0) / 600) / 100, rss_mb: Math.round(rssKb() / 102.4) / 10};
    samples.push(s);
    console.log(JSON.stringify(s));
    // Every 5 minutes a short round of the other pages, then back to the live view.
    if (i % 10 === 9) {
      for (const name of pages) {
        if (VIEWER) await page.getByRole('link', {name}).click();
        await sleep(3000);
      }
    }
    await sleep(30000);
  }
  const first = samples.slice(0, 10).map(s => s.rss_mb).sort((a, b) => a - b);
  const last = samples.slice(-10).map(s => s.rss_mb).sort((a, b) => a - b);
  const median = a => a[Math.floor(a.length / 2)];
  console.log(JSON.stringify({summary: true, viewer: VIEWER, minutes: MINUTES, samples: samples.length,
    rss_mb_first_5min_median: median(first), rss_mb_last_5min_median: median(last),
    rss_mb_max: Math.max(...samples.map(s => s.rss_mb))}));
} finally {
  await cleanup();
}
