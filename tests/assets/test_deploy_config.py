"""The definitions load (`dagster definitions validate`), locally and with the Kubernetes
executor, and both instance configs (local template, docs' Kubernetes example) are valid."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def test_definitions_validate_locally_and_with_the_k8s_executor(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VA_", "DAGSTER_"))}
    # one DAGSTER_HOME each: two processes creating one SQLite run storage at once race
    for executor in ("multiprocess", "k8s"):
        (tmp_path / executor).mkdir()
    procs = {
        executor: subprocess.Popen([DAGSTER, "definitions", "validate", "-m", "va_assets.definitions"], cwd=ROOT,
                                   env={**env, "VA_EXECUTOR": executor, "DAGSTER_HOME": str(tmp_path / executor)},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for executor in ("multiprocess", "k8s")
    }
    for executor, proc in procs.items():
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"{executor}:\n{out}"
        assert "Validation successful" in out


def test_unknown_executor_is_refused(monkeypatch):
    from va_assets.executors import default_executor

    monkeypatch.setenv("VA_EXECUTOR", "celery")
    with pytest.raises(ValueError, match="VA_EXECUTOR='celery': choose one of multiprocess, k8s"):
        default_executor()


def test_local_instance_template_sets_the_queue_and_the_per_label_limit(tmp_path):
    from va_assets.dev import ensure_instance_config

    path = ensure_instance_config(tmp_path)
    path.write_text(path.read_text())  # a user's copy is kept as is on the next start
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        coordinator = instance.run_coordinator
        assert coordinator.dequeue_interval_seconds == 1
        config = instance.get_concurrency_config().run_queue_config
        assert config.max_concurrent_runs == 4
        assert config.tag_concurrency_limits == [
            {"key": "va/label", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    custom = "telemetry:\n  enabled: false\n"
    path.write_text(custom)
    ensure_instance_config(tmp_path)
    assert path.read_text() == custom


def test_kubernetes_instance_example_is_valid(monkeypatch):
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.config import dagster_instance_config
    from dagster_k8s import K8sRunLauncher
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, name.lower())
    config, custom_class = dagster_instance_config(str(ROOT / "docs"), "dagster.k8s.yaml")
    assert custom_class is None
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s.launcher", "K8sRunLauncher")
    checked = process_config(resolve_to_config_type(K8sRunLauncher.config_type()), launcher["config"])
    assert checked.success, checked.errors
    for storage in (PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage):
        checked = process_config(resolve_to_config_type(storage.config_type()), config["storage"]["postgres"])
        assert checked.success, checked.errors
        assert checked.value["postgres_db"]["hostname"] == "dagster_pg_host"
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": "va/label", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
