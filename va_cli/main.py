"""The ``va`` command's parser and its one loop: parse, run the handler, print its answer.

Its arguments are a contract (see docs/ARCHITECTURE.md). Each handler lives in the module of
its domain (``va_cli.corpus``, ``va_cli.labels``, ...), takes ``(args, settings)`` and returns
``(data, text)``, optionally with an exit status: ``data`` is printed as one JSON document with
``--json``, ``text`` otherwise. The handlers call va_core's functions, which return data and
print nothing; only this package writes to the terminal.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from typing import Any, Callable, Iterator

from va_cli import corpus, demo, doctor, experiments, feeds, guidance, labels, models, servers
from va_core.config import Settings
from va_core.errors import VAError
from va_core.learn import DEFAULT_TRAINER, TRAINERS, trainer_names
from va_core.mistakes import DEFAULT_K as MISTAKES_K
from va_core.mistakes import MAX_K as MAX_MISTAKES_K
from va_core.sources import source_names

Handler = Callable[..., tuple[Any, ...]]

HANDLERS: dict[str, Handler] = {
    "demo": demo.cli_demo,
    "ingest": corpus.cli_ingest,
    "search": corpus.cli_search,
    "label": labels.cli_label,
    "import-labels": labels.cli_import_labels,
    "describe": labels.cli_describe,
    "guidelines": guidance.cli_guidelines,
    "mistakes": guidance.cli_mistakes,
    "train": models.cli_train,
    "feeds": feeds.cli_feeds,
    "approve": models.cli_approve,
    "status": models.cli_status,
    "doctor": doctor.cli_doctor,
    "ui": servers.cli_ui,
    "dagster": servers.cli_dagster,
    "serve": servers.cli_serve,
    "experiment": experiments.cli_experiment,
    "import-va-dataset": experiments.cli_import_dataset,
}


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage error is also one JSON document on stdout under ``--json``."""

    json_errors = False

    def error(self, message: str):
        if _Parser.json_errors:
            print(json.dumps({"error": f"{self.prog}: {message}", "type": "UsageError"}))
        super().error(message)


def whole(low: int, high: int | None = None):
    """An argparse type: a whole number from ``low`` to ``high``; argparse names the option."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    parse.__name__ = "whole number"
    return parse


MAX_K = 10_000  # clips one answer lists
PORT = whole(1, 65_535)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", help="the va home folder (default $VA_HOME or ./.va)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout, nothing else")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="va", description="Video Annotator: build video classifiers by labelling clips.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _common(p)
        return p

    p = add("demo", "sample corpus -> ingest -> simulated labelling loop -> approve -> serve")
    p.add_argument("--encoder", default="auto", help="auto (default), tiny, or an encoder spec")
    p.add_argument("--serve", action="store_true", help="keep the model server running at the end")
    p.add_argument("--videos", type=whole(1, 10_000), default=None, help="how many sample videos to generate")
    p.add_argument("--rounds", type=whole(1, 10_000), default=None, help="labelling rounds of the simulated expert")

    p = add("ingest", "videos (files or folders) -> videos, clips, clip_embeddings")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--encoder", default=None, help="encoder spec (default $VA_ENCODER)")

    p = add("search", "text-to-video search over the clips of the current encoder")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("-k", type=whole(1, MAX_K), default=10, help="how many clips (default 10)")
    p.add_argument("--encoder", default=None, help="encoder spec (default $VA_ENCODER)")

    p = add("label", "record one label event")
    p.add_argument("label", metavar="LABEL")
    p.add_argument("clip_key", metavar="CLIP_KEY")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--yes", dest="value", action="store_const", const=True)
    g.add_argument("--no", dest="value", action="store_const", const=False)
    g.add_argument("--unsure", action="store_true", help="the answer unsure: never trained on, never shown again")
    p.add_argument("--annotator", default=None, help="default: your login name")
    p.add_argument("--source", default="cli", help="where the clip came from (search, a feed's name, import)")
    # how the clip was chosen: `va feeds --json` gives each clip's values under "provenance"
    p.add_argument("--rank", type=int, default=None, help="the clip's rank in the feed it came from")
    p.add_argument("--chosen-by-version", type=int, default=None, help="the model version whose feed showed it")
    p.add_argument("--chosen-score", type=float, default=None, help="that model's score of the clip")
    p.add_argument("--draw-id", default=None, help="the random draw it belongs to (random and audit feeds)")
    p.add_argument("--stratum", type=int, default=None, help="its stratum in that draw")
    p.add_argument("--stratum-size", type=int, default=None, help="the stratum's population N_h")
    p.add_argument("--inclusion-prob", type=float, default=None, help="n_h / N_h of that draw")
    p.add_argument("--stratum-low", type=float, default=None, help="the stratum's lowest score")
    p.add_argument("--stratum-high", type=float, default=None, help="the stratum's highest score")

    p = add("import-labels", "append label events from CSV or Parquet (label, clip_key, value[, annotator, source, "
                             "rank, chosen_by_version, chosen_score, draw_id, stratum, stratum_size, inclusion_prob, stratum_low, "
                             "stratum_high])")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--annotator", default=None, help="annotator for rows without one (default: your login name)")

    p = add("describe", "set a label's description, its text query for zero-shot search")
    p.add_argument("label", metavar="LABEL")
    p.add_argument("description", metavar="TEXT")

    p = add("guidelines", "show a label's guidelines (text and pinned example clips), or change them")
    p.add_argument("label", metavar="LABEL")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--text", default=None, metavar="TEXT", help="set the guideline text (empty text clears it)")
    g.add_argument("--pin", default=None, metavar="CLIP_KEY", help="pin a clip as an example (with --as yes|no)")
    g.add_argument("--unpin", default=None, metavar="CLIP_KEY", help="unpin an example clip")
    p.add_argument("--as", dest="as_value", choices=list(guidance.EXAMPLE_VALUES), default=None,
                   help="what the pinned clip is an example of")
    p.add_argument("--note", default=None, help="a few words on the pinned example")
    p.add_argument("--annotator", default=None, help="who changes them (default: your login name)")

    p = add("mistakes", "labels the model contradicts (yes scored low, no scored high) and annotator conflicts")
    p.add_argument("label", metavar="LABEL")
    p.add_argument("--version", type=whole(1), default=None,
                   help="the model version whose scores to use (default: the latest; an older one while its "
                        "scores are kept)")
    p.add_argument("-k", "--k", dest="k", type=whole(1, MAX_MISTAKES_K), default=MISTAKES_K,
                   help=f"clips per list (default {MISTAKES_K})")

    p = add("train", "label set -> classifier -> evaluation -> scores -> feeds (a new model version)")
    p.add_argument("label", metavar="LABEL")
    p.add_argument("--trainer", choices=trainer_names(),
                   help="; ".join(f"{t.name}: {t.description}" for t in TRAINERS.values())
                   + f" (default: the latest model's, else {DEFAULT_TRAINER})")
    p.add_argument("--force", action="store_true",
                   help="train even if the latest version was trained on the same labels")
    p.add_argument("--features", choices=["clip", "motion", "both"],
                   help="embeddings to train on: CLIP, camera motion or both (default: the latest model's, else clip)")

    p = add("feeds", "clips to label next for a label")
    p.add_argument("label", metavar="LABEL")
    p.add_argument("--feed", default=None, choices=source_names(),
                   help=" | ".join(source_names()) + " (default: every stored feed; next: the label's policy chooses)")
    p.add_argument("-k", type=whole(1, MAX_K), default=10, help="how many clips per feed (default 10)")

    p = add("approve", "mark a model version approved; serving picks it up")
    p.add_argument("label", metavar="LABEL")
    p.add_argument("--version", type=whole(1), default=None, help="model version (default: the latest)")
    p.add_argument("--by", default=None, help="who approves (default: your login name)")
    p.add_argument("--override", default=None, metavar="REASON",
                   help="approve a version whose corpus estimate is clearly below the served one's (the reason "
                        "is recorded in the stage history)")

    add("status", "tables, versions, labels with counts, AP and stage")

    p = add("doctor", "check the home's invariants (exit status 1 if a problem remains)")
    p.add_argument("--repair", action="store_true", help="repair what can be derived, then check again")
    p.add_argument("--grace", type=float, default=15.0, metavar="MINUTES",
                   help="a version claimed less than this ago may still be training: left alone (default 15)")

    p = add("ui", "serve the Gradio labelling app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=PORT, default=7860)

    p = add("dagster", "run `dagster dev` on workspace.yaml with DAGSTER_HOME under the va home")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=PORT, default=3000)

    p = add("serve", "serve the approved classifiers with BentoML")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=PORT, default=3001)

    p = add("experiment", "the paper's experiments on its released dataset format")
    p.add_argument("which", choices=["exp1", "exp2"])
    p.add_argument("--data", required=True, help="folder of the released dataset")
    p.add_argument("--out", required=True, help="output table (.csv or .parquet)")
    p.add_argument("--labels", nargs="*", default=None, help="only these labels")
    p.add_argument("--workers", type=whole(1, 256), default=None, help="processes (default: cores)")
    p.add_argument("--steps", type=whole(1, 100_000), default=40, help="exp2: bandit steps per run (default 40)")
    p.add_argument("--step-size", type=whole(1, 100_000), default=25, help="exp2: labels drawn per step (default 25)")
    p.add_argument("--split-rule", default=None, choices=["reference-code", "as-specified"],
                   help="validation split: hash %% 5 < 1 as the paper's released code computes it (default: "
                        "reproduces its numbers), or hash %% 10 < 2 as the paper's text states it")

    p = add("import-va-dataset", "load the paper's released dataset into the warehouse")
    p.add_argument("data", metavar="DIR")
    return parser


class _Stderr(logging.Handler):
    """va_core's messages (``logging``) as plain lines on the stderr of the moment (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr, flush=True)


@contextlib.contextmanager
def _messages_on_stderr() -> Iterator[None]:
    """va_core reports through ``logging`` and prints nothing; while a command runs, its INFO and
    above are shown on stderr (and afterwards no longer, for callers of :func:`main` in-process)."""
    logger, handler = logging.getLogger("va_core"), _Stderr()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    _Parser.json_errors = "--json" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a usage error (2) or --help (0): an exit code, as for every other answer
        return exc.code if isinstance(exc.code, int) else 2
    try:
        with _messages_on_stderr():
            settings = Settings.from_env(home=args.home, encoder=getattr(args, "encoder", None)
                                         if getattr(args, "encoder", None) not in (None, "auto") else None)
            data, text, *status = HANDLERS[args.command](args, settings)  # a handler may add an exit status
    except VAError as exc:
        if args.json:
            print(json.dumps({"error": str(exc), "type": type(exc).__name__}))
        print(f"va {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(data, default=str))
    elif text:
        print(text)
    return status[0] if status else 0
