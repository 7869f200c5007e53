"""The set of classifiers the server scores with, and how it follows new approvals.

A :class:`ServedSet` is an immutable snapshot: the approved version of every label with
its lineage, read from one version of the ``models`` table. :class:`ServedModels` holds
the current snapshot and replaces it when the table changes; a batch is always scored
against one snapshot, so a request never sees half of an approval.

Hot reload: a background thread reads the ``models`` table's Delta version every
``reload_interval_s`` (a listing of the table's log, ~3 ms locally, one LIST request on
object stores). When it changed, the approved set is read again and the snapshot is
swapped atomically. A failed
reload keeps the previous snapshot and is reported by /models and /ready.

Scores are computed by va_core's own model (:meth:`va_core.learn.LinearModel.score`),
so served scores are exactly the scores `va train` writes.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

import numpy as np

from va_core.errors import InputError, NotFound, VAError
from va_core.operating import Curve, OperatingPoint, choose, curve_from_artifact
from va_core.operating import Request as OperatingRequest

log = logging.getLogger("va.serving")

WAREHOUSE, STORE = "warehouse", "store"


class TooLarge(InputError):
    """A batch over the configured row limit (HTTP 413)."""


class NotReady(VAError):
    """No snapshot could be loaded yet (HTTP 503)."""


@dataclass(frozen=True)
class ServedModel:
    """One approved classifier and where it came from."""

    label: str
    version: int
    encoder_id: str
    model: Any = field(repr=False)  # va_core.learn.LinearModel
    lineage: dict = field(default_factory=dict, compare=False)
    curve: Curve | None = field(default=None, repr=False, compare=False)  # held-out precision/recall

    @property
    def dim(self) -> int:
        return self.model.dim

    @property
    def threshold(self) -> float:
        return float(self.model.threshold)

    def operating_point(self, request: OperatingRequest) -> OperatingPoint:
        return choose(request, self.threshold, self.curve, f"{self.label} v{self.version}")

    def describe(self) -> dict:
        model_point = self.operating_point(OperatingRequest()).as_dict()
        return {"label": self.label, "version": self.version, "encoder_id": self.encoder_id, "dim": self.dim,
                "threshold": self.threshold, "operating_point": model_point,
                "operating_curve": self.curve is not None, **self.lineage}


@dataclass(frozen=True)
class ServedSet:
    """An immutable snapshot of what is served."""

    models: dict[str, ServedModel]
    source: str  # "warehouse" or "store"
    location: str  # warehouse URI or BentoML store path
    models_table_version: int | None
    loaded_at: datetime
    skipped: tuple[dict, ...] = ()

    def get(self, label: str) -> ServedModel:
        try:
            return self.models[label]
        except KeyError:
            served = ", ".join(sorted(self.models)) or "none"
            raise NotFound(f"label {label!r} has no approved model here; served labels: {served}") from None

    def describe(self) -> dict:
        return {
            "source": self.source, "location": self.location,
            "models_table_version": self.models_table_version,
            "loaded_at": self.loaded_at.isoformat(),
            "models": [self.models[k].describe() for k in sorted(self.models)],
            "skipped": list(self.skipped),
        }


# -- loading ---------------------------------------------------------------------------

def _iso(value) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _lineage_tables(wh, keys: set[tuple[str, int]]) -> tuple[dict, dict, dict]:
    """models rows, latest approval events and evaluations of the served (label, version)s."""
    import polars as pl

    labels = sorted({label for label, _ in keys})
    if not labels:
        return {}, {}, {}

    def rows(table: str) -> list[dict]:
        frame = wh.read(table, where={"label": labels})
        return [r for r in frame.to_dicts() if (r["label"], int(r["model_version"])) in keys]

    models = {(r["label"], int(r["model_version"])): r for r in rows("models")}
    approvals: dict = {}
    events = wh.read("model_stage_events", where={"label": labels})
    if events.height:
        events = events.filter(pl.col("stage") == "approved").sort("changed_at")
        for r in events.to_dicts():
            if (r["label"], int(r["model_version"])) in keys:
                approvals[(r["label"], int(r["model_version"]))] = r  # the latest approval wins
    evaluations = {(r["label"], int(r["model_version"])): r for r in rows("evaluations")}
    return models, approvals, evaluations


def _lineage(row: dict | None, approval: dict | None, evaluation: dict | None, approved) -> dict:
    row, approval, evaluation = row or {}, approval or {}, evaluation or {}
    return {
        "stage": row.get("stage", "approved"),
        "ap": approved.ap,  # the corpus estimate (va_core.quality), None before audit labels
        "ap_low": approved.ap_low,
        "ap_high": approved.ap_high,
        "n_audit": approved.n_audit,
        "ap_method": approved.ap_method,
        "labelled_ap": row.get("labelled_ap"),
        "ap_std": evaluation.get("ap_std"),
        "baseline_ap": evaluation.get("baseline_ap"),
        "evaluation_method": evaluation.get("method"),
        "n_pos": row.get("n_pos"),
        "n_neg": row.get("n_neg"),
        "trainer": row.get("trainer"),
        "trained_at": _iso(approved.trained_at),
        "label_events_version": approved.label_events_version,
        "label_set_digest": row.get("label_set_digest"),
        "approved_by": approval.get("changed_by"),
        "approved_at": _iso(approval.get("changed_at")),
    }


def load_from_warehouse(settings) -> ServedSet:
    """The approved version of every label in the warehouse, with lineage.

    The table version is read first: a change landing while we read is then seen as a
    newer version by the next check, never missed.
    """
    from va_core.registry import approved_models
    from va_core.warehouse import Warehouse

    wh = Warehouse.from_settings(settings)
    version = wh.version("models")
    approved = approved_models(wh) if version is not None else []
    keys = {(a.label, a.model_version) for a in approved}
    rows, approvals, evaluations = _lineage_tables(wh, keys)
    models = {}
    for a in approved:
        key = (a.label, a.model_version)
        row = rows.get(key)
        lineage = _lineage(row, approvals.get(key), evaluations.get(key), a)
        curve = curve_from_artifact(row["artifact"]) if row else None
        models[a.label] = ServedModel(a.label, a.model_version, a.encoder_id, a.model, lineage, curve)
    return ServedSet(models, WAREHOUSE, wh.uri, version, datetime.now(timezone.utc))


def load_from_store() -> ServedSet:
    """The approved models packed in the BentoML store (a Bento or a container): no warehouse needed."""
    from va_serving.store import approved_entries, store_location

    models, skipped = {}, []
    for entry in approved_entries():
        try:
            served = entry.to_served()
        except (ValueError, KeyError, OSError) as exc:
            skipped.append({"tag": entry.tag, "label": entry.label, "error": str(exc)})
            continue
        if served.label in models:
            skipped.append({"tag": entry.tag, "label": entry.label,
                            "error": f"another approved version of {served.label} is packed"})
            continue
        models[served.label] = served
    return ServedSet(models, STORE, store_location(), None, datetime.now(timezone.utc), tuple(skipped))


# -- scoring ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ScoreJob:
    """A validated request: an (N, D) float32 matrix and the labels to score it for."""

    matrix: np.ndarray
    labels: tuple[str, ...]
    point: OperatingRequest = OperatingRequest()

    @property
    def rows(self) -> int:
        return int(self.matrix.shape[0])


def check_embeddings(matrix: Any, max_rows: int) -> np.ndarray:
    """An (N, D) float32 matrix of finite numbers with 1 <= N <= max_rows, else a clear error."""
    try:
        with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
            matrix = np.asarray(matrix, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"embeddings must be numbers in an N x D array: {exc}") from None
    if matrix.size == 0 and (matrix.ndim == 1 or (matrix.ndim == 2 and matrix.shape[0] == 0)):
        raise InputError("empty batch: embeddings has no rows")
    if matrix.ndim != 2:
        raise InputError(f"embeddings must be a 2-d array (N rows x D dimensions), got shape {list(matrix.shape)}")
    n, d = matrix.shape
    if d == 0:
        raise InputError("embeddings rows are empty (D = 0)")
    if n > max_rows:
        raise TooLarge(f"batch of {n} rows is over the limit of {max_rows} rows per request "
                       "(VA_SERVING_MAX_ROWS); split it")
    finite = np.isfinite(matrix)
    if not finite.all():
        row, col = (int(i) for i in np.argwhere(~finite)[0])
        bad = int((~finite).sum())
        raise InputError(f"embeddings hold {bad} NaN or infinite value(s), first at row {row}, column {col} "
                         f"({matrix[row, col]})")
    return matrix


def resolve_labels(snapshot: ServedSet, labels: Sequence[str] | None, dim: int,
                   encoder_id: str | None = None) -> tuple[str, ...]:
    """The labels a request scores: the ones asked for, else every served label of this dimension.

    ``encoder_id`` narrows "every served label" to one encoder's models (two encoders can
    share a dimension) and refuses asked-for labels of another encoder.
    """
    if labels is None:
        if not snapshot.models:
            raise NotReady("no approved classifier is served yet: approve one with `va approve LABEL`")
        pool = {k: m for k, m in snapshot.models.items() if encoder_id is None or m.encoder_id == encoder_id}
        if not pool:
            encoders = ", ".join(sorted({m.encoder_id for m in snapshot.models.values()}))
            raise NotFound(f"no served model uses encoder {encoder_id!r}; served encoders: {encoders}")
        chosen = tuple(sorted(k for k, m in pool.items() if m.dim == dim))
        if not chosen:
            dims = ", ".join(f"{k}: {m.dim} ({m.encoder_id})" for k, m in sorted(pool.items()))
            raise InputError(f"embeddings have {dim} dimensions but no served model takes {dim}-d embeddings; "
                             f"served models take: {dims}")
        return chosen
    if isinstance(labels, str):
        labels = [labels]
    if len(labels) == 0:
        raise InputError("labels is an empty list: omit it to score every served label")
    chosen = tuple(dict.fromkeys(labels))  # keep the caller's order, drop repeats
    unknown = [k for k in chosen if k not in snapshot.models]
    if unknown:
        served = ", ".join(sorted(snapshot.models)) or "none"
        raise NotFound(f"no approved model for label(s) {', '.join(map(repr, unknown))}; served labels: {served}")
    if encoder_id is not None:
        other = [f"{k} ({snapshot.models[k].encoder_id})" for k in chosen if snapshot.models[k].encoder_id != encoder_id]
        if other:
            raise InputError(f"label(s) {', '.join(other)} were not trained on encoder {encoder_id}")
    wrong = [f"{k} takes {snapshot.models[k].dim} ({snapshot.models[k].encoder_id})"
             for k in chosen if snapshot.models[k].dim != dim]
    if wrong:
        raise InputError(f"embeddings have {dim} dimensions, but " + "; ".join(wrong))
    return chosen


def score_jobs(snapshot: ServedSet, jobs: Sequence[ScoreJob]) -> list[dict | Exception]:
    """Score a batch of jobs against one snapshot: one model call per label over all rows asking for it."""
    results: list[dict | Exception] = [{"scores": {}, "versions": {}, "points": {}} for _ in jobs]
    wanted: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        for label in job.labels:
            wanted.setdefault(label, []).append(i)
    for label, idx in wanted.items():
        model = snapshot.models.get(label)
        if model is None:  # retired between validation and scoring
            for i in idx:
                results[i] = NotFound(f"label {label!r} is no longer served (its approved model was retired)")
            continue
        for i in idx:
            if not isinstance(results[i], Exception):
                try:
                    results[i]["points"][label] = model.operating_point(jobs[i].point)
                except VAError as exc:  # the version changed under the request and cannot give its point
                    results[i] = exc
        idx = [i for i in idx if not isinstance(results[i], Exception)]
        if not idx:
            continue
        blocks = [jobs[i].matrix for i in idx]
        scores = model.model.score(blocks[0] if len(blocks) == 1 else np.concatenate(blocks))
        start = 0
        for i, block in zip(idx, blocks):
            results[i]["scores"][label] = scores[start:start + len(block)]
            results[i]["versions"][label] = model.version
            start += len(block)
    return results


def check_points(snapshot: ServedSet, labels: Sequence[str], point: OperatingRequest) -> None:
    """Refuse, before scoring, an operating point one of the labels' versions cannot give."""
    for label in labels:
        snapshot.get(label).operating_point(point)


def decisions(result: dict, labels: Sequence[str]) -> dict:
    """Per label: the scores, the yes/no decisions at the chosen threshold, the threshold and the version."""
    scores = {label: np.asarray(result["scores"][label], dtype=np.float64) for label in labels}
    points = {label: result["points"][label] for label in labels}
    return {
        "scores": {label: scores[label].tolist() for label in labels},
        "decisions": {label: (scores[label] >= points[label].threshold).tolist() for label in labels},
        "thresholds": {label: points[label].threshold for label in labels},
        "versions": {label: result["versions"][label] for label in labels},
        "operating_points": {label: points[label].as_dict() for label in labels},
    }


# -- the live set ----------------------------------------------------------------------

class ServedModels:
    """The current snapshot, kept up to date by a background watcher (warehouse source only)."""

    def __init__(self, settings, source: str = WAREHOUSE, reload_interval_s: float = 1.0, on_change=None):
        if source not in (WAREHOUSE, STORE):
            raise InputError(f"serving source must be {WAREHOUSE!r} or {STORE!r}, got {source!r}")
        self.settings = settings
        self.source = source
        self.interval = reload_interval_s
        self.on_change = on_change  # called with each new snapshot, in the watcher thread
        self._snapshot: ServedSet | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.checked_at: float | None = None
        self.reloads = 0

    @property
    def snapshot(self) -> ServedSet:
        snap = self._snapshot
        if snap is None:
            raise NotReady(f"the served models are not loaded: {self.error or 'still loading'}")
        return snap

    def ready(self) -> tuple[bool, str]:
        snap = self._snapshot
        if snap is None:
            return False, f"models not loaded: {self.error or 'still loading'}"
        if not snap.models:
            return False, "no approved classifier to serve: approve one with `va approve LABEL`"
        return True, f"{len(snap.models)} classifier(s) loaded"

    def refresh(self, force: bool = False) -> bool:
        """Reload if the ``models`` table changed since the snapshot; True when it was replaced."""
        with self._lock:
            self.checked_at = time.time()
            try:
                if self.source == STORE:
                    if self._snapshot is not None and not force:
                        return False
                    new = load_from_store()
                else:
                    if self._snapshot is not None and not force:
                        from va_core.warehouse import Warehouse

                        if Warehouse.from_settings(self.settings).version("models") == \
                                self._snapshot.models_table_version:
                            return False
                    new = load_from_warehouse(self.settings)
            except Exception as exc:  # noqa: BLE001 - keep serving the last good snapshot
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("reloading the served models failed; still serving the previous set")
                return False
            self.error = None
            old, self._snapshot = self._snapshot, new
            self.reloads += 1
        if old is None or _served_keys(old) != _served_keys(new):
            log.info("serving %s", ", ".join(f"{m.label} v{m.version}" for m in new.models.values()) or "nothing")
        if self.on_change is not None:
            try:
                self.on_change(new)
            except Exception:  # noqa: BLE001 - a side effect must not stop serving
                log.exception("on_change hook failed")
        return True

    def start(self) -> "ServedModels":
        """Load now (errors are recorded, not raised: the server stays up and says why) and watch."""
        self.refresh(force=True)
        if self.source == WAREHOUSE and self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="va-model-watcher", daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def describe(self) -> dict:
        snap = self._snapshot
        data = snap.describe() if snap else {"source": self.source, "models": [], "skipped": []}
        ok, reason = self.ready()
        data.update({
            "ready": ok, "reason": reason, "error": self.error,
            "hot_reload": {"enabled": self.source == WAREHOUSE, "interval_s": self.interval,
                           "checked_at": datetime.fromtimestamp(self.checked_at, timezone.utc).isoformat()
                           if self.checked_at else None, "reloads": self.reloads},
        })
        return data


def _served_keys(snapshot: ServedSet) -> set[tuple[str, int]]:
    return {(m.label, m.version) for m in snapshot.models.values()}
