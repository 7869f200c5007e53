"""Ingestion over real generated videos and deliberately broken files."""
from __future__ import annotations

import numpy as np
import polars as pl

from va_core.encoders import parse_spec
from va_core.ingest import ingest
from va_core.sample_corpus import load_truth
from va_core.warehouse import Warehouse, embedding_matrix


def test_ingested_home_holds_one_clip_per_drawn_shot(ingested_home, ingested_truth, sample_corpus_dir):
    wh = Warehouse.from_settings(ingested_home)
    truth = load_truth(sample_corpus_dir)
    clips = wh.read("clips")
    assert clips.height == truth.height
    assert ingested_truth.height == truth.height
    assert ingested_truth["truth_overlap"].min() == 1.0
    videos = wh.read("videos")
    assert videos["status"].unique().to_list() == ["ok"]
    emb = wh.arrow("clip_embeddings", where={"encoder_id": parse_spec("tiny").encoder_id})
    matrix = embedding_matrix(emb.column("embedding"))
    assert matrix.shape == (truth.height, 64)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert set(emb.column("clip_key").to_pylist()) == set(clips["clip_key"].to_list())
    assert (clips["clip_key"] == clips.select(pl.format("{}|{}", "video_id", "frame_in")).to_series()).all()


def test_reingesting_writes_nothing(ingested_home, sample_corpus_dir):
    wh = Warehouse.from_settings(ingested_home)
    before = wh.versions(["videos", "clips", "clip_embeddings"])
    report = ingest(ingested_home, [sample_corpus_dir], progress=False)
    assert report.count("unchanged") == report.count("unchanged") + report.count("added") == len(report.videos)
    assert wh.versions(["videos", "clips", "clip_embeddings"]) == before
    assert not report.wrote


def _ids(wh, table):
    return set(wh.read(table, columns=["video_id"])["video_id"].unique().to_list())


def test_broken_files_become_failed_rows_and_the_others_go_on(settings, broken_dir, broken_reasons):
    report = ingest(settings, [broken_dir], progress=False)
    wh = Warehouse.from_settings(settings)
    videos = wh.read("videos")
    assert videos.height == len(broken_reasons) + 1
    by_name = {row["uri"].rsplit("/", 1)[1]: row for row in videos.to_dicts()}
    assert by_name["good.mp4"]["status"] == "ok" and by_name["good.mp4"]["n_clips"] > 0
    for name, reason in broken_reasons.items():
        row = by_name[name]
        assert row["status"] == "failed" and reason in row["error"], (name, row["error"])
    assert report.count("failed") == len(broken_reasons) and report.count("added") == 1
    assert _ids(wh, "clips") == {by_name["good.mp4"]["video_id"]}
    assert "failed:" in report.summary() and "zero_bytes.mp4: empty file" in report.summary()
    # failed files are not retried while they stay as they are
    before = wh.versions(["videos", "clips", "clip_embeddings"])
    again = ingest(settings, [broken_dir], progress=False)
    assert again.count("unchanged") == len(again.videos) and not again.wrote
    assert wh.versions(["videos", "clips", "clip_embeddings"]) == before


def test_changed_file_replaces_only_its_rows(settings, sample_corpus_dir, tmp_path):
    import shutil

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        shutil.copy(sample_corpus_dir / f"sample_{i:03d}.mp4", corpus / f"v{i}.mp4")
    ingest(settings, [corpus], progress=False)
    wh = Warehouse.from_settings(settings)
    clips_before = wh.read("clips")
    emb_before = wh.read("clip_embeddings")
    vid1 = wh.read("videos").filter(pl.col("uri").str.ends_with("v1.mp4"))["video_id"][0]
    before = wh.versions(["videos", "clips", "clip_embeddings"])

    shutil.copy(sample_corpus_dir / "sample_005.mp4", corpus / "v1.mp4")  # new content, same file
    report = ingest(settings, [corpus], progress=False)
    assert [v.action for v in report.videos if v.video_id == vid1] == ["replaced"]
    assert report.count("unchanged") == 2
    after = wh.versions(["videos", "clips", "clip_embeddings"])
    assert all(after[t] > before[t] for t in after)
    clips_after = wh.read("clips")
    truth = load_truth(sample_corpus_dir).filter(pl.col("video") == "sample_005.mp4")
    mine = clips_after.filter(pl.col("video_id") == vid1)
    assert sorted(mine["frame_in"].to_list()) == truth["frame_in"].to_list()
    others = lambda df: df.filter(pl.col("video_id") != vid1).sort("clip_key")  # noqa: E731
    assert others(clips_after).equals(others(clips_before))
    emb_after = wh.read("clip_embeddings")
    assert others(emb_after).equals(others(emb_before))
    assert set(emb_after["clip_key"]) == set(clips_after["clip_key"])
    assert emb_after.height == emb_after.select("clip_key", "encoder_id").n_unique()
    # the previous contents stay reachable by time travel
    assert wh.read("clips", version=before["clips"]).sort("clip_key").equals(clips_before.sort("clip_key"))


def test_new_file_adds_only_its_rows_and_a_touched_file_writes_nothing(settings, sample_corpus_dir, tmp_path):
    import os
    import shutil

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(sample_corpus_dir / "sample_000.mp4", corpus / "a.mp4")
    ingest(settings, [corpus], progress=False)
    wh = Warehouse.from_settings(settings)
    first = wh.read("clips")
    shutil.copy(sample_corpus_dir / "sample_001.mp4", corpus / "b.mp4")
    report = ingest(settings, [corpus], progress=False)
    assert sorted(v.action for v in report.videos) == ["added", "unchanged"]
    second = wh.read("clips")
    assert second.height == first.height + report.n_clips
    assert second.join(first, on="clip_key", how="semi").sort("clip_key").equals(first.sort("clip_key"))
    st = os.stat(corpus / "a.mp4")
    os.utime(corpus / "a.mp4", ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))
    before = wh.versions(["videos", "clips", "clip_embeddings"])
    again = ingest(settings, [corpus], progress=False)
    assert again.count("unchanged") == 2 and not again.wrote
    assert wh.versions(["videos", "clips", "clip_embeddings"]) == before


def test_failed_file_is_retried_once_it_changes(settings, sample_corpus_dir, tmp_path):
    import shutil

    path = tmp_path / "later.mp4"
    path.write_bytes(b"")
    assert ingest(settings, [path], progress=False).videos[0].action == "failed"
    shutil.copy(sample_corpus_dir / "sample_002.mp4", path)
    outcome = ingest(settings, [path], progress=False).videos[0]
    assert outcome.action == "replaced" and outcome.n_clips > 0
    wh = Warehouse.from_settings(settings)
    assert wh.read("videos")["status"].to_list() == ["ok"]


def test_a_second_encoder_adds_only_embeddings_sampled_like_the_first(ingested_home, tiny_checkpoint,
                                                                      sample_corpus_dir, monkeypatch):
    from va_core.config import Settings
    from va_core.encoders import parse_spec

    spec, _ = tiny_checkpoint
    wh = Warehouse.from_settings(ingested_home)
    before = wh.versions(["videos", "clips", "clip_embeddings"])
    monkeypatch.setenv("VA_ENCODER", spec)
    report = ingest(Settings.from_env(), [sample_corpus_dir], progress=False)
    assert report.count("embedded") == len(report.videos)
    after = wh.versions(["videos", "clips", "clip_embeddings"])
    assert (after["videos"], after["clips"]) == (before["videos"], before["clips"])
    assert after["clip_embeddings"] > before["clip_embeddings"]
    tiny_id, ckpt_id = parse_spec("tiny").encoder_id, parse_spec(spec).encoder_id
    emb = wh.read("clip_embeddings")
    # the CLIP encoders and camera motion (written with the shots): one row per clip each
    assert emb.group_by("encoder_id").len().sort("encoder_id")["len"].to_list() == [wh.count("clips")] * 3
    # same weights, frames found by seeking instead of scanning: the same embeddings
    a = emb.filter(pl.col("encoder_id") == tiny_id).sort("clip_key")
    b = emb.filter(pl.col("encoder_id") == ckpt_id).sort("clip_key")
    ma, mb = (embedding_matrix(pl.Series(x["embedding"]).to_arrow()) for x in (a, b))
    assert a["clip_key"].equals(b["clip_key"])
    np.testing.assert_allclose((ma * mb).sum(axis=1), 1.0, atol=1e-4)
    assert Settings.from_env().encoder == spec  # the home remembers its latest encoder


def test_nothing_to_ingest_is_an_error_and_typos_are_reported(settings, sample_corpus_dir, tmp_path):
    from va_core.errors import InputError
    import pytest

    with pytest.raises(InputError, match="no such file"):
        ingest(settings, [tmp_path / "missing"], progress=False)
    report = ingest(settings, [sample_corpus_dir / "sample_000.mp4", tmp_path / "typo.mp4"], progress=False)
    assert report.count("added") == 1 and report.problems == [f"{tmp_path / 'typo.mp4'}: no such file or folder"]


def test_cli_ingest_json_and_progress(settings, sample_corpus_dir, capsys):
    import json

    from va_cli import main as cli

    code = cli.main(["ingest", str(sample_corpus_dir / "sample_004.mp4"), "--json", "--home", str(settings.home)])
    captured = capsys.readouterr()
    assert code == 0
    data = json.loads(captured.out)
    assert data["counts"]["added"] == 1 and data["n_clips"] > 0
    assert data["versions_after"]["clips"] == 1
    assert "ingesting" in captured.err  # the progress bar is on stderr


CORPUS_KEYS = {"videos": ["video_id"], "clips": ["clip_key"], "clip_embeddings": ["clip_key", "encoder_id"]}

INGESTER = """
import sys, time
from pathlib import Path
from va_core.config import Settings
from va_core.encoders import load_encoder, parse_spec
from va_core.ingest import ingest
go, folder = Path(sys.argv[1]), sys.argv[2]
settings = Settings.from_env(encoder="tiny")
load_encoder(parse_spec("tiny"))  # torch imported before the start line
while not go.exists():
    time.sleep(0.01)
print(ingest(settings, [folder], progress=False, flush_videos=4).count("added"))
"""


def _one_row_per_key(wh):
    for table, key in CORPUS_KEYS.items():
        frame = wh.read(table, columns=key)
        assert frame.height == frame.unique().height, f"{table} has duplicate keys"


def test_two_ingests_of_one_folder_at_once_keep_one_row_per_key(sample_corpus_dir, ingested_home, tmp_path):
    import os
    import subprocess
    import sys
    import time

    home, go = tmp_path / "racing-home", tmp_path / "go"
    env = dict(os.environ, VA_HOME=str(home), VA_ENCODER="tiny")
    env.pop("VA_WAREHOUSE_URI", None)
    procs = [subprocess.Popen([sys.executable, "-c", INGESTER, str(go), str(sample_corpus_dir)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(4)
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=540)
        assert proc.returncode == 0, err
    wh, reference = Warehouse(str(home / "warehouse")), Warehouse.from_settings(ingested_home)
    _one_row_per_key(wh)
    for table in CORPUS_KEYS:  # the same rows one ingest alone writes
        assert wh.count(table) == reference.count(table), table


def test_ingest_repairs_a_home_with_duplicate_rows(ingested_home, sample_corpus_dir):
    wh = Warehouse.from_settings(ingested_home)
    counts = {t: wh.count(t) for t in CORPUS_KEYS}
    for table in CORPUS_KEYS:  # what two racing ingests of an older version left behind
        wh.append(table, wh.arrow(table))
    report = ingest(ingested_home, [sample_corpus_dir], progress=False)
    assert report.repaired == counts and report.count("unchanged") == len(report.videos)
    _one_row_per_key(wh)
    assert {t: wh.count(t) for t in CORPUS_KEYS} == counts
    assert "repaired" in report.summary()
    again = ingest(ingested_home, [sample_corpus_dir], progress=False)
    assert again.repaired == {} and not again.wrote


def test_ingestion_decodes_frames_as_the_encoders_preprocessing_asks(settings, tmp_path, monkeypatch, video_writer):
    """An encoder whose config says squash gets whole squeezed frames, not centre crops."""
    import copy
    from dataclasses import replace

    from va_core import encoders
    from va_core.video import FrameFit, scan

    write_video, _ = video_writer
    frames = []
    for _ in range(48):  # one wide two-second shot whose left eighth is bright
        f = np.full((72, 96), 128, np.uint8)
        f[:48] = 40
        f[:48, :12] = 235
        frames.append(f)
    folder = tmp_path / "wide"
    folder.mkdir()
    path = write_video(folder / "wide.mp4", frames)
    # a copy: load_encoder's instance is shared by every later test in the process
    tiny = copy.copy(encoders.load_encoder(parse_spec("tiny")))
    tiny.preprocess = replace(tiny.preprocess, resize_mode="squash")  # as SigLIP's config says
    assert tiny.frame_fit == FrameFit("squash")
    seen = []
    encode = tiny.encode_images
    tiny.encode_images = lambda batch: (seen.append(np.array(batch)), encode(batch))[1]
    monkeypatch.setattr(encoders, "load_encoder", lambda spec: tiny)
    report = ingest(settings, [folder], progress=False)
    assert report.count("added") == 1
    fed = np.concatenate(seen)
    expected = np.concatenate([s.frames for s in scan(path, tiny.image_size, fit=FrameFit("squash")).shots])
    np.testing.assert_array_equal(fed, expected)
    assert (fed[:, :, :2] > 200).all()  # the bright left edge reached the encoder
