"""`bentoml build` packs the approved models; a server from the store needs no warehouse; demo's HTTP check."""
from __future__ import annotations

import numpy as np
import pytest

from .homes import make_home

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return make_home(tmp_path_factory.mktemp("bento") / "home", videos=False)


def test_build_packs_the_approved_models_and_the_service(home):
    import yaml

    from va_serving.build import build_bento

    result = build_bento(home.settings)
    assert sorted(result["models"]) == ["va-cat:v1", "va-dog:v1"]
    name, version = result["tag"].split(":")
    bento = home.settings.home / "bentoml" / "bentos" / name / version
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert info["service"] == "va_serving.service:VAService"
    [service] = info["services"]
    assert sorted(m["tag"] for m in service["models"]) == ["va-cat:v1", "va-dog:v1"]
    envs = {e["name"]: e["value"] for e in info["envs"]}
    assert envs == {"VA_SERVING_SOURCE": "store", "VA_ENCODER": "tiny"}
    assert (bento / "src" / "va_serving" / "service.py").exists() and (bento / "src" / "va_core" / "learn.py").exists()


def test_a_server_on_the_store_serves_the_packed_models(home, tmp_path):
    """What a container does: VA_SERVING_SOURCE=store, and the warehouse is nowhere to be found."""
    from va_core.registry import load_model
    from va_serving.client import ServerProcess
    from va_serving.store import sync_models

    sync_models(home.settings)
    env = {"VA_SERVING_SOURCE": "store", "VA_WAREHOUSE_URI": str(tmp_path / "no-warehouse")}
    with ServerProcess(home.settings, extra_env=env) as server:
        client = server.client()
        served = client.models()
        assert served["source"] == "store" and served["hot_reload"]["enabled"] is False
        assert {(m["label"], m["version"], m["store_tag"]) for m in served["models"]} == {
            ("cat", 1, "va-cat:v1"), ("dog", 1, "va-dog:v1")}
        rows = home.corpus.matrix[:20]
        answer = client.score(embeddings=rows)
        np.testing.assert_allclose(answer["scores"]["cat"], load_model(home.wh, "cat").score(rows), rtol=0, atol=1e-6)
    assert not (tmp_path / "no-warehouse").exists()


def test_serve_and_score_scores_a_clip_through_http_and_stops(home):
    from va_core.registry import load_model
    from va_serving.client import serve_and_score

    result = serve_and_score(home.settings)
    first = int(np.argmin(np.array(home.corpus.keys, dtype=object)))
    assert result.clip_key == home.corpus.keys[first]
    for label in ("cat", "dog"):
        expected = load_model(home.wh, label).score(home.corpus.matrix[first:first + 1])[0]
        assert result.scores[label] == pytest.approx(float(expected), abs=1e-6)
    assert result.versions == {"cat": 1, "dog": 1} and result.server is None
    data = result.as_dict()
    assert data["kept"] is False and data["url"].startswith("http://127.0.0.1:")
