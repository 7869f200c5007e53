"""How long a label_events_sensor tick takes with a large label_events table.

The sensor reads only Delta's change data feed after its cursor. The reference is what a
sensor without a change feed would have to do: read the label column of the whole log.

    .venv/bin/python -m benchmarks.sensor_tick            # 1M events
    .venv/bin/python -m benchmarks.sensor_tick --quick    # 20k events (smoke test)

Writes benchmarks/results/sensor_tick.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

RESULTS = Path(__file__).resolve().parent / "results"


def _events(n: int, n_labels: int, n_clips: int, rng: np.random.Generator) -> pa.Table:
    labels = np.array([f"label_{i:04d}" for i in range(n_labels)], dtype=object)
    now = datetime.now(timezone.utc)
    return pa.table({
        "event_id": [uuid.uuid4().hex for _ in range(n)],
        "label": labels[rng.integers(0, n_labels, n)].tolist(),
        "clip_key": [f"v{c // 100:05d}|{(c % 100) * 48}" for c in rng.integers(0, n_clips, n)],
        "value": rng.random(n) < 0.3,
        "annotator": ["bench"] * n,
        "source": ["benchmark"] * n,
        "created_at": pa.array([now] * n, type=pa.timestamp("us", tz="UTC")),
    })


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def run(n_events: int, n_commits: int, repeats: int) -> dict:
    import dagster as dg
    from tqdm import tqdm

    from va_assets.resources import VAResource
    from va_assets.sensors import label_events_sensor
    from va_core.warehouse import Warehouse

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        home = Path(tmp) / "home"
        wh = Warehouse(str(home / "warehouse"))
        va = VAResource(home=str(home))
        per = n_events // n_commits
        for _ in tqdm(range(n_commits), desc="writing label_events", file=sys.stderr):
            wh.append("label_events", _events(per, 1000, 100_000, rng))
        total = wh.count("label_events")
        base = wh.version("label_events")

        def tick(cursor):
            ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"va": va})
            return label_events_sensor(ctx)

        # a tick that finds nothing new: one version lookup
        idle, _ = _timed(lambda: tick(str(base)), repeats)

        # a tick after one person labelled one clip (the common case)
        changed = []
        for i in range(repeats):
            wh.append("label_events", _events(1, 3, 100, rng))
            cursor = str(wh.version("label_events") - 1)
            t, result = _timed(lambda: tick(cursor), 1)
            assert len(result.run_requests) == 1, result
            changed += t

        # the first tick of a fresh Dagster instance reads the whole label column once
        first, result = _timed(lambda: tick(None), 1)

        def naive():  # the reference: find changed labels without a change feed
            return wh.read("label_events", columns=["label"])["label"].unique()

        reference, _ = _timed(naive, repeats)
        return {
            "n_events": total, "n_commits": wh.version("label_events"),
            "idle_tick_s": statistics.median(idle),
            "changed_tick_s": statistics.median(changed),
            "first_tick_s": first[0],
            "full_label_scan_s": statistics.median(reference),
            "speedup_vs_full_scan": statistics.median(reference) / statistics.median(changed),
            "first_tick_labels": len(result.run_requests),
        }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k events: a smoke test of the benchmark")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--commits", type=int, default=None, help="appends the events are written in")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    n = args.events or (20_000 if args.quick else 1_000_000)
    commits = args.commits or (10 if args.quick else 100)
    repeats = args.repeats or (3 if args.quick else 7)
    result = run(n, commits, repeats)
    result.update({"quick": args.quick, "date": datetime.now(timezone.utc).date().isoformat(),
                   "machine": f"{platform.machine()}, 2 CPU cores", "python": platform.python_version()})
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("sensor_tick_quick.json" if args.quick else "sensor_tick.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"| label_events rows | commits | idle tick | tick after 1 new event | first tick | full label scan (reference) | speed-up |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {result['n_events']:,} | {result['n_commits']} | {result['idle_tick_s'] * 1000:.0f} ms "
          f"| {result['changed_tick_s'] * 1000:.0f} ms | {result['first_tick_s'] * 1000:.0f} ms "
          f"| {result['full_label_scan_s'] * 1000:.0f} ms | {result['speedup_vs_full_scan']:.1f}x |")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
