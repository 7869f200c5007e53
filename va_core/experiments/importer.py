"""``va import-va-dataset DIR``: the paper's released dataset as a va warehouse.

What it writes:

- ``videos``: one row per ``yt_id``, status ``no_video`` (the dataset has no video
  files), uri the clip's YouTube page, duration and frame count from its shots;
- ``clips``: one row per shot of ``shot-data.csv`` (key, frames, times);
- ``clip_embeddings``: the dataset's vectors under their own encoder id
  (:data:`ENCODER_ID`), L2-normalised as every embedding in the warehouse is;
- ``clip_clusters``: the dataset's own ``cluster_index``, for the diversity score;
- ``label_events`` (source ``import``): for every aggregated clip, the three annotators'
  votes when the file names them (primary and secondaries); else, when ``pos_cnt`` is 0
  or 3, three identical votes (anonymous annotators); else the aggregated value as one
  event of annotator ``va-dataset:agg``;
- ``label_descriptions``: the label name in words;
- the labels' text embeddings, to a file in the home (see :func:`va_core.labels.stored_text_embedding`),
  because the dataset's encoder has no text tower here: zero-shot queries for a label
  can use its stored vector, arbitrary text queries cannot work on this encoder.

The home then remembers :data:`ENCODER_ID` as its encoder, so training, feeds, the UI
and serving use these embeddings. Running it again adds nothing already imported: the
videos are the commit marker of the corpus (written last per chunk), label events are
skipped for labels that already have imported events.
"""
from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from va_core.errors import InputError
from va_core.experiments.dataset import VADataset
from va_core.labels import store_text_embeddings
from va_core.warehouse import Warehouse, embedding_column

__all__ = ["import_dataset"]

log = logging.getLogger(__name__)

ENCODER_ID = "va-dataset:clip-vit-b-32"
NO_VIDEO = "no_video"
SOURCE = "import"
ANNOTATOR_PREFIX = "va-dataset:"
AGG_ANNOTATOR = ANNOTATOR_PREFIX + "agg"
CHUNK_ROWS = 50_000
N_ANNOTATORS = 3
# A YouTube id becomes a video id: a predicate value, a Dagster partition, part of every clip key.
YT_ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"


@dataclass
class ImportReport:
    encoder_id: str
    videos_added: int = 0
    videos_already: int = 0
    clips_added: int = 0
    labels: dict[str, int] = field(default_factory=dict)  # label -> events written
    labels_already: list[str] = field(default_factory=list)
    labels_skipped: dict[str, str] = field(default_factory=dict)  # label -> why nothing was imported
    votes: dict[str, int] = field(default_factory=lambda: {"named": 0, "from_pos_cnt": 0, "aggregate_only": 0})
    text_embeddings: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def import_dataset(settings, data: str | Path, labels: Sequence[str] | None = None,
                   chunk_rows: int = CHUNK_ROWS, progress: bool = True) -> ImportReport:
    ds = VADataset(data)
    ds.validate()
    chosen = ds.select_labels(labels, kinds=("agg",))
    from va_core.labels import validate_label

    for label in chosen:  # before anything is written: a bad name refuses the whole import
        validate_label(label)
    wh = Warehouse.from_settings(settings)
    report = ImportReport(ENCODER_ID)
    _import_corpus(wh, ds, report, chunk_rows, progress)
    _import_labels(wh, ds, chosen, report, progress)
    report.text_embeddings = str(store_text_embeddings(settings, ENCODER_ID, ds.text_embeddings))
    settings.remember_encoder(ENCODER_ID)
    return report


def _import_corpus(wh: Warehouse, ds: VADataset, report: ImportReport, chunk_rows: int, progress: bool) -> None:
    import polars as pl
    from tqdm import tqdm

    shots = ds.shots().with_row_index("row")
    # polars' (Rust) regex: `$` is the end of the text, so this is a full match
    bad_ids = shots.filter(~pl.col("yt_id").cast(pl.String).str.contains(f"^{YT_ID_PATTERN}$"))
    if bad_ids.height:
        raise InputError(f"{ds.path('shots')}: {bad_ids.height} row(s) have a yt_id that is not 1-64 characters of "
                         f"A-Z, a-z, 0-9, '_' and '-', e.g. {bad_ids['yt_id'][:3].to_list()}")
    bad = shots.filter(pl.col("key") != pl.format("{}|{}", pl.col("yt_id"), pl.col("frame_in")))
    if bad.height:
        raise InputError(f"{ds.path('shots')}: {bad.height} key(s) are not {{yt_id}}|{{frame_in}}, "
                         f"e.g. {bad['key'][:3].to_list()}")
    done = set()
    if wh.exists("videos"):
        done = set(wh.read("videos", columns=["video_id", "status"])
                   .filter(pl.col("status") == NO_VIDEO)["video_id"].to_list())
    todo = shots.filter(~pl.col("yt_id").is_in(list(done))).sort("yt_id", "frame_in")
    report.videos_already = shots["yt_id"].n_unique() - todo["yt_id"].n_unique()
    if todo.height == 0:
        return
    # Rows of an earlier, interrupted import (clips or embeddings without their videos row).
    leftovers = set(wh.arrow("clips", columns=["video_id"], where={"video_id": todo["yt_id"].unique().to_list()})
                    .column("video_id").to_pylist()) if wh.exists("clips") else set()
    if leftovers:
        wh.delete("clip_embeddings", {"encoder_id": ENCODER_ID, "video_id": sorted(leftovers)})
        wh.delete("clips", {"video_id": sorted(leftovers)})

    bar = tqdm(total=todo.height, desc="import clips", unit="clip", file=sys.stderr, disable=not progress)
    for chunk in _video_aligned_chunks(todo, chunk_rows):
        matrix = ds.embeddings(chunk["key"].to_list())
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if (norms == 0).any():
            raise InputError(f"{ds.path('embeddings')}: {int((norms == 0).sum())} clip(s) have an all-zero embedding")
        keys = pa.array(chunk["key"].to_list(), pa.string())
        videos = pa.array(chunk["yt_id"].to_list(), pa.string())
        wh.append("clip_embeddings", pa.table({
            "clip_key": keys, "video_id": videos, "encoder_id": pa.array([ENCODER_ID] * chunk.height, pa.string()),
            "embedding": embedding_column((matrix / norms).astype(np.float32)),
        }))
        wh.append("clips", pa.table({
            "clip_key": keys, "video_id": videos,
            "frame_in": pa.array(chunk["frame_in"].cast(pl.Int64).to_list(), pa.int64()),
            "frame_out": pa.array(chunk["frame_out"].cast(pl.Int64).to_list(), pa.int64()),
            "start_s": pa.array(chunk["start"].cast(pl.Float64).to_list(), pa.float64()),
            "end_s": pa.array(chunk["end"].cast(pl.Float64).to_list(), pa.float64()),
        }))
        per_video = chunk.group_by("yt_id", maintain_order=True).agg(
            pl.col("end").max().alias("duration_s"), pl.col("fps").first(), pl.col("frame_out").max().alias("last"),
            pl.len().alias("n_clips"))
        wh.append("videos", pa.table({
            "video_id": pa.array(per_video["yt_id"].to_list(), pa.string()),
            "uri": pa.array([f"https://www.youtube.com/watch?v={v}" for v in per_video["yt_id"]], pa.string()),
            "status": pa.array([NO_VIDEO] * per_video.height, pa.string()),
            "error": pa.array(["the released dataset holds embeddings only: there is no video file"] * per_video.height),
            "duration_s": pa.array(per_video["duration_s"].cast(pl.Float64).to_list(), pa.float64()),
            "fps": pa.array(per_video["fps"].cast(pl.Float64).to_list(), pa.float64()),
            "n_frames": pa.array((per_video["last"].cast(pl.Int64) + 1).to_list(), pa.int64()),
            "n_clips": pa.array(per_video["n_clips"].to_list(), pa.int32()),
        }))
        report.videos_added += per_video.height
        report.clips_added += chunk.height
        bar.update(chunk.height)
    bar.close()

    # The dataset's own clusters, valid for the embeddings version they are stored with.
    version = wh.version("clip_embeddings")
    wh.replace("clip_clusters", {"encoder_id": ENCODER_ID}, pa.table({
        "clip_key": pa.array(shots["key"].to_list(), pa.string()),
        "encoder_id": pa.array([ENCODER_ID] * shots.height, pa.string()),
        "cluster_index": pa.array(shots["cluster_index"].cast(pl.Int32).to_list(), pa.int32()),
        "embeddings_version": pa.array([version] * shots.height, pa.int64()),
    }))


def _video_aligned_chunks(frame, rows: int):
    """Slices of about ``rows`` rows that never split a video (frame sorted by yt_id)."""
    ids = frame["yt_id"].to_numpy()
    start = 0
    while start < len(ids):
        end = min(len(ids), start + rows)
        while end < len(ids) and ids[end] == ids[end - 1]:
            end += 1
        yield frame.slice(start, end - start)
        start = end


def votes_of(item) -> tuple[list[tuple[str, bool]], str]:
    """The annotator votes an aggregated item supports, and how they were obtained."""
    if item.votes:
        return [(ANNOTATOR_PREFIX + name, value) for name, value in item.votes.items()], "named"
    if item.pos_cnt in (0, N_ANNOTATORS) and item.agg == (item.pos_cnt == N_ANNOTATORS):
        return [(f"{ANNOTATOR_PREFIX}annotator-{i + 1}", item.agg) for i in range(N_ANNOTATORS)], "from_pos_cnt"
    return [(AGG_ANNOTATOR, item.agg)], "aggregate_only"


def _import_labels(wh: Warehouse, ds: VADataset, labels: list[str], report: ImportReport, progress: bool) -> None:
    import polars as pl
    from tqdm import tqdm

    from va_core.labels import record_events, set_description

    already = set()
    if wh.exists("label_events"):
        imported = wh.read("label_events", columns=["label", "annotator", "source"]).filter(
            (pl.col("source") == SOURCE) & pl.col("annotator").str.starts_with(ANNOTATOR_PREFIX))
        already = set(imported["label"].unique().to_list())
    for label in tqdm(labels, desc="import labels", unit="label", file=sys.stderr, disable=not progress):
        if label in already:
            report.labels_already.append(label)
            continue
        items = ds.agg(label).items
        if not items:
            report.labels_skipped[label] = f"{ds.path('agg', label)} has an empty 'data' list"
            log.warning("skipped %s: %s", label, report.labels_skipped[label])
            continue
        events = []
        for item in items:
            votes, how = votes_of(item)
            report.votes[how] += 1
            events += [{"label": label, "clip_key": item.key, "value": value, "annotator": who, "source": SOURCE}
                       for who, value in votes]
        record_events(wh, events, source=SOURCE)
        set_description(wh, label, re.sub(r"[_-]+", " ", label), annotator=ANNOTATOR_PREFIX + "import")
        report.labels[label] = len(events)
