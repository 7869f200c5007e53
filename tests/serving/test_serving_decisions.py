"""Decisions: every score comes with its yes/no at the version's threshold, or at the operating point asked for."""
from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from va_core.operating import Request, choose, curve_from_artifact

pytestmark = pytest.mark.server


def _approved_row(home, label):
    from va_core.registry import models_frame

    [row] = [r for r in models_frame(home.wh).to_dicts() if r["label"] == label and r["stage"] == "approved"]
    return row


def test_scores_come_with_decisions_thresholds_and_versions(serving_home, client):
    rows = np.arange(0, 60)
    answer = client.score(embeddings=serving_home.corpus.matrix[rows], labels=["cat", "dog"])
    for label in ("cat", "dog"):
        row = _approved_row(serving_home, label)
        threshold = json.loads(row["artifact"])["threshold"]
        assert answer["versions"][label] == row["model_version"]
        assert answer["thresholds"][label] == pytest.approx(threshold)
        assert answer["operating_points"][label]["kind"] == "model"
        scores = np.array(answer["scores"][label])
        assert answer["decisions"][label] == (scores >= threshold).tolist()
    # the decisions follow what the labels taught: topic 0 is cat
    topics = serving_home.corpus.topics[rows]
    cat = np.array(answer["decisions"]["cat"])
    assert cat[topics == 0].mean() > 0.8 and cat[topics != 0].mean() < 0.2


def test_a_target_precision_is_read_off_the_versions_evaluation(serving_home, client):
    rows = np.arange(0, 64)
    row = _approved_row(serving_home, "dog")
    curve = curve_from_artifact(row["artifact"])
    assert curve is not None and curve.n > 0
    answer = client.score(embeddings=serving_home.corpus.matrix[rows], labels=["dog"], target_precision=0.95)
    point = answer["operating_points"]["dog"]
    expected = choose(Request(target_precision=0.95), 0.5, curve, "dog")
    assert point["kind"] == "precision" and point["target"] == 0.95
    assert point["threshold"] == pytest.approx(expected.threshold) and point["precision"] >= 0.95
    assert point["n_eval"] == curve.n
    assert answer["decisions"]["dog"] == (np.array(answer["scores"]["dog"]) >= point["threshold"]).tolist()
    low = client.score(embeddings=serving_home.corpus.matrix[rows], labels=["dog"], threshold=0.0)
    assert all(low["decisions"]["dog"]) and low["thresholds"]["dog"] == 0.0


@pytest.mark.parametrize("extra, status, words", [
    ({"threshold": 0.2, "target_recall": 0.5}, 400, "one operating point"),
    ({"target_precision": 1.5}, 400, "target_precision must be between 0 and 1"),
    ({"target_precision": "high"}, 400, "target_precision must be a number"),
    ({"target_recall": 0}, 400, "target_recall must be in (0, 1]"),
])
def test_an_operating_point_that_cannot_be_given_is_a_4xx_saying_why(serving_home, server, extra, status, words):
    body = {"embeddings": serving_home.corpus.matrix[:2].tolist(), "labels": ["cat"], **extra}
    r = httpx.post(server.url + "/score", json=body, timeout=10)
    assert r.status_code == status and words in r.json()["error"], r.text


def test_classify_decides_per_shot(serving_home, client):
    answer = client.classify(video=serving_home.videos[1], target_recall=1.0)
    point = answer["operating_points"]["warm"]
    assert point["kind"] == "recall" and point["recall"] == 1.0
    assert answer["video"]["name"] == serving_home.videos[1].name
    for shot in answer["shots"]:
        assert shot["decisions"]["warm"] == (shot["scores"]["warm"] >= answer["thresholds"]["warm"])


def test_get_models_and_the_docs(server, client):
    r = httpx.get(server.url + "/models", timeout=10)
    assert r.status_code == 200
    served = {m["label"]: m for m in r.json()["models"]}
    assert served.keys() == {m["label"] for m in client.models()["models"]}
    assert all(0 <= m["threshold"] <= 1 and m["operating_curve"] for m in served.values())
    docs = httpx.get(server.url + "/docs", timeout=10, follow_redirects=True)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(server.url + "/docs.json", timeout=10).json()
    assert {"/score", "/classify", "/models"} <= set(spec["paths"])


def test_the_gate_knows_every_field_the_service_declares(server):
    """The gate's description of each endpoint is the service's own (BentoML's schema.json)."""
    from va_serving.gate import ENDPOINTS, FILE

    schema = httpx.get(server.url + "/schema.json", timeout=10).json()
    declared = {f"/{api['name']}": api["input"] for api in schema["routes"]}
    for path, endpoint in ENDPOINTS.items():
        fields = declared[path].get("properties", {})
        assert set(fields) == set(endpoint.fields), path
        assert set(declared[path].get("required", [])) == set(endpoint.required), path
        files = {k for k, v in fields.items() if v.get("format") == "binary" or v.get("type") == "file"}
        assert files == {k for k, v in endpoint.fields.items() if v is FILE}, path
