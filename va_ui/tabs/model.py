"""The Model tab: build; every version with its corpus estimate; approve any version, roll back.

Approving goes through ``registry.approve`` with its rules: a version whose checks failed
is refused, and one clearly worse than the served version needs a reason, which the dialog
asks for and the stage history records.
"""
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
    quality: gr.Markdown
    picker: gr.Dropdown  # the version to approve
    approve_ask: gr.Button
    rollback: gr.Button
    confirm_box: gr.Group
    checks: gr.Markdown
    override: gr.Textbox  # the reason, asked when the registry needs one
    confirm: gr.Button
    cancel: gr.Button
    pending: gr.State  # what the dialog shows: version, whether it needs a reason, the stage reason
    versions: gr.Markdown
    history: gr.Dataframe
    curve: gr.HTML
    previews: gr.HTML

    @property
    def outputs(self) -> list:
        """What :func:`shown` fills, in its order."""
        return [self.quality, self.versions, self.history, self.picker, self.approve_ask, self.rollback, self.curve,
                self.previews]


def layout(page: Page) -> ModelTab:
    with gr.Tab("Model", id="model"):
        with gr.Row():
            build = gr.Button("Build model now", variant="primary", elem_id="va-build-model")
            features = gr.Dropdown(choices=[("as the last model", ""), ("CLIP", "clip"),
                                            ("camera motion", "motion"), ("both", "both")],
                                   value="", label="Train on", elem_id="va-features")
        quality = gr.Markdown("", elem_id="va-quality")
        with gr.Row(equal_height=True):
            picker = gr.Dropdown(choices=[], value=None, label="Version", scale=3, elem_id="va-version",
                                 info="any version can be approved; the served one is marked")
            approve_ask = gr.Button("Approve…", scale=1, elem_id="va-approve", interactive=False)
            rollback = gr.Button("Roll back", scale=1, elem_id="va-rollback", interactive=False)
        with gr.Group(visible=False) as confirm_box:
            checks = gr.Markdown("", elem_id="va-checks")
            override = gr.Textbox(label="Why serve this version anyway? (recorded in the stage history)",
                                  visible=False, elem_id="va-override")
            with gr.Row():
                confirm = gr.Button("Yes, approve this version", variant="primary", elem_id="va-confirm")
                cancel = gr.Button("Cancel", elem_id="va-cancel")
        pending = gr.State(None)
        versions = gr.Markdown("", elem_id="va-versions")
        history = gr.Dataframe(value=None, interactive=False, wrap=True, max_height=260,
                               label="Stage history: who approved or retired which version, and why",
                               elem_id="va-stage-history")
        gr.Markdown("**AP against number of labels**, one point per model version")
        curve = gr.HTML(panels.ap_chart(pl.DataFrame()), js_on_load=None, elem_id="va-curve")
        previews = gr.HTML("", js_on_load=None, elem_id="va-previews")
    return ModelTab(build, features, quality, picker, approve_ask, rollback, confirm_box, checks, override, confirm,
                    cancel, pending, versions, history, curve, previews)


def shown(settings, chosen: str | None, picked: int | None = None, ls=None) -> tuple:
    """The Model tab's outputs (:attr:`ModelTab.outputs`) for the chosen label.

    ``picked``: the version picked before, kept when it still exists; else the latest.
    ``ls``: the label's label set when the caller has it.
    """
    if not chosen:
        return ("Pick a label to see its model.", "", None, gr.update(choices=[], value=None),
                gr.update(interactive=False), gr.update(value="Roll back", interactive=False), None, "")
    view = h.model_view(settings, chosen, ls=ls)
    history = view["history"]
    rows = history.sort("model_version", descending=True).to_dicts() if history.height else []  # no model: no columns
    numbers = [int(r["model_version"]) for r in rows]
    back = h.rollback_version(settings, chosen) if rows else None
    return (panels.quality(settings, chosen, history), panels.versions(history),
            h.stage_history(settings, chosen) if rows else None,
            gr.update(choices=[(panels.version_choice(r), int(r["model_version"])) for r in rows],
                      value=picked if picked in numbers else (numbers[0] if numbers else None)),
            gr.update(interactive=bool(rows)),
            gr.update(value=f"Roll back to v{back}" if back else "Roll back", interactive=back is not None),
            panels.ap_chart(history), panels.previews(view["previews"]))


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

    wire(label.change, lambda chosen: shown(settings, chosen), [label], model_out)
    wire(page.tabs.select, lambda chosen, picked: shown(settings, chosen, picked), [label, tab.picker], model_out)

    def dialog(chosen, version, rollback: bool):
        checks = h.approval_checks(settings, chosen, version)
        needs_reason = bool(checks["override_needed"])
        reason = (f"rolled back from v{checks['approved_now'][-1]} in the labelling app"
                  if rollback and checks["approved_now"] else "approved in the labelling app")
        return (gr.update(visible=True), panels.checks(checks, rollback=rollback),
                gr.update(visible=needs_reason, value=""),
                gr.update(interactive=checks["passed"] and checks["stage"] != "approved",
                          value=("Yes, roll back" if rollback else "Yes, approve this version")
                          + (" with this reason" if needs_reason else "")),
                {"version": checks["model_version"], "needs_reason": needs_reason, "reason": reason})

    dialog_out = [tab.confirm_box, tab.checks, tab.override, tab.confirm, tab.pending]

    def on_approve_ask(chosen, picked):
        if not chosen:
            raise InputError("pick a label first")
        if picked is None:
            raise InputError(f"{chosen} has no model version to approve yet: build one first")
        return dialog(chosen, int(picked), rollback=False)

    wire(tab.approve_ask.click, on_approve_ask, [label, tab.picker], dialog_out, status=status)

    def on_rollback(chosen):
        if not chosen:
            raise InputError("pick a label first")
        back = h.rollback_version(settings, chosen)
        if back is None:
            raise InputError(f"no version of {chosen} was served before the one served now: nothing to roll back to")
        return dialog(chosen, back, rollback=True)

    wire(tab.rollback.click, on_rollback, [label], dialog_out, status=status)
    tab.cancel.click(lambda: gr.update(visible=False), None, tab.confirm_box)

    def on_confirm(chosen, pending, reason, typed, request: gr.Request):
        if not pending:
            raise InputError("press Approve first to see the checks of the version you approve")
        if pending["needs_reason"] and not (reason or "").strip():
            raise InputError(f"v{pending['version']} is clearly worse than the served version: say why it should "
                             "be served anyway (the reason is recorded in the stage history)")
        done = h.approve(settings, chosen, pending["version"], who(request, typed), override=reason,
                         reason=pending["reason"])
        return (gr.update(visible=False), panels.approved(done), *shown(settings, chosen, done["model_version"]))

    wire(tab.confirm.click, on_confirm, [label, tab.pending, tab.override, page.name],
         [tab.confirm_box, status, *model_out], status=status)
