"""Label events and label sets: validation, aggregation (latest vote, majority, ties), import."""
from __future__ import annotations

import polars as pl
import pytest

from loop_corpus import make_home
from va_cli import labels as cli_labels
from va_core import labels
from va_core.errors import InputError, NotFound
from va_core.labels import LabelEvent, label_set, record_events


@pytest.fixture(scope="module")
def loop_home(tmp_path_factory):
    return make_home(tmp_path_factory.mktemp("labels") / "home", n=300)


@pytest.mark.parametrize("name", ["car", "car_chase", "a", "0-day", "x" * 64])
def test_valid_label_names(name):
    assert labels.validate_label(name) == name


@pytest.mark.parametrize("name", ["", "Car", "car chase", "_car", "-car", "x" * 65, "../etc", "car'; drop", "é", None, 3])
def test_bad_label_names_are_refused_with_the_rule(name):
    with pytest.raises(InputError, match="bad label name"):
        labels.validate_label(name)


def _count(wh):
    return wh.count("label_events")


def test_one_bad_row_and_nothing_is_written(loop_home):
    settings, wh, corpus = loop_home
    good = {"label": "bad_batch", "clip_key": corpus.keys[0], "value": True, "annotator": "a"}
    before = _count(wh)
    cases = [
        ({**good, "label": "Bad Name"}, "bad label name"),
        ({**good, "clip_key": "nope|0"}, "unknown clip key"),
        ({**good, "value": "yes"}, "true or false"),
        ({**good, "value": 1}, "true or false"),
        ({**good, "value": None}, "true or false"),
        ({**good, "annotator": ""}, "annotator"),
    ]
    for bad, message in cases:
        with pytest.raises(InputError, match=message) as err:
            record_events(wh, [good, good, bad])
        assert "nothing was recorded" in str(err.value)
        assert _count(wh) == before
    with pytest.raises(InputError, match="no label events"):
        record_events(wh, [])


def test_annotator_defaults_to_login_name_and_source_is_kept(loop_home, monkeypatch):
    settings, wh, corpus = loop_home
    monkeypatch.setenv("LOGNAME", "alice")
    monkeypatch.setenv("USER", "alice")
    version = record_events(wh, [LabelEvent("who", corpus.keys[1], True, source="top_positive")])
    rows = wh.read("label_events", where={"label": "who"}, version=version)
    assert rows["annotator"].to_list() == ["alice"]
    assert rows["source"].to_list() == ["top_positive"]
    assert rows["value"].to_list() == [True]
    assert len(rows["event_id"][0]) == 32


def test_aggregation_latest_vote_majority_and_ties(loop_home):
    settings, wh, corpus = loop_home
    k = corpus.keys
    record_events(wh, [
        # clip 10: ann a says yes then changes to no; b says no -> negative, both agree
        LabelEvent("agg", k[10], True, "a"), LabelEvent("agg", k[10], False, "a"), LabelEvent("agg", k[10], False, "b"),
        # clip 11: a yes, b no -> a tie: conflict
        LabelEvent("agg", k[11], True, "a"), LabelEvent("agg", k[11], False, "b"),
        # clip 12: a, b yes; c no -> positive by majority, annotators disagree
        LabelEvent("agg", k[12], True, "a"), LabelEvent("agg", k[12], True, "b"), LabelEvent("agg", k[12], False, "c"),
        # clip 13: one annotator -> positive, says nothing about agreement
        LabelEvent("agg", k[13], True, "a"),
    ])
    # a later call: b changes their mind on clip 11, which is no longer a tie
    record_events(wh, [LabelEvent("agg", k[11], True, "b")])
    ls = label_set(wh, "agg")
    rows = {r["clip_key"]: r for r in ls.clips.iter_rows(named=True)}
    assert rows[k[10]]["value"] is False and rows[k[10]]["pos_cnt"] == 0 and rows[k[10]]["annotator_cnt"] == 2
    assert rows[k[11]]["value"] is True and not rows[k[11]]["conflict"]
    assert rows[k[12]]["value"] is True and rows[k[12]]["pos_cnt"] == 2 and rows[k[12]]["annotator_cnt"] == 3
    assert sorted(ls.positives) == sorted([k[11], k[12], k[13]])
    assert ls.negatives == [k[10]]
    assert ls.n_conflicts == 0
    # agreement: among clips with >= 2 annotators (10, 11, 12), all agree on 10 and 11
    assert ls.agreement == pytest.approx(2 / 3)
    assert ls.n_events == 10 and ls.annotators == ("a", "b", "c")

    record_events(wh, [LabelEvent("agg", k[13], False, "b")])  # now a tie on 13
    ls2 = label_set(wh, "agg")
    assert ls2.conflicts == [k[13]]
    assert k[13] not in ls2.positives and k[13] not in ls2.negatives
    assert k[13] in ls2.labelled
    # the earlier version is still readable: time travel on label_events
    assert label_set(wh, "agg", version=ls.label_events_version).conflicts == []


def test_labels_overview_counts(loop_home):
    settings, wh, corpus = loop_home
    record_events(wh, [LabelEvent("overview", corpus.keys[i], i % 3 == 0, "a") for i in range(30)])
    row = next(r for r in labels.labels_overview(wh) if r["label"] == "overview")
    assert (row["n_pos"], row["n_neg"], row["n_conflicts"], row["n_events"]) == (10, 20, 0, 30)
    assert row["agreement"] is None


def test_descriptions_latest_wins_and_name_is_the_fallback_query(loop_home):
    settings, wh, _ = loop_home
    assert labels.description(wh, "car_chase") is None
    assert labels.text_query(wh, "car_chase") == "car chase"
    labels.set_description(wh, "car_chase", "cars chasing each other", annotator="a")
    labels.set_description(wh, "car_chase", "a car chase on a street", annotator="b")
    assert labels.description(wh, "car_chase") == "a car chase on a street"
    assert labels.text_query(wh, "car_chase") == "a car chase on a street"
    with pytest.raises(InputError):
        labels.set_description(wh, "car_chase", "   ")


def test_import_csv_and_parquet(loop_home, tmp_path):
    settings, wh, corpus = loop_home
    csv = tmp_path / "labels.csv"
    csv.write_text("label,clip_key,value,annotator\n"
                   f"imp,{corpus.keys[0]},yes,\n"
                   f"imp,{corpus.keys[1]},0,bob\n"
                   f"imp,{corpus.keys[2]},TRUE,bob\n")
    args = type("A", (), {"file": str(csv), "annotator": "carol"})
    data, text = cli_labels.cli_import_labels(args, settings)
    assert data["n_events"] == 3
    rows = wh.read("label_events", where={"label": "imp"}).sort("clip_key")
    got = {r["clip_key"]: (r["value"], r["annotator"], r["source"]) for r in rows.iter_rows(named=True)}
    assert got == {corpus.keys[0]: (True, "carol", "import"), corpus.keys[1]: (False, "bob", "import"),
                   corpus.keys[2]: (True, "bob", "import")}
    parquet = tmp_path / "labels.parquet"
    pl.DataFrame({"label": ["imp2"] * 2, "clip_key": corpus.keys[3:5], "value": [True, False],
                  "source": ["search", None]}).write_parquet(parquet)
    args = type("A", (), {"file": str(parquet), "annotator": "dave"})
    cli_labels.cli_import_labels(args, settings)
    rows = wh.read("label_events", where={"label": "imp2"}).sort("clip_key")
    assert rows["source"].to_list() == ["search", "import"] and rows["annotator"].to_list() == ["dave", "dave"]


def test_import_refuses_bad_files_and_writes_nothing(loop_home, tmp_path):
    settings, wh, corpus = loop_home
    before = _count(wh)
    bad_value = tmp_path / "bad_value.csv"
    bad_value.write_text(f"label,clip_key,value\nimpbad,{corpus.keys[0]},true\nimpbad,{corpus.keys[1]},maybe\n")
    bad_key = tmp_path / "bad_key.csv"
    bad_key.write_text(f"label,clip_key,value\nimpbad,{corpus.keys[0]},true\nimpbad,ghost|0,false\n")
    bad_label = tmp_path / "bad_label.csv"
    bad_label.write_text(f"label,clip_key,value\nImpBad,{corpus.keys[0]},true\n")
    missing_col = tmp_path / "missing.csv"
    missing_col.write_text(f"label,clip_key\nimpbad,{corpus.keys[0]}\n")
    for path, message in [(bad_value, "row 3.*maybe"), (bad_key, "ghost"), (bad_label, "bad label name"),
                          (missing_col, "missing column")]:
        args = type("A", (), {"file": str(path), "annotator": "x"})
        with pytest.raises(InputError, match=message):
            cli_labels.cli_import_labels(args, settings)
    with pytest.raises(NotFound):
        cli_labels.cli_import_labels(type("A", (), {"file": str(tmp_path / "none.csv"), "annotator": "x"}), settings)
    assert _count(wh) == before


def test_undo_appends_the_previous_vote_or_withdraws_it(loop_home):
    settings, wh, corpus = loop_home
    k = corpus.keys
    record_events(wh, [LabelEvent("undo", k[20], False, "a"), LabelEvent("undo", k[20], True, "a"),
                       LabelEvent("undo", k[21], True, "a")])
    before = wh.count("label_events")
    # a's latest vote on clip 20 was yes: undo restores the no before it
    done = labels.undo_event(wh, "undo", k[20], "a")
    assert done["value"] is False
    # a's only vote on clip 21 is withdrawn: the clip is no longer labelled at all
    assert labels.undo_event(wh, "undo", k[21], "a")["value"] is None
    ls = label_set(wh, "undo")
    assert ls.negatives == [k[20]] and k[21] not in ls.labelled
    # nothing was deleted: two events were appended, each marked as an undo
    events = wh.read("label_events", where={"label": "undo"}).sort("created_at")
    assert wh.count("label_events") == before + 2 and events["source"].to_list()[-2:] == ["undo", "undo"]
    with pytest.raises(InputError, match="already withdrawn"):
        labels.undo_event(wh, "undo", k[21], "a")
    with pytest.raises(NotFound, match="no event"):
        labels.undo_event(wh, "undo", k[22], "a")


def test_export_the_label_set_and_the_raw_events(loop_home, tmp_path):
    settings, wh, corpus = loop_home
    keys = corpus.keys[:4]
    record_events(wh, [LabelEvent("exp", k, v, "a", "search") for k, v in zip(keys, [True, True, False, False])])
    record_events(wh, [LabelEvent("exp", keys[0], False, "b", "review")])  # 1 yes, 1 no: a conflict
    labels.undo_event(wh, "exp", keys[3], "a")  # withdrawn: out of the label set, in the raw events
    done = labels.export_label_set(wh, "exp", tmp_path / "set.csv")
    got = pl.read_csv(tmp_path / "set.csv")
    assert done == {"path": str(tmp_path / "set.csv"), "format": "csv", "rows": 3, "label": "exp",
                    "label_events_version": wh.version("label_events")}
    assert got.select("clip_key", "value", "conflict").sort("clip_key").rows() == sorted(
        [(keys[0], None, True), (keys[1], True, False), (keys[2], False, False)])
    labels.export_events(wh, "exp", tmp_path / "events.parquet")
    events = pl.read_parquet(tmp_path / "events.parquet")
    assert events.height == 6 and events["source"].to_list()[-2:] == ["review", "undo"]
    assert events.schema == wh.read("label_events", where={"label": "exp"}).schema
    # nothing already stored is lost, and the format is the file's
    with pytest.raises(InputError, match="exists"):
        labels.export_label_set(wh, "exp", tmp_path / "set.csv")
    assert pl.read_csv(tmp_path / "set.csv").equals(got)
    with pytest.raises(InputError, match="needs a .parquet file name"):
        labels.export_events(wh, "exp", tmp_path / "events.csv", format="parquet")
    with pytest.raises(InputError, match="export format 'xlsx'"):
        labels.export_events(wh, "exp", tmp_path / "events.xlsx")
    with pytest.raises(InputError, match="is not a folder"):
        labels.export_events(wh, "exp", tmp_path / "nowhere" / "events.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.parquet", "set.csv"]  # no partial file left
    labels.export_label_set(wh, "never_labelled", tmp_path / "empty.parquet")
    assert pl.read_parquet(tmp_path / "empty.parquet").height == 0
