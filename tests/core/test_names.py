"""Names that reach tables, predicates, paths and partitions, and numeric options, through `va`.

Every refusal exits 2, names the input in its message and writes nothing.
"""
from __future__ import annotations

import json

import pytest

from loop_corpus import make_home, sample_rows, truth_events
from va_core import labels, train
from va_cli.main import main
from va_core.errors import InputError
from va_core.labels import record_events
from va_core.warehouse import WarehouseError, sql_literal

TABLES = ("label_events", "label_descriptions", "models", "model_stage_events")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    settings, wh, corpus = make_home(tmp_path_factory.mktemp("names") / "home", n=300)
    record_events(wh, truth_events(corpus, "topic4", 4, sample_rows(corpus, 4, 12, 30)))
    train.train_label(settings, "topic4")
    return settings, wh, corpus


def refused(settings, wh, capsys, *argv) -> str:
    """Run `va ARGV --json`: exit 2, one JSON error on stdout, no table changed."""
    before = wh.versions(TABLES)
    assert main([*argv, "--home", str(settings.home), "--json"]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert wh.versions(TABLES) == before
    return json.loads(out[0])["error"]


@pytest.mark.parametrize("argv, named", [
    (["label", "nl\n", "{key}", "--yes"], r"'nl\n'"),
    (["label", "topic4", "{key}", "--yes", "--annotator", "eve\n"], r"annotator 'eve\n'"),
    (["label", "topic4", "{key}", "--yes", "--annotator", " eve"], "annotator ' eve'"),
    (["label", "topic4", "{key}", "--yes", "--annotator", "e\x1b[31mve"], "annotator"),
    (["label", "topic4", "{key}", "--yes", "--source", "cli\n"], "source"),
    (["describe", "topic4\n", "a scene"], r"'topic4\n'"),
    (["approve", "topic4", "--by", "x" * 5000], "approver 'xxxx"),
    (["approve", "topic4", "--by", "lead\n"], r"approver 'lead\n'"),
    (["approve", "topic4", "--by", "\x1b]0;pwned\x07"], "approver"),
    (["approve", "topic4", "--by", ""], "approver ''"),
    (["approve", "topic4", "--version", "0"], "--version"),
    (["train", "topic4\n"], r"'topic4\n'"),
    (["feeds", "topic4", "-k", "0"], "-k: must be from 1"),
    (["feeds", "topic4", "-k", "-5"], "-k"),
    (["feeds", "topic4", "-k", "ten"], "-k: expected a whole number"),
    (["search", "a red car", "-k", "0"], "-k"),
    (["serve", "--port", "70000"], "--port"),
])
def test_bad_names_and_numbers_are_refused_by_name_and_write_nothing(trained, capsys, argv, named):
    settings, wh, corpus = trained
    message = refused(settings, wh, capsys, *[a.replace("{key}", corpus.keys[0]) for a in argv])
    assert named in message


def test_imported_rows_with_a_bad_annotator_write_nothing(trained, capsys, tmp_path):
    settings, wh, corpus = trained
    path = tmp_path / "events.csv"
    path.write_text(f'label,clip_key,value,annotator\ntopic4,{corpus.keys[0]},true,ann\n'
                    f'topic4,{corpus.keys[1]},false,"eve\n"\n')
    assert "annotator 'eve\\n'" in refused(settings, wh, capsys, "import-labels", str(path))


def test_good_names_still_pass(trained, capsys):
    settings, wh, corpus = trained
    assert main(["label", "topic4", corpus.keys[5], "--yes", "--annotator", "maria@example.org",
                 "--home", str(settings.home), "--json"]) == 0
    assert "maria@example.org" in wh.read("label_events", where={"clip_key": corpus.keys[5]})["annotator"].to_list()
    assert main(["feeds", "topic4", "-k", "3", "--home", str(settings.home), "--json"]) == 0


@pytest.mark.parametrize("value", ["a\n", "a\r", "\x7f", "a\x00b"])
def test_predicate_values_with_control_characters_are_refused(value):
    with pytest.raises(WarehouseError, match="control characters"):
        sql_literal(value)


def test_the_patterns_are_full_matches():
    for bad in ("nl\n", "nl\r\n"):
        with pytest.raises(InputError):
            labels.validate_label(bad)
        with pytest.raises(InputError):
            labels.validate_person(bad)
