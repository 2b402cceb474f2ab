"""What a channel adds to a turn: a post answered by one agent against a plain conversation turn.

Run ``python -m bench.channel [--quick]``. It starts its own Temporal dev server, a fake Ollama that
answers at once (embeddings by content words, so a coding question routes to the developer only), a
real worker on a temporary SQLite file, and measures from the client, one after another:

- **conversation turn**: ``send_message`` to a ``developer`` conversation (what ``bench.conversation``
  measures);
- **channel post**: ``post`` to a channel of ``developer``, ``analyst`` and ``moderator`` whose
  developer answers (checked on every post): the post stored, scored for three agents (one
  similarity activity, the pure scoring, the records), the developer asked through
  ``request_turn`` — the same conversation turn — its reply stored and scored by the two others.

Then it runs ``bench.relevance`` for the cost of scoring one post for 3, 10 and 50 agents. It
prints figures and the load average; it never judges them.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench import relevance
from bench.conversation import load_average, machine_info, profiled_args, progress, start_dev_server, temporal_binary
from bench.worker import in_process_worker
from config.settings import Settings
from control.channels import Channels
from control.conversations import Conversations
from models.channel import ChannelInput, Post, PostResult
from models.conversation import ConversationInput
from tests.channel_support import ANSWERS, CODING, TEAM
from tests.fakes.ollama import FakeOllama, by_system_prompt, content_word_embedding
from workers.process_exit import exit_without_finalization

PROFILES = {"default": dict(posts=60, warmup=5, relevance_posts=20), "quick": dict(posts=15, warmup=3, relevance_posts=5)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def conversation_turns(conversations: Conversations, n: int, warmup: int) -> list[float]:
    started = await conversations.start(ConversationInput(conversation_id=f"bench-{uuid.uuid4().hex[:8]}",
                                                          agent="developer"), "bench")  # fmt: skip
    latencies = []
    for i in range(warmup + n):
        began = time.perf_counter()
        await started.conversation.send(f"{CODING} (case {i})", wait_s=None)
        if i >= warmup:
            latencies.append(time.perf_counter() - began)
    return latencies


async def channel_posts(channels: Channels, n: int, warmup: int) -> tuple[list[float], int, str]:
    """Latencies, how many posts the developer alone answered, and the channel's workflow id."""
    channel = await channels.start(ChannelInput(channel_id=f"bench{uuid.uuid4().hex[:8]}", agents=TEAM,
                                                people=["alice"]), "bench")  # fmt: skip
    latencies, alone = [], 0
    for i in range(warmup + n):
        began = time.perf_counter()
        result = await channel.post(Post(author="alice", content=f"{CODING} (case {i})"), wait_s=None)
        if i >= warmup:
            latencies.append(time.perf_counter() - began)
            alone += isinstance(result, PostResult) and result.spoke == ["developer"]
    return latencies, alone, channel.workflow_id


async def history_bytes(env: WorkflowEnvironment, workflow_id: str) -> int:
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    return len(history.to_json())


async def measure(args: argparse.Namespace) -> dict:
    env = await start_dev_server()
    try:
        with FakeOllama() as ollama, tempfile.TemporaryDirectory(prefix="daemonflow-bench-channel-") as tmp:
            ollama.embedder = content_word_embedding
            ollama.responder = by_system_prompt({f'You are "{agent}"': text for agent, text in ANSWERS.items()},
                                                default=lambda request: ANSWERS["developer"])  # fmt: skip
            settings = Settings(_env_file=None, temporal_address=env.client.service_client.config.target_host,
                                task_queue=f"bench-channel-{uuid.uuid4().hex[:8]}", var_dir=Path(tmp) / "var",
                                database_url=f"sqlite:///{Path(tmp) / 'daemonflow.db'}", ollama_host=ollama.url)  # fmt: skip
            async with in_process_worker(env.client, settings):
                progress(f"  conversation: {args.warmup} warm-up + {args.posts} turns")
                turns = await conversation_turns(Conversations(env.client, settings.task_queue, 60), args.posts, args.warmup)
                ollama.reset()
                progress(f"  channel: {args.warmup} warm-up + {args.posts} posts")
                posts, alone, workflow_id = await channel_posts(Channels(env.client, settings.task_queue, 60),
                                                                args.posts, args.warmup)  # fmt: skip
                bytes_per_post = await history_bytes(env, workflow_id) / (args.posts + args.warmup)
    finally:
        await env.shutdown()
    return dict(turns=turns, posts=posts, alone=alone, bytes_per_post=bytes_per_post)


def report(figures: dict, args: argparse.Namespace, load_before: str) -> None:
    turns, posts = figures["turns"], figures["posts"]
    print(f"# bench.channel — {machine_info(temporal_binary())}")
    print(f"# 1-min load average {load_before} before, {load_average()} after; fake Ollama answering at once")
    print(f"# {args.posts} measured (after {args.warmup} warm-up), one after another; "
          f"{figures['alone']}/{args.posts} posts answered by the developer alone")
    print(f"{'':26}{'p50 ms':>9}{'p95 ms':>9}")
    print(f"{'conversation turn':26}{percentile(turns, 0.5):>9.1f}{percentile(turns, 0.95):>9.1f}")
    print(f"{'channel post, 1 answers':26}{percentile(posts, 0.5):>9.1f}{percentile(posts, 0.95):>9.1f}")
    print(f"{'ratio':26}{percentile(posts, 0.5) / percentile(turns, 0.5):>8.2f}x"
          f"{percentile(posts, 0.95) / percentile(turns, 0.95):>8.2f}x")
    print(f"# channel history: {figures['bytes_per_post'] / 1024:.1f} KiB per post (3 agents, 1 reply)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.channel", description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, help="measured posts and turns (default 60, quick 15)")
    parser.add_argument("--warmup", type=int, help="warm-up posts and turns, not measured (default 5, quick 3)")
    parser.add_argument("--relevance-posts", type=int, help="posts per size in bench.relevance (default 20, quick 5)")
    return profiled_args(parser, argv, PROFILES)


async def run(args: argparse.Namespace) -> None:
    load_before = load_average()
    progress("starting Temporal dev server, fake Ollama and a worker")
    figures = await measure(args)
    report(figures, args, load_before)
    print()
    await relevance.main([3, 10, 50], max(2, args.relevance_posts))


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
    exit_without_finalization(0)  # temporalio/sdk-python#300: see workers/process_exit.py
