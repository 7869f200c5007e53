"""The Mistakes tab: labels the model contradicts and clips the annotators disagree on, answered in place."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from va_ui import handlers as h
from va_ui import views
from va_ui.tabs.page import Page, answer_card, refused_as_message, session_of, who, wire

LISTS = (("yes_scored_low", "Labelled yes, scored low by the model"),
         ("no_scored_high", "Labelled no, scored high by the model"),
         ("conflicts", "Annotators disagree"))


@dataclass(frozen=True)
class MistakesTab:
    refresh: gr.Button
    summary: gr.Markdown
    grids: tuple  # one gr.HTML per list of LISTS


def layout(page: Page) -> MistakesTab:
    with gr.Tab("Mistakes", id="mistakes"):
        with gr.Row(equal_height=True):
            summary = gr.Markdown("Pick a label to see where its labels and its model disagree.",
                                  elem_id="va-mistakes-summary")
            refresh = gr.Button("Refresh", scale=0, elem_id="va-mistakes-refresh")
        gr.Markdown("Answer again in place (**Yes**, **No**, **?**, or Y / N / ? on a focused card): the answer is a "
                    "new event of yours, as anywhere else.")
        grids = []
        for kind, title in LISTS:
            gr.Markdown(f"**{title}**")
            grids.append(gr.HTML(views.grid([], "Nothing here."), js_on_load=views.GRID_JS,
                                 elem_id=f"va-mistakes-{kind.replace('_', '-')}"))
    return MistakesTab(refresh, summary, tuple(grids))


def wire_tab(page: Page, tab: MistakesTab) -> None:
    settings, label, status = page.settings, page.label, page.status

    def on_show(chosen):
        if not chosen:
            return ("Pick a label to see where its labels and its model disagree.",
                    *[views.grid([], "Nothing here.") for _ in LISTS])
        found = h.mistakes_view(settings, chosen)
        if found["model_version"] is None:
            head = f"{chosen} has no model yet: only the annotators' disagreements are listed. Build to see more."
        else:
            head = (f"By **{chosen} v{found['model_version']}** (threshold {found['threshold']:.3f}): "
                    f"{len(found['yes_scored_low'])} yes scored low, {len(found['no_scored_high'])} no scored high, "
                    f"{len(found['conflicts'])} disagreements.")
        return (head, *[views.grid(found[kind], "Nothing here.", like=False) for kind, _ in LISTS])

    outputs = [tab.summary, *tab.grids]
    for trigger in (tab.refresh.click, label.change, page.tabs.select):
        wire(trigger, on_show, [label], outputs)

    @refused_as_message
    def on_answer(chosen, typed, evt: gr.EventData, request: gr.Request):
        return answer_card(settings, chosen, evt._data or {}, who(request, typed), "mistakes",
                           session=session_of(request))

    for grid in tab.grids:
        # answers on different cards must all land, as in Search
        grid.click(on_answer, [label, page.name], status, trigger_mode="multiple").failure(
            on_show, [label], outputs)
