"""Corpus assets and the corpus sensor: real video files, real Delta tables, a real instance."""
from __future__ import annotations

import json
import os
import shutil

import dagster as dg
import pytest

from va_assets.definitions import defs, job_def, reconstructable_job
from va_assets.partitions import VIDEOS
from va_assets.sensors import corpus_sensor
from va_assets.tags import VIDEO_URI
from va_core.config import Settings
from va_core.video import video_id_for
from va_core.warehouse import Warehouse


@pytest.fixture
def corpus_dir(tmp_path, sample_corpus_dir, monkeypatch):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("sample_000.mp4", "sample_001.mp4"):
        shutil.copy2(sample_corpus_dir / name, folder / name)
    monkeypatch.setenv("VA_CORPUS_DIRS", str(folder))
    return folder


def test_corpus_sensor_requests_new_and_changed_files(instance, home, corpus_dir, tick):
    ids = {video_id_for(corpus_dir / n): str(corpus_dir / n) for n in ("sample_000.mp4", "sample_001.mp4")}
    result, cursor = tick(corpus_sensor, None)
    assert {r.partition_key: r.tags[VIDEO_URI] for r in result.run_requests} == ids
    assert sorted(instance.get_dynamic_partitions(VIDEOS)) == sorted(ids)

    again, cursor = tick(corpus_sensor, cursor)
    assert again.run_requests == [] and "no new or changed videos" in again.skip_reason.skip_message

    touched = corpus_dir / "sample_000.mp4"
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    shutil.copy2(corpus_dir / "sample_001.mp4", corpus_dir / "copy.mp4")
    result, cursor = tick(corpus_sensor, cursor)
    requested = {r.partition_key for r in result.run_requests}
    assert requested == {video_id_for(touched), video_id_for(corpus_dir / "copy.mp4")}
    first_key = next(r.run_key for r in result.run_requests if r.partition_key == video_id_for(touched))
    assert first_key.endswith(str(st.st_mtime_ns + 10**9))
    assert len(instance.get_dynamic_partitions(VIDEOS)) == 3


def test_first_tick_skips_videos_already_ingested(instance, ingested_home, sample_corpus_dir, monkeypatch, tick):
    monkeypatch.setenv("VA_CORPUS_DIRS", str(sample_corpus_dir))
    result, cursor = tick(corpus_sensor, None)
    assert result.run_requests == []
    assert len(json.loads(cursor)) == Warehouse.from_settings(ingested_home).count("videos")


def test_corpus_job_runs_each_video_partition_through_the_multiprocess_executor(instance, home, corpus_dir, tick):
    result, _ = tick(corpus_sensor, None)
    assert len(result.run_requests) == 2
    outcomes = {}
    for request in result.run_requests:
        with dg.execute_job(reconstructable_job("corpus_job"), instance=instance,
                            tags={**request.tags, "dagster/partition": request.partition_key}) as run:
            outcomes[request.partition_key] = (run.success, run.run_id)
    assert all(ok for ok, _ in outcomes.values())

    wh = Warehouse.from_settings(Settings.from_env())
    videos = wh.read("videos")
    assert sorted(videos["video_id"]) == sorted(outcomes) and set(videos["status"]) == {"ok"}
    clips = wh.read("clips", columns=["clip_key", "video_id"])
    embeddings = wh.read("clip_embeddings", columns=["clip_key"], where={"encoder_id": "tiny:vit-w64-l2-p8-i64-d64:random-seed0"})
    assert set(clips["video_id"]) == set(outcomes) and sorted(clips["clip_key"]) == sorted(embeddings["clip_key"])

    for video_id, (_, run_id) in outcomes.items():
        records = instance.all_logs(run_id)
        steps = [r for r in records if r.dagster_event and r.dagster_event.event_type == dg.DagsterEventType.STEP_START]
        assert steps and all(r.dagster_event.pid != os.getpid() for r in steps)  # each step ran in its own process
        materialised = {r.dagster_event.asset_key.to_user_string() for r in records
                        if r.dagster_event and r.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION}
        assert materialised == {"videos", "clips", "clip_embeddings"}
        checks = [r.dagster_event.event_specific_data for r in records if r.dagster_event
                  and r.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
        assert [(c.check_name, c.passed) for c in checks] == [("embedding_dimension_consistent", True)]

    clusters = defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance, asset_selection=[dg.AssetKey("clip_clusters")])
    assert clusters.success
    # one cluster per clip for each embedding: the CLIP encoder's and camera motion's
    per_encoder = wh.read("clip_clusters").group_by("encoder_id").len()
    assert sorted(per_encoder["encoder_id"]) == ["motion-v1", "tiny:vit-w64-l2-p8-i64-d64:random-seed0"]
    assert per_encoder["len"].to_list() == [clips.height] * 2


def test_a_video_that_cannot_be_read_fails_its_run_and_is_recorded(instance, home, tmp_path, monkeypatch):
    bad = tmp_path / "corpus" / "broken.mp4"
    bad.parent.mkdir()
    bad.write_bytes(b"this is not a video")
    video_id = video_id_for(bad)
    instance.add_dynamic_partitions(VIDEOS, [video_id])
    run = job_def("corpus_job").execute_in_process(instance=instance, partition_key=video_id,
                                                   tags={VIDEO_URI: str(bad)}, raise_on_error=False)
    assert not run.success
    failure = next(e for e in run.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "broken.mp4 could not be ingested" in failure.event_specific_data.error.message
    wh = Warehouse(str(home / "warehouse"))
    row = wh.read("videos").row(0, named=True)
    assert (row["video_id"], row["status"]) == (video_id, "failed") and row["error"]
    assert wh.count("clips") == 0


def test_a_partition_without_a_known_file_says_so(instance, home):
    instance.add_dynamic_partitions(VIDEOS, ["ghost-0123456789"])
    run = job_def("corpus_job").execute_in_process(instance=instance, partition_key="ghost-0123456789",
                                                   raise_on_error=False)
    assert not run.success
    failure = next(e for e in run.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "has no known file" in failure.event_specific_data.error.message
