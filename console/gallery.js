// Gallery page: subjects (paged, searched), enroll from photos, rename, delete.
import {api, el, $, say, checkImageFile, uploadMessage} from '/console/api.js';
import {can} from '/console/app.js';

const kPage = 50;
let after = '';        // cursor of the page shown
let next = null;       // cursor of the next page
let rows = [];         // subjects of the page shown

export async function showGallery() {
  await loadPage('');
}

async function loadPage(cursor) {
  try {
    const page = await api('GET', '/v1/subjects', {query: {limit: kPage, after: cursor}});
    after = cursor;
    next = page.next;
    rows = page.items;
    render(rows);
  } catch (e) {
    $('subject-rows').replaceChildren(el('tr', {}, el('td', {colspan: 4, text: e.message})));
  }
  $('subjects-next').disabled = !next;
  $('subjects-first').disabled = !after;
}

function render(items) {
  const body = $('subject-rows');
  if (!items.length) {
    body.replaceChildren(el('tr', {}, el('td', {colspan: 4, class: 'hint', text: 'No subjects.'})));
    return;
  }
  body.replaceChildren(...items.map(s => el('tr', {'data-subject': s.id},
      el('td', {text: s.id}), el('td', {text: s.display_name}), el('td', {text: String(s.face_count)}),
      el('td', {}, el('button', {type: 'button', text: can('enroll') ? 'Edit' : 'Open',
                                 'aria-label': `Edit ${s.display_name || s.id}`, onclick: () => edit(s)})))));
}

$('subjects-next').addEventListener('click', () => next && loadPage(next));
$('subjects-first').addEventListener('click', () => loadPage(''));

// Search: the page's subjects by id or name; an exact id not on the page is fetched.
$('subject-search').addEventListener('submit', async ev => {
  ev.preventDefault();
  const q = $('subject-q').value.trim().toLowerCase();
  if (!q) return render(rows);
  const found = rows.filter(s => s.id.toLowerCase().includes(q) || (s.display_name || '').toLowerCase().includes(q));
  if (!found.length) {
    try { found.push(await api('GET', '/v1/subjects/' + encodeURIComponent($('subject-q').value.trim()))); } catch { /* none */ }
  }
  render(found);
  say(`${found.length} subject(s) found.`);
});

$('enroll-form').addEventListener('submit', async ev => {
  ev.preventDefault();
  const out = $('enroll-error');
  out.textContent = '';
  const id = $('enroll-id').value.trim();
  const name = $('enroll-name').value.trim();
  const files = [...$('enroll-photos').files];
  if (!files.length) return void (out.textContent = 'Choose at least one photo.');
  if (files.length > 10) return void (out.textContent = 'At most 10 photos at once.');
  const bad = files.map(checkImageFile).filter(Boolean);
  if (bad.length) return void (out.textContent = bad.join('\n'));
  const button = ev.submitter || ev.target.querySelector('button');
  button.disabled = true;
  say(`Enrolling ${id}...`);
  let created = false;
  try {
    try {
      await api('POST', '/v1/subjects', {json: {id, display_name: name || id}});
      created = true;
    } catch (e) {
      if (e.status !== 409) throw e;  // exists: add the photos to it
    }
    const form = new FormData();
    for (const f of files) form.append('images', f, f.name);  // the field the API takes
    const res = await api('POST', `/v1/subjects/${encodeURIComponent(id)}/faces`, {form});
    const rejected = (res.rejected || []).length;
    say(`${name || id} enrolled from ${(res.face_ids || res.faces || []).length} photo(s)` +
        (rejected ? `; ${rejected} photo(s) refused.` : '.'));
    ev.target.reset();
    loadPage(after);
  } catch (e) {
    out.textContent = uploadMessage(e);
    say('');
    // A subject created for photos that were all refused is removed again.
    if (created) api('DELETE', '/v1/subjects/' + encodeURIComponent(id)).catch(() => {});
  } finally {
    button.disabled = false;
  }
});

let editing = null;

function edit(s) {
  editing = s;
  $('subject-edit').hidden = false;
  $('edit-id').textContent = s.id;
  $('edit-name').value = s.display_name;
  $('edit-name').readOnly = !can('enroll');
  $('edit-error').textContent = '';
  $('edit-name').focus();
}

$('subject-edit').addEventListener('submit', async ev => {
  ev.preventDefault();
  try {
    await api('PATCH', '/v1/subjects/' + encodeURIComponent(editing.id), {json: {display_name: $('edit-name').value.trim()}});
    say(`Renamed ${editing.id}.`);
    loadPage(after);
  } catch (e) {
    $('edit-error').textContent = e.message;
  }
});

$('edit-delete').addEventListener('click', async () => {
  if (!editing || !confirm(`Delete ${editing.display_name || editing.id} and all their faces?`)) return;
  try {
    await api('DELETE', '/v1/subjects/' + encodeURIComponent(editing.id));
    say(`Deleted ${editing.id}.`);
    $('subject-edit').hidden = true;
    loadPage('');
  } catch (e) {
    $('edit-error').textContent = e.message;
  }
});

$('edit-close').addEventListener('click', () => { $('subject-edit').hidden = true; });
