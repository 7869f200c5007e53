"""The labelling app end to end: `python -m va_ui` on 127.0.0.1, driven in headless Chromium.

A simulated expert answers from the sample corpus's ground truth, with the keyboard.
Screenshots of each part go to docs/screenshots/.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from playwright.sync_api import expect

from va_core.warehouse import Warehouse

pytestmark = pytest.mark.browser

# The README's screenshots are refreshed with VA_SCREENSHOTS=docs/screenshots; a plain test
# run keeps its screenshots out of the working tree.
SHOTS = Path(os.environ.get("VA_SCREENSHOTS") or tempfile.mkdtemp(prefix="va-screenshots-")).resolve()
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
EMBEDDINGS_ONLY_KEY = "paper-import-0001|0"


def _chromium():
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: run `make browser` (Debian's chromium package)")
    return path


@pytest.fixture(scope="module")
def served(_ingested_home_template, tmp_path_factory, app_server):
    """The app on a copy of the shared ingested home, plus one clip imported as embeddings only.

    Module-scoped (one server for these tests), so it copies the session template itself.
    """
    home = tmp_path_factory.mktemp("browser") / "va-home"
    shutil.copytree(_ingested_home_template, home)
    wh = Warehouse(str(home / "warehouse"))
    some = wh.read("clip_embeddings", where={"encoder_id": "tiny:vit-w64-l2-p8-i64-d64:random-seed0"}).row(0, named=True)
    wh.append("clips", pa.table({"clip_key": [EMBEDDINGS_ONLY_KEY], "video_id": ["paper-import-0001"],
                                 "frame_in": [0], "frame_out": [47], "start_s": [0.0], "end_s": [2.0]}))
    wh.append("clip_embeddings", [{"clip_key": EMBEDDINGS_ONLY_KEY, "video_id": "paper-import-0001",
                                   "encoder_id": some["encoder_id"], "embedding": some["embedding"]}])
    server = app_server(home, home.parent / "ui.log")
    yield {"server": server, "home": home, "wh": wh}
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def colour(truth):
    """The label the experts teach: the most common background colour of the corpus."""
    return Counter(r["colour"] for r in truth.values()).most_common(1)[0][0]


def _open(browser, url: str, name: str):
    page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.locator("#va-name input, #va-name textarea").first.fill(name)
    return page


def _wait_text(page, selector: str, text: str, timeout: float = 30_000):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                               arg=[selector, text], timeout=timeout)
    except PlaywrightTimeout:
        shown = page.locator(selector).inner_text() if page.locator(selector).count() else "(absent)"
        status = page.locator("#va-status").inner_text()
        raise AssertionError(f"{text!r} never appeared in {selector}: {shown[:300]!r}; status {status!r}") from None


def _wait_videos(page, selector: str):
    """Every clip under ``selector`` has a frame to show (they play from the clip route)."""
    page.wait_for_function("s => [...document.querySelectorAll(s + ' video')].every(v => v.readyState >= 2)",
                           arg=selector)


def _tab(page, name: str):
    page.get_by_role("tab", name=name).click()


def _pick_label(page, label: str):
    box = page.locator("#va-label input")
    box.click()
    box.fill(label)
    page.get_by_role("option", name=label, exact=True).click()


def _shown_key(page) -> str:
    player = page.locator("#va-desk .va-stage .va-player[data-key]")
    player.wait_for()
    return player.get_attribute("data-key")


def _start(page, source: str | None = None):
    """Annotate: pick a source (which starts it) or press Start."""
    _tab(page, "Annotate")
    if source is None:
        page.locator("#va-desk .va-start").click()
    else:
        page.locator("#va-desk .va-source").select_option(source)
    _shown_key(page)


def _wait_saved(page):
    """Every answer the page queued is stored (or shown as not saved)."""
    page.wait_for_function("() => window.vaDesk && !window.vaDesk.sending && window.vaDesk.pending.length === 0",
                           timeout=60_000)


def _session_count(page) -> int:
    text = page.locator("#va-progress").inner_text()
    m = re.search(r"(\d+) labelled this session", text)
    return int(m.group(1)) if m else 0


def _wait_count(page, n: int):
    page.wait_for_function(
        "n => (document.querySelector('#va-progress')?.innerText.match(/(\\d+) labelled this session/) || [])[1] == n",
        arg=n)


def _answer_by_keyboard(page, truth, colour: str, n: int) -> list[tuple[str, bool]]:
    done = []
    while len(done) < n:
        key = _shown_key(page)
        if key not in truth:  # no video to judge: skip it
            page.locator("body").press("s")
            page.wait_for_function("k => document.querySelector('#va-desk .va-stage [data-key]')?.dataset.key !== k",
                                   arg=key)
            continue
        value = truth[key]["colour"] == colour
        before = _session_count(page)
        page.locator("body").press("y" if value else "n")
        _wait_count(page, before + 1)
        done.append((key, value))
    return done


def _review_row(page, key: str):
    return page.locator(f'#va-review-table tr[data-key="{key}"]')


def _review_keys(page) -> list[str]:
    return page.locator("#va-review-table tr[data-key]").evaluate_all("rs => rs.map(r => r.dataset.key)")


def _events(served, label: str) -> pl.DataFrame:
    return served["wh"].read("label_events", where={"label": label})


def test_expert_searches_labels_builds_and_approves(served, browser, truth, colour):
    SHOTS.mkdir(parents=True, exist_ok=True)
    label = f"{colour}_scene"
    page = _open(browser, served["server"].url, "maria")

    # Label: create it with a description
    page.locator("#va-new-label input, #va-new-label textarea").first.fill(label)
    page.locator("#va-new-desc input, #va-new-desc textarea").first.fill(f"a {colour} background")
    page.locator("#va-save-label").click()
    _wait_text(page, "#va-labels-table", label)
    _wait_text(page, "#va-status", "saved")
    page.screenshot(path=str(SHOTS / "label.png"))

    # Search: the description is the query; every result is a playing clip (or a card without video)
    _tab(page, "Search")
    query = page.locator("#va-query input, #va-query textarea").first
    expect(query).to_have_value(f"a {colour} background")
    page.locator("#va-search").click()
    cards = page.locator("#va-results .va-card")
    cards.first.wait_for()
    n_cards = cards.count()
    assert n_cards == 12
    page.wait_for_function("() => [...document.querySelectorAll('#va-results video')].some(v => v.readyState >= 2)")
    marked = []
    for i in range(n_cards):
        card = cards.nth(i)
        key = card.get_attribute("data-key")
        if key not in truth:
            continue
        value = truth[key]["colour"] == colour
        card.locator(".va-btn-yes" if value else ".va-btn-no").click()
        marked.append((key, value))
    page.wait_for_function(
        "n => { const t = document.querySelector('#va-status')?.innerText || '';"
        " const m = t.match(/(\\d+) yes · (\\d+) no/); return m && (+m[1] + +m[2]) == n; }", arg=len(marked))
    _wait_videos(page, "#va-results")
    page.screenshot(path=str(SHOTS / "search.png"))
    # more like this, from a card: the grid shows the clips nearest to it
    clicked = cards.first.get_attribute("data-key")
    cards.first.locator(".va-btn-like").click()
    _wait_text(page, "#va-status", "Clips most like")
    assert cards.count() == n_cards and clicked not in cards.evaluate_all("cs => cs.map(c => c.dataset.key)")

    # Annotate: five clips with the keyboard, then undo one and answer it again
    _start(page)
    first = _shown_key(page)
    keyed = _answer_by_keyboard(page, truth, colour, 5)
    assert keyed[0][0] == first
    _wait_saved(page)  # an answer still queued would be dropped by undo, not taken back with an event
    page.locator("body").press("u")
    _wait_count(page, 4)
    assert _shown_key(page) == keyed[-1][0]
    keyed = keyed[:-1] + _answer_by_keyboard(page, truth, colour, 1)
    _wait_videos(page, "#va-desk .va-stage")
    _wait_saved(page)
    _wait_text(page, "#va-status", f": {sum(dict(marked + keyed).values())} yes ·")  # counts follow answers
    page.screenshot(path=str(SHOTS / "annotate.png"), full_page=True)

    events = _events(served, label)
    # the undone answer stays in the log, followed by its undo (source "undo"); the redo is in keyed
    assert events.height == len(marked) + len(keyed) + 2
    assert events.filter(pl.col("source") == "undo").height == 1
    assert set(events["annotator"]) == {"maria"}
    expected = dict(marked + keyed)
    latest = events.sort("created_at").group_by("clip_key", maintain_order=True).agg(pl.col("value").last())
    assert dict(latest.iter_rows()) == expected
    assert set(events.filter(pl.col("source") == "search")["clip_key"]) == {k for k, _ in marked}

    # Model: build, AP appears
    _tab(page, "Model")
    page.locator("#va-build-model").click()
    _wait_text(page, "#va-quality", "v1", timeout=60_000)
    quality = page.locator("#va-quality").inner_text()
    assert re.search(r"\d\.\d{3}\s*±\s*\d\.\d{3}", quality), quality

    # three more from the new feeds, then B builds v2 from the Annotate part
    _tab(page, "Annotate")
    keyed += _answer_by_keyboard(page, truth, colour, 3)
    _wait_saved(page)
    # the Model part followed the answers while it was hidden: its previews hold no answered clip
    page.wait_for_function(
        "keys => { const shown = [...document.querySelectorAll('#va-previews [data-key]')].map(e => e.dataset.key);"
        " return shown.length > 0 && !shown.some(k => keys.includes(k)); }", arg=[k for k, _ in keyed])
    page.locator("body").press("b")
    _wait_text(page, "#va-status", "v2", timeout=60_000)
    assert _shown_key(page) not in dict(marked + keyed)  # the queue comes from v2's feeds

    # approve v2 after seeing its checks; the chart has a point per version
    _tab(page, "Model")
    _wait_text(page, "#va-quality", "v2")
    assert page.locator("#va-curve circle").count() == 2
    page.locator("#va-approve").click()
    _wait_text(page, "#va-checks", "Approve " + label + " v2")
    page.locator("#va-checks").get_by_text("beats random baseline").wait_for()
    _wait_videos(page, "#va-previews")
    page.locator("#va-confirm").click()
    _wait_text(page, "#va-status", "approved")
    models = served["wh"].read("models", where={"label": label})
    assert models.filter(pl.col("stage") == "approved")["model_version"].to_list() == [2]
    assert models.filter(pl.col("model_version") == 2)["n_pos"][0] + \
        models.filter(pl.col("model_version") == 2)["n_neg"][0] == len(dict(marked + keyed))

    # Review: every label of the set; change one
    _tab(page, "Review")
    _wait_text(page, "#va-review-table", keyed[0][0])
    _review_row(page, keyed[0][0]).locator(".va-col-key").click()
    page.wait_for_function("k => document.querySelector('#va-review-clip [data-key]')?.dataset.key === k", arg=keyed[0][0])
    page.locator("#va-review-no" if keyed[0][1] else "#va-review-yes").click()
    _wait_text(page, "#va-status", "changed to")
    _wait_text(page, "#va-review-table", keyed[0][0])
    _wait_videos(page, "#va-review-clip")
    last = _events(served, label).sort("created_at").row(-1, named=True)
    assert (last["clip_key"], last["value"], last["source"]) == (keyed[0][0], not keyed[0][1], "review")
    page.context.close()


def test_two_experts_at_once_lose_nothing(served, browser, truth, colour):
    from va_core.labels import set_description

    label = f"{colour}_shared"
    set_description(served["wh"], label, f"{colour} background", annotator="lead")
    pages = {name: _open(browser, served["server"].url, name) for name in ("ana", "ben")}
    for name, page in pages.items():
        _pick_label(page, label)
        _start(page, "random")
        _wait_text(page, "#va-progress", "From random")
    for i in range(1, 6):
        # both presses are in flight together: neither waits for the other
        for name, page in pages.items():
            page.locator("body").press("y" if truth[_shown_key(page)]["colour"] == colour else "n")
        for page in pages.values():
            _wait_count(page, i)
    for page in pages.values():
        _wait_saved(page)
    events = _events(served, label)
    assert Counter(events["annotator"].to_list()) == {"ana": 5, "ben": 5}
    # each sees the other's labels after a refresh
    ana = pages["ana"]
    _tab(ana, "Review")
    ana.locator("#va-review-refresh").click()
    _wait_text(ana, "#va-review-table", "ben: ")
    for page in pages.values():
        page.context.close()


def test_presses_queue_in_the_page_and_none_is_lost(served, browser, truth, colour):
    from va_core.labels import set_description

    label = f"{colour}_burst"
    set_description(served["wh"], label, f"{colour} background", annotator="lead")
    page = _open(browser, served["server"].url, "cleo")
    _pick_label(page, label)
    _start(page, "random")
    # a burst: every press lands at once on the clip on screen, before any answer is stored
    pressed = []
    for i in range(8):
        pressed.append((_shown_key(page), i % 3 == 0))
        page.keyboard.press("y" if i % 3 == 0 else "n")
    assert _session_count(page) == 8
    # undo walks back through the queue: the last clip comes back on screen
    page.keyboard.press("u")
    assert _shown_key(page) == pressed[-1][0] and _session_count(page) == 7
    page.keyboard.press("y")
    pressed[-1] = (pressed[-1][0], True)
    _wait_saved(page)
    expect(page.locator("#va-desk .va-saving")).to_have_text("all saved")
    events = _events(served, label).sort("created_at")
    latest = events.group_by("clip_key", maintain_order=True).agg(pl.col("value").last())
    assert dict(latest.iter_rows()) == dict(pressed)
    assert events.filter(pl.col("value").is_not_null())["clip_key"].to_list()[:7] == [k for k, _ in pressed[:7]]
    assert set(events["source"]) <= {"random", "undo"} and set(events["annotator"]) == {"cleo"}
    answers = events.filter(pl.col("source") == "random")
    assert answers["rank"].null_count() == 0 and answers["rank"].min() == 1  # the provenance the clip came with

    # the player from the keyboard: pause, step a frame, faster, loop off, sound on
    video = "document.querySelector('#va-desk .va-stage video')"
    page.wait_for_function(f"() => {video}.readyState >= 2 && !{video}.paused")
    page.keyboard.press("k")
    assert page.evaluate(f"() => {video}.paused")
    at = page.evaluate(f"() => {video}.currentTime")
    fps = float(page.evaluate(f"() => {video}.dataset.fps"))
    page.keyboard.press(".")
    page.wait_for_function(f"t => {video}.currentTime > t", arg=at)
    assert 0 < page.evaluate(f"() => {video}.currentTime") - at <= 1.5 / fps  # one frame, not a second
    for key in ("]", "]", "]", "o", "m"):
        page.keyboard.press(key)
    state = page.evaluate(f"() => {{ const v = {video}; return [v.playbackRate, v.loop, v.muted]; }}")
    assert state == [2, False, False]  # 1x -> 1.5x -> 2x, and no faster
    expect(page.locator("#va-desk .va-transport")).to_contain_text("paused · 2x · loop off · sound on")
    page.keyboard.press("k")
    page.wait_for_function(f"() => !{video}.paused")

    # C: the shots before and after the one on screen, from its video
    page.keyboard.press("c")
    sides = page.locator("#va-desk .va-context [data-key]")
    sides.first.wait_for()
    video_of = _shown_key(page).split("|")[0]
    assert 1 <= sides.count() <= 2 and all(k.split("|")[0] == video_of for k in
                                           sides.evaluate_all("ss => ss.map(s => s.dataset.key)"))
    page.keyboard.press("c")
    expect(page.locator("#va-desk .va-context")).to_be_hidden()

    # more like this (L): the unlabelled clips nearest to the one on screen come next
    page.keyboard.press("l")
    _wait_text(page, "#va-progress", "come next")
    assert page.evaluate("() => window.vaDesk.queue.slice(0, 3).map((i) => i.source)") == ["similar"] * 3

    # a save the server refuses stays on screen with Retry; the next answers are stored
    page.evaluate("() => { window.vaDesk.current.clip_key = 'nothing|0'; }")
    page.keyboard.press("n")
    page.locator("#va-desk .va-failed").get_by_text("unknown clip key").wait_for()
    expect(page.locator("#va-desk .va-failed")).to_contain_text("1 answer was not saved")
    after = _shown_key(page)
    page.keyboard.press("y")
    _wait_saved(page)
    assert _events(served, label).sort("created_at")["clip_key"][-1] == after
    page.screenshot(path=str(SHOTS / "save_failed.png"))
    page.context.close()


def test_sound_goes_on_and_off_from_the_keyboard(served, browser, colour):
    from va_core.labels import set_description

    label = f"{colour}_sound"
    set_description(served["wh"], label, f"{colour} background", annotator="lead")
    page = _open(browser, served["server"].url, "sam")
    _pick_label(page, label)
    _start(page, "random")
    video = "document.querySelector('#va-desk .va-stage video')"
    page.wait_for_function(f"() => {video}.readyState >= 2 && !{video}.paused")
    assert page.evaluate(f"() => {video}.muted")  # the desk starts with the sound off
    page.keyboard.press("m")
    assert page.evaluate(f"() => {video}.muted") is False
    expect(page.locator("#va-desk .va-transport")).to_contain_text("sound on")
    # the clip has a sound track and the browser decodes it while it plays (a clip cut without
    # sound decodes no audio byte, however long it plays)
    page.wait_for_function(f"() => {video}.webkitAudioDecodedByteCount > 0 && !{video}.paused")
    # the sound stays on for the next clip, and its sound is decoded too
    first = _shown_key(page)
    page.keyboard.press("s")
    page.wait_for_function("k => document.querySelector('#va-desk .va-stage [data-key]')?.dataset.key !== k", arg=first)
    page.wait_for_function(f"() => !{video}.muted && !{video}.paused && {video}.webkitAudioDecodedByteCount > 0")
    page.keyboard.press("m")
    assert page.evaluate(f"() => {video}.muted") is True
    expect(page.locator("#va-desk .va-transport")).to_contain_text("sound off")
    page.context.close()


def test_clip_without_video_shows_key_and_metadata(served, browser):
    from va_core.labels import record_events

    label = "imported_only"
    record_events(served["wh"], [{"label": label, "clip_key": EMBEDDINGS_ONLY_KEY, "value": True}],
                  annotator="importer", source="import")
    page = _open(browser, served["server"].url, "maria")
    # a refused save (no name) says why and leaves the label picker and the table as they were
    page.locator("#va-name input, #va-name textarea").first.fill("")
    page.locator("#va-new-label input, #va-new-label textarea").first.fill("nameless")
    page.locator("#va-new-desc input, #va-new-desc textarea").first.fill("anything")
    page.locator("#va-save-label").click()
    _wait_text(page, "#va-status", "Not done: type your name")
    for part in ("#va-label", "#va-labels-table"):
        assert page.locator(part).get_by_text("Error", exact=True).count() == 0
    expect(page.locator("#va-labels-table")).to_contain_text(label)
    page.locator("#va-name input, #va-name textarea").first.fill("maria")
    _pick_label(page, label)
    _tab(page, "Review")
    _wait_text(page, "#va-review-table", EMBEDDINGS_ONLY_KEY)
    _review_row(page, EMBEDDINGS_ONLY_KEY).locator(".va-col-key").click()
    pane = page.locator("#va-review-clip")
    _wait_text(page, "#va-review-clip", "no video")
    assert pane.locator("video").count() == 0
    text = pane.inner_text()
    assert EMBEDDINGS_ONLY_KEY in text and "paper-import-0001" in text and "0.0s–2.0s" in text
    page.screenshot(path=str(SHOTS / "no_video.png"))
    page.context.close()


def test_with_a_users_file_labels_carry_the_login(_ingested_home_template, tmp_path, app_server, browser, truth):
    import urllib.error
    import urllib.request

    from va_ui.auth import add_user

    home = tmp_path / "va-home"
    shutil.copytree(_ingested_home_template, home)
    add_user(home / "users.json", "maria", "a-long-password", iterations=1000)
    server = app_server(home, tmp_path / "ui.log")
    try:
        key = next(iter(truth))
        with pytest.raises(urllib.error.HTTPError) as refused:  # clips need the login too
            urllib.request.urlopen(f"{server.url}/va/clip?key={key.replace('|', '%7C')}", timeout=10)
        assert refused.value.code == 401

        page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        page.set_default_timeout(30_000)
        page.goto(server.url)
        page.get_by_label("username").fill("maria")
        page.get_by_label("password").fill("wrong-password")
        page.get_by_role("button", name="Login").click()
        page.get_by_text("Incorrect Credentials").wait_for()
        page.screenshot(path=str(SHOTS / "login.png"))
        page.get_by_label("username").fill("maria")  # the form forgets both after a refusal
        page.get_by_label("password").fill("a-long-password")
        page.get_by_role("button", name="Login").click()
        _wait_text(page, "#va-who", "maria")
        assert not page.locator("#va-name").is_visible()  # no name to type: the login is the name

        wh = Warehouse(str(home / "warehouse"))
        from va_core.labels import set_description

        set_description(wh, "logged", "anything", annotator="maria")
        page.reload()
        _pick_label(page, "logged")
        _tab(page, "Search")
        expect(page.locator("#va-query input, #va-query textarea").first).to_have_value("anything")
        page.locator("#va-search").click()
        card = page.locator("#va-results .va-card").first
        card.wait_for()
        _wait_videos(page, "#va-results")  # the clip route answers the logged-in browser
        card.locator(".va-btn-yes").click()
        _wait_text(page, "#va-status", "1 yes")
        events = wh.read("label_events", where={"label": "logged"})
        assert events.select("annotator", "source").rows() == [("maria", "search")]
        page.context.close()
    finally:
        server.stop()


def _settings(served):
    from va_core.config import Settings

    return Settings.from_env(served["home"], "tiny")  # what the server runs on


def _pick_version(page, version: int):
    page.locator("#va-version input").click()
    page.get_by_role("option", name=re.compile(rf"^v{version} ·")).click()


def _stages(served, label: str) -> dict[int, str]:
    from va_core.registry import models_frame

    return dict(models_frame(served["wh"], label).select("model_version", "stage").iter_rows())


def test_model_tab_approves_any_version_asks_a_reason_and_rolls_back(served, browser, truth, colour):
    from tests.support.labelling import unmeasured_then_measured
    from va_core.registry import model_history

    label = f"{colour}_versions"
    unmeasured_then_measured(_settings(served), label, truth, colour)  # v1 unmeasured, v2 with an estimate
    page = _open(browser, served["server"].url, "maria")
    _pick_label(page, label)
    _tab(page, "Model")
    _wait_text(page, "#va-quality", "nothing served yet")
    _wait_text(page, "#va-versions", "v2")
    expect(page.locator("#va-rollback")).to_be_disabled()  # nothing served before

    # approve the latest, v2: served, and the header says so
    page.locator("#va-approve").click()
    _wait_text(page, "#va-checks", f"Approve {label} v2")
    expect(page.locator("#va-override")).to_be_hidden()  # nothing served: no reason asked
    page.locator("#va-confirm").click()
    _wait_text(page, "#va-status", "approved")
    _wait_text(page, "#va-quality", f"{label}: serving v2")
    assert _stages(served, label) == {1: "candidate", 2: "approved"}

    # v1, not the latest: it has no corpus estimate beside the served v2's, so a reason is asked
    _pick_version(page, 1)
    page.locator("#va-approve").click()
    _wait_text(page, "#va-checks", f"Approve {label} v1")
    checks = page.locator("#va-checks").inner_text()
    assert "v1 (this version)" in checks and "v2 (served now)" in checks and "label set size" in checks
    assert "Clearly worse than the served version" in checks
    expect(page.locator("#va-override")).to_be_visible()
    page.locator("#va-override textarea, #va-override input").first.fill("the audit round missed the night shots")
    _wait_videos(page, "#va-previews")
    page.locator("#va-previews").scroll_into_view_if_needed()  # offscreen videos are not painted
    page.wait_for_timeout(800)
    page.screenshot(path=str(SHOTS / "model.png"), full_page=True)
    page.locator("#va-override textarea, #va-override input").first.fill("")
    page.locator("#va-confirm").click()  # without a reason: refused, nothing changes
    _wait_text(page, "#va-status", "Not done")
    assert "say why" in page.locator("#va-status").inner_text()
    assert _stages(served, label) == {1: "candidate", 2: "approved"}
    page.locator("#va-override textarea, #va-override input").first.fill("the audit round missed the night shots")
    page.locator("#va-confirm").click()
    _wait_text(page, "#va-status", f"{label} v1 approved")
    _wait_text(page, "#va-quality", f"{label}: serving v1")
    assert _stages(served, label) == {1: "approved", 2: "retired"}
    last = model_history(served["wh"], label)[-1]
    assert (last["model_version"], last["stage"], last["changed_by"]) == (1, "approved", "maria")
    assert last["reason"].startswith("override: the audit round missed the night shots")
    _wait_text(page, "#va-stage-history", "override: the audit round missed the night shots")

    # roll back: approve the version served before (same rules: v1 has no estimate, so none asked)
    expect(page.locator("#va-rollback")).to_have_text("Roll back to v2")
    page.locator("#va-rollback").click()
    _wait_text(page, "#va-checks", f"Roll back {label} to v2")
    expect(page.locator("#va-override")).to_be_hidden()
    page.locator("#va-confirm").click()
    _wait_text(page, "#va-quality", f"{label}: serving v2")
    assert _stages(served, label) == {1: "retired", 2: "approved"}
    last = model_history(served["wh"], label)[-1]
    assert (last["model_version"], last["stage"], last["reason"]) == (2, "approved",
                                                                      "rolled back from v1 in the labelling app")
    page.context.close()


def test_review_filters_bulk_changes_and_exports(served, browser, truth, colour):
    from va_core.labels import LabelEvent, label_set, record_events

    label = f"{colour}_review"
    keys = sorted(truth)[:6]
    record_events(served["wh"], [LabelEvent(label, k, truth[k]["colour"] == colour, "ana", "search") for k in keys[:4]]
                  + [LabelEvent(label, k, True, "ben", "random") for k in keys[3:6]])
    record_events(served["wh"], [LabelEvent(label, keys[3], False, "ana", "audit")])  # against ben's yes
    page = _open(browser, served["server"].url, "maria")
    _pick_label(page, label)
    _tab(page, "Review")
    _wait_text(page, "#va-review-table", "6 clips")
    assert sorted(_review_keys(page)) == keys
    # thumbnails: the clips' own cuts, loaded as the rows come into view
    page.wait_for_function("() => [...document.querySelectorAll('#va-review-table video.va-thumb')]"
                           ".some(v => v.readyState >= 1)")
    # the changed column is whole: a full timestamp, on one line
    changed = page.locator("#va-review-table tr[data-key] .va-col-changed").first
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", changed.inner_text().strip())
    assert changed.evaluate("e => e.scrollWidth <= e.clientWidth + 1 && e.getClientRects().length === 1")

    # filters narrow the rows: by annotator, by source, by value
    conflict = keys[3]  # ana's latest vote (audit) no, ben's yes
    page.locator("#va-review-annotator input").click()
    page.get_by_role("option", name="ben", exact=True).click()
    page.wait_for_function("n => document.querySelectorAll('#va-review-table tr[data-key]').length === n", arg=3)
    assert sorted(_review_keys(page)) == keys[3:6]
    page.locator("#va-review-source input").click()
    page.get_by_role("option", name="audit", exact=True).click()
    page.wait_for_function("n => document.querySelectorAll('#va-review-table tr[data-key]').length === n", arg=1)
    assert _review_keys(page) == [conflict]
    page.locator("#va-review-annotator input").click()
    page.get_by_role("option", name="anyone", exact=True).click()
    page.locator("#va-review-source input").click()
    page.get_by_role("option", name="any source", exact=True).click()
    _wait_text(page, "#va-review-table", "6 clips")
    assert label_set(served["wh"], label).conflicts == [conflict]
    page.locator("#va-review-filter").get_by_text("conflicts", exact=True).click()
    page.wait_for_function("n => document.querySelectorAll('#va-review-table tr[data-key]').length === n", arg=1)
    assert _review_keys(page) == [conflict]
    page.locator("#va-review-filter").get_by_text("all", exact=True).click()
    _wait_text(page, "#va-review-table", "6 clips")

    # bulk change: the checked rows become no, one event each by the expert, from review
    picked = keys[:2]
    for key in picked:
        _review_row(page, key).locator(".va-pick").check()
    expect(page.locator("#va-review-table .va-picked")).to_have_text("2 selected")
    before = _events(served, label).height
    page.locator("#va-review-table .va-bulk-no").click()
    _wait_text(page, "#va-status", "2 clips changed to no by maria")
    added = _events(served, label).sort("created_at").tail(_events(served, label).height - before)
    assert sorted(added.select("clip_key", "value", "annotator", "source").rows()) == [
        (k, False, "maria", "review") for k in picked]
    _wait_text(page, "#va-review-table", "maria: no")
    # the table is redrawn (the changed rows first): no check stays on a row that now shows another clip
    expect(page.locator("#va-review-table .va-picked")).to_have_text("0 selected")
    assert page.locator("#va-review-table .va-pick:checked").count() == 0
    page.locator("#va-review-filter").get_by_text("no", exact=True).click()
    page.wait_for_function("ks => ks.every(k => document.querySelector(`#va-review-table tr[data-key=\"${k}\"]`))",
                           arg=picked)
    page.locator("#va-review-filter").get_by_text("all", exact=True).click()
    _wait_text(page, "#va-review-table", "6 clips")
    _wait_videos(page, "#va-review-table")
    page.wait_for_function("() => !document.querySelector('#va-review-table .progress-text')")
    page.screenshot(path=str(SHOTS / "review.png"))

    # export: the label set as CSV, then the raw events as Parquet, each downloaded and read back
    for what, fmt in (("label set", "csv"), ("raw events", "parquet")):
        page.locator("#va-export-what").get_by_text(what, exact=True).click()
        page.locator("#va-export-format").get_by_text(fmt, exact=True).click()
        page.locator("#va-export").click()
        _wait_text(page, "#va-status", f"Exported the {what}")
        link = page.locator(f'#va-export-file a[download^="{label}-{what.replace(" ", "-")}-"][download$=".{fmt}"]')
        link.wait_for()
        with page.expect_download() as got:
            link.click()
        path = got.value.path()
        read = pl.read_csv(path) if fmt == "csv" else pl.read_parquet(path)
        if what == "label set":
            stored = label_set(served["wh"], label).rows().sort("clip_key")
            assert read.select("clip_key", "value", "pos_cnt", "annotator_cnt").sort("clip_key").rows() == \
                stored.select("clip_key", "value", "pos_cnt", "annotator_cnt").rows()
        else:
            assert sorted(read["event_id"]) == sorted(_events(served, label)["event_id"])
    page.context.close()
