"""The labelling app: Label, Search, Annotate, Model and Review on one page.

This module only lays out components and wires them to :mod:`va_ui.handlers`; every
action goes through va_core. ``build_app(settings)`` returns the Blocks;
:mod:`va_ui.server` serves it with the clip route and the login.
"""
from __future__ import annotations

import functools
import threading

import gradio as gr
import polars as pl

from va_core.errors import VAError
from va_ui import handlers as h
from va_ui import panels, views

TITLE = "va · Video Annotator"
SOURCE_CHOICES = [
    ("next (let va choose)", "next"), ("top positives", "top_positive"), ("top negatives", "top_negative"),
    ("borderline", "borderline"), ("random", "random"),
    ("audit (measures the model on the corpus)", "audit"), ("zero-shot (description)", "zero_shot"),
]
KEYS_HELP = ('<div class="va-keys">Keys: <kbd>Y</kbd> yes · <kbd>N</kbd> no · <kbd>S</kbd>/<kbd>Space</kbd> skip · '
             '<kbd>U</kbd> undo · <kbd>B</kbd> build</div>')


def _ui(fn):
    """Refusals from va_core become a message on screen, not a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VAError as exc:
            raise gr.Error(str(exc), duration=8) from exc

    return wrapper


def _who(request: gr.Request | None, typed: str | None) -> str:
    return h.annotator_name(getattr(request, "username", None) if request else None, typed)


_session_locks: dict[str, threading.Lock] = {}
_session_locks_guard = threading.Lock()


def _session_lock(request: gr.Request | None) -> threading.Lock:
    """One lock per browser session: its key presses are handled one after another."""
    key = getattr(request, "session_hash", None) or ""
    with _session_locks_guard:
        return _session_locks.setdefault(key, threading.Lock())


def _forget_session(request: gr.Request) -> None:
    with _session_locks_guard:
        _session_locks.pop(getattr(request, "session_hash", None) or "", None)


# The key of the clip on screen travels with each answer, so a press meant for one clip
# can never label the next one.
SHOWN_KEY_JS = "(...args) => { args[0] = document.querySelector('#va-player [data-key]')?.dataset.key ?? ''; return args; }"


def build_app(settings) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as app:
        session = gr.State(h.Session())
        remembered_name = gr.BrowserState("", storage_key="va-annotator")

        with gr.Row(equal_height=True):
            gr.Markdown(f"## {TITLE}")
            label = gr.Dropdown(choices=h.label_choices(settings), value=None, label="Label",
                                info="what you are teaching va to find", scale=2, elem_id="va-label")
            # Shown as the page loads: a login names the annotator, else the typed name (va_ui.logins).
            name = gr.Textbox(label="Your name", placeholder="e.g. maria", visible=False, scale=1,
                              elem_id="va-name")
            who = gr.Markdown(visible=False, elem_id="va-who")
        banner = panels.encoder_banner(settings)
        if banner:
            gr.HTML(f'<div class="va-banner">{banner}</div>')
        status = gr.Markdown("", elem_id="va-status")

        with gr.Tabs() as tabs:
            # -- Label -------------------------------------------------------------------
            with gr.Tab("Label", id="label"):
                gr.Markdown("Pick a label above, or create one here. Its description is what va searches "
                            "for before any model exists.")
                with gr.Row():
                    new_name = gr.Textbox(label="Label name", placeholder="car_chase", elem_id="va-new-label")
                    new_desc = gr.Textbox(label="Description", placeholder="two or more cars racing through streets",
                                          scale=2, elem_id="va-new-desc")
                    save = gr.Button("Save label", variant="primary", elem_id="va-save-label")
                labels_df = gr.Dataframe(value=h.labels_table(settings), interactive=False, label="Labels",
                                         elem_id="va-labels-table")

            # -- Search ------------------------------------------------------------------
            with gr.Tab("Search", id="search"):
                with gr.Row(equal_height=True):
                    query = gr.Textbox(label="Find clips", placeholder="describe what you look for",
                                       scale=4, elem_id="va-query")
                    k = gr.Slider(4, 48, value=h.SEARCH_K, step=4, label="How many", scale=1)
                    go = gr.Button("Search", variant="primary", scale=1, elem_id="va-search")
                gr.Markdown("Each clip plays on a loop; mark it **Yes** if it shows the label, **No** if it does not.")
                results = gr.HTML(views.grid([], "Search to see clips."), js_on_load=views.GRID_JS,
                                  elem_id="va-results")
                found = gr.State([])

            # -- Annotate ----------------------------------------------------------------
            with gr.Tab("Annotate", id="annotate"):
                with gr.Row(equal_height=True):
                    source = gr.Dropdown(choices=SOURCE_CHOICES, value="next", label="Clips from", scale=3,
                                         elem_id="va-source")
                    begin = gr.Button("Start", variant="primary", scale=1, elem_id="va-start")
                screen = gr.HTML(views.player(None, "Pick a label and press Start."), js_on_load=None,
                                 elem_id="va-player")
                with gr.Row():
                    yes = gr.Button("Yes  (Y)", elem_id="va-yes")
                    no = gr.Button("No  (N)", elem_id="va-no")
                    skip = gr.Button("Skip  (S)", elem_id="va-skip")
                    back = gr.Button("Undo  (U)", elem_id="va-undo")
                    build_a = gr.Button("Build  (B)", variant="secondary", elem_id="va-build")
                progress = gr.Markdown("", elem_id="va-progress")
                shown = gr.Textbox(visible=False)
                gr.HTML(KEYS_HELP, js_on_load=None)

            # -- Model -------------------------------------------------------------------
            with gr.Tab("Model", id="model"):
                with gr.Row():
                    build_m = gr.Button("Build model now", variant="primary", elem_id="va-build-model")
                    approve_ask = gr.Button("Approve…", elem_id="va-approve")
                quality = gr.Markdown("", elem_id="va-quality")
                with gr.Group(visible=False) as confirm_box:
                    checks_md = gr.Markdown("", elem_id="va-checks")
                    with gr.Row():
                        confirm = gr.Button("Yes, approve this version", variant="primary", elem_id="va-confirm")
                        cancel = gr.Button("Cancel", elem_id="va-cancel")
                approve_version = gr.State(None)
                gr.Markdown("**AP against number of labels**, one point per model version")
                curve = gr.HTML(panels.ap_chart(pl.DataFrame()), js_on_load=None, elem_id="va-curve")
                previews = gr.HTML("", js_on_load=None, elem_id="va-previews")

            # -- Review ------------------------------------------------------------------
            with gr.Tab("Review", id="review"):
                with gr.Row(equal_height=True):
                    which = gr.Radio(h.REVIEW_FILTERS, value="all", label="Show", scale=3, elem_id="va-review-filter")
                    contains = gr.Textbox(label="Clip key contains", scale=2)
                    reload = gr.Button("Refresh", scale=1, elem_id="va-review-refresh")
                with gr.Row():
                    table = gr.Dataframe(interactive=False, label="Labels of this label set", scale=3,
                                         elem_id="va-review-table")
                    with gr.Column(scale=2):
                        picked = gr.State(None)
                        picked_view = gr.HTML(views.player(None, "Select a row to see the clip."), js_on_load=None,
                                              elem_id="va-review-clip")
                        with gr.Row():
                            to_yes = gr.Button("Change to Yes", elem_id="va-review-yes")
                            to_no = gr.Button("Change to No", elem_id="va-review-no")

        # -- wiring -------------------------------------------------------------------------
        def on_load(remembered, request: gr.Request):
            user = getattr(request, "username", None)
            # A name typed before the page finished loading wins over the remembered one.
            typed = gr.update(value=remembered, visible=not user) if remembered else gr.update(visible=not user)
            return (typed, gr.update(value=f"Labelling as **{user}**" if user else "", visible=bool(user)),
                    gr.update(choices=h.label_choices(settings)))

        app.load(on_load, [remembered_name], [name, who, label])
        name.change(lambda n: n, name, remembered_name)

        @_ui
        def on_save(new, desc, typed, request: gr.Request):
            summary = h.save_label(settings, new, desc, _who(request, typed))
            return (gr.update(choices=h.label_choices(settings), value=summary["label"]), h.labels_table(settings),
                    f"Label **{summary['label']}** saved.")

        save.click(on_save, [new_name, new_desc, name], [label, labels_df, status])

        @_ui
        def on_label(chosen, typed, request: gr.Request):
            if not chosen:
                return gr.update(), "", h.Session(), views.player(None, "Pick a label and press Start."), ""
            summary = h.label_summary(settings, chosen)
            return (summary.get("description") or chosen.replace("_", " "), panels.label_status(summary),
                    h.Session(), views.player(None, "Press Start."), "")

        label.change(on_label, [label, name], [query, status, session, screen, progress])

        @_ui
        def on_search(chosen, text, n):
            if not chosen:
                raise gr.Error("pick or create a label first: search results are labelled for it")
            items = h.search(settings, chosen, text, int(n))
            return views.grid(items, "Nothing found."), [i["clip_key"] for i in items]

        go.click(on_search, [label, query, k], [results, found])
        query.submit(on_search, [label, query, k], [results, found])

        @_ui
        def on_mark(chosen, typed, keys, evt: gr.EventData, request: gr.Request):
            data = evt._data or {}
            if not chosen:
                raise gr.Error("pick a label first")
            key = data.get("clip_key")
            rank = {"rank": keys.index(key) + 1} if keys and key in keys else None
            h.mark(settings, chosen, key, data.get("value"), _who(request, typed), "search", rank)
            return panels.label_status(h.label_summary(settings, chosen))

        def on_mark_failed(chosen, keys):
            # The card was marked before the server answered; show what is really stored.
            items = h.enrich(settings, chosen, [{"clip_key": key, "source": "search"} for key in keys]) if chosen else []
            return views.grid(items, "Search to see clips.")

        # Clicks on different cards must all land, so none is dropped while one is saving.
        results.click(on_mark, [label, name, found], status, trigger_mode="multiple").failure(
            on_mark_failed, [label, found], results)

        def show(sess: h.Session):
            empty = "Nothing left in this source: build the model or pick another source." if sess.label else \
                "Pick a label and press Start."
            return views.player(sess.current, empty), panels.progress(sess), sess

        @_ui
        def on_start(chosen, src, sess, request: gr.Request):
            if not chosen:
                raise gr.Error("pick a label first")
            with _session_lock(request):
                return show(h.start(settings, sess, chosen, src))

        begin.click(on_start, [label, source, session], [screen, progress, session])
        source.change(on_start, [label, source, session], [screen, progress, session])

        def answer_with(value):
            @_ui
            def on_answer(key, sess, typed, request: gr.Request):
                who_ = _who(request, typed) if value is not None else ""
                with _session_lock(request):
                    return show(h.answer(settings, sess, value, who_, shown_key=key or None))

            return on_answer

        for button, value in ((yes, True), (no, False), (skip, None)):
            button.click(answer_with(value), [shown, session, name], [screen, progress, session], js=SHOWN_KEY_JS)

        @_ui
        def on_undo(sess, request: gr.Request):
            with _session_lock(request):
                return show(h.take_back(settings, sess))

        back.click(on_undo, [session], [screen, progress, session])
        app.unload(_forget_session)

        @_ui
        def on_build(chosen, sess, request: gr.Request):
            if not chosen:
                raise gr.Error("pick a label first")
            built = h.build(settings, chosen)
            if sess.label == chosen:
                with _session_lock(request):
                    sess = h.refill(settings, sess)
            return (panels.build_status(built), *model_outputs(chosen), *show(sess))

        def model_outputs(chosen):
            if not chosen:
                return "Pick a label to see its model.", None, "", gr.update(interactive=False)
            view = h.model_view(settings, chosen)
            history = view["history"]
            return (panels.quality(settings, chosen, history), panels.ap_chart(history),
                    panels.previews(view["previews"]), gr.update(interactive=history.height > 0))

        model_out = [quality, curve, previews, approve_ask]
        for button in (build_a, build_m):
            button.click(on_build, [label, session], [status, *model_out, screen, progress, session])

        @_ui
        def on_model_tab(chosen):
            return model_outputs(chosen)

        tabs.select(on_model_tab, [label], model_out)
        label.change(on_model_tab, [label], model_out)

        @_ui
        def on_approve_ask(chosen):
            if not chosen:
                raise gr.Error("pick a label first")
            checks = h.approval_checks(settings, chosen)
            return gr.update(visible=True), panels.checks(checks), gr.update(interactive=checks["passed"]), \
                checks["model_version"]

        approve_ask.click(on_approve_ask, [label], [confirm_box, checks_md, confirm, approve_version])
        cancel.click(lambda: gr.update(visible=False), None, confirm_box)

        @_ui
        def on_confirm(chosen, version, typed, request: gr.Request):
            done = h.approve(settings, chosen, version, _who(request, typed))
            return (gr.update(visible=False), panels.approved(done), *model_outputs(chosen))

        confirm.click(on_confirm, [label, approve_version, name], [confirm_box, status, *model_out])

        @_ui
        def on_review(chosen, filt, text, typed, request: gr.Request):
            if not chosen:
                return None
            user = getattr(request, "username", None) or (typed or "").strip() or None
            return h.review_rows(settings, chosen, filt, user, text)

        review_in = [label, which, contains, name]
        for trigger in (reload.click, which.change, contains.submit, label.change):
            trigger(on_review, review_in, table)
        tabs.select(on_review, review_in, table)

        @_ui
        def on_pick(chosen, evt: gr.SelectData):
            row = evt.row_value if evt is not None else None
            if not row or not chosen:
                return None, views.player(None, "Select a row to see the clip.")
            item = h.enrich(settings, chosen, [{"clip_key": row[0]}])[0]
            return row[0], views.player(item, "")

        table.select(on_pick, [label], [picked, picked_view])

        def change_to(value):
            @_ui
            def on_change(chosen, key, filt, text, typed, request: gr.Request):
                if not key:
                    raise gr.Error("select a row first")
                who_ = _who(request, typed)
                h.change(settings, chosen, key, value, who_)
                item = h.enrich(settings, chosen, [{"clip_key": key}])[0]
                return (h.review_rows(settings, chosen, filt, who_, text), views.player(item, ""),
                        f"{key} changed to **{'yes' if value else 'no'}** by {who_}.")

            return on_change

        to_yes.click(change_to(True), [label, picked, which, contains, name], [table, picked_view, status])
        to_no.click(change_to(False), [label, picked, which, contains, name], [table, picked_view, status])

    app.queue(default_concurrency_limit=8)
    return app
