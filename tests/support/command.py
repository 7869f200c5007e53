"""Running the `va` command in-process, as a test reads it: its one JSON answer."""
from __future__ import annotations

import json

from va_cli.main import main


def va_json(capsys, home, *argv) -> dict:
    """``va ARGV --home HOME --json``; its answer, after asserting it succeeded."""
    capsys.readouterr()
    code = main([*argv, "--home", str(home), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)
