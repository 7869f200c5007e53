"""The serving parts without a server: validation, micro-batching, snapshots, the model store mirror."""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from .homes import SYNTH_DIM, make_home, topic_events, train_and_approve
from va_core.errors import InputError, NotFound
from va_serving.batcher import MicroBatcher
from va_serving.served import (NotReady, ScoreJob, ServedModels, TooLarge, check_embeddings, load_from_warehouse,
                               resolve_labels, score_jobs, served_from_entry)
from va_serving.store import entries, store_name, sync_models


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return make_home(tmp_path_factory.mktemp("parts") / "home", videos=False)


# -- validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, error, words", [
    (np.zeros((0, 8)), InputError, "empty batch"),
    ([], InputError, "empty batch"),
    (np.zeros(8), InputError, "2-d array"),
    (np.zeros((2, 2, 2)), InputError, "2-d array"),
    (np.zeros((3, 0)), InputError, "D = 0"),
    (np.zeros((11, 8)), TooLarge, "limit of 10 rows"),
    (np.array([[1.0, np.nan]]), InputError, "row 0, column 1"),
    (np.array([[1.0, 2.0], [3.0, -np.inf]]), InputError, "row 1, column 1"),
    (np.array([[1e39, 0.0]]), InputError, "NaN or infinite"),  # overflows float32
    ([["a"]], InputError, "numbers"),
])
def test_check_embeddings_refuses(value, error, words):
    with pytest.raises(error, match=words):
        check_embeddings(value, max_rows=10)


def test_check_embeddings_accepts_a_batch():
    out = check_embeddings([[1, 2], [3, 4]], max_rows=10)
    assert out.dtype == np.float32 and out.shape == (2, 2)


def test_resolve_labels(home):
    snap = load_from_warehouse(home.settings)
    assert resolve_labels(snap, None, SYNTH_DIM) == ("cat", "dog")
    assert resolve_labels(snap, ["dog", "cat", "dog"], SYNTH_DIM) == ("dog", "cat")
    with pytest.raises(NotFound, match="'zebra'"):
        resolve_labels(snap, ["zebra"], SYNTH_DIM)
    with pytest.raises(InputError, match="cat takes 48"):
        resolve_labels(snap, ["cat"], 12)
    with pytest.raises(InputError, match="empty list"):
        resolve_labels(snap, [], SYNTH_DIM)
    with pytest.raises(NotFound, match="encoder 'other'"):
        resolve_labels(snap, None, SYNTH_DIM, "other")


def test_score_jobs_match_va_core_and_keep_rows_apart(home):
    from va_core.registry import load_model

    snap = load_from_warehouse(home.settings)
    m = home.corpus.matrix
    jobs = [ScoreJob(m[:3], ("cat",)), ScoreJob(m[3:10], ("cat", "dog")), ScoreJob(m[10:11], ("dog",))]
    results = score_jobs(snap, jobs)
    cat, dog = load_model(home.wh, "cat"), load_model(home.wh, "dog")
    # batching changes how BLAS blocks the product: equal to va_core's scores within float32 rounding
    close = dict(rtol=0, atol=1e-6)
    np.testing.assert_allclose(results[0]["scores"]["cat"], cat.score(m[:3]), **close)
    np.testing.assert_allclose(results[1]["scores"]["cat"], cat.score(m[3:10]), **close)
    np.testing.assert_allclose(results[1]["scores"]["dog"], dog.score(m[3:10]), **close)
    np.testing.assert_allclose(results[2]["scores"]["dog"], dog.score(m[10:11]), **close)
    assert set(results[0]["scores"]) == {"cat"} and results[1]["versions"] == {"cat": 1, "dog": 1}


# -- micro-batching -----------------------------------------------------------------------

def test_requests_arriving_during_a_batch_form_the_next_batch():
    release = threading.Event()
    seen: list[list[int]] = []

    def compute(jobs):
        seen.append(list(jobs))
        if len(seen) == 1:
            release.wait(5)
        return [ValueError("odd") if j % 2 else j * 10 for j in jobs]

    async def scenario():
        batcher = MicroBatcher(compute, rows=lambda j: 1, max_rows=3)
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.05)  # job 0 is being computed, blocked
        rest = [asyncio.ensure_future(batcher.submit(j)) for j in (2, 4, 5, 6, 8)]
        await asyncio.sleep(0.05)
        release.set()
        results = await asyncio.gather(first, *rest, return_exceptions=True)
        return batcher, results

    batcher, results = asyncio.run(scenario())
    assert seen == [[0], [2, 4, 5], [6, 8]]  # at most 3 rows per batch, oldest first
    assert results[:3] == [0, 20, 40] and isinstance(results[3], ValueError) and results[4:] == [60, 80]
    assert batcher.stats.batches == 3 and batcher.stats.histogram == {1: 1, 3: 1, 2: 1}


def test_a_failing_batch_fails_its_requests_only():
    def compute(jobs):
        if 13 in jobs:
            raise RuntimeError("boom")
        return list(jobs)

    async def scenario():
        batcher = MicroBatcher(compute, rows=lambda j: 1, max_rows=1)
        bad = await asyncio.gather(batcher.submit(13), return_exceptions=True)
        good = await batcher.submit(7)
        return bad, good

    bad, good = asyncio.run(scenario())
    assert isinstance(bad[0], RuntimeError) and good == 7


# -- the live set -------------------------------------------------------------------------

def test_served_models_follow_the_models_table(home):
    from tests.support.synthetic import SYNTHETIC_ENCODER_ID

    changes = []
    live = ServedModels(home.settings, reload_interval_s=60, on_change=changes.append).start()
    try:
        assert live.ready() == (True, "2 classifier(s) loaded")
        assert live.refresh() is False  # nothing changed
        snap = live.snapshot
        version = train_and_approve(home.settings, "fox", topic_events(home.corpus, "fox", 3), SYNTHETIC_ENCODER_ID)
        assert live.refresh() is True
        assert live.snapshot.models["fox"].version == version and live.snapshot is not snap
        assert snap.models.keys() == {"cat", "dog"}  # the old snapshot is unchanged
        assert len(changes) == 2
    finally:
        live.stop()


def test_an_empty_warehouse_is_not_ready(tmp_path):
    from va_core.config import Settings

    live = ServedModels(Settings(home=tmp_path, warehouse_uri=str(tmp_path / "wh"), encoder="tiny"), reload_interval_s=60)
    live.refresh(force=True)
    ok, reason = live.ready()
    assert not ok and "va approve" in reason
    with pytest.raises(NotReady):
        resolve_labels(live.snapshot, None, 4)


# -- the model store ----------------------------------------------------------------------

def test_store_names_are_valid_tags():
    import bentoml

    for label in ["cat", "a" * 64, "ends_", "ends-", "x-y_z", "9lives", "nl\n"]:
        name = store_name(label)
        assert str(bentoml.Tag(name, "v1")) == f"{name}:v1"  # BentoML's own tag check
        assert name.startswith("va-") and "\n" not in name
    assert store_name("cat") == "va-cat" and store_name("ends_") != store_name("ends-")
    assert store_name("nl\n") != "va-nl\n"  # a trailing newline does not pass for a valid tag


def test_store_mirrors_every_version_with_labels_and_metadata(home):
    from va_core.registry import approve, models_frame
    from tests.support.synthetic import SYNTHETIC_ENCODER_ID
    from va_core.train import train_label
    from va_core.labels import record_events

    sync_models(home.settings)
    rows = {(r["label"], r["model_version"]): r for r in models_frame(home.wh).to_dicts()}
    found = {(e.label, e.version): e for e in entries(home.settings)}
    assert set(found) == set(rows)
    e = found[("cat", 1)]
    assert e.tag == "va-cat:v1" and e.stage == "approved"
    ap = rows[("cat", 1)]["ap"]  # the corpus estimate: None (left out of the metadata) before audit labels
    assert e.metadata.get("ap") == (None if ap is None else pytest.approx(ap))
    assert e.metadata["n_pos"] == rows[("cat", 1)]["n_pos"] and e.metadata["n_neg"] == rows[("cat", 1)]["n_neg"]
    assert e.metadata["encoder_id"] == SYNTHETIC_ENCODER_ID
    assert e.metadata["label_events_version"] == rows[("cat", 1)]["label_events_version"]
    served = served_from_entry(e)
    np.testing.assert_array_equal(served.model.score(home.corpus.matrix[:5]),
                                  load_from_warehouse(home.settings).models["cat"].model.score(home.corpus.matrix[:5]))

    # a new candidate, then its approval: created, then restaged; the old one retired
    record_events(home.wh, topic_events(home.corpus, "dog", 1, n=15, offset=25), annotator="tester")
    v2 = train_label(home.settings, "dog", encoder_id=SYNTHETIC_ENCODER_ID).model_version
    assert {(c["tag"], c["action"], c["stage"]) for c in sync_models(home.settings)} == {(f"va-dog:v{v2}", "created", "candidate")}
    approve(home.settings, "dog", v2, by="tester")
    changes = {(c["tag"], c["action"], c["stage"]) for c in sync_models(home.settings)}
    assert changes == {(f"va-dog:v{v2}", "restaged", "approved"), ("va-dog:v1", "restaged", "retired")}
    assert sync_models(home.settings) == []  # idempotent
    approved = {(x.label, x.version) for x in entries(home.settings, "approved")}
    assert ("dog", v2) in approved and ("dog", 1) not in approved
