"""Operating points read off a version's held-out curve, checked against a brute-force count."""
from __future__ import annotations

import numpy as np
import pytest

from va_core.errors import InputError
from va_core.operating import Curve, Request, Unreachable, choose


def _brute(y, s, t):
    yes = s >= t
    tp = int((yes & y).sum())
    return tp / max(int(yes.sum()), 1), tp / int(y.sum())


@pytest.fixture
def held_out():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.3
    s = np.clip(rng.normal(np.where(y, 0.65, 0.35), 0.15), 0, 1)
    return y, s


def test_target_precision_is_the_lowest_threshold_that_reaches_it(held_out):
    y, s = held_out
    curve = Curve.from_scores(y, s, "hash_split")
    point = choose(Request(target_precision=0.9), 0.5, curve, "cat v1")
    precision, recall = _brute(y, s, point.threshold)
    assert precision >= 0.9 and point.precision == pytest.approx(precision) and point.recall == pytest.approx(recall)
    # every lower threshold misses the target, or gives no more recall
    for t in np.unique(s[s < point.threshold]):
        p, r = _brute(y, s, t)
        assert p < 0.9 or r <= recall
    assert point.kind == "precision" and point.target == 0.9 and point.n_eval == 300 and point.n_eval_pos == y.sum()


def test_target_recall_is_the_highest_threshold_that_reaches_it(held_out):
    y, s = held_out
    curve = Curve.from_scores(y, s, "hash_split")
    point = choose(Request(target_recall=0.8), 0.5, curve, "cat v1")
    _, recall = _brute(y, s, point.threshold)
    assert recall >= 0.8
    higher = np.unique(s[s > point.threshold])
    assert not len(higher) or _brute(y, s, higher[0])[1] < 0.8


def test_default_and_explicit_thresholds_and_the_curve_round_trips(held_out):
    y, s = held_out
    curve = Curve.from_scores(y, s, "stratified_cv")
    assert Curve.from_dict(curve.as_dict()) == curve
    assert choose(Request(), 0.42, curve, "cat v1").threshold == 0.42
    point = choose(Request(threshold=0.3), 0.42, curve, "cat v1")
    assert point.kind == "threshold" and point.precision == pytest.approx(_brute(y, s, 0.3)[0])


def test_refusals_say_why(held_out):
    y, s = held_out
    with pytest.raises(Unreachable, match="no threshold reaches precision 1 .*best is"):
        choose(Request(target_precision=1.0), 0.5, Curve.from_scores(y, np.full(len(y), 0.5), "hash_split"), "cat v1")
    with pytest.raises(Unreachable, match="cat v1 has no stored evaluation curve"):
        choose(Request(target_precision=0.9), 0.5, None, "cat v1")
    with pytest.raises(InputError, match="one operating point"):
        Request(threshold=0.2, target_recall=0.5)
    for bad in (1.5, 0.0, float("nan"), True):
        with pytest.raises(InputError, match="target_precision"):
            Request(target_precision=bad)
