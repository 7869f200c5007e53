"""The Review tab: every clip of the label set with its votes; change one."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from va_core.errors import InputError
from va_ui import handlers as h
from va_ui import views
from va_ui.tabs.page import Page, who, wire


@dataclass(frozen=True)
class ReviewTab:
    which: gr.Radio
    contains: gr.Textbox
    reload: gr.Button
    table: gr.Dataframe
    picked: gr.State  # the clip key of the selected row
    picked_view: gr.HTML
    to_yes: gr.Button
    to_no: gr.Button


def layout(page: Page) -> ReviewTab:
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
    return ReviewTab(which, contains, reload, table, picked, picked_view, to_yes, to_no)


def wire_tab(page: Page, tab: ReviewTab) -> None:
    settings, label, status = page.settings, page.label, page.status

    def on_review(chosen, filt, text, typed, request: gr.Request):
        if not chosen:
            return None
        user = getattr(request, "username", None) or (typed or "").strip() or None
        return h.review_rows(settings, chosen, filt, user, text)

    review_in = [label, tab.which, tab.contains, page.name]
    for trigger in (tab.reload.click, tab.which.change, tab.contains.submit, label.change, page.tabs.select):
        wire(trigger, on_review, review_in, [tab.table])

    def on_pick(chosen, evt: gr.SelectData):
        row = evt.row_value if evt is not None else None
        if not row or not chosen:
            return None, views.player(None, "Select a row to see the clip.")
        item = h.enrich(settings, chosen, [{"clip_key": row[0]}])[0]
        return row[0], views.player(item, "")

    wire(tab.table.select, on_pick, [label], [tab.picked, tab.picked_view])

    def change_to(value):
        def on_change(chosen, key, filt, text, typed, request: gr.Request):
            if not key:
                raise InputError("select a row first")
            by = who(request, typed)
            h.change(settings, chosen, key, value, by)
            item = h.enrich(settings, chosen, [{"clip_key": key}])[0]
            return (h.review_rows(settings, chosen, filt, by, text), views.player(item, ""),
                    f"{key} changed to **{'yes' if value else 'no'}** by {by}.")

        return on_change

    for button, value in ((tab.to_yes, True), (tab.to_no, False)):
        wire(button.click, change_to(value), [label, tab.picked, tab.which, tab.contains, page.name],
             [tab.table, tab.picked_view, status], status=status)
