"""Eight processes appending label events at once: nothing lost, nothing duplicated."""
from __future__ import annotations

import subprocess
import sys
import time

from loop_corpus import make_home

N_PROCESSES = 8
EVENTS = 250
BATCH = 10

WRITER = """
import sys, time
from pathlib import Path
from va_core.config import Settings
from va_core.labels import record_events
from va_core.warehouse import Warehouse
home, me, go, keys = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4].split(",")
wh = Warehouse.from_settings(Settings.from_env(home=home, encoder="tiny"))
while not go.exists():
    time.sleep(0.01)
for b in range({events} // {batch}):
    record_events(wh, [{{"label": "race", "clip_key": keys[(b * {batch} + i) % len(keys)],
                         "value": (b + i) % 2 == 0, "annotator": f"p{{me}}", "source": f"p{{me}}-b{{b}}-{{i}}"}}
                        for i in range({batch})])
""".format(events=EVENTS, batch=BATCH)


def test_concurrent_appends_lose_nothing_and_duplicate_nothing(tmp_path):
    settings, wh, corpus = make_home(tmp_path / "home", n=100)
    wh.create("label_events")
    go = tmp_path / "go"
    keys = ",".join(corpus.keys[:50])
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(settings.home), str(p), str(go), keys],
                              stderr=subprocess.PIPE, text=True) for p in range(N_PROCESSES)]
    time.sleep(3)  # let every writer import and wait at the start line
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=540)
        assert p.returncode == 0, err
    events = wh.read("label_events", where={"label": "race"})
    assert events.height == N_PROCESSES * EVENTS
    assert events["event_id"].n_unique() == N_PROCESSES * EVENTS
    expected = {f"p{p}-b{b}-{i}" for p in range(N_PROCESSES) for b in range(EVENTS // BATCH) for i in range(BATCH)}
    assert set(events["source"].to_list()) == expected
    # every batch was one commit, none was split or repeated (compactions commit no data)
    operations = [h["operation"] for h in wh.history("label_events")]
    assert operations.count("WRITE") == N_PROCESSES * EVENTS // BATCH + 1  # + the creation, version 0
    assert set(operations) <= {"WRITE", "OPTIMIZE"}


def test_two_machines_training_one_label_never_share_a_version_number(tmp_path, monkeypatch):
    """Separate homes, so separate lock folders: only Delta's conflict detection keeps them apart."""
    from loop_corpus import assert_versions_unique_and_complete, race_trainers, truth_events
    from va_core.train import train_label
    from va_core.labels import record_events

    uri = f"file://{tmp_path / 'shared-warehouse'}"
    monkeypatch.setenv("VA_WAREHOUSE_URI", uri)
    settings, wh, corpus = make_home(tmp_path / "setup", n=200)
    record_events(wh, truth_events(corpus, "race", 2, range(0, 200, 4)))
    train_label(settings, "race")  # v1 and the clusters
    per_process = race_trainers(tmp_path, {"VA_WAREHOUSE_URI": uri}, "race")
    claimed = sorted(v for vs in per_process for v in vs)
    assert claimed == list(range(2, 8)), per_process
    assert assert_versions_unique_and_complete(wh, "race", 200) == list(range(1, 8))
