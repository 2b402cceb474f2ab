"""A worker in a process of its own for ``bench.conversation``: Daemonflow's (``build_worker``,
every workflow and activity on one queue, settings from the environment) or the floor's.

``python -m bench.worker daemonflow|floor QUEUE [ROLES]`` prints ``ready`` once it polls and runs
until its stdin closes; ``ROLES`` (``main,sandbox`` or ``llm``, as ``daemonflow worker --queues``)
runs only those roles' workers, on the queues the environment's settings give them. The
benchmark's client, the workers and the fake model each get their own process, as an API, workers
and Ollama do in production: no worker pays the interpreter lock for the client's or the model
server's work, and several workers can share the machine's cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.llm import LlmProviders
from activities.memory import MemoryService
from bench.floor import FloorWorkflow, echo
from config.settings import Settings
from workers.main import build_worker, build_workers
from workers.queues import parse_roles
from workers.worker_group import Helpers


@contextlib.contextmanager
def worker_process(kind: str, task_queue: str, env: dict[str, str], roles: str = "") -> Iterator[subprocess.Popen]:
    """A worker process polling ``task_queue``; ``env`` adds to this process's environment."""
    command = [sys.executable, "-m", "bench.worker", kind, task_queue, *([roles] if roles else [])]
    process = subprocess.Popen(command, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env={**os.environ, **env})
    try:
        assert process.stdout is not None
        said = process.stdout.readline().strip()
        if said != "ready":
            raise RuntimeError(f"the {kind} worker did not start (said {said!r})")
        yield process
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


async def run(kind: str, task_queue: str, roles: str = "") -> None:
    settings = Settings(task_queue=task_queue)
    client = await Client.connect(settings.temporal_address, namespace=settings.namespace,
                                  data_converter=pydantic_data_converter)
    async with contextlib.AsyncExitStack() as running:
        if kind == "floor":
            workers = [Worker(client, task_queue=task_queue, workflows=[FloorWorkflow], activities=[echo])]
        else:
            workers = await _daemonflow_workers(client, settings, roles, running)
        for worker in workers:
            await running.enter_async_context(worker)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes our stdin


@contextlib.asynccontextmanager
async def in_process_worker(client: Client, settings: Settings) -> AsyncIterator[Worker]:
    """``build_worker`` running in this process (the benchmarks that share one process with their
    worker), its memory store and model connections closed once it stops."""
    async with contextlib.AsyncExitStack() as running:
        [worker] = await _daemonflow_workers(client, settings, "", running)
        yield await running.enter_async_context(worker)


async def _daemonflow_workers(client: Client, settings: Settings, roles: str,
                              running: contextlib.AsyncExitStack) -> list[Worker]:
    """As ``daemonflow worker`` builds them; the memory store and the model servers' connections
    are closed after the workers stop (a process left to close them at exit warns and may crash
    in the interpreter's finalisation)."""
    memory, providers = MemoryService.from_settings(settings), LlmProviders(settings)
    running.push_async_callback(providers.close)
    running.push_async_callback(memory.close)
    served = parse_roles(roles, settings)
    await running.enter_async_context(Helpers(settings, served, memory, settings.worker_processes - 1))
    if roles:
        return build_workers(client, settings, served, memory=memory, providers=providers)
    return [build_worker(client, settings, memory=memory, providers=providers)]


if __name__ == "__main__":
    asyncio.run(run(*sys.argv[1:4]))
