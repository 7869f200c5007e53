"""Experiment 1: Video Annotator's labelling session against the baselines, per label.

For each label, on the validation part (hash split, seed 0) of the experts' aggregated
labels:

- ``baseline``: AP of random scores (the positive rate when validation has >= 1000 clips);
- ``zero_shot``: cosine to the label's text embedding;
- ``zsc`` / ``rcc`` / ``cc``: the classifier trained on the first n clips of the cmp
  zero-shot list, of the random list, and round(n/2) random plus n - round(n/2) zero-shot,
  for each n, after the validation clips are removed from the lists;
- ``va_checkpoint``: the classifier trained on each snapshot of the experts' session,
  validation clips removed.

A method that cannot be trained (its set has no positive, for example) gives a row with
status ``skipped`` and the reason. ``n`` is the requested size for the cmp methods and the
actual training size (after removing validation clips) for the checkpoints.
"""
from __future__ import annotations

from typing import Sequence

from va_core import learn
from va_core.errors import NotFound
from va_core.experiments.dataset import Checkpoint, KeyVectors, VADataset
from va_core.experiments.protocol import (DEFAULT_SPLIT_RULE, CannotTrain, Evaluator, Score, Split, cosine,
                                          split_agg)

__all__ = ["NS", "SPLIT_SEED", "checkpoint_rows"]

NS = (25, 50, 100, 500, 1000)
CMP_METHODS = ("zsc", "rcc", "cc")
SPLIT_SEED = 0

COLUMNS = {
    "label": "str", "method": "str", "n": "int", "checkpoint_index": "int", "ap_mean": "float",
    "ap_std": "float", "status": "str", "reason": "str", "n_train": "int", "n_train_pos": "int",
    "n_val": "int", "n_val_pos": "int", "fit_seconds": "float",
}


def cmp_training_set(lists: dict[str, list[tuple[str, bool]]], method: str, n: int) -> tuple[set[str], set[str]]:
    """The labelled clips a cmp method trains on; ``lists`` already lack validation clips.

    A list shorter than n gives all it has, as in the reference.
    """
    zs, rnd = lists["zero_shot"], lists["random"]
    if method == "zsc":
        items = zs[:n]
    elif method == "rcc":
        items = rnd[:n]
    elif method == "cc":
        n_random = round(n * 0.5)  # Python's round, as the reference
        items = rnd[:n_random] + zs[: n - n_random]
    else:
        raise ValueError(f"unknown cmp method {method!r}; methods are {CMP_METHODS}")
    return {k for k, v in items if v}, {k for k, v in items if not v}


def baseline_score(split: Split) -> Score:
    """Random scores' AP on the validation set: its positive rate from 1000 clips on, else
    the mean over 1000 random score vectors (numpy seed 0)."""
    base = learn.baseline_ap(split.n_val_pos, len(split.val_keys))
    return Score(base.mean, base.std)


def without(keys: frozenset[str], lists: dict[str, list[tuple[str, bool]]]) -> dict[str, list[tuple[str, bool]]]:
    return {name: [(k, v) for k, v in items if k not in keys] for name, items in lists.items()}


def run_label(data_dir: str, label: str, ns: Sequence[int] = NS, split_rule: str = DEFAULT_SPLIT_RULE) -> list[dict]:
    """Worker entry point: all rows of one label."""
    from va_core.experiments.runner import open_dataset

    return evaluate_label(open_dataset(data_dir), label, ns, split_rule)


def evaluate_label(ds: VADataset, label: str, ns: Sequence[int] = NS,
                   split_rule: str = DEFAULT_SPLIT_RULE) -> list[dict]:
    agg, checkpoints, lists = ds.agg(label), ds.checkpoints(label), ds.cmp(label)
    plan = [("baseline", None, None), ("zero_shot", None, None)]
    plan += [(m, n, None) for n in ns for m in CMP_METHODS]
    plan += [("va_checkpoint", None, i) for i in range(len(checkpoints))]
    try:
        split = split_agg(agg, SPLIT_SEED, split_rule)
    except CannotTrain as exc:
        return [_row(label, m, n, i, None, reason=str(exc)) for m, n, i in plan]

    needed = {i.key for i in agg.items} | {k for items in lists.values() for k, _ in items}
    needed |= {k for c in checkpoints for k in (c.pos | c.neg)}
    vectors = KeyVectors.load(ds, needed)
    ev = Evaluator(vectors, split)
    rows = []

    rows.append(_row(label, "baseline", None, None, split, score=baseline_score(split)))
    try:
        rows.append(_row(label, "zero_shot", None, None, split,
                         score=ev.scores_ap(cosine(ev.x_val, ds.text_embedding(label)))))
    except NotFound as exc:
        rows.append(_row(label, "zero_shot", None, None, split, reason=str(exc)))

    lists = without(split.val_key_set, lists)
    for n in ns:
        for method in CMP_METHODS:
            rows.append(_fit_row(ev, label, method, n, None, *cmp_training_set(lists, method, n)))
    rows += checkpoint_rows(ev, label, checkpoints)
    return rows


def checkpoint_rows(ev: Evaluator, label: str, checkpoints: list[Checkpoint]) -> list[dict]:
    """One classifier per snapshot of the experts' session, validation clips removed."""
    val = ev.split.val_key_set
    rows = []
    for i, snap in enumerate(checkpoints):
        pos, neg = snap.pos - val, snap.neg - val
        row = _fit_row(ev, label, "va_checkpoint", None, i, pos, neg)
        row["n"] = len(pos | neg)
        rows.append(row)
    return rows


def _fit_row(ev: Evaluator, label: str, method: str, n: int | None, index: int | None,
             pos: set[str], neg: set[str]) -> dict:
    try:
        return _row(label, method, n, index, ev.split, score=ev.fit(pos, neg))
    except CannotTrain as exc:
        row = _row(label, method, n, index, ev.split, reason=str(exc))
        row.update(n_train=len(pos | neg), n_train_pos=len(pos))
        return row


def _row(label: str, method: str, n: int | None, index: int | None, split: Split | None,
         score: Score | None = None, reason: str | None = None) -> dict:
    return {
        "label": label, "method": method, "n": n, "checkpoint_index": index,
        "ap_mean": score.ap_mean if score else None, "ap_std": score.ap_std if score else None,
        "status": "ok" if score else "skipped", "reason": reason,
        "n_train": score.n_train if score else None, "n_train_pos": score.n_train_pos if score else None,
        "n_val": len(split.val_keys) if split else None, "n_val_pos": split.n_val_pos if split else None,
        "fit_seconds": score.fit_seconds if score else None,
    }
