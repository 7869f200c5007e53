"""What the app's buttons do, as plain functions over va_core (no Gradio here).

Each function takes Settings and plain values and returns plain data, so it is tested
without a browser. The app (va_ui/app.py) only turns these into components.
"""
from __future__ import annotations

import time
from typing import Any

import polars as pl

from va_core import labels as labels_mod
from va_core import sources
from va_core.errors import InputError, VAError
from va_core.playback import clip_infos
from va_core.registry import models_frame
from va_core.warehouse import Warehouse

SEARCH_K = 12
SIMILAR = sources.SIMILAR  # "more like this": it starts from a clip, so it is not in the source picker
PREVIEW_K = 4
MODEL_COLUMNS = ["label", "model_version", "stage", "trained_at", "n_pos", "n_neg", "ap", "ap_low", "ap_high",
                 "n_audit", "ap_method", "labelled_ap", "encoder_id", "trainer", "checks_passed"]


def _wh(settings) -> Warehouse:
    return Warehouse.from_settings(settings)


# -- who is labelling ---------------------------------------------------------------

def annotator_name(login: str | None, typed: str | None) -> str:
    """The login when there is one, else the typed name; no name, no label."""
    if login:
        return login
    name = (typed or "").strip()
    if not name:
        raise InputError("type your name at the top first: every label records who gave it")
    return labels_mod.validate_person(name)  # the rule record_events applies, told before the first label


# -- labels ---------------------------------------------------------------------------

def label_choices(settings, snapshot=None) -> list[str]:
    """Labels with events or a description, for the label picker (``snapshot``: the events read already)."""
    wh = _wh(settings)
    names = set(labels_mod.known_labels(wh, snapshot=snapshot))
    if wh.exists("label_descriptions"):
        names |= set(wh.read("label_descriptions", columns=["label"])["label"].to_list())
    return sorted(names)


def save_label(settings, label: str, description: str | None, annotator: str) -> dict:
    """Create a label or change its description (the text query for zero-shot search)."""
    label = labels_mod.validate_label((label or "").strip())
    text = (description or "").strip()
    wh = _wh(settings)
    if text:
        if text != (labels_mod.description(wh, label) or ""):
            labels_mod.set_description(wh, label, text, annotator=annotator)
    elif labels_mod.description(wh, label) is None:
        raise InputError(f"describe {label!r} in a few words: the description is its first search query")
    return label_summary(settings, label)


def label_summary(settings, label: str, ls=None) -> dict:
    """The label's counts, agreement and description; ``ls``: its label set when the caller has it."""
    labels_mod.validate_label(label)
    wh = _wh(settings)
    ls = ls if ls is not None else labels_mod.label_set(wh, label)
    shared = ls.clips.filter(pl.col("annotator_cnt") >= 2).height  # what agreement is measured on
    return {**ls.summary(), "n_shared": shared, "description": labels_mod.description(wh, label)}


def labels_table(settings, snapshot=None) -> pl.DataFrame:
    """Every label with its counts; ``snapshot``: the label events read already (one read for both uses)."""
    wh = _wh(settings)
    snapshot = snapshot if snapshot is not None else labels_mod.events_snapshot(wh)
    rows = labels_mod.labels_overview(wh, snapshot=snapshot)
    described = set(label_choices(settings, snapshot=snapshot))
    seen = {r["label"] for r in rows}
    for name in sorted(described - seen):  # described but not labelled yet
        rows.append({"label": name, "n_pos": 0, "n_neg": 0, "n_conflicts": 0, "n_unsure": 0, "agreement": None,
                     "n_events": 0, "n_annotators": 0, "last_labelled_at": None,
                     "description": labels_mod.description(wh, name)})
    if not rows:
        return pl.DataFrame(schema={"label": pl.String, "description": pl.String, "yes": pl.Int64,
                                    "no": pl.Int64, "conflicts": pl.Int64, "unsure": pl.Int64,
                                    "annotators": pl.Int64})
    return pl.DataFrame([{
        "label": r["label"], "description": r.get("description") or "", "yes": int(r["n_pos"] or 0),
        "no": int(r["n_neg"] or 0), "conflicts": int(r["n_conflicts"] or 0),
        "unsure": int(r.get("n_unsure") or 0), "annotators": int(r["n_annotators"] or 0),
    } for r in rows]).sort("label")


# -- clips ----------------------------------------------------------------------------

def enrich(settings, label: str | None, items: list[dict], ls=None) -> list[dict]:
    """Add playability, metadata and the current vote of ``label`` to clip items.

    ``ls``: the label set when the caller has it already (saves reading it again).
    """
    if not items:
        return []
    keys = [i["clip_key"] for i in items]
    infos = clip_infos(settings, keys)
    votes: dict[str, dict] = {}
    unsure: set[str] = set()
    if label:
        ls = ls if ls is not None else labels_mod.label_set(_wh(settings), label)
        wanted = set(keys)
        for row in ls.clips.iter_rows(named=True):
            if row["clip_key"] in wanted:
                votes[row["clip_key"]] = row
        unsure = wanted & set(ls.unsure_keys)
    out = []
    for item in items:
        info = infos[item["clip_key"]]
        vote = votes.get(item["clip_key"], {})
        out.append({**info.as_dict(), **item, "value": vote.get("value"), "unsure": item["clip_key"] in unsure,
                    "pos_cnt": vote.get("pos_cnt"), "annotator_cnt": vote.get("annotator_cnt")})
    return out


def search(settings, label: str | None, query: str, k: int = SEARCH_K) -> list[dict]:
    """Text-to-video search; each result carries the current vote for ``label``."""
    from va_core.search import search_text

    query = (query or "").strip()
    if not query:
        raise InputError("type what to look for, e.g. 'a red car at night'")
    hits = search_text(settings, query, int(k))
    items = [{"clip_key": h["clip_key"], "score": float(h["score"]), "source": "search",
              "provenance": {"rank": i + 1, "chosen_score": float(h["score"])}}
             for i, h in enumerate(hits.iter_rows(named=True))]
    return enrich(settings, label, items)


def similar_rows(settings, clip_key: Any, k: int) -> list[dict]:
    """The ``k`` clips most like ``clip_key`` by embedding, with rank and similarity."""
    from va_core.search import MAX_K, similar_clips

    if not isinstance(clip_key, str) or not clip_key:
        raise InputError(f"'more like this' needs the clip to start from, got {clip_key!r}")
    found = similar_clips(settings, clip_key, min(k, MAX_K))
    return [{"clip_key": r["clip_key"], "score": float(r["score"]), "feed": SIMILAR, "rank": i + 1}
            for i, r in enumerate(found.iter_rows(named=True))]


def more_like(settings, label: str | None, clip_key: str, k: int = SEARCH_K) -> list[dict]:
    """"More like this": the clips nearest to one clip by embedding; each carries the current vote for ``label``."""
    items = [{**r, "source": SIMILAR} for r in similar_rows(settings, clip_key, int(k))]
    return enrich(settings, label, items)


def check_answer(value: Any, unsure: Any) -> None:
    """An answer is yes or no (``value`` True or False), or unsure (``unsure`` True, ``value`` None)."""
    if unsure is not True and unsure is not False:
        raise InputError(f"unsure is true or false, got {unsure!r}")
    if unsure and value is not None:
        raise InputError(f"an unsure answer has no yes or no, got {value!r}")
    if not unsure and not isinstance(value, bool):
        raise InputError(f"an answer is yes or no (or unsure), got {value!r}")


def mark(settings, label: str, clip_key: str, value: bool | None, annotator: str, source: str,
         provenance: dict | None = None, unsure: bool = False) -> dict:
    """Record one answer; returns what undo needs (label, clip, annotator, table version).

    ``provenance``: how the clip was chosen (a feed item's ``provenance``: rank, model version,
    score, and the draw's design for the random and audit feeds). ``unsure``: the answer
    unsure (``value`` None): stored, never trained on, never shown by a feed again.
    """
    labels_mod.validate_label(label)
    check_answer(value, unsure)
    how = labels_mod.provenance_of({"provenance": provenance or {}})
    version = labels_mod.record_events(_wh(settings), [labels_mod.LabelEvent(label, clip_key, value, annotator, source,
                                                                        **how, unsure=unsure)])
    return {"label": label, "clip_key": clip_key, "value": value, "unsure": unsure, "annotator": annotator,
            "source": source, "label_events_version": version}


def undo(settings, recorded: dict) -> dict:
    """Take back one event this session recorded.

    An undo is itself an event (va_core.labels.undo_event): the annotator's vote on the
    clip goes back to what it was before the key press, so the clip's label set is exactly
    as before, and the sensor retrains as for any other label.
    """
    from va_core.labels import undo_event

    done = undo_event(_wh(settings), recorded["label"], recorded["clip_key"], recorded["annotator"])
    return {**recorded, "event_id": done["undone_event_id"], "label_events_version": done["label_events_version"]}


# -- model ----------------------------------------------------------------------------

def build(settings, label: str, encoder_id: str | None = None, features: str | None = None) -> dict:
    """Retrain in-process with the same function the orchestrator runs; returns its summary.

    ``encoder_id``: the embeddings to train on; else those of ``features`` (clip, motion or
    both; default: the latest model's, else clip) with the home's encoder.
    """
    from va_core.learn import MIN_PER_CLASS
    from va_core.train import train_label

    labels_mod.validate_label(label)
    ls = labels_mod.label_set(_wh(settings), label)
    if ls.n_pos < MIN_PER_CLASS or ls.n_neg < MIN_PER_CLASS:
        # say what to do next, not only what is missing
        todo = ("find yes clips with Search (other words than the description may find them), or answer random "
                "clips in Annotate" if ls.n_pos < MIN_PER_CLASS else
                "answer clips from next or random in Annotate: most of them will be no")
        raise InputError(f"{label} has {ls.n_pos} yes and {ls.n_neg} no; a model needs at least {MIN_PER_CLASS} "
                         f"of each: {todo}")
    t0 = time.perf_counter()
    result = train_label(settings, label, encoder_id=encoder_id, features=features or None)
    return {"result": result, "seconds": time.perf_counter() - t0}


def model_view(settings, label: str, ls=None) -> dict:
    """What the Model part shows: every version with its evaluation, and the feeds of the latest.

    ``ls``: the label's label set when the caller has it (the previews leave its clips out)."""
    history = model_history(settings, label)
    return {"history": history, "previews": feed_previews(settings, label, ls=ls) if history.height else {}}


def model_history(settings, label: str) -> pl.DataFrame:
    """Every model version of ``label`` with its evaluation, oldest first."""
    labels_mod.validate_label(label)
    wh = _wh(settings)
    # not the artifacts: they hold each version's training clips and grow with every build
    models = models_frame(wh, label, columns=MODEL_COLUMNS)  # stage derived from the stage history
    if models.height == 0:
        return pl.DataFrame()
    evals = wh.read("evaluations", where={"label": label})
    # the estimate's columns are in both tables (equal): the models row's are kept
    evals = evals.drop([c for c in evals.columns if c in MODEL_COLUMNS + ["label_events_version"]
                        and c not in ("label", "model_version")])
    from va_core.quality import audit_labels_needed

    return (models.join(evals, on=["label", "model_version"], how="left")
            .with_columns((pl.col("n_pos") + pl.col("n_neg")).alias("n_labels"),
                          pl.struct("n_audit", "n_audit_pos").map_elements(
                              lambda r: audit_labels_needed(int(r["n_audit"] or 0), int(r["n_audit_pos"] or 0)),
                              return_dtype=pl.Int64).alias("audit_needed"))
            .sort("model_version"))


def feed_previews(settings, label: str, k: int = PREVIEW_K, ls=None) -> dict[str, list[dict]]:
    """The first ``k`` unlabelled clips of each feed of the latest model (one read of ``feeds``).

    ``ls``: the label set when the caller has it."""
    from va_core.feeds import stored_feeds

    wh = _wh(settings)
    versions = wh.arrow("models", columns=["model_version"], where={"label": label})["model_version"]
    if len(versions) == 0:
        return {}
    ls = ls if ls is not None else labels_mod.label_set(wh, label)
    stored = wh.read("feeds", columns=["feed", "rank", "clip_key", "score"],
                                where={"label": label, "model_version": max(versions.to_pylist())})
    fresh = (stored.filter(~pl.col("clip_key").is_in(ls.labelled)).sort(["feed", "rank"])
             .group_by("feed", maintain_order=True).head(k))
    items = enrich(settings, label, [{"clip_key": r["clip_key"], "score": float(r["score"]), "source": r["feed"]}
                                     for r in fresh.iter_rows(named=True)], ls=ls)
    return {name: [i for i in items if i["source"] == name] for name in stored_feeds()}


def approval_checks(settings, label: str, version: int | None = None) -> dict:
    """What approving a version (default: the latest) would do, as ``registry.approve`` sees it.

    Its checks as stored when it was trained, the served version to compare it with, and
    ``override_needed``: why the registry asks for a reason (its estimate is clearly below
    the served one's), or None. So the dialog shows exactly why an approval would be refused.
    """
    from va_core.checks import parse_report
    from va_core.registry import APPROVED, approval_refused, clearly_worse, get_model

    wh = _wh(settings)
    row = get_model(wh, labels_mod.validate_label(label), version)
    frame = models_frame(wh, label, columns=MODEL_COLUMNS)
    served = frame.filter(pl.col("stage") == APPROVED)
    served_row = served.row(-1, named=True) if served.height else None
    checks = [c.as_dict() for c in parse_report(row.get("checks_report"))]
    return {**version_facts(row), "label": label, "encoder_id": row["encoder_id"],
            "label_events_version": row["label_events_version"], "passed": approval_refused(row) is None,
            "checks": checks,
            "approved_now": served["model_version"].to_list(),
            "served": version_facts(served_row) if served_row else None,
            "override_needed": clearly_worse(row, served_row) if served_row else None}


def version_facts(row: dict) -> dict:
    """What the approval dialog compares of a version: its estimate, label set and age."""
    return {"model_version": int(row["model_version"]), "stage": row["stage"], "ap": row.get("ap"),
            "ap_low": row.get("ap_low"), "ap_high": row.get("ap_high"), "n_audit": row.get("n_audit"),
            "ap_method": row.get("ap_method"), "labelled_ap": row.get("labelled_ap"), "n_pos": row["n_pos"],
            "n_neg": row["n_neg"], "n_labels": int(row["n_pos"] or 0) + int(row["n_neg"] or 0),
            "trained_at": row.get("trained_at")}


def approve(settings, label: str, version: int, by: str, override: str | None = None,
            reason: str = "approved in the labelling app") -> dict:
    """Approve exactly the version whose checks were shown, with ``registry.approve``'s rules.

    It refuses failed checks, and a version clearly worse than the served one unless
    ``override`` gives the reason (recorded in the stage history).
    """
    from va_core.registry import ReasonNeeded
    from va_core.registry import approve as do_approve

    if version is None:
        raise InputError("press Approve first to see the checks of the version you approve")
    override = (override or "").strip() or None
    try:
        return do_approve(settings, labels_mod.validate_label(label), version=int(version), by=by,
                          reason=reason, override=override)
    except ReasonNeeded as exc:  # e.g. another version was served after the dialog opened
        raise ReasonNeeded(f"{exc}: press Approve again and write it in the reason box") from exc


def rollback_version(settings, label: str) -> int | None:
    """The version served before the one served now: what Roll back approves."""
    from va_core.registry import rollback_version as previous

    return previous(_wh(settings), labels_mod.validate_label(label))


def stage_history(settings, label: str) -> pl.DataFrame:
    """Every stage change of the label's versions, newest first, for the Model tab."""
    from va_core.registry import model_history as history

    rows = history(_wh(settings), labels_mod.validate_label(label))
    if not rows:
        return pl.DataFrame(schema={"when": pl.String, "version": pl.Int64, "stage": pl.String, "from": pl.String,
                                    "by": pl.String, "reason": pl.String})
    return (pl.DataFrame(rows).sort("changed_at", descending=True)
            .select(pl.col("changed_at").dt.strftime("%Y-%m-%d %H:%M:%S").alias("when"),
                    pl.col("model_version").alias("version"), "stage",
                    pl.col("previous_stage").fill_null("").alias("from"), pl.col("changed_by").alias("by"),
                    pl.col("reason").fill_null("")))


# -- review ---------------------------------------------------------------------------

# What the Review tab's "Show" filter keeps of the label set's rows (columns of
# ``labels.aggregate``); a new answer kind is one more entry.
REVIEW_VALUES = {
    "all": None,
    "yes": pl.col("value") == True,  # noqa: E712
    "no": pl.col("value") == False,  # noqa: E712
    "conflicts": pl.col("conflict"),
    "unsure": pl.col("value").is_null() & ~pl.col("conflict"),  # answered unsure by everyone who answered
}
REVIEW_COLUMNS = {"clip_key": pl.String, "label": pl.String, "yes": pl.Int32, "votes": pl.Int32,
                  "annotators": pl.String, "sources": pl.String, "your vote": pl.String, "changed": pl.String}


def review_rows(settings, label: str, which: str = "all", me: str | None = None, contains: str = "",
                annotator: str | None = None, source: str | None = None) -> pl.DataFrame:
    """Every clip of the label set with its votes, filtered; newest change first.

    ``which``: a :data:`REVIEW_VALUES` filter; ``annotator``/``source``: only clips with a
    current vote of that annotator / given from that source; ``me``: whose vote is "your vote".
    The votes are va_core's: ``labels.answered`` per annotator, ``labels.aggregate`` and
    ``labels.unsure_clips`` per clip.
    """
    labels_mod.validate_label(label)
    if which not in REVIEW_VALUES:
        raise InputError(f"unknown filter {which!r}; choose one of {', '.join(REVIEW_VALUES)}")
    events = labels_mod.read_events(_wh(settings), label)
    empty = pl.DataFrame(schema=REVIEW_COLUMNS)
    if events.height == 0:
        return empty
    latest = labels_mod.answered(events).drop("label")
    # clips answered unsure by everyone who answered them: listed as "unsure", with no vote
    unsure = labels_mod.unsure_clips(events).select(
        "label", "clip_key", pl.lit(None, pl.Boolean).alias("value"), pl.lit(0, pl.Int32).alias("pos_cnt"),
        pl.lit(0, pl.Int32).alias("annotator_cnt"), pl.lit(False).alias("conflict"), pl.lit(True).alias("agree"))
    frame = pl.concat([labels_mod.aggregate(events), unsure]).join(latest.group_by("clip_key").agg(
        pl.concat_str([pl.col("annotator"), pl.col("answer")], separator=": ").sort().str.join(", ")
        .alias("annotators"),
        pl.col("source").unique().sort().str.join(", ").alias("sources"),
        pl.col("created_at").max().alias("changed_at"),
    ), on="clip_key")
    mine = latest.filter(pl.col("annotator") == (me or "")).select("clip_key", pl.col("answer").alias("your vote"))
    frame = frame.join(mine, on="clip_key", how="left")
    if REVIEW_VALUES[which] is not None:
        frame = frame.filter(REVIEW_VALUES[which])
    for column, wanted in (("annotator", annotator), ("source", source)):
        if wanted:
            frame = frame.filter(pl.col("clip_key").is_in(latest.filter(pl.col(column) == wanted)["clip_key"]
                                                          .implode()))
    if contains and contains.strip():
        frame = frame.filter(pl.col("clip_key").str.contains(contains.strip(), literal=True))
    if frame.height == 0:
        return empty
    return (frame.sort("changed_at", descending=True)
            .select("clip_key",
                    pl.when(pl.col("conflict")).then(pl.lit("conflict")).when(pl.col("value").is_null())
                    .then(pl.lit("unsure")).when(pl.col("value")).then(pl.lit("yes")).otherwise(pl.lit("no"))
                    .alias("label"),
                    pl.col("pos_cnt").alias("yes"), pl.col("annotator_cnt").alias("votes"), "annotators", "sources",
                    pl.col("your vote").fill_null(""),
                    pl.col("changed_at").dt.strftime("%Y-%m-%d %H:%M:%S").alias("changed")))


# -- guidelines and mistakes ------------------------------------------------------------

def guide(settings, label: str) -> dict:
    """The label's guideline text and its pinned examples, each example with its clip's metadata."""
    from va_core.guidelines import guidelines

    g = guidelines(_wh(settings), labels_mod.validate_label(label))
    examples = enrich(settings, None, [{"clip_key": e["clip_key"], "note": e["note"], "example": kind}
                                       for kind, pins in (("yes", g.yes), ("no", g.no)) for e in pins])
    return {"label": label, "text": g.text, "yes": [e for e in examples if e["example"] == "yes"],
            "no": [e for e in examples if e["example"] == "no"], "updated_by": g.updated_by}


def save_guidelines(settings, label: str, text: str, annotator: str) -> dict:
    """Store the label's guideline text (what counts as yes, what as no), unless it is unchanged."""
    from va_core.guidelines import guidelines, set_text

    label, wh = labels_mod.validate_label(label), _wh(settings)
    if (text or "").strip() != guidelines(wh, label).text:
        set_text(wh, label, text or "", annotator=annotator)
    return guide(settings, label)


def pin(settings, label: str, clip_key: Any, value: Any, annotator: str) -> dict:
    """Pin a clip as a yes (``True``) or no (``False``) example of the label, or unpin it (``None``)."""
    from va_core.guidelines import pin_example

    pin_example(_wh(settings), labels_mod.validate_label(label), clip_key, value, annotator=annotator)
    return guide(settings, label)


def mistakes_view(settings, label: str, k: int = 12) -> dict[str, list[dict]]:
    """The three lists of the Mistakes part, each clip with its metadata and current vote."""
    from va_core.mistakes import mistakes

    wh = _wh(settings)
    found = mistakes(wh, labels_mod.validate_label(label), k=int(k))
    ls = labels_mod.label_set(wh, label)
    out = {"model_version": found["model_version"], "threshold": found["threshold"]}
    for kind in ("yes_scored_low", "no_scored_high", "conflicts"):
        items = [{**{f: i[f] for f in ("clip_key", "score", "votes", "trained_on", "label")}, "source": "mistakes"}
                 for i in found[kind]]
        out[kind] = enrich(settings, label, items, ls=ls)
    return out


def review_options(settings, label: str) -> dict[str, list[str]]:
    """The annotators and sources of the label's current answers: what Review filters by."""
    events = labels_mod.read_events(_wh(settings), labels_mod.validate_label(label))
    if events.height == 0:
        return {"annotators": [], "sources": []}
    answers = labels_mod.answered(events)
    return {"annotators": sorted(answers["annotator"].unique().to_list()),
            "sources": sorted(answers["source"].unique().to_list())}


def change(settings, label: str, clip_keys: str | list[str], value: bool | None, annotator: str,
           unsure: bool = False) -> dict:
    """Change the answer of one clip or many from Review: one event each, by whoever is logged in.

    ``value`` yes or no, or ``unsure`` (``value`` None). All of them in one commit, or none
    (``record_events`` checks every row first). An unsure answer withdraws only this
    annotator's vote: ``still_voted`` lists the changed clips whose label others' votes
    still decide.
    """
    labels_mod.validate_label(label)
    keys = [clip_keys] if isinstance(clip_keys, str) else list(dict.fromkeys(clip_keys or []))
    if not keys:
        raise InputError("select the rows to change first")
    check_answer(value, unsure)
    wh = _wh(settings)
    version = labels_mod.record_events(wh, [labels_mod.LabelEvent(label, k, value, annotator, "review", unsure=unsure)
                                            for k in keys])
    still_voted = []
    if unsure:
        voted = labels_mod.label_set(wh, label, version=version)
        decided = set(voted.positives) | set(voted.negatives) | set(voted.conflicts)
        still_voted = [k for k in keys if k in decided]
    return {"label": label, "clip_keys": keys, "value": value, "unsure": unsure, "annotator": annotator,
            "still_voted": still_voted, "label_events_version": version}


EXPORTS = {"label set": labels_mod.export_label_set, "raw events": labels_mod.export_events}


def export(settings, label: str, what: str, format: str, folder) -> dict:
    """Write the label set or the raw label events of ``label`` to a new file in ``folder``.

    The writing is va_core's (``labels.export_label_set``/``export_events``), as for the CLI.
    """
    from pathlib import Path

    labels_mod.validate_label(label)
    if what not in EXPORTS:
        raise InputError(f"export what? {what!r}; choose one of {', '.join(EXPORTS)}")
    wh = _wh(settings)
    version = labels_mod.events_version(wh)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{label}-{what.replace(' ', '-')}-v{version if version is not None else 0}-{stamp}.{format}"
    target = Path(folder) / name
    n = 1
    while target.exists():  # two exports in one second: never replace the first
        n += 1
        target = Path(folder) / name.replace(f".{format}", f"-{n}.{format}")
    return EXPORTS[what](wh, label, target, format)  # va_core checks the format


def warm_up(settings) -> dict:
    """Load what the first search and the first build need, before anyone waits for them.

    Returns what was loaded; an empty home or an encoder whose weights cannot be had is
    reported, not raised: the app still serves, and the action that needs it says why.
    """
    from va_core.embeddings import load_corpus
    from va_core.encoders import load_encoder, parse_spec

    done: dict = {}
    t0 = time.perf_counter()
    spec = parse_spec(settings.encoder)
    try:
        corpus = load_corpus(_wh(settings), spec.encoder_id)
        done["clips"] = len(corpus)
        load_encoder(spec)
        done["encoder"] = spec.encoder_id
        import sklearn.linear_model  # noqa: F401  (the first Build would pay for this import)
    except VAError as exc:
        done["problem"] = str(exc)
    done["seconds"] = round(time.perf_counter() - t0, 2)
    return done


def describe_error(exc: Exception) -> str:
    """What a person sees when something is refused."""
    if isinstance(exc, VAError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
