"""Label -> fresh feeds: how long an expert waits after labelling, and what the fast trainer gives up.

A synthetic 512-d corpus (100k clips; 10k with --quick) with 20 topics; a label is "is
topic t". For 100 and 1000 labelled clips (30% positives, as active learning enriches
them), repeated over labels:

- fresh feeds = fit the fast trainer + score the whole corpus + build the four feeds
  (va_core.train's steps, in memory): what stands between a label and new clips to label;
- train_label = the whole `va train` (label set from Delta, fit, evaluation, diversity,
  scoring, feeds, every Delta write), for the same label sets;
- the reference, same run, same clips: the paper's LogisticRegressionCV fit time, and the
  AP of both trainers on the same hash-split validation clips (fit on the rest), and on
  20% of the corpus held out from labelling (up to 20k clips with known topics): the
  validation part of 100 labels holds ~6 positives, so its AP moves by 0.1 when one
  clip changes rank; the held-out AP measures the models' real difference.

    .venv/bin/python -m benchmarks.label_to_feeds           # 100k clips, 10 labels per size
    .venv/bin/python -m benchmarks.label_to_feeds --quick   # 10k clips, 2 labels per size

Writes benchmarks/results/label_to_feeds.json (label_to_feeds_quick.json) and prints a markdown table.
"""
from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ._results import arguments, markdown, p50, report, save

DIM = 512
NOISE = 8.0  # hard enough that AP is not 1.0 at 100 labels
POSITIVE_SHARE = 0.3


def _labelled(corpus, topic: int, n: int, seed: int) -> tuple[list[str], list[str]]:
    """Labelled clips come from the first 80% of the corpus; the rest is held out."""
    rng = np.random.default_rng([seed, topic, n])
    n_pos = int(round(n * POSITIVE_SHARE))
    pool = np.arange(int(len(corpus.keys) * 0.8))
    pos = rng.choice(pool[corpus.topics[pool] == topic], n_pos, replace=False)
    neg = rng.choice(pool[corpus.topics[pool] != topic], n - n_pos, replace=False)
    return [corpus.keys[i] for i in pos], [corpus.keys[i] for i in neg]


def run(n_clips: int, sizes: list[int], n_labels: int, full_train: bool) -> dict:
    from tqdm import tqdm

    from va_core.config import Settings
    from va_core.embeddings import load_corpus
    from va_core.feeds import compute_feeds, labelled_mask
    from va_core.labels import record_events
    from va_core.learn import average_precision, bootstrap_ap, fit, fit_reference, ordered, validation_mask
    from tests.support.synthetic import SYNTHETIC_ENCODER_ID, make_corpus, write_corpus
    from va_core.train import train_label
    from va_core.warehouse import Warehouse

    warnings.simplefilter("ignore", FutureWarning)
    root = Path(tempfile.mkdtemp(prefix="va-bench-feeds-"))
    settings = Settings(home=root, warehouse_uri=str(root / "warehouse"), encoder="tiny")
    wh = Warehouse.from_settings(settings)
    print(f"writing a synthetic corpus of {n_clips} x {DIM} to {root}", file=sys.stderr)
    synthetic = make_corpus(n_clips, dim=DIM, n_topics=20, noise=NOISE, seed=0)
    write_corpus(wh, synthetic)
    corpus = load_corpus(wh, SYNTHETIC_ENCODER_ID)
    index = {k: i for i, k in enumerate(corpus.keys.tolist())}
    # held out: the last 20% of the synthetic rows (at most 20k), never labelled
    held = np.arange(int(n_clips * 0.8), n_clips)[:20_000]
    held_rows = corpus.positions([synthetic.keys[i] for i in held])
    # warm-up, untimed: imports, the corpus's k-means clusters (once per corpus version)
    pos, neg = _labelled(synthetic, 19, 60, seed=2)
    record_events(wh, [{"label": "warmup", "clip_key": k, "value": k in set(pos)} for k in pos + neg],
                  annotator="bench")
    train_label(settings, "warmup", encoder_id=SYNTHETIC_ENCODER_ID)
    fit_reference(corpus.matrix[:60], synthetic.topics[:60] == synthetic.topics[0])
    rows = []
    for size in sizes:
        for topic in tqdm(range(n_labels), desc=f"{size} labels", file=sys.stderr):
            pos, neg = _labelled(synthetic, topic, size, seed=1)
            keys, y = ordered(pos, neg)
            X = corpus.matrix[[index[k] for k in keys]]
            t0 = time.perf_counter()
            model = fit(X, y)
            t1 = time.perf_counter()
            scores = model.score(corpus.matrix)
            t2 = time.perf_counter()
            compute_feeds(corpus.keys, scores, labelled_mask(corpus, keys), f"topic{topic}", 1)
            t3 = time.perf_counter()
            reference = fit_reference(X, y)
            t4 = time.perf_counter()

            val = validation_mask(keys)
            fast_val = fit(X[~val], y[~val]).score(X[val])
            ref_val = fit_reference(X[~val], y[~val]).score(X[val])
            truth = synthetic.topics[held] == topic
            row = {"labels": size, "topic": topic, "fit_s": t1 - t0, "score_s": t2 - t1, "feeds_s": t3 - t2,
                   "fresh_feeds_s": t3 - t0, "reference_fit_s": t4 - t3,
                   "ap_fast": bootstrap_ap(y[val], fast_val).mean, "ap_reference": bootstrap_ap(y[val], ref_val).mean,
                   "heldout_ap_fast": average_precision(truth, model.score(corpus.matrix[held_rows])),
                   "heldout_ap_reference": average_precision(truth, reference.score(corpus.matrix[held_rows])),
                   "n_val": int(val.sum()), "n_val_pos": int(y[val].sum()), "reference_C": reference.params["C"]}
            if full_train:
                label = f"s{size}-t{topic}"
                record_events(wh, [{"label": label, "clip_key": k, "value": bool(v)} for k, v in zip(keys, y)],
                              annotator="bench")
                t5 = time.perf_counter()
                result = train_label(settings, label, encoder_id=SYNTHETIC_ENCODER_ID)
                row["train_label_s"] = time.perf_counter() - t5
                row["train_label_steps"] = result.timings
            rows.append(row)
    summary = []
    for size in sizes:
        mine = [r for r in rows if r["labels"] == size]
        gaps = [r["ap_fast"] - r["ap_reference"] for r in mine]
        held_gaps = [r["heldout_ap_fast"] - r["heldout_ap_reference"] for r in mine]
        summary.append({
            "labels": size, "n": len(mine),
            "fresh_feeds_p50_s": p50([r["fresh_feeds_s"] for r in mine]),
            "fit_p50_s": p50([r["fit_s"] for r in mine]), "score_p50_s": p50([r["score_s"] for r in mine]),
            "feeds_p50_s": p50([r["feeds_s"] for r in mine]),
            "reference_fit_p50_s": p50([r["reference_fit_s"] for r in mine]),
            "train_label_p50_s": p50([r["train_label_s"] for r in mine]) if full_train else None,
            "ap_fast_mean": float(np.mean([r["ap_fast"] for r in mine])),
            "ap_reference_mean": float(np.mean([r["ap_reference"] for r in mine])),
            "ap_gap_mean": float(np.mean(gaps)), "ap_gap_worst": float(min(gaps)),
            "heldout_ap_fast_mean": float(np.mean([r["heldout_ap_fast"] for r in mine])),
            "heldout_ap_reference_mean": float(np.mean([r["heldout_ap_reference"] for r in mine])),
            "heldout_gap_mean": float(np.mean(held_gaps)), "heldout_gap_worst": float(min(held_gaps)),
            "n_val_pos_median": float(np.median([r["n_val_pos"] for r in mine])),
        })
    return {"rows": rows, "summary": summary}


def table(result: dict, n_clips: int) -> str:
    head = ["labels", "clips", "fresh feeds p50 s (fit / score / feeds)", "`train_label` p50 s", "reference fit p50 s",
            "reference fit / fast fit", "hash-split AP fast / reference", "gap mean (worst)",
            "held-out AP fast / reference", "gap mean (worst)"]
    rows = []
    for s in result["summary"]:
        tl = f"{s['train_label_p50_s']:.3f}" if s["train_label_p50_s"] is not None else "-"
        rows.append([
            s["labels"], n_clips,
            f"{s['fresh_feeds_p50_s']:.3f} ({s['fit_p50_s']:.3f} / {s['score_p50_s']:.3f} / {s['feeds_p50_s']:.3f})",
            tl, f"{s['reference_fit_p50_s']:.3f}", f"{s['reference_fit_p50_s'] / s['fit_p50_s']:.1f}x",
            f"{s['ap_fast_mean']:.4f} / {s['ap_reference_mean']:.4f}", f"{s['ap_gap_mean']:+.4f} ({s['ap_gap_worst']:+.4f})",
            f"{s['heldout_ap_fast_mean']:.4f} / {s['heldout_ap_reference_mean']:.4f}",
            f"{s['heldout_gap_mean']:+.4f} ({s['heldout_gap_worst']:+.4f})"])
    return markdown(head, rows)


def main(argv=None) -> int:
    parser = arguments(__doc__, "10k clips, 2 labels per size")
    parser.add_argument("--clips", type=int, default=None)
    parser.add_argument("--labels-per-size", type=int, default=None)
    args = parser.parse_args(argv)
    n_clips = args.clips or (10_000 if args.quick else 100_000)
    n_labels = args.labels_per_size or (2 if args.quick else 10)
    started = time.time()
    result = run(n_clips, [100, 1000], n_labels, full_train=True)
    path = save("label_to_feeds", args.quick, {"clips": n_clips, "dim": DIM, "noise": NOISE,
                                               "labels_per_size": n_labels, **result}, started)
    report(table(result, n_clips), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
