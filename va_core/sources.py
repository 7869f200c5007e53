"""Where the clips to label come from: one stored feed, the zero-shot feed, or the label's
policy choosing among them (``next``). It sits above ``feeds`` and ``policy`` because ``next``
needs the policy and the policy needs the feeds."""

from __future__ import annotations

from va_core.errors import InputError
from va_core.feeds import (NEXT, SAMPLED, ZERO_SHOT, latest_model_version, random_unlabelled, stored_feed,
                           with_clip_info, zero_shot)
from va_core.labels import label_set, validate_label
from va_core.policy import next_clips
from va_core.warehouse import Warehouse

__all__ = ["get_feed"]


def get_feed(settings, label: str, feed: str | None = None, k: int = 10, encoder_id: str | None = None) -> list[dict]:
    """Clips to label next: one feed, ``zero_shot``, or ``next``/None (the label's policy chooses)."""
    validate_label(label)
    if not isinstance(k, int) or k <= 0:
        raise InputError(f"k must be a positive number of clips, got {k!r}")
    if feed == ZERO_SHOT:
        return zero_shot(settings, label, k, encoder_id)
    if feed in (None, NEXT):
        return next_clips(settings, label, k, encoder_id=encoder_id)["clips"]
    wh = Warehouse.from_settings(settings)
    if feed in SAMPLED and latest_model_version(wh, label) is None:
        # no model scores to stratify by yet: an audit is a uniform draw (one stratum)
        items = random_unlabelled(settings, label, k, label_set(wh, label).labelled, encoder_id)
        return with_clip_info(wh, [{**i, "feed": feed} for i in items])
    return stored_feed(settings, label, feed, k)
