"""One label's retraining run (label_job) with its steps in the run's process vs a process per step.

Why label_job defaults to in-process execution: its five steps (and two checks) run one
after another in well under a second each, so starting a Python process per step
(importing dagster, va_core, scikit-learn) dominates. Each timed run follows a new label
event, so every run trains a new model version.

    .venv/bin/python -m benchmarks.label_job_executors            # 3 runs per executor
    .venv/bin/python -m benchmarks.label_job_executors --quick    # 1 run per executor

Writes benchmarks/results/label_job_executors.json and prints a markdown table.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ._results import arguments, markdown, p50, report, save

WARM = ("red", "orange", "yellow")


def run(repeats: int, n_videos: int) -> dict:
    import dagster as dg
    import polars as pl

    from va_core.config import Settings
    from va_core.ingest import ingest
    from va_core.labels import record_events
    from va_core.sample_corpus import generate, truth_for_clips
    from va_core.warehouse import Warehouse

    tmp = Path(tempfile.mkdtemp(prefix="va-label-job-"))
    home = tmp / "home"
    os.environ.update({"VA_HOME": str(home), "VA_ENCODER": "tiny"})
    os.environ.pop("VA_WAREHOUSE_URI", None)
    settings = Settings.from_env()
    corpus = generate(tmp / "corpus", n_videos=n_videos, seed=0)
    ingest(settings, [corpus.dir], progress=False)
    wh = Warehouse.from_settings(settings)
    truth = truth_for_clips(corpus.dir, wh.read("clips"))
    pos = truth.filter(pl.col("colour").is_in(WARM))["clip_key"].sort().to_list()
    neg = truth.filter(~pl.col("colour").is_in(WARM))["clip_key"].sort().to_list()
    record_events(wh, [("warm", k, True) for k in pos[:3]] + [("warm", k, False) for k in neg[:3]],
                  annotator="bench")
    extra = iter([("warm", k, True) for k in pos[3:]] + [("warm", k, False) for k in neg[3:]])

    from va_assets.definitions import reconstructable_job

    times: dict[str, list[float]] = {"in_process": [], "multiprocess": []}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("labels", ["warm"])
        for i in range(repeats * 2 + 1):
            mode = "in_process" if i % 2 else "multiprocess"
            version = record_events(wh, [next(extra)], annotator="bench")
            t = time.perf_counter()
            with dg.execute_job(reconstructable_job("label_job"), instance=instance,
                                run_config={"execution": {"config": {mode: {}}}},
                                tags={"dagster/partition": "warm", "va/label_events_version": str(version)}) as r:
                assert r.success
            if i:  # the first run warms caches (clusters, imports of the parent)
                times[mode].append(time.perf_counter() - t)
            print(f"[label_job_executors] {mode}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    out = {m: p50(v) for m, v in times.items()}
    return {"runs_per_executor": repeats, "in_process_s": out["in_process"], "multiprocess_s": out["multiprocess"],
            "ratio": out["multiprocess"] / out["in_process"], "samples": times}


def table(r: dict) -> str:
    return markdown(["runs each", "in-process run", "process per step", "ratio"],
                    [[r["runs_per_executor"], f"{r['in_process_s']:.1f} s", f"{r['multiprocess_s']:.1f} s",
                      f"{r['ratio']:.1f}x"]])


def main(argv=None) -> int:
    parser = arguments(__doc__, "1 run per executor")
    args = parser.parse_args(argv)
    result = run(1 if args.quick else 3, 3)
    report(table(result), save("label_job_executors", args.quick, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
