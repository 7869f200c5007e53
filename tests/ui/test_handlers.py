"""What the app's buttons do, without a browser: real warehouse, real training."""
from __future__ import annotations

from collections import Counter

import polars as pl
import pyarrow as pa
import pytest

from va_core.errors import InputError, NotFound
from va_core.labels import label_set
from va_core.registry import ApprovalRefused
from va_core.warehouse import Warehouse
from va_ui import handlers as h
from va_ui import panels, views


@pytest.fixture
def wh(ui_settings) -> Warehouse:
    return Warehouse.from_settings(ui_settings)


@pytest.fixture
def colour(truth) -> str:
    return Counter(r["colour"] for r in truth.values()).most_common(1)[0][0]


def _events(wh, label):
    return wh.read("label_events", where={"label": label}).sort("created_at")


def test_every_label_needs_a_name(ui_settings):
    assert h.annotator_name("maria", None) == "maria"  # the login wins
    assert h.annotator_name(None, "  lee ") == "lee"
    for typed in (None, "", "   "):
        with pytest.raises(InputError, match="type your name"):
            h.annotator_name(None, typed)
    with pytest.raises(InputError):
        h.annotator_name(None, "x" * 65)


def test_labels_are_created_with_a_description(ui_settings, wh):
    with pytest.raises(InputError, match="bad label name"):
        h.save_label(ui_settings, "Car Chase", "cars", "maria")
    with pytest.raises(InputError, match="describe"):
        h.save_label(ui_settings, "car_chase", "", "maria")
    assert h.label_choices(ui_settings) == []
    summary = h.save_label(ui_settings, "car_chase", "cars racing", "maria")
    assert summary["description"] == "cars racing" and summary["n_pos"] == 0
    assert h.label_choices(ui_settings) == ["car_chase"]
    h.save_label(ui_settings, "car_chase", "", "maria")  # keeping the description is fine
    h.save_label(ui_settings, "car_chase", "cars racing at night", "lee")
    assert h.label_summary(ui_settings, "car_chase")["description"] == "cars racing at night"
    table = h.labels_table(ui_settings)
    assert table.row(0, named=True)["description"] == "cars racing at night"
    assert wh.read("label_descriptions").height == 2


def test_search_results_play_and_show_their_votes(ui_settings, wh):
    with pytest.raises(InputError, match="type what to look for"):
        h.search(ui_settings, "x", "  ")
    items = h.search(ui_settings, "red_scene", "a red background", 8)
    assert len(items) == 8 and all(i["playable"] and i["source"] == "search" for i in items)
    assert all(i["value"] is None for i in items)
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    h.mark(ui_settings, "red_scene", items[0]["clip_key"], True, "maria", "search")
    h.mark(ui_settings, "red_scene", items[1]["clip_key"], False, "maria", "search")
    again = {i["clip_key"]: i["value"] for i in h.search(ui_settings, "red_scene", "a red background", 8)}
    assert again[items[0]["clip_key"]] is True and again[items[1]["clip_key"]] is False
    events = _events(wh, "red_scene")
    assert events.select("annotator", "source").unique().rows() == [("maria", "search")]
    with pytest.raises(InputError, match="yes or no"):
        h.mark(ui_settings, "red_scene", items[2]["clip_key"], "yes", "maria", "search")
    with pytest.raises(InputError, match="unknown clip key"):
        h.mark(ui_settings, "red_scene", "nothing|0", True, "maria", "search")
    assert _events(wh, "red_scene").height == 2


def test_annotating_answers_skips_and_undoes(ui_settings, wh, truth, colour):
    label = f"{colour}_scene"
    h.save_label(ui_settings, label, f"a {colour} background", "maria")
    s = h.start(ui_settings, h.Session(), label, "next")
    assert s.chosen_source == "zero_shot" and s.current is not None  # no model yet: the description leads
    seen = []
    for _ in range(4):
        key = s.current["clip_key"]
        seen.append((key, truth[key]["colour"] == colour))
        s = h.answer(ui_settings, s, seen[-1][1], "maria", shown_key=key)
    skipped = s.current["clip_key"]
    s = h.answer(ui_settings, s, None, "maria", shown_key=skipped)
    assert s.n_labelled == 4 and skipped in s.skipped
    events = _events(wh, label)
    assert list(zip(events["clip_key"], events["value"])) == seen
    assert set(events["source"]) == {"zero_shot"} and set(events["annotator"]) == {"maria"}

    # a press meant for a clip no longer on screen records nothing
    with pytest.raises(InputError, match="no longer on screen"):
        h.answer(ui_settings, s, True, "maria", shown_key=seen[-1][0])
    assert _events(wh, label).height == 4

    version_with_last = wh.version("label_events")
    on_screen = s.current["clip_key"]
    s = h.take_back(ui_settings, s)
    assert s.current["clip_key"] == seen[-1][0] and s.queue[0]["clip_key"] == on_screen and s.n_labelled == 3
    # the undo is an appended event that withdraws the vote: the label set is as before it
    events = _events(wh, label)
    assert events.height == 5 and events.sort("created_at")["source"][-1] == "undo"
    assert events.sort("created_at")["value"][-1] is None
    assert wh.version("label_events") == version_with_last + 1
    ls = label_set(wh, label)
    assert sorted(ls.labelled) == sorted(k for k, _ in seen[:-1])
    assert seen[-1][0] not in ls.labelled
    with pytest.raises(InputError, match="nothing to undo"):
        h.take_back(ui_settings, h.Session(label=label))


def test_sources_before_the_first_model(ui_settings):
    _, items = h.fetch(ui_settings, "fresh", "random", k=5)
    assert len(items) == 5 and all(i["source"] == "random" for i in items)
    with pytest.raises(NotFound, match="no model yet"):
        h.fetch(ui_settings, "fresh", "top_positive")
    with pytest.raises(InputError, match="unknown source"):
        h.fetch(ui_settings, "fresh", "best")


def _label_by_truth(settings, label, truth, colour, annotator="maria"):
    yes = [k for k, r in truth.items() if r["colour"] == colour]
    no = [k for k, r in truth.items() if r["colour"] != colour]
    for key in yes[:4] + no[:8]:
        h.mark(settings, label, key, key in yes, annotator, "test")


def test_build_model_view_and_approval(ui_settings, wh, truth, colour):
    label = f"{colour}_scene"
    with pytest.raises(InputError, match="at least"):
        h.build(ui_settings, label)
    _label_by_truth(ui_settings, label, truth, colour)
    built = h.build(ui_settings, label)
    result = built["result"]
    assert result.created and result.model_version == 1 and (result.n_pos, result.n_neg) == (4, 8)
    assert "Built" in panels.build_status(built)

    history = h.model_history(ui_settings, label)
    assert history["n_labels"].to_list() == [12] and history["ap_mean"][0] == pytest.approx(result.labelled_ap)
    text = panels.quality(ui_settings, label, history)
    # no audit label yet: no corpus estimate, and the Model part says what to do about it
    assert result.ap is None and f"{result.labelled_ap:.3f}" in text and f"{result.baseline_ap:.3f}" in text
    assert f"needs **{result.audit_needed}** more audit labels: choose **audit** in Annotate" in text
    chart = panels.ap_chart(history)
    assert chart.startswith("<svg") and chart.count("<circle") == 1 and "v1: no corpus estimate yet" in chart

    previews = h.feed_previews(ui_settings, label)
    assert set(previews) == {"top_positive", "top_negative", "borderline", "random", "audit"}
    labelled = set(_events(wh, label)["clip_key"])
    assert all(i["clip_key"] not in labelled for items in previews.values() for i in items)

    s = h.start(ui_settings, h.Session(), label, "borderline")
    shown = s.current["clip_key"]
    s = h.refill(ui_settings, s)  # after a build: same clip on screen, queue from the new feeds
    assert s.current["clip_key"] == shown and shown not in [i["clip_key"] for i in s.queue]

    checks = h.approval_checks(ui_settings, label)
    assert checks["model_version"] == 1 and checks["passed"] is result.checks_passed
    names = {c["name"] for c in checks["checks"]}
    assert {"beats_random_baseline", "no_conflicting_labels_in_training", "embedding_consistent"} <= names
    with pytest.raises(InputError, match="press Approve first"):
        h.approve(ui_settings, label, None, "maria")
    if not result.checks_passed:
        pytest.fail(f"the model of a learnable colour should pass its checks: {checks}")
    done = h.approve(ui_settings, label, 1, "maria")
    assert done["stage"] == "approved" and "approved" in panels.approved(done)
    events = wh.read("model_stage_events", where={"label": label})
    assert ("approved", "maria") in events.select("stage", "changed_by").rows()


def test_an_audit_round_in_annotate_gives_the_model_part_its_corpus_estimate(ui_settings, wh, truth, colour):
    label = f"{colour}_audit"
    _label_by_truth(ui_settings, label, truth, colour)
    h.build(ui_settings, label)
    s = h.start(ui_settings, h.Session(), label, "audit")
    answered = 0
    while s.current is not None and answered < 60:
        s = h.answer(ui_settings, s, truth[s.current["clip_key"]] == colour, "maria", s.current["clip_key"])
        answered += 1
    events = _events(wh, label).filter(pl.col("source") == "audit")
    assert events.height == answered > 0 and events["draw_id"].unique().to_list() == ["audit@v1"]
    assert events["inclusion_prob"].null_count() == 0 and events["stratum_size"].min() >= 1
    result = h.build(ui_settings, label)["result"]
    assert result.n_audit == answered
    history = h.model_history(ui_settings, label)
    text = panels.quality(ui_settings, label, history)
    if result.ap is None:  # no positive among the draws: the part still says what is missing
        assert "more audit labels" in text
    else:
        assert f"**{result.ap:.3f}** [{result.ap_low:.3f}, {result.ap_high:.3f}]" in text
        assert f"v2: AP {result.ap:.3f} [{result.ap_low:.3f}, {result.ap_high:.3f}] on the corpus" in \
            panels.ap_chart(history)


def test_a_version_that_failed_its_checks_cannot_be_approved(ui_settings, wh, truth, colour):
    label = f"{colour}_scene"
    _label_by_truth(ui_settings, label, truth, colour)
    h.build(ui_settings, label)
    row = wh.read("models", where={"label": label}).row(0, named=True)
    failed = ('[{"name": "beats_random_baseline", "passed": false, "blocking": true, '
              '"message": "AP 0.1 <= random baseline 0.3", "metadata": {}}]')
    wh.replace("models", {"label": label}, [{**row, "checks_passed": False, "checks_report": failed}])
    checks = h.approval_checks(ui_settings, label, 1)
    assert checks["passed"] is False
    assert "FAILED" in panels.checks(checks) and "cannot be approved" in panels.checks(checks)
    with pytest.raises(ApprovalRefused, match="beats_random_baseline"):
        h.approve(ui_settings, label, 1, "maria")
    assert wh.read("models", where={"label": label})["stage"].to_list() == ["candidate"]


def test_review_shows_every_label_and_changes_it(ui_settings, wh):
    keys = wh.read("clips")["clip_key"].sort().to_list()[:4]
    for key, value in zip(keys, [True, True, False, False]):
        h.mark(ui_settings, "dog", key, value, "maria", "search")
    h.change(ui_settings, "dog", keys[0], False, "lee")  # a second opinion: 1 yes, 1 no -> conflict
    h.change(ui_settings, "dog", keys[2], False, "lee")

    rows = h.review_rows(ui_settings, "dog", "all", "lee")
    assert rows.height == 4 and rows.columns[0] == "clip_key"
    by_key = {r["clip_key"]: r for r in rows.iter_rows(named=True)}
    assert by_key[keys[0]]["label"] == "conflict" and by_key[keys[0]]["annotators"] == "lee: no, maria: yes"
    assert by_key[keys[0]]["your vote"] == "no" and by_key[keys[1]]["your vote"] == ""
    assert h.review_rows(ui_settings, "dog", "conflicts")["clip_key"].to_list() == [keys[0]]
    assert set(h.review_rows(ui_settings, "dog", "yes")["clip_key"]) == {keys[1]}
    assert set(h.review_rows(ui_settings, "dog", "no")["clip_key"]) == {keys[2], keys[3]}
    assert set(h.review_rows(ui_settings, "dog", "mine", "lee")["clip_key"]) == {keys[0], keys[2]}
    assert h.review_rows(ui_settings, "dog", "all", None, keys[3])["clip_key"].to_list() == [keys[3]]
    assert h.review_rows(ui_settings, "nobody_labelled", "all").height == 0
    with pytest.raises(InputError, match="unknown filter"):
        h.review_rows(ui_settings, "dog", "maybe")

    h.change(ui_settings, "dog", keys[0], True, "lee")
    assert h.review_rows(ui_settings, "dog", "yes")["clip_key"].to_list()[0] == keys[0]
    last = _events(wh, "dog").row(-1, named=True)
    assert (last["clip_key"], last["value"], last["annotator"], last["source"]) == (keys[0], True, "lee", "review")


def test_clip_cards_escape_text_and_show_clips_without_video(ui_settings, wh):
    wh.append("clips", pa.table({"clip_key": ["<b>x</b>|0"], "video_id": ["<b>x</b>"], "frame_in": [0],
                                 "frame_out": [23], "start_s": [0.0], "end_s": [1.0]}))
    playable = wh.read("clips").filter(pl.col("video_id") != "<b>x</b>")["clip_key"][0]
    items = h.enrich(ui_settings, None, [{"clip_key": "<b>x</b>|0"}, {"clip_key": playable}])
    html = views.grid(items)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;|0" in html
    assert html.count("<video") == 1 and "no video: no video row" in html
    assert views.clip_url(playable) in html.replace("&amp;", "&")
    assert "%7C" in views.clip_url(playable)  # the key travels as one query value


def test_warm_up_loads_what_the_first_actions_need(ui_settings):
    done = h.warm_up(ui_settings)
    assert done["clips"] > 0 and done["encoder"].startswith("tiny") and "problem" not in done
