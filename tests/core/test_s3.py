"""The warehouse on s3:// against a local S3 endpoint (moto's server on 127.0.0.1)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from va_core.config import Settings
from va_core.encoders import parse_spec
from va_core.process import free_port
from va_core.warehouse import Warehouse, embedding_matrix

BUCKET = "va-test"



@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server in its own process: delta-rs holds the GIL during its requests, so a
    server thread in this process (ThreadedMotoServer) would never get to answer them."""
    import subprocess
    import sys
    import time
    import urllib.request

    boto3 = pytest.importorskip("boto3")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {url}")
                time.sleep(0.2)
        client = boto3.client("s3", endpoint_url=url, aws_access_key_id="test", aws_secret_access_key="test",
                              region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield url, client
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def s3_settings(s3_endpoint, tmp_path, monkeypatch, request):
    url, _ = s3_endpoint
    options = {
        "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
        # One writer per table in these tests; production S3 needs a locking provider or conditional puts.
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }
    prefix = f"s3://{BUCKET}/{request.node.name}"
    monkeypatch.setenv("VA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VA_WAREHOUSE_URI", prefix)
    monkeypatch.setenv("VA_STORAGE_OPTIONS", json.dumps(options))
    monkeypatch.setenv("VA_ENCODER", "tiny")
    return Settings.from_env()


def test_settings_point_at_the_bucket(s3_settings):
    wh = Warehouse.from_settings(s3_settings)
    assert wh.uri.startswith(f"s3://{BUCKET}/") and not wh.is_local
    assert wh.storage_options["AWS_ALLOW_HTTP"] == "true"


def test_s3_round_trip(s3_settings, s3_endpoint):
    _, client = s3_endpoint
    wh = Warehouse.from_settings(s3_settings)
    now = datetime.now(timezone.utc)
    ev = lambda label, key: {"event_id": f"{label}{key}", "label": label, "clip_key": key, "value": True,  # noqa: E731
                             "annotator": "a", "source": "t", "created_at": now}
    v1 = wh.append("label_events", [ev("cats", "a|0")])
    wh.append("label_events", [ev("cats", "b|0"), ev("dogs", "c|0")])
    assert wh.count("label_events") == 3 and wh.version("label_events") == 2
    assert sorted(wh.changes_since("label_events", v1)["clip_key"].to_list()) == ["b|0", "c|0"]
    assert wh.read("label_events", version=v1)["clip_key"].to_list() == ["a|0"]
    sets = lambda label, keys: pl.DataFrame({"label": [label] * len(keys), "clip_key": keys})  # noqa: E731
    wh.replace("label_sets", {"label": "cats"}, sets("cats", ["a|0", "b|0"]))
    wh.replace("label_sets", {"label": "dogs"}, sets("dogs", ["c|0"]))
    wh.replace("label_sets", {"label": "cats"}, sets("cats", ["z|0"]))
    assert sorted(wh.read("label_sets")["clip_key"].to_list()) == ["c|0", "z|0"]
    assert wh.scan("label_sets").filter(pl.col("label") == "dogs").collect().height == 1
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=wh.uri.split(f"{BUCKET}/")[1])
            .get("Contents", [])]
    assert any("/label_events/_delta_log/" in k for k in keys)
    assert any("/label_sets/label=dogs/" in k for k in keys)


def test_ingest_and_search_with_the_warehouse_on_s3(s3_settings, sample_corpus_dir):
    from va_core.ingest import ingest
    from va_core.search import search_text

    paths = [sample_corpus_dir / "sample_000.mp4", sample_corpus_dir / "sample_001.mp4"]
    report = ingest(s3_settings, paths, progress=False)
    assert report.count("added") == 2
    wh = Warehouse.from_settings(s3_settings)
    emb = wh.arrow("clip_embeddings", where={"encoder_id": parse_spec("tiny").encoder_id})
    assert emb.num_rows == wh.count("clips") == report.n_clips
    np.testing.assert_allclose(np.linalg.norm(embedding_matrix(emb.column("embedding")), axis=1), 1, atol=1e-5)
    results = search_text(s3_settings, "a box", k=3)
    assert results.height == 3 and results["uri"].null_count() == 0
    again = ingest(s3_settings, paths, progress=False)
    assert again.count("unchanged") == 2 and not again.wrote


def test_two_machines_training_one_label_on_s3_never_share_a_version_number(s3_endpoint, tmp_path, monkeypatch,
                                                                               request):
    """Two processes, separate homes and lock folders, one bucket. Safe concurrent commits on S3
    need conditional puts (S3's If-None-Match), never AWS_S3_ALLOW_UNSAFE_RENAME."""
    from loop_corpus import assert_versions_unique_and_complete, make_home, race_trainers, truth_events
    from va_core.labels import record_events
    from va_core.train import train_label

    url, _ = s3_endpoint
    options = json.dumps({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                          "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true", "conditional_put": "etag"})
    env = {"VA_WAREHOUSE_URI": f"s3://{BUCKET}/{request.node.name}", "VA_STORAGE_OPTIONS": options}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings, wh, corpus = make_home(tmp_path / "setup", n=120)
    record_events(wh, truth_events(corpus, "race", 2, range(0, 120, 3)))
    train_label(settings, "race")
    per_process = race_trainers(tmp_path, env, "race", n_each=2)
    assert sorted(v for vs in per_process for v in vs) == [2, 3, 4, 5], per_process
    assert assert_versions_unique_and_complete(wh, "race", 120) == [1, 2, 3, 4, 5]
