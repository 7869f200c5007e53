"""The Delta Lake warehouse: the one place that knows table names, schemas and layout.

Every other module reads and writes through :class:`Warehouse`, so a table's schema,
partitioning and the escaping of predicate values live here only.

Delta has no fixed-size list type, so embeddings are stored as ``list<float32>``;
their dimension is checked on write and recovered on read by :func:`embedding_matrix`.
"""
from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["CHECKPOINT_EVERY", "CommitConflict", "Compare", "TABLES", "Warehouse", "WarehouseError", "concurrently",
           "embedding_column", "embedding_matrix"]

TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...] = ()
    description: str = ""
    # Change data feed lets sensors read only what was appended since a version.
    change_feed: bool = False
    # Columns that identify a row: at most one row per key (``va doctor`` checks it). Empty: a log.
    key: tuple[str, ...] = ()


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t in fields])


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec(
            "videos",
            _schema(
                ("video_id", pa.string()), ("uri", pa.string()), ("status", pa.string()),
                ("error", pa.string()), ("duration_s", pa.float64()), ("fps", pa.float64()),
                ("width", pa.int32()), ("height", pa.int32()), ("n_frames", pa.int64()),
                ("size_bytes", pa.int64()), ("mtime_ns", pa.int64()), ("content_hash", pa.string()),
                ("n_clips", pa.int32()), ("ingested_at", TS),
            ),
            description="One row per video file seen by ingestion, failed ones included.",
            key=("video_id",),
        ),
        TableSpec(
            "clips",
            _schema(
                ("clip_key", pa.string()), ("video_id", pa.string()), ("frame_in", pa.int64()),
                ("frame_out", pa.int64()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                ("n_sampled", pa.int32()),
            ),
            description="Shots: the span between two consecutive cuts. Key = {video_id}|{frame_in}.",
            key=("clip_key",),
        ),
        TableSpec(
            "transitions",
            _schema(
                ("video_id", pa.string()), ("kind", pa.string()), ("frame_start", pa.int64()),
                ("frame_end", pa.int64()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                ("boundary_frame", pa.int64()),
            ),
            description="Cuts, dissolves and fades between shots; boundary_frame starts the next clip.",
        ),
        TableSpec(
            "clip_embeddings",
            _schema(
                ("clip_key", pa.string()), ("video_id", pa.string()), ("encoder_id", pa.string()),
                ("embedding", pa.list_(pa.float32())),
            ),
            description="Mean-pooled, L2-normalised CLIP image embedding of each clip.",
            key=("clip_key", "encoder_id"),
        ),
        TableSpec(
            "clip_clusters",
            _schema(("clip_key", pa.string()), ("encoder_id", pa.string()), ("cluster_index", pa.int32()),
                    ("embeddings_version", pa.int64())),
            description="k-means cluster (K=10) of each clip, for the data diversity score.",
            key=("clip_key", "encoder_id"),
        ),
        TableSpec(
            "label_events",
            _schema(
                ("event_id", pa.string()), ("label", pa.string()), ("clip_key", pa.string()),
                ("value", pa.bool_()), ("annotator", pa.string()), ("source", pa.string()),
                ("created_at", TS),
                # provenance: how the clip was chosen (null where unknown, e.g. rows of older homes)
                ("rank", pa.int32()), ("chosen_by_version", pa.int64()), ("chosen_score", pa.float64()),
                ("draw_id", pa.string()), ("stratum", pa.int32()), ("stratum_size", pa.int64()),
                ("inclusion_prob", pa.float64()), ("stratum_low", pa.float64()), ("stratum_high", pa.float64()),
                # an unsure answer: value null, never trained on, never fed again (null in older rows: a vote)
                ("unsure", pa.bool_()),
            ),
            description="Append-only log of every answer anyone gave (yes, no, unsure), with how its clip was "
                        "chosen. The only table people write.",
            key=("event_id",),
            change_feed=True,
        ),
        TableSpec(
            "label_descriptions",
            _schema(
                ("label", pa.string()), ("description", pa.string()), ("annotator", pa.string()),
                ("created_at", TS),
            ),
            description="Append-only: a label's text description (its zero-shot query); the latest wins.",
        ),
        TableSpec(
            "label_guidelines",
            _schema(
                ("label", pa.string()), ("kind", pa.string()), ("text", pa.string()), ("clip_key", pa.string()),
                ("value", pa.bool_()), ("annotator", pa.string()), ("created_at", TS),
            ),
            description="Append-only: a label's guideline text (kind 'text', the latest wins) and its pinned "
                        "example clips (kind 'example': value yes/no, null unpins; per clip the latest wins).",
        ),
        TableSpec(
            "label_sets",
            _schema(
                ("label", pa.string()), ("clip_key", pa.string()), ("value", pa.bool_()),
                ("pos_cnt", pa.int32()), ("annotator_cnt", pa.int32()), ("conflict", pa.bool_()),
                ("label_events_version", pa.int64()),
            ),
            partition_by=("label",),
            description="Events aggregated per (label, clip): each annotator's latest vote, majority wins.",
            key=("label", "clip_key"),
        ),
        TableSpec(
            "models",
            _schema(
                ("label", pa.string()), ("model_version", pa.int64()), ("stage", pa.string()),
                ("trained_at", TS), ("n_pos", pa.int32()), ("n_neg", pa.int32()), ("ap", pa.float64()),
                ("label_events_version", pa.int64()), ("encoder_id", pa.string()),
                ("artifact", pa.string()), ("trainer", pa.string()), ("checks_passed", pa.bool_()),
                ("checks_report", pa.string()), ("label_set_digest", pa.string()),
                # ap is the corpus estimate (va_core.quality); labelled_ap the AP on the labelled set
                ("ap_low", pa.float64()), ("ap_high", pa.float64()), ("n_audit", pa.int32()),
                ("ap_method", pa.string()), ("labelled_ap", pa.float64()),
            ),
            partition_by=("label",),
            description="Model versions per label and their current stage.",
            key=("label", "model_version"),
        ),
        TableSpec(
            "model_stage_events",
            _schema(
                ("label", pa.string()), ("model_version", pa.int64()), ("stage", pa.string()),
                ("previous_stage", pa.string()), ("changed_by", pa.string()), ("reason", pa.string()),
                ("changed_at", TS),
            ),
            description="Append-only history of stage changes (candidate -> approved -> retired).",
        ),
        TableSpec(
            "evaluations",
            _schema(
                ("label", pa.string()), ("model_version", pa.int64()), ("ap_mean", pa.float64()),
                ("ap_std", pa.float64()), ("baseline_ap", pa.float64()), ("diversity_score", pa.float64()),
                ("agreement", pa.float64()), ("method", pa.string()), ("n_val", pa.int32()),
                ("n_val_pos", pa.int32()), ("n_conflicts", pa.int32()),
                ("label_events_version", pa.int64()), ("encoder_id", pa.string()),
                # the corpus estimate (va_core.quality); ap_mean/ap_std/baseline_ap are the labelled set's
                ("ap", pa.float64()), ("ap_low", pa.float64()), ("ap_high", pa.float64()),
                ("n_audit", pa.int32()), ("n_audit_pos", pa.int32()), ("ap_method", pa.string()),
                ("precision", pa.float64()), ("precision_low", pa.float64()), ("precision_high", pa.float64()),
                ("recall", pa.float64()), ("recall_low", pa.float64()), ("recall_high", pa.float64()),
                ("prevalence", pa.float64()), ("prevalence_low", pa.float64()), ("prevalence_high", pa.float64()),
                ("threshold", pa.float64()), ("labelled_ap", pa.float64()),
                # random draws answered unsure: not in the estimate's sample (null in older rows)
                ("n_audit_unsure", pa.int32()),
            ),
            partition_by=("label",),
            description="Quality of each model version: the corpus estimate of AP, precision and recall with "
                        "90% intervals, the labelled-set AP and its spread, the random baseline, diversity.",
            key=("label", "model_version"),
        ),
        TableSpec(
            "clip_scores",
            _schema(
                ("label", pa.string()), ("model_version", pa.int64()), ("clip_key", pa.string()),
                ("score", pa.float32()), ("label_events_version", pa.int64()), ("encoder_id", pa.string()),
            ),
            partition_by=("label",),
            description="Scores of the latest model version of each label over the whole corpus.",
            key=("label", "model_version", "clip_key"),
        ),
        TableSpec(
            "feeds",
            _schema(
                ("label", pa.string()), ("model_version", pa.int64()), ("feed", pa.string()),
                ("rank", pa.int32()), ("clip_key", pa.string()), ("score", pa.float32()),
                ("label_events_version", pa.int64()), ("encoder_id", pa.string()),
                # the sampling design of the random feeds (random, audit); null for the ranked ones
                ("draw_id", pa.string()), ("stratum", pa.int32()), ("stratum_size", pa.int64()),
                ("inclusion_prob", pa.float64()), ("stratum_low", pa.float64()), ("stratum_high", pa.float64()),
            ),
            partition_by=("label",),
            description="The active-learning feeds of the latest model version of each label.",
            key=("label", "model_version", "feed", "rank"),
        ),
        TableSpec(
            "policy_state",
            _schema(
                ("label", pa.string()), ("policy", pa.string()), ("state_json", pa.string()),
                ("updated_at", TS),
            ),
            partition_by=("label",),
            description="Per-label state of the bandit that chooses where the next clips come from.",
            key=("label",),
        ),
    ]
}


class WarehouseError(RuntimeError):
    """A warehouse operation failed; the message names the table."""


class UnknownTable(WarehouseError):
    pass


_SAFE_VALUE = re.compile(r"[^\x00-\x1f\x7f]*")  # fullmatch: no trailing-newline hole


def sql_literal(value: Any) -> str:
    """A value as a Delta (DataFusion SQL) literal, quotes escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    text = str(value)
    if not _SAFE_VALUE.fullmatch(text):
        raise WarehouseError(f"refusing a predicate value with control characters: {text!r}")
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Compare:
    """A predicate term other than equality: ``{"model_version": Compare("<", 7)}``."""

    op: str
    value: Any

    def __post_init__(self):
        if self.op not in ("<", "<=", ">", ">=", "<>"):
            raise WarehouseError(f"unsupported comparison {self.op!r}")

    def apply(self, operand):
        """The comparison on a pyarrow column or dataset field."""
        name = {"<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal", "<>": "not_equal"}[self.op]
        return getattr(pc, name)(operand, self.value)


def _filter(where: Mapping[str, Any] | None):
    """``where`` as a pyarrow dataset expression (None: no filter)."""
    expr = None
    for column, value in (where or {}).items():
        if isinstance(value, (list, tuple, set, frozenset)):
            term = pc.field(column).isin(list(value))
        elif isinstance(value, Compare):
            term = value.apply(pc.field(column))
        else:
            term = pc.field(column) == value
        expr = term if expr is None else expr & term
    return expr


def predicate(where: Mapping[str, Any]) -> str:
    """``{"label": "x", "model_version": 3}`` -> ``label = 'x' AND model_version = 3``.

    A list value becomes ``IN (...)``.
    """
    parts = []
    for column, value in where.items():
        if not re.match(r"^[a-z_][a-z0-9_]*$", column):
            raise WarehouseError(f"bad column name in predicate: {column!r}")
        if isinstance(value, (list, tuple, set, frozenset)):
            values = sorted(value, key=str)
            if not values:
                raise WarehouseError(f"empty IN list for column {column!r}")
            parts.append(f"{column} IN ({', '.join(sql_literal(v) for v in values)})")
        elif isinstance(value, Compare):
            parts.append(f"{column} {value.op} {sql_literal(value.value)}")
        else:
            parts.append(f"{column} = {sql_literal(value)}")
    return " AND ".join(parts)


def _key_rows(rows: pa.Table, on: list[str]) -> list[tuple]:
    return sorted(set(zip(*(rows.column(c).to_pylist() for c in on))), key=str)


def _keys_predicate(rows: pa.Table, on: list[str]) -> str:
    """Exactly the keys of ``rows``: ``(a = 1 AND b = 'x') OR (...)``."""
    for column in on:
        if not re.match(r"^[a-z_][a-z0-9_]*$", column):
            raise WarehouseError(f"bad column name in predicate: {column!r}")
    return " OR ".join("(" + " AND ".join(f"{c} = {sql_literal(v)}" for c, v in zip(on, key)) + ")"
                       for key in _key_rows(rows, on))


def _keys_filter(rows: pa.Table, on: list[str]):
    expr = None
    for key in _key_rows(rows, on):
        term = None
        for c, v in zip(on, key):
            t = pc.field(c) == v
            term = t if term is None else term & t
        expr = term if expr is None else expr | term
    return expr


class CommitConflict(WarehouseError):
    """A conditional commit lost to a concurrent one that changed what it read: rerun it on fresh data."""


# Delta's own commit retries: a commit that finds its version taken re-checks the winning
# commits and lands on the next version unless they conflict with what it read.
COMMIT_RETRIES = 100
# A conditional commit (replace, delete, insert_new) that truly conflicted is rerun on a
# fresh snapshot this many times; each rerun re-reads, so it cannot overwrite newer rows.
CONFLICT_RERUNS = 20

# Files of a table (one per write) before the small ones are merged.
COMPACT_AFTER = 32
# Commits between checkpoints: opening a table replays the commits since its last checkpoint,
# and a build opens tables some thirty times.
CHECKPOINT_EVERY = 10
# Attempts of a conditional insert refused by a commit that wrote none of its keys (a compaction).
KEY_RECHECKS = 3

_commits = 0
_commits_lock = threading.Lock()


def _committed() -> None:
    """Count this process's commits; ``VA_KILL_AFTER_COMMITS=N`` SIGKILLs it right after the Nth.

    A test seam for crash safety: tests kill a real ``va`` process at every commit point and
    check what readers see. Unset (always, outside those tests) it costs one lookup.
    """
    global _commits
    with _commits_lock:
        _commits += 1
        limit = os.environ.get("VA_KILL_AFTER_COMMITS")
        if limit and _commits >= int(limit):
            os.kill(os.getpid(), signal.SIGKILL)


def _commit_properties():
    from deltalake import CommitProperties

    return CommitProperties(max_commit_retries=COMMIT_RETRIES)


def rerun_on_conflict(fn, what: str, reruns: int = CONFLICT_RERUNS):
    """Run a conditional commit, rerunning it when a concurrent commit conflicted with it.

    ``fn`` must read what it depends on afresh each time (a rerun with stale rows could undo
    the winner's write). Only delta-rs' conflict error is rerun; every other error is raised.
    """
    from deltalake.exceptions import CommitFailedError

    delay = 0.01
    for attempt in range(reruns):
        try:
            return fn()
        except CommitFailedError as exc:
            if attempt == reruns - 1:
                raise CommitConflict(f"{what}: still conflicting after {reruns} reruns: {exc}") from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 1.6, 0.5)


class _Handles(threading.local):
    """Open delta-rs handles of local tables, one set per thread (see ``Warehouse._open``)."""

    def __init__(self):
        self.tables: dict[str, tuple[Any, tuple | None]] = {}


_handles = _Handles()
# a forked child cannot use its parent's delta-rs runtime, nor so its handles (see _forget_writers)


class _Datasets:
    """The pyarrow datasets of recently read local snapshots (see ``Warehouse._dataset``)."""

    def __init__(self, size: int = 64):
        from collections import OrderedDict

        self.size, self.kept, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            found = self.kept.get(key)
            if found is not None:
                self.kept.move_to_end(key)
            return found

    def put(self, key, dataset) -> None:
        with self.lock:
            self.kept[key] = dataset
            while len(self.kept) > self.size:
                self.kept.popitem(last=False)


_datasets = _Datasets()

_writers: list = []  # one pool for the process: its threads keep their handles between calls
_writers_lock = threading.Lock()


def concurrently(*calls):
    """Run independent commits (functions of no arguments) at once; their results in order.

    A commit spends most of its time in delta-rs (encoding Parquet, writing, committing),
    which runs without the GIL. The threads are kept, so their table handles stay open
    (``Warehouse._open``). Every call finishes before the first error, if any, is raised:
    a caller never continues while a write it started is still under way.
    """
    from concurrent.futures import ThreadPoolExecutor

    with _writers_lock:
        if not _writers:
            _writers.append(ThreadPoolExecutor(4, thread_name_prefix="va-writer"))
        pool = _writers[0]
    futures = [pool.submit(call) for call in calls]
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]


def _forget_writers() -> None:
    _handles.tables.clear()
    _writers.clear()  # a forked child has none of its parent's threads


os.register_at_fork(after_in_child=_forget_writers)


def _log_identity(uri: str) -> tuple | None:
    """Which log a local table URI names now, None without one: its folder's inode and its first
    commit's inode and time of writing. Inode numbers alone are reused at once by a table
    removed and made again (measured); the first commit's nanosecond mtime is not. Once that
    commit expires from the log (delta-rs' log retention, 30 days) only the folder is checked."""
    log = f"{uri.removeprefix('file://')}/_delta_log"
    try:
        folder = os.stat(log).st_ino
    except FileNotFoundError:
        return None
    try:
        first = os.stat(f"{log}/{0:020d}.json")
        return folder, first.st_ino, first.st_mtime_ns
    except FileNotFoundError:
        return folder, None, None


class Warehouse:
    """Delta tables under one root: a local folder or an object-store prefix."""

    def __init__(self, uri: str, storage_options: Mapping[str, str] | None = None):
        self.uri = uri.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.is_local = "://" not in self.uri or self.uri.startswith("file://")

    @classmethod
    def from_settings(cls, settings) -> "Warehouse":
        return cls(settings.warehouse_uri, settings.storage_options)

    def __repr__(self) -> str:
        return f"Warehouse({self.uri!r})"

    # -- names and handles -------------------------------------------------
    def spec(self, table: str) -> TableSpec:
        try:
            return TABLES[table]
        except KeyError:
            raise UnknownTable(f"unknown table {table!r}; tables are: {', '.join(TABLES)}") from None

    def table_uri(self, table: str) -> str:
        self.spec(table)
        return f"{self.uri}/{table}"

    def _options(self) -> dict[str, str] | None:
        return self.storage_options or None

    def _open(self, table: str, version: int | None = None):
        """A snapshot of the table: at ``version``, else its latest commit.

        Opening replays the log from its last checkpoint (8 ms locally, and a build opens
        tables some thirty times); catching up an open handle reads only the commits since
        (under 1 ms). So the latest snapshot of a local table comes from a handle kept per
        thread (delta-rs handles are not shared between threads) and brought up to date here,
        on every call: a reader never sees less than the latest commit. A handle is dropped
        when its table's folders are not the ones it was opened on (a table removed and made
        again would otherwise be read from the old log).
        """
        from deltalake import DeltaTable

        uri = self.table_uri(table)
        if version is not None or not self.is_local:
            return DeltaTable(uri, version=version, storage_options=self._options())
        identity = _log_identity(uri)
        held = _handles.tables.get(uri)
        if held is not None and held[1] == identity and identity is not None:
            from deltalake.exceptions import DeltaError

            try:
                held[0].update_incremental()
                return held[0]
            except DeltaError:  # a log that does not continue the handle's: read it afresh
                pass
        delta = DeltaTable(uri, storage_options=self._options())
        _handles.tables[uri] = (delta, identity)
        return delta

    def _dataset(self, table: str, version: int | None = None, delta=None):
        """The table's files at ``version`` (or of the snapshot ``delta``) as a pyarrow dataset.

        Local tables are read through pyarrow's own file system: deltalake's default one calls
        back into Python from pyarrow's I/O threads, and a process that exits while those
        threads wind down aborts ("terminate called without an active exception") about
        one time in three.
        """
        delta = delta if delta is not None else self._open(table, version)
        if not self.is_local:
            return delta.to_pyarrow_dataset()
        import pyarrow.fs as pafs

        uri = self.table_uri(table)
        # A snapshot's files never change, so its dataset is kept: building one costs a few ms
        # per file (a partition expression each), and a build reads some tables ten times.
        key = (uri, _log_identity(uri), delta.version())
        found = _datasets.get(key)
        if found is None:
            root = uri.removeprefix("file://")
            found = delta.to_pyarrow_dataset(filesystem=pafs.SubTreeFileSystem(root, pafs.LocalFileSystem()))
            _datasets.put(key, found)
        return found

    def exists(self, table: str) -> bool:
        from deltalake import DeltaTable

        uri = self.table_uri(table)
        held = _handles.tables.get(uri) if self.is_local else None
        if held is not None and held[1] is not None and held[1] == _log_identity(uri):
            return True  # a log this thread has read is still there
        return DeltaTable.is_deltatable(uri, storage_options=self._options())

    def version(self, table: str) -> int | None:
        """The table's current Delta version, or None if it was never written."""
        if not self.exists(table):
            return None
        return self._open(table).version()

    def versions(self, tables: Iterable[str] | None = None) -> dict[str, int | None]:
        return {t: self.version(t) for t in (tables or TABLES)}

    def checkpoint_interval(self, table: str) -> int:
        """Commits between the table's checkpoints (delta-rs' default, 100, unless set at creation)."""
        return int(self._open(table).metadata().configuration.get("delta.checkpointInterval", 100))

    def checkpoint_often(self, table: str) -> None:
        """Make the table checkpoint every ``CHECKPOINT_EVERY`` commits (tables made before it was
        the default keep 100), and write a checkpoint now: its next opens replay nothing."""
        rerun_on_conflict(lambda: self._open(table).alter.set_table_properties(
            {"delta.checkpointInterval": str(CHECKPOINT_EVERY)}, commit_properties=_commit_properties()),
            f"set the checkpoint interval of {table}")
        _committed()
        self._open(table).create_checkpoint()

    def history(self, table: str, limit: int | None = None) -> list[dict]:
        if not self.exists(table):
            return []
        return self._open(table).history(limit)

    # -- writing -----------------------------------------------------------
    def create(self, table: str) -> int:
        """Create the table empty if it does not exist; return its version."""
        from deltalake import write_deltalake

        spec = self.spec(table)
        if not self.exists(table):
            config = {"delta.checkpointInterval": str(CHECKPOINT_EVERY)}
            if spec.change_feed:
                config["delta.enableChangeDataFeed"] = "true"
            try:
                write_deltalake(
                    self.table_uri(table), spec.schema.empty_table(), mode="ignore",
                    partition_by=list(spec.partition_by) or None, configuration=config,
                    storage_options=self._options(), description=spec.description,
                )
            except Exception:
                if not self.exists(table):  # someone else creating it at the same time is fine
                    raise
        return self.version(table)

    def _conform(self, table: str, data) -> pa.Table:
        spec = self.spec(table)
        if isinstance(data, pl.DataFrame):
            data = data.to_arrow()
        elif isinstance(data, list):
            data = pa.Table.from_pylist(data, schema=spec.schema)
        elif not isinstance(data, pa.Table):
            raise WarehouseError(f"{table}: cannot write a {type(data).__name__}")
        missing = [f.name for f in spec.schema if f.name not in data.column_names]
        for name in missing:  # optional columns are written as nulls
            data = data.append_column(spec.schema.field(name), pa.nulls(len(data), spec.schema.field(name).type))
        extra = [c for c in data.column_names if c not in spec.schema.names]
        if extra:
            raise WarehouseError(f"{table}: columns not in the schema: {extra}")
        try:
            return data.select(spec.schema.names).cast(spec.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise WarehouseError(f"{table}: rows do not fit the schema: {exc}") from exc

    def append(self, table: str, data) -> int:
        """Append rows; returns the new table version.

        A blind append: delta-rs' own commit retries land it on the next free version. The one
        conflict left is a metadata commit racing it (the table being created by another
        writer at the same moment); the append is then rerun, which is safe as it read nothing.
        """
        from deltalake import write_deltalake

        rows = self._conform(table, data)
        if len(rows) == 0 or not self.exists(table):
            current = self.create(table)
            if len(rows) == 0:
                return current
        spec = self.spec(table)
        rerun_on_conflict(lambda: write_deltalake(
            self.table_uri(table), rows, mode="append", partition_by=list(spec.partition_by) or None,
            schema_mode="merge", storage_options=self._options(), commit_properties=_commit_properties(),
        ), f"append to {table}")
        _committed()
        delta = self._open(table)
        version = delta.version()
        self._compact_if_fragmented(table, delta)
        return version

    def _compact_if_fragmented(self, table: str, delta) -> None:
        """Merge a table's small files once there are ``COMPACT_AFTER`` of them.

        Every write is a file, and every read opens every file (its statistics first): one
        file per answer made reading a label's events, hence each answer in the app, grow
        with every answer ever given (0.23 s after 3 answers, 1.9 s after 200 on a loaded
        machine), and one ``models``, ``evaluations`` and stage-event file per version made a
        build four times slower after 60 versions in a home. Compaction rewrites the small
        files into large ones in a commit that changes no data (``dataChange=false``: the
        change feed, time travel and versions are as before); a conditional commit that it
        beat reruns (``replace``, ``delete``) or re-checks its keys (``insert_new``).

        Only one compaction at a time: delta-rs (1.6) lets two concurrent compactions of the
        same files both commit, which duplicated rows (4 processes appending 60 events each
        read 19,000 rows). So a compaction runs under a file lock, taken without waiting
        (whoever holds it is compacting), on a fresh snapshot; tables on an object store,
        where writers on other machines cannot see the lock, are not compacted.
        """
        if not self.is_local or len(delta.file_uris()) < COMPACT_AFTER:
            return
        from deltalake.exceptions import CommitFailedError
        from filelock import FileLock, Timeout

        root = self.uri.removeprefix("file://")
        try:
            with FileLock(f"{root}/.{table}.compact.lock", timeout=0):
                fresh = self._open(table)
                if len(fresh.file_uris()) < COMPACT_AFTER:
                    return
                fresh.optimize.compact()
        except (Timeout, CommitFailedError):  # another compacts, or a rewrite won: the next append tries again
            return
        _committed()

    def replace(self, table: str, where: Mapping[str, Any], data) -> int:
        """Atomically replace the rows matching ``where`` (one video, one label) with ``data``.

        Readers see either the old rows or the new ones, never a mix. A concurrent commit that
        added rows matching ``where`` makes Delta refuse this one; it is then rerun, so two
        writers replacing the same rows leave one copy, never both. ``data`` may be a function
        of no arguments returning the rows: it is called again for each rerun, for rows that
        depend on what was read.
        """
        from deltalake import write_deltalake

        pred = predicate(where)
        self.create(table)
        spec = self.spec(table)

        def write():
            rows = self._conform(table, data() if callable(data) else data)
            self._check_inside(table, where, rows, pred)
            write_deltalake(
                self.table_uri(table), rows, mode="overwrite", predicate=pred,
                partition_by=list(spec.partition_by) or None, schema_mode="merge",
                storage_options=self._options(), commit_properties=_commit_properties(),
            )

        rerun_on_conflict(write, f"replace {pred} in {table}")
        _committed()
        delta = self._open(table)
        self._compact_if_fragmented(table, delta)
        return delta.version()

    def _check_inside(self, table: str, where: Mapping[str, Any], rows: pa.Table, pred: str) -> None:
        """delta-rs refuses rows outside the predicate only after reading the table: refuse them first."""
        if not len(rows):
            return
        for column, value in where.items():
            col = rows.column(column)
            if isinstance(value, (list, tuple, set, frozenset)):
                outside = pc.invert(pc.is_in(col, value_set=pa.array(list(value), col.type)))
            elif isinstance(value, Compare):
                outside = pc.invert(value.apply(col))
            else:
                outside = pc.not_equal(col, pa.scalar(value, col.type))
            if pc.any(pc.fill_null(outside, True)).as_py():
                raise WarehouseError(f"{table}: rows to replace {pred} include other {column} values")

    def delete(self, table: str, where: Mapping[str, Any]) -> int | None:
        if not self.exists(table):
            return None
        pred = predicate(where)
        before = self.version(table)
        rerun_on_conflict(lambda: self._open(table).delete(pred, commit_properties=_commit_properties()),
                          f"delete {pred} from {table}")
        after = self.version(table)
        if after != before:
            _committed()
        return after

    def insert_new(self, table: str, data, on: Iterable[str]) -> int:
        """Insert the rows whose ``on`` columns match no row of the table; returns how many were inserted.

        One conditional commit: at the snapshot where the keys were found absent, an overwrite
        whose predicate is exactly those keys (so it removes nothing). Two writers inserting
        one key at once cannot both succeed: Delta finds rows matching the loser's predicate
        in the winner's commit and refuses it (``CommitConflict``, not rerun here: the caller
        decides, e.g. by choosing the next version number). A refusal by a commit that wrote
        none of the keys (a compaction rewrote files the overwrite had read) is retried at a
        fresh snapshot. Same guarantee as a MERGE with only ``when_not_matched_insert``, at
        about half its cost.
        """
        from deltalake import write_deltalake
        from deltalake.exceptions import CommitFailedError

        wanted = self._conform(table, data)
        self.create(table)
        on = list(on)
        if not len(wanted):
            return 0
        spec = self.spec(table)
        for attempt in range(KEY_RECHECKS):
            snapshot = self._open(table)
            rows = self._absent(table, snapshot, wanted, on)
            if not len(rows):
                return 0
            try:
                write_deltalake(snapshot, rows, mode="overwrite", predicate=_keys_predicate(rows, on),
                                partition_by=list(spec.partition_by) or None, schema_mode="merge",
                                storage_options=self._options(),
                                commit_properties=_commit_properties())
                break
            except CommitFailedError as exc:
                taken = len(self._absent(table, self._open(table), rows, on)) < len(rows)
                if taken or attempt == KEY_RECHECKS - 1:
                    raise CommitConflict(f"insert into {table}: a concurrent commit wrote the same keys ({exc})") from exc
        _committed()
        self._compact_if_fragmented(table, self._open(table))
        return len(rows)

    def _absent(self, table: str, snapshot, rows: pa.Table, on: list[str]) -> pa.Table:
        """The ``rows`` whose ``on`` keys are not in the table at ``snapshot``."""
        present = pl.from_arrow(self._dataset(table, delta=snapshot).to_table(
            columns=on, filter=_keys_filter(rows, on)))
        if not present.height:
            return rows
        return self._conform(table, pl.from_arrow(rows).join(present, on=on, how="anti"))

    # -- one row per key ---------------------------------------------------
    _ORDER = ("ingested_at", "trained_at", "changed_at", "created_at", "updated_at")

    def _scope(self, table: str) -> str:
        """The column a repair rewrites by: the partition, else the video, else the key's first column."""
        spec = self.spec(table)
        if spec.partition_by:
            return spec.partition_by[0]
        return "video_id" if "video_id" in spec.schema.names else spec.key[0]

    def duplicate_keys(self, table: str) -> pl.DataFrame:
        """The keys of ``table`` held by more than one row, with their count ``n`` and scope column."""
        spec = self.spec(table)
        if not spec.key:
            return pl.DataFrame()
        scope = self._scope(table)
        columns = list(dict.fromkeys([*spec.key, scope]))
        keys = self.read(table, columns=columns)
        extra = [] if scope in spec.key else [pl.col(scope).first()]
        return keys.group_by(list(spec.key)).agg(pl.len().alias("n"), *extra).filter(pl.col("n") > 1)

    def dedupe(self, table: str) -> int:
        """Leave one row per key in ``table`` (the newest by its time column, if it has one).

        Only the rows in the scope (video, label) of a duplicated key are rewritten, in one
        conditional commit. Returns how many rows were removed.
        """
        dups = self.duplicate_keys(table)
        if dups.height == 0:
            return 0
        spec = self.spec(table)
        scope = self._scope(table)
        values = sorted(set(dups[scope].to_list()))
        order = next((c for c in self._ORDER if c in spec.schema.names), None)
        removed = 0

        def rows() -> pa.Table:
            nonlocal removed
            frame = self.read(table, where={scope: values})
            if order is not None:
                frame = frame.sort(order, descending=True, nulls_last=True, maintain_order=True)
            kept = frame.unique(subset=list(spec.key), keep="first", maintain_order=True)
            removed = frame.height - kept.height
            return kept.to_arrow()

        self.replace(table, {scope: values}, rows)
        return removed

    # -- reading -----------------------------------------------------------
    def scan(self, table: str, version: int | None = None) -> pl.LazyFrame:
        """A lazy polars frame over the table (filters and projections are pushed down)."""
        if not self.exists(table):
            return pl.LazyFrame(schema=pl.from_arrow(self.spec(table).schema.empty_table()).schema)
        dataset = self._dataset(table, version)
        return pl.scan_pyarrow_dataset(dataset)

    def arrow(self, table: str, columns: list[str] | None = None, where: Mapping[str, Any] | None = None,
              version: int | None = None, delta=None) -> pa.Table:
        """Read as Arrow, with column projection and an equality filter pushed to the files.

        ``delta``: a snapshot of the table opened before (instead of ``version``)."""
        spec = self.spec(table)
        if delta is None and not self.exists(table):
            empty = spec.schema.empty_table()
            return empty.select(columns) if columns else empty
        dataset = self._dataset(table, version, delta=delta)
        # A table written before a column was added to its spec lacks it until the next write
        # merges the schema: such columns read as nulls, so old homes keep working.
        present = set(dataset.schema.names)
        wanted = columns or spec.schema.names
        data = dataset.to_table(columns=[c for c in columns if c in present] if columns else None,
                                filter=_filter(where))
        for name in wanted:
            if name not in present:
                if name not in spec.schema.names:
                    raise WarehouseError(f"{table} has no column {name!r}")
                field = spec.schema.field(name)
                data = data.append_column(field, pa.nulls(len(data), field.type))
        return data.select(columns) if columns else data

    def batches(self, table: str, columns: list[str] | None = None, where: Mapping[str, Any] | None = None,
                version: int | None = None, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        """Stream record batches (memory bounded by one batch), same arguments as :meth:`arrow`."""
        if not self.exists(table):
            return
        dataset = self._dataset(table, version)
        # Little read-ahead: the point of streaming is that one batch at a time is in memory.
        yield from dataset.to_batches(columns=columns, filter=_filter(where), batch_size=batch_size,
                                      fragment_readahead=1, batch_readahead=2)

    def read(self, table: str, columns: list[str] | None = None, where: Mapping[str, Any] | None = None,
             version: int | None = None) -> pl.DataFrame:
        return pl.from_arrow(self.arrow(table, columns, where, version))

    def read_current(self, table: str, columns: list[str] | None = None,
                     where: Mapping[str, Any] | None = None) -> tuple[pl.DataFrame, int | None]:
        """The current rows and the version they were read at, from one snapshot (one log replay)."""
        if not self.exists(table):
            return self.read(table, columns, where), None
        delta = self._open(table)
        return pl.from_arrow(self.arrow(table, columns, where, delta=delta)), delta.version()

    def changes_since(self, table: str, version: int, columns: list[str] | None = None) -> pl.DataFrame:
        """Rows appended after ``version`` (exclusive), read from the change feed only.

        Cost grows with what changed, not with the table's size.
        """
        spec = self.spec(table)
        if not spec.change_feed:
            raise WarehouseError(f"{table} has no change data feed")
        delta = self._open(table) if self.exists(table) else None
        current = delta.version() if delta is not None else None
        if current is None or current <= version:
            # Nothing changed: an empty frame from the schema, not a scan of the whole table.
            empty = pl.from_arrow(spec.schema.empty_table())
            return empty.select([c for c in (columns or spec.schema.names) if c in empty.columns])
        reader = delta.load_cdf(starting_version=version + 1, ending_version=current, columns=columns)
        data = pa.table(reader.read_all()) if not isinstance(reader, pa.Table) else reader
        frame = pl.from_arrow(data)
        if "_change_type" in frame.columns:
            frame = frame.filter(pl.col("_change_type").is_in(["insert", "update_postimage"]))
        keep = columns or spec.schema.names
        return frame.select([c for c in keep if c in frame.columns])

    def count(self, table: str) -> int:
        if not self.exists(table):
            return 0
        return self._dataset(table).count_rows()


def embedding_matrix(column: pa.ChunkedArray | pa.Array, dim: int | None = None) -> np.ndarray:
    """A ``list<float32>`` column as an (N, D) float32 matrix, without a Python loop.

    A chunked column is copied once, chunk by chunk, into one C-contiguous matrix.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    chunks = [c for c in chunks if len(c)]
    n = sum(len(c) for c in chunks)
    if n == 0:
        return np.zeros((0, dim or 0), dtype=np.float32)
    out = None
    row = 0
    for chunk in chunks:
        if chunk.null_count:
            raise WarehouseError(f"{chunk.null_count} missing (null) embeddings")
        lengths = pc.list_value_length(chunk)
        lo, hi = pc.min_max(lengths).values()
        if lo.as_py() != hi.as_py() or (out is not None and lo.as_py() != out.shape[1]):
            raise WarehouseError("embeddings of different dimensions in one column")
        d = lo.as_py()
        if dim is not None and d != dim:
            raise WarehouseError(f"embedding dimension {d} where {dim} was expected")
        values = pc.list_flatten(chunk).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        block = values.reshape(len(chunk), d)
        if len(chunks) == 1:
            return np.ascontiguousarray(block)
        if out is None:
            out = np.empty((n, d), dtype=np.float32)
        out[row:row + len(chunk)] = block
        row += len(chunk)
    return out


def embedding_column(matrix: np.ndarray) -> pa.Array:
    """An (N, D) matrix as a ``list<float32>`` Arrow column (zero-copy of the values)."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if matrix.ndim != 2:
        raise WarehouseError(f"embeddings must be an (N, D) matrix, got shape {matrix.shape}")
    n, d = matrix.shape
    # list<float32> has 32-bit offsets: more than 2**31 values go in several chunks.
    rows_per_chunk = max(1, (2**31 - 1) // max(d, 1))
    if n > rows_per_chunk:
        return pa.chunked_array([embedding_column(matrix[s:s + rows_per_chunk])
                                 for s in range(0, n, rows_per_chunk)])
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * np.int32(d))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1)))
