"""The labelling app: Label, Search, Annotate, Model, Review and Mistakes on one page.

The header (label picker, annotator, status line) is laid out here; each tab is its own
module under :mod:`va_ui.tabs`, wired to :mod:`va_ui.handlers`, and every action goes
through va_core. ``build_app(settings)`` returns the Blocks; :mod:`va_ui.server` serves
it with the clip route and the login.
"""
from __future__ import annotations

import gradio as gr

from va_ui import handlers as h
from va_ui import panels
from va_ui.tabs import annotate, label, mistakes, model, review, search
from va_ui.tabs.page import Page

TITLE = "va · Video Annotator"


def build_app(settings) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as app:
        remembered_name = gr.BrowserState("", storage_key="va-annotator")
        with gr.Row(equal_height=True):
            gr.Markdown(f"## {TITLE}")
            chosen = gr.Dropdown(choices=h.label_choices(settings), value=None, label="Label",
                                 info="what you are teaching va to find", scale=2, elem_id="va-label")
            # Shown as the page loads: a login names the annotator, else the typed name (va_ui.logins).
            name = gr.Textbox(label="Your name", placeholder="e.g. maria", visible=False, scale=1,
                              elem_id="va-name")
            logged_in = gr.Markdown(visible=False, elem_id="va-who")
        banner = panels.encoder_banner(settings)
        if banner:
            gr.HTML(f'<div class="va-banner">{banner}</div>')
        status = gr.Markdown("", elem_id="va-status")

        with gr.Tabs() as tabs:
            page = Page(settings, chosen, name, status, tabs)
            label_tab = label.layout(page)
            search_tab = search.layout(page)
            annotate_tab = annotate.layout(page)
            model_tab = model.layout(page)
            review_tab = review.layout(page)
            mistakes_tab = mistakes.layout(page)

        def on_load(remembered, request: gr.Request):
            user = getattr(request, "username", None)
            # A name typed before the page finished loading wins over the remembered one.
            typed = gr.update(value=remembered, visible=not user) if remembered else gr.update(visible=not user)
            return (typed, gr.update(value=f"Labelling as **{user}**" if user else "", visible=bool(user)),
                    gr.update(choices=h.label_choices(settings)), h.labels_table(settings))

        app.load(on_load, [remembered_name], [name, logged_in, chosen, label_tab.table])
        name.change(lambda n: n, name, remembered_name)

        label.wire_tab(page, label_tab, query=search_tab.query)
        search.wire_tab(page, search_tab)
        model.wire_tab(page, model_tab, build_buttons=[annotate_tab.build])
        annotate.wire_tab(page, annotate_tab, labels_table=label_tab.table, model_tab=model_tab)
        review.wire_tab(page, review_tab)
        mistakes.wire_tab(page, mistakes_tab)

    app.queue(default_concurrency_limit=8)
    return app
