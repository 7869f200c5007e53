"""The Label tab: create a label or change its description; every label with its counts."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from va_ui import handlers as h
from va_ui import panels
from va_ui.tabs import search
from va_ui.tabs.page import Page, who, wire


@dataclass(frozen=True)
class LabelTab:
    new_name: gr.Textbox
    new_desc: gr.Textbox
    save: gr.Button
    table: gr.Dataframe  # every label: other tabs refresh it after an answer


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
    return LabelTab(new_name, new_desc, save, table)


def wire_tab(page: Page, tab: LabelTab, query: gr.Textbox) -> None:
    """``query``: the Search tab's query, which a saved label's description fills."""
    settings = page.settings

    def on_save(new, desc, typed, request: gr.Request):
        summary = h.save_label(settings, new, desc, who(request, typed))
        return (gr.update(choices=h.label_choices(settings), value=summary["label"]), h.labels_table(settings),
                search.first_query(summary), f"Label **{summary['label']}** saved · {panels.label_status(summary)}")

    wire(tab.save.click, on_save, [tab.new_name, tab.new_desc, page.name],
         [page.label, tab.table, query, page.status], status=page.status)
