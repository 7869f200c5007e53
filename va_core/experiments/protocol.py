"""What both experiments share: one label's validation set and how a training set is scored.

A training set is put in the reference row order (positives sorted, then negatives
sorted) before fitting, so the cross-validation folds match the paper's; the validation
set is in the same order so the bootstrap resamples match. Both rules, the split, the
bootstraps and the classifier come from :mod:`va_core.learn`.
"""
from __future__ import annotations

import hashlib
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from va_core import learn
from va_core.experiments.dataset import AggLabels, KeyVectors

__all__ = ["CannotTrain", "DEFAULT_SPLIT_RULE", "Evaluator", "SPLIT_RULES", "Score", "Split", "cosine",
           "quiet_sklearn", "split_agg"]


class CannotTrain(ValueError):
    """A method's training set cannot give a classifier; the message is recorded as the reason."""


@dataclass(frozen=True)
class Score:
    ap_mean: float
    ap_std: float
    n_train: int | None = None
    n_train_pos: int | None = None
    fit_seconds: float = 0.0


@dataclass(frozen=True)
class Split:
    """The aggregated labels split by the hash rule; validation in the reference order."""

    train_pos: frozenset[str]
    train_neg: frozenset[str]
    val_keys: tuple[str, ...]
    y_val: np.ndarray

    @property
    def val_key_set(self) -> frozenset[str]:
        return frozenset(self.val_keys)

    @property
    def n_val_pos(self) -> int:
        return int(self.y_val.sum())


# The rule as the paper states it, and the rule its released code computes: the code keeps
# the fraction as Fraction(2, 10), which Python normalises to 1/5, so it tests `% 5 < 1`.
# Both hold out 20%, but different clips. The default is the code's rule, because that is the
# rule behind the published numbers (measured: the reference's Experiment 1 to 7e-4 AP and
# Experiment 2 to 2e-5); "as-specified" is the rule as the paper's text states it.
SPLIT_RULES = {"as-specified": (10, 2), "reference-code": (5, 1)}
DEFAULT_SPLIT_RULE = "reference-code"


def split_agg(agg: AggLabels, seed: int, rule: str = DEFAULT_SPLIT_RULE) -> Split:
    """80/20 by ``mmh3.hash(key, seed) % 5 < 1`` (or another of SPLIT_RULES); both sides need a positive."""
    try:
        buckets, validation_buckets = SPLIT_RULES[rule]
    except KeyError:
        raise ValueError(f"unknown split rule {rule!r}; choose one of {', '.join(SPLIT_RULES)}") from None
    keys = [i.key for i in agg.items]
    in_val = learn.validation_mask(keys, seed=seed, buckets=buckets, validation_buckets=validation_buckets)
    val_pos = {k for k, v in zip(keys, in_val) if v and k in agg.pos}
    val_neg = {k for k, v in zip(keys, in_val) if v and k in agg.neg}
    train_pos = frozenset(k for k, v in zip(keys, in_val) if not v and k in agg.pos)
    train_neg = frozenset(k for k, v in zip(keys, in_val) if not v and k in agg.neg)
    if not train_pos:
        raise CannotTrain(f"the training split (seed {seed}) of the aggregated labels has no positive clip")
    if not val_pos:
        raise CannotTrain(f"the validation split (seed {seed}) of the aggregated labels has no positive clip")
    val_keys, y_val = learn.ordered(val_pos, val_neg)
    return Split(train_pos, train_neg, tuple(val_keys), y_val)


class Evaluator:
    """Fits the reference classifier on a training set and measures AP on one validation set.

    Identical training sets (same keys, same values) give identical models, so results are
    memoised by the set's content: the baselines at n=500 and n=1000 often hold the same
    clips, and the bandits of Experiment 2 revisit the same early sets many times.
    """

    def __init__(self, vectors: KeyVectors, split: Split):
        self.vectors = vectors
        self.split = split
        self.x_val = vectors(list(split.val_keys))
        self._memo: dict[bytes, Score] = {}

    def scores_ap(self, scores: np.ndarray) -> Score:
        result = learn.bootstrap_ap(self.split.y_val, scores)
        return Score(result.mean, result.std)

    def fit(self, pos: Iterable[str], neg: Iterable[str]) -> Score:
        pos, neg = set(pos), set(neg)
        both = pos & neg
        if both:
            raise CannotTrain(f"{len(both)} clip(s) are labelled both positive and negative, e.g. {sorted(both)[:3]}")
        keys, y = learn.ordered(pos, neg)
        overlap = set(keys) & self.split.val_key_set
        if overlap:  # a protocol error, never the data's fault
            raise AssertionError(f"{len(overlap)} training clip(s) are in the validation set")
        if not keys:
            raise CannotTrain("the training set is empty")
        n_pos = int(y.sum())
        if n_pos == 0:
            raise CannotTrain(f"no positive clip in the training set ({len(keys)} negatives)")
        if n_pos == len(keys):
            raise CannotTrain(f"no negative clip in the training set ({n_pos} positives)")
        digest = hashlib.blake2b("\n".join(keys).encode() + b"\0" + np.packbits(y).tobytes(), digest_size=16).digest()
        hit = self._memo.get(digest)
        if hit is not None:
            return Score(hit.ap_mean, hit.ap_std, hit.n_train, hit.n_train_pos, 0.0)
        start = time.perf_counter()
        with quiet_sklearn():
            try:
                model = learn.reference_classifier(n_jobs=1).fit(self.vectors(keys), y)
            except ValueError as exc:  # e.g. fewer clips of each class than folds
                raise CannotTrain(f"the classifier cannot be fitted on {len(keys)} clips ({n_pos} positive): {exc}") from exc
            scores = model.predict_proba(self.x_val)[:, 1]
        seconds = time.perf_counter() - start
        ap = learn.bootstrap_ap(self.split.y_val, scores)
        score = Score(ap.mean, ap.std, len(keys), n_pos, seconds)
        self._memo[digest] = score
        return score


def cosine(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Cosine of each row with ``vector`` (in float64: AP depends only on the ranking)."""
    m = np.asarray(matrix, dtype=np.float64)
    v = np.asarray(vector, dtype=np.float64)
    norms = np.linalg.norm(m, axis=1) * np.linalg.norm(v)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (m @ v) / norms, 0.0)


@contextmanager
def quiet_sklearn():
    """Silence warnings the protocol causes on purpose, thousands of times per run.

    Small training sets have classes with fewer members than folds, and folds without a
    positive; scikit-learn's notices of API changes are not about the data either.
    Convergence warnings stay visible.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"sklearn\.")
        warnings.filterwarnings("ignore", message=r"The least populated class in y has only")
        warnings.filterwarnings("ignore", message=r"No positive class found in y_true")
        warnings.filterwarnings("ignore", message=r".*y_true.*only one class|Only one class is present")
        yield
