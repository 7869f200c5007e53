"""HTML for clips: the search grid, the annotation player and feed previews.

Everything people typed or files named is escaped here; clips are fetched by key from the
app's own clip route, never by path.
"""
from __future__ import annotations

import uuid
from html import escape
from urllib.parse import quote

CLIP_ROUTE = "/va/clip"


def clip_url(clip_key: str) -> str:
    return f"{CLIP_ROUTE}?key={quote(clip_key, safe='')}"


def _fmt_s(value) -> str:
    return "?" if value is None else f"{value:.1f}s"


def meta_line(item: dict) -> str:
    parts = []
    if item.get("video_id"):
        parts.append(str(item["video_id"]))
    if item.get("start_s") is not None:
        parts.append(f"{_fmt_s(item.get('start_s'))}–{_fmt_s(item.get('end_s'))}")
    if item.get("score") is not None:
        parts.append(f"score {item['score']:.3f}")
    if item.get("source"):
        parts.append(str(item["source"]).replace("_", " "))
    return " · ".join(parts)


def _media(item: dict, big: bool = False) -> str:
    key = item["clip_key"]
    if item.get("playable"):
        # Muted autoplay is what browsers allow without a click; loop keeps a short shot in view.
        # The frame rate lets the Annotate desk step one frame.
        fps = _fps(item)
        rate = f' data-fps="{fps:.3f}"' if fps else ""
        return (f'<video class="va-video{" va-big" if big else ""}" src="{escape(clip_url(key))}"{rate} '
                'autoplay muted loop playsinline preload="auto"></video>')
    return ('<div class="va-novideo">'
            f'<div class="va-novideo-key">{escape(key)}</div>'
            f'<div class="va-novideo-why">no video: {escape(item.get("reason") or "unavailable")}</div>'
            '</div>')


def _fps(item: dict) -> float | None:
    frames = (item.get("frame_out") or 0) - (item.get("frame_in") or 0) + 1
    seconds = (item.get("end_s") or 0) - (item.get("start_s") or 0)
    return frames / seconds if item.get("frame_out") is not None and seconds > 0 and frames > 1 else None


def _state_class(value, unsure: bool = False) -> str:
    if unsure and value is None:
        return " va-unsure"
    return {True: " va-yes", False: " va-no"}.get(value, "")


def grid(items: list[dict], empty: str = "No clips.", actions: bool = True, like: bool = True,
         pins: bool = False) -> str:
    """Cards of clips that play; each with Yes / No / Unsure buttons showing the current answer.

    A card takes the keyboard focus (Tab, or the arrow keys from one card to the next) and
    Y, N or ? answers the focused card (GRID_JS). ``pins``: buttons that pin the clip as a
    yes or no example of the label's guidelines.
    """
    if not items:
        return f'<div class="va-empty">{escape(empty)}</div>'
    cards = []
    for item in items:
        key = item["clip_key"]
        buttons = ""
        if actions:
            buttons = ('<div class="va-actions">'
                       '<button class="va-btn va-btn-yes" data-value="true" title="positive (Y)">Yes</button>'
                       '<button class="va-btn va-btn-no" data-value="false" title="negative (N)">No</button>'
                       '<button class="va-btn va-btn-unsure" data-value="unsure" title="not sure (?)">?</button>'
                       + ('<button class="va-btn va-btn-like" data-like="1" title="search by this clip">More like this'
                          '</button>' if like else '') + '</div>')
            if pins:
                buttons += ('<div class="va-actions va-pins">'
                            '<button class="va-btn va-pin" data-pin="yes" title="pin as a yes example">Pin as yes example</button>'
                            '<button class="va-btn va-pin" data-pin="no" title="pin as a no example">Pin as no example</button>'
                            '</div>')
        focusable = ' tabindex="0"' if actions else ""
        extra = ""
        if item.get("votes"):
            extra += f'<span class="va-meta va-votes">{escape(item["votes"])}</span>'
        if item.get("trained_on") is False:
            extra += '<span class="va-meta">labelled after this model was trained</span>'
        cards.append(
            f'<div class="va-card{_state_class(item.get("value"), item.get("unsure", False))}" '
            f'data-key="{escape(key)}" data-source="{escape(str(item.get("source") or ""))}"'
            f'{focusable}>'
            f'{_media(item)}'
            f'<div class="va-cap"><span class="va-key">{escape(key)}</span>'
            f'<span class="va-meta">{escape(meta_line(item))}</span>{extra}</div>'
            f'{buttons}</div>'
        )
    return f'<div class="va-grid">{"".join(cards)}</div>'


def guide(view: dict | None, unpin: bool = True) -> str:
    """A label's guideline text and its pinned yes and no example clips (small, looping)."""
    if not view:
        return ""
    text = escape(view.get("text") or "").replace("\n", "<br>")
    head = (f'<div class="va-guide-text">{text}</div>' if text else
            '<div class="va-guide-text va-empty-guide">No guidelines yet for this label: write them in the Label '
            'tab, and pin example clips with the pin buttons.</div>')

    def examples(kind: str) -> str:
        items = view.get(kind) or []
        if not items:
            return ""
        cards = "".join(
            f'<div class="va-example va-example-{kind}" data-key="{escape(i["clip_key"])}">{_media(i)}'
            f'<div class="va-cap"><span class="va-key">{escape(i["clip_key"])}</span>'
            + (f'<span class="va-meta">{escape(i["note"])}</span>' if i.get("note") else "")
            + (f'<button class="va-unpin" data-key="{escape(i["clip_key"])}" title="unpin">unpin</button>'
               if unpin else "") + '</div></div>'
            for i in items)
        return f'<div class="va-examples"><h4>{kind} examples</h4><div class="va-example-row">{cards}</div></div>'

    return f'<div class="va-guide-box">{head}{examples("yes")}{examples("no")}</div>'


def player(item: dict | None, empty: str) -> str:
    """The one clip being annotated, large, looping."""
    if item is None:
        return f'<div class="va-player va-empty">{escape(empty)}</div>'
    vote = item.get("value")
    votes = ""
    if vote is not None or item.get("annotator_cnt"):
        votes = (f'<span class="va-votes">already labelled: {item.get("pos_cnt", 0)} yes of '
                 f'{item.get("annotator_cnt", 0)}</span>')
    return (f'<div class="va-player" data-key="{escape(item["clip_key"])}">{_media(item, big=True)}'
            f'{transition_marks(item)}'
            f'<div class="va-cap"><span class="va-key">{escape(item["clip_key"])}</span>'
            f'<span class="va-meta">{escape(meta_line(item))}</span>{votes}</div></div>')


def context(before: dict | None, after: dict | None) -> str:
    """The previous and next shots of a clip's video, small, for context."""
    def side(item, title):
        if item is None:
            return f'<div class="va-context-side va-empty">{escape(title)}: none (the video {"starts" if title == "before" else "ends"} here)</div>'
        return (f'<div class="va-context-side" data-key="{escape(item["clip_key"])}"><div class="va-context-title">'
                f'{escape(title)}</div>{_media(item)}</div>')

    return f'<div class="va-context-pair">{side(before, "before")}{side(after, "after")}</div>'


def transition_marks(item: dict) -> str:
    """A strip under the player with the clip's dissolves and fades where they fall in it."""
    length = (item.get("end_s") or 0) - (item.get("start_s") or 0)
    marks = item.get("transitions") or ()
    if not marks or length <= 0:
        return ""
    spans = "".join(
        f'<span class="va-mark va-{escape(kind)}" title="{escape(kind.replace("_", " "))} '
        f'{a:.2f}–{b:.2f} s" style="left:{100 * a / length:.1f}%;width:{max(100 * (b - a) / length, 1):.1f}%"></span>'
        for kind, a, b in marks)
    names = ", ".join(f"{k.replace('_', ' ')} {a:.1f}–{b:.1f} s" for k, a, b in marks)
    return f'<div class="va-marks" title="{escape(names)}">{spans}</div><div class="va-marks-text">{escape(names)}</div>'


def thumbnail(item: dict) -> str:
    """A small still of the clip (its first frame), playing while the pointer is on it.

    The clip route's own cut: loaded when the row scrolls into view (``REVIEW_JS``).
    """
    if not item.get("playable"):
        return f'<div class="va-thumb va-thumb-none" title="{escape(item.get("reason") or "no video")}">no video</div>'
    return (f'<video class="va-thumb" data-src="{escape(clip_url(item["clip_key"]))}" muted loop playsinline '
            'preload="none"></video>')


REVIEW_FIELDS = ("label", "yes", "votes", "annotators", "sources", "your vote", "changed")


def review_table(rows: list[dict], items: dict[str, dict], total: int, empty: str) -> str:
    """The label set as rows with thumbnails and check boxes; bulk changes act on the checked rows.

    ``rows``: :func:`va_ui.handlers.review_rows` rows (the first ``len(rows)`` of ``total``);
    ``items``: the clips' playability by key.
    """
    if not rows:
        return f'<div class="va-empty">{escape(empty)}</div>'
    more = (f' · showing the {len(rows)} most recently changed: narrow with the filters' if total > len(rows) else "")
    head = "".join(f"<th>{escape(f)}</th>" for f in REVIEW_FIELDS)
    body = []
    for r in rows:
        key = r["clip_key"]
        cells = "".join(f'<td class="va-col-{escape(f.replace(" ", "-"))}">{escape("" if r.get(f) is None else str(r[f]))}</td>'
                        for f in REVIEW_FIELDS)
        body.append(f'<tr data-key="{escape(key)}" class="va-row va-row-{escape(str(r.get("label")))}">'
                    f'<td><input type="checkbox" class="va-pick" aria-label="select {escape(key)}"></td>'
                    f'<td>{thumbnail(items.get(key, {"clip_key": key}))}</td>'
                    f'<td class="va-col-key">{escape(key)}</td>{cells}</tr>')
    # a new render token per table: the page unchecks every row when it changes, so a check
    # never stays on a row that now shows another clip
    return (f'<div class="va-review" data-render="{uuid.uuid4().hex}">'
            '<div class="va-bulk"><label><input type="checkbox" class="va-pick-all"> all shown</label>'
            '<span class="va-picked">0 selected</span>'
            '<button class="va-btn va-bulk-yes" data-bulk="true" disabled>Set selected to Yes</button>'
            '<button class="va-btn va-bulk-no" data-bulk="false" disabled>Set selected to No</button>'
            '<button class="va-btn va-bulk-unsure" data-bulk="unsure" disabled>Set selected to Unsure</button>'
            f'<span class="va-count">{total} clip{"s" if total != 1 else ""}{escape(more)}</span></div>'
            f'<table class="va-review-rows"><thead><tr><th></th><th>clip</th><th>clip key</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def feed_strip(name: str, items: list[dict]) -> str:
    title = escape(name.replace("_", " "))
    if not items:
        return f'<div class="va-strip"><h4>{title}</h4><div class="va-empty">empty</div></div>'
    return f'<div class="va-strip"><h4>{title}</h4>{grid(items, actions=False)}</div>'


CSS = """
.va-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 12px; }
.va-card { border: 2px solid var(--border-color-primary); border-radius: 8px; overflow: hidden;
           background: var(--background-fill-secondary); display: flex; flex-direction: column; }
.va-card.va-yes { border-color: #16a34a; box-shadow: 0 0 0 2px #16a34a55; }
.va-card.va-no { border-color: #dc2626; box-shadow: 0 0 0 2px #dc262655; }
.va-card.va-unsure { border-color: #d97706; box-shadow: 0 0 0 2px #d9770655; }
.va-card:focus { outline: 3px solid #2563eb; outline-offset: 2px; }
.va-card.va-unsure .va-btn-unsure { background: #d97706; color: white; }
.va-btn-unsure { flex: 0.5; }
.va-guide-box { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin-bottom: 8px; }
.va-guide-text { white-space: normal; margin-bottom: 6px; }
.va-empty-guide { opacity: 0.7; font-size: 0.9em; }
.va-examples h4 { margin: 4px 0; font-size: 0.85em; text-transform: capitalize; }
.va-example-row { display: flex; gap: 8px; overflow-x: auto; }
.va-example { width: 150px; flex: none; border-radius: 6px; overflow: hidden; border: 2px solid #9ca3af; }
.va-example-yes { border-color: #16a34a; } .va-example-no { border-color: #dc2626; }
.va-example .va-cap { font-size: 0.75em; }
.va-unpin { font-size: 0.8em; cursor: pointer; text-decoration: underline; background: none; border: none; padding: 0; }
.va-video { width: 100%; aspect-ratio: 16 / 9; background: #000; display: block; object-fit: contain; }
.va-video.va-big { max-height: 46vh; }
.va-novideo { aspect-ratio: 16 / 9; display: flex; flex-direction: column; justify-content: center;
              align-items: center; gap: 6px; background: repeating-linear-gradient(45deg, #1f2937, #1f2937 10px,
              #273244 10px, #273244 20px); color: #e5e7eb !important; padding: 8px; text-align: center;
              overflow: hidden; box-sizing: border-box; }
.va-novideo div { color: #e5e7eb !important; }
.va-player .va-novideo { min-height: 30vh; }
.va-novideo-key { font-family: monospace; font-weight: 600; word-break: break-all; }
.va-novideo-why { font-size: 0.85em; opacity: 0.8; }
.va-marks { position: relative; height: 6px; background: var(--border-color-primary); }
.va-mark { position: absolute; top: 0; height: 6px; background: #f59e0b; }
.va-mark.va-fade_black { background: #111827; } .va-mark.va-fade_white { background: #e5e7eb; }
.va-marks-text { font-size: 0.8em; opacity: 0.75; padding: 2px 8px; }
.va-cap { padding: 6px 8px; display: flex; flex-direction: column; gap: 2px; font-size: 0.85em; }
.va-key { font-family: monospace; word-break: break-all; }
.va-meta, .va-votes { opacity: 0.75; }
.va-actions { display: flex; gap: 6px; padding: 0 8px 8px; }
.va-btn { flex: 1; padding: 6px 0; border-radius: 6px; border: 1px solid var(--border-color-primary);
          cursor: pointer; font-weight: 600; background: var(--button-secondary-background-fill); }
.va-btn-like { flex: 1.6; font-weight: 500; }
.va-card.va-yes .va-btn-yes { background: #16a34a; color: white; }
.va-card.va-no .va-btn-no { background: #dc2626; color: white; }
.va-player { border-radius: 8px; overflow: hidden; background: #000; }
.va-player .va-cap { background: var(--background-fill-secondary); }
.va-empty { padding: 24px; text-align: center; opacity: 0.7; }
.va-context-pair { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; margin-top: 6px; }
.va-context-side .va-video { max-height: 18vh; }
.va-context-title { font-size: 0.8em; opacity: 0.75; }
.va-strip h4 { margin: 8px 0; text-transform: capitalize; }
.va-strip .va-grid { grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); }
.va-bulk { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; padding: 4px 0 8px; }
.va-bulk .va-btn { flex: 0 0 auto; padding: 4px 10px; }
.va-bulk .va-btn:disabled { opacity: 0.4; cursor: default; }
.va-count, .va-picked { opacity: 0.75; font-size: 0.9em; }
.va-review { max-height: 70vh; overflow: auto; }
.va-review-rows { border-collapse: collapse; width: 100%; font-size: 0.85em; }
.va-review-rows th { position: sticky; top: 0; background: var(--background-fill-secondary); text-align: left;
                     padding: 4px 6px; z-index: 1; }
.va-review-rows td { padding: 3px 6px; border-top: 1px solid var(--border-color-primary); vertical-align: middle; }
.va-review-rows tr.va-row { cursor: pointer; }
.va-review-rows tr.va-row:hover { background: var(--background-fill-secondary); }
.va-review-rows tr.va-current { outline: 2px solid #2563eb; outline-offset: -2px; }
.va-col-key { font-family: monospace; word-break: break-all; }
.va-col-changed { white-space: nowrap; }
.va-row-conflict .va-col-label { color: #b45309; font-weight: 600; }
.va-thumb { width: 96px; aspect-ratio: 16 / 9; background: #000; display: block; object-fit: contain; }
.va-thumb-none { font-size: 0.75em; color: #e5e7eb; display: flex; align-items: center; justify-content: center; }
#va-yes button, button#va-yes { background: #16a34a; color: white; }
#va-no button, button#va-no { background: #dc2626; color: white; }
.va-keys kbd { border: 1px solid #9ca3af; border-radius: 4px; padding: 0 5px; font-family: monospace; }
.va-banner { background: #fef3c7; color: #78350f; padding: 6px 10px; border-radius: 6px; }
"""

# Keyboard shortcuts for the Annotate part. They click the visible buttons, so a key does
# exactly what the button does, and they stay quiet while someone types in a text field.
KEYS_JS = """
<script>
(() => {
  const map = { b: 'va-build' };  // Y, N, S, Space and U belong to the Annotate desk (va_ui/desk.py)
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;
    if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
    const id = map[e.key.toLowerCase()];
    if (!id) return;
    const button = document.getElementById(id);
    if (!button || button.offsetParent === null || button.disabled) return;
    e.preventDefault();
    button.click();
  });
})();
</script>
"""

GRID_JS = """
function answer(card, raw) {
  // marks the card at once; the server's answer (or refusal) follows
  const unsure = raw === 'unsure';
  const value = unsure ? null : raw === 'true';
  card.classList.remove('va-yes', 'va-no', 'va-unsure');
  card.classList.add(unsure ? 'va-unsure' : (value ? 'va-yes' : 'va-no'));
  // each card's answer is a request of its own and two can arrive in either order: the press's
  // number tells the server which came last (va_ui.tabs.page.ANSWER_ORDER)
  window.vaAnswerSeq = (window.vaAnswerSeq || 0) + 1;
  trigger('click', { clip_key: card.dataset.key, value: value, unsure: unsure, source: card.dataset.source,
                     seq: window.vaAnswerSeq });
}
element.addEventListener('click', (ev) => {
  const like = ev.target.closest('button[data-like]');
  if (like) { trigger('like', { clip_key: like.closest('[data-key]').dataset.key }); return; }
  const pin = ev.target.closest('button[data-pin]');
  if (pin) { trigger('edit', { clip_key: pin.closest('[data-key]').dataset.key, pin: pin.dataset.pin }); return; }
  const button = ev.target.closest('button[data-value]');
  if (!button) return;
  answer(button.closest('[data-key]'), button.dataset.value);
});
// the keyboard: a focused card is answered with Y, N or ?, and the arrow keys move the focus
const KEYS = {y: 'true', n: 'false', '?': 'unsure', '/': 'unsure'};
element.addEventListener('keydown', (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
  const card = ev.target.closest && ev.target.closest('.va-card[data-key]');
  if (!card || ev.target !== card) return;
  const key = ev.key.toLowerCase();
  if (key in KEYS) { ev.preventDefault(); ev.stopPropagation(); answer(card, KEYS[key]); return; }
  const cards = [...element.querySelectorAll('.va-card[data-key]')];
  const step = {arrowright: 1, arrowdown: 1, arrowleft: -1, arrowup: -1}[key];
  if (step) {
    ev.preventDefault();
    const next = cards[Math.min(Math.max(cards.indexOf(card) + step, 0), cards.length - 1)];
    if (next) next.focus();
  }
});
"""

# The Review table: a click on a row shows its clip (select), the check boxes pick rows for a
# bulk change (submit carries the keys checked at the moment of the press), thumbnails load
# when they scroll into view and play under the pointer.
REVIEW_JS = """
const seen = new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (!e.isIntersecting) continue;
    const v = e.target;
    if (!v.src) { v.preload = 'metadata'; v.src = v.dataset.src; }
    seen.unobserve(v);
  }
});
const picked = () => [...element.querySelectorAll('tr[data-key] .va-pick:checked')]
  .map((b) => b.closest('tr').dataset.key);
let render = null;
const refresh = () => {
  const table = element.querySelector('.va-review');
  if (table && table.dataset.render !== render) {
    render = table.dataset.render;
    element.querySelectorAll('.va-pick, .va-pick-all').forEach((b) => { b.checked = false; });
  }
  const n = picked().length;
  const label = element.querySelector('.va-picked');
  // only a real change is written: the observer below sees text changes (no loop)
  if (label && label.textContent !== n + ' selected') label.textContent = n + ' selected';
  element.querySelectorAll('button[data-bulk]').forEach((b) => { b.disabled = n === 0; });
  element.querySelectorAll('video.va-thumb[data-src]:not([src])').forEach((v) => seen.observe(v));
};
new MutationObserver(refresh).observe(element, { childList: true, subtree: true, attributes: true,
                                                 attributeFilter: ['data-render'] });
refresh();
element.addEventListener('change', (ev) => {
  if (ev.target.classList.contains('va-pick-all')) {
    element.querySelectorAll('tr[data-key] .va-pick').forEach((b) => { b.checked = ev.target.checked; });
  }
  refresh();
});
element.addEventListener('click', (ev) => {
  const bulk = ev.target.closest('button[data-bulk]');
  if (bulk) {
    const unsure = bulk.dataset.bulk === 'unsure';
    trigger('submit', { clip_keys: picked(), value: unsure ? null : bulk.dataset.bulk === 'true', unsure });
    return;
  }
  if (ev.target.closest('input, label')) return;
  const row = ev.target.closest('tr[data-key]');
  if (!row) return;
  element.querySelectorAll('tr.va-current').forEach((r) => r.classList.remove('va-current'));
  row.classList.add('va-current');
  trigger('select', { clip_key: row.dataset.key });
});
element.addEventListener('mouseover', (ev) => {
  const v = ev.target.closest('video.va-thumb');
  if (v && v.src) v.play().catch(() => {});
});
element.addEventListener('mouseout', (ev) => {
  const v = ev.target.closest('video.va-thumb');
  if (v) v.pause();
});
"""
