"""End to end: `va dagster` (webserver + daemon) retrains a label after `va label`, with no one
pressing a button. Everything is real: the server processes, the sensor daemon, the run
queue, the Delta tables."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from va_core.labels import record_events
from va_core.warehouse import Warehouse

pytestmark = pytest.mark.server

STARTUP_S = 180
RETRAIN_S = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, condition, timeout: float, proc: subprocess.Popen, log: Path, every: float = 0.5):
    """Poll ``condition`` until it returns something truthy; fail with the server log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`va dagster` exited with {proc.returncode} while waiting for {what}:\n"
                        + log.read_text()[-4000:])
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"no {what} within {timeout:.0f} s; server log:\n" + log.read_text()[-4000:])


def stop(proc: subprocess.Popen) -> None:
    """Stop `dagster dev` and everything it started (its process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the group's children (code server, daemon, runs) go too
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)


def server_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def dagster_dev(ingested_home, tmp_path):
    port = free_port()
    log = tmp_path / "dagster-dev.log"
    env = {**os.environ, "VA_HOME": str(ingested_home.home), "VA_ENCODER": "tiny", "VA_SENSOR_INTERVAL": "1",
           "VA_CORPUS_DIRS": str(tmp_path / "no-corpus")}
    env.pop("DAGSTER_HOME", None)
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "va_core.cli", "dagster", "--home", str(ingested_home.home),
                                 "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_for("webserver", lambda: server_up(port), STARTUP_S, proc, log)
        yield ingested_home, proc, log
    finally:
        stop(proc)


def test_a_label_written_with_va_label_is_retrained_by_the_daemon(dagster_dev, ingested_truth):
    settings, proc, log = dagster_dev
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

    v1 = wait_for(f"model of ball at label_events v{first}", model_at(first), RETRAIN_S, proc, log)
    assert v1["model_version"] == 1

    labelled = subprocess.run(
        [sys.executable, "-m", "va_core.cli", "label", "ball", pos[4], "--yes", "--annotator", "ann", "--json",
         "--home", str(settings.home)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "VA_HOME": str(settings.home)})
    assert labelled.returncode == 0, labelled.stderr
    second = json.loads(labelled.stdout)["label_events_version"]
    assert second > first

    v2 = wait_for(f"model of ball at label_events v{second}", model_at(second), RETRAIN_S, proc, log)
    assert (v2["model_version"], v2["n_pos"], v2["n_neg"]) == (2, 5, 4)
    # the rest of the run (evaluation, scores, feeds) follows the models row
    def feeds_of_v2():
        feeds = wh.read("feeds", columns=["model_version", "label_events_version"], where={"label": "ball"})
        return set(feeds.iter_rows()) if set(feeds["model_version"]) == {2} else None

    assert wait_for("feeds of v2", feeds_of_v2, RETRAIN_S, proc, log) == {(2, second)}

    # the daemon's runs, as the instance recorded them
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="label_job"))
        keys = {r.tags.get("dagster/run_key"): r.status for r in runs}
    assert keys.get(f"ball@{first}") == dg.DagsterRunStatus.SUCCESS
    assert keys.get(f"ball@{second}") == dg.DagsterRunStatus.SUCCESS
