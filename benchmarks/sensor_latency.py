"""Label written -> new model version materialised by the Dagster daemon (`va dagster`).

Everything runs as a user would run it: sample videos dropped in ``$VA_HOME/corpus`` are
ingested by corpus_sensor runs, a label's events are written with ``va_core.labels``
(what `va label` and the app call), label_events_sensor requests the retraining run, the
run queue launches it in a new process. Each of the N measurements writes one label event
and polls the ``models`` table until a version trained at that ``label_events`` version
appears (and then until the run has written its feeds). The reference, measured in the
same run, is the same retraining done directly (``va_core.train.train_label``, what
`va train` and the app's Build do).

    .venv/bin/python -m benchmarks.sensor_latency            # 6 videos, 10 labels written
    .venv/bin/python -m benchmarks.sensor_latency --quick    # 3 videos, 3 labels written
    .venv/bin/python -m benchmarks.sensor_latency --screenshot docs/asset-graph.png

Writes benchmarks/results/sensor_latency.json and prints a markdown table.
"""
from __future__ import annotations

import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._results import arguments, markdown, p50, percentile, report, save

LABEL = "warm"  # from the sample corpus's ground truth: shots with a red, orange or yellow background
WARM = ("red", "orange", "yellow")


def log(message: str) -> None:
    print(f"[sensor_latency] {message}", file=sys.stderr, flush=True)


def run_records(instance, version: int):
    import dagster as dg

    return instance.get_run_records(dg.RunsFilter(job_name="label_job",
                                                  tags={"va/label_events_version": str(version)}))


def screenshot(url: str, out: Path) -> None:
    """The global asset lineage with every group expanded, as an engineer sees it."""
    import re

    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from benchmarks._browser import launch

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 2000, "height": 1150})
        page.goto(f"{url}/asset-groups", wait_until="networkidle", timeout=120_000)
        try:  # the first visit of an instance asks to join a newsletter
            page.get_by_role("button", name="Skip").click(timeout=5000)
        except PlaywrightTimeout:
            pass
        page.get_by_text("Hide navigation").click()
        box = page.get_by_placeholder("Jump to").bounding_box()  # the asset tree's hide button is next to it
        page.mouse.click(box["x"] + box["width"] + 18, box["y"] + box["height"] / 2)
        page.wait_for_timeout(1000)
        page.mouse.click(1000, 1100, button="right")
        page.get_by_role("menuitem", name=re.compile("Expand all groups")).click(timeout=15_000)
        page.get_by_text("served_models").first.wait_for(timeout=60_000)
        page.wait_for_timeout(4000)  # materialisation badges load after the graph
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()


def run(n_videos: int, n_labels: int, interval: int, shot: Path | None) -> dict:
    import dagster as dg
    import polars as pl

    from va_assets import devserver
    from va_core.config import Settings
    from va_core.labels import record_events
    from va_core.sample_corpus import generate, truth_for_clips
    from va_core.warehouse import Warehouse

    tmp = Path(tempfile.mkdtemp(prefix="va-sensor-latency-"))
    home = tmp / "home"
    corpus = generate(home / "corpus", n_videos=n_videos, seed=0)
    settings = Settings(home=home, warehouse_uri=str(home / "warehouse"), encoder="tiny")
    wh = Warehouse.from_settings(settings)
    env = {"VA_ENCODER": "tiny", "VA_SENSOR_INTERVAL": str(interval)}
    out: dict = {"n_videos": n_videos, "sensor_minimum_interval_s": interval, "daemon_sensor_loop_s": 5,
                 "run_dequeue_interval_s": 1}
    t_start = time.perf_counter()
    server = devserver.start(home, tmp / "dagster-dev.log", env)
    try:
        out["server_start_s"] = time.perf_counter() - t_start
        log(f"va dagster up at {server.url} after {out['server_start_s']:.1f} s; waiting for corpus_sensor runs")
        t0 = time.perf_counter()
        server.wait_for(f"{n_videos} videos ingested by Dagster runs",
                        lambda: wh.count("videos") >= n_videos and wh.count("clip_embeddings") > 0, 900, every=1)
        out["corpus_ingested_by_dagster_s"] = time.perf_counter() - t0
        truth = truth_for_clips(corpus.dir, wh.read("clips"))
        pos = truth.filter(pl.col("colour").is_in(WARM))["clip_key"].sort().to_list()
        neg = truth.filter(~pl.col("colour").is_in(WARM))["clip_key"].sort().to_list()
        if min(len(pos), len(neg)) < 4:
            raise RuntimeError(f"{n_videos} videos give {len(pos)} positive and {len(neg)} negative clips; "
                               "use more videos")
        seed = [(LABEL, k, True) for k in pos[:3]] + [(LABEL, k, False) for k in neg[:3]]
        todo = [(LABEL, k, True) for k in pos[3:]] + [(LABEL, k, False) for k in neg[3:]]
        rng = np.random.default_rng(0)
        todo = [todo[i] for i in rng.permutation(len(todo))][:n_labels]
        if len(todo) < n_labels:
            raise RuntimeError(f"the corpus has only {len(todo)} clips left to label; use more videos")

        def model_at(version):
            def find():
                hit = wh.read("models", columns=["model_version", "label_events_version"], where={"label": LABEL})
                hit = hit.filter(pl.col("label_events_version") == version)
                return int(hit["model_version"][0]) if hit.height else None
            return find

        def feeds_at(version):
            def find():
                f = wh.read("feeds", columns=["label_events_version"], where={"label": LABEL})
                return f.height > 0 and set(f["label_events_version"]) == {version}
            return find

        first = record_events(wh, seed, annotator="bench")
        server.wait_for("the first model", model_at(first), 300)
        server.wait_for("the first feeds", feeds_at(first), 300)
        samples = []
        with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
            for i, event in enumerate(todo):
                time.sleep(float(rng.uniform(0, 1)))  # do not line writes up with the daemon's loop
                written = time.time()
                version = record_events(wh, [event], annotator="bench")
                t_written = time.perf_counter()
                model_version = server.wait_for(f"model at v{version}", model_at(version), 300, every=0.05)
                t_model = time.perf_counter()
                server.wait_for(f"feeds at v{version}", feeds_at(version), 300, every=0.05)
                t_feeds = time.perf_counter()
                record = server.wait_for("the run's record", lambda: [
                    r for r in run_records(instance, version) if r.end_time], 120)[0]
                sample = {"label_events_version": version, "model_version": model_version,
                          "to_model_s": t_model - t_written, "to_feeds_s": t_feeds - t_written,
                          "to_run_created_s": record.create_timestamp.timestamp() - written,
                          "launch_s": record.start_time - record.create_timestamp.timestamp(),
                          "run_s": record.end_time - record.start_time}
                samples.append(sample)
                log(f"{i + 1}/{len(todo)}: v{version} -> model v{model_version} in {sample['to_model_s']:.1f} s, "
                    f"feeds in {sample['to_feeds_s']:.1f} s (run {sample['run_s']:.1f} s)")

            from va_core.errors import VAError
            from va_core.registry import approve

            try:
                approved_at = time.time()
                approve(settings, LABEL, by="bench", reason="benchmark")

                def serving_run_done():
                    runs = instance.get_run_records(dg.RunsFilter(job_name="serving_job"))
                    return [r for r in runs if r.create_timestamp.timestamp() >= approved_at and r.end_time]

                done = server.wait_for("served_models refreshed", serving_run_done, 180)
                out["served_models_refreshed"] = done[0].dagster_run.status == dg.DagsterRunStatus.SUCCESS
                out["approval_to_served_s"] = done[0].end_time - approved_at
            except VAError as exc:
                out["served_models_refreshed"] = f"approval refused: {exc}"
                log(out["served_models_refreshed"])
            try:
                server.wait_for("clip_clusters materialised", lambda: instance.get_latest_materialization_event(
                    dg.AssetKey("clip_clusters")), 120)
                out["clip_clusters_materialised"] = True
            except devserver.ServerError:
                out["clip_clusters_materialised"] = False
        if shot is not None:
            screenshot(server.url, shot)
            log(f"wrote {shot}")
    finally:
        server.stop()

    from va_core.train import train_label

    direct = []
    for _ in range(3):
        t = time.perf_counter()
        train_label(settings, LABEL, force=True)
        direct.append(time.perf_counter() - t)
    shutil.rmtree(tmp, ignore_errors=True)

    to_model = [s["to_model_s"] for s in samples]
    to_feeds = [s["to_feeds_s"] for s in samples]
    out.update({
        "n": len(samples), "samples": samples,
        "to_model_p50_s": percentile(to_model, 50), "to_model_p90_s": percentile(to_model, 90),
        "to_feeds_p50_s": percentile(to_feeds, 50), "to_feeds_p90_s": percentile(to_feeds, 90),
        "sensor_delay_p50_s": percentile([s["to_run_created_s"] for s in samples], 50),
        "launch_p50_s": percentile([s["launch_s"] for s in samples], 50),
        "run_p50_s": percentile([s["run_s"] for s in samples], 50),
        "direct_train_label_s": p50(direct),
    })
    out["ratio_to_direct"] = out["to_feeds_p50_s"] / out["direct_train_label_s"]
    return out


def table(r: dict) -> str:
    head = ["runs", "sensor min interval", "label -> model p50 / p90", "label -> feeds p50 / p90", "sensor delay p50",
            "launch p50", "run p50", "direct train_label", "ratio"]
    return markdown(head, [[
        r["n"], f"{r['sensor_minimum_interval_s']} s (daemon loop 5 s)",
        f"{r['to_model_p50_s']:.1f} / {r['to_model_p90_s']:.1f} s", f"{r['to_feeds_p50_s']:.1f} / {r['to_feeds_p90_s']:.1f} s",
        f"{r['sensor_delay_p50_s']:.1f} s", f"{r['launch_p50_s']:.1f} s", f"{r['run_p50_s']:.1f} s",
        f"{r['direct_train_label_s']:.2f} s", f"{r['ratio_to_direct']:.0f}x"]])


def main(argv=None) -> int:
    parser = arguments(__doc__, "3 videos, 3 labels written: a smoke test")
    parser.add_argument("--videos", type=int, default=None)
    parser.add_argument("--labels", type=int, default=None, help="label events written and timed (default 10)")
    parser.add_argument("--interval", type=int, default=1, help="VA_SENSOR_INTERVAL for the run (seconds)")
    parser.add_argument("--screenshot", type=Path, default=None, help="also save the asset graph (PNG)")
    args = parser.parse_args(argv)
    result = run(args.videos or (3 if args.quick else 6), args.labels or (3 if args.quick else 10),
                 args.interval, args.screenshot)
    report(table(result), save("sensor_latency", args.quick, {**result, "python": platform.python_version()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
