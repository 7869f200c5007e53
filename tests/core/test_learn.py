"""Evaluation primitives (the paper's split, AP, baseline, diversity) and the trainers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from va_core import learn
from va_core.errors import InputError
from tests.support.synthetic import make_corpus


# mmh3.hash(key, 0) of these keys, pinned: the split must never drift from the paper's rule.
KNOWN = {"video1|24": -330980080, "video0|0": 909737622, "video11|264": 1061606149 * -1,
         "video12|288": 1298140601, "video2|48": -2051799532, "foo": -156908512}


def test_split_matches_the_mmh3_rule_for_known_keys():
    for key, h in KNOWN.items():
        assert learn.in_validation(key) == (h % 10 < 2)
    assert [learn.in_validation(k) for k in KNOWN] == [True, False, True, True, False, False]
    assert learn.validation_mask(list(KNOWN)).tolist() == [True, False, True, True, False, False]


def test_diversity_score_hand_computed():
    assert learn.diversity_score([], []) == 0.0
    # 10 positives and 10 negatives in every cluster: full coverage
    full = [c for c in range(10) for _ in range(10)]
    assert learn.diversity_score(full, full) == 1.0
    # 25 positives in cluster 0 count as 10; 5 negatives in cluster 1 and 3 in cluster 2
    assert learn.diversity_score([0] * 25, [1] * 5 + [2] * 3) == pytest.approx((10 / 10 + 8 / 10) / 20)
    # one positive in each of the 10 clusters, no negative
    assert learn.diversity_score(list(range(10)), []) == pytest.approx(1.0 / 20)


def test_average_precision_is_scikit_learns_including_ties():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    for _ in range(6):
        n = int(rng.integers(2, 200))
        y = rng.random(n) < 0.3
        y[0] = True
        scores = np.round(rng.random(n), 1)  # many ties
        assert learn.average_precision(y, scores) == pytest.approx(average_precision_score(y, scores), abs=1e-12)


def test_baseline_ap():
    assert learn.baseline_ap(50, 1000).mean == pytest.approx(0.05)
    small = learn.baseline_ap(2, 10)
    assert 0.2 < small.mean < 0.5  # random AP with 2 of 10 positives sits above the 0.2 positive rate
    with pytest.raises(ValueError):
        learn.baseline_ap(0, 10)


def test_linear_model_scores_are_sigmoid_of_a_dot_product_and_survive_json():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 32)).astype(np.float32)
    model = learn.LinearModel(rng.standard_normal(32), 0.3, "fast", {"C": 1.0}, threshold=0.4)
    expected = 1.0 / (1.0 + np.exp(-(X.astype(np.float64) @ model.coef + 0.3)))
    again = learn.LinearModel.from_artifact(model.to_artifact(label="x"))
    assert np.abs(again.score(X) - expected).max() < 1e-6
    assert again.threshold == 0.4 and json.loads(model.to_artifact())["dim"] == 32
    with pytest.raises(ValueError, match="32-d"):
        model.score(X[:, :10])


@pytest.fixture(scope="module")
def labelled():
    c = make_corpus(4000, dim=64, n_topics=8, noise=4.0, seed=3)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(c.keys), 350, replace=False)
    keys, y = learn.ordered([c.keys[i] for i in rows if c.topics[i] == 2],
                            [c.keys[i] for i in rows if c.topics[i] != 2])
    index = {k: i for i, k in enumerate(c.keys)}
    X = c.matrix[[index[k] for k in keys]]
    return keys, X, y


def test_hash_split_evaluation_and_fast_trainer_close_to_reference(labelled):
    keys, X, y = labelled
    fast = learn.evaluate(keys, X, y, "fast")
    ref = learn.evaluate(keys, X, y, "reference")
    assert fast.method == ref.method == "hash_split"
    val = learn.validation_mask(keys)
    assert fast.n_val == int(val.sum()) and fast.n_val_pos == int(y[val].sum())
    assert fast.baseline.mean == pytest.approx(learn.baseline_ap(fast.n_val_pos, fast.n_val).mean)
    assert fast.ap.mean > fast.baseline.mean + 0.2
    assert abs(fast.ap.mean - ref.ap.mean) < 0.05
    assert 0.0 < fast.threshold < 1.0


def test_cross_validation_when_the_split_has_too_few_positives(labelled):
    keys, X, y = labelled
    pos = [i for i in range(len(keys)) if y[i]][:6]
    neg = [i for i in range(len(keys)) if not y[i]][:40]
    sel = np.array(pos + neg)
    ev = learn.evaluate([keys[i] for i in sel], X[sel], y[sel], "fast")
    assert ev.method == "stratified_cv"
    assert ev.n_val == len(sel) and ev.n_val_pos == 6
    assert ev.baseline.mean == pytest.approx(learn.baseline_ap(6, len(sel)).mean)


def test_too_few_labels_is_a_clear_error(labelled):
    keys, X, y = labelled
    sel = np.array([i for i in range(len(keys)) if y[i]][:2] + [i for i in range(len(keys)) if not y[i]][:10])
    with pytest.raises(InputError, match="at least 3 positive"):
        learn.evaluate([keys[i] for i in sel], X[sel], y[sel])
    with pytest.raises(InputError, match="unknown trainer"):
        learn.fit(X, y, "deep")


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_reference_is_the_papers_logistic_regression_cv(labelled):
    keys, X, y = labelled
    model = learn.fit_reference(X, y)
    clf = learn.reference_classifier().fit(X.astype(np.float64), y)
    assert model.params["folds"] == 5
    assert np.abs(model.score(X) - clf.predict_proba(X)[:, 1]).max() < 1e-6


# -- the product's trainer: the text query as the prior ---------------------------------

@pytest.fixture(scope="module")
def concept():
    """A 2% concept in 64-d embeddings and a text query near its direction but not on it."""
    rng = np.random.default_rng(5)
    n, d = 6000, 64
    direction = rng.standard_normal(d)
    direction /= np.linalg.norm(direction)
    y = rng.random(n) < 0.02
    X = rng.standard_normal((n, d)) / np.sqrt(d) + 0.35 * y[:, None] * direction
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    noise = rng.standard_normal(d)
    query = direction + 0.9 * noise / np.linalg.norm(noise)
    return X, y, query / np.linalg.norm(query)


def _spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def test_with_two_labels_of_each_the_model_ranks_like_the_text_query(concept):
    X, y, query = concept
    zero_shot = X @ query
    top = np.argsort(-zero_shot)
    rows = np.r_[top[:2], top[-2:]]  # the query's own top clips said yes, its bottom ones no
    model = learn.fit(X[rows], np.array([True, True, False, False]), query=query)
    assert model.params["query_weight"] > 0
    assert _spearman(model.score(X), zero_shot) > 0.99
    assert learn.average_precision(y, model.score(X)) == pytest.approx(learn.average_precision(y, zero_shot), abs=0.02)


def test_with_many_labels_the_model_follows_the_data(concept):
    X, y, query = concept
    rng = np.random.default_rng(0)
    train = rng.choice(len(y), 3000, replace=False)
    test = np.setdiff1d(np.arange(len(y)), train)
    zero_shot_ap = learn.average_precision(y[test], X[test] @ query)
    model = learn.fit(X[train], y[train], query=query)
    assert learn.average_precision(y[test], model.score(X[test])) > zero_shot_ap + 0.1
    # a query pointing elsewhere is not trusted against the data
    wrong = rng.standard_normal(X.shape[1])
    misled = learn.fit(X[train], y[train], query=wrong / np.linalg.norm(wrong))
    assert learn.average_precision(y[test], misled.score(X[test])) > zero_shot_ap + 0.1
    assert misled.params["lambda"] <= model.params["lambda"]


def test_regularisation_is_chosen_by_the_evidence_and_can_be_fixed(concept):
    X, y, query = concept
    rows = np.random.default_rng(1).choice(len(y), 800, replace=False)
    chosen = learn.fit(X[rows], y[rows], query=query)
    for lam in learn.PRIOR_LAMBDAS:
        fixed = learn.fit_prior(X[rows], y[rows], query, lam=lam, evidence=True)
        assert fixed.params["lambda"] == lam
        assert fixed.params["log_evidence"] <= chosen.params["log_evidence"] + 1e-3  # optimiser tolerance
    with pytest.raises(ValueError, match="dimensions"):
        learn.fit(X[rows], y[rows], query=query[:10])


def test_the_evidence_walk_warm_starts_to_the_same_modes_as_cold_fits(concept):
    # each lam's fit starts from the nearest lam's mode; the posterior is log-concave, so the
    # chosen model is the one a cold fit at the chosen lam finds
    X, y, query = concept
    rows = np.random.default_rng(2).choice(len(y), 800, replace=False)
    chosen = learn.fit(X[rows], y[rows], query=query)
    cold = learn.fit_prior(X[rows], y[rows], query, lam=chosen.params["lambda"], evidence=True)
    assert chosen.params["log_evidence"] == pytest.approx(cold.params["log_evidence"], abs=1e-2)
    assert np.abs(chosen.score(X) - cold.score(X)).max() < 1e-3


@pytest.mark.parametrize("with_query", [True, False])
def test_a_refit_starts_from_the_models_mode_and_finds_the_cold_fits_mode(concept, monkeypatch, with_query):
    # the corpus estimate refits a version without a fold of its labels: the refit starts from
    # the version's coefficients and skips the evidence, and lands where a cold fit does
    X, y, query = concept
    query = query if with_query else None
    rows = np.random.default_rng(3).choice(len(y), 1500, replace=False)
    model = learn.fit(X[rows], y[rows], query=query)
    keep = rows[np.random.default_rng(4).random(len(rows)) > 0.2]
    starts = []
    fit_map = learn._fit_map
    monkeypatch.setattr(learn, "_fit_map", lambda A, y, precision, bounds, start:
                        starts.append(start.copy()) or fit_map(A, y, precision, bounds, start))
    warm = learn.refit(model, X[keep], y[keep])
    assert len(starts) == 1  # one fit at the version's lam, no search
    d = X.shape[1]
    start_coef = starts[0][:d] + (starts[0][d] * query if with_query else 0.0)
    assert np.allclose(start_coef, model.coef) and starts[0][-1] == model.intercept
    monkeypatch.setattr(learn, "_fit_map", fit_map)
    cold = learn.fit_prior(X[keep], y[keep], query, lam=model.params["lambda"], evidence=True)
    assert warm.params["lambda"] == cold.params["lambda"] == model.params["lambda"]
    assert warm.params["log_evidence"] is None and cold.params["log_evidence"] is not None
    assert np.abs(warm.score(X) - cold.score(X)).max() < 1e-3  # optimiser tolerance
    assert warm.params["query_weight"] == pytest.approx(cold.params["query_weight"], abs=1e-2)
    assert np.abs(warm.score(X) - model.score(X)).max() > 1e-3  # it did refit: other labels, another mode


def test_a_refit_cannot_start_from_a_model_of_another_query(concept):
    X, y, query = concept
    rows = np.random.default_rng(3).choice(len(y), 600, replace=False)
    model = learn.fit(X[rows], y[rows], query=query)
    with pytest.raises(ValueError, match="another text query"):
        learn.fit_prior(X[rows], y[rows], None, lam=model.params["lambda"], start=model)
    with pytest.raises(ValueError, match="64-d"):
        learn.fit_prior(X[rows, :32], y[rows], None, lam=model.params["lambda"], start=model)


# -- the prior's shape: isotropic or whitened, chosen by the evidence --------------------------

@pytest.fixture(scope="module")
def clustered():
    """Clips in clusters that hold most of the variance, a 2% concept mostly outside them, and a
    text query whose error lies inside them (as the live loop's corpus, in 128-d)."""
    rng = np.random.default_rng(11)
    n, d, k = 8000, 128, 12
    basis, _ = np.linalg.qr(rng.standard_normal((d, k)))
    centres = rng.standard_normal((12, k))
    z = centres[rng.integers(0, 12, n)] + 0.6 * rng.standard_normal((n, k))
    X = z @ basis.T / np.sqrt(k) + 0.55 * rng.standard_normal((n, d)) / np.sqrt(d)
    direction = rng.standard_normal(d)
    direction -= basis @ (basis.T @ direction)
    direction /= np.linalg.norm(direction)
    y = rng.random(n) < 0.02
    X += 0.2 * y[:, None] * direction
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    inside = basis @ rng.standard_normal(k)
    query = direction + 0.5 * inside / np.linalg.norm(inside)
    return X, y, query / np.linalg.norm(query)


def test_the_whitening_is_the_inverse_square_root_of_the_shrunk_covariance(clustered):
    X = clustered[0]
    W = learn.whitening(X, shrinkage=0.5)
    d = X.shape[1]
    assert np.allclose(W, W.T) and (W * W).sum() == pytest.approx(d)
    covariance = np.cov(X, rowvar=False)
    sigma = 0.5 * covariance / (np.trace(covariance) / d) + 0.5 * np.eye(d)
    product = W @ sigma @ W
    assert np.allclose(product, product[0, 0] * np.eye(d), atol=1e-10)
    assert np.array_equal(learn.whitening(X), learn.whitening(X))  # seeded: refits see the same matrix
    assert learn.whitening_digest(W) != learn.whitening_digest(learn.whitening(X, shrinkage=0.3))
    with pytest.raises(ValueError, match="shrinkage"):
        learn.whitening(X, shrinkage=0.0)
    with pytest.raises(ValueError, match="at least 2"):
        learn.whitening(X[:1])


def test_the_evidence_chooses_the_whitened_prior_where_clusters_hide_the_concept(clustered):
    X, y, query = clustered
    W = learn.whitening(X)
    rng = np.random.default_rng(0)
    train = np.r_[rng.choice(np.flatnonzero(y), 30, replace=False), rng.choice(np.flatnonzero(~y), 120, replace=False)]
    test = np.setdiff1d(np.arange(len(y)), train)
    for q in (query, None):
        isotropic = learn.fit_prior(X[train], y[train], q)
        chosen = learn.fit_prior(X[train], y[train], q, whitening=W)
        assert isotropic.params["prior"] == "isotropic" and isotropic.params["whitening"] is None
        assert chosen.params["prior"] == "whitened" and chosen.params["whitening"] == learn.whitening_digest(W)
        assert chosen.params["log_evidence"] > isotropic.params["log_evidence"]
        ap_iso = learn.average_precision(y[test], isotropic.score(X[test]))
        ap_white = learn.average_precision(y[test], chosen.score(X[test]))
        assert ap_white > ap_iso + (0.03 if q is not None else 0.02), (q is None, ap_iso, ap_white)
        # served as any model: sigmoid(X @ coef + intercept), the whitening folded into coef
        served = learn.LinearModel.from_artifact(chosen.to_artifact())
        assert np.abs(served.score(X) - chosen.score(X)).max() < 1e-6


def test_the_evidence_keeps_the_isotropic_prior_where_the_concept_is_a_cluster():
    # topics are the high-variance directions here: whitening would shrink the concept itself
    c = make_corpus(3000, dim=64, n_topics=8, noise=3.0, seed=1)
    rows = np.random.default_rng(1).choice(len(c.keys), 400, replace=False)
    y = c.topics[rows] == 2
    plain = learn.fit_prior(c.matrix[rows], y)
    chosen = learn.fit_prior(c.matrix[rows], y, whitening=learn.whitening(c.matrix))
    assert chosen.params["prior"] == "isotropic"
    # the same model; its params also say what lam the other shape chose
    unlike = {"lambdas"}
    assert np.array_equal(chosen.coef, plain.coef) and \
        {k: v for k, v in chosen.params.items() if k not in unlike} == \
        {k: v for k, v in plain.params.items() if k not in unlike}
    assert set(chosen.params["lambdas"]) == {"isotropic", "whitened"}


def test_a_whitened_refit_needs_the_whitening_it_was_fitted_with(clustered, monkeypatch):
    X, y, query = clustered
    W = learn.whitening(X)
    rows = np.random.default_rng(3).choice(len(y), 1500, replace=False)
    model = learn.fit(X[rows], y[rows], query=query, whitening=W)
    assert model.params["prior"] == "whitened"
    keep = rows[np.random.default_rng(4).random(len(rows)) > 0.2]
    with pytest.raises(ValueError, match="whitened coordinates.*got none"):
        learn.refit(model, X[keep], y[keep])
    with pytest.raises(ValueError, match="the corpus has changed"):
        learn.refit(model, X[keep], y[keep], learn.whitening(X[:4000]))
    with pytest.raises(ValueError, match="prior shape"):
        learn.fit_prior(X[keep], y[keep], query, lam=model.params["lambda"], whitening=W)
    starts = []
    fit_map = learn._fit_map
    monkeypatch.setattr(learn, "_fit_map", lambda A, y, precision, bounds, start:
                        starts.append(start.copy()) or fit_map(A, y, precision, bounds, start))
    warm = learn.refit(model, X[keep], y[keep], W)
    assert len(starts) == 1  # one fit at the version's lam and shape, from the version's mode
    monkeypatch.setattr(learn, "_fit_map", fit_map)
    cold = learn.fit_prior(X[keep], y[keep], query, lam=model.params["lambda"], whitening=W, prior="whitened")
    assert warm.params["prior"] == cold.params["prior"] == "whitened"
    assert np.abs(warm.score(X) - cold.score(X)).max() < 1e-3
    assert np.abs(warm.score(X) - model.score(X)).max() > 1e-3


@pytest.mark.parametrize("with_query", [True, False])
def test_the_search_climbs_from_the_previous_lam_to_the_walks_choice_in_fewer_fits(clustered, monkeypatch,
                                                                                 with_query):
    X, y, query = clustered
    q = query if with_query else None
    W = learn.whitening(X)
    rows = np.random.default_rng(5).choice(len(y), 1500, replace=False)
    fits = []
    real = learn._fit_map
    monkeypatch.setattr(learn, "_fit_map", lambda *a: fits.append(1) or real(*a))
    walked = learn.fit_prior(X[rows], y[rows], q, whitening=W)
    walk_fits = len(fits)
    lambdas = walked.params["lambdas"]
    assert set(lambdas) == {"isotropic", "whitened"}
    # from the lams the walk chose (a next build on about the same labels): the same model
    fits.clear()
    again = learn.fit_prior(X[rows], y[rows], q, whitening=W, near=lambdas)
    assert len(fits) <= 6 < walk_fits, (len(fits), walk_fits)  # three fits per shape
    assert again.params["lambda"] == walked.params["lambda"] and again.params["lambdas"] == lambdas
    assert np.abs(again.coef - walked.coef).max() < 1e-3
    # from two decades off, and from beyond the grid: the climb finds the same lams
    for start in ({s: v * 100 for s, v in lambdas.items()}, {s: 1e9 for s in lambdas}, {s: 1e-9 for s in lambdas}):
        assert learn.fit_prior(X[rows], y[rows], q, whitening=W, near=start).params["lambdas"] == lambdas
