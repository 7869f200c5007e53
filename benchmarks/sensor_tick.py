"""How long a label_events_sensor tick takes with a large label_events table.

The sensor reads only Delta's change data feed after its cursor. The reference is what a
sensor without a change feed would have to do: read the label column of the whole log.

    .venv/bin/python -m benchmarks.sensor_tick            # 1M events
    .venv/bin/python -m benchmarks.sensor_tick --quick    # 20k events (smoke test)

Writes benchmarks/results/sensor_tick.json and prints a markdown table.
"""
from __future__ import annotations

import platform
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from ._results import arguments, markdown, p50, report, save, timed


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
        idle, _ = timed(lambda: tick(str(base)), repeats)

        # a tick after one person labelled one clip (the common case)
        changed = []
        for i in range(repeats):
            wh.append("label_events", _events(1, 3, 100, rng))
            cursor = str(wh.version("label_events") - 1)
            t, result = timed(lambda: tick(cursor), 1)
            assert len(result.run_requests) == 1, result
            changed += t

        # the first tick of a fresh Dagster instance reads the whole label column once
        first, result = timed(lambda: tick(None), 1)

        def naive():  # the reference: find changed labels without a change feed
            return wh.read("label_events", columns=["label"])["label"].unique()

        reference, _ = timed(naive, repeats)
        return {
            "n_events": total, "n_commits": wh.version("label_events"),
            "idle_tick_s": p50(idle),
            "changed_tick_s": p50(changed),
            "first_tick_s": first[0],
            "full_label_scan_s": p50(reference),
            "speedup_vs_full_scan": p50(reference) / p50(changed),
            "first_tick_labels": len(result.run_requests),
        }


def table(r: dict) -> str:
    head = ["label_events rows", "commits", "idle tick", "tick after 1 new event", "first tick",
            "full label scan (reference)", "speed-up"]
    return markdown(head, [[f"{r['n_events']:,}", r["n_commits"], f"{r['idle_tick_s'] * 1000:.0f} ms",
                            f"{r['changed_tick_s'] * 1000:.0f} ms", f"{r['first_tick_s'] * 1000:.0f} ms",
                            f"{r['full_label_scan_s'] * 1000:.0f} ms", f"{r['speedup_vs_full_scan']:.1f}x"]])


def main(argv=None) -> int:
    parser = arguments(__doc__, "20k events: a smoke test of the benchmark")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--commits", type=int, default=None, help="appends the events are written in")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    n = args.events or (20_000 if args.quick else 1_000_000)
    commits = args.commits or (10 if args.quick else 100)
    repeats = args.repeats or (3 if args.quick else 7)
    result = run(n, commits, repeats)
    report(table(result), save("sensor_tick", args.quick, {**result, "python": platform.python_version()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
