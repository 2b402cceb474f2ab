"""What a monitoring round's new figures cost: the 7-day read and the computation over it.

Run ``python -m bench.monitoring [--per-day 1000,10000] [--repeat 5]`` from the repository root. For
each daily volume V it fills a throw-away SQLite file with 7 days (plus the hour of the window) of
V model calls and V tool calls a day, and 20 plans of 6 tasks a day, then times
``with_performance_figures`` — what ``health.metrics`` adds to every monitoring round (prompt cache,
parallelisation, the window against its 7-day baseline, 7-day trends) — and prints the median and
the slowest of ``--repeat`` runs, the rows read, and the JSON size of the figures (what the round
records in workflow history, twice: the activity's result and the next activity's input).

Everything runs in one process beside whatever else the machine does: the 1-minute load average
is printed before and after. This prints figures; it never judges them.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from activities.monitoring_figures import with_performance_figures
from models.monitoring import MetricsSnapshot
from models.task_runs import TaskOutcome
from store.engine import make_engine
from store.tables import Action, ModelUsage
from store.task_runs import TaskRunStore

DAYS = 7
TOOLS = ("read_file", "write_file", "run_tests", "run_command", "git_diff")
MODELS = ("llama3.2", "qwen2.5-coder")


def _seed(engine, per_day: int, now: datetime, rng: random.Random) -> int:
    span = timedelta(days=DAYS, hours=1).total_seconds()
    total = int(per_day * (DAYS + 1 / 24))
    with Session(engine) as session:
        for n in range(total):
            at = now - timedelta(seconds=rng.uniform(0, span))
            session.add(ModelUsage(conversation_id=f"c{n // 50}", seq=n, turn=n % 50, model=rng.choice(MODELS),
                                   load_duration_ms=0.0, prompt_eval_duration_ms=rng.gauss(800, 200),
                                   prompt_tokens=2000, cached_prompt_tokens=rng.choice((None, 1500)), created_at=at))  # fmt: skip
            session.add(Action(conversation_id=f"c{n // 50}", tool_call_id=str(n), turn=n % 50, agent="developer",
                               tool=rng.choice(TOOLS), action_type="X", args_hash="h", decision="allow", source="rule:x",
                               success=rng.random() > 0.05, duration_ms=rng.gauss(1500, 400), created_at=at))  # fmt: skip
        session.commit()
    runs = TaskRunStore(engine)
    for plan in range(20 * DAYS):
        start = now - timedelta(hours=plan * 24 / 20)
        for task in range(6):
            ready = start + timedelta(minutes=task // 3)
            runs.started(f"p{plan}", str(task), ready, ready + timedelta(seconds=rng.uniform(0, 30)), max_parallel=3)
            runs.ended(f"p{plan}", str(task), ready + timedelta(minutes=1), TaskOutcome.SUCCEEDED)
    return total


def measure(per_day: int, repeat: int) -> str:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        now = datetime.now(UTC)
        rows = _seed(engine, per_day, now, random.Random(per_day))
        times, figures = [], None
        for _ in range(repeat):
            started = time.perf_counter()
            figures = with_performance_figures(engine, MetricsSnapshot(at=now, window_minutes=60))
            times.append((time.perf_counter() - started) * 1000)
        engine.dispose()
    assert figures is not None
    size = len(figures.model_dump_json())
    return (f"{per_day:>7,} calls/day  rows read {2 * rows:>9,} + {20 * DAYS * 6} task runs   "
            f"median {statistics.median(times):8.0f} ms   slowest {max(times):8.0f} ms   figures {size / 1024:5.1f} KiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", default="1000,10000", help="daily model calls (and tool calls), comma-separated")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for per_day in (int(v) for v in args.per_day.split(",")):
        print(measure(per_day, args.repeat), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
