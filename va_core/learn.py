"""Classifiers on clip embeddings and how their quality is measured.

The evaluation rules follow the paper's released protocol exactly, because users compare
our numbers with theirs: the hash split, the bootstrap seeds and the random baseline.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np

SPLIT_SEED = 0
VALIDATION_FRACTION = Fraction(2, 10)
N_BOOTSTRAP = 5  # the exact validation set plus 4 resamples (numpy seeds 1..4)
BASELINE_THRESHOLD = 1000
N_CLUSTERS = 10


def in_validation(key: str, seed: int = SPLIT_SEED, fraction: Fraction = VALIDATION_FRACTION) -> bool:
    """The paper's deterministic split: ``mmh3.hash(key, seed) % 10 < 2``."""
    import mmh3

    return mmh3.hash(key, seed) % fraction.denominator < fraction.numerator


def validation_mask(keys: Sequence[str], seed: int = SPLIT_SEED,
                    fraction: Fraction = VALIDATION_FRACTION) -> np.ndarray:
    import mmh3

    den, num = fraction.denominator, fraction.numerator
    return np.fromiter((mmh3.hash(k, seed) % den < num for k in keys), dtype=bool, count=len(keys))


def ordered(pos: Iterable[str], neg: Iterable[str]) -> tuple[list[str], np.ndarray]:
    """The reference row order: positive keys sorted, then negative keys sorted.

    Cross-validation folds and bootstrap resamples depend on row order, so every labelled
    set handed to a classifier or to :func:`bootstrap_ap` is put in this order first.
    """
    p, n = sorted(set(pos)), sorted(set(neg))
    return p + n, np.array([True] * len(p) + [False] * len(n), dtype=bool)


def bootstrap_indices(n: int, idx: int) -> np.ndarray:
    """Resample ``idx`` of a validation set of size ``n``; 0 is the exact set.

    Seeding numpy's global generator is what the reference does; the global state is
    saved and restored so callers' randomness is untouched.
    """
    if idx == 0:
        return np.arange(n)
    state = np.random.get_state()
    try:
        np.random.seed(idx)
        return np.random.choice(range(n), n)
    finally:
        np.random.set_state(state)


@dataclass(frozen=True)
class APResult:
    mean: float
    std: float
    values: tuple[float, ...]


def bootstrap_ap(y_true: np.ndarray, scores: np.ndarray, n_bootstrap: int = N_BOOTSTRAP) -> APResult:
    """AP as the paper reports it: mean and std over the exact set and ``n_bootstrap-1`` resamples.

    A resample without a positive gives NaN, which is left out as the reference does.
    """
    from sklearn.metrics import average_precision_score

    y_true = np.asarray(y_true, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if len(y_true) != len(scores):
        raise ValueError(f"{len(y_true)} labels but {len(scores)} scores")
    values = []
    for idx in range(n_bootstrap):
        sel = bootstrap_indices(len(y_true), idx)
        y = y_true[sel]
        values.append(float(average_precision_score(y, scores[sel])) if y.any() else float("nan"))
    finite = [v for v in values if not np.isnan(v)]
    if not finite:
        raise ValueError("no positive clip in the validation set: AP is undefined")
    return APResult(float(np.mean(finite)), float(np.std(finite)), tuple(values))


def baseline_ap(n_pos: int, n: int, threshold: int = BASELINE_THRESHOLD) -> APResult:
    """AP of random scores: the positive rate for large sets, else the mean of 1000 draws (seed 0)."""
    from sklearn.metrics import average_precision_score

    if n <= 0 or n_pos <= 0:
        raise ValueError(f"baseline AP needs positives: {n_pos} of {n}")
    if n >= threshold:
        rate = n_pos / n
        return APResult(rate, 0.0, (rate,))
    rng = np.random.RandomState(0)
    y = np.array([True] * n_pos + [False] * (n - n_pos))
    draws = rng.rand(threshold, n)
    values = tuple(float(average_precision_score(y, draws[i])) for i in range(threshold))
    return APResult(float(np.mean(values)), float(np.std(values)), values)


def diversity_score(pos_clusters: Iterable[int], neg_clusters: Iterable[int], k: int = N_CLUSTERS) -> float:
    """How evenly the labelled clips cover the K clusters of the embedding space.

    ``(sum_c min(pos_c, k)/k + sum_c min(neg_c, k)/k) / (2k)``: 1.0 once every cluster
    holds at least k positives and k negatives.
    """

    def part(clusters: Iterable[int]) -> float:
        counts = np.bincount(np.asarray(list(clusters), dtype=np.int64), minlength=k) if clusters else np.zeros(k)
        return float(np.minimum(counts, k).sum() / k)

    pos, neg = list(pos_clusters), list(neg_clusters)
    return (part(pos) + part(neg)) / (2 * k)


def reference_classifier(seed: int = SPLIT_SEED, n_jobs: int | None = None):
    """The paper's classifier: LogisticRegressionCV over 5 shuffled stratified folds, scored by AP."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    return LogisticRegressionCV(
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=seed),
        scoring="average_precision", max_iter=1000, n_jobs=n_jobs,
    )
