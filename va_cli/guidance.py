"""`va guidelines` and `va mistakes`: what a label means, and which of its answers to look at again."""
from __future__ import annotations

from va_core.errors import InputError
from va_core.guidelines import guidelines, pin_example, set_text
from va_core.mistakes import mistakes
from va_core.warehouse import Warehouse

EXAMPLE_VALUES = {"yes": True, "no": False}
MISTAKE_LISTS = (("yes_scored_low", "labelled yes, scored below the threshold"),
                 ("no_scored_high", "labelled no, scored at or above the threshold"),
                 ("conflicts", "the annotators disagree"))


def cli_guidelines(args, settings):
    """Show the label's guidelines, after setting the text or pinning or unpinning an example if asked."""
    if args.as_value is not None and args.pin is None:
        raise InputError("--as says what --pin CLIP_KEY is an example of: give --pin with it")
    if args.pin is not None and args.as_value is None:
        raise InputError("--pin CLIP_KEY needs --as yes or --as no: the example of what")
    if args.note and args.pin is None:
        raise InputError("--note is the note of a pinned example: give --pin with it")
    wh = Warehouse.from_settings(settings)
    changed = None
    if args.text is not None:
        set_text(wh, args.label, args.text, annotator=args.annotator)
        changed = "text set" if args.text.strip() else "text cleared"
    elif args.pin is not None:
        pin_example(wh, args.label, args.pin, EXAMPLE_VALUES[args.as_value], annotator=args.annotator,
                    note=args.note or "")
        changed = f"{args.pin} pinned as a {args.as_value} example"
    elif args.unpin is not None:
        pin_example(wh, args.label, args.unpin, None, annotator=args.annotator)
        changed = f"{args.unpin} unpinned"
    current = guidelines(wh, args.label)
    return {**current.as_dict(), "changed": changed}, format_guidelines(current.as_dict(), changed)


def format_guidelines(g: dict, changed: str | None = None) -> str:
    head = f"{g['label']}: {changed}" if changed else f"{g['label']}"
    if g["updated_by"]:
        head += f" (last change by {g['updated_by']} at {g['updated_at']})"
    lines = [head, "", g["text"] or f"(no guideline text: `va guidelines {g['label']} --text \"...\"`)"]
    for kind in ("yes", "no"):
        pins = g[kind]
        lines += ["", f"{kind} examples ({len(pins)}):"]
        lines += [f"  {e['clip_key']}" + (f"  {e['note']}" if e["note"] else "") + f"  (pinned by {e['annotator']})"
                  for e in pins] or ["  none"]
    return "\n".join(lines)


def cli_mistakes(args, settings):
    found = mistakes(Warehouse.from_settings(settings), args.label, model_version=args.version, k=args.k)
    return found, format_mistakes(found)


def format_mistakes(found: dict) -> str:
    if found["model_version"] is None:
        head = (f"{found['label']}: no model yet, so only the annotators' disagreements are listed "
                f"({found['n_labelled']} clips labelled)")
    else:
        head = (f"{found['label']} v{found['model_version']} (threshold {found['threshold']:.3f}), "
                f"{found['n_labelled']} clips labelled")
    lines = [head]
    for key, title in MISTAKE_LISTS:
        items = found[key]
        lines += ["", f"{title} ({len(items)}):"]
        lines += [_mistake_line(i) for i in items] or ["  none"]
    return "\n".join(lines)


def _mistake_line(item: dict) -> str:
    score = "-" if item["score"] is None else f"{item['score']:.3f}"
    unseen = "  (labelled after this version was trained)" if item["trained_on"] is False else ""
    return f"  {item['clip_key']}  score {score}  {item['votes']}{unseen}"
