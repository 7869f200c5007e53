"""Writes made outside Dagster reach its catalog: seconds from a write to its materialisation.

A home is built with the `va` command only (`va ingest`, `va label`, `va train`,
`va approve`), then `va dagster` starts and catalog_sensor reports those writes: the
videos, the model version with its label_events version, the approval. Times are measured
from the server being up (the writes precede it) and, for a version trained while it runs,
from the start of `va train --force` to its classifier materialisation.

    .venv/bin/python -m benchmarks.catalog_lineage --quick
    .venv/bin/python -m benchmarks.catalog_lineage --screenshot docs/catalog-lineage.png

Writes benchmarks/results/catalog_lineage.json and prints a markdown table.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._results import arguments, markdown, report, save

LABEL = "warm"  # shots with a red, orange or yellow background in the sample corpus
WARM = ("red", "orange", "yellow")


def log(message: str) -> None:
    print(f"[catalog_lineage] {message}", file=sys.stderr, flush=True)


def va(home: Path, *argv: str) -> dict:
    """One `va` command in its own process, as a person would type it."""
    done = subprocess.run([sys.executable, "-m", "va_cli", *argv, "--home", str(home), "--json"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "VA_HOME": str(home), "VA_ENCODER": "tiny"})
    if done.returncode != 0:
        raise RuntimeError(f"va {' '.join(argv)} failed: {done.stdout} {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def screenshot(url: str, out: Path) -> None:
    """The classifier's events of one label: the version `va train` wrote, with its lineage, and its approval."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from benchmarks._browser import launch

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1600, "height": 760})
        page.goto(f"{url}/assets/classifier?view=events&partition={LABEL}", wait_until="networkidle",
                  timeout=120_000)
        try:  # the first visit of an instance asks to join a newsletter
            page.get_by_role("button", name="Skip").click(timeout=5000)
        except PlaywrightTimeout:
            pass
        page.get_by_text("label_events_version").first.wait_for(timeout=60_000)
        page.wait_for_timeout(2000)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()


def run(n_videos: int, shot: Path | None) -> dict:
    import dagster as dg
    import polars as pl

    from va_assets import devserver
    from va_core.config import Settings
    from va_core.sample_corpus import generate, truth_for_clips
    from va_core.warehouse import Warehouse

    tmp = Path(tempfile.mkdtemp(prefix="va-catalog-"))
    home = tmp / "home"
    corpus = generate(tmp / "corpus", n_videos=n_videos, seed=0)
    va(home, "ingest", str(corpus.dir))
    wh = Warehouse(str(home / "warehouse"))
    truth = truth_for_clips(corpus.dir, wh.read("clips"))
    pos = truth.filter(pl.col("colour").is_in(WARM))["clip_key"].sort().to_list()
    neg = truth.filter(~pl.col("colour").is_in(WARM))["clip_key"].sort().to_list()
    path = tmp / "labels.csv"
    rows = [(k, "true") for k in pos[:-1]] + [(k, "false") for k in neg[:-1]]
    path.write_text("label,clip_key,value\n" + "".join(f"{LABEL},{k},{v}\n" for k, v in rows))
    va(home, "import-labels", str(path), "--annotator", "maria")
    trained = va(home, "train", LABEL)
    approved = None
    if trained["checks_passed"]:
        approved = va(home, "approve", LABEL, "--by", "lead")
    else:
        log(f"{LABEL} v{trained['model_version']} fails a blocking check: not approved")
    out: dict = {"n_videos": n_videos, "n_labels": len(rows), "approved": approved is not None}

    env = {"VA_ENCODER": "tiny", "VA_SENSOR_INTERVAL": "1", "VA_CORPUS_DIRS": str(tmp / "no-corpus")}
    t0 = time.perf_counter()
    server = devserver.start(home, tmp / "dagster-dev.log", env)
    try:
        out["server_start_s"] = time.perf_counter() - t0
        with dg.DagsterInstance.from_config(str(Settings(home=home, warehouse_uri="", encoder="tiny")
                                                .dagster_home)) as instance:
            def versions():
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(dg.AssetKey("classifier"), asset_partitions=[LABEL]), limit=20).records
                return sorted(r.asset_materialization.metadata["model_version"].value for r in records)

            t1 = time.perf_counter()
            server.wait_for("videos in the catalog", lambda: len(instance.get_materialized_partitions(
                dg.AssetKey("clip_embeddings"))) == n_videos, 300)
            out["existing_videos_to_catalog_s"] = time.perf_counter() - t1
            server.wait_for("v1 in the catalog", lambda: 1 in versions(), 300)
            out["existing_version_to_catalog_s"] = time.perf_counter() - t1
            if approved:
                server.wait_for("the approval in the catalog", lambda: instance.fetch_observations(
                    dg.AssetRecordsFilter(dg.AssetKey("classifier"), asset_partitions=[LABEL]), limit=1).records, 300)
            if shot is not None:  # the served version: v1, trained and approved with `va`
                screenshot(server.url, shot)
                log(f"wrote {shot}")
            # a version trained while the server runs (--force: no new label, so no run of the
            # label sensor competes with it and only catalog_sensor can report it)
            t2 = time.perf_counter()
            second = va(home, "train", LABEL, "--force")
            server.wait_for("v2 in the catalog", lambda: second["model_version"] in versions(), 300)
            out["new_version_to_catalog_s"] = time.perf_counter() - t2
            out["versions_in_catalog"] = versions()
    finally:
        server.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def table(r: dict) -> str:
    head = ["videos", "server start", "existing videos -> catalog", "existing version -> catalog",
            "`va train` -> catalog"]
    return markdown(head, [[r["n_videos"], f"{r['server_start_s']:.1f} s", f"{r['existing_videos_to_catalog_s']:.1f} s",
                            f"{r['existing_version_to_catalog_s']:.1f} s", f"{r['new_version_to_catalog_s']:.1f} s"]])


def main(argv=None) -> int:
    parser = arguments(__doc__, "3 videos: a smoke test")
    parser.add_argument("--videos", type=int, default=None)
    parser.add_argument("--screenshot", type=Path, default=None, help="also save the classifier's page (PNG)")
    args = parser.parse_args(argv)
    started = time.time()
    result = run(args.videos or (3 if args.quick else 8), args.screenshot)
    report(table(result), save("catalog_lineage", args.quick, result, started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
