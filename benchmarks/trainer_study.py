"""Trainer variants refitted on the labels the live loop chose: the true held-out AP of each.

For each home the live loop left (``/tmp/va-bench-loop-SEED-*``: its corpus, the labels its
loop chose, their provenance), the world is generated again by ``live_loop.make_world`` (it
is deterministic), and at each budget the label set of the version stored after that budget
is refitted by each variant; every AP is on the world's held-out clips. The variants:

- ``stored``: the version the loop stored (whatever trainer built the home);
- ``q_iso`` / ``p_iso``: the text-prior model with the isotropic prior, with and without the
  query (lam by the evidence), ``oracle_iso`` the better of the two on the truth, and
  ``chosen_iso`` the corpus estimate's choice between them (a tie keeps the query's model);
- ``q_cov`` / ``p_cov``: delta ~ N(0, Sigma / lam) (Sigma the corpus covariance, Ledoit-Wolf),
  ``ev_cov``: the evidence's choice between isotropic and this shape, per candidate, then the
  corpus estimate's between the candidates;
- ``q_white`` / ``p_white``: delta ~ N(0, Sigma^-1 / lam), Sigma shrunk halfway to the identity
  (``learn.whitening``), the query whitened too;
- ``q_fast`` / ``p_fast``: the product's trainer (``learn.fit_prior`` given the corpus's
  whitening: the evidence chooses between the isotropic and the whitened shape), and
  ``fast``: the product's build (``train.choose_classifier``);
- ``lrcv``: scikit-learn's LogisticRegressionCV (``learn.fit_reference``).

``--shrinkage``: the evidence and the true AP of the whitened shape at each shrinkage towards
the identity (1.0 is the isotropic prior), on the same label sets.

``--latency``: fit times of the product's trainer (isotropic only, and with both shapes) and of
LogisticRegressionCV at 1000 labels on build_latency's corpus (100k x 512), with the AP on the
clips not labelled.

    python -m benchmarks.trainer_study /tmp/va-bench-loop-0-* /tmp/va-bench-loop-1-*
    python -m benchmarks.trainer_study --shrinkage /tmp/va-bench-loop-0-* /tmp/va-bench-loop-1-*
    python -m benchmarks.trainer_study --latency
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ._results import markdown

VARIANTS = ("stored", "q_iso", "p_iso", "oracle_iso", "chosen_iso", "q_cov", "p_cov", "ev_cov", "q_white", "p_white",
            "q_fast", "p_fast", "fast", "lrcv")


def covariance_shape(matrix: np.ndarray) -> np.ndarray:
    """``Sigma^1/2`` of the Ledoit-Wolf covariance of ``matrix``'s rows, scaled as ``learn.whitening``
    scales its matrix (squared entries summing to the dimension)."""
    from sklearn.covariance import ledoit_wolf

    sigma, _ = ledoit_wolf(np.asarray(matrix, dtype=np.float64))
    values, vectors = np.linalg.eigh(sigma)
    root = (vectors * np.sqrt(values)) @ vectors.T
    return root / np.sqrt(float((root * root).sum()) / len(root))


def shaped_fit(X, y, query, shape=None, lam=None):
    """The text-prior model with delta = S u, u ~ N(0, I / lam), and the query as it is: a shape
    ``learn.fit_prior`` does not offer (the covariance-shaped prior), fitted by its own parts."""
    from va_core import learn

    if shape is None:
        return learn.fit_prior(X, y, query, lam=lam)
    y = np.asarray(y, dtype=bool)
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    columns = [X @ shape]
    if query is not None:
        t = np.asarray(query, dtype=np.float64) / np.linalg.norm(query)
        columns.append((X @ t)[:, None])
    A = np.hstack(columns + [np.ones((n, 1))])
    extra = [learn.BETA_PRECISION] if query is not None else []
    bounds = [(None, None)] * d + ([(0.0, None)] if query is not None else []) + [(None, None)]

    def precision(v):
        return np.r_[np.full(d, v), extra, learn.BIAS_PRECISION]

    fits = {}

    def at(v):
        if v not in fits:
            near = min(fits, key=lambda u: abs(np.log(u / v)), default=None)
            start = fits[near][1] if near is not None else np.zeros(A.shape[1])
            theta = learn._fit_map(A, y, precision(v), bounds, start)
            fits[v] = (learn._log_evidence(A, y, theta, precision(v)), theta)
        return fits[v]

    with learn.one_blas_thread():
        if lam is None:
            lam = learn.walk_grid(lambda v: at(v)[0], learn.WHITENED_LAMBDAS)
        evidence, theta = at(float(lam))
    coef = shape @ theta[:d] + (float(theta[d]) * t if query is not None else 0.0)
    return learn.LinearModel(coef, float(theta[-1]), "study", {"lambda": float(lam), "log_evidence": float(evidence)})


def loop_home(root: Path):
    """A live-loop home (``va-bench-loop-SEED-*``): its settings, warehouse, models, corpus, and
    the world it was made from, generated again from the seed (its held-out clips' truth)."""
    from benchmarks.live_loop import make_world
    from va_core.config import Settings
    from va_core.embeddings import load_corpus
    from va_core.experiments.importer import ENCODER_ID
    from va_core.warehouse import Warehouse

    made = root / "world.json"
    if not made.exists():
        raise FileNotFoundError(f"{root}: no world.json (a home from an older live loop); run the live loop again")
    world_of = json.loads(made.read_text())
    seed = world_of["seed"]
    settings = Settings.from_env(home=root / "home", encoder=ENCODER_ID)
    wh = Warehouse.from_settings(settings)
    corpus = load_corpus(wh, ENCODER_ID)
    world = make_world(Path(tempfile.mkdtemp(prefix="trainer-study-")) / "dataset", len(corpus), seed,
                       n_test=len(corpus) // 4, shape=world_of["shape"])
    if sorted(world.keys) != corpus.keys.tolist():
        raise RuntimeError(f"{root}: the regenerated world is not this home's corpus")
    return seed, settings, wh, wh.read("models").to_pandas(), corpus, world


def study_home(root: Path, budgets=(100, 300)) -> list[dict]:
    from va_core import learn, quality
    from va_core.registry import load_model
    from va_core.train import _sample, build_label_set, choose_classifier, training_data

    seed, settings, wh, models, corpus, world = loop_home(root)
    cov = covariance_shape(corpus.matrix)
    out = []
    for label in sorted(set(models["label"]) - {k for k in models["label"] if k.endswith("-rr")}):
        test_y = world.test_truth[label]
        for budget in budgets:
            rows = models[(models["label"] == label) & (models["n_pos"] + models["n_neg"] == budget)]
            if not len(rows):
                continue
            row = rows.sort_values("model_version").iloc[-1]
            ls = build_label_set(wh, label, version=int(row["label_events_version"]), write=False)
            data = training_data(ls, corpus, settings)
            cache: dict = {}
            sample = _sample(wh, ls, corpus, cache)
            comparable = sample.n_pos > 0 and not quality.audit_labels_needed(sample.n, sample.n_pos)

            def matrix_of(keys):
                return corpus.matrix[corpus.positions(list(keys))]

            def estimate(model, refit):
                return quality.estimate_model(sample, matrix_of, model, data.keys, data.y, refit, n_boot=0).ap

            def chosen(q, p, refit_q, refit_p):
                """The corpus estimate's choice (a tie keeps the query's model), as the build chooses."""
                if not comparable:
                    return q
                eq, ep = estimate(q, refit_q), estimate(p, refit_p)
                return p if eq is not None and ep is not None and ep > eq else q

            def shaped_refit(query, shape, model):
                return lambda X, y: shaped_fit(X, y, query, shape, lam=model.params["lambda"])

            fitted = {"stored": load_model(wh, label, int(row["model_version"]))}
            for name, query in (("q", data.query), ("p", None)):
                fitted[f"{name}_iso"] = learn.fit_prior(data.X, data.y, query)
                fitted[f"{name}_cov"] = shaped_fit(data.X, data.y, query, cov)
                fitted[f"{name}_white"] = learn.fit_prior(data.X, data.y, query, whitening=data.whitening,
                                                          prior=learn.WHITENED)
                fitted[f"{name}_fast"] = learn.fit_prior(data.X, data.y, query, whitening=data.whitening)
            fitted["oracle_iso"] = max((fitted["q_iso"], fitted["p_iso"]),
                                       key=lambda m: learn.average_precision(test_y, m.score(world.test_X)))
            fitted["chosen_iso"] = chosen(fitted["q_iso"], fitted["p_iso"],
                                          lambda X, y: learn.refit(fitted["q_iso"], X, y),
                                          lambda X, y: learn.refit(fitted["p_iso"], X, y))
            by_evidence = {}
            for name, query in (("q", data.query), ("p", None)):
                iso, shaped = fitted[f"{name}_iso"], fitted[f"{name}_cov"]
                by_evidence[name] = (shaped, shaped_refit(query, cov, shaped)) if \
                    shaped.params["log_evidence"] > iso.params["log_evidence"] else \
                    (iso, lambda X, y, m=iso: learn.refit(m, X, y))
            (q_model, q_refit), (p_model, p_refit) = by_evidence["q"], by_evidence["p"]
            fitted["ev_cov"] = chosen(q_model, p_model, q_refit, p_refit)
            fitted["fast"] = choose_classifier(wh, ls, corpus, data)
            fitted["lrcv"] = learn.fit_reference(data.X, data.y)
            rec = {"seed": seed, "label": label, "budget": budget, "n_pos": int(data.y.sum()), "n_audit": sample.n,
                   "n_audit_pos": sample.n_pos, "comparable": comparable,
                   "ap": {k: learn.average_precision(test_y, fitted[k].score(world.test_X)) for k in VARIANTS},
                   "log_evidence": {k: m.params.get("log_evidence") for k, m in fitted.items()
                                    if k in ("q_iso", "p_iso", "q_cov", "p_cov", "q_white", "p_white")},
                   "fast_params": {k: v for k, v in fitted["fast"].params.items() if k != "query"},
                   "zero_shot": learn.average_precision(test_y, world.test_X @ data.query),
                   "zero_shot_whitened": learn.average_precision(
                       test_y, world.test_X @ (data.whitening @ (data.whitening @ data.query)))}
            out.append(rec)
            print(f"{label} seed {seed} at {budget}: " + " ".join(f"{k} {v:.3f}" for k, v in rec["ap"].items()),
                  file=sys.stderr, flush=True)
    return out


def table(records: list[dict]) -> str:
    head = ["label", "seed", "budget", "audit labels (positives)", *VARIANTS, "zero-shot", "zero-shot whitened"]
    lines = [[r["label"], str(r["seed"]), str(r["budget"]), f"{r['n_audit']} ({r['n_audit_pos']})",
              *[f"{r['ap'][k]:.3f}" for k in VARIANTS], f"{r['zero_shot']:.3f}", f"{r['zero_shot_whitened']:.3f}"]
             for r in sorted(records, key=lambda r: (r["budget"], r["label"], r["seed"]))]
    return markdown(head, lines, align="ll" + "r" * (len(head) - 2))


def latency(n_clips: int = 100_000, topics=(0, 1, 2)) -> list[dict]:
    """Fit times at 1000 labels on build_latency's corpus and AP on (a fifth of) the clips not labelled."""
    from benchmarks.build_latency import DIM, N_LABELS, QUERY_NOISE, _labelled
    from tests.support.synthetic import make_corpus
    from va_core import learn

    c = make_corpus(n_clips, dim=DIM, n_topics=20, noise=8.0, seed=0)
    index = {k: i for i, k in enumerate(c.keys)}
    t0 = time.perf_counter()
    W = learn.whitening(c.matrix)
    out = [{"what": "learn.whitening (once per corpus)", "seconds": time.perf_counter() - t0,
            "load": os.getloadavg()[0]}]
    rng = np.random.default_rng(2)
    for topic in topics:
        centre = c.matrix[c.topics == topic].mean(axis=0)
        noise = rng.standard_normal(DIM)
        q = centre / np.linalg.norm(centre) + QUERY_NOISE * noise / np.linalg.norm(noise)
        pos, neg = _labelled(c, topic, N_LABELS, seed=1)
        rows = np.array([index[k] for k in pos + neg])
        X, y = c.matrix[rows], np.array([True] * len(pos) + [False] * len(neg))
        rest = np.setdiff1d(np.arange(n_clips), rows)[::5]
        truth = c.topics[rest] == topic
        for what, fit in (("isotropic, query", lambda: learn.fit_prior(X, y, q)),
                          ("isotropic, no query", lambda: learn.fit_prior(X, y)),
                          ("both shapes (product), query", lambda: learn.fit_prior(X, y, q, whitening=W)),
                          ("both shapes (product), no query", lambda: learn.fit_prior(X, y, whitening=W)),
                          ("LogisticRegressionCV", lambda: learn.fit_reference(X, y))):
            t0 = time.perf_counter()
            m = fit()
            out.append({"what": what, "topic": topic, "seconds": time.perf_counter() - t0,
                        "ap": learn.average_precision(truth, m.score(c.matrix[rest])),
                        "prior": m.params.get("prior"), "load": os.getloadavg()[0]})
            print(out[-1], file=sys.stderr, flush=True)
    return out


SHRINKAGES = (0.03, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


def shrinkage_scan(root: Path, budgets=(100, 300)) -> list[dict]:
    """The evidence and true AP of the whitened shape at each shrinkage (1.0: the isotropic prior)."""
    from va_core import learn
    from va_core.train import build_label_set, training_data

    seed, settings, wh, models, corpus, world = loop_home(root)
    shapes = {a: learn.whitening(corpus.matrix, shrinkage=a) for a in SHRINKAGES if a < 1.0}
    out = []
    for label in sorted(k for k in set(models["label"]) if not k.endswith("-rr")):
        for budget in budgets:
            rows = models[(models["label"] == label) & (models["n_pos"] + models["n_neg"] == budget)]
            if not len(rows):
                continue
            row = rows.sort_values("model_version").iloc[-1]
            data = training_data(build_label_set(wh, label, version=int(row["label_events_version"]), write=False),
                                 corpus, settings)
            for name, query in (("query", data.query), ("no query", None)):
                cells = {}
                for a in SHRINKAGES:
                    m = learn.fit_prior(data.X, data.y, query) if a == 1.0 else \
                        learn.fit_prior(data.X, data.y, query, whitening=shapes[a], prior=learn.WHITENED)
                    cells[a] = (learn.average_precision(world.test_truth[label], m.score(world.test_X)),
                                m.params["log_evidence"])
                out.append({"label": label, "seed": seed, "budget": budget, "model": name, "cells": cells})
                print(out[-1], file=sys.stderr, flush=True)
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    warnings.simplefilter("ignore")
    if argv and argv[0] == "--shrinkage":
        rows = [r for root in argv[1:] for r in shrinkage_scan(Path(root))]
        print(markdown(["label", "seed", "budget", "model", *[f"{a}" for a in SHRINKAGES]],
                       [[r["label"], str(r["seed"]), str(r["budget"]), r["model"],
                         *[f"{r['cells'][a][0]:.3f} ({r['cells'][a][1]:.1f})" for a in SHRINKAGES]]
                        for r in sorted(rows, key=lambda r: (r["budget"], r["model"], r["label"], r["seed"]))],
                       align="llll" + "r" * len(SHRINKAGES)))
        return 0
    if argv == ["--latency"]:
        rows = latency()
        print(markdown(["fit", "topic", "seconds", "AP", "prior chosen", "load average"],
                       [[r["what"], str(r.get("topic", "-")), f"{r['seconds']:.3f}",
                         f"{r['ap']:.3f}" if "ap" in r else "-", str(r.get("prior") or "-"), f"{r['load']:.1f}"]
                        for r in rows]))
        return 0
    print(table([r for root in argv for r in study_home(Path(root))]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
