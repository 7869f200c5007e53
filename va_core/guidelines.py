"""Per-label guidelines: what counts as the label, in words and in pinned example clips.

``label_guidelines`` is append-only, like ``label_descriptions``. A ``text`` row sets the
label's guideline text (the latest wins); an ``example`` row pins a clip as a yes or a no
example (``value``) or unpins it (``value`` null); per clip the latest row wins. So two
people pinning clips at the same time are two blind appends and both pins land, and the
history of a guideline stays readable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import polars as pl

from va_core.errors import InputError, NotFound
from va_core.labels import existing_clip_keys, login_name, validate_label, validate_person
from va_core.warehouse import Warehouse

__all__ = ["guidelines", "pin_example", "problems", "set_text", "vanished_examples"]

TEXT, EXAMPLE = "text", "example"
MAX_GUIDELINE = 4000  # characters: a page an expert reads before answering
MAX_NOTE = 300
MAX_EXAMPLES = 24  # pinned clips per label: what the desk can show at a glance


@dataclass(frozen=True)
class Guidelines:
    label: str
    text: str = ""
    yes: list[dict] = field(default_factory=list)  # {clip_key, note, annotator, pinned_at}, newest first
    no: list[dict] = field(default_factory=list)
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def examples(self) -> list[str]:
        return [e["clip_key"] for e in self.yes + self.no]

    def as_dict(self) -> dict:
        return {"label": self.label, "text": self.text, "yes": self.yes, "no": self.no,
                "updated_at": self.updated_at.isoformat() if self.updated_at else None,
                "updated_by": self.updated_by}


def _who(annotator: str | None) -> str:
    return validate_person(annotator) if annotator is not None else login_name()


def set_text(wh: Warehouse, label: str, text: str, annotator: str | None = None) -> int:
    """Set a label's guideline text (empty text clears it); returns the table version."""
    validate_label(label)
    if not isinstance(text, str):
        raise InputError(f"a guideline is text, got {type(text).__name__}")
    text = text.strip()
    if len(text) > MAX_GUIDELINE:
        raise InputError(f"a guideline is at most {MAX_GUIDELINE} characters ({len(text)} given)")
    return wh.append("label_guidelines", [{
        "label": label, "kind": TEXT, "text": text, "clip_key": None, "value": None,
        "annotator": _who(annotator), "created_at": datetime.now(timezone.utc)}])


def pin_example(wh: Warehouse, label: str, clip_key: str, value: bool | None, annotator: str | None = None,
                note: str = "") -> int:
    """Pin ``clip_key`` as a yes (``value=True``) or no example of ``label``; ``None`` unpins it."""
    validate_label(label)
    if not isinstance(clip_key, str) or not clip_key:
        raise InputError(f"an example names its clip, got {clip_key!r}")
    if value is not None and not isinstance(value, bool):
        raise InputError(f"an example is a yes or a no example (or None to unpin), got {value!r}")
    note = (note or "").strip()
    if len(note) > MAX_NOTE or not note.isprintable():
        raise InputError(f"an example's note is at most {MAX_NOTE} printable characters")
    if not existing_clip_keys(wh, [clip_key]):
        raise NotFound(f"clip {clip_key!r} is not in the clips table")
    current = guidelines(wh, label)
    if value is not None and clip_key not in current.examples and len(current.examples) >= MAX_EXAMPLES:
        raise InputError(f"{label} has {MAX_EXAMPLES} pinned examples already: unpin one first")
    if value is None and clip_key not in current.examples:
        raise InputError(f"{clip_key} is not a pinned example of {label}")
    return wh.append("label_guidelines", [{
        "label": label, "kind": EXAMPLE, "text": note, "clip_key": clip_key, "value": value,
        "annotator": _who(annotator), "created_at": datetime.now(timezone.utc)}])


def guidelines(wh: Warehouse, label: str) -> Guidelines:
    """The label's current guideline text and pinned examples (latest row per item wins)."""
    validate_label(label)
    rows = wh.read("label_guidelines", where={"label": label})
    if rows.height == 0:
        return Guidelines(label)
    rows = rows.sort("created_at")
    texts = rows.filter(pl.col("kind") == TEXT)
    text = texts["text"][-1] if texts.height else ""
    pins = (rows.filter(pl.col("kind") == EXAMPLE).group_by("clip_key", maintain_order=True).last()
            .filter(pl.col("value").is_not_null()).sort("created_at", descending=True))

    def items(value: bool) -> list[dict]:
        return [{"clip_key": r["clip_key"], "note": r["text"] or "", "annotator": r["annotator"],
                 "pinned_at": r["created_at"].isoformat()} for r in pins.filter(pl.col("value") == value)
                .iter_rows(named=True)]

    last = rows.row(rows.height - 1, named=True)
    return Guidelines(label, text or "", items(True), items(False), last["created_at"], last["annotator"])


def problems(wh) -> list[str]:
    """Rows that break the table's rules (written around this module): kinds, example clips."""
    if not wh.exists("label_guidelines"):
        return []
    rows = wh.read("label_guidelines")
    found = []
    bad_kind = rows.filter(~pl.col("kind").is_in([TEXT, EXAMPLE]) | pl.col("kind").is_null())
    if bad_kind.height:
        found.append(f"{bad_kind.height} row(s) of unknown kind, e.g. {bad_kind['kind'][0]!r}")
    no_clip = rows.filter((pl.col("kind") == EXAMPLE) & pl.col("clip_key").is_null())
    if no_clip.height:
        found.append(f"{no_clip.height} example row(s) name no clip")
    return found


def vanished_examples(wh) -> list[str]:
    """Pinned example clips no longer in ``clips`` (a video cut again): shown as missing, not lost."""
    if not wh.exists("label_guidelines"):
        return []
    rows = wh.read("label_guidelines").filter((pl.col("kind") == EXAMPLE) & pl.col("clip_key").is_not_null())
    rows = rows.sort("created_at")
    pinned = (rows.group_by(["label", "clip_key"], maintain_order=True).last()
              .filter(pl.col("value").is_not_null()))
    if pinned.height == 0:
        return []
    known = existing_clip_keys(wh, pinned["clip_key"].to_list())
    return [f"{r['label']}: {r['clip_key']}" for r in pinned.iter_rows(named=True) if r["clip_key"] not in known]
