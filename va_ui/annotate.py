"""The Annotate part's server side: batches of clips for the page's queue, and the answers it sends.

The page holds the queue (va_ui/desk.py): it shows the next clip at once and sends the
answers one after another in the background. Each answer names its clip and carries the
provenance of the feed item it was given for (which feed, rank, model version, score...),
so the stored event says how that clip came to be shown, whatever was shown since.
Plain functions over va_core, no Gradio.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from va_core import labels as labels_mod
from va_core import sources as sources_mod
from va_core.errors import InputError, NotFound
from va_core.warehouse import Warehouse

QUEUE_K = 20
# "next" before the first model starts from the description (zero-shot); after this many
# answers without a single yes the description is not finding the concept, so it turns to
# random clips and says so.
NO_YES_AFTER = 10
MAX_EXCLUDE = 5000


def _wh(settings) -> Warehouse:
    return Warehouse.from_settings(settings)


def has_model(settings, label: str) -> bool:
    return _wh(settings).arrow("models", columns=["model_version"], where={"label": label}).num_rows > 0


def provenance(item: Mapping) -> dict:
    """How a feed item was chosen, in the fields a label event stores (va_core.labels.PROVENANCE).

    A clip of a model's feed was put there by that version and its score; a zero-shot clip
    by its similarity to the description; fields the feed gives itself win.
    """
    derived = {"chosen_by_version": item.get("model_version"), "chosen_score": item.get("score")}
    return labels_mod.provenance_of({**derived, **{k: v for k, v in item.items() if v is not None}})


def batch(settings, label: str, source: str, exclude: Iterable[str] = (), k: int = QUEUE_K,
          like: str | None = None) -> dict:
    """The next ``k`` clips of ``source`` for the page's queue.

    ``exclude``: keys the page holds already (queued, skipped, answered but maybe not
    saved yet). ``source="similar"`` with ``like=CLIP_KEY``: the unlabelled clips
    most like that one ("more like this"). Returns ``{"source", "items", "hint"}``: ``source`` is what "next" chose,
    each item carries its ``provenance``, and ``hint`` says what to do when ``items`` is
    empty (or why the source changed).
    """
    from va_ui.handlers import enrich

    labels_mod.validate_label(label)
    entry = sources_mod.source(source)  # an unknown source is named with the known ones
    exclude = _keys(exclude)
    ls = labels_mod.label_set(_wh(settings), label)  # read once: feeds exclude it, cards show its votes
    want = k + len(exclude)
    modelled = has_model(settings, label)
    hint = None
    if entry.needs_model and not modelled:
        return {"source": source, "items": [], "hint": (
            f"{label} has no model yet, so there is no {source.replace('_', ' ')} feed. Answer a few clips from "
            "Search, or from next or random here, then press Build.")}
    if source == sources_mod.NEXT and not modelled:
        summary = ls.summary()
        if summary["n_pos"] == 0 and summary["n_pos"] + summary["n_neg"] >= NO_YES_AFTER:
            chosen = sources_mod.RANDOM
            rows = sources_mod.get_feed(settings, label, chosen, want, exclude=ls.labelled)
            hint = (f"no yes among {summary['n_neg']} answers: the description does not find {label}, so va now "
                    "shows random clips. Search with other words to find a first yes.")
        else:
            got = sources_mod.next_clips(settings, label, want)
            chosen, rows = got["source"], got["clips"]
    elif source == sources_mod.NEXT:
        got = sources_mod.next_clips(settings, label, want)
        chosen, rows = got["source"], got["clips"]
    else:
        chosen, rows = source, sources_mod.get_feed(settings, label, source, want, exclude=ls.labelled, like=like)
    items = [{"clip_key": r["clip_key"], "score": r.get("score"),
              "source": r.get("source") or r.get("feed") or chosen, "provenance": provenance(r)}
             for r in rows if r["clip_key"] not in exclude][:k]
    if not items:
        hint = _nothing_left(label, chosen, modelled)
    return {"source": chosen, "items": enrich(settings, label, items, ls=ls), "hint": hint}


def neighbours(settings, keys: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
    """The previous and next shot of the same video for each clip key (None at either end)."""
    import polars as pl

    keys = list(keys)
    if not keys:
        return {}
    wh = _wh(settings)
    videos = wh.read("clips", columns=["clip_key", "video_id"], where={"clip_key": keys})["video_id"].unique()
    shots = (wh.read("clips", columns=["clip_key", "video_id", "frame_in"], where={"video_id": videos.to_list()})
             .sort(["video_id", "frame_in"])
             .with_columns(pl.col("clip_key").shift(1).over("video_id").alias("before"),
                           pl.col("clip_key").shift(-1).over("video_id").alias("after")))
    wanted = set(keys)
    return {r["clip_key"]: (r["before"], r["after"]) for r in shots.iter_rows(named=True) if r["clip_key"] in wanted}


def _nothing_left(label: str, source: str, modelled: bool) -> str:
    name = source.replace("_", " ")
    if modelled:
        return f"Nothing unlabelled is left in {name}: press Build to refresh the feeds, or pick another source."
    return (f"Nothing unlabelled is left in {name}. Use Search to find clips of {label}, "
            "or pick another source.")


def _keys(keys: Iterable[str]) -> set[str]:
    keys = list(keys or ())
    if len(keys) > MAX_EXCLUDE or not all(isinstance(k, str) for k in keys):
        raise InputError(f"exclude is a list of at most {MAX_EXCLUDE} clip keys")
    return set(keys)


def save(settings, label: str, clip_key: Any, value: Any, annotator: str, source: Any,
         given: Mapping | None = None, unsure: Any = False) -> dict:
    """Store one answer the page sent; returns the label's counts after it.

    ``given``: the provenance the page received with the clip, sent back unchanged.
    ``unsure``: the answer unsure (``value`` None).
    """
    from va_ui.handlers import label_summary, mark

    if not isinstance(clip_key, str) or not clip_key:
        raise InputError(f"an answer names its clip, got {clip_key!r}")
    if given is not None and not isinstance(given, Mapping):
        raise InputError(f"provenance is a mapping of fields, got {given!r}")
    event = mark(settings, label, clip_key, value, annotator, source, provenance=dict(given or {}), unsure=unsure)
    return {**event, "summary": label_summary(settings, label)}


def undo(settings, label: str, clip_key: Any, annotator: str) -> dict:
    """Take back the annotator's latest answer on a clip; returns the label's counts after it."""
    from va_ui.handlers import label_summary, undo as undo_event

    if not isinstance(clip_key, str) or not clip_key:
        raise InputError(f"an undo names its clip, got {clip_key!r}")
    try:
        done = undo_event(settings, {"label": labels_mod.validate_label(label), "clip_key": clip_key,
                                     "annotator": annotator})
    except NotFound as exc:
        raise InputError(f"nothing to undo: {exc}") from exc
    return {**done, "summary": label_summary(settings, label)}
