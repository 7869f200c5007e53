"""The Delta warehouse on a local folder: schemas, writes, atomic replacement, time travel."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from va_core.warehouse import (TABLES, UnknownTable, Warehouse, WarehouseError, embedding_column,
                               embedding_matrix, predicate, sql_literal)


def events(label, keys, value=True, annotator="ann"):
    now = datetime.now(timezone.utc)
    return [{"event_id": f"{label}-{k}-{annotator}", "label": label, "clip_key": k, "value": value,
             "annotator": annotator, "source": "test", "created_at": now} for k in keys]


def label_set(label, keys):
    return pl.DataFrame({"label": [label] * len(keys), "clip_key": keys, "value": [True] * len(keys),
                         "pos_cnt": [1] * len(keys), "annotator_cnt": [1] * len(keys)})


def test_tables_do_not_exist_until_written(wh):
    assert wh.version("clips") is None and wh.count("clips") == 0
    assert wh.read("clips").columns == TABLES["clips"].schema.names
    assert wh.scan("clips").collect().height == 0
    assert wh.history("clips") == []
    assert wh.create("clips") == 0 and wh.create("clips") == 0


def test_unknown_table_names_the_tables(wh):
    with pytest.raises(UnknownTable, match="clip_embeddings"):
        wh.read("clip")


def test_append_fills_optional_columns_and_checks_the_schema(wh):
    v = wh.append("label_events", events("cats", ["a|0", "b|0"]))
    assert v == 1 and wh.count("label_events") == 2
    wh.append("clips", pl.DataFrame({"clip_key": ["a|0"], "video_id": ["a"], "frame_in": [0]}))
    row = wh.read("clips").row(0, named=True)
    assert row["frame_out"] is None and row["frame_in"] == 0
    with pytest.raises(WarehouseError, match="not in the schema"):
        wh.append("clips", pl.DataFrame({"clip_key": ["x"], "colour": ["red"]}))
    with pytest.raises(WarehouseError, match="do not fit"):
        wh.append("clips", pa.table({"clip_key": ["x"], "frame_in": ["not a number"]}))
    with pytest.raises(WarehouseError, match="cannot write"):
        wh.append("clips", {"clip_key": "x"})
    assert wh.append("clips", []) == wh.version("clips")  # nothing to add: no new version


def test_replace_swaps_one_partition_atomically_and_keeps_history(wh):
    wh.replace("label_sets", {"label": "cats"}, label_set("cats", ["a|0", "b|0"]))
    v = wh.replace("label_sets", {"label": "dogs"}, label_set("dogs", ["c|0"]))
    wh.replace("label_sets", {"label": "cats"}, label_set("cats", ["d|0"]))
    now = wh.read("label_sets").sort(["label", "clip_key"])
    assert now.select("label", "clip_key").rows() == [("cats", "d|0"), ("dogs", "c|0")]
    old = wh.read("label_sets", version=v).sort(["label", "clip_key"])
    assert old["clip_key"].to_list() == ["a|0", "b|0", "c|0"]
    assert wh.read("label_sets", where={"label": "dogs"})["clip_key"].to_list() == ["c|0"]
    # an empty replacement deletes the partition's rows
    wh.replace("label_sets", {"label": "cats"}, label_set("cats", []))
    assert wh.read("label_sets")["label"].to_list() == ["dogs"]


def test_replace_refuses_rows_outside_its_predicate(wh):
    wh.replace("label_sets", {"label": "dogs"}, label_set("dogs", ["c|0"]))
    before = wh.version("label_sets")
    with pytest.raises(WarehouseError, match="other label"):
        wh.replace("label_sets", {"label": "cats"}, label_set("dogs", ["x|0"]))
    with pytest.raises(WarehouseError, match="other video_id"):
        wh.replace("clips", {"video_id": ["a", "b"]},
                   pl.DataFrame({"clip_key": ["z|0"], "video_id": ["z"], "frame_in": [0]}))
    assert wh.version("label_sets") == before and wh.read("label_sets")["clip_key"].to_list() == ["c|0"]


def test_replace_with_a_list_of_values(wh):
    clips = lambda vid, n: pl.DataFrame({"clip_key": [f"{vid}|{i}" for i in range(n)],  # noqa: E731
                                         "video_id": [vid] * n, "frame_in": list(range(n))})
    wh.append("clips", pl.concat([clips("a", 2), clips("b", 2), clips("c", 2)]))
    wh.replace("clips", {"video_id": ["a", "b", "new"]}, pl.concat([clips("a", 1), clips("new", 3)]))
    got = wh.read("clips").group_by("video_id").len().sort("video_id").rows()
    assert got == [("a", 1), ("c", 2), ("new", 3)]


def test_predicates_escape_values_and_refuse_odd_names():
    assert predicate({"label": "o'brien", "model_version": 3}) == "label = 'o''brien' AND model_version = 3"
    assert predicate({"video_id": ["b", "a"]}) == "video_id IN ('a', 'b')"
    assert sql_literal(True) == "true" and sql_literal(1.5) == "1.5"
    with pytest.raises(WarehouseError):
        predicate({"label; drop": "x"})
    with pytest.raises(WarehouseError):
        predicate({"label": "a\nb"})
    with pytest.raises(WarehouseError):
        predicate({"label": []})


def test_quotes_in_values_reach_delta_safely(wh):
    wh.replace("label_sets", {"label": "o'brien"}, label_set("o'brien", ["a|0"]))
    wh.replace("label_sets", {"label": "x"}, label_set("x", ["b|0"]))
    wh.delete("label_sets", {"label": "o'brien"})
    assert wh.read("label_sets")["label"].to_list() == ["x"]


def test_changes_since_reads_only_appended_events(wh):
    v1 = wh.append("label_events", events("cats", ["a|0"]))
    wh.append("label_events", events("cats", ["b|0", "c|0"]))
    wh.append("label_events", events("dogs", ["d|0"]))
    new = wh.changes_since("label_events", v1)
    assert sorted(new["clip_key"].to_list()) == ["b|0", "c|0", "d|0"]
    assert new.columns == TABLES["label_events"].schema.names
    assert wh.changes_since("label_events", wh.version("label_events")).height == 0
    # the sensor asks for a change-feed column too; nothing changed is an empty frame, not an error
    idle = wh.changes_since("label_events", wh.version("label_events"), columns=["label", "_commit_version"])
    assert idle.height == 0 and idle.columns == ["label"]
    with pytest.raises(WarehouseError, match="change data feed"):
        wh.changes_since("clips", 0)


def test_scan_is_lazy_and_filters(wh):
    wh.append("label_events", events("cats", [f"v|{i}" for i in range(50)]))
    wh.append("label_events", events("dogs", [f"v|{i}" for i in range(5)]))
    lazy = wh.scan("label_events")
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.filter(pl.col("label") == "dogs").select(pl.len()).collect().item() == 5
    assert wh.read("label_events", columns=["clip_key"], where={"label": ["dogs"]}).columns == ["clip_key"]


def test_concurrent_appends_all_land(wh):
    errors = []

    def writer(i):
        try:
            for j in range(3):
                wh.append("label_events", events(f"l{i}", [f"k{j}|0"]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert wh.count("label_events") == 12
    assert wh.read("label_events").group_by("label").len()["len"].to_list() == [3] * 4


def test_embedding_columns_round_trip(wh):
    m = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    col = embedding_column(m)
    assert col.type == pa.list_(pa.float32())
    np.testing.assert_array_equal(embedding_matrix(col), m)
    chunked = pa.chunked_array([embedding_column(m[:3]), embedding_column(m[3:])])
    out = embedding_matrix(chunked, dim=5)
    np.testing.assert_array_equal(out, m)
    assert out.flags["C_CONTIGUOUS"]
    assert embedding_matrix(embedding_column(np.zeros((0, 5), np.float32))).shape == (0, 0)
    assert len(embedding_column(np.zeros((0, 0), np.float32))) == 0
    with pytest.raises(WarehouseError, match="dimension 5 where 4"):
        embedding_matrix(col, dim=4)
    with pytest.raises(WarehouseError, match="different dimensions"):
        embedding_matrix(pa.array([[1.0, 2.0], [1.0]], pa.list_(pa.float32())))
    with pytest.raises(WarehouseError, match="null"):
        embedding_matrix(pa.array([[1.0], None], pa.list_(pa.float32())))
    wh.append("clip_embeddings", pa.table({"clip_key": [f"v|{i}" for i in range(7)], "video_id": ["v"] * 7,
                                           "encoder_id": ["e"] * 7, "embedding": col}))
    back = wh.arrow("clip_embeddings").sort_by("clip_key")
    np.testing.assert_array_equal(embedding_matrix(back.column("embedding")), m)


def test_partitioned_tables_are_partitioned(wh, settings):
    wh.replace("label_sets", {"label": "cats"}, label_set("cats", ["a|0"]))
    assert (settings.home / "warehouse" / "label_sets" / "label=cats").is_dir()
    assert all(isinstance(spec.partition_by, tuple) for spec in TABLES.values())


def test_history_and_versions(wh):
    wh.append("label_events", events("cats", ["a|0"]))
    wh.append("label_events", events("cats", ["b|0"]))
    assert wh.versions(["label_events", "clips"]) == {"label_events": 2, "clips": None}
    assert len(wh.history("label_events")) == 3  # create + 2 appends
    assert repr(wh).startswith("Warehouse(")
    assert Warehouse(str(wh.uri) + "/").uri == wh.uri


def test_a_process_that_read_a_table_exits_cleanly(tmp_path):
    # deltalake's own pyarrow file system made about one exit in three abort in pyarrow's
    # I/O threads; every `va` command reads tables and then exits.
    import subprocess
    import sys

    wh = Warehouse(str(tmp_path / "wh"))
    wh.append("clips", [{"clip_key": f"v|{i}", "video_id": "v", "frame_in": i} for i in range(100)])
    script = ("import sys; from va_core.warehouse import Warehouse; "
              "w = Warehouse(sys.argv[1]); assert w.arrow('clips', columns=['clip_key']).num_rows == 100; "
              "assert w.count('clips') == 100; list(w.batches('clips'))")
    codes = [subprocess.run([sys.executable, "-c", script, wh.uri], capture_output=True).returncode
             for _ in range(8)]
    assert codes == [0] * 8


def test_insert_new_inserts_absent_keys_only_and_refuses_a_concurrent_same_key(wh, monkeypatch):
    from va_core.warehouse import CommitConflict

    row = lambda v, by: {"label": "a", "model_version": v, "stage": "candidate", "changed_by": by}  # noqa: E731
    on = ("label", "model_version")
    assert wh.insert_new("model_stage_events", [row(1, "x")], on) == 1
    assert wh.insert_new("model_stage_events", [row(1, "y"), row(2, "y")], on) == 1  # only v2 was absent
    # what a second machine read before the first wrote v3 (a snapshot of its own, not this thread's latest)
    stale = wh._open("model_stage_events", wh.version("model_stage_events"))
    assert wh.insert_new("model_stage_events", [row(3, "first")], on) == 1
    monkeypatch.setattr(wh, "_open", lambda table, version=None: stale)
    with pytest.raises(CommitConflict):
        wh.insert_new("model_stage_events", [row(3, "second")], on)
    # from the same stale snapshot, a key the concurrent commit did not write goes in
    assert wh.insert_new("model_stage_events", [row(4, "second")], on) == 1
    monkeypatch.undo()
    events = wh.read("model_stage_events").sort("model_version")
    assert events.select("model_version", "changed_by").rows() == [(1, "x"), (2, "y"), (3, "first"), (4, "second")]


def test_conditional_writes_are_compacted_and_tables_checkpoint_often(tmp_path):
    # one models / stage-event file per version, one label_sets file per build: reads and
    # opens grew with every version a home ever made
    from va_core.warehouse import CHECKPOINT_EVERY, COMPACT_AFTER

    wh = Warehouse(str(tmp_path / "wh"))
    row = lambda v: {"label": "a", "model_version": v, "stage": "candidate", "changed_by": "x"}  # noqa: E731
    first = None
    for v in range(1, 2 * COMPACT_AFTER + 5):
        assert wh.insert_new("model_stage_events", [row(v)], ("label", "model_version")) == 1
        first = first or wh.version("model_stage_events")
        wh.replace("label_sets", {"label": f"l{v % 3}"}, [{"label": f"l{v % 3}", "clip_key": f"k{v}", "value": True}])
    for table in ("model_stage_events", "label_sets"):
        assert len(wh._open(table).file_uris()) < COMPACT_AFTER, table
    assert sorted(wh.read("model_stage_events")["model_version"].to_list()) == list(range(1, 2 * COMPACT_AFTER + 5))
    last = range(2 * COMPACT_AFTER + 2, 2 * COMPACT_AFTER + 5)  # each label keeps its latest replace
    assert sorted(wh.read("label_sets")["clip_key"].to_list()) == sorted(f"k{v}" for v in last)
    # compaction changed no data: the first version still reads as it was
    assert wh.read("model_stage_events", version=first)["model_version"].to_list() == [1]
    log = Path(wh.table_uri("model_stage_events").removeprefix("file://")) / "_delta_log"
    assert int(json.loads((log / "_last_checkpoint").read_text())["version"]) >= wh.version("model_stage_events") - CHECKPOINT_EVERY


def test_appends_are_compacted_and_the_change_feed_and_time_travel_are_kept(tmp_path):
    from va_core.warehouse import COMPACT_AFTER

    wh = Warehouse(str(tmp_path / "wh"))
    versions = [wh.append("label_events", events("compact", [f"k{i}"], annotator=f"a{i}")) for i in range(3)]
    for i in range(3, 2 * COMPACT_AFTER + 5):
        wh.append("label_events", events("compact", [f"k{i}"], annotator=f"a{i}"))
    files = len(wh._open("label_events").file_uris())
    assert files < COMPACT_AFTER  # one file per append would be 2 * COMPACT_AFTER + 5
    assert wh.count("label_events") == 2 * COMPACT_AFTER + 5
    # compaction changes no data: the change feed after version 1 holds exactly the appended rows
    new = wh.changes_since("label_events", versions[0])
    assert sorted(new["clip_key"].to_list()) == sorted(f"k{i}" for i in range(1, 2 * COMPACT_AFTER + 5))
    assert sorted(wh.read("label_events", version=versions[1])["clip_key"].to_list()) == ["k0", "k1"]
    frame, version = wh.read_current("label_events", where={"annotator": "a7"})
    assert frame["clip_key"].to_list() == ["k7"] and version == wh.version("label_events")


def _append_many(uri: str, worker: int, n: int) -> None:
    wh = Warehouse(uri)
    for i in range(n):
        wh.append("label_events", events("many", [f"w{worker}-{i}"], annotator=f"w{worker}"))


def test_concurrent_appenders_compact_one_at_a_time_and_lose_or_duplicate_nothing(tmp_path):
    # two compactions of the same files at once both commit in delta-rs: rows were duplicated
    import multiprocessing

    from va_core.warehouse import COMPACT_AFTER

    uri = str(tmp_path / "wh")
    Warehouse(uri).create("label_events")
    n = COMPACT_AFTER + 8
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_append_many, args=(uri, w, n)) for w in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    wh = Warehouse(uri)
    assert wh.count("label_events") == 3 * n and wh.duplicate_keys("label_events").height == 0
    assert len(wh._open("label_events").file_uris()) < 3 * n  # compacted
    assert wh.changes_since("label_events", 0).height == 3 * n


def test_a_kept_handle_reads_every_commit_of_another_process_and_a_table_made_again(tmp_path):
    # this thread keeps its handle of a table between reads (Warehouse._open); what another
    # process commits in between must still be read, and so must a table removed and made anew
    # by another process (whose log then continues the kept handle's version numbers)
    import shutil
    import subprocess
    import sys

    wh = Warehouse(str(tmp_path / "wh"))
    wh.append("label_events", events("a", ["k1|0", "k2|0"]))
    assert wh.read("label_events").height == 2

    def other_process(label: str, *keys: str) -> None:
        script = ("import sys; from tests.core.test_warehouse import events; from va_core.warehouse import Warehouse; "
                  "[Warehouse(sys.argv[1]).append('label_events', events(sys.argv[2], [k], annotator='other')) "
                  "for k in sys.argv[3:]]")
        subprocess.run([sys.executable, "-c", script, wh.uri, label, *keys], check=True, cwd=Path(__file__).parents[2])

    other_process("a", "k3|0")
    assert sorted(wh.read("label_events")["clip_key"]) == ["k1|0", "k2|0", "k3|0"]
    assert wh.read_current("label_events")[1] == wh.version("label_events") == 2  # created, ours, theirs
    shutil.rmtree(tmp_path / "wh" / "label_events")
    assert not wh.exists("label_events")
    other_process("b", *(f"k{i}|9" for i in range(4)))  # versions 0 to 4 of a new table
    assert sorted(wh.read("label_events")["clip_key"]) == [f"k{i}|9" for i in range(4)]
    assert wh.version("label_events") == 4


def test_threads_read_their_own_handles_and_concurrent_commits_all_land(wh):
    from va_core.warehouse import concurrently

    wh.append("label_events", events("a", ["k0|0"]))
    results = concurrently(*(lambda i=i: wh.append("label_events", events(f"l{i}", [f"k{i}|0"])) for i in range(6)))
    assert max(results) == 7 == wh.version("label_events")  # created, the first, the six
    seen = concurrently(*(lambda: wh.read("label_events").height for _ in range(4)))
    assert seen == [7] * 4 and wh.read("label_events").height == 7
    with pytest.raises(WarehouseError, match="columns not in the schema"):
        concurrently(lambda: wh.append("label_events", events("ok", ["k7|0"])),
                     lambda: wh.append("label_events", pa.table({"label": ["x"], "nope": [1]})))
    assert wh.read("label_events").height == 8  # the call that failed did not stop the other
