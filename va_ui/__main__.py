"""``python -m va_ui --host H --port P``: what ``va ui`` runs (VA_HOME and VA_ENCODER from the environment)."""
from __future__ import annotations

import argparse
import sys

from va_core.config import Settings
from va_ui.command import exit_status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="va ui", description="serve the labelling app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    from va_ui.server import serve

    def run() -> None:
        settings = Settings.from_env()
        print(f"va ui: http://{args.host}:{args.port}/ (home {settings.home})", file=sys.stderr, flush=True)
        serve(settings, args.host, args.port)

    return exit_status("va ui: ", run)


if __name__ == "__main__":
    sys.exit(main())
