"""Stages: candidate -> approved -> retired, one approved per label, refusals with reasons."""
from __future__ import annotations

import numpy as np
import pytest

from loop_corpus import make_home, sample_rows, truth_events
from va_core import checks, registry, train
from va_core.errors import NotFound
from va_core.labels import record_events


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    settings, wh, corpus = make_home(tmp_path_factory.mktemp("registry") / "home", n=800)
    record_events(wh, truth_events(corpus, "topic4", 4, sample_rows(corpus, 4, 15, 45)))
    v1 = train.train_label(settings, "topic4")
    record_events(wh, truth_events(corpus, "topic4", 4, sample_rows(corpus, 4, 5, 5, seed=3)))
    v2 = train.train_label(settings, "topic4")
    return settings, wh, corpus, v1, v2


def test_approve_then_approve_another_retires_the_first(two_versions):
    settings, wh, corpus, v1, v2 = two_versions
    out = registry.approve(settings, "topic4", version=1, by="lead")
    assert out["changed"] and out["model_version"] == 1 and out["retired"] == []
    assert [m.model_version for m in registry.approved_models(wh)] == [1]
    again = registry.approve(settings, "topic4", version=1, by="lead")
    assert not again["changed"]
    out = registry.approve(settings, "topic4", by="lead")  # default: the latest
    assert out["model_version"] == 2 and out["retired"] == [1]
    stages = dict(registry.models_frame(wh, "topic4").select(["model_version", "stage"]).iter_rows())
    assert stages == {1: "retired", 2: "approved"}
    history = [(h["model_version"], h["previous_stage"], h["stage"], h["changed_by"])
               for h in registry.model_history(wh, "topic4")]
    assert history[:2] == [(1, None, "candidate", history[0][3]), (2, None, "candidate", history[1][3])]
    assert history[2:] == [(1, "candidate", "approved", "lead"), (1, "approved", "retired", "lead"),
                           (2, "candidate", "approved", "lead")]


def test_approved_models_score_like_the_stored_scores(two_versions):
    settings, wh, corpus, v1, v2 = two_versions
    registry.approve(settings, "topic4", version=2, by="lead")
    (approved,) = registry.approved_models(wh)
    assert (approved.label, approved.model_version, approved.encoder_id) == ("topic4", 2, v2.encoder_id)
    stored = wh.read("clip_scores", where={"label": "topic4", "model_version": 2}).sort("clip_key")
    c = train.corpus_for(settings)
    assert np.abs(approved.model.score(c.matrix) - stored["score"].to_numpy()).max() < 1e-6


def test_a_version_whose_checks_failed_is_refused_with_the_reason(two_versions):
    settings, wh, corpus, v1, v2 = two_versions
    rows = registry.models_frame(wh, "topic4")
    failing = checks.beats_baseline(0.05, 0.2, "hash_split")
    assert not failing.passed and failing.blocking
    passed, report = checks.report([failing, checks.no_conflicts_in_training(["a"], [])])
    assert not passed
    tampered = rows.with_columns(
        rows["checks_report"].scatter(0, report), rows["checks_passed"].scatter(0, False))
    wh.replace("models", {"label": "topic4"}, tampered)
    before = registry.models_frame(wh, "topic4").select(["model_version", "stage"]).rows()
    with pytest.raises(registry.ApprovalRefused, match="beats_random_baseline: labelled-set AP 0.050 <= random baseline 0.200"):
        registry.approve(settings, "topic4", version=1)
    assert registry.models_frame(wh, "topic4").select(["model_version", "stage"]).rows() == before


def test_check_functions_report_what_is_wrong():
    conflict = checks.no_conflicts_in_training(["a", "b"], ["b", "c"])
    assert not conflict.passed and "1 conflicting clip" in conflict.message
    dims = checks.embedding_consistent(512, "enc-a", 64, "enc-b")
    assert not dims.passed and "enc-a" in dims.message and "512-d" in dims.message
    assert checks.embedding_consistent(64, "e", 64, "e").passed


def test_unknown_versions_and_labels(two_versions):
    settings, wh, *_ = two_versions
    with pytest.raises(NotFound, match="no model version 9"):
        registry.approve(settings, "topic4", version=9)
    with pytest.raises(NotFound, match="no model"):
        registry.approve(settings, "nothing_here")
    out = registry.retire(settings, "topic4", 2, by="lead")
    assert out["changed"] and registry.approved_models(wh) == []


def test_roll_back_finds_the_version_served_before(two_versions):
    settings, wh, corpus, _, _ = two_versions
    for seed in (11, 12):  # a label of its own: the other tests change topic4's versions
        record_events(wh, truth_events(corpus, "rolled", 2, sample_rows(corpus, 2, 10, 20, seed=seed)))
        train.train_label(settings, "rolled")
    assert registry.rollback_version(wh, "rolled") is None  # nothing served yet
    registry.approve(settings, "rolled", version=1, by="lead")
    assert registry.rollback_version(wh, "rolled") is None  # nothing served before
    registry.approve(settings, "rolled", version=2, by="lead")
    assert registry.rollback_version(wh, "rolled") == 1
    registry.approve(settings, "rolled", version=1, by="lead", reason="roll back")  # the roll back itself
    assert registry.rollback_version(wh, "rolled") == 2  # and back again
    registry.retire(settings, "rolled", 1, by="lead")
    assert registry.rollback_version(wh, "rolled") is None  # nothing served: nothing to roll back from


def test_a_candidate_without_an_estimate_is_not_compared_and_the_refusal_names_no_front_end():
    # the app shows this text in its dialog and the CLI prints it: neither's commands belong in it
    from va_core.registry import clearly_worse

    served = {"label": "t", "model_version": 1, "ap": 0.8, "ap_low": 0.7, "ap_high": 0.9}
    unmeasured = {"label": "t", "model_version": 2, "ap": None, "ap_low": None, "ap_high": None}
    why = clearly_worse(unmeasured, served)
    assert "v2 has no corpus estimate" in why and "audit feed" in why and "va " not in why
    below = {**unmeasured, "ap": 0.5, "ap_low": 0.4, "ap_high": 0.6}
    assert "clearly below the served v1's 0.800" in clearly_worse(below, served)
    assert clearly_worse({**below, "ap_high": 0.85}, served) is None  # the intervals overlap
