"""`va feeds`: the clips to label next, with how each was chosen."""
from __future__ import annotations

from va_core.sources import NEXT, all_feeds, get_feed, next_clips


def format_feeds(label: str, groups: dict[str, list[dict]]) -> str:
    lines = []
    for name, items in groups.items():
        lines.append(f"{label} / {name}:")
        for i in items:
            how = i.get("provenance") or {}
            drawn = (f"  [{how['draw_id']} stratum {how.get('stratum', 0)}, p={how['inclusion_prob']:.4g}]"
                     if how.get("draw_id") else "")
            lines.append(f"  {i['rank']:>3}  {'-' if i['score'] is None else format(i['score'], '.4f'):>6}  "
                         f"{i['clip_key']}{drawn}")
        if not items:
            lines.append("  (no unlabelled clip left)")
    if any(i.get("provenance") for items in groups.values() for i in items):
        lines.append("label with how each clip was chosen: `va label LABEL KEY --yes --source FEED` plus the item's "
                     "provenance as options (--rank, --chosen-by-version, --draw-id, ...; see --json)")
    return "\n".join(lines)


def cli_feeds(args, settings):
    label = args.label  # validated by the feed functions
    if args.feed is None:
        groups = all_feeds(settings, label, args.k)
    elif args.feed == NEXT:
        choice = next_clips(settings, label, args.k)
        groups = {choice["source"]: choice["clips"]}
    else:
        groups = {args.feed: get_feed(settings, label, args.feed, args.k)}
    return {"label": label, "feeds": groups}, format_feeds(label, groups)
