"""One model version of one label: label set -> classifier -> evaluation -> clip scores -> feeds.

:func:`train_label` is what the UI's Build button, the orchestrator and ``va train`` call.
Its steps are public functions too, so the orchestrator can run them one asset at a time;
``train_label`` only composes them. Every row written carries the lineage:
``label_events_version`` (the ``label_events`` table version the label set was read at)
and ``encoder_id`` (the embeddings the model was fitted on).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pyarrow as pa

from va_core import checks as model_checks
from va_core import learn, quality
from va_core.embeddings import Corpus, load_corpus
from va_core.errors import InputError, VAError
from va_core.feeds import FEED_SIZE, compute_feeds, encoder_id_for, labelled_mask
from va_core.labels import LabelSet, label_set, login_name, validate_label
from va_core.learn import (DEFAULT_TRAINER, MIN_PER_CLASS, TRAINERS, Evaluation, LinearModel, diversity_score,
                           evaluate, fit, get_trainer, ordered)
from va_core.registry import CANDIDATE, label_encoder_id, label_lock, latest_model, stage_event
from va_core.warehouse import CommitConflict, Compare, Warehouse, concurrently

__all__ = ["TrainResult", "TrainingData", "train_label", "label_trainer", "commit_version", "corpus_for", "label_embeddings",
           "build_label_set", "training_data", "fit_classifier", "choose_classifier", "evaluate_classifier",
           "estimate_quality", "corpus_whitening", "CORPUS_CHANGED", "version_scorer", "version_estimates",
           "label_diversity", "score_corpus", "build_feeds",
           "run_checks", "VERSION_CLAIMS", "VersionClaimFailed", "next_model_version", "claim_model_version",
           "write_scores", "write_feeds", "write_evaluation", "write_model", "prune_older_versions", "describe_quality"]


@dataclass
class TrainResult:
    label: str
    model_version: int
    created: bool  # False: this label set was already trained; nothing was written
    trainer: str
    stage: str
    label_events_version: int | None
    encoder_id: str
    n_pos: int
    n_neg: int
    n_conflicts: int
    agreement: float | None
    ap: float | None  # the corpus estimate (va_core.quality); None until audit labels exist
    ap_std: float  # spread of the labelled-set AP
    baseline_ap: float  # the random baseline on the labelled set
    method: str  # how the labelled-set AP was measured
    diversity: float | None
    checks_passed: bool
    checks: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    labelled_ap: float | None = None  # AP on the labelled set: biased upwards, feeds chose those clips
    ap_low: float | None = None
    ap_high: float | None = None
    n_audit: int = 0
    ap_method: str = ""
    audit_needed: int = 0  # labelled draws missing before the estimate is more than provisional
    quality: dict = field(default_factory=dict)  # the whole estimate: precision, recall, prevalence, ...
    n_audit_unsure: int = 0  # random draws answered unsure: left out of the estimate as undrawn

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainingData:
    """The labelled clips a classifier sees, in the reference row order (conflicts left out),
    the label's text query the trainer starts from (None when there is none) and the corpus's
    whitening (``learn.whitening``: label-free, the shape of the trainer's other prior).
    ``walks``: the regularisation per prior shape that the label's previous version chose, for
    the candidate with the query and the one without (``{"with_query": {shape: lam}, ...}``):
    where this build's searches start (``learn.fit_prior``'s ``near``)."""

    keys: list[str]
    y: np.ndarray
    X: np.ndarray
    query: np.ndarray | None = None
    whitening: np.ndarray | None = None
    walks: dict | None = None

    @property
    def near(self) -> dict | None:
        """The previous version's choices for this candidate (with or without the query)."""
        return (self.walks or {}).get("with_query" if self.query is not None else "without_query")


# -- the steps -----------------------------------------------------------------------

def corpus_for(settings, encoder_id: str | None = None) -> Corpus:
    return load_corpus(Warehouse.from_settings(settings), encoder_id_for(settings, encoder_id))


def label_embeddings(settings, label: str, encoder_id: str | None = None, features: str | None = None) -> str:
    """The encoder id a label trains and is scored on: ``encoder_id`` if given, else the feature
    set (clip, motion, both) asked for, else its latest model's, else CLIP's."""
    return encoder_id or label_encoder_id(Warehouse.from_settings(settings), label, encoder_id_for(settings), features)


def build_label_set(wh: Warehouse, label: str, version: int | None = None, write: bool = True) -> LabelSet:
    """Aggregate the label's events (at a ``label_events`` version) and store them in ``label_sets``."""
    ls = label_set(wh, label, version=version)
    if write:
        wh.replace("label_sets", {"label": label}, ls.rows())
    return ls


def training_data(ls: LabelSet, corpus: Corpus, settings=None) -> TrainingData:
    """``settings`` (of the home) give the trainer the label's text query as its prior."""
    if ls.n_pos < MIN_PER_CLASS or ls.n_neg < MIN_PER_CLASS:
        raise InputError(f"{ls.label} needs at least {MIN_PER_CLASS} positive and {MIN_PER_CLASS} negative "
                         f"labels to train (has {ls.n_pos} positive, {ls.n_neg} negative, "
                         f"{ls.n_conflicts} conflicts)")
    keys, y = ordered(ls.positives, ls.negatives)
    X = corpus.matrix[corpus.positions(keys)]
    whitening = corpus_whitening(corpus)
    if settings is None:
        return TrainingData(keys, y, X, whitening=whitening)
    from va_core.queries import prior_vector

    return TrainingData(keys, y, X, prior_vector(settings, ls.label, corpus.encoder_id), whitening)


_whitenings: dict[int, tuple] = {}


def corpus_whitening(corpus: Corpus) -> np.ndarray:
    """``learn.whitening`` of the corpus's matrix, once per matrix in this process (under a
    second on 100k clips; ``load_corpus`` keeps one matrix per embeddings version, so every
    build of every label shares it). Held by a weak reference: a superseded matrix is freed."""
    import weakref

    for key in [k for k, (ref, _) in _whitenings.items() if ref() is None]:
        _whitenings.pop(key, None)
    hit = _whitenings.get(id(corpus.matrix))
    if hit is not None and hit[0]() is corpus.matrix:
        return hit[1]
    W = learn.whitening(corpus.matrix)
    _whitenings[id(corpus.matrix)] = (weakref.ref(corpus.matrix), W)
    return W


def fit_classifier(data: TrainingData, trainer: str = DEFAULT_TRAINER) -> LinearModel:
    """The model that is stored and served: fitted on every non-conflicting labelled clip."""
    return fit(data.X, data.y, trainer, data.query, whitening=data.whitening, near=data.near)


def choose_classifier(wh: Warehouse, ls: LabelSet, corpus: Corpus, data: TrainingData,
                      trainer: str = DEFAULT_TRAINER, cache: dict | None = None) -> LinearModel:
    """The model to store. With a text query, two candidates: the model that starts from it and
    one that does not, each regularised by its evidence. The evidence cannot judge the query's
    own error (both models are wrong somewhere, and the feeds chose which clips were labelled),
    the corpus estimate can: once the label's audit labels suffice, the candidate without the
    query is kept when its estimated corpus AP is higher beyond the draws' noise (the paired
    difference's 90% interval above 0, ``quality.paired_difference``); else, and before, the
    query's model: the expert's description is the prior, and a point estimate a few labels
    from a tie is no evidence against it."""
    if data.query is None or not get_trainer(trainer).text_prior:
        return _with_walks(fit_classifier(data, trainer), None)
    cache = {} if cache is None else cache
    # the two candidates are independent until compared: a second thread reads the label's
    # audit sample and, when it suffices for a comparison, fits and estimates the candidate
    # without the query, while this one fits the other (on two cores the build waits for the
    # slower of the two, not for both); each fit is the same on either thread
    from concurrent.futures import ThreadPoolExecutor

    def comparable(sample: quality.ProbabilitySample) -> bool:
        return sample.n_pos > 0 and not quality.audit_labels_needed(sample.n, sample.n_pos)

    def estimated(candidate: TrainingData):
        fitted = fit_classifier(candidate, trainer)
        # the comparison needs the point estimates only: no bootstrap for their intervals
        return fitted, estimate_quality(wh, ls, corpus, fitted, data, cache=cache, n_boot=0)

    with learn.one_blas_thread(), ThreadPoolExecutor(1) as pool:  # one BLAS thread each, set before both start
        sampled = pool.submit(_sample, wh, ls, corpus, cache)
        other = pool.submit(lambda: estimated(replace(data, query=None))
                            if comparable(sampled.result()) else None)
        model = fit_classifier(data, trainer)
        if not comparable(sampled.result()):
            return _with_walks(model, None)  # no estimate to compare by yet: the query's model
        with_query = estimate_quality(wh, ls, corpus, model, data, cache=cache, n_boot=0)
        plain, without = other.result()
    if with_query.ap is None or without.ap is None:  # a refit lacked a class: no comparison
        return _with_walks(model, plain)
    sample, query_scores = _sample_scores(wh, ls, corpus, model, data, cache)
    _, plain_scores = _sample_scores(wh, ls, corpus, plain, data, cache)
    gain = quality.paired_difference(sample, query_scores, plain_scores)
    chosen = plain if gain.clear else model
    return _with_walks(replace(chosen, params={**chosen.params, "chosen_by": "corpus estimate",
                                               "estimates": {"with_query": with_query.ap,
                                                             "without_query": without.ap},
                                               "gain_without_query": gain.as_dict()}), model, plain)


def _with_walks(chosen: LinearModel, *candidates: LinearModel | None) -> LinearModel:
    """``chosen`` recording the regularisation each candidate's shapes chose (``params["walks"]``),
    where the label's next build starts its searches (``TrainingData.walks``)."""
    walks = {("with_query" if m.params.get("has_query") else "without_query"): m.params["lambdas"]
             for m in (chosen, *candidates) if m is not None and m.params.get("lambdas")}
    return replace(chosen, params={**chosen.params, "walks": walks}) if walks else chosen


def previous_walks(latest: dict | None, trainer: str, encoder_id: str) -> dict | None:
    """The ``walks`` of the label's latest version when it was fitted by ``trainer`` on these
    embeddings, else None (the searches then walk their whole grids)."""
    if latest is None or latest.get("trainer") != trainer or latest.get("encoder_id") != encoder_id:
        return None
    artifact = latest.get("artifact")
    return LinearModel.from_artifact(artifact).params.get("walks") if artifact else None


def evaluate_classifier(data: TrainingData, trainer: str = DEFAULT_TRAINER, model: LinearModel | None = None) -> Evaluation:
    """Held-out AP of the trainer; given the stored ``model``, the held-out fits are its refits
    (``learn.refit``: its query and regularisation, one fit per fold instead of a search, from
    its own mode where the trainer can: the mode found does not depend on the start)."""
    if model is None:
        return evaluate(data.keys, data.X, data.y, trainer, data.query, whitening=data.whitening)
    return evaluate(data.keys, data.X, data.y, trainer, refit=lambda X, y: learn.refit(model, X, y, data.whitening))


def estimate_quality(wh: Warehouse, ls: LabelSet, corpus: Corpus, model: LinearModel, data: TrainingData,
                     trainer: str | None = None, cache: dict | None = None,
                     n_boot: int | None = None) -> quality.QualityEstimate:
    """The version's quality on the corpus, from the label's labelled random draws (audit, random).

    Sampled clips the version was trained on are scored by a model refitted without them
    (``quality.estimate_model``), with the version's trainer. ``cache``: a dict shared by the
    calls of one build (one label set), which keeps the sample and each model's cross-fitted
    scores: a build estimates its chosen model before and after its threshold is set, and
    the scores (five refits) do not depend on the threshold. ``n_boot``: resamples of the
    intervals' bootstrap (0: the point estimates only; default: the estimator's own).
    """
    cache = {} if cache is None else cache
    sample, scores = _sample_scores(wh, ls, corpus, model, data, cache)
    boot = {} if n_boot is None else {"n_boot": n_boot}
    return quality.estimate_model(sample, _matrix_of(corpus), model, data.keys, data.y, _refit_of(model, data),
                                  scores=scores, **boot)


def _matrix_of(corpus: Corpus):
    return lambda keys: corpus.matrix[corpus.positions(list(keys))]


def _refit_of(model: LinearModel, data: TrainingData):
    return lambda X, y: learn.refit(model, X, y, data.whitening)


def _sample_scores(wh: Warehouse, ls: LabelSet, corpus: Corpus, model: LinearModel, data: TrainingData,
                   cache: dict) -> tuple[quality.ProbabilitySample, np.ndarray | None]:
    """The label's sample and the model's cross-fitted scores of it (None: a refit lacked a
    class), once per model per build's ``cache``."""
    sample = _sample(wh, ls, corpus, cache)
    # what the scores depend on: the model's weights and how it is refitted (not its threshold)
    key = (model.coef.tobytes(), float(model.intercept), model.trainer, model.params.get("lambda"),
           repr(model.params.get("query")), model.params.get("whitening"))
    if sample.n and key not in cache:
        cache[key] = quality.cross_fitted_scores(sample, _matrix_of(corpus), model, data.keys, data.y,
                                                 _refit_of(model, data))
    return sample, cache.get(key)


def _sample(wh: Warehouse, ls: LabelSet, corpus: Corpus, cache: dict) -> quality.ProbabilitySample:
    """The label's labelled random draws (``quality.label_sample``), once per build's ``cache``."""
    if "sample" not in cache:
        values = {k: bool(v) for k, v in ls.clips.filter(pl.col("value").is_not_null())
                  .select("clip_key", "value").iter_rows() if corpus.has(k)}
        cache["sample"] = quality.label_sample(wh, ls.label, values, version=ls.label_events_version,
                                               score_of=version_scorer(wh, ls.label, corpus))
    return cache["sample"]


def version_scorer(wh: Warehouse, label: str, corpus: Corpus):
    """``score_of(version, keys)``: a stored version's scores of clips (the draws' designs need them)."""
    from va_core.registry import load_model, models_frame

    models: dict[int, LinearModel] = {}
    artifacts: dict[int, str] = {}

    def score_of(version: int, keys) -> np.ndarray:
        if version not in models:
            if not artifacts:  # one read of the models table for every draw's version
                frame = models_frame(wh, label)
                artifacts.update(zip(frame["model_version"].to_list(), frame["artifact"].to_list()))
            text = artifacts.get(int(version))
            models[version] = LinearModel.from_artifact(text) if text else load_model(wh, label, version)
        return models[version].score(corpus.matrix[corpus.positions(list(keys))])

    return score_of


def version_estimates(wh: Warehouse, label: str, versions, n_boot: int = 0,
                      encoder_id: str | None = None) -> dict[int, quality.QualityEstimate]:
    """Estimates of several stored versions on one sample: the label's current labelled draws.

    Differences between them are paired (same clips, same weights), so they measure which
    version is better rather than how the sample grew: the policy's reward.
    """
    from va_core.registry import get_model

    ls = label_set(wh, label)
    out = {}
    for v in versions:
        row = get_model(wh, label, v)
        stored = _stored_quality(wh, row) if row["label_events_version"] == ls.label_events_version and \
            encoder_id in (None, row["encoder_id"]) else None
        if stored is not None:  # no event since it was trained: the sample is the one it was estimated on
            out[int(v)] = stored
            continue
        corpus = load_corpus(wh, encoder_id or row["encoder_id"])
        values = {k: bool(x) for k, x in ls.clips.filter(pl.col("value").is_not_null())
                  .select("clip_key", "value").iter_rows() if corpus.has(k)}
        sample = quality.label_sample(wh, label, values, score_of=version_scorer(wh, label, corpus))
        model = LinearModel.from_artifact(row["artifact"])
        trained = [k for k in json.loads(row["artifact"]).get("training_clips") or [] if k in values]

        def matrix_of(keys, corpus=corpus):
            return corpus.matrix[corpus.positions(list(keys))]

        whitening = corpus_whitening(corpus)
        if model.params.get("prior") == learn.WHITENED and model.params.get("whitening") != \
                learn.whitening_digest(whitening):
            # fitted in the coordinates of the corpus as it was: it cannot be refitted as it was
            # fitted, so it has no paired estimate (and the policy no reward for this step)
            out[int(v)] = _unestimable(sample, model, CORPUS_CHANGED)
            continue

        def refit(X, y, model=model, whitening=whitening):
            return learn.refit(model, X, y, whitening)

        out[int(v)] = quality.estimate_model(sample, matrix_of, model, trained, [values[k] for k in trained], refit,
                                             n_boot=n_boot)
    return out


CORPUS_CHANGED = "corpus_changed_since_fitted"


def _unestimable(sample: quality.ProbabilitySample, model: LinearModel, method: str) -> quality.QualityEstimate:
    """An estimate without numbers, saying why (``method``), on the sample it would have used."""
    base = quality.estimate(sample, np.zeros(sample.n), model.threshold, n_boot=0)
    return quality.QualityEstimate(*(None,) * 12, base.threshold, base.n_audit, base.n_audit_pos, base.n_draws,
                                   method, base.level)


def _stored_quality(wh: Warehouse, row: dict) -> quality.QualityEstimate | None:
    """The estimate stored with a version (its ``evaluations`` row), or None for rows without one."""
    ev = wh.read("evaluations", where={"label": row["label"], "model_version": int(row["model_version"])})
    if ev.height == 0 or ev["ap_method"][0] is None:
        return None
    e = ev.row(0, named=True)
    names = [f for f in quality.QualityEstimate.__dataclass_fields__ if f not in ("method", "n_draws", "level")]
    return quality.QualityEstimate(**{f: e.get(f) for f in names}, n_draws=0, method=e["ap_method"])


def label_diversity(wh: Warehouse, ls: LabelSet, corpus: Corpus) -> float:
    from va_core.clusters import corpus_clusters

    clusters = corpus_clusters(wh, corpus)
    pos = clusters[corpus.positions(ls.positives)]
    neg = clusters[corpus.positions(ls.negatives)]
    return diversity_score(pos.tolist(), neg.tolist())


def score_corpus(model: LinearModel, corpus: Corpus) -> np.ndarray:
    return model.score(corpus.matrix)


def build_feeds(ls: LabelSet, corpus: Corpus, scores: np.ndarray, model_version: int,
                k: int = FEED_SIZE, threshold: float = 0.5) -> pl.DataFrame:
    return compute_feeds(corpus.keys, scores, labelled_mask(corpus, ls.labelled), ls.label, model_version, k,
                         threshold=threshold)


def run_checks(ls: LabelSet, data: TrainingData, model: LinearModel, evaluation: Evaluation, corpus: Corpus,
               expected_encoder_id: str, estimate: quality.QualityEstimate | None = None) -> list[model_checks.CheckResult]:
    return [
        model_checks.beats_baseline(evaluation.ap.mean, evaluation.baseline.mean, evaluation.method,
                                    estimate.as_dict() if estimate is not None else None),
        model_checks.no_conflicts_in_training(data.keys, ls.conflicts),
        model_checks.embedding_consistent(model.dim, corpus.encoder_id, corpus.dim, expected_encoder_id),
    ]


# -- writing a version ---------------------------------------------------------------

VERSION_CLAIMS = 50  # claims lost to concurrent trainers before giving up


class VersionClaimFailed(VAError):
    """No version number could be had, or the one claimed was already stored."""


def next_model_version(wh: Warehouse, label: str) -> int:
    """One more than any version of the label committed (``models``) or claimed (its stage events)."""
    taken = [wh.read(t, columns=["model_version"], where={"label": label})["model_version"].max()
             for t in ("models", "model_stage_events")]
    taken = [int(v) for v in taken if v is not None]
    return max(taken, default=0) + 1


def claim_model_version(wh: Warehouse, label: str, trained_by: str, reason: str) -> int:
    """Take the next version number of ``label`` for this run: its candidate stage event.

    A conditional insert on (label, model_version): when another writer (another process
    or machine) commits the same number first, Delta refuses ours and the next number is
    tried. The claim is invisible to readers until the ``models`` row of the version commits.
    """
    for _ in range(VERSION_CLAIMS):
        version = next_model_version(wh, label)
        try:
            if wh.insert_new("model_stage_events", [stage_event(label, version, CANDIDATE, None, trained_by, reason)],
                             on=("label", "model_version")):
                return version
        except CommitConflict:
            continue
    raise VersionClaimFailed(f"{label}: could not claim a model version after {VERSION_CLAIMS} attempts "
                             "(other writers kept taking them)")


def _lineage(ls: LabelSet, corpus: Corpus, version: int) -> dict:
    return {"label": ls.label, "model_version": version, "label_events_version": ls.label_events_version,
            "encoder_id": corpus.encoder_id}


def write_scores(wh: Warehouse, ls: LabelSet, corpus: Corpus, version: int, scores: np.ndarray) -> int:
    """The version's scores over the corpus (its rows only: older versions go in ``prune_older_versions``)."""
    n = len(corpus)
    lin = _lineage(ls, corpus, version)
    return wh.replace("clip_scores", {"label": ls.label, "model_version": int(version)}, pa.table({
        "label": pa.array([ls.label] * n, pa.string()),
        "model_version": pa.array(np.full(n, version), pa.int64()),
        "clip_key": pa.array(corpus.keys.tolist(), pa.string()),
        "score": pa.array(np.asarray(scores, dtype=np.float32)),
        "label_events_version": pa.array(np.full(n, lin["label_events_version"] if lin["label_events_version"]
                                                 is not None else -1), pa.int64()),
        "encoder_id": pa.array([corpus.encoder_id] * n, pa.string()),
    }))


def write_feeds(wh: Warehouse, ls: LabelSet, corpus: Corpus, version: int, feeds: pl.DataFrame) -> int:
    lin = _lineage(ls, corpus, version)
    rows = feeds.with_columns(pl.lit(ls.label).alias("label"), pl.lit(version, pl.Int64).alias("model_version"),
                              pl.lit(lin["label_events_version"], pl.Int64).alias("label_events_version"),
                              pl.lit(corpus.encoder_id).alias("encoder_id"))
    return wh.replace("feeds", {"label": ls.label, "model_version": int(version)}, rows)


def _estimate_columns(estimate: quality.QualityEstimate) -> dict:
    """The estimate's columns of ``evaluations`` (``ap_method`` is the estimate's method)."""
    names = ("ap", "ap_low", "ap_high", "n_audit", "n_audit_pos", "precision", "precision_low", "precision_high",
             "recall", "recall_low", "recall_high", "prevalence", "prevalence_low", "prevalence_high", "threshold")
    return {**{n: getattr(estimate, n) for n in names}, "ap_method": estimate.method}


def write_evaluation(wh: Warehouse, ls: LabelSet, corpus: Corpus, version: int, evaluation: Evaluation,
                     diversity: float | None, estimate: quality.QualityEstimate) -> int:
    """The ``evaluations`` row: the labelled-set evaluation and the corpus estimate."""
    row = {**_lineage(ls, corpus, version), "ap_mean": evaluation.ap.mean, "ap_std": evaluation.ap.std,
           "baseline_ap": evaluation.baseline.mean, "diversity_score": diversity, "agreement": ls.agreement,
           "method": evaluation.method, "n_val": evaluation.n_val, "n_val_pos": evaluation.n_val_pos,
           "n_conflicts": ls.n_conflicts, "labelled_ap": evaluation.ap.mean, **_estimate_columns(estimate),
           "n_audit_unsure": ls.n_unsure_drawn}
    return wh.replace("evaluations", {"label": ls.label, "model_version": version}, [row])


def write_model(wh: Warehouse, ls: LabelSet, corpus: Corpus, version: int, model: LinearModel, data: TrainingData,
                evaluation: Evaluation, results: list[model_checks.CheckResult], trained_by: str,
                estimate: quality.QualityEstimate) -> int:
    """The ``models`` row: written last, so a version exists for readers only once all its rows do.

    A conditional insert: a second row for one (label, model_version) is refused. ``ap`` is
    the corpus estimate, the one ``run_checks`` judged the baseline check against.
    """
    passed, report = model_checks.report(results)
    lin = _lineage(ls, corpus, version)
    artifact = model.to_artifact(**{k: v for k, v in lin.items() if k != "model_version"},
                                 model_version=version, training_clips=data.keys,
                                 operating_curve=evaluation.curve.as_dict() if evaluation.curve else None)
    row = {
        **lin, "stage": CANDIDATE, "trained_at": datetime.now(timezone.utc), "n_pos": ls.n_pos, "n_neg": ls.n_neg,
        "ap": estimate.ap, "ap_low": estimate.ap_low, "ap_high": estimate.ap_high, "n_audit": estimate.n_audit,
        "ap_method": estimate.method, "labelled_ap": evaluation.ap.mean,
        "artifact": artifact, "trainer": model.trainer, "checks_passed": passed,
        "checks_report": report, "label_set_digest": ls.digest(),
    }
    if not wh.insert_new("models", [row], on=("label", "model_version")):
        raise VersionClaimFailed(f"{ls.label} v{version} is already in models: nothing written")
    return wh.version("models")


def prune_older_versions(wh: Warehouse, label: str, version: int) -> None:
    """Drop ``clip_scores`` and ``feeds`` rows of versions before ``version`` (committed or not).

    ``version`` must be committed. Versions after it are left alone: another writer may be
    completing one.
    """
    older = {"label": label, "model_version": Compare("<", int(version))}
    concurrently(*(lambda table=table: wh.delete(table, older) for table in ("clip_scores", "feeds")))


def commit_version(wh: Warehouse, ls: LabelSet, corpus: Corpus, model: LinearModel, data: TrainingData,
                   evaluation: Evaluation, diversity: float | None, scores: np.ndarray,
                   results: list[model_checks.CheckResult], trained_by: str, reason: str,
                   estimate: quality.QualityEstimate) -> int:
    """Store a trained model as a new version of its label; returns the version number.

    The write sequence: claim a number (the candidate stage event), write every row tagged
    with it, then the ``models`` row, which makes the version visible: readers read a label's
    other tables at the version ``models`` names. Killed before that, the rows are orphans
    nobody reads. Then the scores and feeds of older versions (superseded, or orphans of a
    killed run) are pruned; a later run or ``va doctor --repair`` does what a kill skipped.
    """
    version = claim_model_version(wh, ls.label, trained_by, reason)
    feeds = build_feeds(ls, corpus, scores, version, threshold=model.threshold)
    # the version's own rows depend on nothing but the claim: they are written at once
    concurrently(lambda: wh.replace("label_sets", {"label": ls.label}, ls.rows()),
                 lambda: write_scores(wh, ls, corpus, version, scores),
                 lambda: write_feeds(wh, ls, corpus, version, feeds),
                 lambda: write_evaluation(wh, ls, corpus, version, evaluation, diversity, estimate))
    write_model(wh, ls, corpus, version, model, data, evaluation, results, trained_by, estimate)
    prune_older_versions(wh, ls.label, version)
    return version


def label_trainer(latest: dict | None) -> str:
    """The trainer a label keeps: its latest model's while that trainer is registered, else the default."""
    if latest is not None and latest.get("trainer") in TRAINERS:
        return latest["trainer"]
    return DEFAULT_TRAINER


def _existing(row: dict | None, ls: LabelSet, encoder_id: str, trainer: str) -> bool:
    """The latest version was trained on this very label set, encoder and trainer."""
    if row is None or row["encoder_id"] != encoder_id or row["trainer"] != trainer:
        return False
    return row["label_events_version"] == ls.label_events_version or row["label_set_digest"] == ls.digest()


def _result_from_row(wh: Warehouse, row: dict, ls: LabelSet) -> TrainResult:
    ev = wh.read("evaluations", where={"label": row["label"], "model_version": row["model_version"]})
    e = ev.row(0, named=True) if ev.height else {}
    checks = json.loads(row["checks_report"]) if row.get("checks_report") else []
    n_audit, n_pos = int(row.get("n_audit") or 0), int(e.get("n_audit_pos") or 0)
    labelled_ap = row.get("labelled_ap") if row.get("labelled_ap") is not None else e.get("ap_mean")
    return TrainResult(
        row["label"], int(row["model_version"]), False, row["trainer"], row["stage"], row["label_events_version"],
        row["encoder_id"], int(row["n_pos"]), int(row["n_neg"]), int(e.get("n_conflicts") or 0), e.get("agreement"),
        row["ap"], float(e.get("ap_std") or 0.0), float(e.get("baseline_ap") or 0.0), e.get("method") or "",
        e.get("diversity_score"), bool(row["checks_passed"]), checks, labelled_ap=labelled_ap,
        ap_low=row.get("ap_low"), ap_high=row.get("ap_high"), n_audit=n_audit, ap_method=row.get("ap_method") or "",
        audit_needed=quality.audit_labels_needed(n_audit, n_pos),
        quality={k: e.get(k) for k in quality.QualityEstimate.__dataclass_fields__ if k in e},
        n_audit_unsure=int(e.get("n_audit_unsure") or 0))


def train_label(settings, label: str, trainer: str | None = None, force: bool = False,
                encoder_id: str | None = None, label_events_version: int | None = None,
                trained_by: str | None = None, note: str | None = None,
                features: str | None = None) -> TrainResult:
    """Train a new model version of ``label`` on its label set, and write everything it implies.

    The label set is read at ``label_events_version`` (time travel; default: the current
    version). Training a label set that the latest version was already trained on (same
    ``label_events`` version or same content, same encoder and trainer) writes nothing and
    returns that version, unless ``force``. ``trained_by`` and ``note`` go into the
    candidate's stage event (default: the login name, "trained (TRAINER)"). ``features``
    (clip, motion, both) chooses the embeddings when ``encoder_id`` is not given; without
    either, the label keeps the feature set of its latest model. Likewise without ``trainer``
    it keeps its latest model's trainer (else :data:`DEFAULT_TRAINER`), so a retrain by the
    sensor or the app's Build does not undo a ``va train --trainer`` choice.
    """
    validate_label(label)
    if trainer is not None:
        get_trainer(trainer)  # an unknown trainer is named before anything is read
    wh = Warehouse.from_settings(settings)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = round(now - clock, 4)
        clock = now

    wanted_encoder = label_embeddings(settings, label, encoder_id, features)
    with label_lock(settings, label):
        ls = build_label_set(wh, label, version=label_events_version, write=False)
        latest = latest_model(wh, label)
        trainer = trainer or label_trainer(latest)
        if not force and _existing(latest, ls, wanted_encoder, trainer):
            return _result_from_row(wh, latest, ls)
        corpus = load_corpus(wh, wanted_encoder)
        data = replace(training_data(ls, corpus, settings), walks=previous_walks(latest, trainer, corpus.encoder_id))
        lap("label_set")
        estimates: dict = {}  # the corpus estimate's sample and cross-fitted scores, once per model
        model = choose_classifier(wh, ls, corpus, data, trainer, estimates)
        lap("fit")
        evaluation = evaluate_classifier(data, trainer, model)
        model = model.with_threshold(evaluation.threshold)
        estimate = estimate_quality(wh, ls, corpus, model, data, trainer, estimates)
        lap("evaluate")
        diversity = label_diversity(wh, ls, corpus)
        lap("diversity")
        scores = score_corpus(model, corpus)
        lap("score")
        results = run_checks(ls, data, model, evaluation, corpus, wanted_encoder, estimate)
        lap("checks")
        version = commit_version(wh, ls, corpus, model, data, evaluation, diversity, scores, results,
                                 trained_by or login_name(), note or f"trained ({trainer})", estimate)
        lap("write")
    passed = all(r.passed for r in results if r.blocking)
    return TrainResult(
        label, version, True, trainer, CANDIDATE, ls.label_events_version, corpus.encoder_id, ls.n_pos, ls.n_neg,
        ls.n_conflicts, ls.agreement, estimate.ap, evaluation.ap.std, evaluation.baseline.mean,
        evaluation.method, diversity, passed, [r.as_dict() for r in results], timings,
        labelled_ap=evaluation.ap.mean, ap_low=estimate.ap_low, ap_high=estimate.ap_high, n_audit=estimate.n_audit,
        ap_method=estimate.method, audit_needed=estimate.needed, quality=estimate.as_dict(),
        n_audit_unsure=ls.n_unsure_drawn)


def describe_quality(ap, ap_low, ap_high, n_audit: int, ap_method: str, needed: int, label: str = "LABEL") -> str:
    """The corpus estimate for a person, or what it still needs (CLI, status, app)."""
    ask = f"needs {needed} more audit labels (`va feeds {label} --feed audit`)"
    if ap is None:
        return f"AP on the corpus: unknown, {ask}"
    text = f"AP on the corpus {ap:.3f} [{ap_low:.3f}, {ap_high:.3f}] (90%, {n_audit} audit labels)"
    return text + (f"; provisional: {ask}" if ap_method == quality.PROVISIONAL else "")
