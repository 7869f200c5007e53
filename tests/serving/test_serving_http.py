"""The model server over HTTP: scores, /models, /classify, health, and every bad request."""
from __future__ import annotations

import concurrent.futures
import urllib.request

import httpx
import numpy as np
import pytest
from bentoml.exceptions import BentoMLException

from .homes import MAX_ROWS, SYNTH_DIM, corpus_scores

pytestmark = pytest.mark.server


def test_scores_equal_va_core_scores(serving_home, client):
    rows = np.arange(0, 400, 7)[:MAX_ROWS]
    answer = client.score(embeddings=serving_home.corpus.matrix[rows], labels=["cat", "dog"])
    assert answer["n"] == len(rows)
    assert set(answer["scores"]) == {"cat", "dog"}
    for label in ("cat", "dog"):
        np.testing.assert_allclose(answer["scores"][label], corpus_scores(serving_home, label, rows), rtol=0, atol=1e-6)
    # and they are the scores `va train` wrote for the corpus
    wh = serving_home.wh
    keys = [serving_home.corpus.keys[i] for i in rows]
    stored = wh.read("clip_scores", where={"label": "cat", "model_version": answer["versions"]["cat"]})
    by_key = dict(zip(stored["clip_key"].to_list(), stored["score"].to_list()))
    np.testing.assert_allclose(answer["scores"]["cat"], [by_key[k] for k in keys], rtol=0, atol=1e-6)
    # the topics are what the labels were taught
    topics = serving_home.corpus.topics[rows]
    assert np.mean(np.array(answer["scores"]["cat"])[topics == 0]) > 0.5 > np.mean(np.array(answer["scores"]["cat"])[topics != 0])


def test_without_labels_every_served_label_of_that_dimension(serving_home, client):
    answer = client.score(embeddings=serving_home.corpus.matrix[:3])
    assert set(answer["scores"]) == {"cat", "dog"}  # warm takes 64-d tiny embeddings
    tiny = np.full((2, 64), 1 / 8, dtype=np.float32)
    assert set(client.score(embeddings=tiny)["scores"]) == {"warm"}
    synth = client.score(embeddings=serving_home.corpus.matrix[:2], encoder_id="synthetic:gaussian-topics")
    assert set(synth["scores"]) == {"cat", "dog"}


def test_concurrent_requests_each_get_their_own_rows(serving_home, server):
    """Requests batched together by the server still get exactly their rows' scores."""
    expected = {label: corpus_scores(serving_home, label, np.arange(400)) for label in ("cat", "dog")}

    def one(i):
        client = server.client()
        rows = np.arange(i * 5, i * 5 + 1 + i % 7)
        labels = ["cat", "dog"] if i % 2 else ["dog"]
        answer = client.score(embeddings=serving_home.corpus.matrix[rows], labels=labels)
        for label in labels:
            np.testing.assert_allclose(answer["scores"][label], expected[label][rows], rtol=0, atol=1e-6)
        return set(answer["scores"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(24)))
    assert results[0] == {"dog"} and results[1] == {"cat", "dog"}
    stats = server.client().models()["batching"]
    assert stats["jobs"] >= 24 and stats["rows"] >= sum(1 + i % 7 for i in range(24))


def test_models_lists_versions_ap_and_lineage(serving_home, client):
    from va_core.registry import approved_models, models_frame

    served = client.models()
    assert served["ready"] is True and served["source"] == "warehouse"
    assert served["hot_reload"]["enabled"] is True
    by_label = {m["label"]: m for m in served["models"]}
    approved = {m.label: m for m in approved_models(serving_home.wh)}
    assert set(by_label) == set(approved)
    rows = {(r["label"], r["model_version"]): r for r in models_frame(serving_home.wh).to_dicts()}
    for label, m in by_label.items():
        a = approved[label]
        row = rows[(label, m["version"])]
        assert m["version"] == a.model_version and m["stage"] == "approved"
        assert m["ap"] == pytest.approx(row["ap"]) and m["n_pos"] == row["n_pos"] and m["n_neg"] == row["n_neg"]
        assert m["label_events_version"] == row["label_events_version"]
        assert m["encoder_id"] == row["encoder_id"] and m["approved_by"] == "tester"
    assert by_label["cat"]["dim"] == SYNTH_DIM and by_label["warm"]["dim"] == 64


def test_health_and_readiness(server, client):
    with urllib.request.urlopen(server.url + "/livez", timeout=5) as r:
        assert r.status == 200
    with urllib.request.urlopen(server.url + "/readyz", timeout=5) as r:
        assert r.status == 200
    ready = client.ready()
    assert ready["ready"] is True and ready["n_models"] >= 3 and ready["reason"].endswith("loaded")


def _status(exc: BentoMLException) -> int:
    return int(exc.error_code)


BAD = {
    "wrong dimension": (dict(embeddings=np.zeros((2, 10), np.float32), labels=["cat"]), 400, "10 dimensions"),
    "wrong dimension, no labels": (dict(embeddings=np.zeros((2, 10), np.float32)), 400, "no served model takes 10-d"),
    "NaN": (dict(embeddings=np.where(np.eye(2, SYNTH_DIM) > 0, np.nan, 0).astype(np.float32)), 400, "NaN or infinite"),
    "inf": (dict(embeddings=np.where(np.eye(2, SYNTH_DIM) > 0, -np.inf, 0).astype(np.float32)), 400, "NaN or infinite"),
    "empty batch": (dict(embeddings=np.zeros((0, SYNTH_DIM), np.float32)), 400, "empty batch"),
    "over the limit": (dict(embeddings=np.zeros((MAX_ROWS + 1, SYNTH_DIM), np.float32)), 413, f"limit of {MAX_ROWS} rows"),
    "unknown label": (dict(embeddings=np.zeros((1, SYNTH_DIM), np.float32), labels=["cat", "zebra"]), 404, "'zebra'"),
    "empty label list": (dict(embeddings=np.zeros((1, SYNTH_DIM), np.float32), labels=[]), 400, "empty list"),
    "one vector, not a batch": (dict(embeddings=np.zeros(SYNTH_DIM, np.float32)), 400, "2-d array"),
    "unknown encoder": (dict(embeddings=np.zeros((1, SYNTH_DIM), np.float32), encoder_id="nope"), 404, "encoder 'nope'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_score_requests_get_4xx_and_the_server_stays_up(serving_home, client, case):
    kwargs, status, words = BAD[case]
    with pytest.raises(BentoMLException) as info:
        client.score(**kwargs)
    assert _status(info.value) == status
    assert words in str(info.value)
    assert client.score(embeddings=serving_home.corpus.matrix[:1], labels=["cat"])["n"] == 1


@pytest.mark.parametrize("body, words", [
    ('{"embeddings": [[1.0, 2.0], [1.0]]}', "embeddings"),  # ragged rows
    ('{"embeddings": [["a", "b"]]}', "embeddings"),
    ('{"embeddings": [[NaN, 1.0]]}', "NaN"),
    ('{"embeddings": "x"}', "embeddings"),
    ("not json", "JSON"),
    ('{"labels": ["cat"]}', "embeddings"),  # missing
])
def test_malformed_bodies_get_400(serving_home, server, client, body, words):
    r = httpx.post(server.url + "/score", content=body, headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 400, r.text
    assert words in r.text
    assert client.score(embeddings=serving_home.corpus.matrix[:1], labels=["dog"])["n"] == 1


def test_classify_gives_the_shots_and_scores_of_va_ingest(serving_home, client):
    """/classify cuts and embeds a file like `va ingest` did: same shots, same scores."""
    from va_core.registry import approved_models
    from va_core.video import video_id_for
    from va_core.warehouse import embedding_matrix

    path = serving_home.videos[0]
    answer = client.classify(video=path)
    [warm] = [m for m in approved_models(serving_home.wh) if m.label == "warm"]
    assert answer["versions"] == {"warm": warm.model_version}
    assert answer["encoder_id"] == warm.encoder_id and answer["video"]["width"] == 320
    wh = serving_home.wh
    vid = video_id_for(path)
    clips = wh.read("clips", where={"video_id": vid}).sort("frame_in")
    assert [s["frame_in"] for s in answer["shots"]] == clips["frame_in"].to_list()
    assert [s["frame_out"] for s in answer["shots"]] == clips["frame_out"].to_list()
    emb = wh.arrow("clip_embeddings", where={"video_id": vid, "encoder_id": warm.encoder_id}).sort_by("clip_key")
    keys = emb.column("clip_key").to_pylist()
    stored = dict(zip(keys, warm.model.score(embedding_matrix(emb.column("embedding")))))
    expected = [stored[f"{vid}|{f}"] for f in clips["frame_in"].to_list()]
    np.testing.assert_allclose([s["scores"]["warm"] for s in answer["shots"]], expected, rtol=0, atol=1e-5)


def test_classify_refuses_a_file_that_is_not_a_video(tmp_path, client, serving_home):
    fake = tmp_path / "holiday.mp4"
    fake.write_text("these are not the frames you are looking for")
    with pytest.raises(BentoMLException) as info:
        client.classify(video=fake)
    assert _status(info.value) == 400
    assert "holiday.mp4" in str(info.value) and "not a readable video" in str(info.value)
    assert "/holiday.mp4" not in str(info.value)  # the server's temporary copy is not named
    with pytest.raises(BentoMLException) as info:
        client.classify(video=serving_home.videos[0], labels=["cat"])  # cat was trained on another encoder
    assert _status(info.value) == 400 and "cat" in str(info.value)
    assert client.ready()["ready"] is True
