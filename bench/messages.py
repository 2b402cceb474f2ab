"""What a private message costs: a person's message to an agent, accepted and answered, against a
plain conversation turn of the same agent.

Run ``python -m bench.messages [--quick]``. It starts its own Temporal dev server, a fake Ollama that
answers at once (embeddings by content words, so a coding question is within the developer's
expertise and a remark on the weather is not), a real worker on a temporary SQLite file, and
measures from the client, one after another:

- **conversation turn**: ``send_message`` to a ``developer`` conversation (what ``bench.conversation``
  measures);
- **message, answered**: ``Messages.send`` then its result — the ``message-<id>`` workflow admits
  it (hops, the recipient's open messages in one locked transaction, the expertise similarity, the
  recipient's model asked "accept?"), the developer's ``dm-developer`` conversation answers it as
  a turn, and the message completes with the reply (checked on every message);
- **message, refused**: the same path up to the expertise check, which refuses it before any model
  is asked: the cost of saying no.

It prints latencies, the model calls per message and the message workflow's history bytes, with
the load average; it never judges them.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path


from bench.channel import conversation_turns, history_bytes, percentile
from bench.conversation import load_average, machine_info, profiled_args, progress, start_dev_server, temporal_binary
from bench.worker import in_process_worker
from config.settings import Settings
from control.conversations import Conversations
from control.messages import Messages
from models.private_messages import MessageState, message_workflow_id
from store.engine import make_engine
from store.private_messages import PrivateMessageStore
from tests.fakes.ollama import FakeOllama
from tests.message_support import CODING, FIX, WEATHER, agents_answer
from workers.process_exit import exit_without_finalization

PROFILES = {"default": dict(messages=40, warmup=3), "quick": dict(messages=10, warmup=2)}


async def messages_sent(messages: Messages, content: str, expected: MessageState, n: int,
                        warmup: int) -> tuple[list[float], str]:
    """Latencies from send to the message's end, and the last message's workflow id."""
    latencies, last = [], ""
    for i in range(warmup + n):
        began = time.perf_counter()
        sent = await messages.send(messages.request("alice", "developer", content))  # the fake's embeddings
        # hash words: a varying suffix could land a remark on the weather inside the expertise
        done = await messages.result(sent.message_id)
        if done.state != expected or (expected == MessageState.COMPLETED and done.reply != FIX):
            raise SystemExit(f"message {i} ended {done.state} ({done.reason}), not {expected}: the fake is off")
        if i >= warmup:
            latencies.append(time.perf_counter() - began)
        last = message_workflow_id(sent.message_id)
    return latencies, last


async def measure(args: argparse.Namespace) -> dict:
    env = await start_dev_server()
    try:
        with FakeOllama() as ollama, tempfile.TemporaryDirectory(prefix="daemonflow-bench-messages-") as tmp:
            agents_answer(ollama)
            settings = Settings(_env_file=None, temporal_address=env.client.service_client.config.target_host,
                                task_queue=f"bench-messages-{uuid.uuid4().hex[:8]}", var_dir=Path(tmp) / "var",
                                database_url=f"sqlite:///{Path(tmp) / 'daemonflow.db'}", ollama_host=ollama.url)  # fmt: skip
            messages = Messages(env.client, settings, PrivateMessageStore(make_engine(settings.effective_database_url)), 60)
            async with in_process_worker(env.client, settings):
                progress(f"  conversation: {args.warmup} warm-up + {args.messages} turns")
                turns = await conversation_turns(Conversations(env.client, settings.task_queue, 60), args.messages,
                                                 args.warmup)  # fmt: skip
                progress(f"  messages answered: {args.warmup} warm-up + {args.messages}")
                ollama.reset()
                agents_answer(ollama)
                answered, workflow_id = await messages_sent(messages, CODING, MessageState.COMPLETED, args.messages,
                                                            args.warmup)  # fmt: skip
                calls = (len(ollama.chat_requests()) + len(ollama.structured_requests())) / (args.messages + args.warmup)
                progress(f"  messages refused: {args.warmup} warm-up + {args.messages}")
                refused, _ = await messages_sent(messages, WEATHER, MessageState.REFUSED, args.messages, args.warmup)
                answered_bytes = await history_bytes(env, workflow_id)
    finally:
        await env.shutdown()
    return dict(turns=turns, answered=answered, refused=refused, calls=calls, answered_bytes=answered_bytes)


def report(figures: dict, args: argparse.Namespace, load_before: str) -> None:
    turns = figures["turns"]
    print(f"# bench.messages — {machine_info(temporal_binary())}")
    print(f"# 1-min load average {load_before} before, {load_average()} after; fake Ollama answering at once")
    print(f"# {args.messages} measured (after {args.warmup} warm-up) of each, one after another")
    print(f"{'':28}{'p50 ms':>9}{'p95 ms':>9}{'p50 vs turn':>13}")
    rows = [("conversation turn", turns), ("message, accepted+answered", figures["answered"]),
            ("message, refused (expertise)", figures["refused"])]  # fmt: skip
    for name, values in rows:
        ratio = percentile(values, 0.5) / percentile(turns, 0.5)
        print(f"{name:28}{percentile(values, 0.5):>9.1f}{percentile(values, 0.95):>9.1f}{ratio:>12.2f}x")
    print(f"# an answered message: {figures['calls']:.1f} model calls (accept? and the reply); "
          f"its workflow's history {figures['answered_bytes'] / 1024:.1f} KiB")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.messages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, help="measured messages of each kind and turns (default 40, quick 10)")
    parser.add_argument("--warmup", type=int, help="warm-up of each, not measured (default 3, quick 2)")
    return profiled_args(parser, argv, PROFILES)


async def run(args: argparse.Namespace) -> None:
    load_before = load_average()
    progress("starting Temporal dev server, fake Ollama and a worker")
    report(await measure(args), args, load_before)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
    exit_without_finalization(0)  # temporalio/sdk-python#300: see workers/process_exit.py
