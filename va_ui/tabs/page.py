"""What every tab shares: the header's components and the way events are wired."""
from __future__ import annotations

import functools
import threading
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


def session_of(request: gr.Request | None) -> str | None:
    """The page's session (one per page load), None outside a page."""
    return getattr(request, "session_hash", None) if request else None


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


class AnswerOrder:
    """The last press stored for each card of each page, so a card keeps its last answer.

    A grid card's answer is a request of its own (answers to different cards must not wait for
    each other), and two presses on one card within ~100 ms reached the server in either
    order: the earlier one, stored last, won. Each press carries the page's running number
    (``seq``, GRID_JS); an answer older than one already stored for the same card of the same
    page is not stored. Cards are locked in stripes, so an answer to one card waits only for
    another answer that hashes to its stripe.
    """

    STRIPES = 64
    KEPT = 100_000  # cards remembered; the oldest are forgotten first

    def __init__(self):
        from collections import OrderedDict

        self._stripes = [threading.Lock() for _ in range(self.STRIPES)]
        self._guard = threading.Lock()
        self._latest: OrderedDict = OrderedDict()

    def store(self, session: str | None, label: str, clip_key: str, seq, write) -> bool:
        """``write()`` unless a later press on this card of this page was stored; whether it was."""
        if session is None or not isinstance(seq, int) or isinstance(seq, bool):
            write()  # a press without a number (a page from before numbering): stored as it comes
            return True
        card = (session, label, clip_key)
        with self._stripes[hash(card) % self.STRIPES]:
            with self._guard:
                if self._latest.get(card, -1) >= seq:
                    return False
            write()
            with self._guard:
                self._latest[card] = seq
                self._latest.move_to_end(card)
                while len(self._latest) > self.KEPT:
                    self._latest.popitem(last=False)
        return True


ANSWER_ORDER = AnswerOrder()


def answer_card(settings, chosen: str | None, data: dict, name: str, source: str,
                provenance: dict | None = None, session: str | None = None) -> str:
    """A grid card's answer (its event data: ``clip_key`` and ``value``, or ``unsure``, and the
    press's ``seq``) stored as a label event from ``source``; the status line after it.
    ``session``: the page's session, which with ``seq`` orders the presses (:class:`AnswerOrder`)."""
    if not chosen:
        raise InputError("pick a label first")
    unsure = data.get("unsure") is True
    key = data.get("clip_key")
    stored = ANSWER_ORDER.store(session, chosen, key, data.get("seq"), lambda: h.mark(
        settings, chosen, key, None if unsure else data.get("value"), name, source, provenance, unsure=unsure))
    status = panels.label_status(h.label_summary(settings, chosen))
    return status if stored else f"{status}\n\nA later answer to {key} was stored already: this one was not."
