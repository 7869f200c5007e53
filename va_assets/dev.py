"""`va dagster`: make sure the local instance is configured, then become `dagster dev`.

    python -m va_assets.dev [-h HOST] [-p PORT]

DAGSTER_HOME must be set (``va dagster`` sets it under VA_HOME). The instance config is
written once from ``dagster.local.yaml``; a file already there is the user's and is kept.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("dagster.local.yaml")


def ensure_instance_config(dagster_home: Path) -> Path:
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    if not target.exists():
        tmp = target.with_suffix(".yaml.tmp")
        tmp.write_text(TEMPLATE.read_text())
        tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m va_assets.dev", add_help=False)
    parser.add_argument("-h", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=3000)
    args = parser.parse_args(argv)
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        print("DAGSTER_HOME is not set; start Dagster with `va dagster`", file=sys.stderr)
        return 2
    ensure_instance_config(Path(home))
    dagster = shutil.which("dagster", path=os.path.dirname(sys.executable)) or "dagster"
    argv = [dagster, "dev", "-m", "va_assets.definitions", "-h", args.host, "-p", str(args.port)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(argv[0], argv)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
