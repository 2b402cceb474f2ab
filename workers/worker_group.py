"""A worker of several processes on one machine: ``daemonflow worker --processes N``
(``DAEMONFLOW_WORKER_PROCESSES``).

Why: a worker process runs its Python under one interpreter lock. At 50 conversations at once on
2 cores, the benchmark's worker spent 16–23 ms of CPU per turn, most of it holding that lock,
while the machine had a core to spare. In one run of the benchmark a helper made it 65.5 turns/s
against 44.0 (the floor: 104.2; ``bench.conversation``, *Figures* in ``bench/README.md``).

The first process is the worker as before: every role it was given, schedules, sandboxes, the
metrics endpoints and the embedded memory store. The others, its *helpers*, poll the main queue
for workflow tasks only (``no_remote_activities``) and run the local activities those tasks start:
a quick turn's model step, a channel's and a plan's local steps — the hot path of a turn. Activities
proper (tools, extraction, archiving…) stay with the first process. A helper reaches the embedded
Qdrant Edge store through the first process (``activities/memory/shared_store.py``: the engine
admits one process); a Qdrant server or pgvector it opens itself.

A helper gets its settings and the store's address on its stdin, then watches it: when the first
process goes, for any reason, its stdin closes and the helper stops (no orphan polls on). One that
exits on its own is started again, after 1 s doubling to 60 s while it keeps failing. Helpers run
in sessions of their own: a terminal's Ctrl-C reaches the first process only, which stops them
(SIGTERM, their running steps may finish) before its own workers. Helpers have
no metrics endpoint of their own: ``/metrics`` counts the first process's share of the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from config.settings import Settings

if TYPE_CHECKING:
    from activities.memory import MemoryService
    from activities.memory.shared_store import ShareAddress

log = logging.getLogger("daemonflow.worker")

RESTART_FIRST_S = 1.0
RESTART_MOST_S = 60.0
STOP_WAIT_S = 25.0
"""How long a stopping helper may take: its workers' graceful shutdown (20 s, ``workers/main.py``) and its exit."""
READY_S = 60.0
"""How long the first process waits for its helpers to poll before it says so and goes on."""
STEADY_S = 60.0
"""A helper that ran this long before exiting starts again after the first pause, not the last."""


class GroupError(ValueError):
    """``--processes`` that this worker cannot honour (say, without the main role)."""


@dataclass(frozen=True)
class HelperSpec:
    """What a helper is told on its stdin (pickled: settings keep their secrets off the command line)."""

    settings: Settings
    roles: tuple[str, ...]
    share: ShareAddress | None


MOST_PROCESSES = 64
"""As ``Settings.worker_processes`` allows; one per core is the useful most."""


def check_processes(processes: int, roles: tuple[str, ...]) -> None:
    if not 1 <= processes <= MOST_PROCESSES:
        raise GroupError(f"--processes must be from 1 to {MOST_PROCESSES} (got {processes}); one per core is the useful most")
    if processes > 1 and "main" not in roles:
        raise GroupError("--processes above 1 needs the main role: helpers take the main queue's workflow tasks")


class Helpers:
    """``count`` helper processes beside this one, while entered (the first process's side)."""

    def __init__(self, settings: Settings, roles: tuple[str, ...], memory: MemoryService, count: int) -> None:
        self._settings = settings.model_copy(update={"metrics_port": 0, "temporal_metrics_port": 0})
        self._roles = roles
        self._memory = memory
        self._count = count
        self._stopping = asyncio.Event()
        self._share: contextlib.AsyncExitStack | None = None
        self._running: list[asyncio.Task[None]] = []
        self._ready = [asyncio.Event() for _ in range(count)]
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        """Each helper slot's current process."""

    async def __aenter__(self) -> Helpers:
        if self._count <= 0:
            return self
        from activities.memory.edge_backend import EdgeMemoryStore  # noqa: PLC0415 - memory stack only when used
        from activities.memory.shared_store import StoreShare  # noqa: PLC0415

        self._share = contextlib.AsyncExitStack()
        share = None
        if isinstance(self._memory.store, EdgeMemoryStore):
            share = (await self._share.enter_async_context(StoreShare(self._memory.store))).address
        spec = pickle.dumps(HelperSpec(self._settings, self._roles, share))
        self._running = [asyncio.create_task(self._keep(slot, spec), name=f"helper-{slot}") for slot in range(self._count)]
        try:
            await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in self._ready)), READY_S)
            log.info("%d helper process(es) polling for workflow tasks", self._count)
        except TimeoutError:
            log.warning("helper processes not all polling after %.0f s; going on without waiting", READY_S)
        return self

    async def _keep(self, slot: int, spec: bytes) -> None:
        pause = RESTART_FIRST_S
        while not self._stopping.is_set():
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                said = await self._run_once(slot, spec)
            except OSError as err:  # could not even start it (no memory for a process, say)
                said = f"could not start ({err})"
                self._ready[slot].set()
            if self._stopping.is_set():
                return
            pause = RESTART_FIRST_S if loop.time() - started > STEADY_S else pause
            log.error("helper process %s; starting it again in %.0f s", said, pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
            pause = min(pause * 2, RESTART_MOST_S)

    async def _run_once(self, slot: int, spec: bytes) -> str:
        """One helper process from start to exit; says how it ended."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workers.worker_group", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            start_new_session=True)  # a terminal's Ctrl-C reaches the first process, which stops its helpers itself
        self.processes[slot] = process
        assert process.stdin is not None and process.stdout is not None
        with contextlib.suppress(ConnectionError):  # it died at once: its exit code says why
            process.stdin.write(spec)
            await process.stdin.drain()
        await process.stdout.readline()  # "ready", or nothing if it failed first
        self._ready[slot].set()
        return f"{process.pid} exited (code {await process.wait()})"

    async def __aexit__(self, *exc: object) -> None:
        """Helpers stop first (their running local steps may finish), then the store's share."""
        self._stopping.set()
        for process in self.processes.values():
            if process.stdin is not None:
                process.stdin.close()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                await asyncio.wait_for(process.wait(), STOP_WAIT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self._share is not None:
            await self._share.aclose()


async def run_helper(spec: HelperSpec, ready: TextIO) -> None:
    """A helper's life: workflow tasks and local activities until SIGTERM, SIGINT or its stdin closes."""
    from activities.llm import LlmProviders  # noqa: PLC0415 - heavy; only in the helper
    from activities.memory import MemoryService  # noqa: PLC0415
    from activities.memory.shared_store import SharedMemoryStore  # noqa: PLC0415
    from workers.client import connect  # noqa: PLC0415
    from workers.main import build_helper_workers  # noqa: PLC0415
    from workers.telemetry import setup_tracing, shutdown_tracing  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    threading.Thread(target=_until_stdin_closes, args=(loop, stop), name="parent-watch", daemon=True).start()
    settings = spec.settings
    setup_tracing(settings, "daemonflow-worker")
    client = await connect(settings)
    memory = MemoryService.from_settings(settings, SharedMemoryStore(spec.share) if spec.share else None)
    providers = LlmProviders(settings)
    try:
        async with contextlib.AsyncExitStack() as running:
            for worker in build_helper_workers(client, settings, spec.roles, memory, providers):
                await running.enter_async_context(worker)
            ready.write("ready\n")
            ready.close()
            await stop.wait()
    finally:
        await memory.close()
        await providers.close()
        shutdown_tracing()


def _until_stdin_closes(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """On a thread of its own (a blocked read in the loop's executor would hold up its shutdown)."""
    sys.stdin.buffer.read()
    with contextlib.suppress(RuntimeError):  # the loop is already closed: the helper has stopped
        loop.call_soon_threadsafe(stop.set)


def main() -> None:
    from workers.logs import configure_logging  # noqa: PLC0415

    ready = os.fdopen(os.dup(1), "w")  # "ready" goes to the first process; anything else printed, to stderr
    os.dup2(2, 1)
    spec: HelperSpec = pickle.load(sys.stdin.buffer)
    configure_logging(spec.settings)
    asyncio.run(run_helper(spec, ready))


if __name__ == "__main__":
    main()
