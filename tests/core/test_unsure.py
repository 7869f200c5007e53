"""The answer "unsure": stored, never trained on or sampled, never fed again, undoable; old homes read it."""
from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pytest

from loop_corpus import make_home, sample_rows, truth_events
from va_cli.models import describe_result
from va_core import doctor, feeds, labels, train
from tests.support.command import va_json as va
from va_cli.main import main
from va_core.errors import InputError
from va_core.labels import PROVENANCE, LabelEvent, label_set, record_events
from va_core.sources import get_feed

LABEL, TOPIC = "unsure_topic", 3


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    settings, wh, corpus = make_home(tmp_path_factory.mktemp("unsure") / "home", n=600, n_topics=6, noise=3.0)
    settings.remember_encoder("tiny")
    return settings, wh, corpus



def test_unsure_is_stored_without_a_value_and_counts_as_answered_not_as_a_vote(home):
    settings, wh, corpus = home
    k = corpus.keys
    record_events(wh, [LabelEvent("u1", k[0], True, "a"), LabelEvent("u1", k[1], False, "a")])
    before = label_set(wh, "u1")
    record_events(wh, [LabelEvent("u1", k[2], None, "a", unsure=True),
                             {"label": "u1", "clip_key": k[3], "value": None, "annotator": "b", "unsure": True}])
    rows = wh.read("label_events", where={"label": "u1"}).filter(pl.col("unsure"))
    assert sorted(rows["clip_key"].to_list()) == sorted([k[2], k[3]]) and rows["value"].null_count() == 2
    ls = label_set(wh, "u1")
    assert (ls.positives, ls.negatives, ls.n_unsure) == ([k[0]], [k[1]], 2)
    assert sorted(ls.unsure_keys) == sorted([k[2], k[3]])
    assert set(ls.labelled) == {k[0], k[1], k[2], k[3]}  # feeds never show them again
    assert ls.digest() == before.digest()  # the training content is unchanged
    assert ls.rows()["clip_key"].to_list() == before.rows()["clip_key"].to_list()  # not in label_sets
    assert ls.summary()["n_unsure"] == 2
    overview = next(r for r in labels.labels_overview(wh) if r["label"] == "u1")
    assert (overview["n_pos"], overview["n_neg"], overview["n_unsure"]) == (1, 1, 2)


def test_a_vote_wins_over_unsure_and_a_later_answer_replaces_it(home):
    settings, wh, corpus = home
    k = corpus.keys
    record_events(wh, [LabelEvent("u2", k[10], None, "a", unsure=True), LabelEvent("u2", k[10], True, "b"),
                             LabelEvent("u2", k[11], None, "a", unsure=True), LabelEvent("u2", k[11], False, "a")])
    ls = label_set(wh, "u2")
    # clip 10: b's yes is the one vote (a's unsure is none); clip 11: a answered no after unsure
    assert ls.positives == [k[10]] and ls.negatives == [k[11]] and ls.n_unsure == 0
    row = ls.clips.filter(pl.col("clip_key") == k[10]).row(0, named=True)
    assert (row["pos_cnt"], row["annotator_cnt"]) == (1, 1)


def test_an_unsure_answer_with_a_value_or_a_bad_flag_is_refused(home):
    settings, wh, corpus = home
    before = wh.count("label_events")
    for bad, message in [({"value": True, "unsure": True}, "unsure answer has no value"),
                         ({"value": None, "unsure": "yes"}, "unsure must be true or false"),
                         ({"value": None}, "true or false")]:
        with pytest.raises(InputError, match=message):
            record_events(wh, [{"label": "u3", "clip_key": corpus.keys[0], "annotator": "a", **bad}])
    assert wh.count("label_events") == before


def test_undo_walks_back_through_unsure(home):
    settings, wh, corpus = home
    k = corpus.keys
    record_events(wh, [LabelEvent("u4", k[20], None, "a", unsure=True)])
    record_events(wh, [LabelEvent("u4", k[20], True, "a")])
    done = labels.undo_event(wh, "u4", k[20], "a")  # the yes is taken back: unsure again
    assert (done["value"], done["unsure"]) == (None, True)
    ls = label_set(wh, "u4")
    assert ls.unsure_keys == [k[20]] and ls.positives == []
    record_events(wh, [LabelEvent("u4", k[21], None, "a", unsure=True)])
    labels.undo_event(wh, "u4", k[21], "a")  # an unsure with nothing before it: no answer at all
    ls = label_set(wh, "u4")
    assert ls.unsure_keys == [k[20]] and k[21] not in ls.labelled
    with pytest.raises(InputError, match="already withdrawn"):
        labels.undo_event(wh, "u4", k[21], "a")


def test_unsure_clips_are_not_trained_on_not_fed_and_audit_draws_are_left_out_and_counted(home):
    settings, wh, corpus = home
    record_events(wh, truth_events(corpus, LABEL, TOPIC, sample_rows(corpus, TOPIC, 8, 30)))
    v1 = train.train_label(settings, LABEL)
    top = get_feed(settings, LABEL, "top_positive", 5)
    audit = get_feed(settings, LABEL, "audit", 40)
    unsure_keys = [top[0]["clip_key"], top[1]["clip_key"]]
    record_events(wh, [LabelEvent(LABEL, key, None, "expert", "top_positive", unsure=True) for key in unsure_keys])
    # an audit round: the expert answers most draws and is unsure about three
    audit = [i for i in audit if i["clip_key"] not in unsure_keys]  # the top stratum holds top positives too
    answered, doubtful = audit[3:], audit[:3]
    record_events(wh, [{"label": LABEL, "clip_key": i["clip_key"], "annotator": "expert", "source": "audit",
                              "value": bool(corpus.topics[corpus.keys.index(i["clip_key"])] == TOPIC),
                              **{k: i["provenance"].get(k) for k in PROVENANCE}} for i in answered])
    record_events(wh, [{"label": LABEL, "clip_key": i["clip_key"], "annotator": "expert", "source": "audit",
                              "value": None, "unsure": True, **{k: i["provenance"].get(k) for k in PROVENANCE}}
                             for i in doubtful])
    ls = label_set(wh, LABEL)
    assert ls.n_unsure == 5 and ls.n_unsure_drawn == 3

    v2 = train.train_label(settings, LABEL)
    assert v2.model_version == v1.model_version + 1
    artifact = json.loads(wh.read("models", where={"label": LABEL, "model_version": v2.model_version})["artifact"][0])
    assert not set(artifact["training_clips"]) & set(ls.unsure_keys)
    assert (v2.n_pos, v2.n_neg) == (ls.n_pos, ls.n_neg)
    # the estimate rests on the answered draws only, and says how many were answered unsure
    assert v2.n_audit == len(answered) and v2.n_audit_unsure == 3
    evaluation = wh.read("evaluations", where={"label": LABEL, "model_version": v2.model_version})
    assert evaluation["n_audit_unsure"].to_list() == [3]
    assert "3 audit clip(s) answered unsure" in describe_result(v2)
    # never fed again, by any feed of the new version nor by next
    for feed in feeds.stored_feeds():
        shown = {i["clip_key"] for i in get_feed(settings, LABEL, feed, 600)}
        assert not shown & set(ls.unsure_keys), feed
    shown = {i["clip_key"] for i in get_feed(settings, LABEL, "next", 100)}
    assert not shown & set(ls.unsure_keys)
    # an unsure answer alone changes no training content: no new version
    record_events(wh, [LabelEvent(LABEL, corpus.keys[-1], None, "expert", unsure=True)])
    assert not train.train_label(settings, LABEL).created


def test_va_label_unsure_and_import_of_unsure_values(home, capsys, tmp_path):
    settings, wh, corpus = home
    data = va(capsys, settings.home, "label", "u5", corpus.keys[30], "--unsure", "--annotator", "eve")
    assert data["unsure"] is True and data["value"] is None and data["n_unsure"] == 1
    code = main(["label", "u5", corpus.keys[30], "--unsure", "--yes", "--home", str(settings.home)])
    assert code == 2  # one answer per event
    path = tmp_path / "answers.csv"
    path.write_text(f"label,clip_key,value\nu5,{corpus.keys[31]},Unsure\nu5,{corpus.keys[32]},yes\n")
    data = va(capsys, settings.home, "import-labels", str(path), "--annotator", "eve")
    assert data["labels"][0]["n_unsure"] == 2 and data["labels"][0]["n_pos"] == 1


def test_a_home_written_before_unsure_existed_reads_and_stays_healthy(tmp_path):
    from deltalake import write_deltalake

    settings, wh, corpus = make_home(tmp_path / "old", n=40)
    old_schema = pa.schema([f for f in wh.spec("label_events").schema if f.name != "unsure"])
    rows = pa.Table.from_pylist([
        {"event_id": "e1", "label": "old", "clip_key": corpus.keys[0], "value": True, "annotator": "a",
         "source": "cli", "created_at": pd_now()},
        {"event_id": "e2", "label": "old", "clip_key": corpus.keys[1], "value": None, "annotator": "a",
         "source": "undo", "created_at": pd_now()},
    ], schema=old_schema)
    write_deltalake(wh.table_uri("label_events"), rows, configuration={"delta.enableChangeDataFeed": "true"})
    ls = label_set(wh, "old")
    assert ls.positives == [corpus.keys[0]] and ls.n_unsure == 0  # a null value there is a withdrawn vote
    record_events(wh, [LabelEvent("old", corpus.keys[2], None, "a", unsure=True)])
    ls = label_set(wh, "old")
    assert ls.positives == [corpus.keys[0]] and ls.unsure_keys == [corpus.keys[2]]
    assert corpus.keys[1] not in ls.labelled
    # its only finding: the table was made before tables checkpointed every 10 commits
    assert [p["check"] for p in doctor.doctor(wh)["problems"]] == ["checkpoints often"]
    assert doctor.doctor(wh, repair=True)["healthy"]


def pd_now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)
