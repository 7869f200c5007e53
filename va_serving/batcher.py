"""Adaptive micro-batching of score requests inside the serving process.

Requests that arrive while a batch is being scored wait in a queue and are scored
together as the next batch, so the batch size follows the load: one row at a time
when idle, up to ``max_rows`` under pressure. ``max_wait_ms`` can additionally hold
a lone request briefly to collect company (off by default: it only adds latency
when the server is idle).

Validation happens before a request is queued, so a bad request never fails a
batch it shares with others; each job's result or error is delivered to that job.
"""
from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

J = TypeVar("J")
R = TypeVar("R")


@dataclass
class BatchStats:
    batches: int = 0
    jobs: int = 0
    rows: int = 0
    largest_rows: int = 0
    histogram: dict[int, int] = field(default_factory=dict)  # batch size in jobs -> count

    def record(self, jobs: int, rows: int) -> None:
        self.batches += 1
        self.jobs += jobs
        self.rows += rows
        self.largest_rows = max(self.largest_rows, rows)
        self.histogram[jobs] = self.histogram.get(jobs, 0) + 1

    def as_dict(self) -> dict:
        return {
            "batches": self.batches, "jobs": self.jobs, "rows": self.rows,
            "mean_jobs_per_batch": self.jobs / self.batches if self.batches else 0.0,
            "largest_batch_rows": self.largest_rows,
            "jobs_per_batch": dict(sorted(self.histogram.items())),
        }


class MicroBatcher(Generic[J, R]):
    """Queue jobs from many coroutines; score them in batches on one worker thread.

    ``compute(jobs)`` runs in a thread and returns one result (or an exception
    instance) per job, in order. ``rows(job)`` sizes a job.
    """

    def __init__(self, compute: Callable[[Sequence[J]], Sequence[R | BaseException]],
                 rows: Callable[[J], int], max_rows: int, max_wait_ms: float = 0.0):
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self._compute = compute
        self._rows = rows
        self.max_rows = max_rows
        self.max_wait = max_wait_ms / 1000.0
        self._queue: collections.deque[tuple[J, asyncio.Future]] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self.stats = BatchStats()

    async def submit(self, job: J) -> R:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = loop.create_task(self._run())
        future = loop.create_future()
        self._queue.append((job, future))
        self._wake.set()
        result = await future
        if isinstance(result, BaseException):
            raise result
        return result

    def _take(self) -> list[tuple[J, asyncio.Future]]:
        """The oldest jobs whose rows fit ``max_rows`` (always at least one job)."""
        taken, total = [], 0
        while self._queue:
            job, future = self._queue[0]
            n = self._rows(job)
            if taken and total + n > self.max_rows:
                break
            self._queue.popleft()
            if future.cancelled():  # the client went away
                continue
            taken.append((job, future))
            total += n
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            if self.max_wait > 0:
                deadline = time.monotonic() + self.max_wait
                while sum(self._rows(j) for j, _ in self._queue) < self.max_rows and time.monotonic() < deadline:
                    await asyncio.sleep(min(0.001, self.max_wait))
            batch = self._take()
            if not batch:
                continue
            jobs = [job for job, _ in batch]
            self.stats.record(len(jobs), sum(self._rows(j) for j in jobs))
            try:
                results = await loop.run_in_executor(None, self._compute, jobs)
                if len(results) != len(jobs):
                    raise RuntimeError(f"batch of {len(jobs)} jobs gave {len(results)} results")
            except Exception as exc:  # noqa: BLE001 - delivered to every waiting request
                results = [exc] * len(jobs)
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)
