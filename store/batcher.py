"""Store writes grouped into shared transactions: seed 004's ``AgentDatabaseBatcher``, measured.

Under concurrency every model call writes twice (the turn's pending rows, then its reply) from its
own thread. On SQLite writers take turns on one file lock, and a writer that finds it taken sleeps
in SQLite's busy handler (1, 2, 5, 10… ms); on PostgreSQL every commit waits for its WAL flush.
Here one thread per engine does all the writing: it takes the first waiting write, then whatever
else is already waiting — up to ``max_batch`` (10), waiting at most ``window_s`` (≤ 0.1 s; 0 takes
only what is there, so a lone write never waits) — runs them in one transaction and commits once.
A batch that fails is retried one write per transaction, so one bad write never fails the others.
Every write it runs is idempotent (``INSERT … ON CONFLICT DO NOTHING``, keyed ``UPDATE``s), so
running one twice is harmless. Whether it helps is measured by ``bench.conversation`` (section
"store writes"); ``DAEMONFLOW_STORE_BATCH`` turns it on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

MAX_BATCH = 10
MAX_WINDOW_S = 0.1

Write = Callable[[Connection], Any]


@dataclass
class _Job:
    write: Write
    done: Future = field(default_factory=Future)


class WriteBatcher:
    def __init__(self, engine: Engine, max_batch: int = MAX_BATCH, window_s: float = 0.0) -> None:
        if not 1 <= max_batch <= MAX_BATCH or not 0 <= window_s <= MAX_WINDOW_S:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} writes and waits 0 to {MAX_WINDOW_S} s")
        self._engine = engine
        self._max_batch = max_batch
        self._window_s = window_s
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.writes = 0

    def run(self, write: Write) -> Any:
        """Run ``write`` (statements on the connection it is given) in the next batch; blocks the
        calling thread until that batch is committed, and returns what ``write`` returned."""
        job = _Job(write)
        self._start()
        self._queue.put(job)
        return job.done.result()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="store-writer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            deadline = time.monotonic() + self._window_s
            while len(jobs) < self._max_batch:
                try:
                    left = deadline - time.monotonic()
                    job = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)  # stop after this batch
                    break
                jobs.append(job)
            self._commit(jobs)

    def _commit(self, jobs: list[_Job]) -> None:
        self.batches += 1
        self.writes += len(jobs)
        try:
            with self._engine.begin() as connection:
                results = [job.write(connection) for job in jobs]
        except Exception:  # noqa: BLE001 - each write then fails or succeeds on its own
            if len(jobs) > 1:
                log.info("a batch of %d store writes failed; writing them one by one", len(jobs), exc_info=True)
            for job in jobs:
                self._alone(job)
            return
        for job, result in zip(jobs, results, strict=True):
            job.done.set_result(result)

    def _alone(self, job: _Job) -> None:
        try:
            with self._engine.begin() as connection:
                job.done.set_result(job.write(connection))
        except Exception as err:  # noqa: BLE001 - handed to the caller
            job.done.set_exception(err)
