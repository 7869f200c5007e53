"""The labelling app: Label, Search, Annotate, Model and Review on one page.

This module only lays out components and wires them to :mod:`va_ui.handlers`; every
action goes through va_core. ``build_app(settings)`` returns the Blocks;
:mod:`va_ui.server` serves it with the clip route and the login.
"""
from __future__ import annotations

import functools
import time

import gradio as gr
import polars as pl

from va_core.errors import InputError, VAError
from va_ui import annotate, desk, panels, views
from va_ui import handlers as h

TITLE = "va · Video Annotator"
KEYS_HELP = ('<div class="va-keys">Keys: <kbd>Y</kbd> yes · <kbd>N</kbd> no · <kbd>S</kbd>/<kbd>Space</kbd> skip · '
             '<kbd>U</kbd> undo · <kbd>L</kbd> more like this · <kbd>C</kbd> the shots before and after · <kbd>B</kbd> build<br>Player: <kbd>K</kbd> play/pause · <kbd>←</kbd>/<kbd>→</kbd> '
             '1 s back/forward · <kbd>,</kbd>/<kbd>.</kbd> one frame back/forward · <kbd>[</kbd>/<kbd>]</kbd> '
             'slower/faster (0.25x-2x) · <kbd>O</kbd> loop on/off · <kbd>M</kbd> sound on/off</div>')


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


def _wire(event, fn, inputs, outputs, status=None, **kwargs):
    """``event(fn, inputs, outputs)``, where a refusal keeps every output as it was.

    A refusal from va_core shows as a message (in ``status`` when that is an output,
    and as a notice), never as error badges on the outputs: the page stays usable.
    """
    outputs = list(outputs)

    @functools.wraps(fn)
    def kept(*args, **kw):
        try:
            return fn(*args, **kw)
        except VAError as exc:
            gr.Warning(str(exc), duration=8)
            kept_as_is = [gr.update() for _ in outputs]
            if status is not None and status in outputs:
                kept_as_is[outputs.index(status)] = f"**Not done:** {exc}"
            return kept_as_is[0] if len(outputs) == 1 else tuple(kept_as_is)

    return event(kept, inputs, outputs, **kwargs)


def _desk_functions(settings):
    """What the Annotate desk calls from the page (one JSON object in, one out).

    A refusal comes back as ``{"error": ...}``: the desk shows it and keeps the answer
    for Retry.
    """

    def answered(fn):
        @functools.wraps(fn)
        def wrapper(payload, request: gr.Request):
            t0 = time.perf_counter()
            try:
                if not isinstance(payload, dict):
                    raise InputError(f"the desk sends one JSON object, got {type(payload).__name__}")
                out = fn(payload, request)
            except VAError as exc:
                return {"error": str(exc)}
            return {**out, "ms": round(1000 * (time.perf_counter() - t0), 1)}

        return wrapper

    @answered
    def clips(payload, request):
        got = annotate.batch(settings, payload.get("label"), payload.get("source"), payload.get("exclude") or [],
                             like=payload.get("like"))
        near = annotate.neighbours(settings, [i["clip_key"] for i in got["items"]])
        shown = {n["clip_key"]: n for n in h.enrich(settings, None, [{"clip_key": k} for k in
                                                                    {k for pair in near.values() for k in pair if k}])}
        items = [{"clip_key": i["clip_key"], "source": i["source"], "provenance": i["provenance"],
                  "html": views.player(i, ""),
                  "context": views.context(*(shown.get(k) if k else None for k in near.get(i["clip_key"], (None, None))))}
                 for i in got["items"]]
        return {"source": got["source"], "hint": got["hint"], "items": items}

    @answered
    def save_answer(payload, request):
        done = annotate.save(settings, payload.get("label"), payload.get("clip_key"), payload.get("value"),
                             _who(request, payload.get("name")), payload.get("source"), payload.get("provenance"))
        return {"clip_key": done["clip_key"], "summary": _counts(done["summary"])}

    @answered
    def undo_answer(payload, request):
        done = annotate.undo(settings, payload.get("label"), payload.get("clip_key"), _who(request, payload.get("name")))
        return {"clip_key": done["clip_key"], "summary": _counts(done["summary"])}

    return [clips, save_answer, undo_answer]


def _counts(summary: dict) -> dict:
    return {k: summary.get(k) for k in ("label", "n_pos", "n_neg", "n_conflicts")}


def build_app(settings) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as app:
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
                desk_view = gr.HTML("", html_template=desk.template(), css_template=desk.CSS, js_on_load=desk.JS,
                                    server_functions=_desk_functions(settings), elem_id="va-desk", padding=False)
                with gr.Row():
                    build_a = gr.Button("Build  (B)", variant="secondary", elem_id="va-build")
                gr.HTML(KEYS_HELP, js_on_load=None)

            # -- Model -------------------------------------------------------------------
            with gr.Tab("Model", id="model"):
                with gr.Row():
                    build_m = gr.Button("Build model now", variant="primary", elem_id="va-build-model")
                    features = gr.Dropdown(choices=[("as the last model", ""), ("CLIP", "clip"),
                                                    ("camera motion", "motion"), ("both", "both")],
                                           value="", label="Train on", elem_id="va-features")
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
                    gr.update(choices=h.label_choices(settings)), h.labels_table(settings))

        app.load(on_load, [remembered_name], [name, who, label, labels_df])
        name.change(lambda n: n, name, remembered_name)

        def on_save(new, desc, typed, request: gr.Request):
            summary = h.save_label(settings, new, desc, _who(request, typed))
            return (gr.update(choices=h.label_choices(settings), value=summary["label"]), h.labels_table(settings),
                    f"Label **{summary['label']}** saved.")

        _wire(save.click, on_save, [new_name, new_desc, name], [label, labels_df, status], status=status)

        def on_label(chosen):
            if not chosen:
                return gr.update(), ""
            summary = h.label_summary(settings, chosen)
            return (summary.get("description") or chosen.replace("_", " "), panels.label_status(summary))

        _wire(label.change, on_label, [label], [query, status], status=status)
        label.change(None, [label], None, js="(chosen) => { window.vaDesk && window.vaDesk.setLabel(chosen); }")

        def on_search(chosen, text, n):
            if not chosen:
                raise InputError("pick or create a label first: search results are labelled for it")
            items = h.search(settings, chosen, text, int(n))
            return views.grid(items, "Nothing found."), [i["clip_key"] for i in items], gr.update()

        for trigger in (go.click, query.submit):
            _wire(trigger, on_search, [label, query, k], [results, found, status], status=status)

        @_ui
        def on_mark(chosen, typed, keys, evt: gr.EventData, request: gr.Request):
            data = evt._data or {}
            if not chosen:
                raise gr.Error("pick a label first")
            key = data.get("clip_key")
            source = "similar" if data.get("source") == "similar" else "search"
            rank = {"rank": keys.index(key) + 1} if keys and key in keys else None
            h.mark(settings, chosen, key, data.get("value"), _who(request, typed), source, rank)
            return panels.label_status(h.label_summary(settings, chosen))

        def on_mark_failed(chosen, keys):
            # The card was marked before the server answered; show what is really stored.
            items = h.enrich(settings, chosen, [{"clip_key": key, "source": "search"} for key in keys]) if chosen else []
            return views.grid(items, "Search to see clips.")

        def on_like(chosen, n, evt: gr.EventData):
            key = (evt._data or {}).get("clip_key")
            items = h.more_like(settings, chosen, key, int(n))
            return (views.grid(items, "Nothing like it."), [i["clip_key"] for i in items],
                    f"Clips most like **{key}** (by embedding).")

        _wire(results.like, on_like, [label, k], [results, found, status], status=status)

        # Clicks on different cards must all land, so none is dropped while one is saving.
        results.click(on_mark, [label, name, found], status, trigger_mode="multiple").failure(
            on_mark_failed, [label, found], results)

        def on_build(chosen, feature_set):
            if not chosen:
                raise InputError("pick a label first")
            built = h.build(settings, chosen, features=feature_set or None)
            return (panels.build_status(built), *model_outputs(chosen))

        def model_outputs(chosen):
            if not chosen:
                return "Pick a label to see its model.", None, "", gr.update(interactive=False)
            view = h.model_view(settings, chosen)
            history = view["history"]
            return (panels.quality(settings, chosen, history), panels.ap_chart(history),
                    panels.previews(view["previews"]), gr.update(interactive=history.height > 0))

        model_out = [quality, curve, previews, approve_ask]
        for button in (build_a, build_m):
            # the desk then takes its queue from the new feeds (the clip on screen stays)
            _wire(button.click, on_build, [label, features], [status, *model_out], status=status).then(
                None, None, None, js="() => { window.vaDesk && window.vaDesk.refill(); }")

        def on_saved(chosen):
            # after every stored answer: the counts, the model's numbers and the feed previews
            if not chosen:
                return gr.update(), gr.update(), *[gr.update() for _ in model_out]
            return (panels.label_status(h.label_summary(settings, chosen)), h.labels_table(settings),
                    *model_outputs(chosen))

        _wire(desk_view.saved, on_saved, [label], [status, labels_df, *model_out], trigger_mode="always_last",
              show_progress="hidden")

        for trigger in (tabs.select, label.change):
            _wire(trigger, model_outputs, [label], model_out)

        def on_approve_ask(chosen):
            if not chosen:
                raise InputError("pick a label first")
            checks = h.approval_checks(settings, chosen)
            return gr.update(visible=True), panels.checks(checks), gr.update(interactive=checks["passed"]), \
                checks["model_version"]

        _wire(approve_ask.click, on_approve_ask, [label], [confirm_box, checks_md, confirm, approve_version])
        cancel.click(lambda: gr.update(visible=False), None, confirm_box)

        def on_confirm(chosen, version, typed, request: gr.Request):
            done = h.approve(settings, chosen, version, _who(request, typed))
            return (gr.update(visible=False), panels.approved(done), *model_outputs(chosen))

        _wire(confirm.click, on_confirm, [label, approve_version, name], [confirm_box, status, *model_out], status=status)

        def on_review(chosen, filt, text, typed, request: gr.Request):
            if not chosen:
                return None
            user = getattr(request, "username", None) or (typed or "").strip() or None
            return h.review_rows(settings, chosen, filt, user, text)

        review_in = [label, which, contains, name]
        for trigger in (reload.click, which.change, contains.submit, label.change):
            _wire(trigger, on_review, review_in, [table])
        _wire(tabs.select, on_review, review_in, [table])

        def on_pick(chosen, evt: gr.SelectData):
            row = evt.row_value if evt is not None else None
            if not row or not chosen:
                return None, views.player(None, "Select a row to see the clip.")
            item = h.enrich(settings, chosen, [{"clip_key": row[0]}])[0]
            return row[0], views.player(item, "")

        _wire(table.select, on_pick, [label], [picked, picked_view])

        def change_to(value):
            def on_change(chosen, key, filt, text, typed, request: gr.Request):
                if not key:
                    raise InputError("select a row first")
                who_ = _who(request, typed)
                h.change(settings, chosen, key, value, who_)
                item = h.enrich(settings, chosen, [{"clip_key": key}])[0]
                return (h.review_rows(settings, chosen, filt, who_, text), views.player(item, ""),
                        f"{key} changed to **{'yes' if value else 'no'}** by {who_}.")

            return on_change

        for button, value in ((to_yes, True), (to_no, False)):
            _wire(button.click, change_to(value), [label, picked, which, contains, name], [table, picked_view, status],
                  status=status)

    app.queue(default_concurrency_limit=8)
    return app
