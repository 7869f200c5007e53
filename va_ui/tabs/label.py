"""The Label tab: create a label or change its description; every label with its counts."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from va_core.errors import InputError
from va_ui import handlers as h
from va_ui import panels, views
from va_ui.tabs import search
from va_ui.tabs.page import Page, who, wire


@dataclass(frozen=True)
class LabelTab:
    new_name: gr.Textbox
    new_desc: gr.Textbox
    save: gr.Button
    table: gr.Dataframe  # every label: other tabs refresh it after an answer
    guide_text: gr.Textbox  # the chosen label's guidelines (shown in Annotate)
    guide_save: gr.Button
    guide_view: gr.HTML


def layout(page: Page) -> LabelTab:
    with gr.Tab("Label", id="label"):
        gr.Markdown("Pick a label above, or create one here. Its description is what va searches "
                    "for before any model exists.")
        with gr.Row():
            new_name = gr.Textbox(label="Label name", placeholder="car_chase", elem_id="va-new-label")
            new_desc = gr.Textbox(label="Description", placeholder="two or more cars racing through streets",
                                  scale=2, elem_id="va-new-desc")
            save = gr.Button("Save label", variant="primary", elem_id="va-save-label")
        table = gr.Dataframe(value=h.labels_table(page.settings), interactive=False, label="Labels",
                             elem_id="va-labels-table")
        gr.Markdown("**Guidelines** of the label picked above: what counts as yes and what as no. They are shown "
                    "above the clip in Annotate, with the example clips pinned there or in Search.")
        with gr.Row():
            guide_text = gr.Textbox(label="Guidelines", lines=4, scale=4, elem_id="va-guide-text",
                                    placeholder="yes: two or more cars racing; no: parked cars, a single car")
            guide_save = gr.Button("Save guidelines", scale=1, elem_id="va-guide-save")
        guide_view = gr.HTML("", js_on_load=None, elem_id="va-guide-view")
    return LabelTab(new_name, new_desc, save, table, guide_text, guide_save, guide_view)


def wire_tab(page: Page, tab: LabelTab, query: gr.Textbox) -> None:
    """``query``: the Search tab's query, which a saved label's description fills."""
    settings = page.settings

    def on_save(new, desc, typed, request: gr.Request):
        summary = h.save_label(settings, new, desc, who(request, typed))
        return (gr.update(choices=h.label_choices(settings), value=summary["label"]), h.labels_table(settings),
                search.first_query(summary), f"Label **{summary['label']}** saved · {panels.label_status(summary)}")

    wire(tab.save.click, on_save, [tab.new_name, tab.new_desc, page.name],
         [page.label, tab.table, query, page.status], status=page.status)

    def on_guide(chosen):
        if not chosen:
            return "", ""
        shown = h.guide(settings, chosen)
        return shown["text"], views.guide(shown, unpin=False)

    def on_guide_view(chosen):
        return views.guide(h.guide(settings, chosen), unpin=False) if chosen else ""

    # Opening the tab refreshes the view only: a reply that landed after the expert began
    # typing would put the old text back into the box, and Save would then store that.
    wire(page.label.change, on_guide, [page.label], [tab.guide_text, tab.guide_view])
    wire(page.tabs.select, on_guide_view, [page.label], [tab.guide_view])

    def on_guide_save(chosen, text, typed, request: gr.Request):
        if not chosen:
            raise InputError("pick a label above first: guidelines are for it")
        shown = h.save_guidelines(settings, chosen, text, who(request, typed))
        return views.guide(shown, unpin=False), f"Guidelines of **{chosen}** saved."

    wire(tab.guide_save.click, on_guide_save, [page.label, tab.guide_text, page.name], [tab.guide_view, page.status],
         status=page.status)
