"""The Dagster code location of va: `dagster dev -m va_assets.definitions` (or `va dagster`).

    corpus:        videos, clips, clip_embeddings (partition = video) -> clip_clusters
    label_models:  label_set -> classifier -> evaluation -> clip_scores -> feeds (partition = label)
    serving:       served_models (the approved version of every label)

Sensors retrain a label when its events change, ingest new video files, and refresh the
served set when an approval changes it. All IO goes through ``va_core.warehouse``.
"""
from __future__ import annotations

import dagster as dg

from va_assets.assets.corpus import clip_clusters, video_assets
from va_assets.assets.labels import label_assets
from va_assets.assets.serving import served_models
from va_assets.checks import (beats_random_baseline, embedding_consistent, no_conflicting_labels,
                              served_models_pass_checks)
from va_assets.executors import default_executor
from va_assets.jobs import corpus_job, label_job, serving_job
from va_assets.metadata import definition_metadata
from va_assets.resources import VAResource
from va_assets.sensors import approval_sensor, catalog_sensor, corpus_sensor, interval, label_events_sensor

# Tables people (and the approval step) write outside Dagster: shown as the sources of the graph.
sources = [
    dg.AssetSpec("label_events", group_name="sources", kinds={"delta"},
                 description="Append-only log of every label given in the app, with `va label` or "
                             "`va import-labels`. label_events_sensor watches its Delta version.",
                 metadata=definition_metadata("label_events")),
    dg.AssetSpec("model_stage_events", group_name="sources", kinds={"delta"},
                 description="Append-only history of model stage changes (`va approve`, the app). "
                             "approval_sensor watches it.",
                 metadata=definition_metadata("model_stage_events")),
]

clusters_automation = dg.AutomationConditionSensorDefinition(
    "clusters_automation",
    target=dg.AssetSelection.assets(clip_clusters),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=interval("corpus_sensor"),
    description="Recomputes clip_clusters once new embeddings have landed and no ingestion is running.",
)

defs = dg.Definitions(
    assets=[*sources, video_assets, clip_clusters, *label_assets, served_models],
    asset_checks=[no_conflicting_labels, embedding_consistent, beats_random_baseline, served_models_pass_checks],
    jobs=[label_job, corpus_job, serving_job],
    sensors=[label_events_sensor, corpus_sensor, approval_sensor, catalog_sensor, clusters_automation],
    resources={"va": VAResource()},
    executor=default_executor(),
)


def job_def(name: str) -> dg.JobDefinition:
    """A job of these definitions, resolved (what a run of it executes)."""
    return defs.resolve_job_def(name)


def reconstructable_job(name: str):
    """A job that can cross process boundaries: what ``dg.execute_job`` needs for the
    multiprocess executor, whose step processes rebuild the job from this module."""
    return dg.build_reconstructable_job("va_assets.definitions", "job_def", reconstructable_args=(name,))
