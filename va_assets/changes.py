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


@dataclass(frozen=True)
class VideoFile:
    video_id: str
    uri: str
    stamp: str  # size and modification time: a changed file gets a new stamp


def video_files(folders) -> tuple[list[VideoFile], list[str]]:
    """Video files under the corpus folders (by suffix), with their ids and stamps."""
    from va_core.video import find_videos, video_id_for

    existing = [f for f in folders if f.exists()]
    files, problems = find_videos(existing) if existing else ([], [])
    out = []
    for path in files:
        try:
            st = path.stat()
        except OSError as exc:  # removed between listing and stat
            problems.append(f"{path}: {exc}")
            continue
        out.append(VideoFile(video_id_for(path), str(path), f"{st.st_size}-{st.st_mtime_ns}"))
    return out, problems


def videos_to_ingest(wh: Warehouse, files: list[VideoFile], seen: dict[str, str] | None,
                     encoder_spec: str) -> list[VideoFile]:
    """Files that are new or changed since the stamps in ``seen``.

    Without stamps (a sensor's first tick), ingestion's own plan decides: a file is done
    when the warehouse holds it unchanged and embedded by the current encoder.
    """
    if seen is not None:
        return [f for f in files if seen.get(f.video_id) != f.stamp]
    if not files:
        return []
    from pathlib import Path

    from va_core.encoders import parse_spec
    from va_core.ingest import plan

    jobs, _ = plan(wh, [Path(f.uri) for f in files], parse_spec(encoder_spec).encoder_id)
    todo = {j.video_id for j in jobs}
    return [f for f in files if f.video_id in todo]
