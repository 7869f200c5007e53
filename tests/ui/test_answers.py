"""Answers beyond yes and no, in headless Chromium: unsure in the desk, the Search grid's keyboard,
the Mistakes tab, per-label guidelines shown while annotating."""
from __future__ import annotations

import json
import re
import shutil

import polars as pl
import pytest
from playwright.sync_api import expect

from test_browser import (_events, _open, _pick_label, _review_keys, _review_row, _shown_key, _start, _tab,
                          _wait_saved, _wait_text, browser, colour)  # noqa: F401  (fixtures)
from va_core import guidelines, train
from va_core.registry import load_model
from va_core.labels import LabelEvent, label_set, record_events
from va_core.config import Settings
from va_core.warehouse import Warehouse

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(_ingested_home_template, tmp_path_factory, app_server):
    home = tmp_path_factory.mktemp("answers") / "va-home"
    shutil.copytree(_ingested_home_template, home)
    server = app_server(home, home.parent / "ui.log")
    settings = Settings(home=home, warehouse_uri=str(home / "warehouse"), encoder="tiny")
    yield {"server": server, "home": home, "wh": Warehouse(str(home / "warehouse")), "settings": settings}
    server.stop()


def _seed(wh, truth, colour, label, n=4):
    """A few truthful answers of each class, so the label can be built."""
    yes = [k for k, r in truth.items() if r["colour"] == colour][:n]
    no = [k for k, r in truth.items() if r["colour"] != colour][:n]
    record_events(wh, [LabelEvent(label, k, True, "seed") for k in yes] + [LabelEvent(label, k, False, "seed")
                                                                         for k in no])
    return yes, no


def _queued_keys(page) -> set[str]:
    return set(page.evaluate("() => [window.vaDesk.current, ...window.vaDesk.queue].filter(Boolean)"
                             ".map((i) => i.clip_key)"))


def test_unsure_in_the_desk_is_stored_not_trained_on_and_not_fed_again(served, browser, truth, colour):
    wh = served["wh"]
    label = f"{colour}_doubt"
    seeded = _seed(wh, truth, colour, label)
    page = _open(browser, served["server"].url, "una")
    _pick_label(page, label)
    _start(page, "random")
    first = _shown_key(page)
    page.keyboard.press("?")  # unsure queues like yes and no
    second = _shown_key(page)
    assert second != first
    page.keyboard.press("n")
    page.keyboard.press("u")  # undo walks back through the queue: the second clip is back
    assert _shown_key(page) == second
    page.keyboard.press("?")
    _wait_saved(page)
    _wait_text(page, "#va-progress", "2 unsure")
    events = _events(served, label).filter(pl.col("annotator") == "una").sort("created_at")
    latest = events.group_by("clip_key", maintain_order=True).agg(pl.col("value").last(), pl.col("unsure").last())
    assert {r["clip_key"]: (r["value"], r["unsure"]) for r in latest.iter_rows(named=True)} == {
        first: (None, True), second: (None, True)}
    ls = label_set(wh, label)
    assert set(ls.unsure_keys) == {first, second} and not {first, second} & set(ls.positives + ls.negatives)

    # not fed again: a fresh start of every source leaves them out
    for source in ("random", "next"):
        page.locator("#va-desk .va-source").select_option(source)
        _shown_key(page)
        page.wait_for_function("() => !window.vaDesk.fetching")
        assert not _queued_keys(page) & {first, second}, source
    # not trained on: Build, and the version's training clips are the seeded ones only
    _tab(page, "Model")
    page.locator("#va-build-model").click()
    _wait_text(page, "#va-quality", "v1", timeout=90_000)
    artifact = wh.read("models", where={"label": label})["artifact"][0]
    assert set(json.loads(artifact)["training_clips"]) == set(seeded[0] + seeded[1])
    # visible in Review, with a filter of its own
    _tab(page, "Review")
    _wait_text(page, "#va-review-table", seeded[0][0])  # the whole label set first, unsure clips with it
    page.locator("#va-review-filter").get_by_label("unsure").check()
    page.wait_for_function("(k) => !document.querySelector('#va-review-table').innerText.includes(k)",
                           arg=seeded[0][0], timeout=30_000)
    table = page.locator("#va-review-table").inner_text()
    assert second in table and "una: unsure" in table and seeded[0][0] not in table
    page.context.close()


def test_review_sets_the_checked_rows_to_unsure(served, browser, truth, colour):
    wh = served["wh"]
    label = f"{colour}_recheck"
    keys = sorted(truth)[:4]
    record_events(wh, [LabelEvent(label, k, True, "rita", "search") for k in keys[:3]]
                  + [LabelEvent(label, keys[3], True, "ana", "search")])
    page = _open(browser, served["server"].url, "rita")
    _tab(page, "Review")  # first, so the table is drawn once, for the label (a redraw unchecks the rows)
    _pick_label(page, label)
    _wait_text(page, "#va-review-table", "4 clips")
    picked = [keys[0], keys[1], keys[3]]
    for key in picked:
        _review_row(page, key).locator(".va-pick").check()
    expect(page.locator("#va-review-table .va-picked")).to_have_text("3 selected")
    before, version = _events(served, label).height, wh.version("label_events")
    page.locator("#va-review-table .va-bulk-unsure").click()
    _wait_text(page, "#va-status", "3 clips changed to unsure by rita")
    # ana's yes on keys[3] stands: rita's unsure withdraws only her own vote, and the page says so
    assert "1 of them still has a yes or no from someone else" in page.locator("#va-status").inner_text()
    events = _events(served, label)
    assert events.height == before + 3
    added = events.sort("created_at").tail(3)
    assert sorted(added.select("clip_key", "value", "unsure", "annotator", "source").rows()) == sorted(
        (k, None, True, "rita", "review") for k in picked)
    assert wh.version("label_events") == version + 1  # the three in one commit
    ls = label_set(wh, label)
    assert sorted(ls.unsure_keys) == keys[:2] and sorted(ls.positives) == keys[2:]
    # Review's unsure filter shows them, and only them
    page.locator("#va-review-filter").get_by_label("unsure").check()
    page.wait_for_function("n => document.querySelectorAll('#va-review-table tr[data-key]').length === n", arg=2)
    assert sorted(_review_keys(page)) == keys[:2]
    assert page.locator("#va-review-table").inner_text().count("rita: unsure") == 2
    page.context.close()


def test_search_grid_answers_the_focused_card_from_the_keyboard(served, browser, truth, colour):
    label = f"{colour}_keys"
    page = _open(browser, served["server"].url, "kai")
    page.locator("#va-new-label input, #va-new-label textarea").first.fill(label)
    page.locator("#va-new-desc input, #va-new-desc textarea").first.fill(f"a {colour} background")
    page.locator("#va-save-label").click()
    _wait_text(page, "#va-status", "saved")
    _tab(page, "Search")
    page.locator("#va-search").click()
    cards = page.locator("#va-results .va-card")
    cards.first.wait_for()
    keys = cards.evaluate_all("cs => cs.map(c => c.dataset.key)")
    cards.nth(2).focus()
    page.keyboard.press("y")
    expect(cards.nth(2)).to_have_class(re.compile(r"\bva-yes\b"))
    page.keyboard.press("ArrowRight")  # the focus moves to the next card, which ? answers
    page.keyboard.press("?")
    expect(cards.nth(3)).to_have_class(re.compile(r"\bva-unsure\b"))
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("n")
    page.wait_for_function(f"() => (document.querySelector('#va-status')?.innerText || '').includes('1 no')")
    page.wait_for_timeout(500)
    # each card's answer is sent on its own, so answers to different cards may land in any order
    events = _events(served, label).sort("rank")
    got = [(r["clip_key"], r["value"], bool(r["unsure"]), r["source"], r["rank"]) for r in events.iter_rows(named=True)]
    assert got == [(keys[1], False, False, "search", 2), (keys[2], True, False, "search", 3),
                   (keys[3], None, True, "search", 4)]
    # a change of mind at once: the card keeps the last press, whichever request lands first
    cards.nth(5).focus()
    page.keyboard.press("y")
    page.keyboard.press("n")
    expect(cards.nth(5)).to_have_class(re.compile(r"\bva-no\b"))
    page.wait_for_function("() => (document.querySelector('#va-status')?.innerText || '').includes('2 no')")
    page.wait_for_timeout(500)
    ls = label_set(served["wh"], label)
    assert keys[5] in ls.negatives and keys[5] not in ls.positives
    page.context.close()


def test_mistakes_tab_lists_contradictions_and_answers_in_place(served, browser, truth, colour):
    wh = served["wh"]
    label = f"{colour}_mistakes"
    yes, no = _seed(wh, truth, colour, label, n=5)
    record_events(wh, [LabelEvent(label, yes[0], False, "other"), LabelEvent(label, no[0], True, "other")])
    train.train_label(served["settings"], label)
    top = wh.read("clip_scores", where={"label": label}).sort("score", descending=True)
    threshold = load_model(wh, label).threshold
    labelled = set(label_set(wh, label).labelled)
    wrong = next(k for k, s in top.select("clip_key", "score").iter_rows() if k not in labelled and s >= threshold)
    record_events(wh, [LabelEvent(label, wrong, False, "late")])  # a no the model scores high

    page = _open(browser, served["server"].url, "mo")
    _pick_label(page, label)
    _tab(page, "Mistakes")
    _wait_text(page, "#va-mistakes-summary", "v1")
    high = page.locator(f"#va-mistakes-no-scored-high .va-card[data-key='{wrong}']")
    high.wait_for()
    expect(high).to_contain_text("late: no")
    conflicts = page.locator("#va-mistakes-conflicts .va-card").evaluate_all("cs => cs.map(c => c.dataset.key)")
    assert set(conflicts) == {yes[0], no[0]}
    high.locator(".va-btn-yes").click()  # the late no was a mistake: mo says yes
    page.locator(f"#va-mistakes-conflicts .va-card[data-key='{yes[0]}'] .va-btn-yes").click()
    page.wait_for_function("() => (document.querySelector('#va-status')?.innerText || '').includes('yes')")
    page.wait_for_timeout(500)
    mine = _events(served, label).filter(pl.col("annotator") == "mo")
    for _ in range(20):
        if mine.height == 2:
            break
        page.wait_for_timeout(300)
        mine = _events(served, label).filter(pl.col("annotator") == "mo")
    assert {(r["clip_key"], r["value"], r["source"]) for r in mine.iter_rows(named=True)} == {
        (wrong, True, "mistakes"), (yes[0], True, "mistakes")}
    # after a refresh the late no, now outvoted to a tie by mo's yes, is a disagreement, not a no scored high
    page.locator("#va-mistakes-refresh").click()
    page.locator(f"#va-mistakes-conflicts .va-card[data-key='{wrong}']").wait_for()
    expect(page.locator(f"#va-mistakes-no-scored-high .va-card[data-key='{wrong}']")).to_have_count(0)
    page.context.close()


def test_guidelines_are_shown_while_annotating_and_edited_in_place(served, browser, truth, colour):
    wh = served["wh"]
    label = f"{colour}_guided"
    yes, no = _seed(wh, truth, colour, label, n=1)
    guidelines.set_text(wh, label, f"Yes: the background is {colour}.\nNo: any other colour.", annotator="lead")
    guidelines.pin_example(wh, label, yes[0], True, annotator="lead", note="the typical one")
    page = _open(browser, served["server"].url, "gil")
    _pick_label(page, label)
    _start(page, "random")
    guide = page.locator("#va-desk .va-guide")
    _wait_text(page, "#va-desk .va-guide", f"the background is {colour}")
    expect(guide.locator(f".va-example-yes[data-key='{yes[0]}']")).to_contain_text("the typical one")
    # pin the clip on screen as a no example: stored, and shown at once
    shown = _shown_key(page)
    page.locator("#va-desk .va-pin[data-pin='no']").click()
    guide.locator(f".va-example-no[data-key='{shown}']").wait_for()
    assert [e["clip_key"] for e in guidelines.guidelines(wh, label).no] == [shown]
    guide.locator(f".va-example-yes[data-key='{yes[0]}'] .va-unpin").click()
    expect(guide.locator(".va-example-yes")).to_have_count(0)
    assert guidelines.guidelines(wh, label).yes == []
    # the Label tab edits the text, which the desk shows when it starts again
    _tab(page, "Label")
    box = page.locator("#va-guide-text textarea")
    expect(box).to_have_value(f"Yes: the background is {colour}.\nNo: any other colour.")
    box.fill("Yes only when the whole background is the colour.")
    page.locator("#va-guide-save").click()
    _wait_text(page, "#va-status", "Guidelines of")
    assert guidelines.guidelines(wh, label).text == "Yes only when the whole background is the colour."
    _start(page)
    _wait_text(page, "#va-desk .va-guide", "whole background")
    page.context.close()
