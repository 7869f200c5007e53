"""What every tab shares: the header's components and the way events are wired."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import gradio as gr

from va_core.errors import InputError, VAError
from va_ui import handlers as h
from va_ui import panels


@dataclass(frozen=True)
class Page:
    """The header every tab reads: the chosen label, who is labelling, the status line."""

    settings: object
    label: gr.Dropdown
    name: gr.Textbox
    status: gr.Markdown
    tabs: gr.Tabs


def refused_as_message(fn):
    """Refusals from va_core become a message on screen, not a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VAError as exc:
            raise gr.Error(str(exc), duration=8) from exc

    return wrapper


def who(request: gr.Request | None, typed: str | None) -> str:
    return h.annotator_name(getattr(request, "username", None) if request else None, typed)


def wire(event, fn, inputs, outputs, status=None, **kwargs):
    """``event(fn, inputs, outputs)``, where a refusal keeps every output as it was.

    A refusal from va_core shows as a message (in ``status`` when that is an output,
    and as a notice), never as error badges on the outputs: the page stays usable.
    """
    outputs = list(outputs)

    @functools.wraps(fn)
    def kept(*args, **kw):
        try:
            return fn(*args, **kw)
        except VAError as exc:
            gr.Warning(str(exc), duration=8)
            kept_as_is = [gr.update() for _ in outputs]
            if status is not None and status in outputs:
                kept_as_is[outputs.index(status)] = f"**Not done:** {exc}"
            return kept_as_is[0] if len(outputs) == 1 else tuple(kept_as_is)

    return event(kept, inputs, outputs, **kwargs)


def answer_card(settings, chosen: str | None, data: dict, name: str, source: str,
                provenance: dict | None = None) -> str:
    """A grid card's answer (its event data: ``clip_key`` and ``value``, or ``unsure``) stored as
    a label event from ``source``; the status line after it."""
    if not chosen:
        raise InputError("pick a label first")
    unsure = data.get("unsure") is True
    h.mark(settings, chosen, data.get("clip_key"), None if unsure else data.get("value"), name, source, provenance,
           unsure=unsure)
    return panels.label_status(h.label_summary(settings, chosen))
