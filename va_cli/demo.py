"""`va demo`: the whole loop on a generated corpus, with a simulated expert.

sample corpus -> ingest -> a few searches -> rounds of (clips from the label's policy ->
the expert labels them from the corpus's ground truth -> train) -> approve -> serve.

The expert answers from ``ground_truth.csv`` (the shot's background colour), so every AP
printed is measured against labels nobody had to type. The last step starts the model server
on the approved model and scores a clip over HTTP; with ``--serve`` the server keeps running
in the foreground until Ctrl-C. The demo composes every layer, which is why it is a command.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time

import numpy as np

from va_core.encoders import parse_spec, resolve_auto
from va_core.errors import VAError
from va_core.ingest import ingest
from va_core.labels import label_set, record_events, set_description
from va_core.learn import MIN_PER_CLASS
from va_core.sources import next_clips
from va_core.registry import approve
from va_core.sample_corpus import generate, truth_for_clips
from va_core.search import search_text
from va_core.train import train_label
from va_core.warehouse import Warehouse
from va_serving.client import serve_and_score

DEFAULT_VIDEOS = 24
DEFAULT_ROUNDS = 6
BATCH = 8  # clips the expert labels per round
SEARCHES = ("a red scene", "a ball moving", "a blue background")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _encoder(args) -> str:
    spec = resolve_auto(stream=sys.stderr) if args.encoder in (None, "auto") else args.encoder
    return parse_spec(spec).spec


def _truth(settings, corpus_dir) -> dict[str, str]:
    """clip_key -> the colour drawn in that shot."""
    clips = Warehouse.from_settings(settings).read("clips")
    truth = truth_for_clips(corpus_dir, clips)
    return dict(truth.select("clip_key", "colour").iter_rows())


def _expert_labels(label: str, keys: list[str], truth: dict[str, str], colour: str, source: str,
                   provenance: dict[str, dict] | None = None) -> list[dict]:
    """The simulated expert's answers, with how each clip was chosen (``provenance`` by clip key)."""
    how = provenance or {}
    return [{"label": label, "clip_key": k, "value": truth.get(k) == colour, "annotator": "demo-expert",
             "source": source, **how.get(k, {})} for k in keys if k in truth]


def _bootstrap(settings, label: str, truth: dict[str, str], colour: str, rng: np.random.Generator) -> list[dict]:
    """Before any model: the text query's clips, then random clips until both classes can be trained."""
    wh = Warehouse.from_settings(settings)
    steps = []
    first = next_clips(settings, label, BATCH)
    record_events(wh, _expert_labels(label, [c["clip_key"] for c in first["clips"]], truth, colour, first["source"]))
    steps.append(first["source"])
    ls = label_set(wh, label)
    pool = [k for k in truth if k not in set(ls.labelled)]
    rng.shuffle(pool)
    positives = [k for k in pool if truth[k] == colour]
    negatives = [k for k in pool if truth[k] != colour]
    need_pos = max(0, MIN_PER_CLASS - ls.n_pos)
    need_neg = max(0, MIN_PER_CLASS - ls.n_neg)
    if need_pos or need_neg:
        # the simulated expert browses until it has seen both kinds of clip, as a person would
        extra = positives[:need_pos] + negatives[:need_neg]
        record_events(wh, _expert_labels(label, extra, truth, colour, "browse"))
        steps.append("browse")
    return steps


def serve_step(settings, label: str, args, kept: list) -> tuple[dict, list[str]]:
    """Start the model server, score a clip over HTTP, stop it; with ``--serve`` keep it in ``kept``."""
    say("[serve] starting the model server and scoring a clip over HTTP")
    result = serve_and_score(settings, keep=bool(getattr(args, "serve", False)))
    score = result.scores.get(label)
    lines = [f"served {label} v{result.versions.get(label)} at {result.url}: "
             f"clip {result.clip_key} scored {score:.3f} over HTTP (POST /score)"]
    if result.server is not None:
        kept.append(result.server)
        lines.append(f"the server keeps running at {result.url} (pid {result.server.pid}); Ctrl-C stops it")
    return {"served": True, **result.as_dict()}, lines


def run_demo(settings, args, kept: list) -> tuple[dict, str]:
    """The loop, ending in :func:`serve_step` on the approved model (a server kept with ``--serve`` in ``kept``)."""
    started = time.perf_counter()
    encoder = _encoder(args)
    settings = dataclasses.replace(settings, encoder=encoder)
    settings.remember_encoder(encoder)
    wh = Warehouse.from_settings(settings)
    n_videos = args.videos or DEFAULT_VIDEOS
    n_rounds = args.rounds or DEFAULT_ROUNDS
    if n_videos < 2 or n_rounds < 1:
        raise VAError("the demo needs at least 2 videos and 1 round")
    lines = [f"va demo in {settings.home} with encoder {encoder}"]

    say(f"[1/5] generating {n_videos} sample videos")
    corpus_dir = settings.home / "sample_corpus"
    generate(corpus_dir, n_videos=n_videos, progress=True)
    say("[2/5] ingesting them")
    report = ingest(settings, [corpus_dir], progress=True)
    lines.append(report.summary())

    say("[3/5] searching")
    searches = {}
    for query in SEARCHES:
        results = search_text(settings, query, k=3)
        searches[query] = results.select("clip_key", "score").to_dicts()
        lines.append(f"search {query!r}: " + ", ".join(f"{r['clip_key']} ({r['score']:.3f})" for r in searches[query]))

    truth = _truth(settings, corpus_dir)
    colours, counts = np.unique(list(truth.values()), return_counts=True)
    colour = str(colours[int(np.argmax(counts))])
    label = f"{colour}_scene"
    set_description(wh, label, f"a {colour} scene", annotator="demo-expert")
    lines.append(f"\nlabel {label!r}: the expert says yes when the shot's background is {colour} "
                 f"({int(counts.max())} of {len(truth)} clips)")

    say(f"[4/5] {n_rounds} rounds of labelling and training '{label}'")
    rng = np.random.default_rng(0)
    rounds = []
    sources = _bootstrap(settings, label, truth, colour, rng)
    lines.append(f"{'round':>5} {'source':<14} {'pos':>4} {'neg':>4} {'AP':>6} {'90% interval':>14} "
                 f"{'set AP':>6} {'random':>6} {'diversity':>9}  method")
    for r in range(1, n_rounds + 1):
        result = train_label(settings, label)
        row = {"round": r, "source": "+".join(sources), "model_version": result.model_version,
               "n_pos": result.n_pos, "n_neg": result.n_neg, "ap": result.ap, "ap_low": result.ap_low,
               "ap_high": result.ap_high, "n_audit": result.n_audit, "ap_method": result.ap_method,
               "labelled_ap": result.labelled_ap, "baseline_ap": result.baseline_ap,
               "diversity": result.diversity, "method": result.method, "checks_passed": result.checks_passed}
        rounds.append(row)
        ap = "-" if row["ap"] is None else f"{row['ap']:.3f}"
        interval = "-" if row["ap"] is None else f"[{row['ap_low']:.2f}, {row['ap_high']:.2f}]"
        line = (f"{r:>5} {row['source']:<14} {row['n_pos']:>4} {row['n_neg']:>4} {ap:>6} {interval:>14} "
                f"{row['labelled_ap']:6.3f} {row['baseline_ap']:6.3f} {row['diversity']:9.2f}  {row['method']}, "
                f"{row['n_audit']} audit labels")
        lines.append(line)
        say(line)
        if r == n_rounds:
            break
        step = next_clips(settings, label, BATCH)
        if not step["clips"]:
            lines.append("every clip is labelled")
            break
        record_events(wh, _expert_labels(label, [c["clip_key"] for c in step["clips"]], truth, colour,
                                         step["source"], {c["clip_key"]: c.get("provenance") or {}
                                                          for c in step["clips"]}))
        sources = [step["source"]]

    say("[5/5] approving")
    try:
        approved = approve(settings, label, by="demo-expert", reason="demo")
        ap = "unknown" if approved.get("ap") is None else f"{approved['ap']:.3f}"
        lines.append(f"approved {label} v{approved['model_version']} (AP on the corpus {ap})")
    except VAError as exc:  # e.g. a model that does not beat random: say so, the loop itself worked
        approved = {"error": str(exc)}
        lines.append(f"not approved: {exc}")
    final = {}
    if "error" not in approved:
        final["serve_step"], more = serve_step(settings, label, args, kept)
        lines += more
    ls = label_set(wh, label)
    lines += ["", "next steps:",
              f"  va status --home {settings.home}",
              f"  va feeds {label} --home {settings.home}",
              f"  va label {label} CLIP_KEY --yes --home {settings.home}   then   va train {label} --home {settings.home}",
              f"  va ui --home {settings.home}        label in the browser",
              f"  va dagster --home {settings.home}   see the lineage of every model",
              f"  va serve --home {settings.home}     serve the approved classifier (POST /score, /classify)"]
    data = {"home": str(settings.home), "encoder": encoder, "corpus": str(corpus_dir), "ingest": report.to_dict(),
            "searches": searches, "label": label, "colour": colour, "rounds": rounds, "approved": approved,
            "final": final, "n_labelled": len(ls.labelled), "seconds": round(time.perf_counter() - started, 2)}
    return data, "\n".join(lines)


def cli_demo(args, settings):
    kept: list = []
    data, text = run_demo(settings, args, kept)
    if not kept:
        return data, text
    # --serve: show the result now, then stay in the foreground with the server until Ctrl-C.
    server = kept[0]
    print(json.dumps(data, default=str) if args.json else text, flush=True)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    raise SystemExit(0)
