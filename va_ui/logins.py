"""A running app's login follows the users file, within about a second.

Gradio decides at mount time whether an app has a login and never forgets a session.
:class:`Logins` keeps the mounted Gradio app in step with :func:`va_ui.auth.read_door`
instead: a watcher thread sets the app's ``auth`` (None when the door is open, else a
check that reads the users file at each login), its login message (why the door is
closed), and drops the session tokens of users who were removed, of every user when the
door closes or opens, and of sessions older than ``VA_UI_SESSION_HOURS`` (default 12).
Every Gradio route reads ``auth`` and the tokens per request (its ``login_check``, the
page, ``/login``, ``queue/join``), so a change reaches requests already in flight as soon
as the watcher has seen it. tests/ui/test_logins.py holds this to the running app.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

from va_core.config import ConfigError
from va_ui.auth import CLOSED, LOGIN, OPEN, Door, read_door, seen_marker

log = logging.getLogger("va.ui")

LOGIN_MESSAGE = "Log in with your va user name."
DEFAULT_SESSION_HOURS = 12.0
WATCH_S = 0.5


def session_seconds() -> float:
    raw = os.environ.get("VA_UI_SESSION_HOURS", "").strip()
    if not raw:
        return DEFAULT_SESSION_HOURS * 3600
    try:
        hours = float(raw)
    except ValueError:
        raise ConfigError(f"VA_UI_SESSION_HOURS must be a number of hours, got {raw!r}") from None
    if not hours > 0:
        raise ConfigError(f"VA_UI_SESSION_HOURS must be more than 0, got {raw!r}")
    return hours * 3600


class Logins:
    def __init__(self, path: Path, session_s: float | None = None, watch_s: float = WATCH_S):
        self.path = path
        self.session_s = session_seconds() if session_s is None else session_s
        self.watch_s = watch_s
        self._app = None
        self._blocks = None
        self._born: dict[str, float] = {}  # session token -> when the watcher first saw it
        self._state: str | None = None
        self._stop = threading.Event()
        self._had_file = False

    def door(self) -> Door:
        """The door as the file says; a file this process has seen and that then vanished closes it,
        even when the marker could not be written (a read-only mount)."""
        door = read_door(self.path)
        if self.path.exists():
            self._had_file = True
            marker = seen_marker(self.path)
            if not marker.exists():
                try:
                    marker.touch()  # a users file written by hand counts as one written by the CLI
                except OSError:
                    pass
        elif door.state == OPEN and self._had_file:
            return Door(CLOSED, reason=f"the users file {self.path} was removed while the app ran: nobody can "
                                       "log in; add a user with `python -m va_ui.auth add NAME`, or let anyone "
                                       "type a name with `python -m va_ui.auth open`")
        return door

    def check(self, username, password) -> bool:
        """Gradio's login check: the users file as it is now; never raises."""
        try:
            return self.door().check(username, password)
        except Exception:  # noqa: BLE001 - a login that cannot be checked is refused, /login never 500s
            log.exception("login check failed; refused")
            return False

    def bind(self, gradio_app, blocks) -> "Logins":
        self._app, self._blocks = gradio_app, blocks
        self.apply()
        return self

    def apply(self) -> Door:
        """Make the mounted app follow the users file now."""
        door = self.door()
        app = self._app
        app.auth = None if door.state == OPEN else self.check
        self._blocks.auth_message = LOGIN_MESSAGE if door.state == LOGIN else f"This app is closed: {door.reason}"
        now = time.monotonic()
        for token, user in list(app.tokens.items()):
            born = self._born.setdefault(token, now)
            if door.state != LOGIN or user not in door.users or now - born > self.session_s:
                app.tokens.pop(token, None)
        for token in [t for t in self._born if t not in app.tokens]:
            del self._born[token]
        if door.state != self._state:
            print(f"va ui: logins {door.state}: {door.reason}", file=sys.stderr, flush=True)
            self._state = door.state
        return door

    def start(self) -> "Logins":
        threading.Thread(target=self._watch, name="va-logins", daemon=True).start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.watch_s):
            try:
                self.apply()
            except Exception:  # noqa: BLE001 - keep watching; a failed pass changes nothing
                log.exception("following the users file failed")

    def stop(self) -> None:
        self._stop.set()
