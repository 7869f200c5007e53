"""Search at scale: p50 latency of a top-100 search over 100k and 1M clips, against faiss.

Synthetic L2-normalised 512-d clip embeddings (``tests.support.synthetic``) are written to a
fresh Delta warehouse, then loaded the way search loads them (``embeddings.load_corpus``:
time and memory reported). Timed per query, same matrix, same run:

- ours: ``search.top_k`` (one float32 matrix-vector product and a partial sort), the
  function ``va search`` uses;
- reference: faiss-cpu ``IndexFlatIP`` (exact inner-product search) over the same matrix,
  timed query by query alternately with ours (a shared machine then slows both alike);
- end to end: ``search.search_vector``, which adds the clips/videos lookup of the 100 hits
  in Delta (what a user waits for, minus the text encoder).

    .venv/bin/python -m benchmarks.search_scale           # 100k and 1M clips, 100 queries
    .venv/bin/python -m benchmarks.search_scale --quick   # 20k and 50k clips, 10 queries

Writes benchmarks/results/search_scale[_quick].json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._results import arguments, markdown, report, save

DIM, K = 512, 100


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _p50(fn, queries: np.ndarray) -> tuple[float, list]:
    fn(queries[0])  # warm-up
    times, outs = [], []
    for q in queries:
        t0 = time.perf_counter()
        outs.append(fn(q))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, outs


def _paired_p50(a, b, queries: np.ndarray) -> tuple[float, float, list, list]:
    """p50 of two functions timed query by query, alternating which goes first, so that a
    machine shared with other work slows both alike."""
    a(queries[0]), b(queries[0])
    ta, tb, oa, ob = [], [], [], []
    for i, q in enumerate(queries):
        for fn, times, outs in ((a, ta, oa), (b, tb, ob))[:: 1 if i % 2 == 0 else -1]:
            t0 = time.perf_counter()
            outs.append(fn(q))
            times.append(time.perf_counter() - t0)
    return statistics.median(ta) * 1e3, statistics.median(tb) * 1e3, oa, ob


def load_only(uri: str, encoder_id: str) -> dict:
    """Time and memory of loading one encoder's matrix, in this (fresh) process."""
    import resource

    from va_core import embeddings
    from va_core.warehouse import Warehouse

    wh = Warehouse(uri)
    wh.version("clip_embeddings")  # imports and first table open are not the load
    rss0 = _rss()
    t0 = time.perf_counter()
    corpus = embeddings.load_corpus(wh, encoder_id)
    load_s = time.perf_counter() - t0
    return {"load_s": round(load_s, 2), "rows": len(corpus), "rss_growth_mb": round((_rss() - rss0) / 1e6, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1)}


def measure(n: int, n_queries: int, work: Path) -> dict:
    import faiss

    from va_core import embeddings
    from va_core.search import search_vector, top_k
    from tests.support.synthetic import make_corpus, write_corpus
    from va_core.warehouse import Warehouse

    wh = Warehouse(str(work / f"wh-{n}"))
    print(f"{n} clips: generating and writing to Delta", file=sys.stderr)
    corpus = make_corpus(n, dim=DIM, seed=0)
    t0 = time.perf_counter()
    write_corpus(wh, corpus)
    write_s = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    queries = corpus.matrix[rng.integers(0, n, n_queries)] + 0.5 / np.sqrt(DIM) * rng.standard_normal(
        (n_queries, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    encoder_id = corpus.encoder_id
    del corpus
    gc.collect()

    print(f"{n} clips: loading from Delta in a fresh process", file=sys.stderr)
    fresh = json.loads(subprocess.run([sys.executable, "-m", "benchmarks.search_scale", "--load-only", wh.uri,
                                       encoder_id], capture_output=True, text=True, check=True).stdout)
    loaded = embeddings.load_corpus(wh, encoder_id)
    matrix = loaded.matrix

    print(f"{n} clips: {n_queries} queries", file=sys.stderr)
    t0 = time.perf_counter()
    index = faiss.IndexFlatIP(DIM)
    index.add(matrix)
    faiss_add_s = time.perf_counter() - t0
    ours_ms, faiss_ms, ours, theirs = _paired_p50(lambda q: top_k(matrix, q, K)[0],
                                                  lambda q: index.search(q[None, :], K)[1][0], queries)
    recall = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / K for a, b in zip(ours, theirs)]))
    e2e_ms, _ = _p50(lambda q: search_vector(wh, encoder_id, q, K), queries[: max(3, n_queries // 5)])
    del index
    embeddings._cache.clear()
    gc.collect()
    return {
        "clips": n, "dim": DIM, "k": K, "queries": n_queries,
        "ours_p50_ms": round(ours_ms, 2), "faiss_p50_ms": round(faiss_ms, 2),
        "ours_over_faiss": round(ours_ms / faiss_ms, 3), "recall_vs_faiss": round(recall, 4),
        "end_to_end_p50_ms": round(e2e_ms, 2),
        "load_s": fresh["load_s"], "matrix_mb": round(matrix.nbytes / 1e6, 1),
        "load_rss_mb": fresh["rss_growth_mb"], "load_peak_rss_mb": fresh["peak_rss_mb"],
        "write_s": round(write_s, 1),
        "faiss_add_s": round(faiss_add_s, 2),
    }


def table(rows: list[dict]) -> str:
    head = ["clips", "ours p50 ms", "faiss IndexFlatIP p50 ms", "ours / faiss", "recall@100 vs faiss",
            "end-to-end p50 ms", "load from Delta s", "matrix MB", "RSS growth on load MB", "peak RSS MB"]
    return markdown(head, [[r["clips"], f"{r['ours_p50_ms']:.1f}", f"{r['faiss_p50_ms']:.1f}",
                            f"{r['ours_over_faiss']:.2f}", f"{r['recall_vs_faiss']:.3f}",
                            f"{r['end_to_end_p50_ms']:.1f}", f"{r['load_s']:.2f}", f"{r['matrix_mb']:.0f}",
                            f"{r['load_rss_mb']:.0f}", f"{r['load_peak_rss_mb']:.0f}"] for r in rows])


def main(argv=None) -> int:
    parser = arguments(__doc__, "20k and 50k clips, 10 queries")
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--load-only", nargs=2, metavar=("URI", "ENCODER_ID"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_only:
        print(json.dumps(load_only(*args.load_only)))
        return 0
    sizes = args.sizes or ([20_000, 50_000] if args.quick else [100_000, 1_000_000])
    n_queries = args.queries or (10 if args.quick else 100)
    rows = []
    with tempfile.TemporaryDirectory(prefix="va-bench-search-") as tmp:
        for n in sizes:
            rows.append(measure(n, n_queries, Path(tmp)))
            print(table(rows[-1:]), file=sys.stderr)
    report(table(rows), save("search_scale", args.quick, {"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
