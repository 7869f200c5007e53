"""Throughput and latency of the model server's /score, against the same predictions in-process.

A fresh va home gets a synthetic 512-d corpus and approved classifiers trained by va_core;
`va serve` runs on 127.0.0.1; 8 client processes send /score requests of 1 and of 64 rows
(every served label) as fast as the answers come back, for a fixed time per batch size.
The reference, measured in the same run on the same machine, is the in-process cost of
the same predictions: va_serving's scoring of one request (va_core's LinearModel.score
per label) without HTTP, JSON or batching.

    .venv/bin/python -m benchmarks.serving            # 4 labels, 15 s per batch size
    .venv/bin/python -m benchmarks.serving --quick    # 2 labels, 3 s per batch size (smoke test)

Writes benchmarks/results/serving.json (serving_quick.json with --quick), prints a
markdown table. Clients and server share the machine's cores, as they would on one host.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._results import arguments, markdown, p50, percentile, report, save, timed

DIM = 512


def _home(root: Path, n_clips: int, n_labels: int):
    from tqdm import tqdm

    from va_core.config import Settings
    from va_core.labels import record_events
    from va_core.registry import approve
    from tests.support.synthetic import SYNTHETIC_ENCODER_ID, make_corpus, write_corpus
    from va_core.train import train_label
    from va_core.warehouse import Warehouse

    settings = Settings(home=root, warehouse_uri=str(root / "warehouse"), encoder="tiny")
    corpus = make_corpus(n_clips, dim=DIM, n_topics=max(5, n_labels + 1), seed=0)
    wh = Warehouse.from_settings(settings)
    write_corpus(wh, corpus)
    for t in tqdm(range(n_labels), desc="training labels", file=sys.stderr):
        label = f"topic{t}"
        pos = [k for k, x in zip(corpus.keys, corpus.topics) if x == t][:40]
        neg = [k for k, x in zip(corpus.keys, corpus.topics) if x != t][:40]
        record_events(wh, [{"label": label, "clip_key": k, "value": True} for k in pos]
                      + [{"label": label, "clip_key": k, "value": False} for k in neg], annotator="bench")
        result = train_label(settings, label, encoder_id=SYNTHETIC_ENCODER_ID)
        approve(settings, label, result.model_version, by="bench")
    return settings, corpus


def _client(args) -> dict:
    """One client process: POST the same pre-encoded body until the deadline; latencies in seconds."""
    url, body, start_at, seconds, n_rows = args
    import httpx

    latencies, errors = [], 0
    with httpx.Client(timeout=60) as http:
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        while time.time() < deadline:
            t0 = time.perf_counter()
            r = http.post(url + "/score", content=body, headers={"content-type": "application/json"})
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200 or r.json()["n"] != n_rows:
                errors += 1
    return {"latencies": latencies, "errors": errors}


def _warm(_: int) -> int:
    import httpx  # noqa: F401 - the import is the warm-up

    return os.getpid()


def _in_process(settings, matrix: np.ndarray, repeats: int) -> float:
    """Seconds per request when the same prediction is computed in-process (median of repeats)."""
    from va_serving.served import ScoreJob, load_from_warehouse, score_jobs

    snapshot = load_from_warehouse(settings)
    job = ScoreJob(np.ascontiguousarray(matrix, dtype=np.float32), tuple(sorted(snapshot.models)))
    times, _ = timed(lambda: score_jobs(snapshot, [job]), repeats, warmup=20)
    return p50(times)


def run(n_clips: int, n_labels: int, seconds: float, clients: int, batches: list[int]) -> dict:
    from va_serving.client import ServerProcess

    with tempfile.TemporaryDirectory(prefix="va-bench-serving-") as tmp:
        settings, corpus = _home(Path(tmp) / "home", n_clips, n_labels)
        env = {"BENTOML_HOME": str(Path(tmp) / "home" / "bentoml"), "VA_SERVING_MAX_ROWS": "1024"}
        rows = []
        with ServerProcess(settings, extra_env=env) as server:
            client = server.client()
            ctx = mp.get_context("spawn")
            with ctx.Pool(clients) as pool:
                pool.map(_warm, range(clients * 4))  # started and imported before the clock runs
                for batch in batches:
                    matrix = corpus.matrix[:batch]
                    body = json.dumps({"embeddings": matrix.tolist()}).encode()
                    check = client.score(embeddings=matrix)  # warm-up, and the served labels
                    before = client.models()["batching"]
                    start_at = time.time() + 1.0
                    outs = pool.map(_client, [(server.url, body, start_at, seconds, batch)] * clients)
                    after = client.models()["batching"]
                    lat = np.concatenate([o["latencies"] for o in outs]) * 1000
                    n_req = len(lat)
                    if n_req == 0:
                        raise RuntimeError(f"no request of {batch} rows finished in {seconds}s")
                    in_proc = _in_process(settings, matrix, repeats=2000 if batch == 1 else 500)
                    lat_p50 = percentile(lat, 50)
                    jobs = after["jobs"] - before["jobs"]
                    batches_run = after["batches"] - before["batches"]
                    rows.append({
                        "batch": batch, "clients": clients, "labels": len(check["scores"]),
                        "requests": n_req, "errors": int(sum(o["errors"] for o in outs)),
                        "requests_per_s": n_req / seconds, "rows_per_s": n_req * batch / seconds,
                        "p50_ms": lat_p50, "p99_ms": percentile(lat, 99),
                        "in_process_us": in_proc * 1e6,
                        "in_process_requests_per_s": 1 / in_proc,
                        "latency_ratio": lat_p50 / 1000 / in_proc,
                        "throughput_ratio": (1 / in_proc) / (n_req / seconds),
                        "mean_requests_per_server_batch": jobs / batches_run if batches_run else 0.0,
                    })
                    print(f"batch {batch}: {n_req / seconds:.0f} req/s, p50 {lat_p50:.1f} ms", file=sys.stderr)
    return {
        "params": {"clips": n_clips, "labels": n_labels, "dim": DIM, "seconds_per_batch": seconds,
                   "clients": clients},
        "rows": rows,
    }


def table(result: dict) -> str:
    head = ["rows/request", "clients", "labels", "requests/s", "rows/s", "p50 ms", "p99 ms", "in-process µs/request",
            "p50 / in-process", "in-process / HTTP throughput", "requests per server batch"]
    return markdown(head, [[r["batch"], r["clients"], r["labels"], f"{r['requests_per_s']:.0f}", f"{r['rows_per_s']:.0f}",
                            f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['in_process_us']:.0f}",
                            f"{r['latency_ratio']:.0f}x", f"{r['throughput_ratio']:.0f}x",
                            f"{r['mean_requests_per_server_batch']:.1f}"] for r in result["rows"]])


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, "small sizes: a smoke test")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of load per batch size")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args(argv)
    if args.quick:
        result = run(400, 2, args.seconds or 3.0, args.clients, [1, 64])
    else:
        result = run(2000, 4, args.seconds or 15.0, args.clients, [1, 64])
    report(table(result), save("serving", args.quick, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
