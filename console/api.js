// The console's HTTP client and small DOM helpers. Every call goes with the session cookie
// (same origin) and the CSRF header the server requires for cookie-authenticated writes.

export class ApiError extends Error {
  constructor(status, code, message, field, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || '';
    this.details = details || {};
  }
}

/** api('GET', '/v1/subjects', {query: {limit: 50}}); {json} or {form: FormData} for bodies. */
export async function api(method, path, {query, json, form} = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  const headers = {'X-Requested-With': 'facegate-console', 'Accept': 'application/json'};
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form) {
    body = form;  // the browser sets multipart/form-data with its boundary
  }
  let resp;
  try {
    resp = await fetch(url, {method, headers, body, credentials: 'same-origin'});
  } catch (e) {
    throw new ApiError(0, 'network', 'The server cannot be reached (' + e.message + ').');
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(resp.status, err.code || 'http_' + resp.status,
                       err.message || resp.statusText || 'request failed', err.field, err);
  }
  return data;
}

/** el('li', {class: 'x', text: 'hi'}, child...): a DOM element (text, never HTML: no injection). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export function $(id) { return document.getElementById(id); }

export function say(text) { $('status').textContent = text; }

export function fmtTime(t) {
  const d = typeof t === 'number' ? new Date(t) : new Date(t || Date.now());
  return isNaN(d) ? String(t) : d.toLocaleString(undefined, {dateStyle: 'short', timeStyle: 'medium'});
}

const kMaxUploadBytes = 16 * 1024 * 1024;  // the server's default limits.max_body_bytes

/** A message for a file the server would refuse, checked before uploading ('' = fine). */
export function checkImageFile(file) {
  if (!file.type.startsWith('image/')) {
    return `${file.name} is not an image (${file.type || 'unknown type'}): choose a JPEG or PNG photo.`;
  }
  if (file.size > kMaxUploadBytes) {
    return `${file.name} is too large (${(file.size / 1048576).toFixed(1)} MB; at most 16 MB).`;
  }
  return '';
}

const kReasons = {
  no_face: 'no face was found',
  multiple_faces: 'it shows several faces: use a photo of this person alone',
  too_small: 'the face is too small',
  too_blurry: 'the photo is too blurry',
  too_dark: 'the photo is too dark',
  too_bright: 'the photo is too bright',
  extreme_pose: 'the head is turned too far',
  duplicate_of_other_subject: 'this face is already enrolled as someone else',
};

/** One refused photo in words; the face count comes from the server's detail ("50 faces ..."). */
function reasonText(r) {
  const n = /(\d+) faces/.exec(r.detail || '');
  if (r.reason === 'multiple_faces' && n) {
    return `${n[1]} faces were found in it: use a photo of this person alone (or crop it to their face)`;
  }
  return kReasons[r.reason] || r.reason;
}

const mb = bytes => (bytes / 1048576).toFixed(bytes < 10 * 1048576 ? 1 : 0) + ' MB';

/** The operator's message for an upload error, from the API's stable error codes. */
export function uploadMessage(e) {
  switch (e.code) {
    case 'invalid_image': return 'That file is not an image the server can read (JPEG, PNG, ...).';
    case 'payload_too_large': {
      const max = /exceeds (\d+) bytes/.exec(e.message);
      return 'The upload is too large for the server' + (max ? ` (at most ${mb(Number(max[1]))} per request)` : '') +
             ': choose a smaller photo, or fewer photos at once.';
    }
    case 'too_many_faces': {
      const m = /has (\d+) faces; at most (\d+)/.exec(e.message);
      return (m ? `The photo has ${m[1]} faces; the server answers at most ${m[2]} per photo` : 'The photo has too many faces') +
             ': crop it to the people you are looking for and try again.';
    }
    case 'unsupported_media_type': return 'The server does not accept this kind of file.';
    case 'too_many_images': return e.message;
    case 'enrollment_rejected': {
      const rej = (e.details.rejected || []).map(r => '- ' + reasonText(r));
      return 'No photo was enrolled.\n' + rej.join('\n');
    }
    case 'overloaded': return 'The server is busy: try again in a moment.';
    // A server refusing a large body may close the connection before the browser has sent it.
    case 'network': return 'The upload did not reach the server (the connection closed). ' +
                           'If the file is large, the server may refuse it: try a smaller photo.';
    default: return e.message;
  }
}
