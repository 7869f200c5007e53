"""The corpus estimate: the audit design, the weighted AP, and the estimator against ground truth."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from va_core import quality


def test_weighted_ap_with_unit_weights_is_scikit_learns_ap_ties_included():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.2
    scores = np.round(rng.normal(size=300) + y, 1)  # many ties
    assert quality.weighted_ap(y, scores) == pytest.approx(average_precision_score(y, scores), abs=1e-12)


def test_a_positive_counts_itself_once_not_with_its_weight():
    # one top-scored negative standing for 100 clips, then one positive standing for 1000:
    # the precision at the positive is about the clips above it (100 negatives) plus itself
    ap = quality.weighted_ap([False, True], [2.0, 1.0], [100.0, 1000.0])
    assert ap == pytest.approx(1 / 101)


def test_allocation_caps_small_strata_and_samples_every_stratum():
    n = quality.allocate([2, 8, 30, 60, 100], 50)
    assert n.sum() == 50 and n[0] == 2 and np.all(n >= 1) and np.all(n <= [2, 8, 30, 60, 100])
    assert quality.allocate([3, 3], 10).tolist() == [3, 3]
    assert quality.allocate([100, 100, 100], 2).tolist() == [1, 1, 0]


def test_stratified_draw_records_its_design():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=5000)
    candidates = np.flatnonzero(rng.random(5000) < 0.9)
    d = quality.stratified_draw(scores, candidates, 100, seed=3)
    assert len(d.rows) == 100 and len(set(d.rows.tolist())) == 100 and set(d.rows) <= set(candidates)
    n_all = len(candidates)
    for h in np.unique(d.stratum):
        mine = d.stratum == h
        size = int(d.stratum_size[mine][0])
        assert np.allclose(d.inclusion_prob[mine], mine.sum() / size)
        members = candidates[(scores[candidates] >= d.stratum_low[mine][0]) & (scores[candidates] <= d.stratum_high[mine][0])]
        assert len(members) == size  # the bounds describe exactly the stratum's population
    assert int(d.stratum_size[d.stratum == 0][0]) == int(np.ceil(quality.STRATA[0] * n_all))
    bottom = len(quality.STRATA) - 1
    assert set(np.unique(d.stratum)) == set(range(len(quality.STRATA)))
    # the top stratum is sampled far more densely than the bottom one
    assert d.inclusion_prob[d.stratum == 0][0] > 10 * d.inclusion_prob[d.stratum == bottom][0]
    again = quality.stratified_draw(scores, candidates, 100, seed=3)
    assert np.array_equal(again.rows, d.rows)  # one seed, one draw
    # display order mixes the strata: a prefix is a stratified sample too
    assert len(set(d.stratum[:25].tolist())) >= 3


def test_tiny_candidate_sets_still_draw():
    d = quality.stratified_draw(np.arange(7.0), np.arange(7), 5, seed=0)
    assert len(d.rows) == 5 and np.all(d.inclusion_prob <= 1)
    assert np.all(d.stratum_size.astype(float) * d.inclusion_prob >= 1 - 1e-9)


def test_sample_weights_stand_for_the_population_and_draws_are_pooled_by_size():
    s = quality.make_sample(["a", "b", "c", "d", "e"], [True, False, False, True, False],
                            ["r1", "r1", "r1", "r2", "r2"], [0, 0, 1, 0, 0], [10, 10, 90, 50, 50],
                            [0.2, 0.2, 1 / 90, 0.04, 0.04])
    # r1: cell 0 has 2 labels of 10, cell 1 one of 90; r2: 2 labels of 50; shares 3/5 and 2/5
    assert s.weight.tolist() == pytest.approx([5 * 0.6, 5 * 0.6, 90 * 0.6, 25 * 0.4, 25 * 0.4])
    assert s.n_draws == 2 and s.n_pos == 2
    # without stratum sizes (an imported file), a cell's N_h is the sum of 1/pi
    t = quality.make_sample(["a", "b"], [True, False], ["x", "x"], [0, 0], [None, None], [0.1, 0.1])
    assert t.weight.tolist() == pytest.approx([10.0, 10.0])
    with pytest.raises(ValueError, match="inclusion probabilities"):
        quality.make_sample(["a"], [True], ["x"], [0], [None], [0.0])


def _events(rows, draws):
    """label_events rows of labelled draws: one (draw_id, Draw or None for uniform, version) per part."""
    import datetime as dt

    import polars as pl

    parts, t0 = [], dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for (name, d, version, size, prob), chunk in zip(draws, rows):
        n = len(chunk)
        parts.append(pl.DataFrame({
            "clip_key": chunk.astype(str).tolist(), "draw_id": [name] * n,
            "stratum": d.stratum.tolist() if d is not None else [0] * n,
            "stratum_size": d.stratum_size.tolist() if d is not None else [size] * n,
            "inclusion_prob": d.inclusion_prob.tolist() if d is not None else [prob] * n,
            "stratum_low": d.stratum_low.tolist() if d is not None else [None] * n,
            "stratum_high": d.stratum_high.tolist() if d is not None else [None] * n,
            "chosen_by_version": [version] * n}, schema_overrides={"stratum_low": pl.Float64,
                                                                   "stratum_high": pl.Float64,
                                                                   "chosen_by_version": pl.Int64}))
    frame = pl.concat(parts)
    return frame.with_columns(pl.Series("event_id", [str(i) for i in range(frame.height)]),
                              pl.Series("created_at", [t0 + dt.timedelta(seconds=i) for i in range(frame.height)]))


def test_several_draws_combine_by_the_probability_of_being_in_any_of_them():
    rng = np.random.default_rng(4)
    n = 2000
    design = rng.normal(size=n)
    audit = quality.stratified_draw(design, np.arange(n), 40, seed=1)
    rest = np.setdiff1d(np.arange(n), audit.rows)
    uniform = rng.choice(rest, 20, replace=False)
    y = rng.random(n) < 0.1
    events = _events([audit.rows, uniform], [("audit@v1", audit, 1, None, None),
                                             ("random@v1", None, 1, len(rest), 20 / len(rest))])
    values = {str(k): bool(y[k]) for k in np.r_[audit.rows, uniform]}
    sample = quality.sample_from_events(events, values, lambda v, keys: design[np.asarray(keys, dtype=int)])
    by_key = dict(zip(sample.keys.tolist(), sample.weight.tolist()))
    k = int(uniform[0])
    # the uniform clip could also have been drawn by the audit, in the stratum its score falls in
    h = int(np.flatnonzero([(lo <= design[k] <= hi) for lo, hi in
                            sorted({(a, b) for a, b in zip(audit.stratum_low, audit.stratum_high)})])[0])
    strata = sorted({(a, b, p) for a, b, p in zip(audit.stratum_low, audit.stratum_high, audit.inclusion_prob)})
    p_audit = strata[h][2]
    assert by_key[str(k)] == pytest.approx(1 / (1 - (1 - 20 / len(rest)) * (1 - p_audit)))
    # an audit clip was labelled before the uniform draw began: only the audit could draw it
    a = int(audit.rows[0])
    assert by_key[str(a)] == pytest.approx(1 / audit.inclusion_prob[0])
    # without scores of the audit's model the draws are pooled by size
    pooled = quality.sample_from_events(events, values)
    assert dict(zip(pooled.keys.tolist(), pooled.weight.tolist()))[str(a)] == pytest.approx(
        audit.stratum_size[0] / np.sum(audit.stratum == audit.stratum[0]) * 40 / 60)


def _population(seed, n=20000, prevalence=0.02, separation=2.5):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prevalence
    design = rng.normal(size=n) + separation * y  # the scores the draw is stratified by
    model = design + rng.normal(scale=0.5, size=n)  # the evaluated model: related, not the same
    return y, design, model


def test_estimates_are_nearly_unbiased_and_90_percent_intervals_cover_at_least_90_percent():
    y, design, model = _population(0)
    threshold = float(np.quantile(model, 0.98))
    flagged = model >= threshold
    truth = {"ap": average_precision_score(y, model), "precision": (y & flagged).sum() / flagged.sum(),
             "recall": (y & flagged).sum() / y.sum(), "prevalence": y.mean()}
    reps = 80
    errors = {k: [] for k in truth}
    covered = {k: 0 for k in truth}
    widths = []
    for r in range(reps):
        d = quality.stratified_draw(design, np.arange(len(y)), 100, seed=100 + r)
        sample = quality.make_sample(d.rows.astype(str), y[d.rows], ["audit@v1"] * 100, d.stratum,
                                     d.stratum_size, d.inclusion_prob)
        e = quality.estimate(sample, model[d.rows], threshold, n_boot=300, seed=r)
        assert e.method == quality.METHOD and e.n_audit == 100
        for k in truth:
            point, low, high = getattr(e, k), getattr(e, f"{k}_low"), getattr(e, f"{k}_high")
            errors[k].append(point - truth[k])
            covered[k] += low <= truth[k] <= high
        widths.append(e.ap_high - e.ap_low)
    for k in truth:
        # ratio estimators on 100 labels of a 2% concept: a small upward bias (measured 0.04 for AP,
        # 0.05 for recall, whose denominator is the rarest count) against a spread of 0.15
        assert abs(np.mean(errors[k])) < 0.06, (k, np.mean(errors[k]))
        assert covered[k] / reps >= 0.85, (k, covered[k] / reps)
    # ... and not by being uninformative: AP's spread here is 0.13
    assert np.mean(widths) < 0.45, np.mean(widths)


def test_no_positive_no_estimate_and_the_method_says_how_many_labels_are_missing():
    s = quality.make_sample(["a", "b"], [False, False], ["x", "x"], [0, 0], [100, 100], [0.02, 0.02])
    e = quality.estimate(s, [0.1, 0.2], 0.5)
    assert e.ap is None and e.method == quality.NO_AUDIT and e.needed > 0
    assert "needs" in e.describe()
    few = quality.make_sample(["a", "b", "c"], [True, False, True], ["x"] * 3, [0] * 3, [30] * 3, [0.1] * 3)
    e = quality.estimate(few, [0.9, 0.1, 0.8], 0.5)
    assert e.method == quality.PROVISIONAL and e.ap is not None and e.needed >= quality.MIN_AUDIT - 3
    assert "provisional" in e.describe()


def test_a_sample_whose_positives_all_rank_above_its_negatives_keeps_an_interval():
    # 100 draws of a 20k-clip population; a 2% concept whose positives overlap the negatives'
    # scores (true AP 0.90) yet every drawn positive ranks above every drawn negative
    rng = np.random.default_rng(7)
    y = rng.random(20000) < 0.02
    score = rng.normal(size=20000) + 4.0 * y
    truth = average_precision_score(y, score)
    for seed in range(200):
        d = quality.stratified_draw(score, np.arange(20000), 100, seed=seed)
        yy, ss = y[d.rows], score[d.rows]
        if yy.sum() >= 5 and ss[yy].min() > ss[~yy].max():
            break
    else:
        pytest.fail("no separated draw")
    sample = quality.make_sample(d.rows.astype(str), yy, ["d"] * 100, d.stratum, d.stratum_size, d.inclusion_prob)
    e = quality.estimate(sample, ss, 0.0)
    assert e.ap == pytest.approx(1.0)
    # resampling the labelled clips alone gives [1, 1], which misses the truth
    assert e.ap_low < truth and e.ap_high == pytest.approx(1.0)
    assert 0.8 < truth < 0.97


def _rounds_sample(y, design, k, rng, size=25):
    """``k`` labels in audit rounds of ``size``, each stratified by a new version's scores (the
    design plus noise), combined by each clip's probability of being in any round."""
    n = len(y)
    versions = [design + rng.normal(scale=0.5, size=n) for _ in range(k // size)]
    draws = [quality.stratified_draw(v, np.arange(n), size, seed=int(rng.integers(1 << 31))) for v in versions]
    last = {int(row): (i, j) for i, d in enumerate(draws) for j, row in enumerate(d.rows)}
    rows = np.array(sorted(last), dtype=np.int64)
    cross = np.zeros((len(rows), len(draws)))
    for i, (v, d) in enumerate(zip(versions, draws)):
        for h in np.unique(d.stratum):
            at = np.flatnonzero(d.stratum == h)[0]
            cross[(v[rows] >= d.stratum_low[at]) & (v[rows] <= d.stratum_high[at]), i] = d.inclusion_prob[at]
    pick = [last[int(r)] for r in rows]
    return quality.make_sample(rows.astype(str), y[rows], [f"{i:02d}" for i, _ in pick],
                               [draws[i].stratum[j] for i, j in pick], [draws[i].stratum_size[j] for i, j in pick],
                               [draws[i].inclusion_prob[j] for i, j in pick], cross), rows


def test_resampled_scores_stay_within_their_cells_observed_range():
    y, design, model = _population(3)
    d = quality.stratified_draw(design, np.arange(len(y)), 100, seed=1)
    sample = quality.make_sample(d.rows.astype(str), y[d.rows], ["d"] * 100, d.stratum, d.stratum_size,
                                 d.inclusion_prob)
    scores = model[d.rows]
    S = quality._resampled_scores(sample, scores, 200, np.random.default_rng(0), quality.SCORE_RANGE)
    free = quality._resampled_scores(sample, scores, 200, np.random.default_rng(0), "none")
    outside = 0
    for c in np.unique(sample.cell):
        members = sample.cell == c
        low, high = scores[members].min(), scores[members].max()
        m = int(members.sum())
        slack = (high - low) / (m - 1) if m > 1 else 0.0
        assert S[:, members].min() >= low - slack - 1e-12 and S[:, members].max() <= high + slack + 1e-12
        outside += int(np.sum((free[:, members] < low - slack) | (free[:, members] > high + slack)))
    assert outside > 0  # the unbounded kernel does leave them
    with pytest.raises(ValueError, match="score_range"):
        quality._resampled_scores(sample, scores, 2, np.random.default_rng(0), "anywhere")


def test_audit_rounds_of_a_good_model_get_a_narrower_interval_that_still_covers():
    # the live loop's audits: rounds of 25 draws, each stratified by another version; a 1%
    # concept the model ranks well (true AP about 0.96). Unbounded resampled scores carried
    # heavy low-stratum negatives above the positives and stretched the lower bound.
    y, design, model = _population(5, prevalence=0.01, separation=5.0)
    truth = average_precision_score(y, model)
    rng = np.random.default_rng(11)
    reps, covered, widths, unbounded = 40, 0, [], []
    for r in range(reps):
        sample, rows = _rounds_sample(y, design, 200, rng)
        e = quality.estimate(sample, model[rows], 0.5, n_boot=300, seed=r)
        free = quality.estimate(sample, model[rows], 0.5, n_boot=300, seed=r, score_range="none")
        assert e.ap == free.ap  # the point estimate does not depend on the bootstrap
        covered += e.ap_low <= truth <= e.ap_high
        widths.append(e.ap_high - e.ap_low)
        unbounded.append(free.ap_high - free.ap_low)
    assert covered / reps >= 0.85, covered / reps
    assert np.median(widths) < 0.9 * np.median(unbounded), (np.median(widths), np.median(unbounded))


def test_a_paired_difference_tells_a_better_ranking_from_a_tie_where_point_estimates_cannot():
    rng = np.random.default_rng(0)
    n = 20000
    y = rng.random(n) < 0.02
    design = rng.normal(size=n) + 3.0 * y
    good = design + rng.normal(scale=0.5, size=n)
    worse = good + rng.normal(scale=1.0, size=n)  # true AP 0.34 against 0.60
    tie = good + rng.normal(scale=0.05, size=n)  # true AP within 0.003 of good's
    reps = 80
    for other, (clear_at_least, clear_at_most) in ((worse, (55, reps)), (tie, (0, 8))):
        truth = average_precision_score(y, good) - average_precision_score(y, other)
        clear = covered = ahead = 0
        for r in range(reps):
            d = quality.stratified_draw(design, np.arange(n), 100, seed=100 + r)
            sample = quality.make_sample(d.rows.astype(str), y[d.rows], ["audit@v1"] * 100, d.stratum,
                                         d.stratum_size, d.inclusion_prob)
            gain = quality.paired_difference(sample, other[d.rows], good[d.rows], n_boot=300, seed=r)
            a = quality.weighted_ap(y[d.rows], other[d.rows], sample.weight)
            b = quality.weighted_ap(y[d.rows], good[d.rows], sample.weight)
            assert gain.point == pytest.approx(b - a)
            clear += gain.clear
            covered += gain.low <= truth <= gain.high
            ahead += gain.point > 0
        assert clear_at_least <= clear <= clear_at_most, (truth, clear)
        assert covered / reps >= 0.8, (truth, covered / reps)
        if other is tie:  # the point estimates alone call a tie a win most of the time
            assert ahead >= 30, ahead
    same = quality.paired_difference(sample, good[d.rows], good[d.rows])
    assert (same.point, same.low, same.high, same.clear) == (0.0, 0.0, 0.0, False)
    with pytest.raises(ValueError, match="scores for a sample"):
        quality.paired_difference(sample, good[d.rows][:5], good[d.rows])
