"""What a turn through Daemonflow costs over the model itself, with a real model answering.

Run ``python -m bench.real_model [--turns N] [--max-tokens M]`` after ``make local-model``. It
starts a Temporal dev server, the two local ``llama-server`` processes (SmolLM2-135M, as
``daemonflow dev`` runs them) and a Daemonflow worker on a throw-away SQLite file, then alternates:

- **daemonflow**: a ``send_message`` update to a fresh conversation, timed at the client (store
  the message, read the window, the streamed model call, store the reply and its usage, history);
- **direct**: the same messages (the same system prompt and question) sent straight to the chat
  server with the ``openai`` client, streamed, timed the same way.

The agent is greedy (temperature 0), without tools and without memory, so both sides generate the
same tokens (the table shows both counts) and the difference is Daemonflow's. Warm-up rounds are
not counted; the order alternates so the machine's drift hits both. Prints figures with the
1-minute load average before and after; it never judges them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import openai
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.llm.openai_provider import FRESH_CONNECTIONS
from activities.prompt import build_system_prompt
from bench.conversation import load_average, machine_info, progress, start_dev_server, temporal_binary
from bench.worker import in_process_worker
from config.settings import Settings
from config.templates import load_template
from models.conversation import ConversationInput, SendMessage, conversation_workflow_id
from workers.local_model import LocalModel, LocalModelServers, cache_dir, run_local_model
from workers.process_exit import exit_without_finalization
from workflows.conversation import ConversationWorkflow

QUESTION = "Explain in a few sentences why the sky is blue."
BENCH_TEMPLATE = """\
description: Benchmark agent (greedy, no tools, no memory).
temperature: 0
tools: []
memory: false
system_prompt: You are a helpful assistant.
"""


@dataclass
class Side:
    seconds: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    first_token_s: list[float] = field(default_factory=list)
    retried: int = 0
    """Direct calls sent again after a connection error (Daemonflow's activity retries by itself,
    and that time is in its figures)."""

    def add(self, seconds: float, tokens: int, first_token_s: float | None = None) -> None:
        self.seconds.append(seconds)
        self.tokens.append(tokens)
        if first_token_s is not None:
            self.first_token_s.append(first_token_s)


async def daemonflow_turn(client: Client, task_queue: str) -> tuple[float, int]:
    conversation_id = f"bench-{uuid.uuid4().hex[:10]}"
    handle = await client.start_workflow(
        ConversationWorkflow.run, ConversationInput(conversation_id=conversation_id, agent="bench"),
        id=conversation_workflow_id(conversation_id), task_queue=task_queue,
    )
    started = time.perf_counter()
    result = await handle.execute_update(ConversationWorkflow.send_message, SendMessage(content=QUESTION))
    elapsed = time.perf_counter() - started
    await handle.terminate("benchmark done")
    return elapsed, result.usage.completion_tokens


async def direct_turn(client: openai.AsyncOpenAI, settings: Settings) -> tuple[float, int, float]:
    """The same messages Daemonflow sends (system prompt with the date, then the question)."""
    template = load_template("bench", settings.agents_dir)
    system = build_system_prompt(template, datetime.now(UTC))
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    stream = await client.chat.completions.create(
        model=settings.model, messages=[{"role": "system", "content": system}, {"role": "user", "content": QUESTION}],
        stream=True, stream_options={"include_usage": True}, max_tokens=settings.max_tokens, temperature=0.0,
    )
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    ended = time.perf_counter()
    return ended - started, tokens, (first or ended) - started


async def measure(env: WorkflowEnvironment, servers: LocalModelServers, tmp: Path, args: argparse.Namespace) -> tuple[Side, Side]:
    agents = tmp / "agents"
    agents.mkdir()
    (agents / "bench.yaml").write_text(BENCH_TEMPLATE)
    base = Settings(
        _env_file=None, temporal_address=env.client.service_client.config.target_host,
        task_queue=f"bench-real-{uuid.uuid4().hex[:8]}", var_dir=tmp / "var",
        database_url=f"sqlite:///{tmp / 'daemonflow.db'}", agents_dir=agents, schedules="off",
    )
    settings = servers.settings_for(base).model_copy(update={"max_tokens": args.max_tokens})
    direct = openai.AsyncOpenAI(  # as the provider connects: a fresh connection per call, no retries
        base_url=settings.openai_base_url, api_key="no-key", max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(limits=FRESH_CONNECTIONS),
    )
    ours, theirs = Side(), Side()
    async with in_process_worker(env.client, settings):
        for round_ in range(args.warmup + args.turns):
            counted = round_ >= args.warmup
            order = ("daemonflow", "direct") if round_ % 2 == 0 else ("direct", "daemonflow")
            for side in order:
                if side == "daemonflow":
                    figures = await daemonflow_turn(env.client, settings.task_queue)
                    if counted:
                        ours.add(*figures)
                else:
                    try:
                        figures = await direct_turn(direct, settings)
                    except openai.APIConnectionError as err:
                        progress(f"  direct call failed ({err.__cause__ or err}); sending it again")
                        theirs.retried += 1
                        figures = await direct_turn(direct, settings)
                    if counted:
                        theirs.add(*figures)
            progress(f"  round {round_ + 1}/{args.warmup + args.turns}{'' if counted else ' (warm-up)'}")
    await direct.close()
    return ours, theirs


async def run(args: argparse.Namespace) -> None:
    local = LocalModel.find()
    if local is None:
        raise SystemExit(f"no local model in {cache_dir()}: run `make local-model` first")
    binary = temporal_binary()
    progress(f"starting Temporal dev server ({binary}) and the local model ({local.server})")
    env = await start_dev_server()
    load_before = load_average()
    try:
        with tempfile.TemporaryDirectory(prefix="daemonflow-bench-") as tmp:
            async with run_local_model(local, Path(tmp) / "logs") as servers:
                ours, theirs = await measure(env, servers, Path(tmp), args)
    finally:
        await env.shutdown()
    report(ours, theirs, args, f"{machine_info(binary)} · 1-min load average {load_before} before, {load_average()} after")


def report(ours: Side, theirs: Side, args: argparse.Namespace, machine: str) -> None:
    ms = lambda values, f: f(values) * 1000  # noqa: E731
    rows = [
        ("median turn (ms)", ms(ours.seconds, statistics.median), ms(theirs.seconds, statistics.median)),
        ("mean turn (ms)", ms(ours.seconds, statistics.mean), ms(theirs.seconds, statistics.mean)),
        ("min turn (ms)", ms(ours.seconds, min), ms(theirs.seconds, min)),
        ("completion tokens", statistics.mean(ours.tokens), statistics.mean(theirs.tokens)),
    ]
    print()
    print(f"machine:  {machine}")
    print(f"model:    SmolLM2-135M-Instruct Q4_1 on llama-server, greedy, max_tokens {args.max_tokens}")
    print(f"turns:    {args.turns} per side after {args.warmup} warm-up rounds, alternating; question {QUESTION!r}")
    print()
    print(f"{'metric':<20}{'daemonflow':>12}{'direct':>10}{'ratio':>8}")
    for name, a, b in rows:
        print(f"{name:<20}{a:>12.1f}{b:>10.1f}{a / b:>7.2f}x")
    overhead = statistics.median(ours.seconds) - statistics.median(theirs.seconds)
    generation = [t / (s - f) for t, s, f in zip(theirs.tokens, theirs.seconds, theirs.first_token_s) if s > f]
    print()
    print(f"overhead:  {overhead * 1000:.0f} ms per turn (median daemonflow − median direct)")
    print(f"tokens/s:  {statistics.median(generation):.1f} generating (direct, after the first token), "
          f"{statistics.median(t / s for t, s in zip(ours.tokens, ours.seconds)):.1f} end to end through Daemonflow")
    print(f"first token (direct): {ms(theirs.first_token_s, statistics.median):.0f} ms median")
    if theirs.retried:
        print(f"note:      {theirs.retried} direct call(s) failed to connect and were sent again (not timed)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.real_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=10, help="measured turns per side (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up rounds, not counted (default 2)")
    parser.add_argument("--max-tokens", type=int, default=128, help="generation cap of every answer (default 128)")
    args = parser.parse_args(argv)
    if args.turns < 1:
        parser.error("need at least 1 measured turn")
    return args


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
    exit_without_finalization(0)  # temporalio/sdk-python#300: see workers/process_exit.py
