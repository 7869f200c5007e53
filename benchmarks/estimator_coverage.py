"""The corpus estimate's accuracy: bias, RMSE and 90%-interval coverage of AP, precision and recall.

Generated populations with ground truth (20k clips; a concept present in 1% or 2% of them;
the draw is stratified by one score, the evaluated model's score is that score plus noise,
so design and model differ as consecutive versions do). Each repeat draws one audit
(``va_core.quality.stratified_draw``) of 100 clips (also 200), estimates with
``va_core.quality.estimate`` and compares with the truth on the whole
population. A uniform draw of the same size is the baseline design; ``rounds``: the live
loop's audits, rounds of 25 draws each stratified by another model version's scores
(the design score plus noise), combined by each clip's probability of being in any round.
Every case runs with each bound on the smoothed bootstrap's resampled scores
(``quality.SCORE_RANGES``; ``--score-range`` picks some), same draws, to compare.

    .venv/bin/python -m benchmarks.estimator_coverage           # 200 repeats per case
    .venv/bin/python -m benchmarks.estimator_coverage --quick   # 30 repeats, fewer cases
    .venv/bin/python -m benchmarks.estimator_coverage --loop-audits   # the live loop's audits, 40k clips

Writes benchmarks/results/estimator_coverage.json (estimator_coverage_quick.json;
estimator_coverage_loop_audits.json) and prints a markdown table.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ._results import arguments, markdown, report, save

N = 20_000
ROUND = 25  # the live loop's audit rounds
RANGE_NAMES = {"cell_extended": "within the stratum's estimated range", "cell": "within the cell's observed range",
               "none": "unbounded"}
METRICS = ("ap", "precision", "recall")
LOOP_CLIPS = 40_000  # the live loop's default corpus
LOOP_AUDITS = [(0.01, 2.5, 50, "rounds"), (0.01, 3.5, 50, "rounds"), (0.01, 2.5, 100, "rounds"),
               (0.01, 3.5, 100, "rounds"), (0.02, 2.5, 100, "rounds"), (0.01, 2.5, 100, "audit"),
               (0.02, 3.5, 100, "audit")]


def case(prevalence: float, separation: float, k: int, repeats: int, design: str, seed: int = 0,
         score_range: str | None = None, n: int = N) -> dict:
    from sklearn.metrics import average_precision_score

    from va_core import quality

    rng = np.random.default_rng(seed)
    y = rng.random(n) < prevalence
    drawn_by = rng.normal(size=n) + separation * y
    model = drawn_by + rng.normal(scale=0.5, size=n)
    threshold = float(np.quantile(model, 0.98))
    flagged = model >= threshold
    truth = {"ap": average_precision_score(y, model), "precision": (y & flagged).sum() / flagged.sum(),
             "recall": (y & flagged).sum() / y.sum()}
    errors = {m: [] for m in METRICS}
    widths = {m: [] for m in METRICS}
    covered = {m: 0 for m in METRICS}
    no_estimate = 0
    for r in range(repeats):
        if design == "rounds":
            sample = audit_rounds(quality, y, drawn_by, k, np.random.default_rng([seed, r]))
        else:
            if design == "audit":
                d = quality.stratified_draw(drawn_by, np.arange(n), k, seed=1000 + r)
                rows, strata, sizes, probs = d.rows, d.stratum, d.stratum_size, d.inclusion_prob
            else:
                rows = np.random.default_rng(1000 + r).choice(n, k, replace=False)
                strata, sizes, probs = [0] * k, [n] * k, [k / n] * k
            sample = quality.make_sample(rows.astype(str), y[rows], ["d"] * k, strata, sizes, probs)
        rows = sample.keys.astype(np.int64)
        e = quality.estimate(sample, model[rows], threshold, seed=r,
                             score_range=score_range or quality.SCORE_RANGE)
        if e.ap is None:
            no_estimate += 1
            continue
        for m in METRICS:
            point, low, high = getattr(e, m), getattr(e, f"{m}_low"), getattr(e, f"{m}_high")
            if point is None:
                continue
            errors[m].append(point - truth[m])
            widths[m].append(high - low)
            covered[m] += low <= truth[m] <= high
    out = {"prevalence": prevalence, "separation": separation, "k": k, "design": design, "repeats": repeats, "clips": n,
           "score_range": score_range or quality.SCORE_RANGE, "no_estimate": no_estimate}
    for m in METRICS:
        e = np.asarray(errors[m])
        out[m] = {"truth": float(truth[m]), "bias": float(e.mean()), "rmse": float(np.sqrt(np.mean(e ** 2))),
                  "coverage": covered[m] / len(e), "median_width": float(np.median(widths[m])), "n": len(e)}
    return out


def audit_rounds(quality, y, drawn_by, k: int, rng) -> "quality.ProbabilitySample":
    """``k`` labels as the live loop gathers them: audit draws of ``ROUND`` clips, each stratified
    by a new model version's scores (the design score plus noise), combined through each labelled
    clip's probability of being in any draw (as ``quality.cross_inclusion`` computes it)."""
    n = len(y)
    versions = [drawn_by + rng.normal(scale=0.5, size=n) for _ in range(-(-k // ROUND))]
    draws = [quality.stratified_draw(v, np.arange(n), min(ROUND, k - ROUND * i), seed=int(rng.integers(1 << 31)))
             for i, v in enumerate(versions)]
    last = {}  # clip -> (draw, position): a clip drawn twice keeps its latest draw's design
    for i, d in enumerate(draws):
        for j, row in enumerate(d.rows):
            last[int(row)] = (i, j)
    rows = np.array(sorted(last), dtype=np.int64)
    cross = np.zeros((len(rows), len(draws)))
    for i, (v, d) in enumerate(zip(versions, draws)):
        for h in np.unique(d.stratum):
            at = np.flatnonzero(d.stratum == h)[0]
            inside = (v[rows] >= d.stratum_low[at]) & (v[rows] <= d.stratum_high[at])
            cross[inside, i] = d.inclusion_prob[at]
    pick = [last[int(row)] for row in rows]
    return quality.make_sample(rows.astype(str), y[rows], [f"{i:03d}" for i, _ in pick],
                               [draws[i].stratum[j] for i, j in pick], [draws[i].stratum_size[j] for i, j in pick],
                               [draws[i].inclusion_prob[j] for i, j in pick], cross)


def table(rows: list[dict]) -> str:
    head = ["prevalence", "true AP", "design", "labels", "resampled scores", "AP bias", "AP RMSE", "AP 90% coverage",
            "AP median width", "precision bias / RMSE / coverage / width", "recall bias / RMSE / coverage / width",
            "no estimate"]
    lines = []
    for r in rows:
        ap = r["ap"]
        lines.append([f"{r['prevalence']:.0%}", f"{ap['truth']:.3f}", r["design"], r["k"],
                      RANGE_NAMES[r["score_range"]], f"{ap['bias']:+.3f}",
                      f"{ap['rmse']:.3f}", f"{ap['coverage']:.2f}", f"{ap['median_width']:.3f}",
                      *(" / ".join([f"{r[m]['bias']:+.3f}", f"{r[m]['rmse']:.3f}", f"{r[m]['coverage']:.2f}",
                                    f"{r[m]['median_width']:.3f}"]) for m in ("precision", "recall")),
                      f"{r['no_estimate']}/{r['repeats']}"])
    return markdown(head, lines, "rrlrlrrrrrrr")


def main(argv=None) -> int:
    from va_core import quality

    parser = arguments(__doc__, "30 repeats, fewer cases")
    parser.add_argument("--score-range", choices=quality.SCORE_RANGES, action="append",
                        help="the smoothed bootstrap's bound on resampled scores (repeatable; default: all, to compare)")
    parser.add_argument("--loop-audits", action="store_true",
                        help="the live loop's audits at its default size instead: 40k clips, 50 or 100 labels in "
                             "rounds of 25 (cells of 2-8 labels), the product's bound only unless --score-range")
    args = parser.parse_args(argv)
    ranges = args.score_range or list(quality.SCORE_RANGES)
    repeats = 30 if args.quick else 200
    n, name = N, "estimator_coverage"
    cases = [(0.02, 2.5, 100, "audit"), (0.02, 2.5, 100, "uniform")]
    if args.loop_audits:
        n, name, ranges = LOOP_CLIPS, "estimator_coverage_loop_audits", args.score_range or [quality.SCORE_RANGE]
        cases = LOOP_AUDITS
    elif not args.quick:
        # separation 5: AP near 1, where audits often rank every positive above every negative
        # (the live loop's models at 300 labels); rounds: the live loop's audits
        cases = [(p, s, 100, "audit") for p in (0.01, 0.02) for s in (1.5, 2.5, 3.5)] + [
            (0.02, 5.0, 100, "audit"), (0.02, 2.5, 200, "audit"), (0.01, 5.0, 200, "rounds"),
            (0.01, 3.5, 200, "rounds"), (0.01, 2.5, 300, "rounds"), (0.02, 3.5, 300, "rounds"),
            (0.02, 2.5, 100, "uniform"), (0.01, 2.5, 100, "uniform")]
    started = time.time()
    rows = [case(p, s, k, repeats, design, score_range=r, n=n) for p, s, k, design in cases for r in ranges]
    path = save(name, args.quick, {"clips": n, "rows": rows}, started)
    report(table(rows), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
