"""Where the clips to label come from: one registry of sources, read by the policy, the app,
the command line and Dagster.

A source is a stored feed of the label's latest model (``va_core.feeds.STORED``: each one is
a source here, its own entry), the zero-shot feed, "more like this" (``similar``: the clips
nearest one clip) or ``next``: the label's policy choosing among the sources that are its
arms. A new source is one entry in :data:`SOURCES` (a new stored feed, one in ``feeds.STORED``:
the model's build computes it, and the build sits below this module).

This module sits above ``feeds`` and ``policy``: ``next`` needs the policy, the policy the
feeds; the policy gets its arms and how to fetch from them here (:func:`next_clips`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from va_core import feeds
from va_core.errors import InputError, NotFound
from va_core.feeds import (AUDIT, NEXT, RANDOM, ZERO_SHOT, all_feeds, feed_item, latest_model_version,
                           random_unlabelled, stored_feed, with_clip_info, zero_shot)
from va_core.labels import label_set, validate_label
from va_core.policy import choose_next
from va_core.queries import has_query
from va_core.warehouse import Warehouse

__all__ = ["Ask", "Source", "SOURCES", "NEXT", "RANDOM", "AUDIT", "ZERO_SHOT", "SIMILAR", "registry", "source",
           "source_names", "arms", "get_feed", "next_clips", "all_feeds"]

SIMILAR = "similar"


@dataclass(frozen=True)
class Ask:
    """What a source is asked for: ``k`` clips for ``label``, none of ``exclude`` (the labelled
    clips), given the label's latest ``model_version`` (None before its first model)."""

    settings: object
    label: str
    source: str
    k: int
    exclude: Sequence[str]
    model_version: int | None
    encoder_id: str | None = None
    like: str | None = None  # the clip a ``needs_clip`` source starts from


@dataclass(frozen=True)
class Source:
    """One source of clips to label.

    ``fetch(ask) -> items`` (feed items: ``feed``, ``rank``, ``clip_key``, ``score``,
    ``provenance``, and the clip's video and times). ``needs_model``: shows nothing before the
    label's first model. ``arm``: the policy may choose it. ``sampled``: a probability draw
    (the items' provenance carries inclusion probabilities, and the corpus estimate uses their
    labels). ``needs_text``: needs the label's text query in the corpus's embedding space.
    ``needs_clip``: starts from a clip (``like``), so it is not offered in the app's picker or
    the command line.
    """

    name: str
    title: str  # for the app's source picker
    description: str  # one line for people
    fetch: Callable[[Ask], list[dict]]
    needs_model: bool = False
    arm: bool = False
    sampled: bool = False
    needs_text: bool = False
    needs_clip: bool = False

    def usable(self, settings, label: str, encoder_id: str | None) -> bool:
        """Whether this source can answer for ``label`` on a corpus of ``encoder_id`` with these settings."""
        return not self.needs_text or has_query(settings, label, feeds.encoder_id_for(settings, encoder_id))


# -- how each kind of source fetches ----------------------------------------------------

def _from_stored(ask: Ask) -> list[dict]:
    if ask.model_version is None:
        # no model scores to pick or stratify by yet: a sampled feed is one uniform draw
        items = random_unlabelled(ask.settings, ask.label, ask.k, ask.exclude, ask.encoder_id)
        return with_clip_info(Warehouse.from_settings(ask.settings), [{**i, "feed": ask.source} for i in items])
    return stored_feed(ask.settings, ask.label, ask.source, ask.k, exclude=ask.exclude, model_version=ask.model_version)


def _zero_shot(ask: Ask) -> list[dict]:
    return zero_shot(ask.settings, ask.label, ask.k, ask.encoder_id, exclude=ask.exclude)


def _similar(ask: Ask) -> list[dict]:
    from va_core.search import MAX_K, similar_clips

    if not isinstance(ask.like, str) or not ask.like:
        raise InputError(f"'more like this' needs the clip to start from, got {ask.like!r}")
    labelled = set(ask.exclude)
    found = similar_clips(ask.settings, ask.like, min(ask.k + len(labelled), MAX_K))
    rows = [r for r in found.iter_rows(named=True) if r["clip_key"] not in labelled][:ask.k]
    # ranked among the unlabelled clips, as the stored feeds are
    items = [feed_item(SIMILAR, i + 1, {"clip_key": r["clip_key"], "score": float(r["score"])}, None)
             for i, r in enumerate(rows)]
    return with_clip_info(Warehouse.from_settings(ask.settings), items)


def _next(ask: Ask) -> list[dict]:
    return next_clips(ask.settings, ask.label, ask.k, encoder_id=ask.encoder_id)["clips"]


def _stored_source(feed: feeds.Feed) -> Source:
    # a random draw exists before the first model (uniform); a ranking by score does not
    return Source(feed.name, feed.title, feed.description, _from_stored, needs_model=not feed.sampled, arm=True,
                  sampled=feed.sampled)


# The sources that are not stored feeds, in the order they are shown after them ("next" first).
SOURCES: dict[str, Source] = {s.name: s for s in (
    Source(NEXT, "next (let va choose)", "the label's policy picks the source: zero-shot or random before the "
           "first model, an audit round while the estimate needs one, else the arm it learned pays best", _next),
    Source(ZERO_SHOT, "zero-shot (description)", "the clips nearest the label's description (its text query), "
           "no model needed", _zero_shot, arm=True, needs_text=True),
    Source(SIMILAR, "more like this", "the clips nearest one clip by embedding", _similar, needs_clip=True),
)}


def registry() -> dict[str, Source]:
    """Every source by name: ``next``, the stored feeds, then the others."""
    own = dict(SOURCES)
    first = {NEXT: own.pop(NEXT)} if NEXT in own else {}
    return {**first, **{name: _stored_source(feed) for name, feed in feeds.STORED.items()}, **own}


def source(name: str) -> Source:
    """The source called ``name``, or InputError naming the known ones."""
    found = registry().get(name)
    if found is None:
        raise InputError(f"unknown source {name!r}; sources are: {', '.join(source_names())}")
    return found


def source_names() -> list[str]:
    """The sources a person can ask for by name (``va feeds --feed``, the app's picker)."""
    return [name for name, s in registry().items() if not s.needs_clip]


def arms() -> tuple[str, ...]:
    """The sources the policy chooses among, in registry order."""
    return tuple(name for name, s in registry().items() if s.arm)


def get_feed(settings, label: str, feed: str | None = None, k: int = 10, encoder_id: str | None = None,
             exclude: Sequence[str] | None = None, like: str | None = None) -> list[dict]:
    """Clips to label next from one source (``next``/None: the label's policy chooses).

    ``exclude``: the label's labelled clips when the caller has read them already;
    ``like``: the clip a ``similar`` source starts from.
    """
    validate_label(label)
    if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
        raise InputError(f"k must be a positive number of clips, got {k!r}")
    entry = source(NEXT if feed is None else feed)
    wh = Warehouse.from_settings(settings)
    version = latest_model_version(wh, label)
    if entry.needs_model and version is None:
        raise NotFound(f"{label} has no model yet, so no {entry.name} feed: train it (`va train {label}`) "
                       f"or use --feed {ZERO_SHOT}")
    labelled = label_set(wh, label).labelled if exclude is None else list(exclude)
    return entry.fetch(Ask(settings, label, entry.name, k, labelled, version, encoder_id, like))


def next_clips(settings, label: str, k: int = 25, policy: str | None = None,
               encoder_id: str | None = None) -> dict:
    """The next ``k`` clips for ``label`` from the source its policy picks among :func:`arms`
    (``va_core.policy.choose_next``: ``{"label", "source", "policy", "clips", "reward", "counts", "means"}``)."""
    entries = registry()
    names = arms()
    usable = [a for a in names if entries[a].usable(settings, label, encoder_id)]

    def fetch(name: str, n: int, exclude: list[str], model_version: int | None) -> list[dict]:
        return entries[name].fetch(Ask(settings, label, name, n, exclude, model_version, encoder_id))

    return choose_next(settings, label, k, names, usable, fetch, policy=policy, encoder_id=encoder_id)
