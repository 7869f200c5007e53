"""Run every benchmark: `python -m benchmarks [--full] [NAME ...]`.

Without --full each runs in its --quick mode (small sizes, a smoke run of the whole set);
the README's tables come from the full runs, one benchmark at a time on an idle machine.
"""
from __future__ import annotations

import argparse
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the full sizes (minutes to an hour each)")
    parser.add_argument("only", nargs="*", metavar="NAME", help=f"among: {', '.join(names())}")
    args = parser.parse_args(argv)
    chosen = args.only or names()
    unknown = sorted(set(chosen) - set(names()))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose among {names()}")
    failed = []
    for name in chosen:
        cmd = [sys.executable, "-m", f"benchmarks.{name}"] + ([] if args.full else ["--quick"])
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.call(cmd, cwd=HERE.parent)
        print(f"== {name}: exit {code} after {time.perf_counter() - started:.0f} s\n", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
