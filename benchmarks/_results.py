"""What every benchmark shares: timing summaries, its markdown table, and its JSON result.

A result is written to ``benchmarks/results/<name>.json`` (``<name>_quick.json`` with
--quick) with the benchmark's name, the date and the machine it ran on, so that numbers
from different runs can be told apart; the table goes to stdout, where it was written to
stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def arguments(doc: str, quick: str) -> argparse.ArgumentParser:
    """A benchmark's command line: described by its docstring's first line, with --quick (``quick`` says what it runs)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    return parser


def machine() -> dict:
    # the load average says how much the other work on a shared machine may have slowed a run
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_average": os.getloadavg()}


def path_for(name: str, quick: bool, ext: str = "json") -> Path:
    """Where a benchmark's result file (json, or a plot) goes; the folder is made if missing."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / f"{name}{'_quick' if quick else ''}.{ext}"


def _plain(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")


def save(name: str, quick: bool, payload: dict, started: float | None = None) -> Path:
    """Write the result file; ``started`` (a ``time.time()``) adds the run's wall seconds."""
    out = {"benchmark": name, "quick": quick, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": machine()}
    if started is not None:
        out["seconds"] = round(time.time() - started, 1)
    out.update(payload)
    path = path_for(name, quick)
    path.write_text(json.dumps(out, indent=2, default=_plain) + "\n")
    return path


def report(table: str, *written: Path) -> None:
    print(table)
    print(f"\nwrote {' and '.join(map(str, written))} "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", file=sys.stderr)


def markdown(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A markdown table; ``align`` has one letter per column, ``l`` or ``r`` (default: all right)."""
    align = align or "r" * len(header)
    if len(align) != len(header) or any(len(r) != len(header) for r in rows):
        raise ValueError(f"{len(header)} columns, but align {align!r} and rows of {sorted({len(r) for r in rows})}")
    lines = [header, [":---" if a == "l" else "---:" for a in align], *rows]
    return "\n".join("| " + " | ".join(map(str, cells)) + " |" for cells in lines)


def p50(values) -> float:
    import numpy as np

    return float(np.median(values))


def percentile(values, q) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q))


def timed(fn, repeats: int, warmup: int = 0) -> tuple[list[float], object]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones, and the last result."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out
