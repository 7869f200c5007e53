"""Writes made outside Dagster, as events of the Dagster catalog.

The app's Build and ``va train`` write model versions (and the label sets and clusters they
imply), ``va ingest`` and the dataset importer write videos: Dagster would show none of it.
``catalog_events`` compares the warehouse with the sensor's cursor and returns one
materialisation per write no run of this instance reports, carrying the metadata the
asset itself would report (``label_events_version``, table versions, encoder), so the
lineage of every version is visible whoever made it. Plain functions of a warehouse and
an instance: the sensor only hands the events to the daemon.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import dagster as dg
import polars as pl

from va_assets.metadata import as_metadata
from va_assets.partitions import LABELS, VIDEOS
from va_core.errors import InputError
from va_core.labels import validate_label
from va_core.warehouse import Warehouse

OUTSIDE = "outside Dagster"
# Video ids as ingestion (slugged file stem + hash) and the importer (YouTube ids) make them;
# a row written around va_core with anything else is not made a partition.
_VIDEO_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_RUN_NOTE = re.compile(r"trained by run ([0-9a-f-]{36}) ")
_ACTIVE = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
           dg.DagsterRunStatus.STARTED]


def run_note(run_id: str, label_events_version: int | None) -> str:
    """The stage note of a version a run trained: how the catalog tells it from others."""
    return f"trained by run {run_id} at label_events v{label_events_version}"


@dataclass
class CatalogEvents:
    events: list = field(default_factory=list)  # AssetMaterialization, in the order of the writes
    partitions: dict[str, list[str]] = field(default_factory=dict)  # partitions def -> keys to add
    cursor: dict = field(default_factory=dict)

    def add_partition(self, name: str, key: str) -> None:
        keys = self.partitions.setdefault(name, [])
        if key not in keys:
            keys.append(key)


def catalog_events(wh: Warehouse, instance: dg.DagsterInstance, cursor: dict | None) -> CatalogEvents:
    cursor = cursor or {}
    out = CatalogEvents(cursor=dict(cursor))
    _model_versions(wh, instance, cursor, out)
    _stage_changes(wh, cursor, out)
    _videos(wh, instance, cursor, out)
    _clusters(wh, instance, cursor, out)
    new = {}
    for name, keys in out.partitions.items():  # only the partitions the instance lacks
        known = set(instance.get_dynamic_partitions(name))
        if missing := [k for k in keys if k not in known]:
            new[name] = missing
    out.partitions = new
    return out


# -- model versions (and the label sets they were trained on) -----------------------------

def _model_versions(wh: Warehouse, instance, cursor: dict, out: CatalogEvents) -> None:
    from va_assets.assets.labels import label_set_metadata, model_metadata, stored_version
    from va_core.checks import parse_report
    from va_core.train import build_label_set

    current = wh.version("models")
    if current is None or current == cursor.get("models_version"):
        return
    seen: dict[str, int] = dict(cursor.get("models", {}))
    models = wh.read("models", columns=["label", "model_version"], version=current)
    new = sorted((lab, int(v)) for lab, v in models.iter_rows() if int(v) > seen.get(lab, 0))
    newest = dict(models.group_by("label").agg(pl.col("model_version").max()).iter_rows())
    trained_by = _candidate_events(wh)
    for label, version in new:
        seen[label] = max(seen.get(label, 0), version)
        try:
            validate_label(label)
        except InputError:  # written around va_core: not a valid partition key
            continue
        who, reason = trained_by.get((label, version), (None, ""))
        run = _RUN_NOTE.search(reason or "")
        if run and instance.get_run_by_id(run.group(1)) is not None:
            continue  # that run reports its own materialisations
        row, ev, scores, feeds = stored_version(wh, label, version, latest=version == newest[label])
        written = {"models": current, "evaluations": wh.version("evaluations"),
                   "clip_scores": wh.version("clip_scores"), "feeds": wh.version("feeds")}
        meta = model_metadata(wh, row, ev, parse_report(row.get("checks_report")), scores, feeds, written, True)
        origin = {"written_by": who or "unknown", "via": reason or OUTSIDE}
        ls = build_label_set(wh, label, version=row["label_events_version"], write=False)
        stored = wh.read("label_sets", columns=["label_events_version"], where={"label": label})
        ls_written = wh.version("label_sets") if stored.height and \
            int(stored["label_events_version"][0]) == row["label_events_version"] else None
        out.events.append(dg.AssetMaterialization(
            "label_set", partition=label, metadata={**label_set_metadata(wh, ls, ls_written), **origin},
            description=f"label set of {label} v{version}, stored {OUTSIDE}"))
        for key in ("classifier", "evaluation", "clip_scores", "feeds"):
            if key in meta:
                out.events.append(dg.AssetMaterialization(
                    key, partition=label, metadata={**meta[key], **origin},
                    description=f"{label} v{version}, trained {OUTSIDE} by {who or 'unknown'}"))
        out.add_partition(LABELS, label)
    out.cursor["models"] = seen
    out.cursor["models_version"] = current


def _stage_changes(wh: Warehouse, cursor: dict, out: CatalogEvents) -> None:
    """Approvals and retirements (always made outside Dagster) as observations of the version's
    classifier partition, so its page tells which version is served, since when and by whom."""
    current = wh.version("model_stage_events")
    if current is None or current == cursor.get("stages_version"):
        return
    since = cursor.get("stages_at_us")
    rows = wh.read("model_stage_events", version=current).filter(pl.col("stage") != "candidate")
    if since is not None:
        rows = rows.filter(pl.col("changed_at").dt.epoch("us") > since)
    rows = rows.sort("changed_at")
    lineage = {}
    if rows.height and wh.version("models") is not None:
        models = wh.read("models", columns=["label", "model_version", "label_events_version", "encoder_id"])
        lineage = {(lab, int(v)): (lev, enc) for lab, v, lev, enc in models.iter_rows()}
    for r in rows.iter_rows(named=True):
        try:
            validate_label(r["label"])
        except InputError:
            continue
        lev, encoder_id = lineage.get((r["label"], int(r["model_version"])), (None, None))
        out.events.append(dg.AssetObservation("classifier", partition=r["label"], metadata={k: as_metadata(v) for k, v in {
            "model_version": int(r["model_version"]), "stage": r["stage"], "previous_stage": r["previous_stage"],
            "changed_by": r["changed_by"], "reason": r["reason"], "changed_at": r["changed_at"].isoformat(),
            "label_events_version": lev, "encoder_id": encoder_id}.items()}, description=f"{r['label']} v{r['model_version']} {r['stage']} by {r['changed_by']}"))
        out.add_partition(LABELS, r["label"])
    if rows.height:
        out.cursor["stages_at_us"] = int(rows.select(pl.col("changed_at").dt.epoch("us").max()).item())
    out.cursor["stages_version"] = current


def _candidate_events(wh: Warehouse) -> dict[tuple[str, int], tuple[str, str]]:
    if wh.version("model_stage_events") is None:
        return {}
    rows = wh.read("model_stage_events", columns=["label", "model_version", "stage", "changed_by", "reason"],
                   where={"stage": "candidate"})
    return {(lab, int(v)): (who, reason) for lab, v, _, who, reason in rows.iter_rows()}


# -- videos (and their clips and embeddings) ----------------------------------------------

def fingerprint(row: dict) -> str:
    """One video row's write: a re-ingested file gets a new one."""
    at = row["ingested_at"]
    return f"{row['content_hash']}@{at.isoformat() if at is not None else ''}"


def _videos(wh: Warehouse, instance, cursor: dict, out: CatalogEvents) -> None:
    from va_assets.metadata import table_metadata

    current = wh.version("videos")
    if current is None or current == cursor.get("videos_version"):
        return
    seen: dict[str, str] = dict(cursor.get("videos", {}))
    rows = wh.read("videos", columns=["video_id", "uri", "status", "error", "content_hash", "ingested_at",
                                      "n_clips"], version=current).to_dicts()
    changed = [r for r in rows if seen.get(r["video_id"]) != fingerprint(r)]
    if not changed:
        out.cursor["videos_version"] = current
        return
    running = _active_partitions(instance, "corpus_job")
    materialised = instance.get_materialized_partitions(dg.AssetKey("videos"))
    clips = _counts(wh, "clips", ["video_id"])
    embeddings = _counts(wh, "clip_embeddings", ["video_id", "encoder_id"])
    versions = wh.versions(["videos", "clips", "clip_embeddings"])
    pending = False
    for r in changed:
        vid, fp = r["video_id"], fingerprint(r)
        if not isinstance(vid, str) or not _VIDEO_ID.fullmatch(vid):
            continue
        if vid in running:
            pending = True  # the run reports it; look again once it is over
            continue
        seen[vid] = fp
        if vid in materialised and _latest_meta(instance, "videos", vid).get("fingerprint") == fp:
            continue  # a run of this instance reported this very write
        origin = {"written_by": OUTSIDE, "fingerprint": fp, "video_id": vid, "uri": r["uri"]}
        out.events.append(dg.AssetMaterialization("videos", partition=vid, metadata={
            **table_metadata(wh, "videos", versions["videos"]), **origin, "status": r["status"],
            "error": r["error"]}))
        if r["status"] != "failed":  # the importer's rows (no_video) have clips and embeddings too
            out.events.append(dg.AssetMaterialization("clips", partition=vid, metadata={
                **table_metadata(wh, "clips", versions["clips"], rows=clips.get((vid,), 0)), **origin}))
            for (e_vid, encoder_id), n in embeddings.items():
                if e_vid == vid:
                    out.events.append(dg.AssetMaterialization("clip_embeddings", partition=vid, metadata={
                        **table_metadata(wh, "clip_embeddings", versions["clip_embeddings"], rows=n,
                                         encoder_id=encoder_id), **origin}))
        out.add_partition(VIDEOS, vid)
    out.cursor["videos"] = seen
    if not pending:
        out.cursor["videos_version"] = current


def _counts(wh: Warehouse, table: str, by: list[str]) -> dict[tuple, int]:
    if wh.version(table) is None:
        return {}
    frame = wh.scan(table).group_by(by).agg(pl.len()).collect()
    return {tuple(row[:-1]): int(row[-1]) for row in frame.iter_rows()}


# -- clusters -----------------------------------------------------------------------------

def _clusters(wh: Warehouse, instance, cursor: dict, out: CatalogEvents) -> None:
    from va_assets.metadata import table_metadata

    current = wh.version("clip_clusters")
    if current is None or current == cursor.get("clusters_version"):
        return
    if _latest_meta(instance, "clip_clusters").get("delta_version") == current:
        out.cursor["clusters_version"] = current
        return
    if _active_runs(instance, "clip_clusters"):
        return  # a run is computing them and reports its own write
    per_encoder = (wh.scan("clip_clusters").group_by("encoder_id")
                   .agg(pl.len().alias("clips"), pl.col("embeddings_version").max()).collect())
    total = int(per_encoder["clips"].sum()) if per_encoder.height else 0
    read = per_encoder["embeddings_version"].max() if per_encoder.height else None
    out.events.append(dg.AssetMaterialization("clip_clusters", metadata={
        **table_metadata(wh, "clip_clusters", current, rows=total, read={"clip_embeddings": read},
                         encoders={e: {"clips": int(n)} for e, n, _ in per_encoder.iter_rows()}),
        "written_by": OUTSIDE}))
    out.cursor["clusters_version"] = current


# -- what the instance already knows ------------------------------------------------------

def _latest_meta(instance, asset: str, partition: str | None = None) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(dg.AssetKey(asset), asset_partitions=[partition] if partition else None), limit=1)
    if not records.records:
        return {}
    m = records.records[0].asset_materialization
    return {k: v.value for k, v in m.metadata.items()} if m else {}


def _active_partitions(instance, job_name: str) -> set[str]:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=_ACTIVE))
    return {r.tags.get("dagster/partition") for r in runs} - {None}


def _active_runs(instance, asset: str) -> bool:
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_ACTIVE)):
        if run.asset_selection and dg.AssetKey(asset) in run.asset_selection:
            return True
    return False
