"""Build in the labelling app: how long an expert waits between pressing Build and new clips.

A synthetic 512-d corpus (100k clips; 10k with --quick) with 20 topics; a label is "is
topic t" with 1000 labelled clips (30% positives). Per label, timed in one process with
the functions the app's buttons call (va_ui.handlers, va_ui.panels):

- answer: storing one Yes/No answer at 1000 labels (what the page's queue sends in the background);
- build: ``handlers.build`` = ``va_core.train.train_label`` (the function Dagster runs) after
  the expert added 10 labels to the 1000;
- refresh: what the app shows after a build: the model's versions and evaluation, the
  chart rendered to PNG, the four feed previews, and a batch of the new feeds for the
  Annotate desk;
- Build = build + refresh: the wait after pressing Build (target: under a second).

The build's CPU seconds (``time.process_time``: every thread of the process, the Delta
writer's too) are recorded next to its wall time: on a shared machine they move less.

Reference, same run, same label sets: ``train_label`` with the paper's LogisticRegressionCV
(``trainer="reference"``), i.e. what Build would cost with the reference trainer.

``--query-audit``: each label also has a text query (its topic's centre plus noise, stored as
an imported dataset's text embeddings are) and ``AUDITED`` labelled audit draws (the
``audit`` feed of the first model, answered truthfully, then a second model): the build
then fits two candidates (with and without the query), estimates both on the corpus with
cross-fitted refits, and keeps one (``train.choose_classifier``), the build a label has
once the loop is running.

    .venv/bin/python -m benchmarks.build_latency           # 100k clips, 5 labels
    .venv/bin/python -m benchmarks.build_latency --quick   # 10k clips, 2 labels

Writes benchmarks/results/build_latency.json (build_latency_quick.json) and prints a markdown table.
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
N_LABELS = 1000
ADDED = 10
POSITIVE_SHARE = 0.3
AUDITED = 100  # audit draws labelled before the timed build (--query-audit)
QUERY_NOISE = 1.0  # the text query's distance from its topic's centre (unit vectors)
QUERY_ENCODER = "va-dataset:synthetic-topics"  # a corpus with text embeddings, as an imported dataset


def _labelled(corpus, topic: int, n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng([seed, topic, n])
    n_pos = int(round(n * POSITIVE_SHARE))
    pos = rng.choice(np.flatnonzero(corpus.topics == topic), n_pos, replace=False)
    neg = rng.choice(np.flatnonzero(corpus.topics != topic), n - n_pos, replace=False)
    return [corpus.keys[i] for i in pos], [corpus.keys[i] for i in neg]


def run(n_clips: int, n_labels: int, query_audit: bool = False) -> dict:
    from tqdm import tqdm

    from va_core.config import Settings
    from va_core.feeds import stored_feed
    from va_core.labels import provenance_of, record_events, store_text_embeddings
    from tests.support.synthetic import SYNTHETIC_ENCODER_ID, make_corpus, write_corpus
    from va_core.train import train_label
    from va_core.warehouse import Warehouse
    from va_ui import annotate
    from va_ui import handlers as h
    from va_ui import panels

    warnings.simplefilter("ignore", FutureWarning)
    root = Path(tempfile.mkdtemp(prefix="va-bench-build-"))
    encoder_id = QUERY_ENCODER if query_audit else SYNTHETIC_ENCODER_ID
    settings = Settings(home=root, warehouse_uri=str(root / "warehouse"),
                        encoder=QUERY_ENCODER if query_audit else "tiny")
    print(f"writing a synthetic corpus of {n_clips} x {DIM} to {root}", file=sys.stderr)
    synthetic = make_corpus(n_clips, dim=DIM, n_topics=20, noise=8.0, seed=0, encoder_id=encoder_id)
    wh = Warehouse.from_settings(settings)
    write_corpus(wh, synthetic)
    topic_of = dict(zip(synthetic.keys, synthetic.topics.tolist()))
    if query_audit:
        rng = np.random.default_rng(2)
        queries = {}
        for topic in range(20):
            centre = synthetic.matrix[synthetic.topics == topic].mean(axis=0)
            noise = rng.standard_normal(DIM)
            q = centre / np.linalg.norm(centre) + QUERY_NOISE * noise / np.linalg.norm(noise)
            queries[f"topic{topic}"] = q / np.linalg.norm(q)
        store_text_embeddings(settings, encoder_id, {**queries, "warmup": queries["topic19"]})

    def label_up(label: str, topic: int) -> None:
        pos, neg = _labelled(synthetic, topic, N_LABELS, seed=1)
        record_events(wh, [{"label": label, "clip_key": k, "value": k in set(pos)} for k in pos + neg],
                      annotator="bench", source="bench")

    def audit_up(label: str, topic: int) -> None:
        """Label the latest model's audit draws, then build on them (untimed)."""
        draws = stored_feed(settings, label, "audit", AUDITED)
        record_events(wh, [{"label": label, "clip_key": c["clip_key"], "value": topic_of[c["clip_key"]] == topic,
                                  "source": "audit", **provenance_of(c)} for c in draws], annotator="bench")
        h.build(settings, label, encoder_id=encoder_id)

    # warm-up, untimed: imports, k-means clusters of the corpus
    label_up("warmup", 19)
    h.build(settings, "warmup", encoder_id=encoder_id)
    if query_audit:
        audit_up("warmup", 19)
    panels.ap_chart(h.model_view(settings, "warmup")["history"])

    rows = []
    for topic in tqdm(range(n_labels), desc="labels", file=sys.stderr):
        label = f"topic{topic}"
        label_up(label, topic)
        h.build(settings, label, encoder_id=encoder_id)  # v1 on the 1000 labels
        if query_audit:
            audit_up(label, topic)
        queue = annotate.batch(settings, label, "borderline")["items"]
        answers = []
        for item in queue[:ADDED]:  # the expert labels 10 more clips with the keyboard
            key = item["clip_key"]
            t0 = time.perf_counter()
            annotate.save(settings, label, key, topic_of[key] == topic, "bench", item["source"], item["provenance"])
            answers.append(time.perf_counter() - t0)
        t0, c0 = time.perf_counter(), time.process_time()
        built = h.build(settings, label, encoder_id=encoder_id)
        t1, c1 = time.perf_counter(), time.process_time()
        view = h.model_view(settings, label)
        panels.quality(settings, label, view["history"])
        panels.previews(view["previews"])
        panels.ap_chart(view["history"])
        annotate.batch(settings, label, "borderline", exclude={queue[ADDED]["clip_key"]})
        t2 = time.perf_counter()
        audited = AUDITED if query_audit else 0
        assert built["result"].created and built["result"].n_pos + built["result"].n_neg == N_LABELS + audited + ADDED
        t3 = time.perf_counter()
        reference = train_label(settings, label, trainer="reference", encoder_id=encoder_id)
        t4 = time.perf_counter()
        rows.append({"topic": topic, "answer_p50_s": p50(answers), "build_s": t1 - t0, "refresh_s": t2 - t1,
                     "build_total_s": t2 - t0, "build_cpu_s": c1 - c0, "reference_train_s": t4 - t3, "steps": built["result"].timings,
                     "ap": built["result"].ap, "reference_ap": reference.ap, "n_audit": built["result"].n_audit,
                     "ap_method": built["result"].ap_method})
    summary = {
        "answer_p50_s": p50([r["answer_p50_s"] for r in rows]),
        "build_p50_s": p50([r["build_s"] for r in rows]),
        "build_cpu_p50_s": p50([r["build_cpu_s"] for r in rows]),
        "refresh_p50_s": p50([r["refresh_s"] for r in rows]),
        "build_total_p50_s": p50([r["build_total_s"] for r in rows]),
        "reference_train_p50_s": p50([r["reference_train_s"] for r in rows]),
        "steps_p50_s": {k: p50([r["steps"][k] for r in rows]) for k in rows[0]["steps"]},
    }
    return {"rows": rows, "summary": summary}


def table(result: dict, n_clips: int) -> str:
    s = result["summary"]
    steps = " / ".join(f"{k} {v:.3f}" for k, v in s["steps_p50_s"].items())
    head = ["clips", "labels", "key press p50 s", "build p50 s", "refresh p50 s", "**Build p50 s**",
            "reference train p50 s", "reference / Build"]
    row = [n_clips, f"{N_LABELS}+{ADDED}", f"{s['answer_p50_s']:.3f}", f"{s['build_p50_s']:.3f}",
           f"{s['refresh_p50_s']:.3f}", f"**{s['build_total_p50_s']:.3f}**", f"{s['reference_train_p50_s']:.2f}",
           f"{s['reference_train_p50_s'] / s['build_total_p50_s']:.1f}x"]
    return markdown(head, [row]) + f"\n\nbuild steps p50 s: {steps}; build CPU p50 s: {s['build_cpu_p50_s']:.3f}"


def main(argv=None) -> int:
    parser = arguments(__doc__, "10k clips, 2 labels")
    parser.add_argument("--clips", type=int, default=None)
    parser.add_argument("--labels", type=int, default=None, help="how many labels to time")
    parser.add_argument("--query-audit", action="store_true",
                        help=f"each label with a text query and {AUDITED} labelled audit draws")
    args = parser.parse_args(argv)
    n_clips = args.clips or (10_000 if args.quick else 100_000)
    n_labels = args.labels or (2 if args.quick else 5)
    started = time.time()
    result = run(n_clips, n_labels, args.query_audit)
    name = "build_latency_query_audit" if args.query_audit else "build_latency"
    path = save(name, args.quick, {"clips": n_clips, "dim": DIM, "labels": N_LABELS, "added": ADDED,
                                   "audited": AUDITED if args.query_audit else 0, "repeats": n_labels, **result},
                started)
    report(table(result, n_clips), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
