// Settings: the gallery's thresholds (GET/PATCH /v1/settings) beside the calibration curve
// (GET /v1/calibration: TAR and FAR against the threshold), so an operator sees what a
// threshold change costs before saving it.
import {api, el, $, say, fmtTime} from '/console/api.js';
import {can} from '/console/app.js';

let settings = {};

/** The gallery stores single-precision floats (0.6 comes back as 0.6000000238...): shown and
 *  compared at float precision, so an unchanged field is not sent back. */
function tidy(data) {
  const out = {...data};
  for (const [k, v] of Object.entries(out)) {
    if (typeof v === 'number' && !Number.isInteger(v)) out[k] = Number(v.toPrecision(7));
  }
  return out;
}
let curve = [];  // [{threshold, tar, far}] sorted by threshold

export async function showSettings() {
  $('settings-error').textContent = '';
  try {
    const data = await api('GET', '/v1/settings');
    settings = tidy(data.settings || data);
    renderFields();
  } catch (e) {
    $('settings-fields').replaceChildren(el('p', {class: 'hint', text: e.status === 404 ? 'This server has no settings API.' : e.message}));
  }
  try {
    const cal = await api('GET', '/v1/calibration');
    curve = (cal.curve || []).filter(p => isFinite(p.threshold)).sort((a, b) => a.threshold - b.threshold);
    $('calibration-note').textContent = `From ${cal.source || 'a calibration run'}` + (cal.created ? `, ${fmtTime(cal.created)}` : '') + '.';
  } catch (e) {
    curve = [];
    $('calibration-note').textContent = e.status === 404
        ? 'No calibration yet: run `facegate gallery calibrate --save` to see what a threshold costs.'
        : e.message;
  }
  drawChart();
  explain();
}

function renderFields() {
  const fields = [];
  for (const [k, v] of Object.entries(settings)) {
    const id = 'setting-' + k;
    const common = {id, name: k, disabled: !can('admin')};
    let input;
    if (typeof v === 'boolean') input = el('input', {...common, type: 'checkbox', checked: v});
    else if (typeof v === 'number') input = el('input', {...common, type: 'number', value: v, step: Number.isInteger(v) && k !== 'threshold' ? 1 : 0.01});
    else if (typeof v === 'string') input = el('input', {...common, type: 'text', value: v});
    else continue;  // nested values are not edited here
    fields.push(el('label', {for: id, text: k.replace(/_/g, ' ')}), input);
  }
  $('settings-fields').replaceChildren(...fields);
  const t = $('setting-threshold');
  if (t) t.addEventListener('input', () => { drawChart(); explain(); });
}

/** TAR and FAR at threshold t, linearly interpolated along the curve. */
function at(t) {
  if (!curve.length) return null;
  if (t <= curve[0].threshold) return curve[0];
  for (let i = 1; i < curve.length; i++) {
    const a = curve[i - 1], b = curve[i];
    if (t <= b.threshold) {
      const f = (t - a.threshold) / (b.threshold - a.threshold || 1);
      return {threshold: t, tar: a.tar + f * (b.tar - a.tar), far: a.far + f * (b.far - a.far)};
    }
  }
  return curve[curve.length - 1];
}

const pct = x => (100 * x).toFixed(1) + '%';
const rate = far => far <= 0 ? '0' : far >= 0.01 ? pct(far) : `1 in ${Math.round(1 / far).toLocaleString()}`;

function explain() {
  const out = $('threshold-cost');
  const input = $('setting-threshold');
  if (!input || !curve.length) return void (out.textContent = '');
  const now = at(Number(settings.threshold)), next = at(Number(input.value));
  if (!now || !next) return;
  let text = `At ${Number(input.value).toFixed(2)}: genuine matches accepted (TAR) ${pct(next.tar)}, ` +
             `impostors accepted (FAR) ${rate(next.far)}.`;
  if (Number(input.value) !== Number(settings.threshold)) {
    const d = next.tar - now.tar;
    text += ` Versus now (${Number(settings.threshold).toFixed(2)}): TAR ${d >= 0 ? '+' : ''}${(100 * d).toFixed(1)} points` +
            `, FAR ${rate(now.far)} becomes ${rate(next.far)}.`;
  }
  out.textContent = text;
}

function drawChart() {
  const box = $('calibration-chart');
  if (!curve.length) return void box.replaceChildren();
  const W = 480, H = 260, L = 44, R = 44, T = 10, B = 30;
  const t0 = curve[0].threshold, t1 = curve[curve.length - 1].threshold;
  const x = t => L + (W - L - R) * (t - t0) / (t1 - t0 || 1);
  const y = v => T + (H - T - B) * (1 - v);                  // TAR: linear 0..1
  const minLog = -6;                                         // FAR: log10 from 1e-6 to 1
  const yf = f => y((Math.max(minLog, Math.log10(Math.max(f, 1e-12))) - minLog) / -minLog);
  const NS = 'http://www.w3.org/2000/svg';
  const s = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    return e;
  };
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
                        'aria-label': 'TAR (solid) and FAR (dashed, log scale) against the threshold; the current threshold is the vertical line'});
  svg.append(s('line', {class: 'axis', x1: L, y1: y(0), x2: W - R, y2: y(0)}),
             s('line', {class: 'axis', x1: L, y1: y(1), x2: L, y2: y(0)}));
  for (const v of [0, 0.5, 1]) svg.append(s('text', {x: 4, y: y(v) + 4}, pct(v)));
  for (const e of [-6, -4, -2, 0]) svg.append(s('text', {x: W - R + 4, y: yf(10 ** e) + 4}, `1e${e}`));
  for (let i = 0; i <= 4; i++) {
    const t = t0 + (t1 - t0) * i / 4;
    svg.append(s('text', {x: x(t) - 10, y: H - 10}, t.toFixed(2)));
  }
  svg.append(s('path', {class: 'tar', d: curve.map((p, i) => `${i ? 'L' : 'M'}${x(p.threshold)},${y(p.tar)}`).join('')}),
             s('path', {class: 'far', d: curve.map((p, i) => `${i ? 'L' : 'M'}${x(p.threshold)},${yf(p.far)}`).join('')}));
  const mark = (t, cls, label) => {
    if (!isFinite(t) || t < t0 || t > t1) return;
    svg.append(s('line', {class: cls, x1: x(t), y1: y(1), x2: x(t), y2: y(0)}),
               s('text', {x: x(t) + 3, y: y(1) + 10}, label));
  };
  mark(Number(settings.threshold), 'now', 'now');
  const input = $('setting-threshold');
  if (input && Number(input.value) !== Number(settings.threshold)) mark(Number(input.value), 'new', 'new');
  box.replaceChildren(svg, el('p', {class: 'hint', text: 'Solid: TAR (left axis). Dashed: FAR (right axis, log scale).'}));
}

$('settings-form').addEventListener('submit', async ev => {
  ev.preventDefault();
  $('settings-error').textContent = '';
  const patch = {};
  for (const [k, v] of Object.entries(settings)) {
    const input = $('setting-' + k);
    if (!input) continue;
    const nv = typeof v === 'boolean' ? input.checked : typeof v === 'number' ? Number(input.value) : input.value;
    if (nv !== v) patch[k] = nv;
  }
  if (!Object.keys(patch).length) return say('Nothing changed.');
  try {
    const data = await api('PATCH', '/v1/settings', {json: patch});
    settings = tidy(data.settings || data);
    renderFields();
    drawChart();
    explain();
    say('Settings saved.');
  } catch (e) {
    $('settings-error').textContent = e.message;
  }
});
