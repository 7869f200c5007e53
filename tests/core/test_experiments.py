"""The paper's protocol (split, baseline, bootstraps, bandits) and both experiments end to end."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from va_cli.main import main
from va_core.experiments import bandits, exp1, exp2
from va_core.experiments.dataset import AggItem, AggLabels, Checkpoint, KeyVectors, VADataset
from tests.support.va_dataset import FixtureLabel, make_va_dataset
from va_core.experiments.protocol import CannotTrain, Evaluator, Score, Split, split_agg


# -- the hash split ------------------------------------------------------------
# mmh3.hash(key, seed) for these keys, checked by hand (mmh3's own documentation gives
# hash("foo") == -156908512). Python's % keeps the bucket in 0..9 for negative hashes;
# a C-style remainder would put 'HnnBvemHrWA|0' (-445047165) in validation.
HASHES_SEED0 = {
    "HnnBvemHrWA|0": -445047165,        # bucket 5: train (a "% 5 < 1" rule would say validation)
    "gOJJm_cSRds|3987": -1492645216,    # 4: train
    "mDViU8OSRkA|2222": 2024589256,     # 6: train
    "egB-SG97EcI|805": 900437530,       # 0: validation
    "uGsWYV2bWAc|1013": -457301934,     # 6: train (C-style remainder: -4, validation)
    "09MjH5hbF5Y|1369": -730194611,     # 9: train
    "ddrQKAMzUGI|2015": 1064703243,     # 3: train
    "XhwgtlCns34|867": 1943469750,      # 0: validation
    "LxmnOxCk3dM|4393": 2039034595,     # 5: train
}
VALIDATION_SEED0 = {"egB-SG97EcI|805", "XhwgtlCns34|867"}
VALIDATION_SEED1 = {"gOJJm_cSRds|3987"}  # its seed-1 hash is 1945450801


def _agg(pos: set[str], neg: set[str]) -> AggLabels:
    return AggLabels("x", tuple(AggItem(k, k in pos, None, None) for k in sorted(pos | neg)))


def test_split_membership_matches_mmh3_for_known_keys():
    import mmh3

    assert mmh3.hash("foo", 0) == -156908512
    for key, h in HASHES_SEED0.items():
        assert mmh3.hash(key, 0) == h
    keys = set(HASHES_SEED0)
    agg = _agg(pos={"egB-SG97EcI|805", "gOJJm_cSRds|3987", "HnnBvemHrWA|0"}, neg=keys - {
        "egB-SG97EcI|805", "gOJJm_cSRds|3987", "HnnBvemHrWA|0"})
    split = split_agg(agg, seed=0, rule="as-specified")
    assert set(split.val_keys) == VALIDATION_SEED0
    # validation in the reference order: positives sorted, then negatives sorted
    assert split.val_keys == ("egB-SG97EcI|805", "XhwgtlCns34|867")
    assert split.y_val.tolist() == [True, False]
    assert split.train_pos | split.train_neg == keys - VALIDATION_SEED0
    assert set(split_agg(agg, seed=1, rule="as-specified").val_keys) == VALIDATION_SEED1


def test_default_split_rule_is_the_released_codes_hash_mod_5_below_1():
    # The released code's Fraction(2, 10) normalises to 1/5: buckets 0 and 5 of "% 10" hold out.
    keys = set(HASHES_SEED0)
    agg = _agg(pos={"egB-SG97EcI|805", "gOJJm_cSRds|3987", "HnnBvemHrWA|0"}, neg=keys - {
        "egB-SG97EcI|805", "gOJJm_cSRds|3987", "HnnBvemHrWA|0"})
    split = split_agg(agg, seed=0, rule="reference-code")
    assert set(split.val_keys) == VALIDATION_SEED0 | {"HnnBvemHrWA|0", "LxmnOxCk3dM|4393"}
    assert split_agg(agg, seed=0).val_keys == split.val_keys
    with pytest.raises(ValueError, match="unknown split rule"):
        split_agg(agg, seed=0, rule="% 7")


def test_split_without_a_positive_on_either_side_cannot_train():
    keys = set(HASHES_SEED0)
    with pytest.raises(CannotTrain, match="validation split"):
        split_agg(_agg(pos={"HnnBvemHrWA|0"}, neg=keys - {"HnnBvemHrWA|0"}), seed=0, rule="as-specified")
    with pytest.raises(CannotTrain, match="training split"):
        split_agg(_agg(pos=VALIDATION_SEED0, neg=keys - VALIDATION_SEED0), seed=0, rule="as-specified")


# -- baseline and bootstraps -----------------------------------------------------------
def _split(n_pos: int, n_neg: int) -> Split:
    pos = {f"p{i:04d}|0" for i in range(n_pos)}
    neg = {f"n{i:04d}|0" for i in range(n_neg)}
    keys = sorted(pos) + sorted(neg)
    return Split(frozenset(), frozenset(), tuple(keys), np.array([k in pos for k in keys]))


def test_baseline_is_the_positive_rate_from_1000_validation_clips():
    score = exp1.baseline_score(_split(37, 963))
    assert score.ap_mean == pytest.approx(37 / 1000) and score.ap_std == 0.0


def test_baseline_below_1000_clips_is_the_reference_random_draws():
    from sklearn.metrics import average_precision_score

    from va_core.learn import baseline_ap

    score = exp1.baseline_score(_split(3, 7))
    draws_ap = baseline_ap(3, 10).values
    assert len(draws_ap) == 1000
    assert (score.ap_mean, score.ap_std) == (pytest.approx(np.mean(draws_ap)), pytest.approx(np.std(draws_ap)))
    np.random.seed(0)  # the reference's own steps, checked on the first 100 of the 1000 draws
    y = [True] * 3 + [False] * 7
    draws = np.random.rand(1000, 10)
    expected = [average_precision_score(y, draws[i]) for i in range(100)]
    np.testing.assert_allclose(draws_ap[:100], expected, rtol=0, atol=1e-12)


def test_bootstrap_resamples_are_numpy_seeds_1_to_4_on_the_reference_order():
    from sklearn.metrics import average_precision_score

    split = _split(6, 14)
    rng = np.random.default_rng(3)
    vectors = KeyVectors(list(split.val_keys), rng.standard_normal((20, 4)).astype(np.float32))
    ev = Evaluator(vectors, split)
    scores = rng.random(20)
    got = ev.scores_ap(scores)
    y = split.y_val
    values = [average_precision_score(y, scores)]
    for seed in (1, 2, 3, 4):
        np.random.seed(seed)
        idx = np.random.choice(range(20), 20)
        values.append(average_precision_score(y[idx], scores[idx]) if y[idx].any() else np.nan)
    finite = [v for v in values if not np.isnan(v)]
    assert got.ap_mean == pytest.approx(np.mean(finite), abs=1e-12)
    assert got.ap_std == pytest.approx(np.std(finite), abs=1e-12)


def test_training_sets_are_fitted_in_reference_order_and_memoised():
    rng = np.random.default_rng(0)
    train = [f"t{i:03d}|0" for i in range(40)]
    split = _split(5, 15)
    keys = train + list(split.val_keys)
    concept = np.array([i % 3 == 0 for i in range(len(keys))])
    matrix = (rng.standard_normal((len(keys), 8)) + 2.0 * concept[:, None] * np.eye(8)[0]).astype(np.float32)
    ev = Evaluator(KeyVectors(keys, matrix), split)
    pos = {k for k, c in zip(train, concept) if c}
    neg = set(train) - pos
    first = ev.fit(pos, neg)
    again = ev.fit(list(reversed(sorted(pos))), list(neg))  # any input order: the same model
    assert (again.ap_mean, again.ap_std) == (first.ap_mean, first.ap_std)
    assert first.fit_seconds > 0 and again.fit_seconds == 0.0  # the second came from the memo
    assert first.n_train == 40 and first.n_train_pos == len(pos)
    with pytest.raises(CannotTrain, match="no positive"):
        ev.fit(set(), neg)
    with pytest.raises(CannotTrain, match="both positive and negative"):
        ev.fit(pos, neg | {next(iter(pos))})


def test_cc_takes_round_n_half_random_then_the_rest_zero_shot():
    lists = {"zero_shot": [(f"z{i}", i % 2 == 0) for i in range(10)],
             "random": [(f"r{i}", i == 0) for i in range(10)]}
    pos, neg = exp1.cmp_training_set(lists, "cc", 5)  # round(2.5) == 2 in Python
    assert pos | neg == {"r0", "r1", "z0", "z1", "z2"} and pos == {"r0", "z0", "z2"}
    pos, neg = exp1.cmp_training_set(lists, "cc", 7)  # round(3.5) == 4
    assert pos | neg == {"r0", "r1", "r2", "r3", "z0", "z1", "z2"}
    pos, neg = exp1.cmp_training_set(lists, "zsc", 50)  # a short list gives what it has
    assert len(pos | neg) == 10


# -- bandits, with a stand-in for training ------------------------------------------------
def _fake_evaluate(pos, neg) -> Score:
    """AP grows with positives drawn: deterministic and instant."""
    n = len(pos) + len(neg)
    if not pos or not neg:
        raise CannotTrain("one class only")
    return Score(len(pos) / n, 0.0, n, len(pos))


def test_pool_head_keeps_the_positive_rate_with_at_least_one_positive():
    pool = bandits.Pool(tuple(f"p{i}" for i in range(3)), tuple(f"n{i}" for i in range(97)))
    new = pool.head(25)  # round(0.03 * 25) == 1
    assert new.pos == ("p0",) and len(new.neg) == 24
    assert bandits.Pool((), ("a", "b")).head(5) == bandits.Pool((), ("a", "b"))


def test_sources_remove_drawn_clips_everywhere_and_exhaust_short_arms():
    a = bandits.Pool(("x", "y"), ("n1", "n2", "n3"))
    b = bandits.Pool(("y",), ("n3", "m1"))
    sources = bandits.Sources({"agg": a, "zero_shot": b, "random": bandits.Pool((), ())})
    assert not sources.has_data("random")  # an empty arm is exhausted from the start
    pos, neg = sources.extend("agg", 4)
    assert pos == {"x", "y"} and neg == {"n1", "n2"}
    assert sources.pools["agg"] == bandits.Pool((), ("n3",))
    assert sources.pools["zero_shot"] == bandits.Pool((), ("n3", "m1"))
    pos, neg = sources.extend("zero_shot", 4)  # only 2 left: drawn, then exhausted
    assert neg == {"n1", "n2", "n3", "m1"} and not sources.has_data("zero_shot")
    assert not sources.has_data("agg")  # its last clip was drawn from the other arm


def test_agg_arm_replays_checkpoints_in_a_seed_0_shuffle_with_aggregated_values():
    snaps = [Checkpoint(frozenset({"a", "b"}), frozenset({"c"})),
             Checkpoint(frozenset({"a", "b", "d"}), frozenset({"c", "e", "f"}))]
    agg = _agg(pos={"a", "b", "d", "f"}, neg={"c", "e"})  # f was negative in the session
    pool = bandits.agg_pool(agg, frozenset({"e"}), snaps)
    rs = np.random.RandomState(0)
    first = list(rs.permutation(["a", "b"])) + list(rs.permutation(["c"]))
    assert pool.pos[:2] == tuple(k for k in first if k in {"a", "b"})
    assert set(pool.pos) == {"a", "b", "d", "f"} and pool.neg == ("c",)


def test_round_robin_cycles_and_stops_when_every_arm_is_exhausted():
    pools = {"agg": bandits.Pool(("a1",), ("a2", "a3")), "zero_shot": bandits.Pool(("z1", "z2"), ("z3",)),
             "random": bandits.Pool(("r1",), ("r2", "r3", "r4", "r5"))}
    steps = bandits.RoundRobin(bandits.Sources(pools), _fake_evaluate, d=2, seed=1).run(10)
    assert [s.choice for s in steps[:3]] == ["agg", "zero_shot", "random"]
    assert steps[-1].score is None and "exhausted" in steps[-1].reason
    assert all(s.score is not None for s in steps[:-1])


def test_epsilon_greedy_and_ucb_follow_the_reference_rules():
    def pools():
        return {"agg": bandits.Pool(tuple(f"a{i}" for i in range(30)), tuple(f"an{i}" for i in range(70))),
                "zero_shot": bandits.Pool(tuple(f"z{i}" for i in range(60)), tuple(f"zn{i}" for i in range(40))),
                "random": bandits.Pool(tuple(f"r{i}" for i in range(5)), tuple(f"rn{i}" for i in range(95)))}

    eps = bandits.EpsilonGreedyMean(bandits.Sources(pools()), _fake_evaluate, d=10, seed=1, epsilon=0.25)
    steps = eps.run(8)
    assert [s.choice for s in steps[:3]] == ["agg", "zero_shot", "random"]
    # warm-up: each arm alone from the empty set; random gives 1 positive of 10 (round(0.5)
    # is 0, but an arm always gives at least one positive); the worst arm is the first "previous"
    assert eps.history[0] == "random"
    assert eps.rewards["zero_shot"][0] == pytest.approx(0.6 - 0.1)
    pulls = {c: 1 for c in bandits.CHOICES}  # rewards known before each step: warm-up + pulls
    for s in steps:
        if s.step >= 3:
            rs = np.random.RandomState(1 + s.step)  # the reference seeds numpy with seed + step
            if rs.rand() < 0.25:
                expected = str(rs.choice(bandits.CHOICES))
            else:
                expected = max((np.mean(eps.rewards[c][:pulls[c]]), c) for c in bandits.CHOICES)[1]
            assert s.choice == expected
        pulls[s.choice] += 1

    ucb = bandits.UCBMean(bandits.Sources(pools()), _fake_evaluate, d=10, seed=1, c=0.1)
    steps = ucb.run(4)
    assert [s.choice for s in steps[:3]] == ["agg", "zero_shot", "random"]
    # step 3 (t = 4), each arm pulled once: mean reward + c * sqrt(log t / pulls)
    bounds = [(np.mean(ucb.rewards[c][:2]) + 0.1 * np.sqrt(np.log(4) / 1), c) for c in bandits.CHOICES]
    assert steps[3].choice == max(bounds, key=lambda b: b[0])[1]


# -- the experiments end to end through the CLI -------------------------------------------
@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """Three small labels; in 'alcohol' the random list has no positive, so rcc cannot train."""
    root = tmp_path_factory.mktemp("va-dataset")
    make_va_dataset(root, n_clips=400, dim=16, cmp_size=40, seed=1,
                    labels=(FixtureLabel("action", 0.3, agg_size=60), FixtureLabel("closeup", 0.3, agg_size=60),
                            FixtureLabel("alcohol", 0.15, agg_size=60)))
    path = root / "cmp" / "alcohol.json"
    doc = json.loads(path.read_text())
    doc["random"] = [{"key": r["key"], "value": False} for r in doc["random"]]
    path.write_text(json.dumps(doc))
    return root


def _va(capsys, *argv) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_exp1_end_to_end_resumes_and_records_methods_that_cannot_train(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "exp1.parquet"
    code, first = _va(capsys, "experiment", "exp1", "--data", str(tiny_dataset), "--out", str(out),
                      "--labels", "action", "--workers", "1")
    assert code == 0 and first["ran"] == ["action"] and first["resumed"] == []
    before = pl.read_parquet(out)
    n_checkpoints = len(VADataset(tiny_dataset).checkpoints("action"))
    assert before.height == 2 + 3 * len(exp1.NS) + n_checkpoints
    assert list(before.columns[:7]) == ["label", "method", "n", "checkpoint_index", "ap_mean", "ap_std", "status"]

    # the second run skips 'action' (already in the file) and runs the others in the pool
    code, second = _va(capsys, "experiment", "exp1", "--data", str(tiny_dataset), "--out", str(out), "--workers", "2")
    assert code == 0 and sorted(second["ran"]) == ["alcohol", "closeup"] and second["resumed"] == ["action"]
    table = pl.read_parquet(out)
    assert table.filter(pl.col("label") == "action").equals(before)

    alcohol = table.filter(pl.col("label") == "alcohol")
    rcc = alcohol.filter(pl.col("method") == "rcc")
    assert rcc.height == len(exp1.NS) and (rcc["status"] == "skipped").all()
    assert all("no positive clip" in r for r in rcc["reason"])
    ok = alcohol.filter(pl.col("method").is_in(["baseline", "zero_shot", "zsc"]))
    assert (ok["status"] == "ok").all() and ok["ap_mean"].is_between(0, 1).all()
    # the summaries: shares and median gains over both labels, a summary file and a plot
    shares = {(r["n"], r["method"]): r for r in second["summary"]["share_va_ge"]}
    assert shares[(1000, "baseline")]["labels"] == 3 and shares[(1000, "rcc")]["labels"] == 2
    groups = {r["group"] for r in second["summary"]["median_gain"]}
    assert {"all", "genres", "sensitivities", "shot_types"} <= groups
    assert out.with_suffix(".png").stat().st_size > 0
    summary = out.with_suffix(".summary.md").read_text()
    assert "Median gain" in summary and "split rule: reference-code" in summary


def test_exp2_end_to_end_with_va_reference_rows(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "exp2.csv"
    code, data = _va(capsys, "experiment", "exp2", "--data", str(tiny_dataset), "--out", str(out),
                     "--labels", "action", "--steps", "3", "--step-size", "10", "--workers", "1",
                     "--split-rule", "as-specified")
    assert code == 0 and data["ran"] == ["action"]
    assert "split rule: as-specified" in out.with_suffix(".summary.md").read_text()
    table = pl.read_csv(out)
    runs = table.filter(pl.col("algorithm") != exp2.VA)
    configs = runs.select("algorithm", "params").unique().height
    assert configs == len(bandits.ALGORITHMS)
    rr = runs.filter(pl.col("algorithm") == "RoundRobin").sort("step")
    assert rr["choice"].to_list() == ["agg", "zero_shot", "random"] and rr["n_train"].to_list() == [10, 20, 30]
    assert table.filter(pl.col("algorithm") == exp2.VA).height == len(VADataset(tiny_dataset).checkpoints("action"))
    table3 = {r["algorithm"]: r for r in data["summary"]["table3"]}
    assert set(table3) == {"RoundRobin", "GreedyOracle", "EpsilonGreedyMean", "UCBMean"}
    assert all(r["labels"] == 1 and r["p10"] == r["p90"] for r in table3.values())


def test_bad_requests_fail_with_clear_messages(tiny_dataset, tmp_path, capsys):
    code, data = _va(capsys, "experiment", "exp1", "--data", str(tiny_dataset), "--out", str(tmp_path / "x.txt"))
    assert code == 2 and ".csv or .parquet" in data["error"]
    code, data = _va(capsys, "experiment", "exp1", "--data", str(tiny_dataset), "--out", str(tmp_path / "x.csv"),
                     "--labels", "nope")
    assert code == 2 and "nope" in data["error"] and "action" in data["error"]
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    code, data = _va(capsys, "experiment", "exp1", "--data", str(tiny_dataset), "--out", str(other))
    assert code == 2 and "not this experiment's table" in data["error"]
    assert other.read_text() == "a,b\n1,2\n"  # nothing already there is lost
    code, data = _va(capsys, "experiment", "exp2", "--data", str(tmp_path), "--out", str(tmp_path / "y.csv"))
    assert code == 2 and "missing" in data["error"]
