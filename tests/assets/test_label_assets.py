"""The per-label assets, materialised on a real Dagster instance over an ingested sample corpus."""
from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest

from va_assets.definitions import job_def
from va_assets.partitions import LABELS
from va_assets.sensors import label_events_sensor
from va_assets.tags import LABEL_EVENTS_VERSION
from va_core.labels import record_events
from va_core.warehouse import Warehouse


def ball_events(truth: pl.DataFrame, label: str, n_pos: int, n_neg: int, skip: int = 0) -> list[tuple]:
    """Label events from the corpus's ground truth: is there a ball in the shot."""
    pos = truth.filter(pl.col("object") == "ball")["clip_key"].sort().to_list()[skip:skip + n_pos]
    neg = truth.filter(pl.col("object") != "ball")["clip_key"].sort().to_list()[skip:skip + n_neg]
    return [(label, k, True) for k in pos] + [(label, k, False) for k in neg]


def run_label(instance, label: str, version: int | None = None, **kwargs):
    if label not in instance.get_dynamic_partitions(LABELS):
        instance.add_dynamic_partitions(LABELS, [label])
    tags = {LABEL_EVENTS_VERSION: str(version)} if version is not None else {}
    return job_def("label_job").execute_in_process(instance=instance, partition_key=label, tags=tags, **kwargs)


def materialisations(result) -> dict[str, dict]:
    out = {}
    for event in result.get_asset_materialization_events():
        m = event.event_specific_data.materialization
        out[m.asset_key.to_user_string()] = {k: v.value for k, v in m.metadata.items()}
    return out


@pytest.fixture
def wh(ingested_home) -> Warehouse:
    wh = Warehouse.from_settings(ingested_home)
    return wh


def test_label_job_writes_every_table_with_lineage(instance, ingested_home, ingested_truth, wh):
    version = record_events(wh, ball_events(ingested_truth, "ball", 8, 12), annotator="ann")
    result = run_label(instance, "ball", version)
    assert result.success
    meta = materialisations(result)
    assert sorted(meta) == ["classifier", "clip_scores", "evaluation", "feeds", "label_set"]

    models = wh.read("models", where={"label": "ball"})
    assert models.select("model_version", "label_events_version", "stage", "n_pos", "n_neg").rows() == [
        (1, version, "candidate", 8, 12)]
    assert set(wh.read("label_sets", where={"label": "ball"})["label_events_version"]) == {version}
    evaluation = wh.read("evaluations", where={"label": "ball"}).row(0, named=True)
    assert evaluation["model_version"] == 1 and evaluation["label_events_version"] == version
    assert evaluation["ap_mean"] == pytest.approx(models["labelled_ap"][0])
    assert models["ap"][0] is None and evaluation["ap_method"] == "no_audit_labels"  # no audit draw labelled
    n_clips = wh.count("clips")
    scores = wh.read("clip_scores", where={"label": "ball"})
    assert scores.height == n_clips and set(scores["model_version"]) == {1}
    feeds = wh.read("feeds", where={"label": "ball"})
    labelled = {k for _, k, _ in ball_events(ingested_truth, "ball", 8, 12)}
    assert feeds.height > 0 and not labelled & set(feeds["clip_key"])
    assert set(feeds["label_events_version"]) == {version}

    # what an engineer sees on the asset pages
    assert meta["label_set"]["read/label_events"] == version
    assert meta["label_set"]["n_pos"] == 8 and meta["label_set"]["dagster/row_count"] == 20
    assert meta["classifier"]["model_version"] == 1 and meta["classifier"]["delta_version"] == wh.version("models")
    assert isinstance(meta["evaluation"]["labelled_ap"], float) and isinstance(meta["evaluation"]["diversity"], float)
    assert meta["evaluation"]["labelled_ap"] == pytest.approx(evaluation["ap_mean"])
    assert meta["evaluation"]["ap"] is None and meta["evaluation"]["ap_method"] == "no_audit_labels"
    assert "AP on the corpus: unknown" in meta["evaluation"]["report"]
    assert "beats_random_baseline" in meta["evaluation"]["report"]
    assert meta["clip_scores"]["dagster/row_count"] == n_clips
    assert meta["feeds"]["table_uri"] == wh.table_uri("feeds")

    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert set(checks) == {("classifier", "no_conflicting_labels_in_training"),
                           ("classifier", "embedding_consistent"), ("evaluation", "beats_random_baseline")}
    assert checks[("classifier", "no_conflicting_labels_in_training")]
    assert checks[("classifier", "embedding_consistent")]
    # the Dagster check and the stored check that approval reads agree
    stored = {c["name"]: c["passed"] for c in json.loads(models["checks_report"][0])}
    assert stored["beats_random_baseline"] == checks[("evaluation", "beats_random_baseline")]

    # the instance keeps the lineage per partition
    record = instance.get_latest_materialization_event(dg.AssetKey("classifier"))
    assert record.dagster_event.partition == "ball"


def test_a_run_trains_on_the_version_in_its_tag(instance, ingested_home, ingested_truth, wh):
    first = record_events(wh, ball_events(ingested_truth, "ball", 4, 6), annotator="ann")
    later = record_events(wh, ball_events(ingested_truth, "ball", 3, 3, skip=4), annotator="ann")
    assert later > first
    assert run_label(instance, "ball", first).success
    row = wh.read("models", where={"label": "ball"}).row(0, named=True)
    assert (row["label_events_version"], row["n_pos"], row["n_neg"]) == (first, 4, 6)
    assert run_label(instance, "ball", later).success
    rows = wh.read("models", where={"label": "ball"}).sort("model_version")
    assert rows.select("model_version", "label_events_version", "n_pos").rows() == [(1, first, 4), (2, later, 7)]


def test_conflicting_clips_are_left_out_and_checked(instance, ingested_home, ingested_truth, wh):
    events = ball_events(ingested_truth, "ball", 6, 6)
    record_events(wh, events, annotator="ann")
    # a second annotator disagrees on one positive: a tie, so a conflict
    version = record_events(wh, [("ball", events[0][1], False)], annotator="bob")
    result = run_label(instance, "ball", version)
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["no_conflicting_labels_in_training"].passed
    assert wh.read("models", where={"label": "ball"})["n_pos"].to_list() == [5]
    assert wh.read("label_sets", where={"label": "ball", "clip_key": events[0][1]})["conflict"].to_list() == [True]


def test_too_few_labels_materialise_the_label_set_only(instance, ingested_home, ingested_truth, wh):
    version = record_events(wh, ball_events(ingested_truth, "ball", 1, 2), annotator="ann")
    result = run_label(instance, "ball", version)
    assert result.success
    assert sorted(materialisations(result)) == ["label_set"]
    assert wh.count("models") == 0 and wh.count("feeds") == 0
    skipped = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SKIPPED]
    assert {"classifier_no_conflicting_labels_in_training", "evaluation_beats_random_baseline"} <= set(skipped)


def test_sensor_requests_run_with_the_version_that_triggered_them(instance, ingested_home, ingested_truth, wh, tick):
    v1 = record_events(wh, ball_events(ingested_truth, "ball", 4, 4)
                       + ball_events(ingested_truth, "ball_too", 4, 5), annotator="ann")
    result, cursor = tick(label_events_sensor, None)
    assert sorted(r.run_key for r in result.run_requests) == [f"ball@{v1}", f"ball_too@{v1}"]
    for request in result.run_requests:
        run = job_def("label_job").execute_in_process(instance=instance, partition_key=request.partition_key,
                                                      tags=request.tags)
        assert run.success
    models = wh.read("models").sort("label")
    assert models.select("label", "model_version", "label_events_version").rows() == [
        ("ball", 1, v1), ("ball_too", 1, v1)]

    v2 = record_events(wh, ball_events(ingested_truth, "ball", 2, 2, skip=4), annotator="ann")
    result, cursor = tick(label_events_sensor, cursor)
    assert [r.run_key for r in result.run_requests] == [f"ball@{v2}"]
    run = job_def("label_job").execute_in_process(instance=instance, partition_key="ball",
                                                  tags=result.run_requests[0].tags)
    assert run.success
    models = wh.read("models").sort(["label", "model_version"])
    assert models.select("label", "model_version", "label_events_version").rows() == [
        ("ball", 1, v1), ("ball", 2, v2), ("ball_too", 1, v1)]
    assert set(wh.read("label_sets", where={"label": "ball"})["label_events_version"]) == {v2}
    assert set(wh.read("label_sets", where={"label": "ball_too"})["label_events_version"]) == {v1}
    assert isinstance(tick(label_events_sensor, cursor)[0], dg.SkipReason)


def _version_rows(wh: Warehouse, label: str) -> dict:
    """Everything a model version stored, minus what differs by nature (time, who, ids)."""
    model = wh.read("models", where={"label": label}).row(0, named=True)
    artifact = json.loads(model["artifact"])
    evaluation = wh.read("evaluations", where={"label": label}).drop("label").row(0, named=True)
    return {
        "model": {k: model[k] for k in ("model_version", "label_events_version", "encoder_id", "n_pos", "n_neg",
                                        "ap", "trainer", "checks_passed", "checks_report", "label_set_digest")},
        "artifact": artifact,
        "evaluation": evaluation,
        "label_set": wh.read("label_sets", where={"label": label}).sort("clip_key").rows(),
        "scores": wh.read("clip_scores", where={"label": label}).sort("clip_key").rows(),
        "feeds": wh.read("feeds", where={"label": label}).sort(["feed", "rank"]).rows(),
    }


def test_dagster_and_train_label_give_the_same_version(instance, ingested_home, ingested_truth, wh, tmp_path):
    import shutil

    from va_core.config import Settings
    from va_core.train import train_label

    version = record_events(wh, ball_events(ingested_truth, "ball", 9, 14), annotator="ann")
    twin = tmp_path / "twin-home"  # the same warehouse, trained by va_core instead of a run
    shutil.copytree(ingested_home.home, twin)
    twin_settings = Settings(home=twin, warehouse_uri=str(twin / "warehouse"), encoder="tiny")
    direct = train_label(twin_settings, "ball")
    assert direct.created and direct.label_events_version == version

    result = run_label(instance, "ball", version)
    assert result.success
    dagster_rows, direct_rows = _version_rows(wh, "ball"), _version_rows(Warehouse.from_settings(twin_settings), "ball")
    # the evaluation's threshold, not 0.5, is the model's and places the borderline feed
    assert dagster_rows["artifact"]["threshold"] != 0.5
    assert dagster_rows["artifact"] == direct_rows["artifact"]
    assert dagster_rows == direct_rows
    stage = wh.read("model_stage_events", where={"label": "ball"}).row(0, named=True)
    assert stage["changed_by"] == "dagster" and result.run_id in stage["reason"]
    meta = materialisations(result)
    assert meta["classifier"]["threshold"] == pytest.approx(direct_rows["artifact"]["threshold"])
    assert meta["feeds"]["label_events_version"] == version


def test_a_label_trained_on_motion_keeps_it_and_passes_the_embedding_check(instance, ingested_home,
                                                                             ingested_truth, wh):
    from va_core.train import train_label

    first = ball_events(ingested_truth, "ball", 4, 6)
    record_events(wh, first, annotator="ann")
    assert train_label(ingested_home, "ball", features="motion").encoder_id == "motion-v1"
    version = record_events(wh, ball_events(ingested_truth, "ball", 3, 3, skip=4), annotator="ann")
    result = run_label(instance, "ball", version)
    assert result.success
    latest = wh.read("models", where={"label": "ball"}).sort("model_version").row(-1, named=True)
    assert latest["model_version"] == 2 and latest["encoder_id"] == "motion-v1"
    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks[("classifier", "embedding_consistent")]
