"""Ingestion over real generated videos and deliberately broken files."""
from __future__ import annotations

import numpy as np
import polars as pl

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
    emb = wh.arrow("clip_embeddings")
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
