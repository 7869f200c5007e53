"""Classifiers on clip embeddings and how their quality is measured.

The evaluation rules follow the paper's released protocol exactly, because users compare
our numbers with theirs: the hash split, the bootstrap seeds and the random baseline.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable, Sequence

import numpy as np

from va_core.operating import Curve

__all__ = ["N_CLUSTERS", "in_validation", "validation_mask", "ordered", "bootstrap_indices", "APResult",
           "average_precision", "bootstrap_ap", "baseline_ap", "diversity_score", "reference_classifier",
           "MIN_PER_CLASS", "MIN_VALIDATION_POSITIVES", "sigmoid", "score_matrix", "LinearModel", "one_blas_thread",
           "n_folds", "fit_reference", "PRIOR_LAMBDAS", "WHITENED_LAMBDAS", "ISOTROPIC", "WHITENED", "WHITENING_SAMPLE",
           "WHITENING_SHRINKAGE", "whitening", "whitening_digest", "walk_grid", "fit_prior", "Trainer", "TRAINERS",
           "DEFAULT_TRAINER", "get_trainer", "trainer_names", "fit", "refit", "Evaluation", "best_f1_threshold",
           "evaluate"]

SPLIT_SEED = 0
# The rule is `hash % 10 < 2`, literally: a Fraction(2, 10) would normalise to 1/5, and
# `hash % 5 < 1` picks a different fifth of the keys.
SPLIT_BUCKETS = 10
VALIDATION_BUCKETS = 2
N_BOOTSTRAP = 5  # the exact validation set plus 4 resamples (numpy seeds 1..4)
BASELINE_THRESHOLD = 1000
N_CLUSTERS = 10


def in_validation(key: str, seed: int = SPLIT_SEED, buckets: int = SPLIT_BUCKETS,
                  validation_buckets: int = VALIDATION_BUCKETS) -> bool:
    """The paper's deterministic split: ``mmh3.hash(key, seed) % 10 < 2``."""
    import mmh3

    return mmh3.hash(key, seed) % buckets < validation_buckets


def validation_mask(keys: Sequence[str], seed: int = SPLIT_SEED, buckets: int = SPLIT_BUCKETS,
                    validation_buckets: int = VALIDATION_BUCKETS) -> np.ndarray:
    import mmh3

    return np.fromiter((mmh3.hash(k, seed) % buckets < validation_buckets for k in keys), dtype=bool,
                       count=len(keys))


def ordered(pos: Iterable[str], neg: Iterable[str]) -> tuple[list[str], np.ndarray]:
    """The reference row order: positive keys sorted, then negative keys sorted.

    Cross-validation folds and bootstrap resamples depend on row order, so every labelled
    set handed to a classifier or to :func:`bootstrap_ap` is put in this order first.
    """
    p, n = sorted(set(pos)), sorted(set(neg))
    return p + n, np.array([True] * len(p) + [False] * len(n), dtype=bool)


def bootstrap_indices(n: int, idx: int) -> np.ndarray:
    """Resample ``idx`` of a validation set of size ``n``; 0 is the exact set.

    Seeding numpy's global generator is what the reference does; the global state is
    saved and restored so callers' randomness is untouched.
    """
    if idx == 0:
        return np.arange(n)
    state = np.random.get_state()
    try:
        np.random.seed(idx)
        return np.random.choice(range(n), n)
    finally:
        np.random.set_state(state)


@dataclass(frozen=True)
class APResult:
    mean: float
    std: float
    values: tuple[float, ...]


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """scikit-learn's ``average_precision_score`` (ties grouped the same way), without its
    input checking, which costs milliseconds per call and the baseline makes a thousand calls."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_each_score = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last_of_each_score]
    if tps[-1] == 0:
        return float("nan")
    precision = tps / (1 + last_of_each_score)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _random_ap(y: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """AP of each row of continuous random scores (no ties), all rows at once."""
    order = np.argsort(-draws, axis=1)
    hits = y[order]
    precision_at_hit = np.cumsum(hits, axis=1) / np.arange(1, draws.shape[1] + 1)
    return (precision_at_hit * hits).sum(axis=1) / y.sum()


def bootstrap_ap(y_true: np.ndarray, scores: np.ndarray, n_bootstrap: int = N_BOOTSTRAP) -> APResult:
    """AP as the paper reports it: mean and std over the exact set and ``n_bootstrap-1`` resamples.

    A resample without a positive gives NaN, which is left out as the reference does.
    """
    y_true = np.asarray(y_true, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if len(y_true) != len(scores):
        raise ValueError(f"{len(y_true)} labels but {len(scores)} scores")
    values = []
    for idx in range(n_bootstrap):
        sel = bootstrap_indices(len(y_true), idx)
        y = y_true[sel]
        values.append(average_precision(y, scores[sel]) if y.any() else float("nan"))
    finite = [v for v in values if not np.isnan(v)]
    if not finite:
        raise ValueError("no positive clip in the validation set: AP is undefined")
    return APResult(float(np.mean(finite)), float(np.std(finite)), tuple(values))


def baseline_ap(n_pos: int, n: int, threshold: int = BASELINE_THRESHOLD) -> APResult:
    """AP of random scores: the positive rate for large sets, else the mean of 1000 draws (seed 0)."""
    if n <= 0 or n_pos <= 0:
        raise ValueError(f"baseline AP needs positives: {n_pos} of {n}")
    if n >= threshold:
        rate = n_pos / n
        return APResult(rate, 0.0, (rate,))
    rng = np.random.RandomState(0)
    y = np.array([True] * n_pos + [False] * (n - n_pos))
    draws = rng.rand(threshold, n)
    values = tuple(float(v) for v in _random_ap(y, draws))
    return APResult(float(np.mean(values)), float(np.std(values)), values)


def diversity_score(pos_clusters: Iterable[int], neg_clusters: Iterable[int], k: int = N_CLUSTERS) -> float:
    """How evenly the labelled clips cover the K clusters of the embedding space.

    ``(sum_c min(pos_c, k)/k + sum_c min(neg_c, k)/k) / (2k)``: 1.0 once every cluster
    holds at least k positives and k negatives.
    """

    def part(clusters: Iterable[int]) -> float:
        counts = np.bincount(np.asarray(list(clusters), dtype=np.int64), minlength=k) if clusters else np.zeros(k)
        return float(np.minimum(counts, k).sum() / k)

    pos, neg = list(pos_clusters), list(neg_clusters)
    return (part(pos) + part(neg)) / (2 * k)


def reference_classifier(seed: int = SPLIT_SEED, n_jobs: int | None = None):
    """The paper's classifier: LogisticRegressionCV over 5 shuffled stratified folds, scored by AP."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    return LogisticRegressionCV(
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=seed),
        scoring="average_precision", max_iter=1000, n_jobs=n_jobs,
    )


# -- classifiers ------------------------------------------------------------------

# Fewer positives or negatives than this and a model cannot be evaluated: with k-fold
# cross-validation (k <= class size) every training fold then keeps 2 of each class,
# which the reference's own inner cross-validation needs.
MIN_PER_CLASS = 3
MIN_VALIDATION_POSITIVES = 5  # below this the hash split's AP is too coarse; cross-validate instead


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def score_matrix(matrix: np.ndarray, coef: np.ndarray, intercept: float, chunk: int = 262_144) -> np.ndarray:
    """``sigmoid(X w + b)`` as float32, in row blocks so a million clips need no float64 copy.

    This is the one definition of a linear model's score; serving computes the same.
    """
    matrix = np.asarray(matrix)
    w = np.asarray(coef, dtype=np.float32)
    out = np.empty(len(matrix), dtype=np.float32)
    with np.errstate(over="ignore"):  # exp overflow gives inf, and 1/(1+inf) is the right 0
        for s in range(0, len(matrix), chunk):
            z = (matrix[s:s + chunk].astype(np.float32, copy=False) @ w).astype(np.float64)
            z += float(intercept)
            np.negative(z, out=z)
            np.exp(z, out=z)
            z += 1.0
            np.reciprocal(z, out=z)
            out[s:s + chunk] = z
    return out


@dataclass(frozen=True)
class LinearModel:
    """A logistic-regression classifier on clip embeddings: ``score = sigmoid(X @ coef + intercept)``."""

    coef: np.ndarray  # (D,) float64
    intercept: float
    trainer: str
    params: dict
    threshold: float = 0.5  # yes/no boundary on the score (see best_f1_threshold)

    @property
    def dim(self) -> int:
        return int(self.coef.shape[0])

    def decision(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(matrix, dtype=np.float32) @ self.coef.astype(np.float32) + self.intercept

    def score(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise ValueError(f"this model takes {self.dim}-d embeddings, got shape {matrix.shape}")
        return score_matrix(matrix, self.coef, self.intercept)

    def to_artifact(self, **lineage) -> str:
        """JSON holding everything needed to score: readable wherever the warehouse is."""
        import json

        return json.dumps({
            "kind": "logistic_regression", "format": 1, "dim": self.dim,
            "coef": [float(v) for v in self.coef], "intercept": float(self.intercept),
            "trainer": self.trainer, "params": self.params, "score": "sigmoid(X @ coef + intercept)",
            "threshold": float(self.threshold),
            **lineage,
        })

    @classmethod
    def from_artifact(cls, text: str) -> "LinearModel":
        import json

        data = json.loads(text)
        if data.get("kind") != "logistic_regression":
            raise ValueError(f"not a linear model artifact: kind={data.get('kind')!r}")
        coef = np.asarray(data["coef"], dtype=np.float64)
        if coef.shape != (data["dim"],):
            raise ValueError(f"artifact says dim {data['dim']} but holds {coef.shape[0]} coefficients")
        return cls(coef, float(data["intercept"]), data["trainer"], dict(data.get("params") or {}),
                   float(data.get("threshold", 0.5)))

    def with_threshold(self, threshold: float) -> "LinearModel":
        from dataclasses import replace

        return replace(self, threshold=float(threshold))


_blas_pools = []


def one_blas_thread():
    """Fits here are small dense problems: on one BLAS thread they take milliseconds, while
    OpenBLAS's worker threads spin and fight over shared cores (50x slower measured on a
    busy 2-core machine).

    Finding the BLAS libraries takes 4-5 ms (threadpoolctl walks every loaded library), a
    build sets the limit some ten times: they are found once, after numpy's and scipy's
    BLAS (the fits' ones) are loaded."""
    if not _blas_pools:
        import scipy.linalg  # noqa: F401  (loads scipy's own BLAS before the search)
        from threadpoolctl import ThreadpoolController

        _blas_pools.append(ThreadpoolController())
    return _blas_pools[0].limit(limits=1, user_api="blas")


def _check_classes(y: np.ndarray, what: str = "training", minimum: int = MIN_PER_CLASS) -> None:
    from va_core.errors import InputError

    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos < minimum or n_neg < minimum:
        raise InputError(f"{what} needs at least {minimum} positive and {minimum} negative clips "
                         f"(has {n_pos} positive, {n_neg} negative): label more clips")


def n_folds(y: np.ndarray, wanted: int = 5) -> int:
    """The paper's 5 folds, fewer when a class has fewer than 5 members (each fold needs one)."""
    return max(2, min(wanted, int(y.sum()), int((~y).sum())))


def fit_reference(X: np.ndarray, y: np.ndarray, seed: int = SPLIT_SEED) -> LinearModel:
    """The paper's LogisticRegressionCV (fewer folds only when a class has fewer than 5 clips)."""
    import warnings

    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y, dtype=bool)
    _check_classes(y, minimum=2)
    clf = reference_classifier(seed)
    folds = n_folds(y)
    if folds != 5:
        clf.set_params(cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed))
    with warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore", FutureWarning)  # sklearn 1.9's notices about 1.10 defaults
        clf.fit(np.asarray(X, dtype=np.float64), y)
    return LinearModel(clf.coef_[0].astype(np.float64), float(clf.intercept_[0]), "reference",
                       {"C": float(np.ravel(clf.C_)[0]), "folds": folds})


# The product's trainer: a Bayesian logistic regression whose prior is the label's text query.
#
# Model: logit = X @ (beta * t + delta) + b, with t the unit text embedding of the label's
# query, delta ~ N(0, I / lam) and beta >= 0 (how much the query is trusted) fitted with the
# rest. With few labels the data cannot pay for delta, so the model is beta * t: it ranks
# exactly as the zero-shot query did; with many labels delta follows the data.
#
# lam is chosen by the Laplace approximation of the evidence p(y | X, lam), not by
# cross-validation on the labelled clips. The feeds choose which clips get labelled from
# the clips and earlier labels only, never from the unseen answers, so the selection is
# ignorable for the likelihood (Rubin 1976): the evidence of the labels is valid however
# they were chosen, while an AP cross-validated on them describes the chosen clips, not the
# corpus (measured: 0.96-0.97 for every C while the corpus AP went from 0.32 to 0.80).
PRIOR_LAMBDAS = tuple(float(v) for v in np.logspace(-4, 1, 6))  # decades, refined to half decades
# In whitened coordinates the evidence often wants delta near zero (the whitened query alone):
# the walk starts three decades higher
WHITENED_LAMBDAS = tuple(float(v) for v in np.logspace(-4, 3, 8))
BETA_PRECISION = 1e-4  # a weak prior on beta keeps it finite when a few labels are separable
BIAS_PRECISION = 1e-6
ISOTROPIC, WHITENED = "isotropic", "whitened"

# The shape of the prior. delta ~ N(0, I / lam) treats every direction of the embedding space
# alike, so the data must pay as much to move along the directions where clips vary most (the
# clusters of a corpus, where a text query's error partly lies) as along any other. The other
# shape: delta ~ N(0, Sigma^-1 / lam), Sigma the covariance of the corpus's embeddings shrunk
# towards the identity (no label enters it), i.e. the isotropic prior in whitened coordinates
# (X Sigma^-1/2), with the query whitened too (Sigma^-1 t): strong regularisation then tends to
# the Fisher discriminant rather than the class-mean difference. Which shape suits a label is
# a question about the model, so the evidence decides, as it decides lam; both are label-free.
WHITENING_SAMPLE = 20_000  # rows the covariance is estimated from (seeded), as the clusters are
# How far the whitened shape lies from the isotropic one: Sigma is taken as the average of the
# embeddings' covariance and the identity (each scaled to mean eigenvalue 1). Measured on the
# live loop's labels (benchmarks/README.md): the evidence peaks between 0.3 and 0.7 for every
# label and budget, and full whitening (Ledoit-Wolf's own shrinkage, near 0) has a lower
# evidence and ranks worse; one value keeps a build at two shapes to fit.
WHITENING_SHRINKAGE = 0.5


def whitening(matrix: np.ndarray, sample: int = WHITENING_SAMPLE, seed: int = 0,
              shrinkage: float = WHITENING_SHRINKAGE) -> np.ndarray:
    """``Sigma^-1/2``, Sigma the embeddings' covariance (from at most ``sample`` rows drawn with
    ``seed``) shrunk by ``shrinkage`` towards the identity, scaled so that the prior it shapes
    has the isotropic prior's total variance (its squared entries sum to the dimension)."""
    matrix = np.asarray(matrix)
    n, d = matrix.shape
    if n < 2:
        raise ValueError(f"a covariance needs at least 2 embeddings, got {n}")
    if not 0.0 < shrinkage <= 1.0:
        raise ValueError(f"the shrinkage must lie in (0, 1], got {shrinkage}")
    rows = matrix if n <= sample else matrix[np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))]
    with one_blas_thread():
        centred = np.asarray(rows, dtype=np.float64)
        centred = centred - centred.mean(axis=0)
        covariance = centred.T @ centred / (len(centred) - 1)
        sigma = (1 - shrinkage) * covariance / (np.trace(covariance) / d) + shrinkage * np.eye(d)
        values, vectors = np.linalg.eigh(sigma)
        W = (vectors / np.sqrt(values)) @ vectors.T
    return W / np.sqrt(float((W * W).sum()) / d)


def whitening_digest(W: np.ndarray) -> str:
    """What names a whitening in a model's params: refits must use the very same matrix."""
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(W, dtype=np.float64).tobytes()).hexdigest()[:16]


def _fit_map(A: np.ndarray, y: np.ndarray, precision: np.ndarray, bounds, start: np.ndarray) -> np.ndarray:
    """The posterior mode of a logistic regression with a diagonal Gaussian prior (L-BFGS-B)."""
    from scipy.optimize import minimize

    t = y.astype(np.float64)

    def objective(theta):
        z = A @ theta
        loss = np.logaddexp(0.0, z).sum() - t @ z + 0.5 * precision @ (theta * theta)
        return loss, A.T @ (sigmoid(z) - t) + precision * theta

    res = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 1000, "gtol": 1e-5})
    return res.x


def _log_evidence(A: np.ndarray, y: np.ndarray, theta: np.ndarray, precision: np.ndarray) -> float:
    """Laplace approximation of log p(y | X, prior): log-likelihood + log-prior - 1/2 log det H."""
    z = A @ theta
    loglik = float(y @ z - np.logaddexp(0.0, z).sum())
    log_prior = 0.5 * float(np.log(precision).sum() - precision @ (theta * theta))
    p = sigmoid(z)
    s = p * (1 - p)
    n, d = A.shape
    if n < d:  # det(P + A' S A) = det(P) det(I + S^1/2 A P^-1 A' S^1/2): the smaller matrix
        B = A * np.sqrt(s)[:, None]
        K = np.eye(n) + (B / precision) @ B.T
        logdet = float(np.log(precision).sum()) + 2.0 * float(np.log(np.diag(np.linalg.cholesky(K))).sum())
    else:
        from scipy.linalg import blas, cho_factor

        # the Gram product is the cost: float32 halves it (log det needs no more), and a
        # symmetric rank-k update computes one triangle only, which is all Cholesky reads
        H = blas.ssyrk(1.0, (A * np.sqrt(s)[:, None]).astype(np.float32), trans=1, lower=0).astype(np.float64)
        H[np.diag_indices_from(H)] += precision
        upper, _ = cho_factor(H, lower=False, overwrite_a=True, check_finite=False)
        logdet = 2.0 * float(np.log(np.diag(upper)).sum())
    return loglik + log_prior - 0.5 * logdet


def fit_prior(X: np.ndarray, y: np.ndarray, query: np.ndarray | None = None,
              lambdas: Sequence[float] | None = None, lam: float | None = None,
              start: LinearModel | None = None, evidence: bool = False,
              whitening: np.ndarray | None = None, prior: str | None = None, near=None) -> LinearModel:
    """The product's trainer (see above): the text query as the prior, lam by the evidence.

    Without a query the prior mean is zero. ``lam`` fixes the regularisation (the
    evaluation refits with the lam the full label set chose); its fit then has no
    ``log_evidence`` (None) unless ``evidence`` asks for it: choosing lam is what the
    evidence is for, and on a thousand labels it costs as much as a refit's optimisation.
    ``whitening``: the corpus's :func:`whitening`; given it, the prior's shape (``prior``:
    isotropic or whitened) is chosen by the evidence too unless ``prior`` fixes it (a refit).
    ``start``: a model fitted the same way (same query) on overlapping labels, whose mode the
    optimiser starts from: the posterior is log-concave, so the mode found is the same up to
    the optimiser's tolerance, in fewer iterations (the corpus estimate's refits of a version).
    ``near``: {shape: lam} the label's previous fit chose (its ``params["lambdas"]``): the
    search for a shape's lam then climbs from there by half decades (:func:`_climb`) instead of
    walking the whole grid. The model records the lam each shape chose (``params["lambdas"]``).
    """
    if prior not in (None, ISOTROPIC, WHITENED):
        raise ValueError(f"unknown prior shape {prior!r}: {ISOTROPIC} or {WHITENED}")
    if prior == WHITENED and whitening is None:
        raise ValueError("a whitened prior needs the corpus's whitening")
    shapes = [prior] if prior is not None else [ISOTROPIC] + ([WHITENED] if whitening is not None else [])
    if lam is not None and len(shapes) > 1 and not evidence:
        raise ValueError("a fit with a fixed lam and no evidence needs its prior shape (prior=...)")
    near = near or {}
    fits = [_fit_shape(X, y, query, whitening if shape == WHITENED else None, lambdas, lam, start, evidence,
                       near.get(shape)) for shape in shapes]
    # the shape with the higher evidence (a fixed lam without evidence: the one shape asked for)
    chosen = max(fits, key=lambda m: -np.inf if m.params["log_evidence"] is None else m.params["log_evidence"])
    if lam is not None:
        return chosen
    return replace(chosen, params={**chosen.params, "lambdas": {m.params["prior"]: m.params["lambda"] for m in fits}})


def _half_decades(value: float) -> int:
    """``value`` as k in ``10 ** (k / 2)``: the points of the grids and of their refinement."""
    return int(round(2 * np.log10(value)))


def walk_grid(evidence_at, grid) -> float:
    """The lam of highest evidence: ``grid`` from strong regularisation down, then the half
    decades either side of the best. The evidence is unimodal in lam here; weak regularisation
    is the slow end (the most optimiser iterations), so the walk stops one decade past the best."""
    seen: dict[float, float] = {}
    for value in sorted(grid, reverse=True):
        seen[value] = evidence_at(value)
        if value < max(seen, key=seen.get) / 5:
            break
    best = max(seen, key=seen.get)
    for value in (best * 10 ** 0.5, best / 10 ** 0.5):
        seen[value] = evidence_at(value)
    return max(seen, key=seen.get)


def _climb(evidence_at, start: float, grid) -> float:
    """The lam of highest evidence on the half-decade grid, climbing from ``start``.

    The evidence is unimodal in lam here (the walk of the grid relies on it too), so from a
    point both of whose neighbours are lower nothing higher lies further out. A label's next
    build adds a few labels to the last: its lam is that of the previous build or a neighbour,
    so the climb costs three or four fits where the walk of the grid costs six to eight. The
    climb stays within the grid widened by its refinement (half a decade at each end).
    """
    lowest, highest = _half_decades(min(grid)) - 1, _half_decades(max(grid)) + 1
    k = min(max(_half_decades(start), lowest), highest)

    def at(j: int) -> float:
        return evidence_at(float(10 ** (j / 2))) if lowest <= j <= highest else -np.inf

    while True:
        here, up, down = at(k), at(k + 1), at(k - 1)
        if here >= up and here >= down:
            return float(10 ** (k / 2))
        k = k + 1 if up > down else k - 1


def _fit_shape(X, y, query, W, lambdas, lam, start, evidence, near=None) -> LinearModel:
    """:func:`fit_prior` with one prior shape: isotropic (``W`` None) or whitened by ``W``."""
    y = np.asarray(y, dtype=bool)
    _check_classes(y, minimum=2)
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    if W is not None and W.shape != (d, d):
        raise ValueError(f"the whitening is {W.shape[0]}-d, the embeddings {d}-d")
    columns = [X if W is None else X @ W]
    if query is not None:
        t = np.asarray(query, dtype=np.float64).ravel()
        if t.shape != (d,):
            raise ValueError(f"the text query has {t.shape[0]} dimensions, the embeddings {d}")
        t = t / np.linalg.norm(t)
        # the prior mean: the query, or in whitened coordinates the whitened query, W (W t)
        mean = t if W is None else W @ (W @ t)
        mean = mean / np.linalg.norm(mean)
        columns.append((X @ mean)[:, None])
    columns.append(np.ones((n, 1)))
    A = np.hstack(columns)
    extra = [BETA_PRECISION] if query is not None else []
    bounds = [(None, None)] * d + ([(0.0, None)] if query is not None else []) + [(None, None)]

    def precision(value: float) -> np.ndarray:
        return np.r_[np.full(d, value), extra, BIAS_PRECISION]

    first = np.zeros(A.shape[1]) if start is None else _mode_of(start, d, t if query is not None else None, W)
    fits: dict[float, tuple[float | None, np.ndarray]] = {}

    def at(value: float, with_evidence: bool = True) -> tuple[float | None, np.ndarray]:
        if value not in fits:
            # warm start from the fit at the nearest lam (in log scale) so far: the posterior
            # is log-concave, so the mode does not depend on the start, only the iterations do
            closest = min(fits, key=lambda v: abs(np.log(v / value)), default=None)
            theta = _fit_map(A, y, precision(value), bounds, fits[closest][1] if closest is not None else first)
            fits[value] = (_log_evidence(A, y, theta, precision(value)) if with_evidence else None, theta)
        return fits[value]

    with one_blas_thread():
        grid = lambdas if lambdas is not None else (PRIOR_LAMBDAS if W is None else WHITENED_LAMBDAS)
        if lam is None and near is not None:
            lam = _climb(lambda value: at(value)[0], float(near), grid)
            log_evidence, theta = at(lam)
        elif lam is None:
            lam = walk_grid(lambda value: at(value)[0], grid)
            log_evidence, theta = at(float(lam))
        else:
            log_evidence, theta = at(float(lam), with_evidence=evidence)
    # serving scores sigmoid(X @ coef + b): the whitening is folded into coef
    coef = theta[:d].copy() if W is None else W @ theta[:d]
    beta = float(theta[d]) if query is not None else 0.0
    if query is not None:
        coef += beta * mean
    return LinearModel(coef, float(theta[-1]), "fast",
                       {"method": "text-prior evidence", "lambda": float(lam), "C": 1.0 / float(lam),
                        "query_weight": beta, "log_evidence": None if log_evidence is None else float(log_evidence),
                        "has_query": query is not None,
                        # the query is part of the method: refits elsewhere (the estimate's) need it
                        "query": [float(v) for v in t] if query is not None else None,
                        "prior": ISOTROPIC if W is None else WHITENED,
                        "whitening": None if W is None else whitening_digest(W)})


def _mode_of(model: LinearModel, d: int, t: np.ndarray | None, W: np.ndarray | None = None) -> np.ndarray:
    """``model``'s coefficients as :func:`fit_prior`'s parameters (delta, beta when there is a
    query t, bias): the model scores with ``coef = delta + beta * t``; whitened by ``W``, with
    ``coef = W u + beta * m`` (m the whitened query) and the parameters are u, beta, bias."""
    if model.dim != d:
        raise ValueError(f"the starting model takes {model.dim}-d embeddings, the embeddings have {d}")
    stored = model.params.get("query")
    if (stored is None) != (t is None) or (t is not None and not np.allclose(stored, t)):
        raise ValueError("the starting model was fitted with another text query: its mode is not a start for this fit")
    if (model.params.get("prior", ISOTROPIC) == WHITENED) != (W is not None):
        raise ValueError("the starting model was fitted with another prior shape: its mode is not a start for this fit")
    beta = float(model.params["query_weight"]) if t is not None else 0.0
    if W is not None and t is not None:
        mean = W @ (W @ t)
        t = mean / np.linalg.norm(mean)
    delta = model.coef - beta * t if t is not None else model.coef
    if W is not None:
        delta = np.linalg.solve(W, delta)
    return np.r_[delta, beta, model.intercept] if t is not None else np.r_[delta, model.intercept]


@dataclass(frozen=True)
class Trainer:
    """A way to fit a :class:`LinearModel`: ``fit(X, y, query=, lam=, whitening=, near=)``, every
    argument after the labels a keyword a trainer may ignore: the label's text ``query``, a
    fixed regularisation ``lam``, the corpus's :func:`whitening` and ``near``, the
    regularisation per prior shape the label's previous version chose (where a search may start).

    ``text_prior``: it starts from the label's text query when there is one (``query``), so
    training also tries the model without it and keeps the better by the corpus estimate.
    ``lam`` is the regularisation the stored model was fitted with (``params["lambda"]``):
    refits of it (its evaluation, the corpus estimate's folds) pass it back; a trainer that
    chooses its own ignores it.
    ``refit(model, X, y, whitening)``: how a model of this trainer is refitted on other labels
    (see :func:`refit`) when the trainer can do better than ``fit`` with the model's query and
    lam, e.g. start from the model's own coefficients.
    """

    name: str
    description: str  # one line for people
    fit: Callable[..., LinearModel]
    text_prior: bool = False
    refit: "Callable[[LinearModel, np.ndarray, np.ndarray, np.ndarray | None], LinearModel] | None" = None


# The trainers. A new one is one entry here.
TRAINERS: dict[str, Trainer] = {t.name: t for t in (
    Trainer("fast", "the product's: logistic regression from the label's text query, regularisation, the "
            "query's weight and the prior's shape (isotropic or whitened) chosen by the evidence (interactive)",
            lambda X, y, query=None, lam=None, whitening=None, near=None: fit_prior(
                X, y, query, lam=lam, whitening=whitening, near=near),
            text_prior=True,
            # from the model's own mode, and no evidence: the refits of the corpus estimate leave
            # out a fifth of its audit labels, so their modes are near it
            refit=lambda model, X, y, whitening: fit_prior(
                X, y, _query_of(model), lam=model.params["lambda"], start=model, prior=_prior_of(model),
                whitening=_whitening_for(model, whitening))),
    Trainer("reference", "the paper's: scikit-learn's LogisticRegressionCV, 5 folds scored by AP (ignores the query)",
            lambda X, y, **_: fit_reference(X, y)),
)}
DEFAULT_TRAINER = "fast"


def get_trainer(name: str) -> Trainer:
    """The trainer called ``name``, or InputError naming the known ones."""
    found = TRAINERS.get(name)
    if found is None:
        from va_core.errors import InputError

        raise InputError(f"unknown trainer {name!r}; trainers are: {', '.join(TRAINERS)}")
    return found


def trainer_names() -> list[str]:
    """The trainers' names (``va train --trainer``)."""
    return list(TRAINERS)


def fit(X: np.ndarray, y: np.ndarray, trainer: str = DEFAULT_TRAINER, query: np.ndarray | None = None,
        lam: float | None = None, whitening: np.ndarray | None = None, near=None) -> LinearModel:
    """A model fitted by ``trainer`` (:data:`TRAINERS`) with the label's text ``query``, a
    fixed regularisation ``lam``, the corpus's ``whitening`` and the previous version's
    regularisation per prior shape (``near``), for the trainers that use them."""
    return get_trainer(trainer).fit(X, y, query=query, lam=lam, whitening=whitening, near=near)


def _query_of(model: LinearModel) -> np.ndarray | None:
    query = model.params.get("query")
    return None if query is None else np.asarray(query)


def _prior_of(model: LinearModel) -> str:
    return model.params.get("prior") or ISOTROPIC  # versions stored before the shape was chosen


def _whitening_for(model: LinearModel, whitening: np.ndarray | None) -> np.ndarray | None:
    """The whitening a refit of ``model`` uses: the one it was fitted with, or a clear error."""
    if _prior_of(model) != WHITENED:
        return None
    if whitening is None or whitening_digest(whitening) != model.params.get("whitening"):
        raise ValueError(f"this model was fitted in whitened coordinates (whitening "
                         f"{model.params.get('whitening')}); its refits need that whitening, got "
                         f"{'none' if whitening is None else whitening_digest(whitening)}: the corpus "
                         "has changed since it was fitted")
    return whitening


def refit(model: LinearModel, X: np.ndarray, y: np.ndarray, whitening: np.ndarray | None = None) -> LinearModel:
    """A model fitted as ``model`` was (trainer, text query, regularisation, prior shape) on other
    labels: by the trainer's ``refit`` when it has one, else by its ``fit`` given the model's
    query and lam. ``whitening``: the corpus's (:func:`whitening`), which a model fitted in
    whitened coordinates needs: the very matrix it was fitted with (checked by its digest)."""
    trainer = get_trainer(model.trainer)
    if trainer.refit is not None:
        return trainer.refit(model, X, y, whitening)
    return trainer.fit(X, y, query=_query_of(model), lam=model.params.get("lambda"),
                       whitening=_whitening_for(model, whitening))


# -- evaluation ---------------------------------------------------------------------

@dataclass(frozen=True)
class Evaluation:
    """How good a label's classifier is, and how that was measured.

    ``method`` is ``hash_split`` (the paper's: fit without the validation clips, AP on
    them) or ``stratified_cv`` (out-of-fold scores of stratified k-fold over all labelled
    clips) when the validation split holds fewer than MIN_VALIDATION_POSITIVES positives.
    """

    method: str
    ap: APResult
    baseline: APResult
    n_val: int
    n_val_pos: int
    threshold: float = 0.5  # the score at which held-out F1 is highest: the model's yes/no boundary
    curve: Curve | None = None  # held-out precision/recall per threshold (va_core.operating)

    @property
    def beats_baseline(self) -> bool:
        return self.ap.mean > self.baseline.mean

    def as_dict(self) -> dict:
        return {"method": self.method, "ap_mean": self.ap.mean, "ap_std": self.ap.std,
                "baseline_ap": self.baseline.mean, "n_val": self.n_val, "n_val_pos": self.n_val_pos,
                "threshold": self.threshold}


def best_f1_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold with the highest F1 on held-out clips.

    A logistic model trained on few positives rarely scores anything above 0.5, so 0.5 is
    not where its yes/no decision lies in practice; this threshold is.
    """
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(np.asarray(y_true, dtype=bool), scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    return float(thresholds[int(np.argmax(f1))]) if len(thresholds) else 0.5


def evaluate(keys: Sequence[str], X: np.ndarray, y: np.ndarray, trainer: str = DEFAULT_TRAINER,
             query: np.ndarray | None = None, lam: float | None = None,
             refit: Callable[[np.ndarray, np.ndarray], LinearModel] | None = None,
             whitening: np.ndarray | None = None) -> Evaluation:
    """AP of ``trainer`` on labelled clips (rows in :func:`ordered` order).

    The paper's hash split when its validation part holds enough positives (and the rest
    can still be trained on), else stratified cross-validation; the random baseline is
    computed on the same clips. ``refit(X', y')``: how the held-out models are fitted when
    they are refits of a model fitted on all these clips (:func:`refit`, which may start from
    its mode); else by ``trainer`` with ``query`` and ``lam``.
    """
    from sklearn.model_selection import StratifiedKFold

    if refit is None:
        def refit(X_part, y_part):
            return fit(X_part, y_part, trainer, query, lam, whitening)

    y = np.asarray(y, dtype=bool)
    _check_classes(y, "evaluation")
    val = validation_mask(keys)
    n_val_pos, n_val_neg = int(y[val].sum()), int((~y[val]).sum())
    train_pos, train_neg = int(y[~val].sum()), int((~y[~val]).sum())
    if n_val_pos >= MIN_VALIDATION_POSITIVES and n_val_neg >= 1 and min(train_pos, train_neg) >= MIN_PER_CLASS:
        model = refit(X[~val], y[~val])
        held_out = model.score(X[val])
        ap = bootstrap_ap(y[val], held_out)
        return Evaluation("hash_split", ap, baseline_ap(n_val_pos, int(val.sum())), int(val.sum()), n_val_pos,
                          best_f1_threshold(y[val], held_out), Curve.from_scores(y[val], held_out, "hash_split"))
    folds = StratifiedKFold(n_splits=n_folds(y), shuffle=True, random_state=SPLIT_SEED)
    scores = np.empty(len(y), dtype=np.float64)
    for train_idx, test_idx in folds.split(X, y):
        scores[test_idx] = refit(X[train_idx], y[train_idx]).score(X[test_idx])
    return Evaluation("stratified_cv", bootstrap_ap(y, scores), baseline_ap(int(y.sum()), len(y)), len(y),
                      int(y.sum()), best_f1_threshold(y, scores), Curve.from_scores(y, scores, "stratified_cv"))
