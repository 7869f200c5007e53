"""Corpus assets: one video's rows (videos, clips, clip_embeddings) per dynamic partition,
and the corpus clusters the diversity score counts over.

A video is ingested by ``va_core.ingest.ingest_video`` in one step that writes all three
tables (one decoding pass yields the shots and their frames), so the three assets are one
multi-asset: a new video is embedded alone, and several videos embed in parallel runs.
"""

import dagster as dg

from va_assets import tags
from va_assets.metadata import definition_metadata, table_metadata
from va_assets.partitions import video_partitions
from va_assets.resources import VAResource

GROUP = "corpus"
EMBEDDING_DIM_CHECK = "embedding_dimension_consistent"


def video_uri(context, wh, video_id: str) -> str:
    """The file of a video partition: the sensor's tag, else where ingestion last found it."""
    from va_core.video import video_id_for

    uri = context.run.tags.get(tags.VIDEO_URI)
    if uri is None:
        known = wh.read("videos", columns=["uri"], where={"video_id": video_id})
        if known.height == 0:
            raise dg.Failure(f"video partition {video_id!r} has no known file: the corpus sensor adds "
                             f"partitions with their file; `va ingest PATH` ingests a file directly")
        uri = known["uri"][0]
    if video_id_for(uri) != video_id:
        raise dg.Failure(f"{uri} has video id {video_id_for(uri)!r}, not the partition's {video_id!r}")
    return uri


@dg.multi_asset(
    specs=[
        dg.AssetSpec("videos", group_name=GROUP, kinds={"delta"},
                     description="One row per video file: probe results, size, content hash, status "
                                 "(ok/failed) and error. Partition = video id.",
                     metadata=definition_metadata("videos")),
        dg.AssetSpec("clips", group_name=GROUP, kinds={"delta"}, deps=["videos"],
                     description="The video's shots (between two cuts). Key {video_id}|{frame_in}.",
                     metadata=definition_metadata("clips")),
        dg.AssetSpec("clip_embeddings", group_name=GROUP, kinds={"delta", "pytorch"}, deps=["clips"],
                     description="CLIP image embedding of each clip: sampled frames (1 fps, 1..12) "
                                 "encoded, mean-pooled, L2-normalised.",
                     metadata=definition_metadata("clip_embeddings")),
    ],
    check_specs=[dg.AssetCheckSpec(
        EMBEDDING_DIM_CHECK, asset="clip_embeddings", blocking=True,
        description="Every clip of the video has one embedding of the current encoder, of the dimension "
                    "the rest of the corpus has for that encoder.")],
    partitions_def=video_partitions,
    can_subset=False,
)
def video_assets(context: dg.AssetExecutionContext, va: VAResource):
    from va_core.ingest import FAILED, TABLES, ingest_video

    settings = va.settings()
    wh = va.warehouse()
    video_id = context.partition_key
    uri = video_uri(context, wh, video_id)
    before = wh.versions(TABLES)
    outcome = ingest_video(settings, uri)
    after = wh.versions(TABLES)
    common = {"video_id": outcome.video_id, "uri": uri, "action": outcome.action,
              "fingerprint": _fingerprint(wh, video_id)}
    yield dg.MaterializeResult(asset_key="videos", metadata=table_metadata(
        wh, "videos", after["videos"], read={"videos": before["videos"]}, **common,
        status="failed" if outcome.action == FAILED else "ok", error=outcome.error,
        n_decoded_frames=outcome.n_decoded))
    if outcome.action == FAILED:
        raise dg.Failure(f"{uri} could not be ingested: {outcome.error}",
                         metadata={"uri": uri, "error": outcome.error or ""})
    clips = wh.read("clips", columns=["clip_key"], where={"video_id": video_id})
    yield dg.MaterializeResult(asset_key="clips", metadata=table_metadata(
        wh, "clips", after["clips"], rows=clips.height, read={"videos": after["videos"]}, **common))
    check, facts = embedding_check(wh, video_id, clips["clip_key"].to_list(), settings.encoder)
    yield dg.MaterializeResult(asset_key="clip_embeddings", metadata=table_metadata(
        wh, "clip_embeddings", after["clip_embeddings"], rows=facts["n_embeddings"],
        read={"clips": after["clips"]}, **common, n_sampled_frames=outcome.n_frames,
        encoder_id=facts["encoder_id"], dim=facts["dim"]))
    yield check


def _fingerprint(wh, video_id: str) -> str | None:
    """The write this run made, as the catalog sensor recognises it (it skips writes a run reported)."""
    from va_assets.catalog import fingerprint

    rows = wh.read("videos", columns=["content_hash", "ingested_at"], where={"video_id": video_id})
    return fingerprint(rows.row(0, named=True)) if rows.height else None


def embedding_check(wh, video_id: str, clip_keys: list[str], encoder_spec: str) -> tuple[dg.AssetCheckResult, dict]:
    import polars as pl

    from va_core.encoders import parse_spec
    from va_core.warehouse import WarehouseError, embedding_matrix

    encoder_id = parse_spec(encoder_spec).encoder_id
    table = wh.arrow("clip_embeddings", columns=["clip_key", "embedding"],
                     where={"video_id": video_id, "encoder_id": encoder_id})
    problems = []
    try:
        dim = embedding_matrix(table.column("embedding")).shape[1] if table.num_rows else 0
    except WarehouseError as exc:
        dim = -1
        problems.append(str(exc))
    keys = table.column("clip_key").to_pylist()
    if sorted(keys) != sorted(clip_keys):
        problems.append(f"{len(keys)} embeddings for {len(clip_keys)} clips "
                        f"({len(set(clip_keys) - set(keys))} clips without one, {len(keys) - len(set(keys))} duplicates)")
    other = (wh.scan("clip_embeddings").filter((pl.col("encoder_id") == encoder_id) & (pl.col("video_id") != video_id))
             .select(pl.col("embedding").list.len()).head(1).collect())
    corpus_dim = int(other.item()) if other.height else dim
    if dim >= 0 and dim != corpus_dim:
        problems.append(f"{dim}-d embeddings where the rest of the corpus has {corpus_dim}-d for {encoder_id}")
    facts = {"encoder_id": encoder_id, "dim": dim, "corpus_dim": corpus_dim, "n_embeddings": len(keys)}
    return dg.AssetCheckResult(
        asset_key="clip_embeddings", check_name=EMBEDDING_DIM_CHECK, passed=not problems,
        description="; ".join(problems) or f"{len(keys)} clips, {dim}-d {encoder_id}", metadata=facts,
    ), facts


@dg.asset(
    group_name=GROUP,
    deps=["clip_embeddings"],
    # Eager, except that a video that failed to ingest (its partition missing) must not hold
    # the clusters of every other video back.
    automation_condition=dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing()),
    description="k-means (K=10) cluster of every clip, per encoder: what the data diversity score of a "
                "label counts over. Recomputed when the embeddings changed.",
    metadata=definition_metadata("clip_clusters"),
    kinds={"delta", "scikitlearn"},
)
def clip_clusters(context: dg.AssetExecutionContext, va: VAResource) -> dg.MaterializeResult:
    import numpy as np

    from va_core.clusters import refresh_clusters
    from va_core.embeddings import encoder_ids, load_corpus

    wh = va.warehouse()
    read = wh.version("clip_embeddings")
    per_encoder = {}
    total = 0
    for encoder_id in encoder_ids(wh):
        corpus = load_corpus(wh, encoder_id)
        clusters, recomputed = refresh_clusters(wh, corpus)
        sizes = np.bincount(clusters, minlength=int(clusters.max()) + 1 if len(clusters) else 0)
        per_encoder[encoder_id] = {"clips": len(corpus), "recomputed": recomputed,
                                   "cluster_sizes": sizes.tolist()}
        total += len(corpus)
        context.log.info(f"{encoder_id}: {len(corpus)} clips, clusters "
                         f"{'recomputed' if recomputed else 'up to date'}: {sizes.tolist()}")
    return dg.MaterializeResult(metadata=table_metadata(
        wh, "clip_clusters", wh.version("clip_clusters"), rows=total, read={"clip_embeddings": read},
        encoders=per_encoder))
