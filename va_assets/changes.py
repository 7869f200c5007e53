"""What changed in the warehouse since a sensor's cursor, answered without full-table reads.

Kept apart from the sensor definitions so the logic is plain functions of a warehouse:
the sensors only turn the answers into run requests.
"""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from va_core.errors import InputError
from va_core.labels import validate_label
from va_core.warehouse import Warehouse


@dataclass(frozen=True)
class LabelChanges:
    version: int  # the label_events version the answer is about
    labels: tuple[str, ...]  # valid label names that changed, sorted
    invalid: tuple[str, ...]  # names in the log that are not valid labels (written around va_core)


def _split_valid(names) -> tuple[tuple[str, ...], tuple[str, ...]]:
    good, bad = set(), set()
    for name in names:
        try:
            good.add(validate_label(name))
        except InputError:
            bad.add(str(name))
    return tuple(sorted(good)), tuple(sorted(bad))


def labels_changed_since(wh: Warehouse, cursor: int, current: int) -> LabelChanges:
    """Labels with events committed after ``cursor`` up to ``current``, from the change feed."""
    frame = wh.changes_since("label_events", cursor, columns=["label", "_commit_version"])
    if "_commit_version" in frame.columns:  # a commit after ``current`` belongs to the next tick
        frame = frame.filter(pl.col("_commit_version") <= current)
    good, bad = _split_valid(frame["label"].unique().to_list())
    return LabelChanges(current, good, bad)


def labels_needing_models(wh: Warehouse, current: int) -> LabelChanges:
    """On a sensor's first tick: labels whose newest model predates their newest events.

    A label without a model needs one; a label with models needs a new one when the change
    feed after its newest model's ``label_events_version`` mentions it. Only this first
    tick reads the label column of the whole log.
    """
    all_labels = wh.read("label_events", columns=["label"], version=current)["label"].unique().to_list()
    good, bad = _split_valid(all_labels)
    trained = (wh.read("models", columns=["label", "label_events_version"])
               .group_by("label").agg(pl.col("label_events_version").max()))
    trained_at = dict(trained.iter_rows())
    need = {lab for lab in good if trained_at.get(lab) is None}
    have = {lab: v for lab, v in trained_at.items() if lab in good and v is not None and v < current}
    if have:
        since = min(have.values())
        frame = wh.changes_since("label_events", since, columns=["label", "_commit_version"])
        frame = frame.filter(pl.col("_commit_version") <= current)
        for lab, version in frame.group_by("label").agg(pl.col("_commit_version").max()).iter_rows():
            if lab in have and version > have[lab]:
                need.add(lab)
    return LabelChanges(current, tuple(sorted(need)), bad)
