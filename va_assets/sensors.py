"""Sensors: new labels retrain their label, new videos get ingested, approvals reach serving.

Every cursor is a Delta table version (or a fingerprint of files), so a tick compares
one number before it reads anything, and a run key ties each run to the exact version
that triggered it: the daemon never launches the same request twice.
"""

import json
import os

import dagster as dg

from va_assets import tags
from va_assets.changes import labels_changed_since, labels_needing_models, video_files, videos_to_ingest
from va_assets.jobs import corpus_job, label_job, serving_job
from va_assets.partitions import LABELS, VIDEOS, label_partitions, video_partitions
from va_assets.resources import VAResource

INTERVAL_ENV = "VA_SENSOR_INTERVAL"
# The daemon visits sensors every 5 s at best, so shorter intervals do not help.
DEFAULT_INTERVALS = {"label_events_sensor": 15, "corpus_sensor": 60, "approval_sensor": 15, "catalog_sensor": 15}

LABEL_EVENTS_VERSION_TAG = tags.LABEL_EVENTS_VERSION
LABEL_TAG = tags.LABEL
VIDEO_URI_TAG = tags.VIDEO_URI


def interval(name: str) -> int:
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVALS[name]
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{INTERVAL_ENV} must be a whole number of seconds, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{INTERVAL_ENV} must be at least 1 second, got {value}")
    return value


def _sensor(name: str, job, description: str):
    """A sensor that runs by default, every ``interval(name)`` seconds."""
    return dg.sensor(name=name, job=job, minimum_interval_seconds=interval(name),
                     default_status=dg.DefaultSensorStatus.RUNNING, description=description)


def label_run_request(label: str, version: int) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"{label}@{version}",
        partition_key=label,
        tags={LABEL_EVENTS_VERSION_TAG: str(version), LABEL_TAG: label},
    )


@_sensor("label_events_sensor", label_job,
         "New label events -> one retraining run per changed label (run key label@version).")
def label_events_sensor(context: dg.SensorEvaluationContext, va: VAResource):
    wh = va.warehouse()
    current = wh.version("label_events")
    if current is None:
        return dg.SkipReason("no label_events table yet")
    cursor = int(context.cursor) if context.cursor else None
    if cursor is not None and current <= cursor:
        return dg.SkipReason(f"label_events unchanged at version {current}")
    if cursor is None:
        changes = labels_needing_models(wh, current)
    else:
        changes = labels_changed_since(wh, cursor, current)
    if changes.invalid:
        context.log.warning(f"label_events holds invalid label names, not trained: {list(changes.invalid)[:5]}")
    known = set(context.instance.get_dynamic_partitions(LABELS))
    new = [lab for lab in changes.labels if lab not in known]
    if not changes.labels:
        return dg.SensorResult(
            skip_reason=f"label_events {cursor} -> {current}: no label needs a new model",
            cursor=str(current),
        )
    shown = ", ".join(changes.labels[:20]) + (f" and {len(changes.labels) - 20} more" if len(changes.labels) > 20 else "")
    context.log.info(f"label_events {cursor} -> {current}: retraining {shown}")
    return dg.SensorResult(
        run_requests=[label_run_request(lab, current) for lab in changes.labels],
        dynamic_partitions_requests=[label_partitions.build_add_request(new)] if new else [],
        cursor=str(current),
    )


def _approval_state(wh) -> tuple[int | None, str]:
    """The stage log's version and a fingerprint of what should be served."""
    from va_core.registry import approved_models

    version = wh.version("model_stage_events")
    served = sorted((m["label"], int(m["model_version"])) for m in _as_rows(approved_models(wh)))
    return version, json.dumps(served)


def _as_rows(models) -> list[dict]:
    if hasattr(models, "to_dicts"):
        return models.to_dicts()
    return [m if isinstance(m, dict) else vars(m) for m in models]


@_sensor("approval_sensor", serving_job,
         "A model's stage changed and the approved set differs -> refresh served_models.")
def approval_sensor(context: dg.SensorEvaluationContext, va: VAResource):
    wh = va.warehouse()
    previous = json.loads(context.cursor) if context.cursor else {"version": None, "served": None}
    version = wh.version("model_stage_events")
    if version is None:
        return dg.SkipReason("no model stage changes yet")
    if version == previous["version"]:
        return dg.SkipReason(f"model_stage_events unchanged at version {version}")
    version, served = _approval_state(wh)
    cursor = json.dumps({"version": version, "served": served})
    if served == previous["served"]:
        return dg.SensorResult(skip_reason="stages changed but the approved set did not", cursor=cursor)
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"stages@{version}")], cursor=cursor)


@_sensor("corpus_sensor", corpus_job,
         "New or changed video files under the corpus folders -> one ingestion run per video.")
def corpus_sensor(context: dg.SensorEvaluationContext, va: VAResource):
    folders = va.corpus_folders()
    files, problems = video_files(folders)
    for problem in problems[:5]:
        context.log.warning(problem)
    seen = json.loads(context.cursor) if context.cursor else None
    todo = videos_to_ingest(va.warehouse(), files, seen, va.settings().encoder)
    cursor = json.dumps({f.video_id: f.stamp for f in files}, sort_keys=True)
    if not todo:
        where = ", ".join(str(f) for f in folders)
        return dg.SensorResult(skip_reason=f"no new or changed videos in {where}", cursor=cursor)
    known = set(context.instance.get_dynamic_partitions(VIDEOS))
    new = sorted({f.video_id for f in todo} - known)
    context.log.info(f"{len(todo)} video(s) to ingest ({len(new)} new)")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"{f.video_id}@{f.stamp}", partition_key=f.video_id,
                                    tags={VIDEO_URI_TAG: f.uri}) for f in todo],
        dynamic_partitions_requests=[video_partitions.build_add_request(new)] if new else [],
        cursor=cursor,
    )


@dg.sensor(name="catalog_sensor", minimum_interval_seconds=interval("catalog_sensor"),
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Writes made outside Dagster (the app's Build, `va train`, `va ingest`, the dataset "
                       "importer) -> materialisations of their partitions, with the same lineage metadata.")
def catalog_sensor(context: dg.SensorEvaluationContext, va: VAResource):
    from va_assets.catalog import catalog_events

    found = catalog_events(va.warehouse(), context.instance, json.loads(context.cursor) if context.cursor else None)
    cursor = json.dumps(found.cursor, sort_keys=True)
    if not found.events:
        return dg.SensorResult(skip_reason="no write outside Dagster since the last tick", cursor=cursor)
    partitions = {LABELS: label_partitions, VIDEOS: video_partitions}
    context.log.info(f"{len(found.events)} materialisation(s) of writes made outside Dagster")
    return dg.SensorResult(
        asset_events=found.events, cursor=cursor,
        dynamic_partitions_requests=[partitions[name].build_add_request(keys)
                                     for name, keys in found.partitions.items()],
    )
