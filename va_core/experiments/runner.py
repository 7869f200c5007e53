"""Running an experiment over many labels: a process pool, a progress bar, a resumable table.

Each label is one task. Its rows are written to the output as soon as it finishes (the
whole file is rewritten atomically), so an interrupted run loses at most the labels in
flight, and the next run skips every label already in the file. A label whose worker
raises is reported and left out of the file, so the next run tries it again.
"""
from __future__ import annotations

import logging
import os
import sys
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

from va_core.errors import InputError
from va_core.experiments.dataset import VADataset

__all__ = ["RunReport", "open_dataset", "read_table", "run_labels"]

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".parquet": "parquet"}


@lru_cache(maxsize=4)
def open_dataset(data_dir: str) -> VADataset:
    """One reader per process and folder: its key index is built once per worker."""
    return VADataset(data_dir)


@dataclass
class RunReport:
    out: Path
    labels: list[str]
    ran: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def output_format(out: Path) -> str:
    try:
        return FORMATS[out.suffix.lower()]
    except KeyError:
        raise InputError(f"--out {out}: the extension must be .csv or .parquet") from None


def _dtype(kind: str):
    import polars as pl

    return {"str": pl.String, "int": pl.Int64, "float": pl.Float64}[kind]


def read_table(out: Path, columns: dict[str, str]):
    """The rows already in ``out`` (empty if it does not exist), checked against ``columns``."""
    import polars as pl

    schema = {c: _dtype(k) for c, k in columns.items()}
    if not out.exists():
        return pl.DataFrame(schema=schema)
    try:
        frame = pl.read_csv(out, schema_overrides=schema) if output_format(out) == "csv" else pl.read_parquet(out)
    except Exception as exc:  # a half-written or foreign file: say which
        raise InputError(f"cannot read the existing output {out}: {exc}") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{out} exists but is not this experiment's table (no column {', '.join(missing)}); "
                         "choose another --out")
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


def write_table(out: Path, frame) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if output_format(out) == "csv":
        frame.write_csv(tmp)
    else:
        frame.write_parquet(tmp)
    tmp.replace(out)


def run_labels(task: Callable[..., list[dict]], data_dir: str, labels: Sequence[str], out: Path,
               columns: dict[str, str], workers: int | None = None, desc: str = "labels",
               **params) -> RunReport:
    """Run ``task(data_dir, label, **params)`` for every label not yet in ``out``."""
    import polars as pl
    from tqdm import tqdm

    output_format(out)
    schema = {c: _dtype(k) for c, k in columns.items()}
    table = read_table(out, columns)
    done = set(table["label"].unique().to_list())
    report = RunReport(out, list(labels))
    report.resumed = [label for label in labels if label in done]
    todo = [label for label in labels if label not in done]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))

    def finished(label: str, rows: list[dict]) -> None:
        nonlocal table
        table = pl.concat([table, pl.DataFrame(rows, schema=schema, orient="row")])
        write_table(out, table)
        report.ran.append(label)

    bar = tqdm(total=len(todo), desc=desc, unit="label", file=sys.stderr, disable=not todo)
    try:
        if workers == 1:
            for label in todo:
                bar.set_postfix_str(label)
                try:
                    finished(label, task(data_dir, label, **params))
                except Exception as exc:  # noqa: BLE001 - reported per label, the run goes on
                    report.failed[label] = _describe(exc)
                bar.update()
        else:
            import multiprocessing

            # spawn: workers start clean (no inherited threads or open files), one dataset reader each
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_one_thread_each) as pool:
                pending = {pool.submit(task, data_dir, label, **params): label for label in todo}
                while pending:
                    done_now, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done_now:
                        label = pending.pop(fut)
                        try:
                            finished(label, fut.result())
                        except Exception as exc:  # noqa: BLE001
                            report.failed[label] = _describe(exc)
                        bar.set_postfix_str(label)
                        bar.update()
    finally:
        bar.close()
    for label, error in report.failed.items():
        log.warning("%s: label %s failed: %s", desc, label, error)
    return report


def _one_thread_each() -> None:
    """The pool already uses every core; BLAS threads inside each worker would fight over them."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _describe(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    loc = f" ({Path(where[0].filename).name}:{where[0].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{loc}"
