"""Writes made outside Dagster reach the catalog: catalog_sensor against a real instance."""
from __future__ import annotations

import dagster as dg

from tests.assets.test_label_assets import ball_events, run_label
from va_assets.partitions import LABELS, VIDEOS
from va_assets.sensors import catalog_sensor
from va_core.labels import login_name, record_events
from va_core.registry import retire
from va_core.train import train_label
from va_core.warehouse import Warehouse


def latest(instance, asset: str, partition: str | None = None) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(dg.AssetKey(asset), asset_partitions=[partition] if partition else None), limit=10)
    return [{k: v.value for k, v in r.asset_materialization.metadata.items()} for r in records.records]


def test_versions_videos_and_clusters_written_outside_dagster_are_materialised(
        instance, ingested_home, ingested_truth, tick):
    wh = Warehouse.from_settings(ingested_home)
    v1 = record_events(wh, ball_events(ingested_truth, "ball", 8, 12), annotator="ann")
    first = train_label(ingested_home, "ball")  # what `va train` and the app's Build do

    result, cursor = tick(catalog_sensor, None)
    video_ids = set(wh.read("videos")["video_id"])
    assert len(video_ids) == 16
    for asset in ("videos", "clips", "clip_embeddings"):
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == video_ids
    assert set(instance.get_dynamic_partitions(VIDEOS)) == video_ids
    assert "ball" in instance.get_dynamic_partitions(LABELS)
    [model] = latest(instance, "classifier", "ball")
    assert (model["model_version"], model["label_events_version"], model["encoder_id"]) == (
        1, v1, wh.read("models")["encoder_id"][0])
    assert model["written_by"] == login_name() and model["delta_version"] is not None
    assert model["threshold"] != 0.5
    [feeds] = latest(instance, "feeds", "ball")
    assert feeds["model_version"] == 1 and feeds["dagster/row_count"] == wh.count("feeds")
    [label_set] = latest(instance, "label_set", "ball")
    assert (label_set["label_events_version"], label_set["n_pos"], label_set["n_neg"]) == (v1, 8, 12)
    [evaluation] = latest(instance, "evaluation", "ball")
    assert evaluation["ap"] == first.ap
    [clusters] = latest(instance, "clip_clusters")
    assert clusters["delta_version"] == wh.version("clip_clusters")

    # nothing new: nothing reported twice
    result, cursor = tick(catalog_sensor, cursor)
    assert not result.asset_events

    # a version trained by a run is reported by the run only; one trained by va_core again is reported
    v2 = record_events(wh, ball_events(ingested_truth, "ball", 2, 2, skip=8), annotator="ann")
    assert run_label(instance, "ball", v2).success
    v3 = record_events(wh, ball_events(ingested_truth, "ball", 1, 1, skip=10), annotator="ann")
    assert train_label(ingested_home, "ball").model_version == 3
    result, cursor = tick(catalog_sensor, cursor)
    reported = {(e.asset_key.to_user_string(), e.metadata["model_version"].value) for e in result.asset_events
                if "model_version" in e.metadata}
    assert reported == {("classifier", 3), ("evaluation", 3), ("clip_scores", 3), ("feeds", 3)}
    versions = [m["model_version"] for m in latest(instance, "classifier", "ball")]
    assert versions == [3, 2, 1]  # newest first: each version once
    assert latest(instance, "classifier", "ball")[0]["label_events_version"] == v3

    # stage changes (made with `va approve` or the app, never by a run) are observations of the version
    retire(ingested_home, "ball", 1, by="carol", reason="superseded")
    result, cursor = tick(catalog_sensor, cursor)
    [observation] = result.asset_events
    assert isinstance(observation, dg.AssetObservation) and observation.partition == "ball"
    meta = {k: v.value for k, v in observation.metadata.items()}
    assert (meta["model_version"], meta["stage"], meta["changed_by"], meta["label_events_version"]) == (
        1, "retired", "carol", v1)
    assert not tick(catalog_sensor, cursor)[0].asset_events


def test_videos_written_by_the_dataset_importer_are_materialised(instance, home, tmp_path, tick):
    from va_core.config import Settings
    from tests.support.va_dataset import FixtureLabel, make_va_dataset
    from va_core.experiments.importer import ENCODER_ID, import_dataset

    make_va_dataset(tmp_path / "released", n_clips=120, dim=8, labels=(FixtureLabel("action", 0.2, agg_size=30),),
                    cmp_size=20, seed=1)
    settings = Settings.from_env()
    import_dataset(settings, tmp_path / "released", progress=False)
    wh = Warehouse.from_settings(settings)
    result, cursor = tick(catalog_sensor, None)
    video_ids = set(wh.read("videos")["video_id"])
    assert instance.get_materialized_partitions(dg.AssetKey("clip_embeddings")) == video_ids
    n_clips = {r.asset_materialization.partition: r.asset_materialization.metadata["dagster/row_count"].value
               for r in instance.fetch_materializations(dg.AssetKey("clip_embeddings"), limit=1000).records}
    assert sum(n_clips.values()) == 120
    [clusters] = latest(instance, "clip_clusters")  # the importer stores the dataset's own clusters
    assert clusters["encoders"] == {ENCODER_ID: {"clips": 120}}
    assert not tick(catalog_sensor, cursor)[0].asset_events
