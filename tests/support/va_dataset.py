"""Datasets in the released format with known structure, for tests and benchmarks.

The real data cannot reach these machines, so the experiments are exercised on folders
this module writes. They mimic its structure, not its numbers:

- each label is a direction in the embedding space; a clip shows the concept with the
  label's prevalence, and its embedding leans towards that direction (learnable);
- clips also belong to one of 10 clusters (``cluster_index``), as in the real shot table;
- the text embedding of a label is its direction plus noise, so the cosine ranking of the
  zero-shot list is informative but imperfect;
- three annotators (a primary and two secondaries) vote on every aggregated clip with
  some error; ``agg`` is their majority and ``pos_cnt`` the number of yes votes;
- checkpoints are growing prefixes of a labelling session that mixes search hits and
  random clips; ``cmp`` holds the zero-shot top list and a random list, each labelled.
"""
from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ANNOTATORS = ("B", "A", "C")  # primary first
CHECKPOINT_SIZES = (10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 650, 800, 1000)


@dataclass(frozen=True)
class FixtureLabel:
    name: str
    prevalence: float = 0.2
    agg_size: int = 300
    signal: float = 0.9  # how strongly a positive clip's embedding leans to the concept


DEFAULT_LABELS = (
    FixtureLabel("action", 0.15),
    FixtureLabel("closeup", 0.3),
    FixtureLabel("alcohol", 0.05, signal=0.7),
)


@dataclass(frozen=True)
class Fixture:
    root: Path
    keys: list[str]
    truth: dict[str, np.ndarray]  # label -> (N,) bool ground truth
    labels: tuple[FixtureLabel, ...]


def make_va_dataset(root: str | Path, n_clips: int = 2000, dim: int = 512,
                    labels: tuple[FixtureLabel, ...] = DEFAULT_LABELS, cmp_size: int = 1000,
                    annotator_accuracy: float = 0.9, seed: int = 0, chunk: int = 100_000) -> Fixture:
    """Write a dataset folder in the released format and return its ground truth."""
    import h5py

    root = Path(root)
    for sub in ("agg", "checkpoints", "cmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    shots = shot_table(rng, n_clips)
    keys = shots["key"]
    n = len(keys)
    directions = _unit(rng.standard_normal((len(labels), dim)))
    centres = _unit(rng.standard_normal((10, dim)))
    truth = {lab.name: rng.random(n) < lab.prevalence for lab in labels}
    text = {lab.name: _unit(directions[i] + 1.3 * _unit(rng.standard_normal(dim))) for i, lab in enumerate(labels)}

    # Written in chunks so a corpus the size of the real one (500k x 512) fits in memory.
    cosine = {lab.name: np.empty(n, dtype=np.float32) for lab in labels}
    with h5py.File(root / "embeddings.h5", "w") as f:
        data = f.create_dataset("embeddings", shape=(n, dim), dtype="f4")
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            block = _unit(rng.standard_normal((e - s, dim)).astype(np.float32))
            block += 0.6 * centres[shots["cluster_index"][s:e]]
            for i, lab in enumerate(labels):
                block += lab.signal * truth[lab.name][s:e, None] * directions[i]
            block = _unit(block).astype(np.float32)
            data[s:e] = block
            for lab in labels:
                cosine[lab.name][s:e] = block @ text[lab.name].astype(np.float32)

    write_shots(root / "shot-data.csv", shots)
    (root / "text-embeddings.json").write_text(json.dumps({k: [round(float(x), 7) for x in v] for k, v in text.items()}))
    for lab in labels:
        _write_label(root, rng, lab, keys, truth[lab.name], cosine[lab.name], cmp_size, annotator_accuracy)
    return Fixture(root, list(keys), truth, tuple(labels))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def shot_table(rng: np.random.Generator, n_clips: int) -> dict[str, list]:
    """Shots of YouTube-like clips: consecutive frame ranges per video, rows shuffled."""
    alphabet = np.array(list(string.ascii_letters + string.digits + "-_"))
    n_videos = max(1, n_clips // 40)
    genres = ["Action", "Comedy", "Drama", "Horror", "Crime", "Romance", ""]
    cols: dict[str, list] = {c: [] for c in ("key", "yt_id", "desc", "genre", "frame_in", "frame_out",
                                             "start", "end", "fps", "cluster_index")}
    per_video = np.full(n_videos, n_clips // n_videos)
    per_video[: n_clips % n_videos] += 1
    for v, count in enumerate(per_video):
        yt = "".join(rng.choice(alphabet, 11))
        fps = float(rng.choice([23.976024, 24.0, 25.0, 29.97003]))
        genre, frame = str(rng.choice(genres)), 0
        for _ in range(count):
            length = int(rng.integers(12, 160))
            cols["key"].append(f"{yt}|{frame}")
            cols["yt_id"].append(yt)
            cols["desc"].append(f"Film {v} - Scene {frame}")
            cols["genre"].append(genre)
            cols["frame_in"].append(frame)
            cols["frame_out"].append(frame + length - 1)
            cols["start"].append(frame / fps)
            cols["end"].append((frame + length - 1) / fps)
            cols["fps"].append(fps)
            cols["cluster_index"].append(int(rng.integers(0, 10)))
            frame += length
    order = rng.permutation(len(cols["key"]))
    return {c: [vals[i] for i in order] for c, vals in cols.items()} | {
        "cluster_index": np.array([cols["cluster_index"][i] for i in order], dtype=np.int64)}


def write_shots(path: Path, shots: dict) -> None:
    import polars as pl

    frame = pl.DataFrame({c: (list(v) if not isinstance(v, np.ndarray) else v) for c, v in shots.items()})
    frame = frame.with_columns(pl.when(pl.col("genre") == "").then(None).otherwise(pl.col("genre")).alias("genre"))
    frame.write_csv(path)


def _write_label(root: Path, rng: np.random.Generator, lab: FixtureLabel, keys: list[str], truth: np.ndarray,
                 cosine: np.ndarray, cmp_size: int, accuracy: float) -> None:
    n = len(keys)
    # The experts' session: half the clips from search/active learning (ranked by a noisy
    # version of the truth, so positives are over-represented), half at random.
    noisy = truth + 0.8 * rng.standard_normal(n)
    ranked = np.argsort(-noisy)[: 3 * lab.agg_size]
    hits = rng.choice(ranked, size=min(len(ranked), lab.agg_size // 2), replace=False)
    rest = np.setdiff1d(np.arange(n), hits)
    randoms = rng.choice(rest, size=min(len(rest), lab.agg_size - len(hits)), replace=False)
    session = np.concatenate([hits, randoms])
    rng.shuffle(session)

    votes = np.array([truth[session] ^ (rng.random(len(session)) > accuracy) for _ in ANNOTATORS]).T
    pos_cnt = votes.sum(axis=1)
    agg = pos_cnt >= 2
    primary, secondaries = ANNOTATORS[0], ANNOTATORS[1:]
    items = [{"key": keys[c], "primary": bool(v[0]), "secondaries": {a: bool(x) for a, x in zip(secondaries, v[1:])},
              "agg": bool(a), "pos_cnt": int(p)} for c, v, a, p in zip(session, votes, agg, pos_cnt)]
    (root / "agg" / f"{lab.name}.json").write_text(json.dumps(
        {"primary": primary, "secondaries": list(secondaries), "data": items}))

    # Snapshots of the session as it grew, labelled with the primary annotator's votes.
    sizes = [s for s in CHECKPOINT_SIZES if s < len(session)] + [len(session)]
    snaps = [{"pos": [keys[c] for c, v in zip(session[:s], votes[:s, 0]) if v],
              "neg": [keys[c] for c, v in zip(session[:s], votes[:s, 0]) if not v]} for s in sizes]
    (root / "checkpoints" / f"{lab.name}.json").write_text(json.dumps(snaps))

    # One more annotation per clip for the baseline lists; a clip the experts labelled keeps
    # their label, so no clip is positive in one source and negative in another.
    annotation = truth ^ (rng.random(n) > 0.95)
    annotation[session] = agg

    def labelled(idx: np.ndarray) -> list[dict]:
        return [{"key": keys[i], "value": bool(annotation[i])} for i in idx]

    top = np.argsort(-cosine, kind="stable")[:cmp_size]
    random = rng.choice(n, size=min(n, cmp_size), replace=False)
    (root / "cmp" / f"{lab.name}.json").write_text(json.dumps({"zero_shot": labelled(top), "random": labelled(random)}))
