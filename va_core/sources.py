"""Where the clips to label come from: one stored feed, the zero-shot feed, or the label's
policy choosing among them (``next``). It sits above ``feeds`` and ``policy`` because ``next``
needs the policy and the policy needs the feeds."""

from __future__ import annotations

from va_core.errors import InputError
from va_core.feeds import (NEXT, SAMPLED, ZERO_SHOT, all_feeds, latest_model_version, random_unlabelled, stored_feed,
                           with_clip_info, zero_shot)
from va_core.labels import label_set, validate_label, warehouse_of
from va_core.policy import next_clips

__all__ = ["get_feed", "cli_feeds"]


def get_feed(settings, label: str, feed: str | None = None, k: int = 10, encoder_id: str | None = None) -> list[dict]:
    """Clips to label next: one feed, ``zero_shot``, or ``next``/None (the label's policy chooses)."""
    validate_label(label)
    if not isinstance(k, int) or k <= 0:
        raise InputError(f"k must be a positive number of clips, got {k!r}")
    if feed == ZERO_SHOT:
        return zero_shot(settings, label, k, encoder_id)
    if feed in (None, NEXT):
        return next_clips(settings, label, k, encoder_id=encoder_id)["clips"]
    wh = warehouse_of(settings)
    if feed in SAMPLED and latest_model_version(wh, label) is None:
        # no model scores to stratify by yet: an audit is a uniform draw (one stratum)
        items = random_unlabelled(settings, label, k, label_set(wh, label).labelled, encoder_id)
        return with_clip_info(wh, [{**i, "feed": feed} for i in items])
    return stored_feed(settings, label, feed, k)


def cli_feeds(args, settings):
    label = validate_label(args.label)
    if args.feed is None:
        groups = all_feeds(settings, label, args.k)
    elif args.feed == NEXT:
        choice = next_clips(settings, label, args.k)
        groups = {choice["source"]: choice["clips"]}
    else:
        groups = {args.feed: get_feed(settings, label, args.feed, args.k)}
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
    return {"label": label, "feeds": groups}, "\n".join(lines)
