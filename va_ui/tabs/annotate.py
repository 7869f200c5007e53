"""The Annotate tab: the desk (one clip at a time, answered from the keyboard) and Build."""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import gradio as gr

from va_core.errors import InputError, VAError
from va_ui import annotate, desk, panels, views
from va_ui import handlers as h
from va_ui.tabs import model
from va_ui.tabs.page import Page, who, wire

KEYS_HELP = ('<div class="va-keys">Keys: <kbd>Y</kbd> yes · <kbd>N</kbd> no · <kbd>?</kbd> unsure · '
             '<kbd>S</kbd>/<kbd>Space</kbd> skip · '
             '<kbd>U</kbd> undo · <kbd>L</kbd> more like this · <kbd>C</kbd> the shots before and after · <kbd>B</kbd> build<br>Player: <kbd>K</kbd> play/pause · <kbd>←</kbd>/<kbd>→</kbd> '
             '1 s back/forward · <kbd>,</kbd>/<kbd>.</kbd> one frame back/forward · <kbd>[</kbd>/<kbd>]</kbd> '
             'slower/faster (0.25x-2x) · <kbd>O</kbd> loop on/off · <kbd>M</kbd> sound on/off</div>')


@dataclass(frozen=True)
class AnnotateTab:
    desk: gr.HTML
    build: gr.Button  # B: wired with the Model tab's Build


def layout(page: Page) -> AnnotateTab:
    with gr.Tab("Annotate", id="annotate"):
        desk_view = gr.HTML("", html_template=desk.template(), css_template=desk.CSS, js_on_load=desk.JS,
                            server_functions=desk_functions(page.settings), elem_id="va-desk", padding=False)
        with gr.Row():
            build = gr.Button("Build  (B)", variant="secondary", elem_id="va-build")
        gr.HTML(KEYS_HELP, js_on_load=None)
    return AnnotateTab(desk_view, build)


def desk_functions(settings):
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
                             who(request, payload.get("name")), payload.get("source"), payload.get("provenance"),
                             unsure=payload.get("unsure", False))
        return {"clip_key": done["clip_key"], "summary": _counts(done["summary"])}

    @answered
    def undo_answer(payload, request):
        done = annotate.undo(settings, payload.get("label"), payload.get("clip_key"), who(request, payload.get("name")))
        return {"clip_key": done["clip_key"], "summary": _counts(done["summary"])}

    @answered
    def guide(payload, request):
        return {"html": views.guide(h.guide(settings, payload.get("label")))}

    @answered
    def pin(payload, request):
        value = payload.get("value")
        if value is not None and not isinstance(value, bool):
            raise InputError(f"a pin is a yes or no example (or null to unpin), got {value!r}")
        shown = h.pin(settings, payload.get("label"), payload.get("clip_key"), value, who(request, payload.get("name")))
        return {"html": views.guide(shown)}

    return [clips, save_answer, undo_answer, guide, pin]


def _counts(summary: dict) -> dict:
    return {k: summary.get(k) for k in ("label", "n_pos", "n_neg", "n_conflicts", "n_unsure")}


def after_answer(settings, chosen: str, picked: int | None) -> tuple:
    """What follows every stored answer: the status line's counts, the Labels table and the Model
    tab (its numbers and feed previews), all from one read of the label events."""
    from va_core.labels import events_snapshot, label_set
    from va_core.warehouse import Warehouse

    wh = Warehouse.from_settings(settings)
    snapshot = events_snapshot(wh)
    ls = label_set(wh, chosen, snapshot=snapshot)
    return (panels.label_status(h.label_summary(settings, chosen, ls=ls)), h.labels_table(settings, snapshot=snapshot),
            *model.shown(settings, chosen, picked, ls=ls))


def wire_tab(page: Page, tab: AnnotateTab, labels_table: gr.Dataframe, model_tab: model.ModelTab) -> None:
    """``labels_table`` and ``model_tab``: what follows every stored answer."""
    settings, label, status = page.settings, page.label, page.status
    label.change(None, [label], None, js="(chosen) => { window.vaDesk && window.vaDesk.setLabel(chosen); }")
    model_out = model_tab.outputs

    def on_saved(chosen, picked):
        if not chosen:
            return gr.update(), gr.update(), *[gr.update() for _ in model_out]
        return after_answer(settings, chosen, picked)

    wire(tab.desk.saved, on_saved, [label, model_tab.picker], [status, labels_table, *model_out],
         trigger_mode="always_last", show_progress="hidden")
