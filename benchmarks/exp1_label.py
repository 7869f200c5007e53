"""Experiment 1, one label: wall time and where it goes.

A generated dataset in the released format the size of one real label: a 500k x 512
corpus (embeddings.h5 + shot-data.csv), about 1000 aggregated labels, 13 growing
checkpoints and 1000-clip cmp lists (--quick: 20k clips, 300 aggregated labels, 300-clip
lists). One label is run the way a worker of `va experiment exp1` runs it, in a fresh
process state (new dataset reader), timed by phase:

- open: the shot table's key index (once per worker process, shared by its labels);
- read: the label's embedding rows from embeddings.h5;
- fit: the classifier fits (the paper's LogisticRegressionCV), summed over methods;
- the rest: split, baseline, zero-shot, bootstraps, bookkeeping.

Reference, same run: loading the embeddings the way the paper's code does (the whole
matrix into a key -> vector dict), against our read of only the label's rows.

    .venv/bin/python -m benchmarks.exp1_label            # 500k clips
    .venv/bin/python -m benchmarks.exp1_label --quick    # 20k clips

Writes benchmarks/results/exp1_label.json (exp1_label_quick.json) and prints a markdown table.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ._results import arguments, markdown, report, save


def run(n_clips: int, agg_size: int, cmp_size: int, keep: Path | None) -> dict:
    import h5py
    import numpy as np
    import polars as pl

    from va_core.experiments import exp1
    from va_core.experiments.dataset import KeyVectors, VADataset
    from tests.support.va_dataset import FixtureLabel, make_va_dataset

    root = keep or Path(tempfile.mkdtemp(prefix="va-bench-exp1-"))
    label = FixtureLabel("action", 0.12, agg_size=agg_size, signal=0.12)
    if not (root / "agg" / "action.json").exists():
        print(f"writing a {n_clips} x 512 dataset to {root}", file=sys.stderr)
        t = time.perf_counter()
        make_va_dataset(root, n_clips=n_clips, dim=512, labels=(label,), cmp_size=cmp_size, seed=0)
        print(f"  written in {time.perf_counter() - t:.0f} s", file=sys.stderr)

    # warm-up, untimed: imports and sklearn's first fit
    exp1.evaluate_label(VADataset(root), "action", ns=(25,))

    ds = VADataset(root)
    t0 = time.perf_counter()
    ds.rows([ds.shot_keys[0]])  # builds the key index
    t_open = time.perf_counter() - t0
    agg, snaps, lists = ds.agg("action"), ds.checkpoints("action"), ds.cmp("action")
    needed = {i.key for i in agg.items} | {k for v in lists.values() for k, _ in v}
    needed |= {k for c in snaps for k in (c.pos | c.neg)}
    t1 = time.perf_counter()
    KeyVectors.load(ds, needed)
    t_read = time.perf_counter() - t1
    t2 = time.perf_counter()
    rows = exp1.evaluate_label(ds, "action")
    t_label = time.perf_counter() - t2 + t_read  # evaluate_label reads the rows again: count it once
    frame = pl.DataFrame(rows)
    fit = float(frame["fit_seconds"].fill_null(0).sum())
    trained = frame.filter(pl.col("fit_seconds") > 0).height
    memo = frame.filter((pl.col("status") == "ok") & (pl.col("fit_seconds") == 0)
                        & pl.col("method").is_in(["zsc", "rcc", "cc", "va_checkpoint"])).height

    # the paper's loading: every embedding into a dict keyed by clip key
    t3 = time.perf_counter()
    keys = pl.read_csv(root / "shot-data.csv", columns=["key"])["key"].to_list()
    with h5py.File(root / "embeddings.h5", "r") as f:
        matrix = f["embeddings"][:]
    reference = {k: v for k, v in zip(keys, matrix)}
    t_reference_load = time.perf_counter() - t3
    del reference, matrix
    if keep is None:
        shutil.rmtree(root, ignore_errors=True)

    wall = t_open + t_label
    return {
        "n_clips": n_clips, "agg_labels": agg_size, "cmp_list": cmp_size, "checkpoints": len(snaps),
        "label_clips_read": len(needed), "rows": len(rows), "fits": trained, "fits_saved_by_memo": memo,
        "wall_s": wall, "open_s": t_open, "read_s": t_read, "fit_s": fit,
        "other_s": max(0.0, t_label - t_read - fit), "fit_share": fit / wall,
        "reference_load_s": t_reference_load, "reference_load_over_ours": t_reference_load / (t_open + t_read),
        "ap": {m: float(np.nanmax(frame.filter(pl.col("method") == m)["ap_mean"].fill_null(np.nan).to_numpy()))
               for m in ("baseline", "zero_shot", "zsc", "rcc", "cc", "va_checkpoint")},
    }


def table(r: dict) -> str:
    head = ["clips", "agg labels", "fits (+memo)", "wall s", "open s", "read s", "fit s", "other s", "fit share",
            "paper-style load s", "paper load / ours"]
    return markdown(head, [[r["n_clips"], r["agg_labels"], f"{r['fits']} (+{r['fits_saved_by_memo']})",
                            f"{r['wall_s']:.1f}", f"{r['open_s']:.2f}", f"{r['read_s']:.2f}", f"{r['fit_s']:.1f}",
                            f"{r['other_s']:.2f}", f"{r['fit_share']:.0%}", f"{r['reference_load_s']:.1f}",
                            f"{r['reference_load_over_ours']:.1f}x"]])


def main() -> None:
    parser = arguments(__doc__, "20k clips, 300 aggregated labels")
    parser.add_argument("--keep", type=Path, default=None, help="generate (or reuse) the dataset in this folder")
    args = parser.parse_args()
    if args.quick:
        result = run(20_000, 300, 300, args.keep)
    else:
        result = run(500_000, 1000, 1000, args.keep)
    result.update(cpus=os.cpu_count(), load_average=os.getloadavg()[0])
    report(table(result), save("exp1_label", args.quick, result))


if __name__ == "__main__":
    main()
