"""`va ui`, `va dagster` and `va serve`: each replaces this process with its server."""
from __future__ import annotations

import os
import sys

from va_core.servers import dagster_command, serve_command, ui_command


def _exec(command: tuple[list[str], dict[str, str]]) -> None:
    argv, env = command
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)


def cli_ui(args, settings):
    _exec(ui_command(settings, args.host, args.port))


def cli_dagster(args, settings):
    _exec(dagster_command(settings, args.host, args.port))


def cli_serve(args, settings):
    _exec(serve_command(settings, args.host, args.port))
