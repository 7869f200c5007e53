"""The mistakes view's lists (labels the model contradicts, annotator conflicts) and per-label guidelines."""
from __future__ import annotations

import pytest

from loop_corpus import make_home, sample_rows, truth_events
from va_core import doctor, guidelines, train
from va_core.errors import InputError, NotFound
from va_core.labels import LabelEvent, record_events
from va_core.mistakes import mistakes
from va_core.sources import get_feed

LABEL, TOPIC = "mist", 2


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    settings, wh, corpus = make_home(tmp_path_factory.mktemp("mistakes") / "home", n=600, n_topics=6, noise=3.0)
    return settings, wh, corpus


def test_mistakes_lists_contradicted_labels_and_conflicts(home):
    settings, wh, corpus = home
    assert mistakes(wh, LABEL)["yes_scored_low"] == []  # no label, no model: empty lists, no error
    rows = sample_rows(corpus, TOPIC, 12, 40)
    events = truth_events(corpus, LABEL, TOPIC, rows)
    record_events(wh, events)
    # two annotators disagree on two clips
    record_events(wh, [LabelEvent(LABEL, events[0]["clip_key"], not events[0]["value"], "second"),
                             LabelEvent(LABEL, events[20]["clip_key"], not events[20]["value"], "second")])
    v = train.train_label(settings, LABEL)
    # after the build, the expert says no to the clip the model likes most
    top = get_feed(settings, LABEL, "top_positive", 1)[0]
    record_events(wh, [LabelEvent(LABEL, top["clip_key"], False, "expert")])

    got = mistakes(wh, LABEL, k=50)
    assert got["model_version"] == v.model_version
    threshold = got["threshold"]
    scores = dict(wh.read("clip_scores", columns=["clip_key", "score"], where={"label": LABEL}).iter_rows())
    assert all(i["label"] == "yes" and i["score"] < threshold for i in got["yes_scored_low"])
    assert all(i["label"] == "no" and i["score"] >= threshold for i in got["no_scored_high"])
    assert [i["score"] for i in got["no_scored_high"]] == sorted((i["score"] for i in got["no_scored_high"]),
                                                                 reverse=True)
    late = next(i for i in got["no_scored_high"] if i["clip_key"] == top["clip_key"])
    assert late["trained_on"] is False and late["votes"] == "expert: no" and late["video_id"] is not None
    assert late["score"] == pytest.approx(scores[top["clip_key"]])
    # every labelled no at or above the threshold is listed (brute force from the stored scores)
    from va_core.labels import label_set

    ls = label_set(wh, LABEL)
    expected = {key for key in ls.negatives if scores[key] >= threshold}
    assert {i["clip_key"] for i in got["no_scored_high"]} == expected
    conflicts = {i["clip_key"]: i for i in got["conflicts"]}
    assert set(conflicts) == {events[0]["clip_key"], events[20]["clip_key"]}
    assert all(i["label"] == "conflict" and "second: " in i["votes"] for i in conflicts.values())
    assert len(mistakes(wh, LABEL, k=1)["conflicts"]) == 1
    with pytest.raises(InputError, match="k must be"):
        mistakes(wh, LABEL, k=0)
    with pytest.raises(NotFound):
        mistakes(wh, LABEL, model_version=99)


def test_guidelines_text_and_pinned_examples_latest_wins(home):
    settings, wh, corpus = home
    k = corpus.keys
    assert guidelines.guidelines(wh, "guided").text == ""
    guidelines.set_text(wh, "guided", "A car chase: at least two cars, one following.", annotator="ana")
    guidelines.set_text(wh, "guided", "  Two or more cars racing; parked cars are no.  ", annotator="bo")
    guidelines.pin_example(wh, "guided", k[0], True, annotator="ana", note="the classic")
    guidelines.pin_example(wh, "guided", k[1], False, annotator="ana")
    guidelines.pin_example(wh, "guided", k[2], True, annotator="bo")
    guidelines.pin_example(wh, "guided", k[1], True, annotator="bo")  # changed to a yes example
    guidelines.pin_example(wh, "guided", k[2], None, annotator="bo")  # unpinned
    g = guidelines.guidelines(wh, "guided")
    assert g.text == "Two or more cars racing; parked cars are no."
    assert [e["clip_key"] for e in g.yes] == [k[1], k[0]] and g.no == []
    assert g.yes[1]["note"] == "the classic" and g.updated_by == "bo"
    assert guidelines.guidelines(wh, "other").examples == []
    before = wh.count("label_guidelines")
    for call, message in [
        (lambda: guidelines.pin_example(wh, "guided", "ghost|0", True, annotator="a"), "not in the clips"),
        (lambda: guidelines.pin_example(wh, "guided", k[3], "yes", annotator="a"), "yes or a no example"),
        (lambda: guidelines.pin_example(wh, "guided", k[3], None, annotator="a"), "not a pinned example"),
        (lambda: guidelines.set_text(wh, "guided", "x" * 5000, annotator="a"), "at most"),
        (lambda: guidelines.set_text(wh, "Bad", "x", annotator="a"), "bad label name"),
    ]:
        with pytest.raises((InputError, NotFound), match=message):
            call()
    assert wh.count("label_guidelines") == before
    assert doctor.doctor(wh)["healthy"]


def test_doctor_reports_guideline_rows_and_unsure_events_written_around_va_core(tmp_path):
    from datetime import datetime, timezone

    settings, wh, corpus = make_home(tmp_path / "home", n=20)
    now = datetime.now(timezone.utc)
    wh.append("label_guidelines", [{"label": "g", "kind": "example", "text": "", "clip_key": None, "value": True,
                                    "annotator": "x", "created_at": now}])
    wh.append("label_events", [{"event_id": "e1", "label": "g", "clip_key": corpus.keys[0], "value": True,
                                "unsure": True, "annotator": "x", "source": "raw", "created_at": now}])
    report = doctor.doctor(wh)
    found = {(p["check"], p["table"]) for p in report["problems"]}
    assert ("answers well formed", "label_guidelines") in found and ("answers well formed", "label_events") in found
    from va_core.labels import label_set

    assert label_set(wh, "g").unsure_keys == [corpus.keys[0]]  # read as unsure, as doctor says


def test_va_guidelines_shows_sets_pins_and_unpins(home, capsys):
    from tests.support.command import va_json
    from va_cli.main import main

    settings, wh, corpus = home
    k, label = corpus.keys, "cli_guided"
    got = va_json(capsys, settings.home, "guidelines", label)
    assert (got["text"], got["yes"], got["no"], got["changed"]) == ("", [], [], None)
    got = va_json(capsys, settings.home, "guidelines", label, "--text", " Two cars, one chasing. ", "--annotator", "ana")
    assert (got["text"], got["changed"], got["updated_by"]) == ("Two cars, one chasing.", "text set", "ana")
    got = va_json(capsys, settings.home, "guidelines", label, "--pin", k[0], "--as", "yes", "--note", "the classic",
                  "--annotator", "ana")
    assert [(e["clip_key"], e["note"], e["annotator"]) for e in got["yes"]] == [(k[0], "the classic", "ana")]
    va_json(capsys, settings.home, "guidelines", label, "--pin", k[1], "--as", "no", "--annotator", "bo")
    got = va_json(capsys, settings.home, "guidelines", label, "--unpin", k[0], "--annotator", "bo")
    assert got["yes"] == [] and [e["clip_key"] for e in got["no"]] == [k[1]] and got["changed"] == f"{k[0]} unpinned"
    assert got == {**guidelines.guidelines(wh, label).as_dict(), "changed": f"{k[0]} unpinned"}  # va_core's answer

    capsys.readouterr()
    assert main(["guidelines", label, "--home", str(settings.home)]) == 0
    text = capsys.readouterr().out
    assert "Two cars, one chasing." in text and "yes examples (0):" in text and "no examples (1):" in text
    assert f"{k[1]}  (pinned by bo)" in text

    # bad input: an error naming what is wrong, and nothing stored
    before = wh.count("label_guidelines")
    for argv, message in [(["--pin", k[2]], "needs --as yes or --as no"),
                          (["--as", "yes"], "give --pin with it"),
                          (["--unpin", k[2]], "not a pinned example"),
                          (["--pin", "ghost|0", "--as", "yes"], "not in the clips"),
                          (["--text", "x" * 5000], "at most")]:
        assert main(["guidelines", label, *argv, "--home", str(settings.home), "--annotator", "bo"]) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert main(["guidelines", label, "--text", "a", "--pin", k[2], "--home", str(settings.home)]) == 2  # one change
    assert "not allowed with" in capsys.readouterr().err
    assert wh.count("label_guidelines") == before


def test_va_mistakes_prints_the_three_lists(home, capsys):
    from tests.support.command import va_json
    from va_cli.main import main

    settings, wh, corpus = home
    label = "cli_mist"
    got = va_json(capsys, settings.home, "mistakes", label)
    assert got["model_version"] is None and got["conflicts"] == []
    assert main(["mistakes", label, "--home", str(settings.home)]) == 0
    assert "no model yet" in capsys.readouterr().out
    events = truth_events(corpus, label, TOPIC, sample_rows(corpus, TOPIC, 10, 30, seed=3))
    record_events(wh, events)
    record_events(wh, [LabelEvent(label, events[0]["clip_key"], not events[0]["value"], "second")])
    v = train.train_label(settings, label).model_version
    top = get_feed(settings, label, "top_positive", 1)[0]
    record_events(wh, [LabelEvent(label, top["clip_key"], False, "expert")])

    got = va_json(capsys, settings.home, "mistakes", label, "--k", "50")
    core = mistakes(wh, label, k=50)
    assert got["model_version"] == v and got["threshold"] == pytest.approx(core["threshold"])
    for name in ("yes_scored_low", "no_scored_high", "conflicts"):
        assert [i["clip_key"] for i in got[name]] == [i["clip_key"] for i in core[name]], name
    assert top["clip_key"] in [i["clip_key"] for i in got["no_scored_high"]]
    assert [i["clip_key"] for i in got["conflicts"]] == [events[0]["clip_key"]]
    assert len(va_json(capsys, settings.home, "mistakes", label, "-k", "1", "--version", str(v))["conflicts"]) == 1

    assert main(["mistakes", label, "--home", str(settings.home)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{label} v{v} (threshold ")
    for title in ("labelled yes, scored below the threshold", "labelled no, scored at or above the threshold",
                  "the annotators disagree (1):"):
        assert title in text
    assert f"{top['clip_key']}  score " in text and "expert: no  (labelled after this version was trained)" in text
    assert main(["mistakes", label, "--version", "99", "--home", str(settings.home)]) == 2
    assert "has no model version 99" in capsys.readouterr().err
    assert main(["mistakes", label, "-k", "0", "--home", str(settings.home)]) == 2
    assert "must be from 1" in capsys.readouterr().err
