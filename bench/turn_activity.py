"""What the model activity of a turn costs the worker in CPU, without Temporal around it.

``bench.conversation`` measures whole turns, and its per-process CPU figures move by a quarter
from one run to the next with the machine's load (the dev server, the fake and other work share
the cores). This script isolates the part Daemonflow's own code controls: ``llm.chat`` as a
turn's first step sends it (the user's message to write, a recall, the template inline), run
through ``ActivityEnvironment`` in this process, C conversations at once, against the fake model
server (``bench/fake_model.py``, a process of its own, answering at once), a SQLite file and the
embedded memory store seeded with ``--memories`` memories. It prints this process's CPU time per
call (``time.process_time``: all threads) and calls per second of wall time, for ``--rounds``
rounds, so that two versions of the code can be compared in one session:

    PYTHONPATH=. python -m bench.turn_activity [--conversations C] [--turns M] [--memories K] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.llm import LlmActivities
from activities.memory import MemoryService
from bench.conversation import AGENT, load_average, seed_memories
from bench.fake_model import serve
from config.settings import Settings
from config.templates import load_template
from models.llm import ChatRequest
from models.memory import RecallRequest
from models.transcript import AppendMessage
from models.turn_writes import TurnWrites
from store.engine import make_engine
from store.transcript import TranscriptStore


def first_step(conversation_id: str, turn: int, template) -> ChatRequest:
    """The request a turn's first model call carries: the user's message to write and a recall."""
    seq = 2 * turn - 1
    text = f"Turn {turn}: which editor do I use for project {turn % 7}?"
    return ChatRequest(
        conversation_id=conversation_id, turn=turn, reply_seq=seq + 1, upto_seq=seq, template=template,
        now=datetime(2026, 12, 3, 4, 0, tzinfo=UTC),
        writes=TurnWrites(conversation_id=conversation_id,
                          messages=[AppendMessage(conversation_id=conversation_id, seq=seq, role="user", content=text)]),
        recall=RecallRequest(conversation_id=conversation_id, seq=seq, agent=AGENT),
    )


async def one_round(llm: LlmActivities, store: TranscriptStore, args: argparse.Namespace, round_: int
                    ) -> tuple[float, float, float]:
    """CPU ms per call, calls/s and memories recalled per call, for C fresh conversations × M turns
    at once (one warm-up turn each)."""
    template = load_template(AGENT)
    ids = [f"r{round_}-c{c}" for c in range(args.conversations)]
    for conversation_id in ids:
        store.open_conversation(conversation_id, AGENT, template.model or "default")
        await ActivityEnvironment().run(llm.chat, first_step(conversation_id, 1, template))

    recalled: list[int] = []

    async def conversation(conversation_id: str) -> None:
        for turn in range(2, args.turns + 2):
            result = await ActivityEnvironment().run(llm.chat, first_step(conversation_id, turn, template))
            recalled.append(len(result.recalled.memory_ids) if result.recalled else 0)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(conversation(i) for i in ids))
    calls = args.conversations * args.turns
    return (time.process_time() - cpu) * 1000 / calls, calls / (time.perf_counter() - wall), sum(recalled) / calls


async def run(args: argparse.Namespace) -> None:
    with serve() as model_url, tempfile.TemporaryDirectory(prefix="daemonflow-bench-") as tmp:
        settings = Settings(_env_file=None, var_dir=Path(tmp) / "var", database_url=f"sqlite:///{Path(tmp) / 'd.db'}",
                            ollama_host=model_url)
        await seed_memories(settings, args.memories)
        store = TranscriptStore(make_engine(settings.effective_database_url))
        async with MemoryService.from_settings(settings) as memory:
            llm = LlmActivities(store, settings, memory)
            print(f"load average before: {load_average()}")
            figures = [await one_round(llm, store, args, r) for r in range(args.rounds)]
        for r, (cpu_ms, per_s, memories) in enumerate(figures, 1):
            print(f"round {r}: {cpu_ms:.2f} CPU ms per llm.chat, {per_s:.1f} calls/s, {memories:.1f} memories recalled per call")
        print(f"median: {statistics.median(f[0] for f in figures):.2f} CPU ms per call; "
              f"load average after: {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.turn_activity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--turns", type=int, default=6, help="measured turns per conversation")
    parser.add_argument("--memories", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
