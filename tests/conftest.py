"""Fixtures shared by every test package: an isolated va home per test."""
from __future__ import annotations

import pytest

from va_core.config import Settings
from va_core.warehouse import Warehouse


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh VA_HOME with the tiny encoder; nothing leaks between tests."""
    root = tmp_path / "va-home"
    monkeypatch.setenv("VA_HOME", str(root))
    monkeypatch.setenv("VA_ENCODER", "tiny")
    monkeypatch.delenv("VA_WAREHOUSE_URI", raising=False)
    monkeypatch.delenv("VA_STORAGE_OPTIONS", raising=False)
    return root


@pytest.fixture
def settings(home) -> Settings:
    return Settings.from_env()


@pytest.fixture
def wh(settings) -> Warehouse:
    return Warehouse.from_settings(settings)


# -- the generated sample corpus and a home built from it ---------------------------------
# Contract (other test packages rely on it; keep it stable):
#   sample_corpus_dir  session-scoped Path of a generated corpus (SAMPLE_VIDEOS videos, seed 0):
#                      sample_NNN.mp4 files plus ground_truth.csv (one row per drawn shot:
#                      video, shot, frame_in, frame_out, start_s, end_s, colour, object,
#                      motion). Read-only: never write into it (copy it if you must).
#   ingested_home      function-scoped Settings of a FRESH COPY of a home in which that corpus
#                      was ingested with the `tiny` encoder (VA_HOME and VA_ENCODER=tiny are
#                      set with monkeypatch; VA_WAREHOUSE_URI / VA_STORAGE_OPTIONS removed).
#                      Tables videos, clips, clip_embeddings exist; write freely.
#   ingested_truth     session-scoped polars DataFrame: clip_key, video, shot, colour,
#                      object, motion, truth_overlap for every ingested clip (clip keys are
#                      the same in every copy, since video ids follow the corpus files).
SAMPLE_VIDEOS = 16


@pytest.fixture(scope="session")
def sample_corpus_dir(tmp_path_factory):
    from va_core.sample_corpus import generate

    return generate(tmp_path_factory.mktemp("sample-corpus"), n_videos=SAMPLE_VIDEOS, seed=0).dir


@pytest.fixture(scope="session")
def _ingested_home_template(sample_corpus_dir, tmp_path_factory):
    from va_core.ingest import ingest

    root = tmp_path_factory.mktemp("ingested-home-template") / "va-home"
    template = Settings(home=root, warehouse_uri=str(root / "warehouse"), encoder="tiny")
    report = ingest(template, [sample_corpus_dir], progress=False)
    assert report.count("failed") == 0, report.summary()
    return root


@pytest.fixture(scope="session")
def ingested_truth(_ingested_home_template, sample_corpus_dir):
    from va_core.sample_corpus import truth_for_clips

    wh = Warehouse(str(_ingested_home_template / "warehouse"))
    return truth_for_clips(sample_corpus_dir, wh.read("clips"))


@pytest.fixture
def ingested_home(_ingested_home_template, tmp_path, monkeypatch) -> Settings:
    import shutil

    root = tmp_path / "va-home"
    shutil.copytree(_ingested_home_template, root)
    monkeypatch.setenv("VA_HOME", str(root))
    monkeypatch.setenv("VA_ENCODER", "tiny")
    monkeypatch.delenv("VA_WAREHOUSE_URI", raising=False)
    monkeypatch.delenv("VA_STORAGE_OPTIONS", raising=False)
    return Settings.from_env()
