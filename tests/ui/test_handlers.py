"""What the app's buttons do, without a browser: real warehouse, real training."""
from __future__ import annotations

from collections import Counter

import polars as pl
import pyarrow as pa
import pytest

from va_core.errors import InputError
from va_core.encoders import parse_spec
from va_core.errors import InputError, NotFound
from va_core.labels import label_set
from va_core.registry import ApprovalRefused
from va_core.warehouse import Warehouse
from va_ui import handlers as h
from va_ui import annotate, panels, views
from tests.support.labelling import label_by_truth, unmeasured_then_measured


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
    # more like this: the nearest clips by embedding, the clip itself left out, votes shown
    like = h.more_like(ui_settings, "red_scene", items[1]["clip_key"], 6)
    assert len(like) == 6 and items[1]["clip_key"] not in {i["clip_key"] for i in like}
    assert [i["score"] for i in like] == sorted((i["score"] for i in like), reverse=True)
    assert all(i["source"] == "similar" for i in like)
    assert {i["clip_key"]: i["value"] for i in like}.get(items[0]["clip_key"], True) is True
    queued = annotate.batch(ui_settings, "red_scene", "similar", like=items[1]["clip_key"], k=4)["items"]
    assert [i["provenance"]["rank"] for i in queued] == [1, 2, 3, 4]
    assert not {i["clip_key"] for i in queued} & {items[0]["clip_key"], items[1]["clip_key"]}  # unlabelled only
    with pytest.raises(InputError, match=r"yes or no \(or unsure\)"):
        h.mark(ui_settings, "red_scene", items[2]["clip_key"], "yes", "maria", "search")
    with pytest.raises(InputError, match="unknown clip key"):
        h.mark(ui_settings, "red_scene", "nothing|0", True, "maria", "search")
    assert _events(wh, "red_scene").height == 2


def test_the_desk_gets_batches_and_stores_answers_in_order(ui_settings, wh, truth, colour):
    label = f"{colour}_scene"
    h.save_label(ui_settings, label, f"a {colour} background", "maria")
    got = annotate.batch(ui_settings, label, "next", k=6)
    assert got["source"] == "zero_shot" and len(got["items"]) == 6  # no model yet: the description leads
    assert all(i["source"] == "zero_shot" and "provenance" in i for i in got["items"])
    seen = []
    for item in got["items"][:4]:
        seen.append((item["clip_key"], truth[item["clip_key"]]["colour"] == colour))
        done = annotate.save(ui_settings, label, item["clip_key"], seen[-1][1], "maria", item["source"],
                             item["provenance"])
    assert (done["summary"]["n_pos"], done["summary"]["n_neg"]) == (sum(v for _, v in seen),
                                                                    sum(not v for _, v in seen))
    events = _events(wh, label)
    assert list(zip(events["clip_key"], events["value"])) == seen
    assert set(events["source"]) == {"zero_shot"} and set(events["annotator"]) == {"maria"}
    assert events["rank"].to_list() == [1, 2, 3, 4] and events["chosen_score"].null_count() == 0

    # the shots before and after each clip, from its own video
    clips = wh.read("clips").sort(["video_id", "frame_in"])
    first = clips.filter(pl.col("video_id") == clips["video_id"][0])["clip_key"].to_list()
    near = annotate.neighbours(ui_settings, first[:2])
    assert near[first[0]] == (None, first[1]) and near[first[1]] == (first[0], first[2] if len(first) > 2 else None)

    # what the page still holds is never handed out again
    held = {i["clip_key"] for i in got["items"]}
    again = annotate.batch(ui_settings, label, "next", exclude=held, k=6)["items"]
    assert again and not held & {i["clip_key"] for i in again}

    # undo: an appended event withdraws the vote; the label set is as before it
    version_with_last = wh.version("label_events")
    undone = annotate.undo(ui_settings, label, seen[-1][0], "maria")
    assert undone["summary"]["n_pos"] + undone["summary"]["n_neg"] == 3
    events = _events(wh, label)
    assert events.height == 5 and events["source"][-1] == "undo" and events["value"][-1] is None
    assert wh.version("label_events") == version_with_last + 1
    ls = label_set(wh, label)
    assert sorted(ls.labelled) == sorted(k for k, _ in seen[:-1])
    with pytest.raises(InputError, match="nothing to undo"):
        annotate.undo(ui_settings, label, got["items"][5]["clip_key"], "maria")
    with pytest.raises(InputError, match=r"yes or no \(or unsure\)"):
        annotate.save(ui_settings, label, seen[0][0], "yes", "maria", "zero_shot")
    with pytest.raises(InputError, match="names its clip"):
        annotate.save(ui_settings, label, None, True, "maria", "zero_shot")
    assert _events(wh, label).height == 5


def test_sources_before_the_first_model(ui_settings, truth):
    got = annotate.batch(ui_settings, "fresh", "random", k=5)
    assert len(got["items"]) == 5 and all(i["source"] == "random" for i in got["items"])
    empty = annotate.batch(ui_settings, "fresh", "top_positive")
    assert empty["items"] == [] and "no model yet" in empty["hint"] and "Search" in empty["hint"]
    with pytest.raises(InputError, match="unknown source"):
        annotate.batch(ui_settings, "fresh", "best")
    # "next" from the description, until a run of answers without a single yes turns it to random clips
    h.save_label(ui_settings, "fresh", "something that is not there", "maria")
    for item in annotate.batch(ui_settings, "fresh", "next", k=annotate.NO_YES_AFTER)["items"]:
        annotate.save(ui_settings, "fresh", item["clip_key"], False, "maria", item["source"], item["provenance"])
    turned = annotate.batch(ui_settings, "fresh", "next", k=5)
    assert turned["source"] == "random" and len(turned["items"]) == 5
    assert "no yes among 10 answers" in turned["hint"] and "Search" in turned["hint"]


def test_build_model_view_and_approval(ui_settings, wh, truth, colour):
    label = f"{colour}_scene"
    with pytest.raises(InputError, match="has 0 yes and 0 no; a model needs at least 3 of each: find yes clips with Search"):
        h.build(ui_settings, label)
    label_by_truth(ui_settings, label, truth, colour)
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
    assert "nothing served yet" in text and "no clip had 2 annotators" in text
    chart = panels.ap_chart(history)
    assert chart.startswith("<svg") and chart.count("<circle") == 1 and "v1: no corpus estimate yet" in chart

    previews = h.feed_previews(ui_settings, label)
    assert set(previews) == {"top_positive", "top_negative", "borderline", "random", "audit"}
    labelled = set(_events(wh, label)["clip_key"])
    assert all(i["clip_key"] not in labelled for items in previews.values() for i in items)

    borderline = annotate.batch(ui_settings, label, "borderline", k=5)
    assert borderline["source"] == "borderline" and len(borderline["items"]) == 5
    assert all(i["clip_key"] not in labelled for i in borderline["items"])
    assert [i["provenance"]["rank"] for i in borderline["items"]] == [1, 2, 3, 4, 5]
    assert all(i["provenance"]["chosen_by_version"] == 1 and i["provenance"]["chosen_score"] == i["score"]
               for i in borderline["items"])

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

    # the header names the served version, the dialog the version it retires (none before the first)
    assert "No version of" in panels.checks(checks) and "retired" not in panels.checks(checks)
    for item in borderline["items"][:3]:
        annotate.save(ui_settings, label, item["clip_key"], truth[item["clip_key"]]["colour"] == colour, "lee",
                      item["source"], item["provenance"])
    # each answer's event says how its clip was chosen: the feed, its rank, the version and score
    stored = _events(wh, label).filter(pl.col("annotator") == "lee")
    assert stored.select("source", "rank", "chosen_by_version").rows() == [("borderline", r, 1) for r in (1, 2, 3)]
    assert stored["chosen_score"].to_list() == pytest.approx([i["score"] for i in borderline["items"][:3]])
    assert h.build(ui_settings, label)["result"].model_version == 2
    text = panels.quality(ui_settings, label, h.model_history(ui_settings, label))
    assert text.startswith(f"### {label}: serving v1") and "v2 · candidate (latest)" in text
    assert "v1, served now, is retired" in panels.checks(h.approval_checks(ui_settings, label, 2))


def test_an_audit_round_in_annotate_gives_the_model_part_its_corpus_estimate(ui_settings, wh, truth, colour):
    label = f"{colour}_audit"
    label_by_truth(ui_settings, label, truth, colour)
    h.build(ui_settings, label)
    answered = 0
    for item in annotate.batch(ui_settings, label, "audit", k=60)["items"]:  # what the desk sends back
        annotate.save(ui_settings, label, item["clip_key"], truth[item["clip_key"]]["colour"] == colour, "maria",
                      item["source"], item["provenance"])
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


def test_any_version_is_approved_with_the_registry_rules_and_rolled_back(ui_settings, wh, truth, colour):
    label = f"{colour}_versions"
    unmeasured_then_measured(ui_settings, label, truth, colour)
    assert h.rollback_version(ui_settings, label) is None
    h.approve(ui_settings, label, 2, "maria")
    # v1 has no corpus estimate to set against the served v2's: the registry wants a reason
    checks = h.approval_checks(ui_settings, label, 1)
    assert checks["model_version"] == 1 and checks["served"]["model_version"] == 2
    assert "no corpus estimate to compare" in checks["override_needed"]
    text = panels.checks(checks)
    assert "| v1 (this version) | v2 (served now) |" in text and "Approving it anyway needs a reason" in text
    assert f"| label set size | {checks['n_labels']} | {checks['served']['n_labels']} |" in text
    with pytest.raises(ApprovalRefused, match="no corpus estimate") as refused:
        h.approve(ui_settings, label, 1, "maria", override="  ")
    # the app's own words for giving a reason, not the command's flag
    assert "reason box" in str(refused.value) and "--override" not in str(refused.value)
    done = h.approve(ui_settings, label, 1, "maria", override="the audit round missed night shots")
    assert done["model_version"] == 1 and done["retired"] == [2]
    last = h.stage_history(ui_settings, label).row(0, named=True)
    assert (last["version"], last["stage"], last["by"]) == (1, "approved", "maria")
    assert last["reason"].startswith("override: the audit round missed night shots")
    text = panels.quality(ui_settings, label, h.model_history(ui_settings, label))
    assert text.startswith(f"### {label}: serving v1") and "v1 (served): AP on the corpus unknown" in text
    # roll back: the version served before, with the same rules (v1 has no estimate: none needed)
    assert h.rollback_version(ui_settings, label) == 2
    assert h.approval_checks(ui_settings, label, 2)["override_needed"] is None
    h.approve(ui_settings, label, 2, "maria", reason="rolled back from v1 in the labelling app")
    stages = dict(wh.read("models", where={"label": label}).select("model_version", "stage").iter_rows())
    assert stages == {1: "retired", 2: "approved"}
    assert h.stage_history(ui_settings, label)["reason"][0] == "rolled back from v1 in the labelling app"
    assert "**approved · served**" in panels.versions(h.model_history(ui_settings, label))


def test_a_version_that_failed_its_checks_cannot_be_approved(ui_settings, wh, truth, colour):
    label = f"{colour}_scene"
    label_by_truth(ui_settings, label, truth, colour)
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
    assert set(h.review_rows(ui_settings, "dog", annotator="lee")["clip_key"]) == {keys[0], keys[2]}
    assert set(h.review_rows(ui_settings, "dog", "no", annotator="lee")["clip_key"]) == {keys[2]}
    assert set(h.review_rows(ui_settings, "dog", source="review")["clip_key"]) == {keys[0], keys[2]}
    assert by_key[keys[0]]["sources"] == "review, search" and by_key[keys[3]]["sources"] == "search"
    assert h.review_rows(ui_settings, "dog", "all", None, keys[3])["clip_key"].to_list() == [keys[3]]
    assert h.review_rows(ui_settings, "nobody_labelled", "all").height == 0
    assert h.review_options(ui_settings, "dog") == {"annotators": ["lee", "maria"], "sources": ["review", "search"]}
    with pytest.raises(InputError, match="unknown filter"):
        h.review_rows(ui_settings, "dog", "maybe")

    h.change(ui_settings, "dog", keys[0], True, "lee")
    assert h.review_rows(ui_settings, "dog", "yes")["clip_key"].to_list()[0] == keys[0]
    last = _events(wh, "dog").row(-1, named=True)
    assert (last["clip_key"], last["value"], last["annotator"], last["source"]) == (keys[0], True, "lee", "review")

    # a bulk change: one event per clip, in one commit; a bad key and nothing is stored
    before = _events(wh, "dog").height
    with pytest.raises(InputError, match="unknown clip key"):
        h.change(ui_settings, "dog", [keys[1], "nothing|0"], False, "lee")
    assert _events(wh, "dog").height == before
    done = h.change(ui_settings, "dog", [keys[1], keys[3], keys[1]], False, "lee")
    assert done["clip_keys"] == [keys[1], keys[3]]
    added = _events(wh, "dog").tail(2)
    assert added.select("clip_key", "value", "annotator", "source").rows() == [
        (keys[1], False, "lee", "review"), (keys[3], False, "lee", "review")]
    with pytest.raises(InputError, match="select the rows"):
        h.change(ui_settings, "dog", [], True, "lee")

    # an undo back to no vote takes the annotator out of the row (a withdrawn vote is no vote)
    from va_core.labels import undo_event

    undo_event(wh, "dog", keys[3], "lee")
    row = h.review_rows(ui_settings, "dog", contains=keys[3]).row(0, named=True)
    assert row["annotators"] == "maria: no" and row["votes"] == 1


def test_review_changes_clips_to_unsure_withdrawing_only_the_reviewers_vote(ui_settings, wh):
    keys = wh.read("clips")["clip_key"].sort().to_list()[:2]
    h.mark(ui_settings, "cat", keys[0], True, "maria", "search")
    h.mark(ui_settings, "cat", keys[1], True, "lee", "search")
    version = wh.version("label_events")
    done = h.change(ui_settings, "cat", keys, None, "maria", unsure=True)
    assert done["unsure"] and done["still_voted"] == [keys[1]]  # lee's yes still decides keys[1]
    assert wh.version("label_events") == version + 1
    added = _events(wh, "cat").tail(2)
    assert added.select("clip_key", "value", "unsure", "annotator", "source").rows() == [
        (keys[0], None, True, "maria", "review"), (keys[1], None, True, "maria", "review")]
    assert h.review_rows(ui_settings, "cat", "unsure")["clip_key"].to_list() == [keys[0]]
    assert h.review_rows(ui_settings, "cat", "yes")["annotators"].to_list() == ["lee: yes, maria: unsure"]
    for value, unsure in ((True, True), (None, False), ("maybe", False)):
        with pytest.raises(InputError):
            h.change(ui_settings, "cat", keys, value, "maria", unsure=unsure)
    assert wh.version("label_events") == version + 1


def test_review_exports_the_label_set_and_the_raw_events(ui_settings, wh, tmp_path):
    keys = wh.read("clips")["clip_key"].sort().to_list()[:3]
    for key, value in zip(keys, [True, False, True]):
        h.mark(ui_settings, "dog", key, value, "maria", "search")
    h.change(ui_settings, "dog", keys[2], False, "lee")
    for what, fmt in (("label set", "csv"), ("raw events", "parquet"), ("label set", "parquet"),
                      ("raw events", "csv")):
        done = h.export(ui_settings, "dog", what, fmt, tmp_path)
        read = pl.read_csv(done["path"]) if fmt == "csv" else pl.read_parquet(done["path"])
        if what == "label set":
            expected = label_set(wh, "dog").rows().sort("clip_key")
            assert read.select("clip_key", "value", "pos_cnt", "annotator_cnt", "conflict").rows() == \
                expected.select("clip_key", "value", "pos_cnt", "annotator_cnt", "conflict").rows()
        else:
            assert read["event_id"].to_list() == _events(wh, "dog")["event_id"].to_list()
            assert set(read.columns) == set(wh.read("label_events").columns)
        assert done["rows"] == read.height and done["label_events_version"] == wh.version("label_events")
    again = h.export(ui_settings, "dog", "label set", "csv", tmp_path)  # same second: a new file, none replaced
    assert len(list(tmp_path.glob("dog-label-set-*.csv"))) == 2 and again["path"] != done["path"]
    with pytest.raises(InputError, match="export format"):
        h.export(ui_settings, "dog", "label set", "xlsx", tmp_path)
    with pytest.raises(InputError, match="export what"):
        h.export(ui_settings, "dog", "models", "csv", tmp_path)


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


def test_a_label_trains_on_camera_motion_and_keeps_that_choice(ui_settings, truth):
    label = "camera_pans"
    yes = [k for k, r in truth.items() if r["motion"] == "pan"]
    no = [k for k, r in truth.items() if r["motion"] != "pan"]
    for key in yes[:6] + no[:12]:
        h.mark(ui_settings, label, key, key in yes, "maria", "test")
    first = h.build(ui_settings, label, features="motion")["result"]
    assert first.encoder_id == "motion-v1" and first.created
    h.mark(ui_settings, label, no[12], False, "maria", "test")
    again = h.build(ui_settings, label)["result"]  # no choice: the label's latest model's
    assert again.encoder_id == "motion-v1" and again.model_version == 2
    clip = h.build(ui_settings, label, features="clip")["result"]
    assert clip.encoder_id == parse_spec("tiny").encoder_id and clip.model_version == 3


def test_a_registered_source_is_in_the_picker_and_annotate_serves_it(ui_settings, wh, monkeypatch):
    from va_core import feeds, sources
    from va_ui import desk

    keys = sorted(wh.read("clips", columns=["clip_key"])["clip_key"].to_list())

    def first_keys(ask):
        rows = [k for k in keys if k not in set(ask.exclude)][:ask.k]
        return [feeds.feed_item("first_keys", i + 1, {"clip_key": k, "score": None}, None) for i, k in enumerate(rows)]

    monkeypatch.setitem(sources.SOURCES, "first_keys",
                        sources.Source("first_keys", "first keys", "the first clips by key", first_keys))
    assert '<option value="first_keys" title="the first clips by key">first keys</option>' in desk.template()
    got = annotate.batch(ui_settings, "registered", "first_keys", k=3)
    assert [i["clip_key"] for i in got["items"]] == keys[:3] and {i["source"] for i in got["items"]} == {"first_keys"}
    assert [i["provenance"]["rank"] for i in got["items"]] == [1, 2, 3]
    monkeypatch.undo()
    assert 'value="first_keys"' not in desk.template()
    with pytest.raises(InputError, match="unknown source"):
        annotate.batch(ui_settings, "registered", "first_keys", k=3)


def test_review_table_escapes_and_shows_every_field():
    row = {"clip_key": "<b>x</b>|0", "label": "no", "yes": 0, "votes": 2, "annotators": "a: no, b: no",
           "sources": "review", "your vote": "", "changed": "2026-01-02 03:04:05"}
    html = views.review_table([row], {"<b>x</b>|0": {"clip_key": "<b>x</b>|0", "playable": False, "reason": "gone"}},
                              250, "none")
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;|0" in html
    assert '<td class="va-col-yes">0</td>' in html and '<td class="va-col-changed">2026-01-02 03:04:05</td>' in html
    assert "250 clips · showing the 1 most recently changed" in html and "no video" in html
    assert views.review_table([], {}, 0, "No clip matches.") == '<div class="va-empty">No clip matches.</div>'


def test_the_model_tab_of_a_label_without_a_model_says_what_to_do(ui_settings):
    from va_ui.tabs import model

    quality, versions, history, picker, approve, rollback, *_ = model.shown(ui_settings, "nothing_yet")
    assert "has no model yet" in quality and versions == "" and history is None
    assert picker["choices"] == [] and approve["interactive"] is False and rollback["interactive"] is False


def test_an_answer_reads_the_label_events_once_to_save_and_once_for_what_follows(ui_settings, wh, truth, colour,
                                                                                  monkeypatch):
    from va_ui.tabs.annotate import after_answer

    label = f"{colour}_reads"
    label_by_truth(ui_settings, label, truth, colour)
    h.build(ui_settings, label)  # a model: the feed previews are shown after each answer too
    fresh = next(k for k in sorted(truth) if k not in label_set(wh, label).labelled)
    opened: list[str] = []
    real_open = Warehouse._open

    def counted(self, table, version=None):
        opened.append(table)
        return real_open(self, table, version)

    monkeypatch.setattr(Warehouse, "_open", counted)  # every table open of va_core goes through it
    saved = annotate.save(ui_settings, label, fresh, True, "maria", "random")
    # the append's new version (Warehouse.append), then the label's counts after it
    assert opened.count("label_events") == 2
    opened.clear()
    status, labels, *model_parts = after_answer(ui_settings, label, None)
    # one snapshot serves the counts, the Labels table, the label picker's names and the previews
    assert opened.count("label_events") == 1
    # and all of them show this answer
    ls = label_set(wh, label)
    assert saved["summary"]["n_pos"] == ls.n_pos == 5 and f"{ls.n_pos} yes" in status
    row = labels.filter(pl.col("label") == label).row(0, named=True)
    assert (row["yes"], row["no"]) == (ls.n_pos, ls.n_neg)
    previews = " ".join(str(p) for p in model_parts)
    assert fresh not in previews and "data-key" in previews


def test_a_grid_card_keeps_its_last_press_whatever_order_the_answers_arrive_in(ui_settings, wh, truth):
    # Search and Mistakes send each card's answer as a request of its own: the later press
    # (No, number 2) can reach the server before the earlier one (Yes, number 1)
    from va_ui.tabs.page import answer_card

    label = "arrival_order"
    key, other = sorted(truth)[:2]
    answer_card(ui_settings, label, {"clip_key": key, "value": False, "seq": 2}, "maria", "search", session="page-1")
    late = answer_card(ui_settings, label, {"clip_key": key, "value": True, "seq": 1}, "maria", "search",
                       session="page-1")
    assert f"A later answer to {key} was stored already" in late
    assert label_set(wh, label).negatives == [key]
    # another card of the page, and the same card pressed on another page, are answers of their own
    answer_card(ui_settings, label, {"clip_key": other, "value": True, "seq": 1}, "maria", "search", session="page-1")
    answer_card(ui_settings, label, {"clip_key": key, "unsure": True, "seq": 1}, "lee", "search", session="page-2")
    events = _events(wh, label)
    assert [(r["clip_key"], r["value"], r["annotator"]) for r in events.iter_rows(named=True)] == [
        (key, False, "maria"), (other, True, "maria"), (key, None, "lee")]
