"""A va home with approved classifiers, and a real model server on it (shared by the session).

The home holds two corpora so every endpoint has something real to do:
- a synthetic corpus (48-d, ``synthetic:gaussian-topics``): labels ``cat`` (topic 0) and
  ``dog`` (topic 1), trained by va_core and approved;
- two generated sample videos ingested with the ``tiny`` encoder (64-d): label ``warm``
  (red, orange, yellow or purple shots), trained and approved, for /classify.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from va_core.config import Settings
from tests.support.synthetic import SYNTHETIC_ENCODER_ID, SyntheticCorpus, make_corpus, write_corpus
from va_core.warehouse import Warehouse

SYNTH_DIM = 48
WARM = {"red", "orange", "yellow", "purple"}
MAX_ROWS = 64


@dataclass
class ServingHome:
    settings: Settings
    corpus: SyntheticCorpus
    videos: list[Path]

    @property
    def wh(self) -> Warehouse:
        return Warehouse.from_settings(self.settings)


def topic_events(corpus: SyntheticCorpus, label: str, topic: int, n: int = 25, offset: int = 0) -> list[dict]:
    pos = [k for k, t in zip(corpus.keys, corpus.topics) if t == topic][offset:offset + n]
    neg = [k for k, t in zip(corpus.keys, corpus.topics) if t != topic][offset:offset + n]
    return ([{"label": label, "clip_key": k, "value": True} for k in pos]
            + [{"label": label, "clip_key": k, "value": False} for k in neg])


def train_and_approve(settings, label: str, events: list[dict], encoder_id: str | None = None) -> int:
    from va_core.labels import record_events
    from va_core.registry import approve
    from va_core.train import train_label

    wh = Warehouse.from_settings(settings)

    record_events(wh, events, annotator="tester")
    result = train_label(settings, label, encoder_id=encoder_id)
    assert result.checks_passed, result.checks
    approve(settings, label, result.model_version, by="tester")
    return result.model_version


def make_home(root: Path, videos: bool = True) -> ServingHome:
    from va_core import sample_corpus

    settings = Settings(home=root, warehouse_uri=str(root / "warehouse"), encoder="tiny")
    wh = Warehouse.from_settings(settings)
    corpus = make_corpus(400, dim=SYNTH_DIM, n_topics=5, seed=0)
    write_corpus(wh, corpus)
    train_and_approve(settings, "cat", topic_events(corpus, "cat", 0), SYNTHETIC_ENCODER_ID)
    train_and_approve(settings, "dog", topic_events(corpus, "dog", 1), SYNTHETIC_ENCODER_ID)
    paths: list[Path] = []
    if videos:
        from va_core.ingest import ingest

        generated = sample_corpus.generate(root / "videos", n_videos=2, seed=0)
        ingest(settings, [root / "videos"], progress=False)
        ingested = wh.read("videos")["video_id"].to_list()  # the synthetic corpus has clips but no videos
        truth = sample_corpus.truth_for_clips(root / "videos", wh.read("clips", where={"video_id": ingested}))
        events = [{"label": "warm", "clip_key": k, "value": c in WARM}
                  for k, c in zip(truth["clip_key"], truth["colour"])]
        train_and_approve(settings, "warm", events)
        paths = list(generated.videos)
    return ServingHome(settings, corpus, paths)



def corpus_scores(home: ServingHome, label: str, rows: np.ndarray) -> np.ndarray:
    """va_core's scores of the currently approved version of ``label`` for corpus rows."""
    from va_core.registry import approved_models

    [model] = [m for m in approved_models(home.wh) if m.label == label]
    return model.model.score(home.corpus.matrix[rows])
