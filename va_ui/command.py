"""Command-line entry points of the labelling app (`va ui`, `python -m va_ui.auth`): their exit status."""
from __future__ import annotations

import sys
from typing import Callable

from va_core.errors import VAError


def exit_status(prefix: str, command: Callable[[], object]) -> int:
    """Run a command-line entry point: 0, or 2 with ``<prefix>error: ...`` on stderr when it fails with a VAError."""
    try:
        command()
    except VAError as exc:
        print(f"{prefix}error: {exc}", file=sys.stderr)
        return 2
    return 0
