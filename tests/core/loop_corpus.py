"""A small synthetic corpus in a fresh va home, for the active-learning loop's tests.

Its embeddings are stored under the ``tiny`` encoder's id, so the `va` commands of a home
whose encoder is ``tiny`` find them without encoding anything.
"""
from __future__ import annotations

import numpy as np

from va_core.config import Settings
from va_core.encoders import parse_spec
from va_core.synthetic import make_corpus, write_corpus
from va_core.warehouse import Warehouse

TINY_ID = parse_spec("tiny").encoder_id
TINY_DIM = 64


def make_home(root, n: int = 1500, n_topics: int = 8, noise: float = 3.0, seed: int = 0):
    settings = Settings.from_env(home=root, encoder="tiny")
    wh = Warehouse.from_settings(settings)
    corpus = make_corpus(n, dim=TINY_DIM, n_topics=n_topics, noise=noise, seed=seed, encoder_id=TINY_ID)
    write_corpus(wh, corpus)
    return settings, wh, corpus


def truth_events(corpus, label: str, topic: int, rows, annotator: str = "expert", source: str = "test"):
    """Events an expert who knows the ground truth would give for corpus rows."""
    return [{"label": label, "clip_key": corpus.keys[i], "value": bool(corpus.topics[i] == topic),
             "annotator": annotator, "source": source} for i in rows]


def sample_rows(corpus, topic: int, n_pos: int, n_neg: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(corpus.topics == topic)
    neg = np.flatnonzero(corpus.topics != topic)
    return np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)])
