"""Approvals reach the running server without a restart, and the model store follows."""
from __future__ import annotations

import time

import numpy as np
import pytest

from .homes import corpus_scores, topic_events, train_and_approve

pytestmark = pytest.mark.server

RELOAD_WAIT_S = 30.0


def _wait_for(client, predicate, what: str):
    deadline = time.monotonic() + RELOAD_WAIT_S
    while time.monotonic() < deadline:
        served = client.models()
        if predicate({m["label"]: m for m in served["models"]}):
            return served
        time.sleep(0.1)
    raise AssertionError(f"the server did not pick up {what} within {RELOAD_WAIT_S}s: {served}")


def test_a_new_approval_is_served_without_restart(serving_home, server, client):
    from va_core.registry import model_history
    from tests.support.synthetic import SYNTHETIC_ENCODER_ID
    from va_serving.store import entries

    pid = server.pid
    before = client.models()
    old = {m["label"]: m["version"] for m in before["models"]}["cat"]
    rows = np.arange(0, 60)
    old_scores = np.array(client.score(embeddings=serving_home.corpus.matrix[rows], labels=["cat"])["scores"]["cat"])

    # more labels for cat -> a new version, approved; and a label the server has never seen
    new = train_and_approve(serving_home.settings, "cat", topic_events(serving_home.corpus, "cat", 0, n=20, offset=25),
                            SYNTHETIC_ENCODER_ID)
    train_and_approve(serving_home.settings, "bird", topic_events(serving_home.corpus, "bird", 2),
                      SYNTHETIC_ENCODER_ID)
    assert new == old + 1

    served = _wait_for(client, lambda m: m["cat"]["version"] == new and "bird" in m, f"cat v{new} and bird")
    by_label = {m["label"]: m for m in served["models"]}
    assert by_label["cat"]["stage"] == "approved" and by_label["cat"]["approved_by"] == "tester"
    assert served["models_table_version"] > before["models_table_version"]
    assert server.pid == pid and server.process.poll() is None  # same process: no restart

    answer = client.score(embeddings=serving_home.corpus.matrix[rows], labels=["cat", "bird"])
    assert answer["versions"]["cat"] == new
    np.testing.assert_allclose(answer["scores"]["cat"], corpus_scores(serving_home, "cat", rows), rtol=0, atol=1e-6)
    np.testing.assert_allclose(answer["scores"]["bird"], corpus_scores(serving_home, "bird", rows), rtol=0, atol=1e-6)
    assert not np.allclose(answer["scores"]["cat"], old_scores, atol=1e-6)

    # the history is kept: the old version was retired, not overwritten
    history = [(e["model_version"], e["stage"]) for e in model_history(serving_home.wh, "cat")]
    assert (old, "approved") in history and (old, "retired") in history and (new, "approved") in history

    # the server mirrors the table into the home's BentoML store: all versions, current stages
    deadline = time.monotonic() + RELOAD_WAIT_S
    while time.monotonic() < deadline:
        stages = {(e.label, e.version): e.stage for e in entries(serving_home.settings)}
        if stages.get(("cat", new)) == "approved" and stages.get(("cat", old)) == "retired":
            break
        time.sleep(0.2)
    assert stages[("cat", old)] == "retired" and stages[("cat", new)] == "approved"
    assert stages[("bird", 1)] == "approved"


def test_retiring_the_only_version_stops_serving_the_label(serving_home, client):
    from va_core.registry import retire

    version = {m["label"]: m["version"] for m in client.models()["models"]}["bird"]
    retire(serving_home.settings, "bird", version, by="tester", reason="not needed")
    _wait_for(client, lambda m: "bird" not in m, "bird's retirement")
    from bentoml.exceptions import BentoMLException

    with pytest.raises(BentoMLException) as info:
        client.score(embeddings=serving_home.corpus.matrix[:2], labels=["bird"])
    assert int(info.value.error_code) == 404
