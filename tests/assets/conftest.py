"""Fixtures for the Dagster tests: a real (temporary, persistent) Dagster instance."""
from __future__ import annotations

import dagster as dg
import pytest

from va_assets.resources import VAResource


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def va_resource() -> VAResource:
    """The resource as the definitions configure it: the va home from the environment
    (VA_HOME, set by the ``home`` or ``ingested_home`` fixture)."""
    return VAResource()


def evaluate_tick(sensor, instance, cursor, va_resource):
    """Evaluate one sensor tick the way the daemon does: returns (result, new cursor).

    Asset events the tick returns are recorded and the dynamic partitions it asks for are
    added to the instance, as the daemon does.
    """
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"va": va_resource})
    result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return result, cursor
    for event in result.asset_events or []:
        instance.report_runless_asset_event(event)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result, result.cursor if result.cursor is not None else cursor


@pytest.fixture
def tick(instance, va_resource):
    """``tick(sensor, cursor) -> (result, cursor)`` on the test's instance."""
    return lambda sensor, cursor: evaluate_tick(sensor, instance, cursor, va_resource)
