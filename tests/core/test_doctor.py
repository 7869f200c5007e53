"""`va doctor` on a home broken in each way it checks: found, named, repaired when derivable."""
from __future__ import annotations

import os

import polars as pl
import pytest

from loop_corpus import make_home, sample_rows, truth_events
from va_core import registry, train
from va_core.doctor import check, doctor
from va_core.labels import record_events
from va_core.warehouse import Compare, Warehouse


@pytest.fixture
def home(tmp_path):
    settings, wh, corpus = make_home(tmp_path / "home", n=200)
    record_events(wh, truth_events(corpus, "t1", 1, sample_rows(corpus, 1, 10, 20)))
    train.train_label(settings, "t1")
    record_events(wh, truth_events(corpus, "t1", 1, sample_rows(corpus, 1, 3, 3, seed=5)))
    train.train_label(settings, "t1")
    train.train_label(settings, "t1", force=True)
    return settings, wh


def checks_of(settings, **kw):
    wh = Warehouse.from_settings(settings)
    return sorted({(f.check, f.table) for f in check(wh, **kw)[0]})


def test_a_healthy_home(home):
    settings, _ = home
    report = doctor(Warehouse.from_settings(settings))
    assert report["healthy"] and report["problems"] == [] and report["repaired"] == []


def test_every_derivable_breakage_is_found_and_repaired(home):
    settings, wh = home
    wh.append("clips", wh.arrow("clips").slice(0, 4))  # duplicates
    wh.append("label_events", wh.arrow("label_events").slice(0, 2))
    registry.record_stages(wh, "t1", [registry.stage_event("t1", 3, "approved", "candidate", "ann", "ok")])
    wh.replace("models", {"label": "t1"},  # a stale stage copy
               wh.read("models", where={"label": "t1"}).with_columns(pl.lit("candidate").alias("stage")))
    wh.delete("model_stage_events", {"label": "t1", "model_version": 1})  # a version without stage event
    scores = wh.read("clip_scores", where={"label": "t1", "model_version": 3})  # an interrupted v4, unpruned v1
    wh.append("clip_scores", scores.with_columns(pl.lit(4, pl.Int64).alias("model_version")))
    wh.append("clip_scores", scores.with_columns(pl.lit(1, pl.Int64).alias("model_version")))
    wh.append("clip_clusters", wh.read("clip_clusters").with_columns(pl.lit("gone:enc").alias("encoder_id")))
    assert checks_of(settings) == [
        ("encoder ids", "clip_clusters"), ("no orphans", "clip_scores"), ("one row per key", "clips"),
        ("one row per key", "label_events"), ("stage consistent", "models"),
        ("versions complete", "clip_scores"), ("versions complete", "model_stage_events")]
    report = doctor(wh, repair=True)
    assert report["healthy"], report["problems"]
    assert len(report["repaired"]) == 7
    assert wh.read("models", where={"label": "t1", "model_version": 3})["stage"][0] == "approved"
    assert set(wh.read("clip_scores", where={"label": "t1"})["model_version"]) == {3}
    assert [e["changed_by"] for e in registry.model_history(wh, "t1") if e["model_version"] == 1] == ["va doctor"]


def test_a_claim_still_training_is_left_alone_within_the_grace(home):
    settings, wh = home
    train.claim_model_version(wh, "t1", "someone", "training elsewhere")
    findings, notes = check(wh)
    assert findings == [] and "t1 v4 is being trained" in notes[0]
    assert checks_of(settings, grace_s=0) == [("no orphans", "model_stage_events")]


def test_what_is_not_derivable_stays_a_problem(home):
    settings, wh = home
    wh.delete("evaluations", {"label": "t1", "model_version": 3})
    wh.delete("feeds", {"label": "t1", "model_version": Compare(">=", 0)})
    report = doctor(wh, repair=True)
    assert not report["healthy"]
    assert {(p["check"], p["table"]) for p in report["problems"]} == {
        ("versions complete", "evaluations"), ("versions complete", "feeds")}
    assert all("va train t1 --force" in p["message"] and p["repair"] is None for p in report["problems"])


def test_an_unreadable_table_is_named(home):
    settings, wh = home
    from deltalake import DeltaTable

    os.remove(DeltaTable(wh.table_uri("feeds")).file_uris()[0].removeprefix("file://"))
    findings, _ = check(wh)
    assert [(f.check, f.table) for f in findings if f.check == "readable"] == [("readable", "feeds")]


def test_tables_made_with_the_old_checkpoint_interval_are_found_and_set(home, monkeypatch):
    from va_core import warehouse

    settings, wh = home
    monkeypatch.setattr(warehouse, "CHECKPOINT_EVERY", 100)  # a table made before every 10 was the default
    old = Warehouse(str(settings.home / "old-warehouse"))
    old.append("label_events", wh.arrow("label_events"))
    monkeypatch.undo()
    assert old.checkpoint_interval("label_events") == 100
    assert [(f.check, f.table) for f in check(old)[0]] == [("checkpoints often", "label_events")]
    rows = old.read("label_events").height
    report = doctor(old, repair=True)
    assert report["healthy"] and [r["check"] for r in report["repaired"]] == ["checkpoints often"]
    assert old.checkpoint_interval("label_events") == warehouse.CHECKPOINT_EVERY
    assert old.read("label_events").height == rows  # the rows are as they were
