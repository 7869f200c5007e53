"""`va ingest` and `va search`: the corpus."""
from __future__ import annotations

import polars as pl

from va_core.encoders import parse_spec
from va_core.ingest import ingest
from va_core.search import search_text


def cli_ingest(args, settings):
    report = ingest(settings, args.paths, progress=True)
    return report.to_dict(), report.summary()


def format_results(results: pl.DataFrame) -> str:
    if results.is_empty():
        return "no clips"
    lines = [f"{'#':>3}  {'score':>6}  {'clip_key':<40}  {'start':>7}  {'end':>7}  video"]
    for r in results.iter_rows(named=True):
        lines.append(f"{r['rank']:>3}  {r['score']:6.3f}  {r['clip_key']:<40}  {r['start_s'] or 0:7.2f}  "
                     f"{r['end_s'] or 0:7.2f}  {r['uri']}")
    return "\n".join(lines)


def cli_search(args, settings):
    results = search_text(settings, args.query, args.k)
    spec = parse_spec(settings.encoder)
    text = format_results(results)
    data = {"query": args.query, "encoder_id": spec.encoder_id, "results": results.to_dicts()}
    if not spec.has_semantics:
        note = f"{spec.encoder_id} has random weights: these scores carry no meaning"
        data["warning"] = note
        text += f"\nnote: {note}"
    return data, text
