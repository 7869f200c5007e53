"""The corpus estimate's accuracy: bias, RMSE and 90%-interval coverage of AP, precision and recall.

Generated populations with ground truth (20k clips; a concept present in 1% or 2% of them;
the draw is stratified by one score, the evaluated model's score is that score plus noise,
so design and model differ as consecutive versions do). Each repeat draws one audit
(``va_core.quality.stratified_draw``) of 100 clips (also 200), estimates with
``va_core.quality.estimate`` and compares with the truth on the whole
population. A uniform draw of the same size is the baseline design.

    .venv/bin/python -m benchmarks.estimator_coverage           # 200 repeats per case
    .venv/bin/python -m benchmarks.estimator_coverage --quick   # 30 repeats, fewer cases

Writes benchmarks/results/estimator_coverage.json (estimator_coverage_quick.json) and prints a markdown table.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ._results import arguments, markdown, report, save

N = 20_000
METRICS = ("ap", "precision", "recall")


def case(prevalence: float, separation: float, k: int, repeats: int, design: str, seed: int = 0) -> dict:
    from sklearn.metrics import average_precision_score

    from va_core import quality

    rng = np.random.default_rng(seed)
    y = rng.random(N) < prevalence
    drawn_by = rng.normal(size=N) + separation * y
    model = drawn_by + rng.normal(scale=0.5, size=N)
    threshold = float(np.quantile(model, 0.98))
    flagged = model >= threshold
    truth = {"ap": average_precision_score(y, model), "precision": (y & flagged).sum() / flagged.sum(),
             "recall": (y & flagged).sum() / y.sum()}
    errors = {m: [] for m in METRICS}
    covered = {m: 0 for m in METRICS}
    no_estimate = 0
    for r in range(repeats):
        if design == "audit":
            d = quality.stratified_draw(drawn_by, np.arange(N), k, seed=1000 + r)
            rows, strata, sizes, probs = d.rows, d.stratum, d.stratum_size, d.inclusion_prob
        else:
            rows = np.random.default_rng(1000 + r).choice(N, k, replace=False)
            strata, sizes, probs = [0] * k, [N] * k, [k / N] * k
        sample = quality.make_sample(rows.astype(str), y[rows], ["d"] * k, strata, sizes, probs)
        e = quality.estimate(sample, model[rows], threshold, seed=r)
        if e.ap is None:
            no_estimate += 1
            continue
        for m in METRICS:
            point, low, high = getattr(e, m), getattr(e, f"{m}_low"), getattr(e, f"{m}_high")
            if point is None:
                continue
            errors[m].append(point - truth[m])
            covered[m] += low <= truth[m] <= high
    out = {"prevalence": prevalence, "separation": separation, "k": k, "design": design, "repeats": repeats,
           "no_estimate": no_estimate}
    for m in METRICS:
        e = np.asarray(errors[m])
        out[m] = {"truth": float(truth[m]), "bias": float(e.mean()), "rmse": float(np.sqrt(np.mean(e ** 2))),
                  "coverage": covered[m] / len(e), "n": len(e)}
    return out


def table(rows: list[dict]) -> str:
    head = ["prevalence", "true AP", "design", "labels", "AP bias", "AP RMSE", "AP 90% coverage",
            "precision bias / RMSE / coverage", "recall bias / RMSE / coverage", "no estimate"]
    lines = []
    for r in rows:
        ap = r["ap"]
        lines.append([f"{r['prevalence']:.0%}", f"{ap['truth']:.3f}", r["design"], r["k"], f"{ap['bias']:+.3f}",
                      f"{ap['rmse']:.3f}", f"{ap['coverage']:.2f}",
                      " / ".join([f"{r['precision']['bias']:+.3f}", f"{r['precision']['rmse']:.3f}",
                                  f"{r['precision']['coverage']:.2f}"]),
                      " / ".join([f"{r['recall']['bias']:+.3f}", f"{r['recall']['rmse']:.3f}",
                                  f"{r['recall']['coverage']:.2f}"]),
                      f"{r['no_estimate']}/{r['repeats']}"])
    return markdown(head, lines, "rrlrrrrrrr")


def main(argv=None) -> int:
    args = arguments(__doc__, "30 repeats, fewer cases").parse_args(argv)
    repeats = 30 if args.quick else 200
    cases = [(0.02, 2.5, 100, "audit"), (0.02, 2.5, 100, "uniform")]
    if not args.quick:
        # separation 5: AP near 1, where audits often rank every positive above every negative
        cases = [(p, s, 100, "audit") for p in (0.01, 0.02) for s in (1.5, 2.5, 3.5)] + [
            (0.02, 5.0, 100, "audit"), (0.02, 2.5, 200, "audit"), (0.02, 2.5, 100, "uniform"),
            (0.01, 2.5, 100, "uniform")]
    started = time.time()
    rows = [case(p, s, k, repeats, design) for p, s, k, design in cases]
    path = save("estimator_coverage", args.quick, {"clips": N, "rows": rows}, started)
    report(table(rows), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
