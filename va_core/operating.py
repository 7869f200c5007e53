"""Operating points: where a classifier says yes.

Every model version carries the threshold with the best F1 on its held-out clips
(:func:`va_core.learn.best_f1_threshold`). A client may want another trade-off: "yes
only when at least 90% of the yeses are right" (a target precision) or "find at least
80% of the positives" (a target recall). Both are read off the version's evaluation
curve: the precision and recall of the held-out scores at every threshold, stored with
the model (``operating_curve`` in its artifact), so a served model answers without the
warehouse. The curve is as good as its held-out clips: its size is part of every answer.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from va_core.errors import InputError, VAError

__all__ = ["Curve", "OperatingPoint", "Request", "choose", "curve_from_artifact"]

MAX_POINTS = 1000  # a curve longer than this keeps evenly spaced points (artifacts stay small)
KINDS = ("model", "threshold", "precision", "recall")


class Unreachable(VAError):
    """The version's evaluation cannot give the operating point asked for (HTTP 422)."""


@dataclass(frozen=True)
class Curve:
    """Precision and recall of held-out scores at each threshold (ascending): yes when score >= threshold."""

    thresholds: tuple[float, ...]
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    n: int
    n_pos: int
    method: str

    @classmethod
    def from_scores(cls, y_true: Sequence[bool], scores: Sequence[float], method: str) -> "Curve":
        from sklearn.metrics import precision_recall_curve

        y = np.asarray(y_true, dtype=bool)
        precision, recall, thresholds = precision_recall_curve(y, np.asarray(scores, dtype=np.float64))
        precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
        if len(thresholds) > MAX_POINTS:
            keep = np.unique(np.linspace(0, len(thresholds) - 1, MAX_POINTS).round().astype(int))
            thresholds, precision, recall = thresholds[keep], precision[keep], recall[keep]
        return cls(tuple(map(float, thresholds)), tuple(map(float, precision)), tuple(map(float, recall)),
                   int(len(y)), int(y.sum()), method)

    def as_dict(self) -> dict:
        return {"thresholds": list(self.thresholds), "precision": list(self.precision), "recall": list(self.recall),
                "n": self.n, "n_pos": self.n_pos, "method": self.method}

    @classmethod
    def from_dict(cls, data: dict) -> "Curve":
        t, p, r = (tuple(float(v) for v in data[k]) for k in ("thresholds", "precision", "recall"))
        if not len(t) == len(p) == len(r):
            raise ValueError("operating curve columns differ in length")
        return cls(t, p, r, int(data["n"]), int(data["n_pos"]), str(data.get("method", "")))

    def at(self, threshold: float) -> tuple[float | None, float | None]:
        """Held-out precision and recall when saying yes at ``threshold`` (None above every held-out score)."""
        i = int(np.searchsorted(self.thresholds, threshold, side="left"))
        if i >= len(self.thresholds):
            return None, None
        return self.precision[i], self.recall[i]


def curve_from_artifact(artifact: str) -> Curve | None:
    """The operating curve stored in a model artifact, or None for a version trained without one."""
    data = json.loads(artifact).get("operating_curve")
    return Curve.from_dict(data) if data else None


@dataclass(frozen=True)
class OperatingPoint:
    kind: str  # "model" (the version's F1-best threshold), "threshold", "precision" or "recall"
    threshold: float
    target: float | None = None
    precision: float | None = None  # on the version's held-out clips
    recall: float | None = None
    n_eval: int | None = None
    n_eval_pos: int | None = None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "target": self.target, "threshold": self.threshold,
                "precision": self.precision, "recall": self.recall, "n_eval": self.n_eval,
                "n_eval_pos": self.n_eval_pos}


@dataclass(frozen=True)
class Request:
    """What a client asked for: nothing (the model's threshold) or exactly one of the three."""

    threshold: float | None = None
    target_precision: float | None = None
    target_recall: float | None = None

    def __post_init__(self):
        given = {k: v for k, v in (("threshold", self.threshold), ("target_precision", self.target_precision),
                                   ("target_recall", self.target_recall)) if v is not None}
        if len(given) > 1:
            raise InputError(f"ask for one operating point at most, got {', '.join(sorted(given))}")
        for name, value in given.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{name} must be a number, got {value!r}")
            low_open = name != "threshold"
            if not (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0):
                raise InputError(f"{name} must be in {'(0, 1]' if low_open else '[0, 1]'}, got {value!r}")


def choose(request: Request, model_threshold: float, curve: Curve | None, what: str) -> OperatingPoint:
    """The threshold for ``request`` on one version (``what`` names it in errors, e.g. ``cat v3``)."""
    sizes = {"n_eval": curve.n, "n_eval_pos": curve.n_pos} if curve else {}

    def point(kind: str, threshold: float, target: float | None = None) -> OperatingPoint:
        precision, recall = curve.at(threshold) if curve else (None, None)
        return OperatingPoint(kind, float(threshold), target, precision, recall, **sizes)

    if request.threshold is not None:
        return point("threshold", request.threshold)
    if request.target_precision is None and request.target_recall is None:
        return point("model", model_threshold)
    kind, target = (("precision", request.target_precision) if request.target_precision is not None
                    else ("recall", request.target_recall))
    if curve is None or not curve.thresholds:
        raise Unreachable(f"{what} has no stored evaluation curve (trained before curves were kept): "
                          f"retrain it to ask for a target {kind}")
    t, p, r = (np.asarray(v) for v in (curve.thresholds, curve.precision, curve.recall))
    if kind == "precision":
        ok = np.flatnonzero(p >= target - 1e-12)
        if not len(ok):
            raise Unreachable(f"{what}: no threshold reaches precision {target:g} on its {curve.n} held-out clips "
                              f"({curve.n_pos} positive); the best is {p.max():.3f}")
        i = int(ok[0])  # the lowest such threshold: the most recall at that precision
    else:
        ok = np.flatnonzero(r >= target - 1e-12)
        i = int(ok[-1])  # recall at the lowest threshold is 1, so some threshold always qualifies
    return point(kind, float(t[i]), float(target))
