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
from va_core.warehouse import Warehouse

pytestmark = pytest.mark.server

RETRAIN_S = 180


@pytest.fixture
def dagster_dev(ingested_home, tmp_path):
    env = {"VA_ENCODER": "tiny", "VA_SENSOR_INTERVAL": "1", "VA_CORPUS_DIRS": str(tmp_path / "no-corpus")}
    with devserver.start(ingested_home.home, tmp_path / "dagster-dev.log", env) as server:
        yield ingested_home, server
    with pytest.raises(ProcessLookupError):  # nothing of the server's process group is left
        os.killpg(server.proc.pid, 0)


def test_a_label_written_with_va_label_is_retrained_by_the_daemon(dagster_dev, ingested_truth):
    settings, server = dagster_dev
    wh = Warehouse.from_settings(settings)
    pos = ingested_truth.filter(pl.col("object") == "ball")["clip_key"].sort().to_list()
    neg = ingested_truth.filter(pl.col("object") != "ball")["clip_key"].sort().to_list()
    first = record_events(settings, [("ball", k, True) for k in pos[:4]] + [("ball", k, False) for k in neg[:4]],
                          annotator="ann")

    def model_at(version):
        def find():
            models = wh.read("models", where={"label": "ball"})
            hit = models.filter(pl.col("label_events_version") == version)
            return hit.row(0, named=True) if hit.height else None
        return find

    v1 = server.wait_for(f"model of ball at label_events v{first}", model_at(first), RETRAIN_S)
    assert v1["model_version"] == 1

    labelled = subprocess.run(
        [sys.executable, "-m", "va_core.cli", "label", "ball", pos[4], "--yes", "--annotator", "ann", "--json",
         "--home", str(settings.home)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "VA_HOME": str(settings.home)})
    assert labelled.returncode == 0, labelled.stderr
    second = json.loads(labelled.stdout)["label_events_version"]
    assert second > first

    v2 = server.wait_for(f"model of ball at label_events v{second}", model_at(second), RETRAIN_S)
    assert (v2["model_version"], v2["n_pos"], v2["n_neg"]) == (2, 5, 4)
    # the rest of the run (evaluation, scores, feeds) follows the models row
    def feeds_of_v2():
        feeds = wh.read("feeds", columns=["model_version", "label_events_version"], where={"label": "ball"})
        return set(feeds.iter_rows()) if set(feeds["model_version"]) == {2} else None

    assert server.wait_for("feeds of v2", feeds_of_v2, RETRAIN_S) == {(2, second)}

    # the daemon's runs, as the instance recorded them
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="label_job"))
        keys = {r.tags.get("dagster/run_key"): r.status for r in runs}
    assert keys.get(f"ball@{first}") == dg.DagsterRunStatus.SUCCESS
    assert keys.get(f"ball@{second}") == dg.DagsterRunStatus.SUCCESS
