"""A small synthetic corpus in a fresh va home, for the active-learning loop's tests.

Its embeddings are stored under the ``tiny`` encoder's id, so the `va` commands of a home
whose encoder is ``tiny`` find them without encoding anything.
"""
from __future__ import annotations

import numpy as np

from va_core.config import Settings
from va_core.encoders import parse_spec
from tests.support.synthetic import make_corpus, write_corpus
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


TRAINER = """
import sys, time
from pathlib import Path
from va_core.config import Settings
from va_core.train import train_label
go, label, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
settings = Settings.from_env(encoder="tiny")
while not go.exists():
    time.sleep(0.01)
print(",".join(str(train_label(settings, label, force=True).model_version) for _ in range(n)))
"""


def race_trainers(tmp_path, env: dict, label: str, n_processes: int = 2, n_each: int = 3) -> list[list[int]]:
    """Processes with their own home (so their own lock folder) training ``label`` on one warehouse at once."""
    import os
    import subprocess
    import sys
    import time

    go = tmp_path / "go"
    procs = []
    for p in range(n_processes):
        penv = dict(os.environ, **env, VA_HOME=str(tmp_path / f"machine{p}"), VA_ENCODER="tiny")
        penv.pop("VA_KILL_AFTER_COMMITS", None)
        procs.append(subprocess.Popen([sys.executable, "-c", TRAINER, str(go), label, str(n_each)], env=penv,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    time.sleep(3)  # every process imported and waiting at the start line
    go.touch()
    versions = []
    for proc in procs:
        out, err = proc.communicate(timeout=540)
        assert proc.returncode == 0, err
        versions.append([int(v) for v in out.strip().split(",")])
    return versions


def assert_versions_unique_and_complete(wh, label: str, n_clips: int) -> list[int]:
    models = wh.read("models", where={"label": label})
    versions = sorted(models["model_version"].to_list())
    assert len(versions) == len(set(versions)), f"duplicate model versions: {versions}"
    evaluations = wh.read("evaluations", where={"label": label})
    assert sorted(evaluations["model_version"].to_list()) == versions
    candidates = wh.read("model_stage_events", where={"label": label, "stage": "candidate"})
    assert sorted(candidates["model_version"].to_list()) == versions
    latest = versions[-1]
    assert wh.read("clip_scores", where={"label": label, "model_version": latest}).height == n_clips
    return versions
