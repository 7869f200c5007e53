"""The registry of sources: one entry is all a new source or stored feed needs.

Each test registers its entry with monkeypatch, so no other test ever sees it.
"""
from __future__ import annotations

import numpy as np
import pytest

from loop_corpus import make_home, sample_rows, truth_events
from va_core import feeds, sources, train
from va_core.errors import InputError, NotFound
from va_core.labels import label_set, record_events


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    settings, wh, corpus = make_home(tmp_path_factory.mktemp("sources") / "home", n=400)
    record_events(wh, truth_events(corpus, "topic2", 2, sample_rows(corpus, 2, 8, 20)))
    return settings, wh, corpus


def test_the_registry_lists_every_source_once_with_what_it_needs():
    entries = sources.registry()
    assert list(entries) == ["next", "top_positive", "top_negative", "borderline", "random", "audit", "zero_shot",
                             "similar"]
    assert sources.arms() == ("top_positive", "top_negative", "borderline", "random", "audit", "zero_shot")
    assert sources.source_names() == list(entries)[:-1]  # "similar" starts from a clip
    assert [n for n, s in entries.items() if s.sampled] == ["random", "audit"]
    assert [n for n, s in entries.items() if s.needs_model] == ["top_positive", "top_negative", "borderline"]
    assert all(s.title and s.description and "\n" not in s.description for s in entries.values())
    with pytest.raises(InputError, match="unknown source 'best'"):
        sources.source("best")


def test_a_registered_source_is_asked_for_by_name_and_is_an_arm_of_the_policy(home, monkeypatch):
    settings, wh, corpus = home
    asked = []

    def fetch(ask: sources.Ask) -> list[dict]:
        asked.append(ask)
        keys = [k for k in corpus.keys if k not in set(ask.exclude)][:ask.k]
        return [feeds.feed_item("lowest_keys", i + 1, {"clip_key": k, "score": None}, ask.model_version)
                for i, k in enumerate(keys)]

    monkeypatch.setitem(sources.SOURCES, "lowest_keys",
                        sources.Source("lowest_keys", "lowest keys", "the first clips by key", fetch, arm=True))
    assert "lowest_keys" in sources.source_names() and sources.arms()[-1] == "lowest_keys"
    got = sources.get_feed(settings, "topic2", "lowest_keys", 3)
    labelled = set(label_set(wh, "topic2").labelled)
    assert [i["clip_key"] for i in got] == [k for k in corpus.keys if k not in labelled][:3]
    assert asked[-1].label == "topic2" and asked[-1].model_version is None and set(asked[-1].exclude) == labelled
    # the policy learns about the new arm (its state records it), though before a model it bootstraps
    choice = sources.next_clips(settings, "topic2", 5)
    assert choice["source"] in ("zero_shot", "random") and "lowest_keys" in choice["counts"]
    monkeypatch.undo()
    assert "lowest_keys" not in sources.registry()
    with pytest.raises(InputError, match="unknown source"):
        sources.get_feed(settings, "topic2", "lowest_keys", 3)


def test_a_registered_stored_feed_is_built_stored_served_and_chosen_by_the_policy(home, monkeypatch):
    settings, wh, corpus = home

    def middle(scores, candidates, k, seed, threshold):
        # the clips scored nearest the median: any ranking of the model's scores
        s = np.asarray(scores, dtype=np.float64)[candidates]
        return feeds.Picked(feeds.ordered_rows(np.abs(s - np.median(s)), candidates, k))

    monkeypatch.setitem(feeds.STORED, "median", feeds.Feed("median", "median", "scores nearest the median", middle))
    assert "median" in feeds.stored_feeds() and "median" in sources.arms() and "median" in sources.source_names()
    assert sources.source("median").needs_model and not sources.source("median").sampled
    with pytest.raises(NotFound, match="no model yet"):
        sources.get_feed(settings, "topic2", "median", 5)
    result = train.train_label(settings, "topic2")
    stored = wh.read("feeds", where={"label": "topic2", "model_version": result.model_version})
    assert stored.filter(stored["feed"] == "median").height == feeds.FEED_SIZE
    got = sources.get_feed(settings, "topic2", "median", 5)
    scores = dict(wh.read("clip_scores", columns=["clip_key", "score"],
                          where={"label": "topic2", "model_version": result.model_version}).iter_rows())
    unlabelled = [scores[k] for k in scores if k not in set(label_set(wh, "topic2").labelled)]
    median = np.median(unlabelled)
    assert [i["feed"] for i in got] == ["median"] * 5 and all(i["model_version"] == result.model_version for i in got)
    assert max(abs(i["score"] - median) for i in got) <= np.sort(np.abs(np.array(unlabelled) - median))[4] + 1e-6
    assert set(feeds.all_feeds(settings, "topic2", 2)) == set(feeds.stored_feeds())
    # the policy's only arm now: it chooses it, and fetches from the stored rows
    monkeypatch.setattr(feeds, "STORED", {"median": feeds.STORED["median"]})
    monkeypatch.delitem(sources.SOURCES, "zero_shot")
    assert sources.arms() == ("median",)
    choice = sources.next_clips(settings, "topic2", 4)
    assert choice["source"] == "median" and [c["clip_key"] for c in choice["clips"]] == [i["clip_key"] for i in got[:4]]
    assert all(c["source"] == "median" for c in choice["clips"])
