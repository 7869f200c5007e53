"""label_events_sensor against a real instance and real Delta tables."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import dagster as dg

from va_assets.partitions import LABELS
from va_assets.sensors import LABEL_EVENTS_VERSION_TAG, label_events_sensor


def write_events(wh, *pairs):
    now = datetime.now(timezone.utc)
    return wh.append("label_events", [
        {"event_id": uuid.uuid4().hex, "label": label, "clip_key": key, "value": value,
         "annotator": "ann", "source": "test", "created_at": now}
        for label, key, value in pairs
    ])


def requested(result):
    return sorted((r.partition_key, r.run_key, r.tags[LABEL_EVENTS_VERSION_TAG]) for r in result.run_requests)


def test_no_table_skips_without_cursor(instance, wh, tick):
    result, cursor = tick(label_events_sensor, None)
    assert isinstance(result, dg.SkipReason)
    assert cursor is None


def test_ticks_request_exactly_the_changed_labels(instance, wh, tick):
    v1 = write_events(wh, ("cat", "v|0", True), ("dog", "v|0", False), ("cat", "v|48", False))
    result, cursor = tick(label_events_sensor, None)
    assert requested(result) == [("cat", f"cat@{v1}", str(v1)), ("dog", f"dog@{v1}", str(v1))]
    assert cursor == str(v1)
    assert sorted(instance.get_dynamic_partitions(LABELS)) == ["cat", "dog"]

    again, cursor2 = tick(label_events_sensor, cursor)
    assert isinstance(again, dg.SkipReason)
    assert cursor2 == cursor

    write_events(wh, ("dog", "v|96", True))
    v3 = write_events(wh, ("bird", "v|0", True))
    result, cursor3 = tick(label_events_sensor, cursor2)
    assert requested(result) == [("bird", f"bird@{v3}", str(v3)), ("dog", f"dog@{v3}", str(v3))]
    assert cursor3 == str(v3)
    assert sorted(instance.get_dynamic_partitions(LABELS)) == ["bird", "cat", "dog"]
    added = [k for r in result.dynamic_partitions_requests for k in r.partition_keys]
    assert added == ["bird"]


def test_first_tick_trains_only_labels_without_a_current_model(instance, wh, tick):
    v1 = write_events(wh, ("cat", "v|0", True), ("dog", "v|0", True), ("owl", "v|0", True))
    wh.append("models", [
        {"label": "cat", "model_version": 1, "stage": "candidate", "label_events_version": v1},
        {"label": "dog", "model_version": 1, "stage": "candidate", "label_events_version": v1},
    ])
    v2 = write_events(wh, ("dog", "v|48", False))
    result, cursor = tick(label_events_sensor, None)
    # cat's model saw all of cat's events; dog changed after its model; owl never had one
    assert [r.partition_key for r in result.run_requests] == ["dog", "owl"]
    assert {r.run_key for r in result.run_requests} == {f"dog@{v2}", f"owl@{v2}"}
    assert cursor == str(v2)


def test_invalid_label_names_in_the_log_are_not_requested(instance, wh, tick):
    v = write_events(wh, ("Bad Name", "v|0", True), ("ok", "v|0", True))
    result, _ = tick(label_events_sensor, None)
    assert [r.run_key for r in result.run_requests] == [f"ok@{v}"]
    assert instance.get_dynamic_partitions(LABELS) == ["ok"]


def test_run_keys_never_repeat_for_the_same_version(instance, wh, tick):
    v1 = write_events(wh, ("cat", "v|0", True))
    first, cursor = tick(label_events_sensor, None)
    # A tick replayed from an older cursor (e.g. a failed cursor update) asks for the same keys,
    # which the daemon deduplicates by run key.
    v2 = write_events(wh, ("cat", "v|48", True))
    second, _ = tick(label_events_sensor, str(v1))
    replay, _ = tick(label_events_sensor, str(v1))
    assert [r.run_key for r in first.run_requests] == [f"cat@{v1}"]
    assert [r.run_key for r in second.run_requests] == [r.run_key for r in replay.run_requests] == [f"cat@{v2}"]
