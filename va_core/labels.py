"""Label events (what people said about clips) and label sets (what a classifier learns from).

``label_events`` is append-only and the only table people write. A label set is derived
from it: for each clip, each annotator's latest event counts, the majority over annotators
decides, and a tie is a *conflict*: excluded from training and reported.

An answer is yes, no or *unsure*: an unsure event has ``unsure = true`` and a null
``value``, so it is no vote (never trained on, never in a quality sample), but the clip
counts as answered and no feed shows it again.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import polars as pl
import pyarrow as pa

from va_core.errors import InputError, NotFound
from va_core.warehouse import Warehouse

__all__ = ["EXPORT_FORMATS", "export_events", "export_label_set", "EventsSnapshot", "LabelEvent", "LabelSet",
           "PROVENANCE", "UNSURE", "aggregate", "answered", "description", "events_snapshot", "events_version",
           "existing_clip_keys", "import_label_file", "known_labels",
           "label_set", "labels_overview", "latest_answers", "latest_votes", "login_name", "provenance_of",
           "read_events", "record_events", "set_description", "store_text_embeddings", "stored_text_embedding",
           "text_query", "undo_event", "unsure_clips", "validate_label", "validate_person"]

# Names reach Delta predicates, file paths, Dagster partitions and BentoML tags: each is
# checked with fullmatch (a pattern ending in ``$`` lets a trailing newline through).
LABEL_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# People (annotators, approvers, logins): the app's login names plus ':' for the names the
# dataset importer gives ("va-dataset:agg").
PERSON_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,63}")
MAX_TEXT = 200  # source names reach tables and logs
MAX_REPORTED = 5  # how many bad rows an error message lists


def validate_label(name: Any) -> str:
    """A label name, or InputError saying what is wrong with it.

    Checked once, where a name comes in: by the entry points that act on a label (record_events,
    undo_event, set_description, train_label, approve, retire, next_clips, get_feed, all_feeds,
    the dataset import) and by the adapters' handlers. The reads and steps those call
    (label_set, read_events, description, models_frame, stage_events, load_state, label_lock)
    trust the name they are given.
    """
    if not isinstance(name, str) or not LABEL_PATTERN.fullmatch(name):
        raise InputError(
            f"bad label name {name!r}: use 1-64 characters of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit (e.g. 'car_chase')"
        )
    return name


def login_name() -> str:
    """The user's login name: the default annotator."""
    try:
        name = getpass.getuser()
    except Exception as exc:  # no USER/LOGNAME and no passwd entry (some containers)
        raise InputError("cannot tell who you are (no login name); pass --annotator NAME") from exc
    try:
        return validate_person(name, "login name")
    except InputError as exc:
        raise InputError(f"{exc}; pass --annotator NAME") from None


def validate_person(name: Any, what: str = "annotator") -> str:
    """An annotator's or approver's name, or InputError naming it and the rule."""
    if not isinstance(name, str) or not PERSON_PATTERN.fullmatch(name):
        shown = repr(name if not isinstance(name, str) or len(name) <= 80 else name[:80] + "...")
        raise InputError(f"bad {what} {shown}: use 1-64 characters of letters, digits and '_.@:+-', "
                         "starting with a letter or digit (e.g. 'maria' or 'maria@example.org')")
    return name


def _text(what: str, value: Any) -> str:
    """Free text that reaches tables and logs (a source, a reason): printable, bounded, not padded."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > MAX_TEXT or not value.isprintable() or value != value.strip():
        raise InputError(f"bad {what} {value[:80]!r}: at most {MAX_TEXT} printable characters, "
                         "no control characters or surrounding spaces")
    return value


# How a clip was chosen, recorded with each event (all optional). ``rank`` is the clip's
# place in what was shown, ``chosen_by_version``/``chosen_score`` the model version and score
# that put it there; for random draws (the ``random`` and ``audit`` feeds) ``draw_id`` names
# the draw, ``stratum``/``stratum_size`` its stratum and the stratum's population N_h,
# ``inclusion_prob`` n_h/N_h and ``stratum_low``/``stratum_high`` the stratum's score bounds. ``va_core.quality`` estimates corpus quality from those.
PROVENANCE = ("rank", "chosen_by_version", "chosen_score", "draw_id", "stratum", "stratum_size",
              "inclusion_prob", "stratum_low", "stratum_high")
EVENT_FIELDS = ("label", "clip_key", "value", "annotator", "source") + PROVENANCE + ("unsure",)


@dataclass(frozen=True)
class LabelEvent:
    label: str
    clip_key: str
    value: bool
    annotator: str | None = None
    source: str | None = None
    rank: int | None = None
    chosen_by_version: int | None = None
    chosen_score: float | None = None
    draw_id: str | None = None
    stratum: int | None = None
    stratum_size: int | None = None
    inclusion_prob: float | None = None
    stratum_low: float | None = None  # the stratum's score bounds under chosen_by_version
    stratum_high: float | None = None
    unsure: bool = False  # an unsure answer: no value, never trained on, never fed again

    def provenance(self) -> dict:
        return {k: getattr(self, k) for k in PROVENANCE}


def provenance_of(item: Mapping) -> dict:
    """The provenance fields of a feed item (``va feeds`` puts them under ``provenance``)."""
    given = item.get("provenance") or {}
    return {k: given.get(k, item.get(k)) for k in PROVENANCE if given.get(k, item.get(k)) is not None}


def _as_event(row: Any) -> LabelEvent:
    if isinstance(row, LabelEvent):
        return row
    if isinstance(row, Mapping):
        unknown = set(row) - set(EVENT_FIELDS)
        if unknown:
            raise InputError(f"unknown label event field(s): {sorted(unknown)}; fields are {', '.join(EVENT_FIELDS)}")
        return LabelEvent(**{k: row.get(k) for k in EVENT_FIELDS})
    if isinstance(row, (tuple, list)) and 3 <= len(row) <= 5:
        return LabelEvent(*row)
    raise InputError(f"a label event is a mapping with label, clip_key, value; got {row!r}")


def _number(what: str, value: Any, whole: bool, low: float | None = None, high: float | None = None,
            above_low: bool = False):
    """An optional provenance number (text from files too), or InputError naming the field."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if _is_bool(value):
        raise InputError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{what} must be finite, got {value!r}")
    if whole and not number.is_integer():
        raise InputError(f"{what} must be a whole number, got {value!r}")
    if low is not None and (number < low or (above_low and number == low)):
        raise InputError(f"{what} must be {'>' if above_low else '>='} {low}, got {value!r}")
    if high is not None and number > high:
        raise InputError(f"{what} must be <= {high}, got {value!r}")
    return int(number) if whole else number


def _clean_provenance(ev: LabelEvent) -> tuple:
    rank = _number("rank", ev.rank, True, 1)
    version = _number("chosen_by_version", ev.chosen_by_version, True, 1)
    score = _number("chosen_score", ev.chosen_score, False)
    draw = _text("draw_id", ev.draw_id) if ev.draw_id not in (None, "") else None
    stratum = _number("stratum", ev.stratum, True, 0)
    size = _number("stratum_size", ev.stratum_size, True, 1)
    prob = _number("inclusion_prob", ev.inclusion_prob, False, 0.0, 1.0, above_low=True)
    low = _number("stratum_low", ev.stratum_low, False)
    high = _number("stratum_high", ev.stratum_high, False)
    if (prob is None) != (draw is None):
        raise InputError("a random draw's event needs both draw_id and inclusion_prob")
    if (stratum is not None or size is not None or low is not None or high is not None) and prob is None:
        raise InputError("stratum, stratum_size and its bounds describe a random draw: give inclusion_prob and "
                         "draw_id too")
    if low is not None and high is not None and low > high:
        raise InputError(f"stratum_low {low} is above stratum_high {high}")
    return rank, version, score, draw, stratum, size, prob, low, high


def _is_bool(value: Any) -> bool:
    # numpy booleans come from arrays; 0/1 and strings are refused here (parsing is the importer's job)
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def existing_clip_keys(wh: Warehouse, keys: Iterable[str]) -> set[str]:
    keys = sorted(set(keys))
    if not keys or not wh.exists("clips"):
        return set()
    table = wh.arrow("clips", columns=["clip_key"], where={"clip_key": keys})
    return set(table.column("clip_key").to_pylist())


def record_events(wh: Warehouse, events: Iterable[Any], annotator: str | None = None,
                  source: str = "api") -> int:
    """Append label events; returns the ``label_events`` version that holds them.

    Every row is checked (label name, boolean value, clip key present in ``clips``)
    before anything is written: one bad row and nothing of the call is stored.
    ``annotator`` and ``source`` fill rows that carry none; the annotator defaults to
    the login name.
    """
    rows = [_as_event(r) for r in events]
    if not rows:
        raise InputError("no label events to record")
    problems: list[str] = []
    default_annotator = None
    clean = []
    for i, ev in enumerate(rows):
        try:
            validate_label(ev.label)
            if not isinstance(ev.clip_key, str) or not ev.clip_key:
                raise InputError(f"clip key must be a non-empty string, got {ev.clip_key!r}")
            unsure = _unsure_flag(ev)
            who = ev.annotator if ev.annotator is not None else annotator
            if who is None:
                default_annotator = default_annotator or login_name()
                who = default_annotator
            who = validate_person(who)
            where = _text("source", ev.source if ev.source is not None else source)
            how = _clean_provenance(ev)
        except InputError as exc:
            problems.append(f"event {i + 1}: {exc}")
            continue
        clean.append((ev.label, ev.clip_key, None if unsure else bool(ev.value), who, where) + how + (unsure,))
    if not problems:
        known = existing_clip_keys(wh, (c[1] for c in clean))
        missing = sorted({c[1] for c in clean} - known)
        if missing:
            problems.append(f"{len(missing)} unknown clip key(s) (not in the clips table), e.g. "
                            + ", ".join(repr(k) for k in missing[:MAX_REPORTED]))
    if problems:
        more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
        raise InputError("nothing was recorded: " + "; ".join(problems[:MAX_REPORTED]) + more)
    now = datetime.now(timezone.utc)
    # Strictly increasing timestamps keep "the latest event wins" well defined inside a batch.
    table = pa.table({
        "event_id": [uuid.uuid4().hex for _ in clean],
        "label": [c[0] for c in clean],
        "clip_key": [c[1] for c in clean],
        "value": pa.array([c[2] for c in clean], type=pa.bool_()),
        "annotator": [c[3] for c in clean],
        "source": [c[4] for c in clean],
        "created_at": pa.array([now + timedelta(microseconds=i) for i in range(len(clean))],
                               type=pa.timestamp("us", tz="UTC")),
        **{name: [c[5 + j] for c in clean] for j, name in enumerate(PROVENANCE)},
        "unsure": [c[-1] for c in clean],
    })
    return wh.append("label_events", table)


def _unsure_flag(ev: LabelEvent) -> bool:
    """Whether the event is an unsure answer; InputError for a value that is neither a vote nor unsure."""
    if ev.unsure is not None and not _is_bool(ev.unsure):
        raise InputError(f"unsure must be true or false, got {ev.unsure!r}")
    if ev.unsure:
        if ev.value is not None:
            raise InputError(f"an unsure answer has no value, got value {ev.value!r}")
        return True
    if not _is_bool(ev.value):
        raise InputError(f"value must be true or false (or the answer unsure), got {ev.value!r}")
    return False


def undo_event(wh: Warehouse, label: str, clip_key: str, annotator: str, event_id: str | None = None) -> dict:
    """Take back an annotator's latest event on a clip by appending the vote they had before it.

    ``label_events`` stays append-only (the sensors and the lineage see the undo as a new
    event); a vote that did not exist before is withdrawn with a null value, which the
    aggregation reads as "this annotator has no vote on this clip".
    """
    validate_person(annotator)
    label = validate_label(label)
    events = wh.read("label_events", where={"label": label, "clip_key": clip_key, "annotator": annotator})
    if events.height == 0:
        raise NotFound(f"{annotator} has no event on {clip_key} for {label!r} to undo")
    events = events.sort(["created_at", "event_id"])
    last = events.row(events.height - 1, named=True)
    if event_id is not None and last["event_id"] != event_id:
        raise InputError(f"{annotator} labelled {clip_key} again after that event; undo the later one first")
    if last["value"] is None and not last["unsure"]:
        raise InputError(f"{annotator}'s vote on {clip_key} is already withdrawn")
    previous = events["value"][-2] if events.height > 1 else None
    previous_unsure = bool(events["unsure"][-2]) if events.height > 1 else False
    now = datetime.now(timezone.utc)
    version = wh.append("label_events", pa.table({
        "event_id": [uuid.uuid4().hex], "label": [label], "clip_key": [clip_key],
        "value": pa.array([previous], type=pa.bool_()), "annotator": [annotator], "source": ["undo"],
        "created_at": pa.array([max(now, last["created_at"] + timedelta(microseconds=1))],
                               type=pa.timestamp("us", tz="UTC")),
        "unsure": [previous_unsure],
    }))
    return {"label": label, "clip_key": clip_key, "annotator": annotator, "undone_event_id": last["event_id"],
            "value": previous, "unsure": previous_unsure, "label_events_version": version}


def events_version(wh: Warehouse) -> int | None:
    return wh.version("label_events")


def read_events(wh: Warehouse, label: str | None = None, version: int | None = None) -> pl.DataFrame:
    where = {"label": label} if label is not None else None
    return wh.read("label_events", where=where, version=version)


# -- label sets ----------------------------------------------------------------

def latest_answers(events: pl.DataFrame) -> pl.DataFrame:
    """Each annotator's latest answer per (label, clip_key): value, unsure, drawn, source, created_at.

    ``value`` null and ``unsure`` false: a withdrawn vote (undo). ``drawn``: the answer's
    event carried a random draw's design (the audit or random feed). Rows of homes written
    before unsure answers existed have no ``unsure`` (or a null one): they are votes.
    """
    if "unsure" not in events.columns:
        events = events.with_columns(pl.lit(False).alias("unsure"))
    if "source" not in events.columns:
        events = events.with_columns(pl.lit(None, pl.String).alias("source"))
    drawn = (pl.col("inclusion_prob").is_not_null() if "inclusion_prob" in events.columns
             else pl.lit(False)).alias("drawn")
    return (events.sort(["created_at", "event_id"])
            .group_by(["label", "clip_key", "annotator"], maintain_order=True)
            .agg(pl.col("value").last(), pl.col("unsure").fill_null(False).last(), drawn.last(),
                 pl.col("source").last(), pl.col("created_at").last())
            # an unsure answer is no vote, even one written around record_events with a value
            .with_columns(pl.when(pl.col("unsure")).then(None).otherwise(pl.col("value")).alias("value")))


def answered(events: pl.DataFrame) -> pl.DataFrame:
    """Each annotator's latest answer per clip with its word in ``answer``: yes, no or unsure
    (a withdrawn vote is no answer, so it has no row)."""
    answer = (pl.when(pl.col("unsure")).then(pl.lit("unsure")).when(pl.col("value")).then(pl.lit("yes"))
              .when(pl.col("value").is_not_null()).then(pl.lit("no")).otherwise(None))
    return latest_answers(events).with_columns(answer.alias("answer")).filter(pl.col("answer").is_not_null())


def latest_votes(events: pl.DataFrame) -> pl.DataFrame:
    """Events -> each annotator's vote on each clip: the latest event's value, source and time.

    A withdrawn vote (an undo back to no vote) and an unsure answer are no votes, so they have no row.
    """
    return (latest_answers(events).filter(pl.col("value").is_not_null())
            .select("label", "clip_key", "annotator", "value", "source", "created_at"))


def aggregate(events: pl.DataFrame) -> pl.DataFrame:
    """Events -> one row per (label, clip_key): value, pos_cnt, annotator_cnt, conflict, agree.

    Each annotator's latest event counts; the majority over annotators decides; a tie is
    a conflict (``value`` is null there). Unsure answers and withdrawn votes are no votes.
    """
    if events.height == 0:
        return pl.DataFrame(schema={"label": pl.String, "clip_key": pl.String, "value": pl.Boolean,
                                    "pos_cnt": pl.Int32, "annotator_cnt": pl.Int32,
                                    "conflict": pl.Boolean, "agree": pl.Boolean})
    latest = latest_votes(events)
    per_clip = latest.group_by(["label", "clip_key"]).agg(
        pl.col("value").cast(pl.Int32).sum().alias("pos_cnt"),
        pl.len().cast(pl.Int32).alias("annotator_cnt"),
    )
    twice = pl.col("pos_cnt") * 2
    return per_clip.with_columns(
        pl.when(twice > pl.col("annotator_cnt")).then(True)
        .when(twice < pl.col("annotator_cnt")).then(False)
        .otherwise(None).alias("value"),
        (twice == pl.col("annotator_cnt")).alias("conflict"),
        ((pl.col("pos_cnt") == 0) | (pl.col("pos_cnt") == pl.col("annotator_cnt"))).alias("agree"),
    ).select(["label", "clip_key", "value", "pos_cnt", "annotator_cnt", "conflict", "agree"]).sort(["label", "clip_key"])


UNSURE_SCHEMA = {"label": pl.String, "clip_key": pl.String, "unsure_cnt": pl.Int32, "drawn": pl.Boolean}


def unsure_clips(events: pl.DataFrame) -> pl.DataFrame:
    """Clips answered unsure and by nobody yes or no: label, clip_key, unsure_cnt, drawn.

    A clip someone answered yes or no is in :func:`aggregate` (the vote counts, the unsure
    answer of another annotator does not). ``drawn``: an unsure answer was given to a random
    draw, so that draw is left with one labelled clip less (the estimate says how many).
    """
    if events.height == 0:
        return pl.DataFrame(schema=UNSURE_SCHEMA)
    latest = latest_answers(events)
    voted = latest.filter(pl.col("value").is_not_null()).select("label", "clip_key").unique()
    return (latest.filter(pl.col("unsure")).join(voted, on=["label", "clip_key"], how="anti")
            .group_by(["label", "clip_key"]).agg(pl.len().cast(pl.Int32).alias("unsure_cnt"), pl.col("drawn").any())
            .sort(["label", "clip_key"]))


@dataclass(frozen=True)
class LabelSet:
    """One label's clips as a classifier sees them, and how much the annotators agree."""

    label: str
    label_events_version: int | None
    clips: pl.DataFrame  # clip_key, value, pos_cnt, annotator_cnt, conflict, agree
    n_events: int
    annotators: tuple[str, ...]
    unsure: pl.DataFrame = None  # clip_key, unsure_cnt, drawn: answered unsure only (not in clips)

    def __post_init__(self):
        if self.unsure is None:
            object.__setattr__(self, "unsure", pl.DataFrame(schema=UNSURE_SCHEMA).drop("label"))

    @property
    def positives(self) -> list[str]:
        return self.clips.filter(pl.col("value") == True)["clip_key"].to_list()  # noqa: E712

    @property
    def negatives(self) -> list[str]:
        return self.clips.filter(pl.col("value") == False)["clip_key"].to_list()  # noqa: E712

    @property
    def conflicts(self) -> list[str]:
        return self.clips.filter(pl.col("conflict"))["clip_key"].to_list()

    @property
    def labelled(self) -> list[str]:
        """Every clip anyone answered, conflicts and unsure answers included: feeds never show these again."""
        return self.clips["clip_key"].to_list() + self.unsure["clip_key"].to_list()

    @property
    def unsure_keys(self) -> list[str]:
        return self.unsure["clip_key"].to_list()

    @property
    def n_unsure(self) -> int:
        return self.unsure.height

    @property
    def n_unsure_drawn(self) -> int:
        """Random draws answered unsure: the corpus estimate leaves them out as undrawn."""
        return int(self.unsure["drawn"].sum())

    @property
    def n_pos(self) -> int:
        return int((self.clips["value"] == True).sum())  # noqa: E712

    @property
    def n_neg(self) -> int:
        return int((self.clips["value"] == False).sum())  # noqa: E712

    @property
    def n_conflicts(self) -> int:
        return int(self.clips["conflict"].sum())

    @property
    def agreement(self) -> float | None:
        """Share of the clips labelled by two or more annotators on which all of them agree.

        Clips with a single annotator say nothing about agreement, so they are left out;
        None when no clip has two annotators.
        """
        multi = self.clips.filter(pl.col("annotator_cnt") >= 2)
        if multi.height == 0:
            return None
        return float(multi["agree"].mean())

    def digest(self) -> str:
        """A fingerprint of the training content: equal digests train equal models."""
        h = hashlib.sha256()
        for key, value in self.clips.select(["clip_key", "value"]).iter_rows():
            h.update(f"{key}\t{value}\n".encode())
        return h.hexdigest()[:32]

    def summary(self) -> dict:
        return {"label": self.label, "n_pos": self.n_pos, "n_neg": self.n_neg, "n_conflicts": self.n_conflicts,
                "n_unsure": self.n_unsure, "n_clips": self.clips.height, "n_events": self.n_events,
                "n_annotators": len(self.annotators),
                "agreement": self.agreement, "label_events_version": self.label_events_version}

    def rows(self) -> pl.DataFrame:
        """The ``label_sets`` table rows of this label set."""
        return self.clips.select(
            pl.lit(self.label).alias("label"), "clip_key", "value", "pos_cnt", "annotator_cnt", "conflict",
            pl.lit(self.label_events_version, dtype=pl.Int64).alias("label_events_version"),
        )


@dataclass(frozen=True)
class EventsSnapshot:
    """Every label event at one ``label_events`` version, read once.

    For readers of one moment that would each open the table (after an answer the app shows
    the label's counts, the Labels table and the feed previews): pass it as ``snapshot``.
    """

    events: pl.DataFrame
    version: int | None  # None: the table was never written

    def of(self, label: str) -> pl.DataFrame:
        return self.events.filter(pl.col("label") == label)


def events_snapshot(wh: Warehouse) -> EventsSnapshot:
    """The current label events of every label and their version, from one open of the table."""
    return EventsSnapshot(*wh.read_current("label_events"))


def label_set(wh: Warehouse, label: str, version: int | None = None,
              snapshot: EventsSnapshot | None = None) -> LabelSet:
    """The label set of ``label`` at a ``label_events`` version (default: the current one), or of
    the events of ``snapshot``."""
    if snapshot is not None:
        if version is not None:
            raise InputError("a label set is read at a version or from a snapshot, not both")
        events, version = snapshot.of(label), snapshot.version
    elif version is None:  # the current events and their version from one snapshot
        events, version = wh.read_current("label_events", where={"label": label})
    else:
        events = read_events(wh, label, version=version)
    clips = aggregate(events).drop("label")
    annotators = tuple(sorted(set(events["annotator"].to_list()))) if events.height else ()
    return LabelSet(label, version, clips, events.height, annotators, unsure_clips(events).drop("label"))


def labels_overview(wh: Warehouse, snapshot: EventsSnapshot | None = None) -> list[dict]:
    """Every label with events: counts, conflicts, agreement, description (the events of ``snapshot``
    if given, else the current ones)."""
    events = snapshot.events if snapshot is not None else wh.read("label_events")
    if events.height == 0:
        return []
    agg = aggregate(events)
    per_label = agg.group_by("label").agg(
        (pl.col("value") == True).sum().alias("n_pos"),  # noqa: E712
        (pl.col("value") == False).sum().alias("n_neg"),  # noqa: E712
        pl.col("conflict").sum().alias("n_conflicts"),
        pl.col("agree").filter(pl.col("annotator_cnt") >= 2).mean().alias("agreement"),
    )
    unsure = unsure_clips(events).group_by("label").agg(pl.len().alias("n_unsure"))
    per_label = per_label.join(unsure, on="label", how="full", coalesce=True).with_columns(
        pl.col("n_pos", "n_neg", "n_conflicts", "n_unsure").fill_null(0))
    counts = events.group_by("label").agg(pl.len().alias("n_events"),
                                          pl.col("annotator").n_unique().alias("n_annotators"),
                                          pl.col("created_at").max().alias("last_labelled_at"))
    descriptions = _descriptions(wh)
    out = []
    for row in per_label.join(counts, on="label").sort("label").iter_rows(named=True):
        row["description"] = descriptions.get(row["label"])
        out.append(row)
    return out


def known_labels(wh: Warehouse, snapshot: EventsSnapshot | None = None) -> list[str]:
    if snapshot is not None:
        return sorted(snapshot.events["label"].unique().to_list())
    if not wh.exists("label_events"):
        return []
    col = wh.arrow("label_events", columns=["label"]).column("label")
    import pyarrow.compute as pc

    return sorted(pc.unique(col).to_pylist())


# -- export --------------------------------------------------------------------

EXPORT_FORMATS = ("csv", "parquet")


def export_label_set(wh: Warehouse, label: str, path: str | Path, format: str | None = None,
                     overwrite: bool = False) -> dict:
    """Write the current label set of ``label`` (its ``label_sets`` rows) to a CSV or Parquet file.

    ``format`` defaults to the file's suffix. Returns the path, format, row count and the
    ``label_events`` version the set was read at.
    """
    ls = label_set(wh, label)
    return _export(ls.rows().sort("clip_key"), path, format, overwrite) | {
        "label": label, "label_events_version": ls.label_events_version}


def export_events(wh: Warehouse, label: str, path: str | Path, format: str | None = None,
                  overwrite: bool = False) -> dict:
    """Write every raw label event of ``label`` (undos included), oldest first, to CSV or Parquet.

    The columns are those of ``label_events``; :func:`read_label_file` reads the file back.
    """
    events, version = wh.read_current("label_events", where={"label": label})
    return _export(events.sort(["created_at", "event_id"]), path, format, overwrite) | {
        "label": label, "label_events_version": version}


def _export(frame: pl.DataFrame, path: str | Path, format: str | None, overwrite: bool) -> dict:
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    format = format or suffix
    if format not in EXPORT_FORMATS:
        raise InputError(f"export format {format!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    if suffix != format:
        raise InputError(f"{path.name}: a {format} export needs a .{format} file name")
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists: choose another file name (an export never replaces a file)")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent} is not a folder")
    # written beside the target and renamed: a reader never sees half a file
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        if format == "csv":
            frame.write_csv(partial)
        else:
            frame.write_parquet(partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return {"path": str(path), "format": format, "rows": frame.height}


# -- descriptions -------------------------------------------------------------

def set_description(wh: Warehouse, label: str, text: str, annotator: str | None = None) -> int:
    """Store a label's description: the text query of its zero-shot feed. The latest wins."""
    validate_label(label)
    if not isinstance(text, str) or not text.strip():
        raise InputError("a description must be non-empty text")
    if len(text) > 1000:
        raise InputError(f"a description is at most 1000 characters ({len(text)} given)")
    return wh.append("label_descriptions", [{
        "label": label, "description": text.strip(),
        "annotator": validate_person(annotator) if annotator is not None else login_name(),
        "created_at": datetime.now(timezone.utc),
    }])


def _descriptions(wh: Warehouse, label: str | None = None) -> dict[str, str]:
    frame = wh.read("label_descriptions", where={"label": label} if label else None)
    if frame.height == 0:
        return {}
    latest = frame.sort("created_at").group_by("label", maintain_order=True).agg(pl.col("description").last())
    return dict(latest.iter_rows())


def description(wh: Warehouse, label: str) -> str | None:
    """The label's latest description, or None."""
    return _descriptions(wh, label).get(label)


def text_query(wh: Warehouse, label: str) -> str:
    """What zero-shot search looks for: the description, else the name in words."""
    return description(wh, label) or re.sub(r"[_-]+", " ", label).strip()


# -- stored text embeddings ------------------------------------------------------
# An encoder without a text tower (an imported corpus) brings its labels' text embeddings
# with it; zero-shot reads them here instead of encoding the text query.

def text_embeddings_path(settings, encoder_id: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", encoder_id)
    return Path(settings.home) / "text-embeddings" / f"{slug}.json"


def store_text_embeddings(settings, encoder_id: str, vectors: Mapping[str, Iterable[float]]) -> Path:
    """Write the labels' text embeddings of ``encoder_id`` (replacing the previous file whole)."""
    path = text_embeddings_path(settings, encoder_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({k: [float(x) for x in v] for k, v in vectors.items()}))
    tmp.replace(path)
    return path


def stored_text_embedding(settings, label: str, encoder_id: str) -> np.ndarray | None:
    """The stored text embedding of ``label`` for ``encoder_id`` (L2-normalised), or None."""
    path = text_embeddings_path(settings, encoder_id)
    if not path.is_file():
        return None
    vector = json.loads(path.read_text()).get(label)
    if vector is None:
        return None
    v = np.asarray(vector, dtype=np.float32)
    return v / np.linalg.norm(v)


# -- importing -----------------------------------------------------------------

_TRUE = {"true", "t", "yes", "y", "1", "pos", "positive"}
_FALSE = {"false", "f", "no", "n", "0", "neg", "negative"}


UNSURE = "unsure"


def parse_value(raw: Any) -> bool | str:
    """A file's value: a boolean, or ``UNSURE`` for the answer "unsure"."""
    if isinstance(raw, str) and raw.strip().lower() == UNSURE:
        return UNSURE
    if _is_bool(raw):
        return bool(raw)
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    text = str(raw).strip().lower() if raw is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(f"value {raw!r} is not a boolean (use true/false, yes/no or 1/0, or unsure)")


def read_label_file(path: str | Path) -> list[dict]:
    """Rows of a CSV or Parquet label file, with values parsed; every bad row is reported."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"label file {path} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        elif path.suffix.lower() in (".csv", ".tsv", ".txt"):
            frame = pl.read_csv(path, infer_schema=False, separator="\t" if path.suffix.lower() == ".tsv" else ",")
        else:
            raise InputError(f"{path}: label files are .csv, .tsv or .parquet")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path} cannot be read: {exc}") from exc
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    missing = [c for c in ("label", "clip_key", "value") if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; expected label, clip_key, value[, annotator, source]")
    extra = [c for c in frame.columns if c not in EVENT_FIELDS or c == "unsure"]  # unsure is a value
    if extra:
        raise InputError(f"{path}: unknown column(s) {extra}; expected label, clip_key, value[, annotator, source] "
                         f"and optionally the provenance columns {', '.join(PROVENANCE)}")
    rows, problems = [], []
    for i, row in enumerate(frame.iter_rows(named=True)):
        try:
            row["value"] = parse_value(row["value"])
            if row["value"] == UNSURE:
                row["value"], row["unsure"] = None, True
        except InputError as exc:
            problems.append(f"row {i + 2 if path.suffix.lower() != '.parquet' else i + 1}: {exc}")
        rows.append(row)
    if problems:
        more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
        raise InputError(f"{path}: nothing was imported: " + "; ".join(problems[:MAX_REPORTED]) + more)
    if not rows:
        raise InputError(f"{path} holds no rows")
    return rows


def import_label_file(wh: Warehouse, path: str | Path, annotator: str | None = None) -> tuple[int, list[dict]]:
    """Append the label events of a CSV or Parquet file; (label_events version, the rows written).

    A row without a source came from the import; an empty cell is a missing value. Nothing is
    written unless every row is valid.
    """
    rows = read_label_file(path)
    for row in rows:
        row.setdefault("source", None)
        row["source"] = row["source"] or "import"
        for name in ("annotator",) + PROVENANCE:  # an empty cell is a missing value
            if name in row and (row[name] is None or str(row[name]).strip() == ""):
                row[name] = None
    try:
        version = record_events(wh, rows, annotator=annotator, source="import")
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    return version, rows
