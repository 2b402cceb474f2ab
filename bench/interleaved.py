"""Two versions of the worker compared under the same load: ``python -m bench.interleaved``.

Why: on a machine shared with other work, two ``bench.conversation`` runs one after the other
differ more by the load of the moment than by the code (``bench/README.md``, *the workflow
sandbox's lookups*: the same code measured 38.3 and 32.9 worker CPU ms per turn ten minutes apart).
Here both sides run at once on one dev server and one fake model: each side is a worker process
started from its own source tree (its own SQLite file and memory store, memory seeded as in
``bench.conversation``) with its own conversations, and the concurrent turns go in slices that
alternate between the sides (the order flipped every slice), so drifting load hits both alike.

    python -m bench.interleaved --side base=/path/to/copy --side after=. [--side NAME=DIR:no-stream]
                                [--conversations 50] [--turns 6] [--slices 8] [--memories 200]

``:no-stream`` starts that side's conversations with ``stream_tokens`` off. Prints, per side, turns/s
while its slices ran and the CPU its worker process and the dev server spent per turn (``/proc``),
with the load average before and after. Prints figures; never judges them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import WorkflowHandle

from bench.conversation import (AGENT, Target, daemonflow_env, daemonflow_target, load_average, progress,
                                seed_memories, start_dev_server)
from bench.fake_model import serve
from config.settings import Settings
from workers.process_exit import exit_without_finalization


@dataclass
class Side:
    name: str
    root: Path
    stream_tokens: bool = True
    target: Target | None = None
    handles: list[WorkflowHandle] = field(default_factory=list)
    worker_pid: int = 0
    turns: int = 0
    wall_s: float = 0.0
    worker_cpu_s: float = 0.0
    server_cpu_s: float = 0.0


def parse_side(text: str) -> Side:
    name, _, rest = text.partition("=")
    root, _, option = rest.partition(":")
    if not name or not root or option not in ("", "no-stream"):
        raise argparse.ArgumentTypeError(f"expected NAME=DIR or NAME=DIR:no-stream, got {text!r}")
    return Side(name, Path(root).resolve(), stream_tokens=option != "no-stream")


def cpu_s(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def dev_server_pid(address: str) -> int:
    port = address.rsplit(":", 1)[1]
    found = subprocess.run(["pgrep", "-n", "-f", f"start-dev --port {port}"], capture_output=True, text=True).stdout
    return int(found.split()[0])


@contextlib.contextmanager
def side_worker(side: Side, settings: Settings):
    """The side's worker, from its own tree (``cwd`` and ``PYTHONPATH``: ``-m`` imports from both)."""
    env = {**os.environ, **daemonflow_env(settings), "PYTHONPATH": str(side.root)}
    process = subprocess.Popen([sys.executable, "-m", "bench.worker", "daemonflow", settings.task_queue],
                               cwd=side.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        if process.stdout is None or process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {side.name} worker did not start")
        side.worker_pid = process.pid
        yield
    finally:
        if process.stdin:
            process.stdin.close()
        process.wait(30)


async def open_side(side: Side, client, settings: Settings, conversations: int) -> None:
    side.target = daemonflow_target(client, settings.task_queue, agent=AGENT, stream_tokens=side.stream_tokens)
    batch = uuid.uuid4().hex[:6]
    side.handles = await asyncio.gather(*(side.target.open(f"il-{side.name}-{batch}-{n}") for n in range(conversations)))
    await asyncio.gather(*(side.target.send(h, "warm-up") for h in side.handles))


async def one_slice(side: Side, server_pid: int, turns: int, label: str) -> None:
    assert side.target is not None
    target = side.target
    worker0, server0, started = cpu_s(side.worker_pid), cpu_s(server_pid), time.perf_counter()

    async def converse(handle: WorkflowHandle) -> None:
        for k in range(turns):
            await target.send(handle, f"{label} message {k}")

    await asyncio.gather(*(converse(h) for h in side.handles))
    side.wall_s += time.perf_counter() - started
    side.turns += turns * len(side.handles)
    side.worker_cpu_s += cpu_s(side.worker_pid) - worker0
    side.server_cpu_s += cpu_s(server_pid) - server0


async def run(args: argparse.Namespace) -> None:
    env = await start_dev_server()
    address = env.client.service_client.config.target_host
    sides: list[Side] = args.side
    try:
        with serve() as model_url, tempfile.TemporaryDirectory(prefix="daemonflow-interleaved-") as tmp, \
                contextlib.ExitStack() as workers:
            for side in sides:
                settings = Settings(_env_file=None, temporal_address=address, ollama_host=model_url,
                                    task_queue=f"il-{side.name}-{uuid.uuid4().hex[:6]}", var_dir=Path(tmp) / side.name,
                                    database_url=f"sqlite:///{Path(tmp) / side.name}.db")  # fmt: skip
                progress(f"{side.name}: seeding {args.memories} memories, starting its worker from {side.root}")
                await seed_memories(settings, args.memories)
                workers.enter_context(side_worker(side, settings))
                await open_side(side, env.client, settings, args.conversations)
            load_before = load_average()
            server_pid = dev_server_pid(address)
            for n in range(args.slices):
                for side in sides if n % 2 == 0 else list(reversed(sides)):
                    await one_slice(side, server_pid, args.turns, f"slice {n}")
                progress(f"slice {n + 1}/{args.slices} done (load {load_average()})")
            report(sides, args, load_before)
    finally:
        await env.shutdown()


def report(sides: list[Side], args: argparse.Namespace, load_before: str) -> None:
    print(f"interleaved: {args.conversations} conversations a side × {args.turns} turns × {args.slices} slices, "
          f"{args.memories} memories, SQLite records; {os.cpu_count()} CPUs")
    print(f"load average (/proc/loadavg) before: {load_before}; after: {load_average()}")
    print(f"{'side':<10}{'turns':>7}{'turns/s':>9}{'worker CPU ms/turn':>20}{'server CPU ms/turn':>20}  source")
    for side in sides:
        stream = "" if side.stream_tokens else " (stream_tokens off)"
        print(f"{side.name:<10}{side.turns:>7}{side.turns / side.wall_s:>9.1f}{1000 * side.worker_cpu_s / side.turns:>20.2f}"
              f"{1000 * side.server_cpu_s / side.turns:>20.2f}  {side.root}{stream}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.interleaved", description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=parse_side, action="append", required=True,
                        help="NAME=DIR[:no-stream]: a source tree to run a worker from (give two or more)")
    parser.add_argument("--conversations", type=int, default=50, help="concurrent conversations a side (50)")
    parser.add_argument("--turns", type=int, default=6, help="turns per conversation in a slice (6)")
    parser.add_argument("--slices", type=int, default=8, help="slices a side (8)")
    parser.add_argument("--memories", type=int, default=200, help="memories seeded in the agent's scope (200)")
    args = parser.parse_args(argv)
    if len(args.side) < 2:
        parser.error("give at least two --side")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
    exit_without_finalization(0)  # temporalio/sdk-python#300: see workers/process_exit.py
