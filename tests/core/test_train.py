"""`train_label`: one model version with its lineage, written once per label set."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from loop_corpus import TINY_ID, make_home, sample_rows, truth_events
from va_cli.models import describe_result
from va_core import checks, train
from va_core.errors import InputError
from va_core.labels import LabelEvent, record_events

TABLES = ("models", "evaluations", "clip_scores", "feeds", "label_sets", "model_stage_events")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    settings, wh, corpus = make_home(tmp_path_factory.mktemp("train") / "home")
    record_events(wh, truth_events(corpus, "topic2", 2, sample_rows(corpus, 2, 30, 120)))
    # one clip on which two annotators disagree: a conflict
    record_events(wh, [LabelEvent("topic2", corpus.keys[0], True, "a"),
                       LabelEvent("topic2", corpus.keys[0], False, "b")])
    result = train.train_label(settings, "topic2")
    return settings, wh, corpus, result


def test_a_version_and_its_lineage(trained):
    settings, wh, corpus, r = trained
    assert r.created and r.model_version == 1 and r.stage == "candidate" and r.trainer == "fast"
    assert r.encoder_id == TINY_ID
    events_version = wh.version("label_events")
    assert r.label_events_version == events_version
    assert (r.n_pos, r.n_neg, r.n_conflicts) == (30, 120, 1)
    for table in ("models", "evaluations", "clip_scores", "feeds"):
        rows = wh.read(table, where={"label": "topic2"})
        assert rows.height > 0, table
        assert set(rows["model_version"].to_list()) == {1}, table
        assert set(rows["label_events_version"].to_list()) == {events_version}, table
        assert set(rows["encoder_id"].to_list()) == {TINY_ID}, table
    assert set(wh.read("label_sets", where={"label": "topic2"})["label_events_version"]) == {events_version}
    assert wh.read("clip_scores", where={"label": "topic2"}).height == len(corpus.keys)
    ev = wh.read("evaluations", where={"label": "topic2"}).row(0, named=True)
    assert ev["ap_mean"] == pytest.approx(r.labelled_ap) and ev["method"] in ("hash_split", "stratified_cv")
    assert ev["labelled_ap"] == pytest.approx(r.labelled_ap)
    assert ev["n_conflicts"] == 1 and ev["agreement"] == 0.0 and 0 < ev["diversity_score"] <= 1
    assert r.labelled_ap > r.baseline_ap
    # no labelled random draw: no corpus estimate, and every row says so and what is missing
    assert r.ap is None and ev["ap"] is None and r.ap_method == ev["ap_method"] == "no_audit_labels"
    assert r.audit_needed > 0 and "needs" in describe_result(r)


def test_the_version_records_its_prior_shape_and_refits_in_it(tmp_path):
    # clusters hold most of the variance and the concept lies outside them: the evidence
    # chooses the whitened prior, and the evaluation's refits fit in it with the corpus's whitening
    from va_core import learn
    from va_core.config import Settings
    from va_core.registry import load_model
    from va_core.warehouse import Warehouse
    from tests.support.synthetic import SyntheticCorpus, write_corpus

    rng = np.random.default_rng(11)
    n, d, k = 4000, 64, 6
    basis, _ = np.linalg.qr(rng.standard_normal((d, k)))
    z = rng.standard_normal((12, k))[rng.integers(0, 12, n)] + 0.6 * rng.standard_normal((n, k))
    X = z @ basis.T / np.sqrt(k) + 0.55 * rng.standard_normal((n, d)) / np.sqrt(d)
    direction = rng.standard_normal(d)
    direction -= basis @ (basis.T @ direction)
    y = rng.random(n) < 0.03
    X += 0.3 * y[:, None] * direction / np.linalg.norm(direction)
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    settings = Settings.from_env(home=tmp_path / "home", encoder="tiny")
    wh = Warehouse.from_settings(settings)
    corpus = SyntheticCorpus([f"v{i // 100:04d}|{(i % 100) * 48}" for i in range(n)], X, y.astype(int), TINY_ID)
    write_corpus(wh, corpus)
    rows = np.r_[rng.choice(np.flatnonzero(y), 60, replace=False), rng.choice(np.flatnonzero(~y), 240, replace=False)]
    record_events(wh, truth_events(corpus, "concept", 1, rows))
    r = train.train_label(settings, "concept")
    c = train.corpus_for(settings)
    model = load_model(wh, "concept", r.model_version)
    W = train.corpus_whitening(c)
    assert train.corpus_whitening(c) is W and np.array_equal(W, learn.whitening(c.matrix))
    assert model.params["prior"] == "whitened" and model.params["whitening"] == learn.whitening_digest(W)
    data = train.training_data(train.build_label_set(wh, "concept", write=False), c)
    assert data.whitening is W
    assert np.abs(model.score(c.matrix) - learn.fit_prior(data.X, data.y, whitening=W).score(c.matrix)).max() < 1e-6
    # the stored evaluation is the refits' (in the whitened shape): recomputed, the same
    stored = wh.read("evaluations", where={"label": "concept"}).row(0, named=True)
    assert train.evaluate_classifier(data, model=model).ap.mean == pytest.approx(stored["ap_mean"], abs=1e-9)
    with pytest.raises(ValueError, match="the corpus has changed"):
        learn.refit(model, data.X, data.y, learn.whitening(c.matrix[:1000]))
    # more clips ingested: the corpus's whitening is another one, so version 1 cannot be refitted
    # as it was fitted; the policy's paired estimates say so instead of refitting it otherwise
    more = SyntheticCorpus([f"w{i // 100:04d}|{(i % 100) * 48}" for i in range(500)],
                           np.ascontiguousarray(X[-500:][::-1]), y[:500].astype(int), TINY_ID)
    write_corpus(wh, more)
    record_events(wh, truth_events(corpus, "concept", 1, rng.choice(np.flatnonzero(~y), 20, replace=False)))
    v2 = train.train_label(settings, "concept")
    assert v2.created and v2.model_version == 2
    paired = train.version_estimates(wh, "concept", [1, 2])
    assert paired[1].ap is None and paired[1].method == train.CORPUS_CHANGED
    assert paired[2].method != train.CORPUS_CHANGED


def test_stored_model_reproduces_the_stored_scores(trained):
    settings, wh, corpus, r = trained
    model = wh.read("models", where={"label": "topic2"}).row(0, named=True)
    artifact = json.loads(model["artifact"])
    coef, b = np.array(artifact["coef"]), artifact["intercept"]
    expected = 1 / (1 + np.exp(-(corpus.matrix.astype(np.float64) @ coef + b)))
    scores = wh.read("clip_scores", where={"label": "topic2"}).sort("clip_key")
    order = np.argsort(np.array(corpus.keys, dtype=object))
    assert scores["clip_key"].to_list() == [corpus.keys[i] for i in order]
    assert np.abs(scores["score"].to_numpy() - expected[order]).max() < 1e-6
    assert corpus.keys[0] not in artifact["training_clips"]  # the conflict was not trained on
    assert len(artifact["training_clips"]) == 150


def test_checks_are_stored_and_recomputable(trained):
    settings, wh, corpus, r = trained
    assert r.checks_passed
    names = {c["name"] for c in r.checks}
    assert names == {"beats_random_baseline", "no_conflicting_labels_in_training", "embedding_consistent"}
    again = checks.check_model_version(wh, "topic2", 1)
    assert all(c.passed for c in again)
    assert {c.name for c in again} == names


def test_same_label_events_twice_writes_nothing(trained):
    settings, wh, corpus, r = trained
    before = {t: wh.version(t) for t in TABLES}
    again = train.train_label(settings, "topic2")
    assert not again.created and again.model_version == 1 and again.labelled_ap == pytest.approx(r.labelled_ap)
    assert again.ap_method == r.ap_method and again.audit_needed == r.audit_needed
    assert {t: wh.version(t) for t in TABLES} == before
    # labels of another label do not change this label's set: still nothing to do
    record_events(wh, truth_events(corpus, "other", 3, sample_rows(corpus, 3, 3, 3)))
    assert not train.train_label(settings, "topic2").created
    assert {t: wh.version(t) for t in TABLES} == before


def test_new_labels_make_a_new_version_that_replaces_scores_and_feeds(trained):
    settings, wh, corpus, _ = trained
    record_events(wh, truth_events(corpus, "topic2", 2, sample_rows(corpus, 2, 5, 5, seed=7)))
    r2 = train.train_label(settings, "topic2")
    assert r2.created and r2.model_version == 2
    assert wh.read("models", where={"label": "topic2"})["model_version"].sort().to_list() == [1, 2]
    forced = train.train_label(settings, "topic2", force=True)
    assert forced.created and forced.model_version == 3
    # once a version is visible, the scores and feeds of older versions are pruned
    for table in ("clip_scores", "feeds"):
        assert set(wh.read(table, where={"label": "topic2"})["model_version"]) == {3}


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_reference_trainer_is_a_version_of_its_own(trained):
    settings, wh, corpus, _ = trained
    ref = train.train_label(settings, "topic2", trainer="reference")
    assert ref.created and ref.trainer == "reference"
    row = wh.read("models", where={"label": "topic2", "model_version": ref.model_version}).row(0, named=True)
    assert row["trainer"] == "reference" and json.loads(row["artifact"])["params"]["folds"] == 5


def test_too_few_labels_and_bad_input(trained):
    settings, wh, corpus, _ = trained
    record_events(wh, truth_events(corpus, "few", 1, sample_rows(corpus, 1, 2, 10)))
    before = wh.version("models")
    with pytest.raises(InputError, match="at least 3 positive"):
        train.train_label(settings, "few")
    with pytest.raises(InputError, match="bad label name"):
        train.train_label(settings, "Few")
    with pytest.raises(InputError, match="unknown trainer"):
        train.train_label(settings, "topic2", trainer="deep")
    assert wh.version("models") == before


def test_the_steps_compose_into_train_label(trained):
    settings, wh, corpus, _ = trained
    ls = train.build_label_set(wh, "topic2", write=False)
    c = train.corpus_for(settings)
    data = train.training_data(ls, c)
    assert data.y.sum() == ls.n_pos and len(data.keys) == ls.n_pos + ls.n_neg
    model = train.fit_classifier(data)
    feeds = train.build_feeds(ls, c, train.score_corpus(model, c), model_version=99)
    assert set(feeds["feed"]) == {"top_positive", "top_negative", "borderline", "random", "audit"}
    assert not set(feeds["clip_key"]) & set(ls.labelled)
    assert feeds.filter(pl.col("feed") == "top_positive")["score"].to_list() == sorted(
        feeds.filter(pl.col("feed") == "top_positive")["score"].to_list(), reverse=True)


def test_clusters_are_stored_and_refreshed_when_the_corpus_changes(tmp_path):
    from va_core.clusters import refresh_clusters
    from va_core.embeddings import load_corpus
    from tests.support.synthetic import make_corpus, write_corpus

    settings, wh, corpus = make_home(tmp_path / "home", n=300)
    c1 = load_corpus(wh, TINY_ID)
    clusters, computed = refresh_clusters(wh, c1)
    assert computed and len(clusters) == 300 and set(clusters.tolist()) == set(range(10))
    stored = wh.read("clip_clusters").sort("clip_key")
    assert stored["clip_key"].to_list() == c1.keys.tolist() and stored["cluster_index"].to_list() == clusters.tolist()
    assert set(stored["embeddings_version"]) == {c1.version}
    assert refresh_clusters(wh, c1)[1] is False  # unchanged corpus: read back, not recomputed
    more = make_corpus(50, dim=64, seed=9, encoder_id=TINY_ID)
    more = type(more)([k.replace("synth", "extra") for k in more.keys], more.matrix, more.topics, TINY_ID)
    write_corpus(wh, more)
    c2 = load_corpus(wh, TINY_ID)
    clusters2, computed2 = refresh_clusters(wh, c2)
    assert computed2 and len(clusters2) == 350 and wh.count("clip_clusters") == 350


def test_a_registered_trainer_trains_evaluates_and_is_recorded(tmp_path, monkeypatch):
    from va_core import learn

    settings, wh, corpus = make_home(tmp_path / "home", n=400)
    record_events(wh, truth_events(corpus, "topic3", 3, sample_rows(corpus, 3, 12, 30)))
    fitted = []

    def centroids(X, y, query=None, lam=None, **_):  # a trainer may ignore what it does not use
        fitted.append((len(y), query is None, lam))
        return learn.LinearModel(X[y].mean(axis=0) - X[~y].mean(axis=0), 0.0, "centroid", {"method": "centroids"})

    monkeypatch.setitem(learn.TRAINERS, "centroid", learn.Trainer("centroid", "the difference of the class means",
                                                                  centroids))
    assert "centroid" in learn.trainer_names()
    r = train.train_label(settings, "topic3", trainer="centroid")
    row = wh.read("models", where={"label": "topic3"}).row(0, named=True)
    assert r.created and r.trainer == "centroid" and row["trainer"] == "centroid"
    assert json.loads(row["artifact"])["params"]["method"] == "centroids"
    # the stored model and its held-out evaluation both came from it
    assert len(fitted) >= 2 and all(n >= 1 for n, _, _ in fitted)
    assert train.train_label(settings, "topic3", trainer="centroid").created is False  # same labels, same trainer
    monkeypatch.undo()
    with pytest.raises(InputError, match="unknown trainer 'centroid'; trainers are: fast, reference"):
        train.train_label(settings, "topic3", trainer="centroid")


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_retrain_that_names_no_trainer_keeps_the_labels_trainer(tmp_path):
    # what the sensor's run and the app's Build do after `va train LABEL --trainer reference`
    settings, wh, corpus = make_home(tmp_path / "home")
    rows = sample_rows(corpus, 4, 20, 60)
    record_events(wh, truth_events(corpus, "topic4", 4, rows[:50]))
    assert train.train_label(settings, "topic4", trainer="reference").trainer == "reference"
    record_events(wh, truth_events(corpus, "topic4", 4, rows[50:]))
    again = train.train_label(settings, "topic4")
    assert again.created and again.model_version == 2 and again.trainer == "reference"
    # naming one switches, and the next unnamed retrain keeps the new one
    assert train.train_label(settings, "topic4", trainer="fast", force=True).trainer == "fast"
    assert train.train_label(settings, "topic4", force=True).trainer == "fast"
    assert train.label_trainer(None) == "fast"


def test_a_build_starts_its_searches_from_the_lams_of_the_labels_previous_version(tmp_path, monkeypatch):
    from va_core import learn
    from va_core.registry import load_model

    settings, wh, corpus = make_home(tmp_path / "home")
    rows = sample_rows(corpus, 2, 20, 60)
    record_events(wh, truth_events(corpus, "topic2", 2, rows[:50]))
    first = load_model(wh, "topic2", train.train_label(settings, "topic2").model_version)
    walks = first.params["walks"]
    assert set(walks) == {"without_query"} and set(walks["without_query"]) == {"isotropic", "whitened"}
    started = []
    real = learn.fit_prior
    monkeypatch.setattr(learn, "fit_prior", lambda *a, **k: started.append(k.get("near")) or real(*a, **k))
    record_events(wh, truth_events(corpus, "topic2", 2, rows[50:]))
    second = load_model(wh, "topic2", train.train_label(settings, "topic2").model_version)
    assert started[0] == walks["without_query"]  # the build's own fit; its refits fix lam
    assert set(second.params["walks"]["without_query"]) == {"isotropic", "whitened"}
    # another trainer's version gives no starting point
    train.train_label(settings, "topic2", trainer="reference", force=True)
    started.clear()
    train.train_label(settings, "topic2", trainer="fast", force=True)
    assert started[0] is None
