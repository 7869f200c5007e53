"""Every label event records how its clip was chosen; homes written before those columns keep working."""
from __future__ import annotations

import pyarrow as pa
import pytest

from loop_corpus import make_home
from va_core import labels
from va_cli.main import main
from va_core.errors import InputError
from va_core.labels import LabelEvent, record_events


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return make_home(tmp_path_factory.mktemp("provenance") / "home", n=200)


def test_provenance_is_stored_with_the_event(home):
    settings, wh, corpus = home
    version = record_events(wh, [
        LabelEvent("prov", corpus.keys[0], True, "a", "audit", rank=3, chosen_by_version=2, chosen_score=0.8,
                   draw_id="audit@v2", stratum=1, stratum_size=40, inclusion_prob=0.25),
        {"label": "prov", "clip_key": corpus.keys[1], "value": False, "annotator": "a", "source": "top_positive",
         "rank": 1, "chosen_by_version": 2, "chosen_score": 0.99},
    ])
    rows = wh.read("label_events", where={"label": "prov"}, version=version).sort("created_at").to_dicts()
    assert {k: rows[0][k] for k in labels.PROVENANCE} == {
        "rank": 3, "chosen_by_version": 2, "chosen_score": 0.8, "draw_id": "audit@v2", "stratum": 1,
        "stratum_size": 40, "inclusion_prob": 0.25, "stratum_low": None, "stratum_high": None}
    assert rows[1]["rank"] == 1 and rows[1]["draw_id"] is None and rows[1]["inclusion_prob"] is None


@pytest.mark.parametrize("bad, message", [
    ({"rank": 0}, "rank must be >= 1"),
    ({"rank": 1.5}, "whole number"),
    ({"inclusion_prob": 1.5, "draw_id": "d"}, "inclusion_prob must be <= 1"),
    ({"inclusion_prob": 0, "draw_id": "d"}, "inclusion_prob must be > 0"),
    ({"inclusion_prob": 0.1}, "both draw_id and inclusion_prob"),
    ({"stratum": 2}, "give inclusion_prob"),
    ({"inclusion_prob": 0.1, "draw_id": "d", "stratum_low": 0.9, "stratum_high": 0.1}, "is above stratum_high"),
    ({"chosen_score": float("nan")}, "finite"),
    ({"chosen_by_version": "x"}, "must be a number"),
])
def test_bad_provenance_is_refused_and_nothing_is_written(home, bad, message):
    settings, wh, corpus = home
    before = wh.count("label_events")
    with pytest.raises(InputError, match=message):
        record_events(wh, [{"label": "prov", "clip_key": corpus.keys[2], "value": True, "annotator": "a", **bad}])
    assert wh.count("label_events") == before


def test_cli_label_and_import_carry_provenance(home, tmp_path, capsys):
    settings, wh, corpus = home
    assert main(["label", "cli_prov", corpus.keys[3], "--yes", "--home", str(settings.home), "--annotator", "a",
                 "--source", "audit", "--rank", "2", "--chosen-by-version", "4", "--chosen-score", "0.5",
                 "--draw-id", "audit@v4", "--stratum", "3", "--stratum-size", "900", "--inclusion-prob",
                 "0.01"]) == 0
    csv = tmp_path / "labels.csv"
    csv.write_text("label,clip_key,value,source,rank,draw_id,stratum,stratum_size,inclusion_prob\n"
                   f"cli_prov,{corpus.keys[4]},no,random,7,random@v4,0,180,0.5\n"
                   f"cli_prov,{corpus.keys[5]},yes,top_positive,1,,,,\n")
    assert main(["import-labels", str(csv), "--home", str(settings.home), "--annotator", "b"]) == 0
    rows = {r["clip_key"]: r for r in wh.read("label_events", where={"label": "cli_prov"}).to_dicts()}
    assert rows[corpus.keys[3]]["stratum_size"] == 900 and rows[corpus.keys[3]]["chosen_by_version"] == 4
    assert rows[corpus.keys[4]]["inclusion_prob"] == 0.5 and rows[corpus.keys[4]]["rank"] == 7
    assert rows[corpus.keys[5]]["draw_id"] is None and rows[corpus.keys[5]]["source"] == "top_positive"
    bad = tmp_path / "bad.csv"
    bad.write_text(f"label,clip_key,value,inclusion_prob,draw_id\ncli_prov,{corpus.keys[6]},yes,2,d\n")
    assert main(["import-labels", str(bad), "--home", str(settings.home), "--annotator", "b"]) == 2
    assert "inclusion_prob must be <= 1" in capsys.readouterr().err


def test_a_home_written_before_the_provenance_columns_keeps_working(tmp_path):
    from deltalake import write_deltalake

    settings, wh, corpus = make_home(tmp_path / "old", n=50)
    old_schema = pa.schema([(n, t) for n, t in [("event_id", pa.string()), ("label", pa.string()),
                                                ("clip_key", pa.string()), ("value", pa.bool_()),
                                                ("annotator", pa.string()), ("source", pa.string()),
                                                ("created_at", pa.timestamp("us", tz="UTC"))]])
    import datetime as dt

    old = pa.table({"event_id": ["e1"], "label": ["old"], "clip_key": [corpus.keys[0]], "value": [True],
                    "annotator": ["a"], "source": ["cli"],
                    "created_at": [dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)]}, schema=old_schema)
    write_deltalake(wh.table_uri("label_events"), old, configuration={"delta.enableChangeDataFeed": "true"})
    before = wh.read("label_events")
    assert before["inclusion_prob"].to_list() == [None] and before.height == 1  # read as nulls
    assert labels.label_set(wh, "old").n_pos == 1
    record_events(wh, [LabelEvent("old", corpus.keys[1], False, "a", "audit", draw_id="audit@v1",
                                  stratum=0, stratum_size=10, inclusion_prob=0.1)])
    after = wh.read("label_events").sort("created_at")
    assert after["inclusion_prob"].to_list() == [None, 0.1]
    assert labels.label_set(wh, "old").n_neg == 1
    assert wh.changes_since("label_events", 0)["clip_key"].to_list() == [corpus.keys[1]]
