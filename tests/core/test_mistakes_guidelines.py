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
