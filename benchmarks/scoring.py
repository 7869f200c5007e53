"""Scoring a corpus of 1M clips with a label's classifier, against reading the matrix once.

Scoring is ``sigmoid(X w + b)`` over an (N, 512) float32 matrix: one pass over 2 GB, so its
floor is the memory bandwidth. The reference, same run and same matrix, is the time to read
the matrix once (a column sum, which touches every value and does almost no arithmetic).
Both are timed with numpy's default BLAS threads and with one thread.

    .venv/bin/python -m benchmarks.scoring           # 1M clips, 7 repeats
    .venv/bin/python -m benchmarks.scoring --quick   # 100k clips, 3 repeats

Writes benchmarks/results/scoring.json (scoring_quick.json) and prints a markdown table.
"""
from __future__ import annotations

import sys

import numpy as np

from ._results import arguments, markdown, p50, report, save, timed

DIM = 512


def _matrix(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    out = np.empty((n, DIM), dtype=np.float32)
    for s in range(0, n, 100_000):
        block = rng.standard_normal((min(n, s + 100_000) - s, DIM), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[s:s + len(block)] = block
    return out


def run(n: int, repeats: int) -> dict:
    from threadpoolctl import threadpool_limits

    from va_core.learn import LinearModel

    print(f"making a {n} x {DIM} float32 matrix ({n * DIM * 4 / 1e9:.2f} GB)", file=sys.stderr)
    X = _matrix(n)
    rng = np.random.default_rng(1)
    model = LinearModel(rng.standard_normal(DIM), -2.0, "fast", {})
    rows = []
    for threads in ("default", 1):
        limit = threadpool_limits(limits=1, user_api="blas") if threads == 1 else threadpool_limits(limits=None)
        with limit:
            # one warm-up call each: page faults, BLAS thread start
            read, _ = timed(lambda: X.sum(axis=0), repeats, warmup=1)
            score, _ = timed(lambda: model.score(X), repeats, warmup=1)
        p50_read, p50_score = p50(read), p50(score)
        rows.append({"blas_threads": threads, "clips": n, "read_p50_s": p50_read, "score_p50_s": p50_score,
                     "ratio": p50_score / p50_read, "read_GBps": X.nbytes / p50_read / 1e9,
                     "score_clips_per_s": n / p50_score, "read_s": read, "score_s": score})
        print(f"threads={threads}: read {p50_read:.3f} s, score {p50_score:.3f} s", file=sys.stderr)
    return {"rows": rows}


def table(result: dict) -> str:
    head = ["clips", "BLAS threads", "read matrix once p50 s", "score p50 s", "score / read", "read GB/s",
            "clips/s scored"]
    return markdown(head, [[f"{r['clips']:,}", r["blas_threads"], f"{r['read_p50_s']:.3f}", f"{r['score_p50_s']:.3f}",
                            f"{r['ratio']:.2f}x", f"{r['read_GBps']:.1f}", f"{r['score_clips_per_s'] / 1e6:.1f}M"]
                           for r in result["rows"]], align="rlrrrrr")


def main(argv=None) -> int:
    parser = arguments(__doc__, "100k clips, 3 repeats")
    parser.add_argument("--clips", type=int, default=None)
    args = parser.parse_args(argv)
    n = args.clips or (100_000 if args.quick else 1_000_000)
    repeats = 3 if args.quick else 7
    result = run(n, repeats)
    report(table(result), save("scoring", args.quick, {"dim": DIM, "repeats": repeats, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
