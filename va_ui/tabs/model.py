"""The Model tab: build, every version's quality, approve with the checks shown first."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import polars as pl

from va_core.errors import InputError
from va_ui import handlers as h
from va_ui import panels
from va_ui.tabs.page import Page, who, wire


@dataclass(frozen=True)
class ModelTab:
    build: gr.Button
    features: gr.Dropdown
    approve_ask: gr.Button
    quality: gr.Markdown
    confirm_box: gr.Group
    checks: gr.Markdown
    confirm: gr.Button
    cancel: gr.Button
    approve_version: gr.State  # the version whose checks the dialog shows
    curve: gr.HTML
    previews: gr.HTML

    @property
    def outputs(self) -> list:
        """What :func:`shown` fills, in its order."""
        return [self.quality, self.curve, self.previews, self.approve_ask]


def layout(page: Page) -> ModelTab:
    with gr.Tab("Model", id="model"):
        with gr.Row():
            build = gr.Button("Build model now", variant="primary", elem_id="va-build-model")
            features = gr.Dropdown(choices=[("as the last model", ""), ("CLIP", "clip"),
                                            ("camera motion", "motion"), ("both", "both")],
                                   value="", label="Train on", elem_id="va-features")
            approve_ask = gr.Button("Approve…", elem_id="va-approve")
        quality = gr.Markdown("", elem_id="va-quality")
        with gr.Group(visible=False) as confirm_box:
            checks = gr.Markdown("", elem_id="va-checks")
            with gr.Row():
                confirm = gr.Button("Yes, approve this version", variant="primary", elem_id="va-confirm")
                cancel = gr.Button("Cancel", elem_id="va-cancel")
        approve_version = gr.State(None)
        gr.Markdown("**AP against number of labels**, one point per model version")
        curve = gr.HTML(panels.ap_chart(pl.DataFrame()), js_on_load=None, elem_id="va-curve")
        previews = gr.HTML("", js_on_load=None, elem_id="va-previews")
    return ModelTab(build, features, approve_ask, quality, confirm_box, checks, confirm, cancel, approve_version,
                    curve, previews)


def shown(settings, chosen: str | None) -> tuple:
    """The Model tab's outputs (:attr:`ModelTab.outputs`) for the chosen label."""
    if not chosen:
        return "Pick a label to see its model.", None, "", gr.update(interactive=False)
    view = h.model_view(settings, chosen)
    history = view["history"]
    return (panels.quality(settings, chosen, history), panels.ap_chart(history),
            panels.previews(view["previews"]), gr.update(interactive=history.height > 0))


def wire_tab(page: Page, tab: ModelTab, build_buttons: list[gr.Button]) -> None:
    """``build_buttons``: every Build button of the page (this tab's and Annotate's B)."""
    settings, label, status = page.settings, page.label, page.status
    model_out = tab.outputs

    def on_build(chosen, feature_set):
        if not chosen:
            raise InputError("pick a label first")
        built = h.build(settings, chosen, features=feature_set or None)
        return (panels.build_status(built), *shown(settings, chosen))

    for button in (*build_buttons, tab.build):
        # the desk then takes its queue from the new feeds (the clip on screen stays)
        wire(button.click, on_build, [label, tab.features], [status, *model_out], status=status).then(
            None, None, None, js="() => { window.vaDesk && window.vaDesk.refill(); }")

    for trigger in (page.tabs.select, label.change):
        wire(trigger, lambda chosen: shown(settings, chosen), [label], model_out)

    def on_approve_ask(chosen):
        if not chosen:
            raise InputError("pick a label first")
        checks = h.approval_checks(settings, chosen)
        return gr.update(visible=True), panels.checks(checks), gr.update(interactive=checks["passed"]), \
            checks["model_version"]

    wire(tab.approve_ask.click, on_approve_ask, [label], [tab.confirm_box, tab.checks, tab.confirm,
                                                          tab.approve_version])
    tab.cancel.click(lambda: gr.update(visible=False), None, tab.confirm_box)

    def on_confirm(chosen, version, typed, request: gr.Request):
        done = h.approve(settings, chosen, version, who(request, typed))
        return (gr.update(visible=False), panels.approved(done), *shown(settings, chosen))

    wire(tab.confirm.click, on_confirm, [label, tab.approve_version, page.name],
         [tab.confirm_box, status, *model_out], status=status)
