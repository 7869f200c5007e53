"""The Delta Lake warehouse: the one place that knows table names, schemas and layout.

Every other module reads and writes through :class:`Warehouse`, so a table's schema,
partitioning and the escaping of predicate values live here only.

Delta has no fixed-size list type, so embeddings are stored as ``list<float32>``;
their dimension is checked on write and recovered on read by :func:`embedding_matrix`.
"""
from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...] = ()
    description: str = ""
    # Change data feed lets sensors read only what was appended since a version.
    change_feed: bool = False


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
        ),
        TableSpec(
            "clips",
            _schema(
                ("clip_key", pa.string()), ("video_id", pa.string()), ("frame_in", pa.int64()),
                ("frame_out", pa.int64()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                ("n_sampled", pa.int32()),
            ),
            description="Shots: the span between two consecutive cuts. Key = {video_id}|{frame_in}.",
        ),
        TableSpec(
            "clip_embeddings",
            _schema(
                ("clip_key", pa.string()), ("video_id", pa.string()), ("encoder_id", pa.string()),
                ("embedding", pa.list_(pa.float32())),
            ),
            description="Mean-pooled, L2-normalised CLIP image embedding of each clip.",
        ),
        TableSpec(
            "clip_clusters",
            _schema(("clip_key", pa.string()), ("encoder_id", pa.string()), ("cluster_index", pa.int32()),
                    ("embeddings_version", pa.int64())),
            description="k-means cluster (K=10) of each clip, for the data diversity score.",
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
            ),
            description="Append-only log of every label anyone gave, with how its clip was chosen. "
                        "The only table people write.",
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
            "label_sets",
            _schema(
                ("label", pa.string()), ("clip_key", pa.string()), ("value", pa.bool_()),
                ("pos_cnt", pa.int32()), ("annotator_cnt", pa.int32()), ("conflict", pa.bool_()),
                ("label_events_version", pa.int64()),
            ),
            partition_by=("label",),
            description="Events aggregated per (label, clip): each annotator's latest vote, majority wins.",
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
            ),
            partition_by=("label",),
            description="Quality of each model version: the corpus estimate of AP, precision and recall with "
                        "90% intervals, the labelled-set AP and its spread, the random baseline, diversity.",
        ),
        TableSpec(
            "clip_scores",
            _schema(
                ("label", pa.string()), ("model_version", pa.int64()), ("clip_key", pa.string()),
                ("score", pa.float32()), ("label_events_version", pa.int64()), ("encoder_id", pa.string()),
            ),
            partition_by=("label",),
            description="Scores of the latest model version of each label over the whole corpus.",
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
        ),
        TableSpec(
            "policy_state",
            _schema(
                ("label", pa.string()), ("policy", pa.string()), ("state_json", pa.string()),
                ("updated_at", TS),
            ),
            partition_by=("label",),
            description="Per-label state of the bandit that chooses where the next clips come from.",
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


def _filter(where: Mapping[str, Any] | None):
    """``where`` as a pyarrow dataset expression (None: no filter)."""
    expr = None
    for column, value in (where or {}).items():
        if isinstance(value, (list, tuple, set, frozenset)):
            term = pc.field(column).isin(list(value))
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
        else:
            parts.append(f"{column} = {sql_literal(value)}")
    return " AND ".join(parts)


def _retrying(fn, what: str, attempts: int = 60):
    """Retry a commit that lost a race: concurrent writers to one table are normal here."""
    from deltalake.exceptions import CommitFailedError

    delay = 0.01
    for attempt in range(attempts):
        try:
            return fn()
        except CommitFailedError as exc:  # another writer committed the same version
            if attempt == attempts - 1:
                raise WarehouseError(f"{what}: gave up after {attempts} commit conflicts: {exc}") from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 1.6, 0.5)
        except Exception as exc:  # delta-rs reports some races as generic errors
            text = str(exc).lower()
            if "version" in text and ("exists" in text or "conflict" in text) and attempt < attempts - 1:
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 1.6, 0.5)
                continue
            raise


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
        from deltalake import DeltaTable

        return DeltaTable(self.table_uri(table), version=version, storage_options=self._options())

    def _dataset(self, table: str, version: int | None = None):
        """The table's files at ``version`` as a pyarrow dataset.

        Local tables are read through pyarrow's own file system: deltalake's default one calls
        back into Python from pyarrow's I/O threads, and a process that exits while those
        threads wind down aborts ("terminate called without an active exception") about
        one time in three.
        """
        delta = self._open(table, version)
        if not self.is_local:
            return delta.to_pyarrow_dataset()
        import pyarrow.fs as pafs

        root = self.table_uri(table).removeprefix("file://")
        return delta.to_pyarrow_dataset(filesystem=pafs.SubTreeFileSystem(root, pafs.LocalFileSystem()))

    def exists(self, table: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.table_uri(table), storage_options=self._options())

    def version(self, table: str) -> int | None:
        """The table's current Delta version, or None if it was never written."""
        if not self.exists(table):
            return None
        return self._open(table).version()

    def versions(self, tables: Iterable[str] | None = None) -> dict[str, int | None]:
        return {t: self.version(t) for t in (tables or TABLES)}

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
            config = {"delta.enableChangeDataFeed": "true"} if spec.change_feed else None
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
        """Append rows; returns the new table version. Retries on commit conflicts."""
        from deltalake import CommitProperties, write_deltalake

        rows = self._conform(table, data)
        current = self.create(table)
        if len(rows) == 0:
            return current
        spec = self.spec(table)

        def write():
            write_deltalake(
                self.table_uri(table), rows, mode="append",
                partition_by=list(spec.partition_by) or None, schema_mode="merge",
                storage_options=self._options(),
                commit_properties=CommitProperties(max_commit_retries=100),
            )

        _retrying(write, f"append to {table}")
        return self.version(table)

    def replace(self, table: str, where: Mapping[str, Any], data) -> int:
        """Atomically replace the rows matching ``where`` (one video, one label) with ``data``.

        Readers see either the old rows or the new ones, never a mix.
        """
        from deltalake import CommitProperties, write_deltalake

        rows = self._conform(table, data)
        pred = predicate(where)
        for column, value in where.items():  # delta-rs refuses such rows only after reading the table
            if not len(rows):
                continue
            col = rows.column(column)
            if isinstance(value, (list, tuple, set, frozenset)):
                outside = pc.invert(pc.is_in(col, value_set=pa.array(list(value), col.type)))
            else:
                outside = pc.not_equal(col, pa.scalar(value, col.type))
            if pc.any(pc.fill_null(outside, True)).as_py():
                raise WarehouseError(f"{table}: rows to replace {pred} include other {column} values")
        self.create(table)
        spec = self.spec(table)

        def write():
            write_deltalake(
                self.table_uri(table), rows, mode="overwrite", predicate=pred,
                partition_by=list(spec.partition_by) or None, schema_mode="merge",
                storage_options=self._options(),
                commit_properties=CommitProperties(max_commit_retries=100),
            )

        _retrying(write, f"replace {pred} in {table}")
        return self.version(table)

    def delete(self, table: str, where: Mapping[str, Any]) -> int | None:
        if not self.exists(table):
            return None
        pred = predicate(where)
        _retrying(lambda: self._open(table).delete(pred), f"delete {pred} from {table}")
        return self.version(table)

    # -- reading -----------------------------------------------------------
    def scan(self, table: str, version: int | None = None) -> pl.LazyFrame:
        """A lazy polars frame over the table (filters and projections are pushed down)."""
        if not self.exists(table):
            return pl.LazyFrame(schema=pl.from_arrow(self.spec(table).schema.empty_table()).schema)
        dataset = self._dataset(table, version)
        return pl.scan_pyarrow_dataset(dataset)

    def arrow(self, table: str, columns: list[str] | None = None, where: Mapping[str, Any] | None = None,
              version: int | None = None) -> pa.Table:
        """Read as Arrow, with column projection and an equality filter pushed to the files."""
        spec = self.spec(table)
        if not self.exists(table):
            empty = spec.schema.empty_table()
            return empty.select(columns) if columns else empty
        dataset = self._dataset(table, version)
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
