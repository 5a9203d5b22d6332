// Strangers and history: strangers (same-person groups of unknown sightings) with their
// sightings; name / merge / dismiss; the timeline of one camera; search by face.
import {api, el, $, say, fmtTime, checkImageFile, uploadMessage} from '/console/api.js';

let strangersCursor = null;
let timelineCursor = null;
let current = null;  // the stranger shown

export async function showStrangers() {
  $('history-missing').hidden = true;
  await Promise.all([loadStrangers(false), loadCameras()]);
}

function missing(e) {
  // Lists and search never answer 404: the server has no history routes (or no history).
  if (e.status === 404 || e.status === 405 || e.code === 'no_history') {
    $('history-missing').hidden = false;
    return true;
  }
  return false;
}

function crop(sightingId, alt) {
  return el('img', {src: `/v1/history/${sightingId}/crop.jpg`, alt, loading: 'lazy', width: 96, height: 96});
}

async function loadStrangers(more) {
  try {
    const page = await api('GET', '/v1/strangers', {query: {limit: 24, cursor: more ? strangersCursor : ''}});
    strangersCursor = page.next_cursor;
    const tiles = page.items.map(s => el('button', {type: 'button', class: 'tile', 'data-stranger': s.id,
                                                     onclick: () => openStranger(s.id)},
        crop(s.best_sighting_id, `Best view of stranger ${s.id}`),
        el('div', {text: `Stranger ${s.id}`}),
        el('div', {class: 'hint', text: `${s.sightings} sighting(s), ${s.streams.join(', ')}`}),
        el('div', {class: 'hint', text: 'last ' + fmtTime(s.last_seen)})));
    if (more) $('stranger-list').append(...tiles);
    else $('stranger-list').replaceChildren(...(tiles.length ? tiles : [el('p', {class: 'hint', text: 'No strangers.'})]));
    $('strangers-more').hidden = !strangersCursor;
  } catch (e) {
    if (!missing(e)) $('stranger-list').replaceChildren(el('p', {class: 'error', text: e.message}));
  }
}
$('strangers-more').addEventListener('click', () => loadStrangers(true));

function sightingItem(s, extra) {
  const who = s.display_name || s.subject_id || (s.stranger_id ? `stranger ${s.stranger_id}` : s.outcome);
  return el('li', {'data-sighting': s.id, 'data-outcome': s.outcome},
            s.has_crop ? crop(s.id, `Face seen at ${fmtTime(s.time)}`) : null,
            el('div', {},
               el('time', {datetime: s.time, text: fmtTime(s.time)}),
               el('span', {class: 'badge ' + s.outcome, text: s.outcome}), ' ',
               el('strong', {text: who}),
               el('div', {class: 'hint', text: `${s.stream} #${s.track}, score ${Number(s.score).toFixed(2)}` +
                                               (s.liveness != null ? `, liveness ${Number(s.liveness).toFixed(2)}` : '') +
                                               (extra || '')})));
}

async function openStranger(id) {
  $('stranger-error').textContent = '';
  try {
    current = await api('GET', '/v1/strangers/' + id, {query: {limit: 50}});
  } catch (e) {
    return void ($('stranger-error').textContent = e.message);
  }
  $('stranger-detail').hidden = false;
  $('stranger-id').textContent = String(current.id);
  $('stranger-summary').textContent = `${current.sightings.length} sighting(s) from ${fmtTime(current.first_seen)} to ` +
      `${fmtTime(current.last_seen)} on ${current.streams.join(', ')}`;
  $('stranger-sightings').replaceChildren(...current.sightings.map(s => sightingItem(s)));
  $('stranger-subject').focus();
}

async function act(fn, done) {
  $('stranger-error').textContent = '';
  try {
    await fn();
    say(done);
    $('stranger-detail').hidden = true;
    current = null;
    loadStrangers(false);
  } catch (e) {
    $('stranger-error').textContent = e.message;
  }
}

$('stranger-name-form').addEventListener('submit', ev => {
  ev.preventDefault();
  const subject_id = $('stranger-subject').value.trim();
  const display_name = $('stranger-display').value.trim() || subject_id;
  act(() => api('POST', `/v1/strangers/${current.id}/enroll`, {json: {subject_id, display_name}}),
      `Stranger ${current.id} is now ${display_name}: the next sighting will be recognised.`);
  ev.target.reset();
});

$('stranger-merge-form').addEventListener('submit', ev => {
  ev.preventDefault();
  const into = Number($('stranger-into').value);
  act(() => api('POST', `/v1/strangers/${current.id}/merge`, {json: {into}}), `Merged into stranger ${into}.`);
});

$('stranger-dismiss').addEventListener('click', () => {
  if (current && confirm(`Dismiss stranger ${current.id}?`)) {
    act(() => api('DELETE', `/v1/strangers/${current.id}`), `Stranger ${current.id} dismissed.`);
  }
});

async function loadCameras() {
  try {
    const data = await api('GET', '/v1/streams');
    const sel = $('timeline-stream');
    const keep = sel.value;
    sel.replaceChildren(...data.items.map(s => el('option', {value: s.id, text: s.id})));
    if (keep) sel.value = keep;
  } catch { /* no pipeline: the timeline stays empty */ }
}

async function loadTimeline(more) {
  const stream = $('timeline-stream').value;
  try {
    const page = await api('GET', '/v1/history', {query: {stream, limit: 50, cursor: more ? timelineCursor : ''}});
    timelineCursor = page.next_cursor;
    const items = page.items.map(s => sightingItem(s));
    if (more) $('timeline').append(...items);
    else $('timeline').replaceChildren(...(items.length ? items : [el('li', {class: 'hint', text: 'Nothing seen yet.'})]));
    $('timeline-more').hidden = !timelineCursor;
  } catch (e) {
    if (!missing(e)) $('timeline').replaceChildren(el('li', {class: 'error', text: e.message}));
  }
}
$('timeline-form').addEventListener('submit', ev => { ev.preventDefault(); loadTimeline(false); });
$('timeline-more').addEventListener('click', () => loadTimeline(true));

$('face-search').addEventListener('submit', async ev => {
  ev.preventDefault();
  const out = $('face-search-error');
  out.textContent = '';
  const file = $('face-search-photo').files[0];
  if (!file) return void (out.textContent = 'Choose a photo.');
  const bad = checkImageFile(file);
  if (bad) return void (out.textContent = bad);
  const form = new FormData();
  form.append('image', file, file.name);
  try {
    const res = await api('POST', '/v1/history/search', {form, query: {limit: 20}});
    const results = $('face-search-results');
    if (!res.faces.length) {
      return void results.replaceChildren(el('p', {class: 'hint', text: 'No face was found in that photo: use a sharper, closer photo of the person.'}));
    }
    // Every face is answered (largest first); a group photo says so, so no face goes unnoticed.
    const summary = res.faces.length === 1 ? '1 face in the photo.'
        : `${res.faces.length} faces in the photo, largest first: each one's past sightings are below.`;
    results.replaceChildren(el('p', {id: 'face-search-summary', text: summary}), ...res.faces.map((f, i) => el('div', {'data-face': i + 1},
        el('h4', {text: `Face ${i + 1}: ` + (f.matches.length ? `${f.matches.length} past sighting(s)` : 'never seen before')}),
        f.matches.length ? el('ol', {class: 'sightings'}, ...f.matches.map(s => sightingItem(s, `, similarity ${Number(s.similarity).toFixed(2)}`))) : null)));
    say(summary);
  } catch (e) {
    if (!missing(e)) out.textContent = uploadMessage(e);
  }
});
