"""A `va train` or `va approve` killed (SIGKILL) right after each of its commits.

``VA_KILL_AFTER_COMMITS=N`` (va_core.warehouse) kills the process after its Nth commit.
After every kill, what readers see must be a whole version: the previous one, or the new
one complete. The next run completes the picture.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import polars as pl
import pytest

from loop_corpus import make_home, sample_rows, truth_events
from va_core import registry, train
from va_core.doctor import doctor
from va_core.feeds import all_feeds, stored_feeds
from va_core.labels import record_events

VA = [sys.executable, "-m", "va_cli"]  # what the `va` script runs (pyproject: va_cli.main:main)
TRAIN_COMMITS = 8  # claim; label_sets, clip_scores, feeds, evaluations (at once); models; prune scores and feeds (at once)
N_CLIPS = 300


def run_va(home, *argv, kill_after=None):
    env = dict(os.environ, VA_HOME=str(home), VA_ENCODER="tiny", LOGNAME="tester", USER="tester")
    env.pop("VA_WAREHOUSE_URI", None)
    if kill_after is not None:
        env["VA_KILL_AFTER_COMMITS"] = str(kill_after)
    return subprocess.run([*VA, *argv], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    settings, wh, corpus = make_home(tmp_path_factory.mktemp("crash") / "home", n=N_CLIPS)
    record_events(wh, truth_events(corpus, "topic1", 1, sample_rows(corpus, 1, 12, 30)))
    train.train_label(settings, "topic1")  # v1, and the clusters, before any kill
    return settings, wh, corpus


def assert_readers_see_whole_versions(settings, wh):
    models = registry.models_frame(wh, "topic1")
    history = pl.DataFrame(registry.model_history(wh, "topic1"))
    latest = int(models["model_version"].max())
    for version in models["model_version"].to_list():
        assert wh.read("evaluations", where={"label": "topic1", "model_version": version}).height == 1
        assert history.filter(pl.col("model_version") == version).height >= 1, f"v{version} has no stage event"
    assert wh.read("clip_scores", where={"label": "topic1", "model_version": latest}).height == N_CLIPS
    feeds = all_feeds(settings, "topic1", k=5)
    assert set(feeds) == set(stored_feeds()) and all(len(items) == 5 for items in feeds.values())
    assert all(i["model_version"] == latest for items in feeds.values() for i in items)
    return latest


def test_train_killed_after_each_commit(home):
    settings, wh, _ = home
    latest = assert_readers_see_whole_versions(settings, wh)
    for n in range(1, TRAIN_COMMITS + 1):
        proc = run_va(settings.home, "train", "topic1", "--force", kill_after=n)
        assert proc.returncode == -signal.SIGKILL, (n, proc.returncode, proc.stderr)
        now = assert_readers_see_whole_versions(settings, wh)
        # the models row is the 6th commit: before it the new version does not exist for readers
        assert (now > latest) == (n >= 6), (n, latest, now)
        latest = now
    proc = run_va(settings.home, "train", "topic1", "--force")
    assert proc.returncode == 0, proc.stderr
    final = assert_readers_see_whole_versions(settings, wh)
    assert final > latest
    # the last run pruned every older version's scores and feeds, orphans included
    for table in ("clip_scores", "feeds"):
        assert set(wh.read(table, where={"label": "topic1"})["model_version"]) == {final}
    # versions are numbered once each: claims of killed runs are never reused
    claimed = wh.read("model_stage_events", where={"label": "topic1", "stage": "candidate"})["model_version"]
    assert claimed.n_unique() == claimed.len()
    # what the killed runs left (claims, evaluations of versions never committed) is found and removed
    proc = run_va(settings.home, "doctor", "--grace", "0", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and {p["check"] for p in report["problems"]} == {"no orphans"}
    assert len(report["problems"]) == 5  # the runs killed after commits 1 to 5
    proc = run_va(settings.home, "doctor", "--repair", "--grace", "0", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["healthy"], proc.stdout
    assert_readers_see_whole_versions(settings, wh)


def test_approve_killed_after_its_event_commit_is_recorded_with_who(home):
    settings, wh, _ = home
    version = int(registry.latest_model(wh, "topic1")["model_version"])
    proc = run_va(settings.home, "approve", "topic1", "--version", str(version), "--by", "carol", kill_after=1)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # the stage copy in models was not rewritten, yet every reader sees the approval with its author
    raw = wh.read("models", where={"label": "topic1", "model_version": version})
    assert raw["stage"][0] == "candidate"
    served = registry.approved_models(wh)
    assert [(m.label, m.model_version) for m in served] == [("topic1", version)]
    approval = [e for e in registry.model_history(wh, "topic1") if e["stage"] == "approved"]
    assert [(e["model_version"], e["changed_by"]) for e in approval] == [(version, "carol")]
    # va doctor finds the stale copy and rewrites it from the history
    report = doctor(wh)
    assert [p["check"] for p in report["problems"]] == ["stage consistent"]
    assert doctor(wh, repair=True)["healthy"]
    assert wh.read("models", where={"label": "topic1", "model_version": version})["stage"][0] == "approved"
