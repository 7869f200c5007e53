"""Feeds: their definitions, never a labelled clip, reproducible random, zero-shot."""
from __future__ import annotations

import numpy as np
import pytest

from loop_corpus import make_home, sample_rows, truth_events
from va_cli import feeds as cli_feeds
from va_core import feeds, labels, sources, train
from va_core.errors import InputError, NotFound
from va_core.labels import record_events


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    settings, wh, corpus = make_home(tmp_path_factory.mktemp("feeds") / "home")
    record_events(wh, truth_events(corpus, "topic1", 1, sample_rows(corpus, 1, 20, 60)))
    result = train.train_label(settings, "topic1")
    return settings, wh, corpus, result


def test_rank_definitions():
    scores = np.array([0.9, 0.1, 0.52, 0.48, 0.7, 0.05, 0.5])
    everything = np.arange(len(scores))
    assert feeds.rank("top_positive", scores, everything, 3).tolist() == [0, 4, 2]
    assert feeds.rank("top_negative", scores, everything, 2).tolist() == [5, 1]
    assert feeds.rank("borderline", scores, everything, 3, threshold=0.5).tolist() == [6, 2, 3]
    assert feeds.rank("borderline", scores, everything, 2, threshold=0.08).tolist() == [1, 5]
    assert feeds.rank("top_positive", scores, np.array([1, 3, 5]), 5).tolist() == [3, 1, 5]
    a = feeds.rank("random", scores, everything, 4, seed=1)
    assert a.tolist() == feeds.rank("random", scores, everything, 4, seed=1).tolist()
    assert len(set(a.tolist())) == 4
    with pytest.raises(InputError, match="unknown feed"):
        feeds.rank("best", scores, everything, 2)


def test_feeds_never_contain_labelled_clips(loop):
    settings, wh, corpus, _ = loop
    labelled = set(labels.label_set(wh, "topic1").labelled)
    stored = wh.read("feeds", where={"label": "topic1"})
    assert stored.height == len(feeds.stored_feeds()) * feeds.FEED_SIZE
    assert not set(stored["clip_key"]) & labelled
    # label the top of every feed; the next reads skip them without retraining
    shown = {f: [i["clip_key"] for i in sources.get_feed(settings, "topic1", f, 5)] for f in feeds.stored_feeds()}
    newly = [k for keys in shown.values() for k in keys]
    record_events(wh, [{"label": "topic1", "clip_key": k, "value": False, "annotator": "x"} for k in newly])
    for f in feeds.stored_feeds():
        again = [i["clip_key"] for i in sources.get_feed(settings, "topic1", f, 50)]
        assert len(again) == 50 and not set(again) & set(newly) and not set(again) & labelled
    # more than was stored: ranked again from the model's corpus scores, still unlabelled
    many = sources.get_feed(settings, "topic1", "top_negative", 300)
    assert len(many) == 300 and not {i["clip_key"] for i in many} & (labelled | set(newly))
    scores = [i["score"] for i in many]
    assert scores == sorted(scores)


def test_feed_items_name_the_clip_and_the_model(loop):
    settings, wh, corpus, result = loop
    item = sources.get_feed(settings, "topic1", "top_positive", 1)[0]
    assert item["model_version"] == result.model_version
    assert item["video_id"] == item["clip_key"].split("|")[0] and item["end_s"] > item["start_s"]


def test_random_feed_is_seeded_per_model_version(loop):
    settings, wh, corpus, _ = loop
    keys = np.array(corpus.keys, dtype=object)
    scores = np.linspace(0, 1, len(keys))
    none = np.zeros(len(keys), dtype=bool)
    v1 = feeds.compute_feeds(keys, scores, none, "topic1", 1, k=20, feeds=["random"])["clip_key"].to_list()
    assert v1 == feeds.compute_feeds(keys, scores, none, "topic1", 1, k=20, feeds=["random"])["clip_key"].to_list()
    v2 = feeds.compute_feeds(keys, scores, none, "topic1", 2, k=20, feeds=["random"])["clip_key"].to_list()
    assert v1 != v2


def test_borderline_sits_at_the_models_threshold(loop):
    settings, wh, corpus, result = loop
    from va_core.registry import load_model

    threshold = load_model(wh, "topic1").threshold
    border = [i["score"] for i in sources.get_feed(settings, "topic1", "borderline", 10)]
    scores = wh.read("clip_scores", where={"label": "topic1"})["score"].to_numpy()
    assert max(abs(s - threshold) for s in border) <= np.sort(np.abs(scores - threshold))[40] + 1e-6


def test_no_model_yet(loop):
    settings, wh, corpus, _ = loop
    with pytest.raises(NotFound, match="no model yet"):
        sources.get_feed(settings, "untrained", "top_positive", 5)
    with pytest.raises(InputError, match="unknown source 'best'; sources are: next, top_positive"):
        sources.get_feed(settings, "topic1", "best", 5)


def test_zero_shot_uses_the_description_and_skips_labelled_clips(tmp_path):
    """Zero-shot over embeddings of the tiny encoder's own image tower (so the spaces match)."""
    from va_core.encoders import load_encoder

    settings, wh, corpus = make_home(tmp_path / "home", n=200, n_topics=4)
    enc = load_encoder("tiny")
    labels.set_description(wh, "sunset", "an orange sunset over the sea", annotator="a")
    query = enc.encode_text(["an orange sunset over the sea"])[0]
    expected = np.argsort(-(corpus.matrix @ query))
    first = [corpus.keys[i] for i in expected[:3]]
    record_events(wh, [{"label": "sunset", "clip_key": first[0], "value": True, "annotator": "a"}])
    got = sources.get_feed(settings, "sunset", "zero_shot", 5)
    assert [i["clip_key"] for i in got] == [corpus.keys[i] for i in expected[1:6]]
    assert got[0]["query"] == "an orange sunset over the sea"
    args = type("A", (), {"label": "sunset", "feed": None, "k": 3})
    data, text = cli_feeds.cli_feeds(args, settings)
    assert list(data["feeds"]) == ["zero_shot"] and "sunset / zero_shot" in text


def test_sampled_feeds_carry_their_design_and_are_never_redrawn(loop):
    settings, wh, corpus, result = loop
    audit = sources.get_feed(settings, "topic1", "audit", 30)
    how = [i["provenance"] for i in audit]
    assert {h["draw_id"] for h in how} == {f"audit@v{result.model_version}"}
    assert all(0 < h["inclusion_prob"] <= 1 and h["stratum_low"] <= i["score"] + 1e-6 for h, i in zip(how, audit))
    assert len({h["stratum"] for h in how}) >= 3  # a prefix of the draw spans the strata
    random = sources.get_feed(settings, "topic1", "random", 5)[0]["provenance"]
    assert random["stratum"] == 0 and random["inclusion_prob"] == pytest.approx(
        feeds.FEED_SIZE / random["stratum_size"])
    # more than the draw holds: what is left of it, not a new draw
    assert len(sources.get_feed(settings, "topic1", "audit", 500)) <= feeds.FEED_SIZE
    first = sources.get_feed(settings, "topic1", "top_positive", 2)[0]
    ranked = first["provenance"]
    stored = wh.read("feeds", where={"label": "topic1", "feed": "top_positive", "clip_key": first["clip_key"]})
    # the rank recorded is the clip's place in the stored feed (clips labelled since are skipped)
    assert ranked["rank"] == stored["rank"][0] and "draw_id" not in ranked
    assert ranked["chosen_by_version"] == result.model_version


def test_an_audit_before_any_model_is_a_uniform_draw(tmp_path):
    settings, wh, corpus = make_home(tmp_path / "home", n=300)
    record_events(wh, truth_events(corpus, "fresh", 2, sample_rows(corpus, 2, 1, 1)))
    items = sources.get_feed(settings, "fresh", "audit", 10)
    assert len(items) == 10 and all(i["feed"] == "audit" for i in items)
    how = items[0]["provenance"]
    assert how["draw_id"].startswith("random@") and how["stratum_size"] == 298
    assert how["inclusion_prob"] == pytest.approx(10 / 298)
