"""A worker in a process of its own for ``bench.conversation``: Daemonflow's (``build_worker``,
every workflow and activity on one queue, settings from the environment) or the floor's.

``python -m bench.worker daemonflow|floor QUEUE`` prints ``ready`` once it polls and runs until its
stdin closes. The benchmark's client, the workers and the fake model each get their own process,
as an API, workers and Ollama do in production: no worker pays the interpreter lock for the
client's or the model server's work, and several workers can share the machine's cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from bench.floor import FloorWorkflow, echo
from config.settings import Settings
from workers.main import build_worker


@contextlib.contextmanager
def worker_process(kind: str, task_queue: str, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A worker process polling ``task_queue``; ``env`` adds to this process's environment."""
    process = subprocess.Popen([sys.executable, "-m", "bench.worker", kind, task_queue], stdin=subprocess.PIPE,
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


async def run(kind: str, task_queue: str) -> None:
    settings = Settings(task_queue=task_queue)
    client = await Client.connect(settings.temporal_address, namespace=settings.namespace,
                                  data_converter=pydantic_data_converter)
    if kind == "floor":
        worker = Worker(client, task_queue=task_queue, workflows=[FloorWorkflow], activities=[echo])
    else:
        worker = build_worker(client, settings)
    async with worker:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes our stdin


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2]))
