// Facegate console: log in, hash routes (#/live, #/gallery, #/strangers, #/settings), scopes,
// the live view (MJPEG + stream state) and the recent events (SSE).
import {api, el, $, say, fmtTime} from '/console/api.js';
import {showGallery} from '/console/gallery.js';
import {showStrangers} from '/console/strangers.js';
import {showSettings} from '/console/settings.js';

export const session = {name: '', scopes: new Set()};
export function can(scope) { return session.scopes.has('admin') || session.scopes.has(scope); }

const kMaxEvents = 100;        // the list is bounded: an hour-long console must not grow
const kMaxMjpeg = 4;           // browsers allow ~6 connections per host: keep some for the API
const kPollMs = 2000;

// ---- session -------------------------------------------------------------------------------

async function start() {
  try {
    setSession(await api('GET', '/v1/session'));
  } catch {
    return showLogin();
  }
  route();
}

function setSession(s) {
  session.name = s.name;
  session.scopes = new Set(s.scopes);
  $('who-name').textContent = `${s.name} (${[...session.scopes].join(', ')})`;
  $('who').hidden = false;
  $('nav').hidden = false;
  // What a key cannot do is not offered (the server enforces it anyway).
  for (const e of document.querySelectorAll('[data-scope]')) e.hidden = !can(e.dataset.scope);
  connectEvents();
}

function showLogin() {
  stopLive();
  disconnectEvents();
  $('nav').hidden = true;
  $('who').hidden = true;
  showPage('login');
  $('login-key').focus();
}

$('login-form').addEventListener('submit', async ev => {
  ev.preventDefault();
  $('login-error').textContent = '';
  try {
    const s = await api('POST', '/v1/session', {json: {key: $('login-key').value.trim()}});
    $('login-key').value = '';
    setSession(s);
    if (!location.hash || location.hash === '#/login') location.hash = '#/live';
    else route();
  } catch (e) {
    $('login-error').textContent = e.status === 401 ? 'That key is not valid (or was revoked).' : e.message;
  }
});

$('logout').addEventListener('click', async () => {
  try { await api('DELETE', '/v1/session'); } catch { /* cleared or not, show the login */ }
  session.scopes = new Set();
  location.hash = '#/login';
  showLogin();
});

// ---- routing -------------------------------------------------------------------------------

function showPage(name) {
  for (const p of document.querySelectorAll('.page')) p.hidden = p.id !== 'page-' + name;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === '#/' + name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function route() {
  if (!session.scopes.size) return showLogin();
  const name = (location.hash.replace(/^#\//, '') || 'live').split('/')[0];
  const pages = {live: showLive, gallery: showGallery, strangers: showStrangers, settings: showSettings};
  const show = pages[name] || showLive;
  if (show !== showLive) stopLive();
  showPage(pages[name] ? name : 'live');
  say('');
  show();
  $('view').focus({preventScroll: true});  // keyboard and screen-reader users land on the page
}
window.addEventListener('hashchange', route);
// Any call answering 401 (key revoked, cookie cleared) sends the operator back to the login.
window.addEventListener('unhandledrejection', ev => {
  if (ev.reason && ev.reason.status === 401) showLogin();
});

// ---- live view -------------------------------------------------------------------------------

let pollTimer = 0;
const cards = new Map();  // stream id -> {card, img, badge, fps, note}

function stopLive() {
  clearTimeout(pollTimer);
  pollTimer = 0;
  // Closing the MJPEG connections: the server stops encoding for us.
  for (const c of cards.values()) c.img.removeAttribute('src');
  cards.clear();
  $('streams').replaceChildren();
}

async function showLive() {
  clearTimeout(pollTimer);
  try {
    const data = await api('GET', '/v1/streams');
    renderStreams(data.items || data.streams || []);
  } catch (e) {
    if (e.status === 401) return showLogin();
    $('streams').replaceChildren(el('p', {class: 'hint', text: 'Streams: ' + e.message}));
  }
  pollTimer = setTimeout(showLive, kPollMs);
}

const kDead = new Set(['failed', 'ended', 'stopped', 'stalled']);

function renderStreams(streams) {
  if (!streams.length && !cards.size) {
    $('streams').replaceChildren(el('p', {class: 'hint', text: 'No streams yet.'}));
  }
  const seen = new Set();
  for (const s of streams) {
    seen.add(s.id);
    let c = cards.get(s.id);
    if (!c) {
      if (!cards.size) $('streams').replaceChildren();
      c = makeCard(s.id);
      cards.set(s.id, c);
      $('streams').append(c.card);
    }
    const dead = kDead.has(s.state);
    c.badge.textContent = s.state;
    c.badge.className = 'badge ' + s.state;
    c.fps.textContent = `${Number(s.fps || 0).toFixed(1)} fps`;
    c.card.dataset.state = s.state;
    c.note.hidden = !dead;
    c.img.hidden = dead;
    if (dead) {
      c.note.textContent = `Stream ${s.state}` + (s.last_error ? `: ${s.last_error}` : '');
      c.img.removeAttribute('src');
    } else if (!c.img.getAttribute('src') && liveCount() < kMaxMjpeg) {
      c.img.src = `/v1/streams/${encodeURIComponent(s.id)}/mjpeg`;
    }
  }
  for (const [id, c] of cards) {
    if (!seen.has(id)) {
      c.img.removeAttribute('src');
      c.card.remove();
      cards.delete(id);
    }
  }
}

function liveCount() {
  let n = 0;
  for (const c of cards.values()) if (c.img.getAttribute('src')) n++;
  return n;
}

function makeCard(id) {
  const badge = el('span', {class: 'badge'});
  const fps = el('span', {class: 'hint'});
  const img = el('img', {alt: `Live view of ${id}: faces boxed with track id, name and liveness`});
  const note = el('div', {class: 'dead-note', role: 'status', hidden: true});
  const card = el('article', {class: 'stream', 'data-stream': id, 'aria-label': `Stream ${id}`},
                  el('header', {}, el('strong', {text: id}), fps, badge), img, note);
  return {card, img, badge, fps, note};
}

$('stream-form').addEventListener('submit', async ev => {
  ev.preventDefault();
  $('stream-error').textContent = '';
  const spec = {id: $('stream-id').value.trim(), uri: $('stream-uri').value.trim()};
  // Loop and pace apply to files only (the server refuses them for rtsp://, http://, ...).
  // Paced, a file plays like a camera; unpaced it runs as fast as the CPU allows (a benchmark,
  // not a live view: hundreds of fps and short-lived tracks).
  const isFile = !/^[a-z][a-z0-9+.-]*:\/\//i.test(spec.uri) || /^file:/i.test(spec.uri);
  if (isFile && $('stream-loop').checked) spec.loop = true;
  if (isFile && $('stream-pace').checked) spec.pace = true;
  try {
    await api('POST', '/v1/streams', {json: spec});
    say(`Stream ${spec.id} added.`);
    ev.target.reset();
    showLive();
  } catch (e) {
    $('stream-error').textContent = e.message;
  }
});

// ---- recent events (SSE) -------------------------------------------------------------------

let source = null;
const kTypes = ['recognized', 'unknown_face', 'spoof_detected', 'track_started', 'track_ended',
                'stream_state', 'sighting'];

function disconnectEvents() {
  if (source) source.close();
  source = null;
}

function connectEvents() {
  disconnectEvents();
  if (!can('events')) {
    $('events-state').textContent = 'This key cannot watch events (scope "events").';
    return;
  }
  source = new EventSource('/v1/events');  // the browser resumes with Last-Event-ID itself
  source.onopen = () => { $('events-state').textContent = 'Live.'; };
  source.onerror = () => { $('events-state').textContent = 'Reconnecting...'; };
  for (const t of kTypes) source.addEventListener(t, ev => onEvent(t, ev.data));
}

function eventText(type, e) {
  const d = e.data || {};
  switch (type) {
    case 'recognized': return `${d.display_name || d.subject_id} recognised (${Number(d.score).toFixed(2)})`;
    case 'unknown_face': return 'unknown person';
    case 'spoof_detected': return `spoof (liveness ${Number(d.liveness_score).toFixed(2)})`;
    case 'track_started': return 'face appeared';
    case 'track_ended': return 'face left';
    case 'stream_state': return `stream ${d.state || ''}`;
    case 'sighting': {
      const s = e.sighting || {};
      return `sighting: ${s.display_name || s.subject_id || (s.stranger_id ? 'stranger ' + s.stranger_id : s.outcome)}`;
    }
    default: return type;
  }
}

function onEvent(type, data) {
  let e;
  try { e = JSON.parse(data); } catch { return; }
  if (type === 'track_started' || type === 'track_ended') return;  // noise for an operator
  const stream = e.stream_id || (e.sighting && e.sighting.stream) || '';
  const li = el('li', {'data-type': type, class: type},
                el('time', {text: fmtTime(e.timestamp_ms || e.timestamp)}),
                el('span', {class: 'badge ' + (type === 'recognized' ? 'known' : type === 'spoof_detected' ? 'spoof' : 'unknown'),
                            text: stream + (e.track_id ? ' #' + e.track_id : '')}),
                ' ', eventText(type, e));
  const list = $('event-list');
  list.prepend(li);
  while (list.children.length > kMaxEvents) list.lastElementChild.remove();
}

start();
