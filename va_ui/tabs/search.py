"""The Search tab: text-to-video search and "more like this", each card answered in place."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from va_core.errors import InputError
from va_ui import handlers as h
from va_ui import panels, views
from va_ui.tabs.page import Page, answer_card, refused_as_message, session_of, who, wire


@dataclass(frozen=True)
class SearchTab:
    query: gr.Textbox
    k: gr.Slider
    go: gr.Button
    results: gr.HTML
    found: gr.State  # the clip keys shown, in rank order


def layout(page: Page) -> SearchTab:
    with gr.Tab("Search", id="search"):
        with gr.Row(equal_height=True):
            query = gr.Textbox(label="Find clips", placeholder="describe what you look for",
                               scale=4, elem_id="va-query")
            k = gr.Slider(4, 48, value=h.SEARCH_K, step=4, label="How many", scale=1)
            go = gr.Button("Search", variant="primary", scale=1, elem_id="va-search")
        gr.Markdown("Each clip plays on a loop; mark it **Yes** if it shows the label, **No** if it does not, "
                    "**?** if you cannot tell. Keyboard: Tab to a card (arrow keys to the next), then Y, N or ?.")
        results = gr.HTML(views.grid([], "Search to see clips."), js_on_load=views.GRID_JS,
                          elem_id="va-results")
        found = gr.State([])
    return SearchTab(query, k, go, results, found)


def first_query(summary: dict) -> str:
    """What Search looks for when a label is chosen: its description (its zero-shot query)."""
    return summary.get("description") or summary["label"].replace("_", " ")


def wire_tab(page: Page, tab: SearchTab) -> None:
    settings, label, status = page.settings, page.label, page.status

    def on_label(chosen):
        if not chosen:
            return gr.update(), ""
        summary = h.label_summary(settings, chosen)
        return first_query(summary), panels.label_status(summary)

    # Picked by hand only: a label chosen by Save comes with its query and its own message.
    wire(label.input, on_label, [label], [tab.query, status], status=status)

    def on_search(chosen, text, n):
        if not chosen:
            raise InputError("pick or create a label first: search results are labelled for it")
        items = h.search(settings, chosen, text, int(n))
        return views.grid(items, "Nothing found.", pins=True), [i["clip_key"] for i in items], gr.update()

    for trigger in (tab.go.click, tab.query.submit):
        wire(trigger, on_search, [label, tab.query, tab.k], [tab.results, tab.found, status], status=status)

    @refused_as_message
    def on_mark(chosen, typed, keys, evt: gr.EventData, request: gr.Request):
        data = evt._data or {}
        key = data.get("clip_key")
        source = "similar" if data.get("source") == "similar" else "search"
        rank = {"rank": keys.index(key) + 1} if keys and key in keys else None
        return answer_card(settings, chosen, data, who(request, typed), source, rank, session=session_of(request))

    def on_mark_failed(chosen, keys):
        # The card was marked before the server answered; show what is really stored.
        items = h.enrich(settings, chosen, [{"clip_key": key, "source": "search"} for key in keys]) if chosen else []
        return views.grid(items, "Search to see clips.", pins=True)

    def on_like(chosen, n, evt: gr.EventData):
        key = (evt._data or {}).get("clip_key")
        items = h.more_like(settings, chosen, key, int(n))
        return (views.grid(items, "Nothing like it.", pins=True), [i["clip_key"] for i in items],
                f"Clips most like **{key}** (by embedding).")

    wire(tab.results.like, on_like, [label, tab.k], [tab.results, tab.found, status], status=status)

    def on_pin(chosen, typed, evt: gr.EventData, request: gr.Request):
        data = evt._data or {}
        if not chosen:
            raise InputError("pick a label first: examples are pinned to it")
        value = {"yes": True, "no": False}.get(data.get("pin"))
        if value is None:
            raise InputError(f"a clip is pinned as a yes or a no example, got {data.get('pin')!r}")
        h.pin(settings, chosen, data.get("clip_key"), value, who(request, typed))
        return f"{data.get('clip_key')} pinned as a **{data.get('pin')}** example of {chosen} (shown in Annotate)."

    # a pin edits the label's guidelines
    wire(tab.results.edit, on_pin, [label, page.name], [status], status=status)

    # Clicks on different cards must all land, so none is dropped while one is saving.
    tab.results.click(on_mark, [label, page.name, tab.found], status, trigger_mode="multiple").failure(
        on_mark_failed, [label, tab.found], tab.results)
