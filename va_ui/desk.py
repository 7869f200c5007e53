"""The Annotate desk: the page keeps the queue, so no key press waits for the server or is lost.

Its markup and script live here; its server side is :mod:`va_ui.annotate`, reached through
the component's server functions (``clips``, ``save_answer``, ``undo_answer``, see
va_ui/app.py). In the page:

- clips come in batches and the next few are cut and buffered before they are needed, so
  a press shows the next clip at once;
- every press becomes an operation in a queue, applied in order, one at a time, each to
  the clip it was pressed on and with the provenance that clip came with; "saving n" says
  how many are on their way, and a failed save stays on screen (with Retry) until it is
  saved;
- Undo walks back through the same history: an answer not sent yet is dropped, one sent
  or saved is taken back by an undo queued after it; the clip comes back on screen;
- an answer is yes (Y), no (N) or unsure (?): unsure queues like the others;
- the label's guidelines and pinned examples stay in view above the clip; the clip on
  screen can be pinned as a yes or no example.

The label picker tells the desk its label in the page (``setLabel``, no server round trip,
so a Start right after picking a label is for that label); a new label resets the desk
(answers still on their way are saved).
"""
from __future__ import annotations

from html import escape

from va_core import sources


def template() -> str:
    picker = [sources.source(name) for name in sources.source_names()]
    options = "".join(f'<option value="{escape(s.name)}" title="{escape(s.description)}">{escape(s.title)}</option>'
                      for s in picker)
    return (
        '<div class="va-desk">'
        '<div class="va-desk-bar"><label>Clips from <select class="va-source" aria-label="Clips from">'
        f'{options}</select></label><button class="va-start lg primary">Start</button>'
        '<span class="va-saving" aria-live="polite"></span></div>'
        '<div class="va-guide" hidden></div>'
        '<div class="va-stage"><div class="va-player va-empty">Pick a label above, then press Start.</div></div>'
        '<div class="va-transport" aria-live="polite"></div>'
        '<div class="va-context" hidden></div>'
        '<div class="va-answers">'
        '<button class="va-ans" id="va-yes" data-op="yes">Yes  (Y)</button>'
        '<button class="va-ans" id="va-no" data-op="no">No  (N)</button>'
        '<button class="va-ans" id="va-unsure" data-op="unsure">Unsure  (?)</button>'
        '<button class="va-ans" id="va-skip" data-op="skip">Skip  (S)</button>'
        '<button class="va-ans" id="va-undo" data-op="undo">Undo  (U)</button>'
        '<button class="va-ans" id="va-like" data-op="like">More like this  (L)</button></div>'
        '<div class="va-pins"><button class="va-pin" data-pin="yes">Pin as yes example</button>'
        '<button class="va-pin" data-pin="no">Pin as no example</button></div>'
        '<div class="va-progress" id="va-progress"></div>'
        '<div class="va-failed" role="alert" hidden></div>'
        '<div class="va-buffer" aria-hidden="true"></div>'
        '</div>'
    )


CSS = """
.va-desk-bar { display: flex; gap: 12px; align-items: center; margin-bottom: 8px; flex-wrap: wrap; }
.va-desk-bar select { padding: 4px 8px; border-radius: 6px; }
.va-desk-bar .va-start { padding: 6px 18px; border-radius: 6px; font-weight: 600; cursor: pointer;
                         background: var(--button-primary-background-fill); color: var(--button-primary-text-color); }
.va-saving { font-size: 0.9em; opacity: 0.85; }
.va-saving.va-busy { color: #b45309; opacity: 1; font-weight: 600; }
.va-answers { display: flex; gap: 8px; margin-top: 8px; }
.va-answers #va-like { flex: 1.3; }
.va-answers .va-ans { flex: 1; padding: 10px 0; border-radius: 6px; font-weight: 600; cursor: pointer;
                      border: 1px solid var(--border-color-primary); background: var(--button-secondary-background-fill); }
.va-answers #va-yes { background: #16a34a; color: white; }
.va-answers #va-no { background: #dc2626; color: white; }
.va-answers #va-unsure { background: #d97706; color: white; }
.va-pins { display: flex; gap: 8px; margin-top: 6px; font-size: 0.85em; }
.va-pins .va-pin { padding: 3px 10px; border-radius: 6px; cursor: pointer; border: 1px solid var(--border-color-primary); }
.va-progress { margin-top: 6px; font-size: 0.9em; }
.va-transport { font-size: 0.85em; opacity: 0.8; font-family: monospace; margin-top: 4px; }
.va-failed { margin-top: 6px; padding: 8px 10px; border-radius: 6px; background: #fee2e2; color: #7f1d1d; }
.va-failed button { margin-left: 8px; padding: 2px 10px; border-radius: 4px; cursor: pointer; }
.va-buffer { position: absolute; width: 1px; height: 1px; overflow: hidden; opacity: 0; pointer-events: none; }
"""

# ``element``, ``props``, ``server`` and ``trigger`` are given by gr.HTML.
JS = r"""
const LOW = 6, BUFFERED = 3, KEEP_TIMINGS = 500;
const desk = window.vaDesk = {
  label: '', source: 'next', chosen: null, queue: [], current: null, hint: '',
  history: [], pending: [], failed: [], sending: false, fetching: null, generation: 0,
  skipped: new Set(), summary: null, refusal: '', timings: [], saves: [],
};
const $ = (sel) => element.querySelector(sel);
desk.label = pickedLabel();
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));

function typedName() {
  const box = document.querySelector('#va-name input, #va-name textarea');
  const shown = box && box.offsetParent !== null;
  return shown ? box.value.trim() : null;  // null: the login names the annotator
}

function nodeFor(item) {
  if (!item.node) {
    const box = document.createElement('div');
    box.innerHTML = item.html;
    item.node = box.firstElementChild;
    const video = item.node.querySelector('video');
    if (video) { video.removeAttribute('autoplay'); video.preload = 'auto'; }
  }
  return item.node;
}

function buffer() {
  // the next clips load in a hidden box, so showing one is moving an element that has its frames
  const box = $('.va-buffer');
  desk.queue.slice(0, BUFFERED).forEach((item) => { const n = nodeFor(item); if (n.parentNode !== box) box.appendChild(n); });
}

function message(text) {
  $('.va-stage').replaceChildren(Object.assign(document.createElement('div'), {className: 'va-player va-empty', textContent: text}));
}

// how the clip plays, kept from one clip to the next
const player = {rate: 1, loop: true, muted: true};
const RATES = [0.25, 0.5, 1, 1.5, 2];

function stageVideo() { return $('.va-stage video'); }

function transport() {
  const v = stageVideo();
  const line = $('.va-transport');
  if (!v) { line.textContent = ''; return; }
  const at = `${v.currentTime.toFixed(2)} / ${(v.duration || 0).toFixed(2)} s`;
  line.textContent = `${v.paused ? 'paused' : 'playing'} · ${player.rate}x · loop ${player.loop ? 'on' : 'off'} · `
    + `sound ${player.muted ? 'off' : 'on'} · ${at}`;
}

function control(op) {
  const v = stageVideo();
  if (!v) return false;
  const frame = 1 / (parseFloat(v.dataset.fps) || 25);
  const seek = (t) => { v.currentTime = Math.min(Math.max(t, 0), Math.max((v.duration || 0) - frame / 2, 0)); };
  if (op === 'play') { if (v.paused) Promise.resolve(v.play()).catch(() => {}); else v.pause(); }
  else if (op === 'back') seek(v.currentTime - 1);
  else if (op === 'forward') seek(v.currentTime + 1);
  else if (op === 'frame-') { v.pause(); seek(v.currentTime - frame); }
  else if (op === 'frame+') { v.pause(); seek(v.currentTime + frame); }
  else if (op === 'slower' || op === 'faster') {
    const i = RATES.indexOf(player.rate) + (op === 'faster' ? 1 : -1);
    player.rate = RATES[Math.min(Math.max(i, 0), RATES.length - 1)];
    v.playbackRate = player.rate;
  }
  else if (op === 'loop') { player.loop = !player.loop; v.loop = player.loop; }
  else if (op === 'sound') { player.muted = !player.muted; v.muted = player.muted; }
  transport();
  return true;
}

function context(on) {
  // the shots before and after the one on screen, from the same video
  const box = $('.va-context');
  const item = desk.current;
  box.querySelectorAll('video').forEach((v) => v.pause());
  if (!on || !item || !item.context) { box.hidden = true; box.replaceChildren(); return; }
  box.innerHTML = item.context;
  box.hidden = false;
  box.querySelectorAll('video').forEach((v) => Promise.resolve(v.play()).catch(() => {}));
}

function show(item) {
  context(false);
  const stage = $('.va-stage');
  stage.querySelectorAll('video').forEach((v) => v.pause());
  if (!item) {
    message(desk.fetching ? 'Loading clips…' : (desk.hint || (desk.label ? 'Press Start.' : 'Pick a label above, then press Start.')));
    return;
  }
  const node = nodeFor(item);
  stage.replaceChildren(node);
  const video = node.querySelector('video');
  if (video) {
    video.loop = player.loop; video.muted = player.muted; video.playbackRate = player.rate; video.controls = true;
    if (!video.vaWatched) {
      video.vaWatched = true;
      ['timeupdate', 'play', 'pause', 'seeked', 'loadedmetadata'].forEach((e) => video.addEventListener(e, transport));
    }
    Promise.resolve(video.play()).catch(() => {});
  }
  transport();
}

function render() {
  const n = desk.pending.filter((op) => op.kind === 'answer').length + desk.pending.filter((op) => op.kind === 'undo').length;
  const saving = $('.va-saving');
  saving.textContent = n ? `saving ${n}…` : (desk.history.some((op) => op.kind === 'answer') ? 'all saved' : '');
  saving.classList.toggle('va-busy', n > 0);
  const labelled = desk.history.filter((op) => op.kind === 'answer').length;
  const source = desk.source.replace(/_/g, ' ');
  const chose = desk.source === 'next' && desk.chosen ? ` (va chose <b>${esc(desk.chosen.replace(/_/g, ' '))}</b>)` : '';
  const counts = desk.summary ? ` · ${desk.summary.n_pos} yes · ${desk.summary.n_neg} no`
    + (desk.summary.n_unsure ? ` · ${desk.summary.n_unsure} unsure` : '') + ` in ${esc(desk.label)}` : '';
  $('.va-progress').innerHTML = desk.label && (desk.current || desk.history.length || desk.queue.length)
    ? `From <b>${esc(source)}</b>${chose} · <b>${labelled}</b> labelled this session · ${desk.queue.length} more queued${counts}`
      + (desk.note ? ` · ${esc(desk.note)}` : '')
    : '';
  const failed = $('.va-failed');
  failed.hidden = desk.failed.length === 0 && !desk.refusal;
  if (desk.refusal) failed.innerHTML = `<b>Not recorded</b>: ${esc(desk.refusal)}`;
  else if (desk.failed.length) {
    const last = desk.failed[desk.failed.length - 1];
    failed.innerHTML = `<b>${desk.failed.length} answer${desk.failed.length > 1 ? 's were' : ' was'} not saved</b>: `
      + `${esc(last.error)} <button class="va-retry">Retry</button>`;
  }
}

function advance() {
  desk.current = desk.queue.shift() || null;
  show(desk.current);
  buffer();
  if (desk.queue.length < LOW) fill();
}

function known() {
  const keys = new Set(desk.skipped);
  desk.queue.forEach((i) => keys.add(i.clip_key));
  if (desk.current) keys.add(desk.current.clip_key);
  desk.history.forEach((op) => keys.add(op.item.clip_key));
  return [...keys];
}

async function fill(fresh) {
  if (!desk.label || (desk.fetching && !fresh)) return desk.fetching;
  const generation = desk.generation;
  const ask = {label: desk.label, source: desk.source, exclude: known()};
  desk.fetching = (async () => {
    let res;
    try { res = await server.clips(ask); } catch (e) { res = {error: 'the server did not answer: ' + (e && e.message || e)}; }
    if (generation !== desk.generation) return;  // the label or source changed meanwhile
    desk.fetching = null;
    if (res.error) { desk.hint = res.error; desk.note = ''; if (!desk.current) show(null); render(); return; }
    desk.chosen = res.source;
    desk.hint = res.hint || '';
    if (res.hint && res.items.length) desk.note = res.hint;
    const have = new Set(known());
    desk.queue.push(...res.items.filter((i) => !have.has(i.clip_key)));
    if (!desk.current) advance(); else buffer();
    render();
  })();
  return desk.fetching;
}

function reset(label) {
  desk.generation += 1;
  desk.label = label || '';
  desk.queue.forEach((i) => i.node && i.node.remove());
  desk.queue = []; desk.current = null; desk.history = []; desk.skipped = new Set();
  desk.hint = ''; desk.note = ''; desk.chosen = null; desk.fetching = null; desk.summary = null;
}

function pickedLabel() {
  // the label picker's own field: the desk may be mounted after the label was picked
  const box = document.querySelector('#va-label input');
  return box ? box.value.trim() : desk.label;
}

function start() {
  reset(pickedLabel());
  if (!desk.label) { message('Pick a label above first: the answers are for it.'); render(); return; }
  desk.source = $('.va-source').value;
  desk.fetching = true;
  show(null);
  fill(true);
  guide();
}

desk.refill = () => {
  // after a build the feeds are new: keep the clip on screen, take the rest from them
  if (!desk.label || (!desk.current && !desk.queue.length && !desk.hint)) return;
  desk.generation += 1;
  desk.queue.forEach((i) => i.node && i.node.remove());
  desk.queue = []; desk.fetching = null;
  fill(true);
};

async function pump() {
  if (desk.sending) return;
  desk.sending = true;
  while (desk.pending.length) {
    const op = desk.pending[0];
    op.state = 'sending';
    render();
    const sent = performance.now();
    let res;
    try {
      res = op.kind === 'undo'
        ? await server.undo_answer({label: op.label, clip_key: op.item.clip_key, name: op.name})
        : await server.save_answer({label: op.label, clip_key: op.item.clip_key, name: op.name,
                                    value: op.value === 'unsure' ? null : op.value, unsure: op.value === 'unsure',
                                    source: op.item.source, provenance: op.item.provenance || {}});
    } catch (e) {
      res = {error: 'the server did not answer (' + (e && e.message || e) + ')'};
    }
    desk.pending.shift();
    if (res && res.error) {
      op.state = 'failed';
      op.error = res.error;
      desk.failed.push(op);
    } else {
      op.state = 'saved';
      desk.saves.push({kind: op.kind, round_trip_ms: performance.now() - sent, server_ms: res.ms});
      if (desk.saves.length > KEEP_TIMINGS) desk.saves.shift();
      if (op.label === desk.label) desk.summary = res.summary;
      trigger('saved', {label: op.label, kind: op.kind, clip_key: op.item.clip_key});
    }
    render();
  }
  desk.sending = false;
}

function enqueue(op) { desk.pending.push(op); pump(); }

function answer(value, pressed) {
  const item = desk.current;
  if (!item) { render(); return false; }
  if (value === null) {
    desk.skipped.add(item.clip_key);
    desk.history.push({kind: 'skip', item});
  } else {
    const name = typedName();
    if (name === '') {
      // refused here, before anything moves: the clip stays on screen
      desk.refusal = 'type your name at the top first: every label records who gave it';
      render();
      return false;
    }
    desk.refusal = '';
    const op = {kind: 'answer', item, value, label: desk.label, name, state: 'queued'};
    desk.history.push(op);
    enqueue(op);
  }
  desk.note = `${value === null ? 'skipped' : (value === 'unsure' ? 'unsure' : (value ? 'yes' : 'no'))}: ${item.clip_key}`;
  advance();
  render();
  return true;
}

function undo() {
  const op = desk.history.pop();
  if (!op) { desk.note = 'nothing to undo in this session'; render(); return false; }
  if (op.kind === 'skip') desk.skipped.delete(op.item.clip_key);
  else if (op.state === 'queued') desk.pending.splice(desk.pending.indexOf(op), 1);  // never sent: nothing to take back
  else if (op.state === 'failed') desk.failed.splice(desk.failed.indexOf(op), 1);
  else enqueue({kind: 'undo', item: op.item, label: op.label, name: op.name, state: 'queued'});
  if (desk.current) desk.queue.unshift(desk.current);
  desk.current = op.item;
  show(op.item);
  buffer();
  desk.note = `undone: ${op.item.clip_key}`;
  render();
  return true;
}

function timed(pressedAt, fn) {
  // what the expert waits: from the key press to the frame that shows the next clip
  const before = desk.current && desk.current.clip_key;
  if (!fn()) return;
  const shown = desk.current;
  const video = shown && shown.node && shown.node.querySelector('video');
  const ready = !video || video.readyState >= 2;
  requestAnimationFrame(() => setTimeout(() => {
    const t = {from: before, to: shown && shown.clip_key, shown_ms: performance.now() - pressedAt, had_frame: ready};
    desk.timings.push(t);
    if (desk.timings.length > KEEP_TIMINGS) desk.timings.shift();
    if (video && !ready) video.addEventListener('loadeddata', () => { t.frame_ms = performance.now() - pressedAt; }, {once: true});
    else t.frame_ms = t.shown_ms;
  }, 0));
}

async function like() {
  // "more like this": the unlabelled clips nearest to the one on screen come next
  const item = desk.current;
  if (!item) return;
  const generation = desk.generation;
  desk.note = `finding clips like ${item.clip_key}…`;
  render();
  let res;
  try { res = await server.clips({label: desk.label, source: 'similar', like: item.clip_key, exclude: known()}); }
  catch (e) { res = {error: 'the server did not answer: ' + (e && e.message || e)}; }
  if (generation !== desk.generation) return;
  if (res.error) { desk.note = res.error; render(); return; }
  const have = new Set(known());
  const fresh = res.items.filter((i) => !have.has(i.clip_key));
  desk.queue = desk.queue.filter((i) => !fresh.some((f) => f.clip_key === i.clip_key));
  desk.queue.unshift(...fresh);
  buffer();
  desk.note = fresh.length ? `${fresh.length} clips like ${item.clip_key} come next` : `nothing unlabelled is like ${item.clip_key}`;
  render();
}

async function guide() {
  // the label's guidelines and pinned examples, in view while answering
  const box = $('.va-guide');
  const label = desk.label;
  if (!label) { box.hidden = true; box.replaceChildren(); return; }
  let res;
  try { res = await server.guide({label}); } catch (e) { res = {error: 'the server did not answer: ' + (e && e.message || e)}; }
  if (label !== desk.label) return;
  box.hidden = false;
  if (res.error) { box.textContent = 'Guidelines not shown: ' + res.error; return; }
  box.innerHTML = res.html;
  box.querySelectorAll('video').forEach((v) => Promise.resolve(v.play()).catch(() => {}));
}

async function pin(value, key) {
  // pin the clip on screen (or unpin an example) in the label's guidelines
  const clip = key || (desk.current && desk.current.clip_key);
  if (!clip || !desk.label) return;
  const name = typedName();
  if (name === '') { desk.refusal = 'type your name at the top first: every change records who made it'; render(); return; }
  let res;
  try { res = await server.pin({label: desk.label, clip_key: clip, value, name}); }
  catch (e) { res = {error: 'the server did not answer: ' + (e && e.message || e)}; }
  if (res.error) { desk.note = res.error; render(); return; }
  const box = $('.va-guide');
  box.innerHTML = res.html; box.hidden = false;
  box.querySelectorAll('video').forEach((v) => Promise.resolve(v.play()).catch(() => {}));
  desk.note = value === null ? `unpinned ${clip}` : `pinned ${clip} as a ${value ? 'yes' : 'no'} example`;
  render();
}

const OPS = {yes: () => answer(true), no: () => answer(false), unsure: () => answer('unsure'), skip: () => answer(null),
             undo: () => undo()};
element.addEventListener('click', (e) => {
  const button = e.target.closest('button');
  if (!button) return;
  if (button.classList.contains('va-start')) start();
  else if (button.dataset.pin) pin(button.dataset.pin === 'yes');
  else if (button.classList.contains('va-unpin')) pin(null, button.dataset.key);
  else if (button.classList.contains('va-retry')) { const again = desk.failed.splice(0); again.forEach((op) => { op.state = 'queued'; enqueue(op); }); render(); }
  else if (button.dataset.op === 'like') like();
  else if (button.dataset.op) timed(performance.now(), OPS[button.dataset.op]);
});
element.addEventListener('change', (e) => { if (e.target.classList.contains('va-source')) start(); });

if (!window.vaDeskKeys) {
  window.vaDeskKeys = true;
  const keys = {y: 'yes', n: 'no', '?': 'unsure', '/': 'unsure', s: 'skip', ' ': 'skip', u: 'undo'};
  // the player, as in a video editor
  const controls = {k: 'play', arrowleft: 'back', arrowright: 'forward', ',': 'frame-', '.': 'frame+',
                    '[': 'slower', ']': 'faster', o: 'loop', m: 'sound'};
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;
    if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
    const key = e.key.toLowerCase();
    const root = document.querySelector('.va-desk');
    if (!(key in keys || key in controls || key === 'l' || key === 'c') || !root || root.offsetParent === null) return;
    e.preventDefault();
    if (key === 'l') window.vaDesk.like();
    else if (key === 'c') window.vaDesk.context(root.querySelector('.va-context').hidden);
    else if (key in keys) window.vaDesk.press(keys[key], e.timeStamp);
    else window.vaDesk.control(controls[key]);
  });
}
desk.control = control;
desk.guide = guide;
desk.pin = pin;
desk.like = like;
desk.context = context;
desk.press = (op, at) => timed(at === undefined ? performance.now() : at, OPS[op]);

desk.setLabel = (label) => {
  // a new label: its own session; answers on their way are still saved
  if ((label || '') === desk.label) return;
  reset(label);
  show(null);
  render();
  guide();
};
"""
