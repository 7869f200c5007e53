"""The Review tab: the label set with thumbnails, filtered; change one clip or many; export.

Changes are label events by whoever is labelling (source ``review``); exports are written
by va_core (``labels.export_label_set``/``export_events``) and offered as a download.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass

import gradio as gr

from va_core.errors import InputError
from va_core.labels import EXPORT_FORMATS
from va_ui import handlers as h
from va_ui import views
from va_ui.tabs.page import Page, who, wire

ROWS_SHOWN = 100  # thumbnails each load a clip: the newest changes first, the filters for the rest
ANYONE, ANY_SOURCE = "anyone", "any source"
ANSWERS = {"yes": (True, False), "no": (False, False), "unsure": (None, True)}  # (value, unsure) for h.change


def changed_status(done: dict, by: str) -> str:
    """The status line after a change: how many clips became what, and which others' votes still decide."""
    keys = done["clip_keys"]
    word = "unsure" if done["unsure"] else "yes" if done["value"] else "no"
    what = keys[0] if len(keys) == 1 else f"{len(keys)} clips"
    text = f"{what} changed to **{word}** by {by}."
    n = len(done["still_voted"])
    if n and len(keys) == 1:
        text += " Someone else's yes or no still decides its label."
    elif n:
        text += f" {n} of them still {'has' if n == 1 else 'have'} a yes or no from someone else, which decides."
    return text


@dataclass(frozen=True)
class ReviewTab:
    which: gr.Radio
    annotator: gr.Dropdown
    source: gr.Dropdown
    contains: gr.Textbox
    reload: gr.Button
    table: gr.HTML
    picked: gr.State  # the clip key of the row shown in the player
    picked_view: gr.HTML
    to_yes: gr.Button
    to_no: gr.Button
    to_unsure: gr.Button
    export_what: gr.Radio
    export_format: gr.Radio
    export: gr.Button
    exported: gr.File

    @property
    def filters(self) -> list:
        return [self.which, self.annotator, self.source, self.contains]


def layout(page: Page) -> ReviewTab:
    with gr.Tab("Review", id="review"):
        with gr.Row(equal_height=True):
            which = gr.Radio(list(h.REVIEW_VALUES), value="all", label="Show", scale=3, elem_id="va-review-filter")
            annotator = gr.Dropdown([ANYONE], value=ANYONE, label="Voted by", scale=2, elem_id="va-review-annotator")
            source = gr.Dropdown([ANY_SOURCE], value=ANY_SOURCE, label="From", scale=2, elem_id="va-review-source",
                                 info="where the clip was answered")
            contains = gr.Textbox(label="Clip key contains", scale=2, elem_id="va-review-contains")
            reload = gr.Button("Refresh", scale=1, elem_id="va-review-refresh")
        with gr.Row():
            with gr.Column(scale=3):
                table = gr.HTML(views.review_table([], {}, 0, "Pick a label to review its clips."),
                                js_on_load=views.REVIEW_JS, elem_id="va-review-table")
            with gr.Column(scale=2):
                picked = gr.State(None)
                picked_view = gr.HTML(views.player(None, "Select a row to see the clip."), js_on_load=None,
                                      elem_id="va-review-clip")
                with gr.Row():
                    to_yes = gr.Button("Change to Yes", elem_id="va-review-yes")
                    to_no = gr.Button("Change to No", elem_id="va-review-no")
                    to_unsure = gr.Button("Change to Unsure", elem_id="va-review-unsure")
                with gr.Group():
                    with gr.Row():
                        export_what = gr.Radio(list(h.EXPORTS), value="label set", label="Export",
                                               elem_id="va-export-what")
                        export_format = gr.Radio(list(EXPORT_FORMATS), value="csv", label="as",
                                                 elem_id="va-export-format")
                    export = gr.Button("Export", elem_id="va-export")
                    exported = gr.File(label="Download", interactive=False, elem_id="va-export-file")
    return ReviewTab(which, annotator, source, contains, reload, table, picked, picked_view, to_yes, to_no, to_unsure,
                     export_what, export_format, export, exported)


def wire_tab(page: Page, tab: ReviewTab) -> None:
    settings, label, status = page.settings, page.label, page.status
    folder = tempfile.mkdtemp(prefix="va-exports-")  # Gradio copies each file to its cache for the download

    def rows(chosen, which, annotator, source, contains, me):
        found = h.review_rows(settings, chosen, which, me, contains,
                              annotator=None if annotator in (None, ANYONE) else annotator,
                              source=None if source in (None, ANY_SOURCE) else source)
        shown = found.head(ROWS_SHOWN).to_dicts()
        items = {i["clip_key"]: i for i in h.enrich(settings, None, [{"clip_key": r["clip_key"]} for r in shown])}
        return views.review_table(shown, items, found.height, "No clip matches these filters.")

    def me_of(request, typed):
        return getattr(request, "username", None) or (typed or "").strip() or None

    def on_review(chosen, which, annotator, source, contains, typed, request: gr.Request):
        if not chosen:
            return views.review_table([], {}, 0, "Pick a label to review its clips."), gr.update(), gr.update()
        options = h.review_options(settings, chosen)
        # a filter whose value left the label set (another label picked) goes back to everyone
        annotator = annotator if annotator in options["annotators"] else ANYONE
        source = source if source in options["sources"] else ANY_SOURCE
        return (rows(chosen, which, annotator, source, contains, me_of(request, typed)),
                gr.update(choices=[ANYONE, *options["annotators"]], value=annotator),
                gr.update(choices=[ANY_SOURCE, *options["sources"]], value=source))

    review_in = [label, *tab.filters, page.name]
    review_out = [tab.table, tab.annotator, tab.source]
    for trigger in (tab.reload.click, tab.which.change, tab.annotator.input, tab.source.input, tab.contains.submit,
                    label.change, page.tabs.select):
        wire(trigger, on_review, review_in, review_out)

    def on_pick(chosen, evt: gr.EventData):
        key = (evt._data or {}).get("clip_key") if evt is not None else None
        if not key or not chosen:
            return None, views.player(None, "Select a row to see the clip.")
        item = h.enrich(settings, chosen, [{"clip_key": key}])[0]
        return key, views.player(item, "")

    wire(tab.table.select, on_pick, [label], [tab.picked, tab.picked_view])

    def change_to(answer):
        def on_change(chosen, key, which, annotator, source, contains, typed, request: gr.Request):
            if not key:
                raise InputError("select a row first")
            by = who(request, typed)
            value, unsure = ANSWERS[answer]
            done = h.change(settings, chosen, key, value, by, unsure=unsure)
            item = h.enrich(settings, chosen, [{"clip_key": key}])[0]
            return (rows(chosen, which, annotator, source, contains, by), views.player(item, ""),
                    changed_status(done, by))

        return on_change

    for button, answer in ((tab.to_yes, "yes"), (tab.to_no, "no"), (tab.to_unsure, "unsure")):
        wire(button.click, change_to(answer), [label, tab.picked, *tab.filters, page.name],
             [tab.table, tab.picked_view, status], status=status)

    def on_bulk(chosen, which, annotator, source, contains, typed, evt: gr.EventData, request: gr.Request):
        data = evt._data or {}
        if not chosen:
            raise InputError("pick a label first")
        keys = data.get("clip_keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise InputError(f"a bulk change names the clips it changes, got {keys!r}")
        by = who(request, typed)
        done = h.change(settings, chosen, keys, data.get("value"), by, unsure=data.get("unsure", False))
        return rows(chosen, which, annotator, source, contains, by), changed_status(done, by)

    wire(tab.table.submit, on_bulk, [label, *tab.filters, page.name], [tab.table, status], status=status)

    def on_export(chosen, what, format):
        if not chosen:
            raise InputError("pick a label first")
        done = h.export(settings, chosen, what, format, folder)
        return done["path"], (f"Exported the {what} of **{chosen}** ({done['rows']} rows, label events version "
                              f"{done['label_events_version']}) as {format}.")

    wire(tab.export.click, on_export, [label, tab.export_what, tab.export_format], [tab.exported, status],
         status=status)
