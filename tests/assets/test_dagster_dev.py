"""End to end: `va dagster` (webserver + daemon) retrains a label after `va label`, with no one
pressing a button. Everything is real: the server processes, the sensor daemon, the run
queue, the Delta tables."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import polars as pl
import pytest

from va_assets import devserver
from va_core.labels import record_events
from va_core.train import train_label
from va_core.warehouse import Warehouse

pytestmark = pytest.mark.server

RETRAIN_S = 180


@pytest.fixture
def ball_home(ingested_home, ingested_truth):
    """A home whose label "ball" has 4 + 4 labels and a model trained on them (v1)."""
    wh = Warehouse.from_settings(ingested_home)
    pos = ingested_truth.filter(pl.col("object") == "ball")["clip_key"].sort().to_list()
    neg = ingested_truth.filter(pl.col("object") != "ball")["clip_key"].sort().to_list()
    first = record_events(wh, [("ball", k, True) for k in pos[:4]] + [("ball", k, False) for k in neg[:4]],
                          annotator="ann")
    assert train_label(ingested_home, "ball").model_version == 1
    return ingested_home, first, pos[4]


@pytest.fixture
def dagster_dev(ball_home, tmp_path):
    settings = ball_home[0]
    env = {"VA_ENCODER": "tiny", "VA_SENSOR_INTERVAL": "1", "VA_CORPUS_DIRS": str(tmp_path / "no-corpus")}
    with devserver.start(settings.home, tmp_path / "dagster-dev.log", env) as server:
        yield server
    with pytest.raises(ProcessLookupError):  # nothing of the server's process group is left
        os.killpg(server.proc.pid, 0)


def test_a_label_written_with_va_label_is_retrained_by_the_daemon(ball_home, dagster_dev):
    settings, first, new_clip = ball_home
    server = dagster_dev
    wh = Warehouse.from_settings(settings)
    labelled = subprocess.run(
        [sys.executable, "-m", "va_cli", "label", "ball", new_clip, "--yes", "--annotator", "ann", "--json",
         "--home", str(settings.home)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "VA_HOME": str(settings.home)})
    assert labelled.returncode == 0, labelled.stderr
    second = json.loads(labelled.stdout)["label_events_version"]
    assert second > first

    def model_at_second():
        models = wh.read("models", where={"label": "ball"})
        hit = models.filter(pl.col("label_events_version") == second)
        return hit.row(0, named=True) if hit.height else None

    v2 = server.wait_for(f"model of ball at label_events v{second}", model_at_second, RETRAIN_S)
    assert (v2["model_version"], v2["n_pos"], v2["n_neg"]) == (2, 5, 4)

    # the rest of the run (evaluation, scores, feeds) follows the models row
    def feeds_of_v2():
        feeds = wh.read("feeds", columns=["model_version", "label_events_version"], where={"label": "ball"})
        return set(feeds.iter_rows()) if set(feeds["model_version"]) == {2} else None

    assert server.wait_for("feeds of v2", feeds_of_v2, RETRAIN_S) == {(2, second)}

    # the daemon's runs, as the instance recorded them: v1 (trained before the server
    # started) was not retrained by the sensor's first tick
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        def finished_runs():
            runs = instance.get_runs(dg.RunsFilter(job_name="label_job"))
            return {r.tags.get("dagster/run_key"): r.status for r in runs} if all(r.is_finished for r in runs) else None

        assert server.wait_for("the run to finish", finished_runs, RETRAIN_S) == {
            f"ball@{second}": dg.DagsterRunStatus.SUCCESS}

        # the catalog shows what was written outside Dagster too: v1 (trained by train_label
        # before the server started) and the videos `va ingest` wrote, by catalog_sensor's ticks
        def catalog():
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(dg.AssetKey("classifier"), asset_partitions=["ball"]), limit=10).records
            versions = sorted(r.asset_materialization.metadata["model_version"].value for r in records)
            videos = instance.get_materialized_partitions(dg.AssetKey("clip_embeddings"))
            return (versions, len(videos)) if versions == [1, 2] and videos else None

        versions, n_videos = server.wait_for("the catalog of v1, v2 and the videos", catalog, RETRAIN_S)
        assert n_videos == wh.read("videos").height
