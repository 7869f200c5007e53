"""Where the labels and the model disagree, and where the annotators do: what to look at again.

Three lists for a label, each clip with its votes, its score and where to find it:

- ``yes_scored_low``: the label set says yes, the model scores it below its threshold
  (lowest first);
- ``no_scored_high``: the label set says no, the model scores it at or above its threshold
  (highest first);
- ``conflicts``: clips whose annotators disagree (a tie, or a majority with a dissent),
  newest answer first.

The model is the label's latest version (the one whose ``clip_scores`` are kept) or the
version asked for while its scores are still stored. A clip labelled after the version
was trained is marked ``trained_on = False``: the model never saw that label, so the
disagreement is the model's rather than a training label it could not fit.
"""
from __future__ import annotations

import json

import polars as pl

from va_core.errors import InputError, NotFound
from va_core.feeds import with_clip_info
from va_core.labels import aggregate, answered, read_events, validate_label
from va_core.learn import LinearModel
from va_core.registry import get_model
from va_core.warehouse import Warehouse

__all__ = ["DEFAULT_K", "MAX_K", "mistakes"]

DEFAULT_K = 20
MAX_K = 1000


def _votes(events: pl.DataFrame) -> pl.DataFrame:
    """Per clip: each annotator's latest answer as text ("maria: yes, ana: unsure") and when it changed."""
    return (answered(events)
            .group_by("clip_key").agg(
                pl.concat_str([pl.col("annotator"), pl.col("answer")], separator=": ").sort().str.join(", ")
                .alias("votes"),
                pl.col("created_at").max().alias("changed_at")))


def mistakes(wh: Warehouse, label: str, model_version: int | None = None, k: int = DEFAULT_K) -> dict:
    """The label's likely mistakes; see the module's doc. Each list holds at most ``k`` clips."""
    validate_label(label)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise InputError(f"k must be a whole number of clips in 1..{MAX_K}, got {k!r}")
    events = read_events(wh, label)
    agg = aggregate(events).drop("label")
    votes = _votes(events) if events.height else pl.DataFrame(
        schema={"clip_key": pl.String, "votes": pl.String, "changed_at": pl.Datetime("us", "UTC")})
    conflicts = (agg.filter((pl.col("annotator_cnt") >= 2) & ~pl.col("agree"))
                 .join(votes, on="clip_key", how="left").sort("changed_at", descending=True).head(k))

    out = {"label": label, "model_version": None, "threshold": None, "yes_scored_low": [], "no_scored_high": [],
           "conflicts": [], "n_labelled": agg.height}
    row = None
    try:
        row = get_model(wh, label, model_version)
    except NotFound:
        if model_version is not None:
            raise
    scores = pl.DataFrame(schema={"clip_key": pl.String, "score": pl.Float32})
    if row is not None:
        version = int(row["model_version"])
        scores = wh.read("clip_scores", columns=["clip_key", "score"], where={"label": label, "model_version": version})
        if scores.height == 0:
            raise NotFound(f"{label} v{version}'s scores are no longer stored (only the latest version's are): "
                           "ask for the latest version")
        model = LinearModel.from_artifact(row["artifact"])
        trained = set(json.loads(row["artifact"]).get("training_clips") or []) if row.get("artifact") else set()
        out.update(model_version=version, threshold=float(model.threshold))
        scored = (agg.filter(pl.col("value").is_not_null()).join(scores, on="clip_key", how="inner")
                  .join(votes, on="clip_key", how="left")
                  .with_columns(pl.col("clip_key").is_in(list(trained)).alias("trained_on")))
        out["yes_scored_low"] = _items(wh, scored.filter(pl.col("value") & (pl.col("score") < model.threshold))
                                       .sort("score").head(k), "yes_scored_low")
        out["no_scored_high"] = _items(wh, scored.filter(~pl.col("value") & (pl.col("score") >= model.threshold))
                                       .sort("score", descending=True).head(k), "no_scored_high")
    conflicts = conflicts.join(scores, on="clip_key", how="left")
    out["conflicts"] = _items(wh, conflicts, "conflicts")
    return out


def _items(wh, frame: pl.DataFrame, kind: str) -> list[dict]:
    items = []
    for r in frame.iter_rows(named=True):
        items.append({
            "clip_key": r["clip_key"], "kind": kind,
            "label": "conflict" if r["conflict"] else ("yes" if r["value"] else "no"),
            "score": None if r.get("score") is None else float(r["score"]),
            "pos_cnt": int(r["pos_cnt"]), "annotator_cnt": int(r["annotator_cnt"]), "votes": r.get("votes") or "",
            "trained_on": r.get("trained_on"),
            "changed_at": r["changed_at"].isoformat() if r.get("changed_at") is not None else None,
        })
    return with_clip_info(wh, items)
