"""approval_sensor and the served_models asset, after real training and approvals."""
from __future__ import annotations

import dagster as dg
import polars as pl
import pytest

from va_assets.definitions import job_def
from va_assets.sensors import approval_sensor
from va_core.labels import record_events
from va_core.registry import approve, retire
from va_core.train import train_label
from va_core.warehouse import Warehouse


WARM = ("red", "orange", "yellow")


@pytest.fixture
def trained(ingested_home, ingested_truth):
    """A model of a label even the tiny random encoder separates: warm background colours."""
    wh = Warehouse.from_settings(ingested_home)
    pos = ingested_truth.filter(pl.col("colour").is_in(WARM))["clip_key"].sort().to_list()
    neg = ingested_truth.filter(~pl.col("colour").is_in(WARM))["clip_key"].sort().to_list()
    record_events(wh, [("warm", k, True) for k in pos[:10]] + [("warm", k, False) for k in neg[:14]],
                  annotator="ann")
    result = train_label(ingested_home, "warm")
    assert result.checks_passed, result.checks
    return ingested_home, result


def test_approval_changes_request_a_refresh_of_the_served_set(instance, trained, tick):
    settings, model = trained
    version = model.model_version
    # a fresh instance records the served set once (still empty)
    result, cursor = tick(approval_sensor, None)
    assert [r.run_key for r in result.run_requests] == [f"stages@{_stage_version(settings)}"]
    # a new candidate is a stage change that alters nothing served
    record_events(Warehouse.from_settings(settings), [("warm", k, False) for k in _unlabelled(settings, 2)],
                  annotator="ann")
    assert train_label(settings, "warm").created
    result, cursor = tick(approval_sensor, cursor)
    assert result.run_requests == [] and "approved set did not" in result.skip_reason.skip_message

    approve(settings, "warm", version, by="lead")
    result, cursor = tick(approval_sensor, cursor)
    assert [r.run_key for r in result.run_requests] == [f"stages@{_stage_version(settings)}"]

    again, cursor2 = tick(approval_sensor, cursor)
    assert isinstance(again, dg.SkipReason) and cursor2 == cursor

    run = job_def("serving_job").execute_in_process(instance=instance)
    assert run.success
    meta = {k: v.value for k, v in run.get_asset_materialization_events()[0]
            .event_specific_data.materialization.metadata.items()}
    assert meta["n_models"] == 1 and meta["labels"] == ["warm"]
    assert f"| warm | {version} |" in meta["served"]
    checks = run.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("served_models_pass_checks", True)]

    retire(settings, "warm", version, by="lead")
    result, _ = tick(approval_sensor, cursor)
    assert len(result.run_requests) == 1
    run = job_def("serving_job").execute_in_process(instance=instance)
    assert run.get_asset_materialization_events()[0].event_specific_data.materialization.metadata[
        "n_models"].value == 0


def _stage_version(settings) -> int:
    from va_core.warehouse import Warehouse

    wh = Warehouse.from_settings(settings)

    return wh.version("model_stage_events")


def _unlabelled(settings, n: int) -> list[str]:
    from va_core.warehouse import Warehouse

    wh = Warehouse.from_settings(settings)
    labelled = set(wh.read("label_events", columns=["clip_key"])["clip_key"])
    return [k for k in sorted(wh.read("clips", columns=["clip_key"])["clip_key"]) if k not in labelled][:n]
