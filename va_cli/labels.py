"""`va label`, `va import-labels` and `va describe`: what people say about clips and labels."""
from __future__ import annotations

from va_core.labels import PROVENANCE, UNSURE, LabelEvent, import_label_file, label_set, record_events, set_description
from va_core.warehouse import Warehouse


def cli_label(args, settings):
    wh = Warehouse.from_settings(settings)
    label = args.label
    unsure = bool(args.unsure)  # --unsure: the answer "unsure" (no value)
    version = record_events(wh, [LabelEvent(label, args.clip_key, args.value, args.annotator, args.source,
                                            **{k: getattr(args, k, None) for k in PROVENANCE}, unsure=unsure)])
    ls = label_set(wh, label, version=version)
    data = {"label": label, "clip_key": args.clip_key, "value": args.value, "unsure": unsure,
            "label_events_version": version, **{k: v for k, v in ls.summary().items() if k != "label_events_version"}}
    text = (f"{label}: {args.clip_key} = {UNSURE if unsure else 'yes' if args.value else 'no'} "
            f"(now {ls.n_pos} positive, {ls.n_neg} negative, {ls.n_conflicts} conflicts)")
    return data, text


def cli_import_labels(args, settings):
    wh = Warehouse.from_settings(settings)
    version, rows = import_label_file(wh, args.file, annotator=args.annotator)
    labels = sorted({r["label"] for r in rows})
    summary = [label_set(wh, lab, version=version).summary() for lab in labels]
    data = {"file": str(args.file), "n_events": len(rows), "label_events_version": version, "labels": summary}
    text = f"imported {len(rows)} label events from {args.file}\n" + "\n".join(
        f"  {s['label']}: {s['n_pos']} positive, {s['n_neg']} negative, {s['n_conflicts']} conflicts" for s in summary)
    return data, text


def cli_describe(args, settings):
    label = args.label
    set_description(Warehouse.from_settings(settings), label, args.description)
    return ({"label": label, "description": args.description.strip()},
            f"{label}: description set to {args.description.strip()!r}")
