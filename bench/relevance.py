"""What it costs to decide who speaks about one post, for channels of 3, 10 and 50 agents.

Run ``python -m bench.relevance [--posts P] [--sizes 3,10,50]`` from the repository root. For each
channel size N, N agent templates (six expertise entries and a description each) are written to a
temporary agents folder, P posts (each naming the 6 before it as recent messages, by reference to
a SQLite store) are scored one after another, and the script prints:

- **similarities, first post**: the ``relevance.similarities`` activity with an empty cache:
  every expertise entry is embedded (one ``embed()`` call, ``DAEMONFLOW_EMBED_BATCH_SIZE`` = 32
  texts per HTTP request);
- **similarities, later posts** (median and p95): the same activity once entries and earlier
  posts are cached: one HTTP request with the new post alone;
- **embed requests / texts per post** for both;
- **scoring** (median and p95 of repeated calls): ``relevance.score_post`` alone, the pure part a
  workflow runs, and per agent;
- **history bytes**: the JSON size of the activity's result (what the workflow records) and of the
  scored post (what a channel would return), per agent.

The fake Ollama (``tests/fakes/ollama.py``, a real HTTP server on 127.0.0.1) answers at once, so
the activity's figures are Daemonflow's cost (HTTP, JSON, store reads, template loading,
cosines), not a model's: add your embedding model's time for one short text. Everything runs in
one process beside whatever else the machine does: the 1-minute load average is printed before
and after. This prints figures; it never judges them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from temporalio.testing import ActivityEnvironment

from activities.memory.embeddings import Embedder
from activities.relevance import RelevanceActivities
from config.settings import Settings
from models.relevance import RelevanceConfig
from models.relevance_scoring import (
    AgentProfile,
    AgentState,
    PostContext,
    RecentMessage,
    Similarities,
    SimilarityRequest,
    TextRef,
)
from relevance import score_post
from store.engine import make_engine
from store.transcript import TranscriptStore
from tests.fakes.ollama import FakeOllama

TOPICS = ["python", "sql", "charts", "sales", "docker", "pytest", "tone", "budget", "security", "latency",
          "forecasts", "git", "kubernetes", "csv", "metrics", "ux", "legal", "hiring", "onboarding", "billing"]
RECENT = 6
CHANNEL = "bench"


def write_templates(folder: Path, n: int) -> list[str]:
    names = []
    for i in range(n):
        topics = [TOPICS[(i + k) % len(TOPICS)] for k in range(6)]
        template = {"description": f"Specialist number {i} for {topics[0]} and {topics[1]}.",
                    "expertise": [f"{t} questions and {t} reviews for team {i}" for t in topics], "system_prompt": "You help."}
        (folder / f"agent-{i}.yaml").write_text(yaml.safe_dump(template), encoding="utf-8")
        names.append(f"agent-{i}")
    return names


def post_text(i: int) -> str:
    return f"Post {i}: can someone look at the {TOPICS[i % len(TOPICS)]} and {TOPICS[(3 * i) % len(TOPICS)]} problem we saw?"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def similarities_run(fake: FakeOllama, settings: Settings, names: list[str], posts: int) -> list[dict]:
    """Time the activity on ``posts`` consecutive posts; returns one row per post."""
    transcript = TranscriptStore(make_engine(settings.effective_database_url))
    embedder = Embedder.from_settings(settings)
    activities = RelevanceActivities(embedder, transcript, settings)
    env = ActivityEnvironment()
    rows = []
    for seq in range(1, posts + 1):
        transcript.append(CHANNEL, seq, "user", post_text(seq))
        request = SimilarityRequest(
            post=TextRef(conversation_id=CHANNEL, seq=seq),
            recent={str(s): TextRef(conversation_id=CHANNEL, seq=s) for s in range(max(1, seq - RECENT), seq)},
            agents=[AgentProfile(agent=name) for name in names],
        )
        before = fake.embed_requests()
        started = time.perf_counter()
        result = await env.run(activities.similarities, request)
        elapsed = time.perf_counter() - started
        sent = fake.embed_requests()[len(before):]
        rows.append({"seconds": elapsed, "requests": len(sent), "texts": sum(len(r["input"]) for r in sent),
                     "result": result})
    await embedder.close()
    transcript.engine.dispose()
    return rows


def scoring_run(names: list[str], similarities: Similarities, repeats: int) -> tuple[list[float], int]:
    now = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    post = PostContext(channel_id=CHANNEL, message_id="p", author="alice", author_kind="person", at=now,
                       recent=[RecentMessage(message_id=m, author="bob", at=now - timedelta(minutes=2))
                               for m in similarities.recent])
    agents = [AgentState(agent=name, active_tasks=i % 3, last_spoke_at=now - timedelta(minutes=4 * i))
              for i, name in enumerate(names)]
    config = RelevanceConfig()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = score_post(config, post, agents, similarities)
        timings.append(time.perf_counter() - started)
    return timings, len(result.model_dump_json())


async def bench_size(fake: FakeOllama, root: Path, n: int, posts: int) -> dict:
    folder = root / f"agents-{n}"
    folder.mkdir()
    names = write_templates(folder, n)
    settings = Settings(ollama_host=fake.url, agents_dir=folder, var_dir=root / f"var-{n}",
                        database_url=f"sqlite:///{root / f'bench-{n}.db'}")
    rows = await similarities_run(fake, settings, names, posts)
    last = rows[-1]["result"]
    timings, post_bytes = scoring_run(names, last, repeats=max(20, 2000 // n))
    later = [r["seconds"] for r in rows[1:]]
    return {
        "n": n, "first_ms": rows[0]["seconds"] * 1000, "first_requests": rows[0]["requests"],
        "first_texts": rows[0]["texts"], "later_p50_ms": statistics.median(later) * 1000,
        "later_p95_ms": percentile(later, 0.95) * 1000, "later_requests": statistics.median(r["requests"] for r in rows[1:]),
        "later_texts": statistics.median(r["texts"] for r in rows[1:]),
        "score_p50_ms": statistics.median(timings) * 1000, "score_p95_ms": percentile(timings, 0.95) * 1000,
        "similarities_bytes": len(json.dumps(last.model_dump(mode="json"))), "post_bytes": post_bytes,
    }


def print_table(results: list[dict]) -> None:
    print(f"{'agents':>6} | {'similarities: first post':^30} | {'later posts':^34} | {'scoring (pure)':^26} | {'history bytes':^19}")
    print(f"{'':>6} | {'ms':>8} {'requests':>9} {'texts':>9} | {'p50 ms':>7} {'p95 ms':>7} {'requests':>9} {'texts':>6} "
          f"| {'p50 ms':>7} {'p95 ms':>7} {'µs/agent':>8} | {'sims':>8} {'scores':>8}")
    for r in results:
        print(f"{r['n']:>6} | {r['first_ms']:>8.1f} {r['first_requests']:>9} {r['first_texts']:>9} | "
              f"{r['later_p50_ms']:>7.1f} {r['later_p95_ms']:>7.1f} {r['later_requests']:>9.0f} {r['later_texts']:>6.0f} | "
              f"{r['score_p50_ms']:>7.2f} {r['score_p95_ms']:>7.2f} {r['score_p50_ms'] * 1000 / r['n']:>8.0f} | "
              f"{r['similarities_bytes']:>8} {r['post_bytes']:>8}")


async def main(sizes: list[int], posts: int) -> None:
    print(f"# bench.relevance — Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"load average (1 min) before: {os.getloadavg()[0]:.2f}")
    print(f"# {posts} posts per size, {RECENT} recent messages each; fake Ollama answering at once")
    results = []
    with FakeOllama() as fake, tempfile.TemporaryDirectory(prefix="daemonflow-bench-relevance-") as tmp:
        for n in sizes:
            results.append(await bench_size(fake, Path(tmp), n, posts))
    print_table(results)
    print(f"# load average (1 min) after: {os.getloadavg()[0]:.2f}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=30, help="posts scored per channel size (default 30)")
    parser.add_argument("--sizes", default="3,10,50", help="channel sizes, comma-separated (default 3,10,50)")
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",")], max(2, args.posts)))


if __name__ == "__main__":
    cli()
