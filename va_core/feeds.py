"""The active-learning feeds: which clips to show an expert next.

After each build, over the clips nobody labelled yet for the label:

- ``top_positive``: the highest scores (confirm or correct what the model believes most);
- ``top_negative``: the lowest scores (find positives the model is sure are not);
- ``borderline``: the scores closest to the model's decision threshold, where it is least
  sure. The threshold is the score with the best F1 on held-out labelled clips (stored in
  the model artifact), not 0.5: a model trained on few positives rarely scores anything
  above 0.5, and "closest to 0.5" would then just repeat top_positive. Ties go to the
  higher score;
- ``random``: a uniform sample, seeded by (label, model version), so one model version
  always shows the same random feed;
- ``audit``: a stratified random sample over the model's scores (``va_core.quality``), most
  draws among the high scores, every stratum sampled.

``random`` and ``audit`` are probability samples of the unlabelled clips: their rows store
the draw's design (``draw_id``, stratum, its size N_h, inclusion probability n_h/N_h, score
bounds), the items carry it under ``provenance``, and labels given with it let
``va_core.quality`` estimate the model's quality on the corpus. Their draws are fixed per
model version: asking for more than was stored returns what is left, never a new draw.

A label without a model gets a ``zero_shot`` feed: cosine similarity between the clips and
the text embedding of the label's description (else its name in words).

The stored feeds are the entries of :data:`STORED` (a new one is one entry there: the build,
``va_core.train``, computes and stores it, and ``va_core.sources`` makes it a source of clips
and an arm of the policy).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import polars as pl

from va_core.errors import InputError, NotFound
from va_core.labels import label_set, validate_label
from va_core.warehouse import Warehouse

__all__ = ["Feed", "Picked", "STORED", "DESIGN", "ZERO_SHOT", "NEXT", "RANDOM", "AUDIT", "FEED_SIZE", "THRESHOLD",
           "stored_feeds", "stored_entry", "rank", "ordered_rows", "uniform_rows", "draw_id", "feed_seed",
           "compute_feeds", "feed_item", "labelled_mask", "with_clip_info", "zero_shot", "stored_feed",
           "random_unlabelled", "all_feeds", "latest_model_version", "encoder_id_for"]

DESIGN = ("draw_id", "stratum", "stratum_size", "inclusion_prob", "stratum_low", "stratum_high")
ZERO_SHOT = "zero_shot"
NEXT = "next"  # the policy chooses (va_core.policy)
RANDOM = "random"
AUDIT = "audit"
FEED_SIZE = 100  # clips stored per feed and model version
THRESHOLD = 0.5


def encoder_id_for(settings, encoder_id: str | None = None) -> str:
    """The encoder whose embeddings a label is trained and scored on: the settings' by default."""
    if encoder_id:
        return encoder_id
    from va_core.encoders import parse_spec  # pure: no torch

    return parse_spec(settings.encoder).encoder_id


def feed_seed(label: str, model_version: int) -> int:
    return zlib.crc32(f"{label}:{int(model_version)}".encode())


def ordered_rows(key: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` of ``candidates`` (row numbers) with the smallest ``key`` (one value per candidate),
    ties by row number (clip key order), so a ranking is stable."""
    k = min(int(k), len(candidates))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(key, k - 1)[:k] if k < len(key) else np.arange(len(key))
    order = part[np.lexsort((candidates[part], key[part]))]
    return candidates[order]


def uniform_rows(candidates: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` of ``candidates`` drawn uniformly without replacement, seeded."""
    k = min(int(k), len(candidates))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.random.default_rng(seed).choice(candidates, size=k, replace=False)


@dataclass(frozen=True)
class Picked:
    """The rows a feed picked, best first, and for a probability draw its design (columns of DESIGN
    but ``draw_id``, one value per row)."""

    rows: np.ndarray
    design: dict | None = None


def _by_key(key):
    def pick(scores, candidates, k, seed, threshold):
        return Picked(ordered_rows(key(np.asarray(scores, dtype=np.float64)[candidates], threshold), candidates, k))
    return pick


def _uniform(scores, candidates, k, seed, threshold):
    rows = uniform_rows(candidates, k, seed)
    n, n_all = len(rows), len(candidates)
    return Picked(rows, {"stratum": np.zeros(n, np.int32), "stratum_size": np.full(n, n_all, np.int64),
                         "inclusion_prob": np.full(n, n / n_all if n_all else np.nan),
                         "stratum_low": np.full(n, np.nan), "stratum_high": np.full(n, np.nan)})


def _stratified(scores, candidates, k, seed, threshold):
    from va_core.quality import stratified_draw

    audit = stratified_draw(scores, candidates, k, seed ^ 0xA0D17)
    return Picked(audit.rows, {"stratum": audit.stratum.astype(np.int32),
                               "stratum_size": audit.stratum_size.astype(np.int64),
                               "inclusion_prob": audit.inclusion_prob,
                               "stratum_low": audit.stratum_low, "stratum_high": audit.stratum_high})


@dataclass(frozen=True)
class Feed:
    """A feed stored with every model version: how it picks unlabelled clips by the model's scores.

    ``pick(scores, candidates, k, seed, threshold) -> Picked``; ``sampled``: a probability draw
    (its design is stored and the corpus estimate uses its labels; before a label's first
    model it is a uniform draw). Every feed here is also a source of clips
    (``va_core.sources``) and an arm of the policy.
    """

    name: str
    title: str  # for the app's source picker
    description: str  # one line for people
    pick: Callable[..., Picked]
    sampled: bool = False


# The stored feeds, in the order they are shown. A new one is one entry here.
STORED: dict[str, Feed] = {f.name: f for f in (
    Feed("top_positive", "top positives", "the highest scores: confirm or correct what the model believes most",
         _by_key(lambda s, t: -s)),
    Feed("top_negative", "top negatives", "the lowest scores: find positives the model is sure are not",
         _by_key(lambda s, t: s)),
    # nearer the threshold first; a tie goes to the higher score
    Feed("borderline", "borderline", "the scores closest to the model's decision threshold, where it is least sure",
         _by_key(lambda s, t: np.abs(s - t) - s * 1e-12)),
    Feed(RANDOM, "random", "a uniform random sample of the unlabelled clips", _uniform, sampled=True),
    Feed(AUDIT, "audit (measures the model on the corpus)",
         "a random sample stratified by the model's score: what the corpus estimate of its quality rests on",
         _stratified, sampled=True),
)}


def stored_feeds() -> tuple[str, ...]:
    """The names of the feeds stored with every model version."""
    return tuple(STORED)


def stored_entry(feed: str) -> Feed:
    """The stored feed called ``feed``."""
    found = STORED.get(feed)
    if found is None:
        raise InputError(f"unknown feed {feed!r}; feeds are: {', '.join(STORED)}")
    return found


def rank(feed: str, scores: np.ndarray, candidates: np.ndarray, k: int, seed: int = 0,
         threshold: float = THRESHOLD) -> np.ndarray:
    """Row numbers of the ``k`` clips of ``feed`` among ``candidates`` (row numbers), best first."""
    return stored_entry(feed).pick(scores, np.asarray(candidates, dtype=np.int64), k, seed, threshold).rows


def draw_id(feed: str, model_version: int) -> str:
    return f"{feed}@v{int(model_version)}"


_FEED_SCHEMA = {"feed": pl.String, "rank": pl.Int32, "clip_key": pl.String, "score": pl.Float32,
                "draw_id": pl.String, "stratum": pl.Int32, "stratum_size": pl.Int64, "inclusion_prob": pl.Float64,
                "stratum_low": pl.Float64, "stratum_high": pl.Float64}


def compute_feeds(keys: Sequence[str], scores: np.ndarray, labelled: np.ndarray, label: str,
                  model_version: int, k: int = FEED_SIZE, feeds: Sequence[str] | None = None,
                  threshold: float = THRESHOLD) -> pl.DataFrame:
    """The feeds of one model version (every stored feed by default): feed, rank, clip_key, score
    and, for the sampled feeds, their design (labelled clips excluded)."""
    candidates = np.flatnonzero(~np.asarray(labelled, dtype=bool))
    parts = []
    for name in stored_feeds() if feeds is None else feeds:
        picked = stored_entry(name).pick(scores, candidates, k, feed_seed(label, model_version), threshold)
        rows, n = picked.rows, len(picked.rows)
        design = ({"draw_id": [draw_id(name, model_version)] * n, **picked.design} if picked.design is not None
                  else {c: [None] * n for c in DESIGN})
        frame = pl.DataFrame({
            "feed": [name] * n,
            "rank": np.arange(1, n + 1, dtype=np.int32),
            "clip_key": np.asarray(keys, dtype=object)[rows].tolist() if n else [],
            "score": np.asarray(scores, dtype=np.float32)[rows],
            **design,
        }, schema=_FEED_SCHEMA)
        parts.append(frame.with_columns(pl.col("stratum_low").fill_nan(None), pl.col("stratum_high").fill_nan(None),
                                        pl.col("inclusion_prob").fill_nan(None)))
    return pl.concat(parts)


def feed_item(feed: str, position: int, row: Mapping, model_version: int | None) -> dict:
    """A clip of a feed as callers see it, with the ``provenance`` to record with its label."""
    score = row.get("score")
    provenance = {"rank": int(row["rank"]) if row.get("rank") is not None else position,
                  "chosen_by_version": model_version, "chosen_score": None if score is None else float(score),
                  **{k: row.get(k) for k in DESIGN}}
    item = {"feed": feed, "rank": position, "clip_key": row["clip_key"], "score": None if score is None else float(score),
            "provenance": {k: v for k, v in provenance.items() if v is not None}}
    if model_version is not None:
        item["model_version"] = model_version
    return item


def labelled_mask(corpus_keys, labelled_keys: Sequence[str]) -> np.ndarray:
    """True for the corpus rows whose key was labelled (keys outside the corpus are ignored).

    Given a Corpus, its key index is used (cost grows with the labels, not the corpus);
    np.isin on object arrays took seconds for 100k clips.
    """
    from va_core.embeddings import Corpus

    if isinstance(corpus_keys, Corpus):
        mask = np.zeros(len(corpus_keys), dtype=bool)
        present = [k for k in labelled_keys if corpus_keys.has(k)]
        mask[corpus_keys.positions(present)] = True
        return mask
    wanted = set(labelled_keys)
    keys = list(corpus_keys)
    return np.fromiter((k in wanted for k in keys), dtype=bool, count=len(keys))


def with_clip_info(wh, items: list[dict]) -> list[dict]:
    """Add video_id, start_s, end_s so a person can find the clip."""
    if not items:
        return items
    info = wh.read("clips", columns=["clip_key", "video_id", "start_s", "end_s"],
                   where={"clip_key": [i["clip_key"] for i in items]})
    by_key = {r["clip_key"]: r for r in info.iter_rows(named=True)}
    for item in items:
        extra = by_key.get(item["clip_key"], {})
        item.update({k: extra.get(k) for k in ("video_id", "start_s", "end_s")})
    return items


def zero_shot(settings, label: str, k: int = 10, encoder_id: str | None = None,
              exclude: Sequence[str] | None = None) -> list[dict]:
    """Clips most similar to the label's text query, unlabelled ones only."""
    from va_core.embeddings import load_corpus
    from va_core.queries import query_vector

    wh = Warehouse.from_settings(settings)
    wanted = encoder_id_for(settings, encoder_id)
    query, vector = query_vector(settings, label, wanted)
    corpus = load_corpus(wh, wanted)
    scores = corpus.matrix @ vector
    if exclude is None:
        exclude = label_set(wh, label).labelled
    candidates = np.flatnonzero(~labelled_mask(corpus, exclude))
    rows = ordered_rows(-np.asarray(scores, dtype=np.float64)[candidates], candidates, k)
    items = [{**feed_item(ZERO_SHOT, i + 1, {"clip_key": corpus.keys[r], "score": float(scores[r])}, None),
              "query": query} for i, r in enumerate(rows)]
    return with_clip_info(wh, items)


def _threshold(wh, label: str, version: int) -> float:
    from va_core.registry import load_model

    return load_model(wh, label, version).threshold


def latest_model_version(wh, label: str) -> int | None:
    from va_core.registry import latest_model

    row = latest_model(wh, label)
    return None if row is None else int(row["model_version"])


def stored_feed(settings, label: str, feed: str, k: int = 10, exclude: Sequence[str] | None = None,
                model_version: int | None = None) -> list[dict]:
    """The ``feed`` of the label's latest model (``model_version`` when the caller has read it),
    minus clips labelled since it was built."""
    wh = Warehouse.from_settings(settings)
    sampled = stored_entry(feed).sampled
    version = latest_model_version(wh, label) if model_version is None else int(model_version)
    if version is None:
        raise NotFound(f"{label} has no model yet: train it (`va train {label}`) or use --feed {ZERO_SHOT}")
    labelled = set(label_set(wh, label).labelled if exclude is None else exclude)
    stored = wh.read("feeds", where={"label": label, "model_version": version, "feed": feed}).sort("rank")
    fresh = stored.filter(~pl.col("clip_key").is_in(list(labelled)))
    if fresh.height < k and stored.height >= FEED_SIZE and not sampled:
        # more clips than were stored are wanted: rank again from the model's corpus scores
        # (not the sampled feeds: their draw is their design, and a new one would be another draw)
        scores = wh.read("clip_scores", columns=["clip_key", "score"], where={"label": label, "model_version": version})
        if scores.height:
            scores = scores.sort("clip_key")
            keys = np.asarray(scores["clip_key"].to_list(), dtype=object)
            fresh = compute_feeds(keys, scores["score"].to_numpy(), labelled_mask(keys, labelled), label,
                                  version, k=k, feeds=[feed], threshold=_threshold(wh, label, version))
    items = [feed_item(feed, i + 1, r, version) for i, r in enumerate(fresh.head(k).iter_rows(named=True))]
    return with_clip_info(wh, items)


def random_unlabelled(settings, label: str, k: int, exclude: Sequence[str], encoder_id: str | None = None) -> list[dict]:
    """A uniform draw of unlabelled clips for a label without a model (no stored random feed yet).

    Seeded by label and labelled set, so asking again before labelling returns the same draw;
    its design (one stratum of every unlabelled clip) goes with each item's provenance.
    """
    import hashlib

    from va_core.embeddings import load_corpus
    from va_core.quality import simple_draw_design

    corpus = load_corpus(Warehouse.from_settings(settings), encoder_id_for(settings, encoder_id))
    candidates = np.flatnonzero(~labelled_mask(corpus, exclude))
    digest = hashlib.sha256("\n".join([label, *sorted(exclude)]).encode()).hexdigest()[:12]
    rows = uniform_rows(candidates, k, feed_seed(label, len(exclude)))
    design = {"draw_id": f"{RANDOM}@{digest}", **simple_draw_design(len(rows), len(candidates))}
    return [feed_item(RANDOM, i + 1, {"clip_key": corpus.keys[r], "score": None, "rank": i + 1, **design}, None)
            for i, r in enumerate(rows)]


def all_feeds(settings, label: str, k: int = 10, encoder_id: str | None = None) -> dict[str, list[dict]]:
    """Every feed of the label's latest model, or only ``zero_shot`` when it has none yet."""
    wh = Warehouse.from_settings(settings)
    validate_label(label)
    if latest_model_version(wh, label) is None:
        return {ZERO_SHOT: zero_shot(settings, label, k, encoder_id)}
    exclude = label_set(wh, label).labelled
    return {f: stored_feed(settings, label, f, k, exclude=exclude) for f in stored_feeds()}
