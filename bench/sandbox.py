"""What a sandboxed tool call costs before the tool does any work.

Run ``python -m bench.sandbox [--cold N] [--warm N]`` on a machine with the Docker engine and the
sandbox image (``deploy/provision-docker.sh``). It measures, through ``SandboxManager`` exactly as
the worker uses it:

- **cold start**: a new conversation's first use: volume + hardened container created and started
  (``ensure``), then its first ``true``;
- **warm exec**: ``true`` in an existing container (exec create, stream, exit code, plus the
  wrapper's ``touch`` and ``timeout``): the floor of every sandbox tool call;
- **warm exec, capped output**: ``seq 1 100000`` (589 KB), cut to 30,000 characters for the model
  and written whole to an artifact;
- **file round trip**: ``write_file`` then ``read_file`` of 10 KB through tar streams;
- **tool round trip**: a whole turn on a real Temporal dev server where the (fake, zero-delay)
  model asks for ``run_command true``, the policy allows it, ``ToolExecutionWorkflow`` runs it in
  the sandbox and the result goes back to the model, against the same turn without a tool call.

Conversations it creates are removed at the end (volumes too). It prints figures; it never judges
them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker

from activities.sandbox import SandboxManager, connect_docker
from config.settings import Settings
from models.sandbox import ExecRequest
from workers.process_exit import exit_without_finalization


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _row(name: str, samples: list[float]) -> str:
    if len(samples) >= 2:
        cuts = statistics.quantiles(samples, n=100, method="inclusive")
        p50, p95 = cuts[49], cuts[94]
    else:
        p50 = p95 = samples[0]
    return f"{name:<34} {len(samples):>4} {p50:>9.1f} {p95:>9.1f} {min(samples):>9.1f} {max(samples):>9.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", type=int, default=5, help="cold starts to measure (default 5)")
    parser.add_argument("--warm", type=int, default=30, help="warm execs to measure (default 30)")
    parser.add_argument("--turns", type=int, default=20, help="turns with and without a tool call (default 20)")
    args = parser.parse_args(argv)

    settings = Settings()
    client = connect_docker()
    with tempfile.TemporaryDirectory(prefix="daemonflow-bench-") as artifacts:
        _bench(args, settings, client, SandboxManager(client, settings, Path(artifacts)))
    with_tool, without = asyncio.run(_round_trips(args.turns))
    print(_row("turn without a tool call", without))
    print(_row("turn with `run_command true`", with_tool))
    print(f"tool round trip (p50 difference)   {statistics.median(with_tool) - statistics.median(without):>9.1f} ms")


async def _round_trips(turns: int) -> tuple[list[float], list[float]]:
    """Turn latencies with and without one sandboxed tool call, on a real dev server."""
    from bench.conversation import daemonflow_target, start_dev_server
    from bench.worker import in_process_worker
    from tests.fakes.ollama import FakeOllama, Reply, ToolCall

    def responder(request: dict) -> Reply:
        last = request["messages"][-1]
        if last["role"] == "user" and last["content"].startswith("tool"):
            return Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "true"})])
        return Reply(content="done")

    env = await start_dev_server()
    try:
        with FakeOllama() as ollama, tempfile.TemporaryDirectory(prefix="daemonflow-bench-") as tmp:
            ollama.responder = responder
            settings = Settings(
                _env_file=None, temporal_address=env.client.service_client.config.target_host,
                task_queue=f"bench-tools-{uuid.uuid4().hex[:8]}", var_dir=Path(tmp) / "var",
                database_url=f"sqlite:///{Path(tmp) / 'daemonflow.db'}", ollama_host=ollama.url,
            )
            allow = [{"id": "bench-true", "decision": "allow", "tools": ["run_command"], "command": ["exact:true"]}]
            target = daemonflow_target(env.client, settings.task_queue, agent="developer", policy=allow)
            async with in_process_worker(env.client, settings):
                conversation = await target.open(f"bench-{uuid.uuid4().hex[:8]}")
                await target.send(conversation, "tool warm-up")  # creates the sandbox: not measured
                samples: dict[str, list[float]] = {"tool": [], "plain": []}
                for _ in range(turns):
                    for kind in samples:
                        started = time.perf_counter()
                        await target.send(conversation, f"{kind} turn")
                        samples[kind].append((time.perf_counter() - started) * 1000)
                worker_sandbox = SandboxManager(connect_docker(), settings, Path(tmp))
                worker_sandbox.remove(conversation.id.removeprefix("conversation-"), volumes=True)
    finally:
        await env.shutdown()
    return samples["tool"], samples["plain"]


def _bench(args: argparse.Namespace, settings: Settings, client: docker.DockerClient, manager: SandboxManager) -> None:
    run_id = uuid.uuid4().hex[:8]
    made: list[str] = []

    def new_conversation(tag: str) -> str:
        made.append(f"bench-{run_id}-{tag}")
        return made[-1]

    def exec_(conversation_id: str, command: str) -> None:
        result = manager.exec(ExecRequest(conversation_id=conversation_id, command=command))
        if result.exit_code != 0:
            sys.exit(f"bench: {command!r} failed ({result.exit_code}): {result.output[-500:]}")

    engine = client.version()
    print(
        f"# sandbox bench: image {settings.sandbox_image}, engine {engine.get('Version')} "
        f"(API {client.api.api_version}), runtime {manager.runtime or 'runc (default)'}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    try:
        ensure, first_exec = [], []
        for i in range(args.cold):
            conversation_id = new_conversation(f"cold{i}")
            ensure.append(_timed(lambda: manager.ensure(conversation_id)))
            first_exec.append(_timed(lambda: exec_(conversation_id, "true")))
        cold = [a + b for a, b in zip(ensure, first_exec, strict=True)]

        warm_id = new_conversation("warm")
        exec_(warm_id, "true")  # create, not measured
        for _ in range(3):
            exec_(warm_id, "true")  # warm-up
        warm = [_timed(lambda: exec_(warm_id, "true")) for _ in range(args.warm)]
        capped = [_timed(lambda: exec_(warm_id, "seq 1 100000")) for _ in range(max(args.warm // 3, 2))]
        payload = "x" * 10_000
        files = [
            _timed(lambda: (manager.write_file(warm_id, "bench.txt", payload), manager.read_file(warm_id, "bench.txt")))
            for _ in range(max(args.warm // 3, 2))
        ]
    finally:
        for conversation_id in made:
            manager.remove(conversation_id, volumes=True)

    print(f"{'figure (ms)':<34} {'n':>4} {'p50':>9} {'p95':>9} {'min':>9} {'max':>9}")
    print(_row("cold: create + start container", ensure))
    print(_row("cold: first exec `true`", first_exec))
    print(_row("cold: total to first result", cold))
    print(_row("warm exec `true`", warm))
    print(_row("warm exec `seq 1 100000` (capped)", capped))
    print(_row("write_file + read_file 10 KB", files))


if __name__ == "__main__":
    main()
    exit_without_finalization(0)  # temporalio/sdk-python#300: see workers/process_exit.py
