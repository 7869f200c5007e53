"""Jobs the sensors launch: one label's model chain, one video's ingestion, the served set."""
from __future__ import annotations

import dagster as dg

from va_assets.executors import choice, default_executor, label_executor
from va_assets.partitions import label_partitions, video_partitions

LABEL_ASSETS = ("label_set", "classifier", "evaluation", "clip_scores", "feeds")
VIDEO_ASSETS = ("videos", "clips", "clip_embeddings")
SERVING_ASSETS = ("served_models",)

# A label's steps run one after the other in seconds, so by default they share the run's
# process: a process per step would cost more than the steps (benchmarks/sensor_latency.py).
# Run config {"execution": {"config": {"multiprocess": {}}}} switches a run to a process per step.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}

label_job = dg.define_asset_job(
    "label_job",
    selection=dg.AssetSelection.assets(*LABEL_ASSETS),
    partitions_def=label_partitions,
    executor_def=label_executor(),
    config=IN_PROCESS if choice() != "k8s" else None,
    description="Retrain one label: label set -> classifier -> evaluation -> clip scores -> feeds.",
)

corpus_job = dg.define_asset_job(
    "corpus_job",
    selection=dg.AssetSelection.assets(*VIDEO_ASSETS),
    partitions_def=video_partitions,
    executor_def=default_executor(),
    description="Ingest one video: probe, shots, clip embeddings. Runs of different videos go in parallel.",
)

serving_job = dg.define_asset_job(
    "serving_job",
    selection=dg.AssetSelection.assets(*SERVING_ASSETS),
    executor_def=default_executor(),
    description="Refresh the set of approved models the model server loads.",
)
