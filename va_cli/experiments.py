"""`va experiment` and `va import-va-dataset`: the paper's reproduction on its released dataset."""
from __future__ import annotations

from va_core.errors import VAError
from va_core.experiments import exp2
from va_core.experiments.importer import import_dataset
from va_core.experiments.protocol import DEFAULT_SPLIT_RULE
from va_core.experiments.run import run_experiment


def cli_experiment(args, settings):
    result = run_experiment(args.which, args.data, args.out, labels=args.labels, workers=args.workers,
                            steps=getattr(args, "steps", exp2.STEPS), step_size=getattr(args, "step_size", exp2.STEP_SIZE),
                            split_rule=getattr(args, "split_rule", None) or DEFAULT_SPLIT_RULE)
    rep = result.report
    if rep.failed:
        details = "; ".join(f"{label}: {error}" for label, error in rep.failed.items())
        raise VAError(f"{len(rep.failed)} label(s) failed and are not in {rep.out} (run again to retry them): {details}")
    data = {
        "experiment": args.which, "out": str(rep.out), "labels": rep.labels, "ran": rep.ran,
        "resumed": rep.resumed, "summary": result.summary, "summary_file": str(result.summary_file),
        "plot": str(result.plot) if result.plot else None,
    }
    text = (f"{args.which}: {len(rep.ran)} label(s) run, {len(rep.resumed)} already in {rep.out}\n\n"
            f"{result.markdown}\n\nsummary: {result.summary_file}" + (f"\nplot: {result.plot}" if result.plot else ""))
    return data, text


def cli_import_dataset(args, settings):
    report = import_dataset(settings, args.data)
    data = report.as_dict()
    text = (f"imported {report.clips_added} clips of {report.videos_added} videos "
            f"({report.videos_already} videos were already imported) as encoder {report.encoder_id}\n"
            f"label events: " + (", ".join(f"{k} {v}" for k, v in report.labels.items()) or "none new")
            + (f"; already imported: {', '.join(report.labels_already)}" if report.labels_already else "")
            + "".join(f"\nskipped {label}: {why}" for label, why in report.labels_skipped.items())
            + f"\nvotes: {report.votes['named']} clips with named annotators, {report.votes['from_pos_cnt']} "
            f"unanimous from pos_cnt, {report.votes['aggregate_only']} aggregate only"
            f"\nthe home's encoder is now {report.encoder_id}; clips have no video (embeddings only)")
    return data, text
