"""Labelling a label of the ingested sample corpus from its ground truth, as the app would."""
from __future__ import annotations


def label_by_truth(settings, label: str, truth: dict, colour: str, annotator: str = "maria") -> None:
    """4 yes and 8 no answers for "the background is ``colour``", recorded through the app's handler."""
    from va_ui import handlers as h

    yes = [k for k, r in truth.items() if r["colour"] == colour]
    no = [k for k, r in truth.items() if r["colour"] != colour]
    for key in yes[:4] + no[:8]:
        h.mark(settings, label, key, key in yes, annotator, "test")


def unmeasured_then_measured(settings, label: str, truth: dict, colour: str) -> tuple:
    """v1 trained before any audit label (no corpus estimate), v2 after an audit round (one).

    The audit round is answered as the Annotate desk does: the batch's items with their
    provenance. Returns both train results.
    """
    from va_ui import annotate
    from va_ui import handlers as h

    label_by_truth(settings, label, truth, colour)
    v1 = h.build(settings, label)["result"]
    for item in annotate.batch(settings, label, "audit", k=60)["items"]:
        if item["clip_key"] not in truth:  # a clip without video (imported as embeddings only): skipped
            continue
        annotate.save(settings, label, item["clip_key"], truth[item["clip_key"]]["colour"] == colour, "maria",
                      item["source"], item["provenance"])
    v2 = h.build(settings, label)["result"]
    assert v1.ap is None and v2.ap is not None, (v1, v2)
    return v1, v2
