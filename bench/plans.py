"""What a task plan costs to schedule: a random 50-task DAG whose agent tasks the fake model answers
at once, run by ``TaskPlanWorkflow`` with at most 3 tasks at once.

Run ``python -m bench.plans [--tasks N] [--seed S] [--runs R]``. It starts its own Temporal dev
server, a fake Ollama answering at once, a real worker on a temporary SQLite file, and for each run
starts one plan and waits for its summary. From the ``task_runs`` rows the plan wrote it prints:

- **wall**: the plan's start to its result, at the client;
- **task run**: a task's ``started_at`` → ``ended_at`` (its conversation started, asked through
  ``request_turn``, the turn answered, reported back), p50 and p95;
- **ideal makespan**: the same tasks with the same measured durations, scheduled by the same rules
  (``plan_graph.start_order``, at most ``max_parallel``) with no time between one task's end and the
  next one's start — what a scheduler that costs nothing would achieve;
- **scheduling overhead per task**: (wall − ideal makespan) / tasks;
- **parallelism**: achieved = sum of task durations / wall; against min(max_parallel, width), the
  width being the largest layer of the DAG (tasks with the same longest chain of dependencies).

It prints figures and /proc/loadavg; it never judges them.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlmodel import Session, select

from bench.conversation import load_average, machine_info, progress, start_dev_server, temporal_binary
from bench.worker import in_process_worker
from config.settings import Settings
from control.plans import Plans
from models.plan import PlanInput, Priority, TaskSpec, TaskState, TaskStatus
from store.engine import make_engine
from store.task_runs import TaskRun
from tests.fakes.ollama import FakeOllama
from workers.process_exit import exit_without_finalization
from workflows.plan_graph import start_order


def random_dag(n: int, rng: random.Random) -> list[TaskSpec]:
    """Each task depends on 0-2 of the tasks before it (so no cycle), priorities and estimates at random."""
    tasks = []
    for i in range(n):
        earlier = [f"t{j}" for j in range(i)]
        deps = rng.sample(earlier, k=min(len(earlier), rng.choice([0, 0, 1, 1, 2])))
        tasks.append(TaskSpec(id=f"t{i}", prompt=f"do task {i}", depends_on=sorted(deps),
                              priority=rng.choice(list(Priority)), estimate_s=rng.randint(1, 120)))  # fmt: skip
    return tasks


def width(tasks: list[TaskSpec]) -> int:
    level: dict[str, int] = {}
    for task in tasks:  # listed after their dependencies
        level[task.id] = 1 + max((level[d] for d in task.depends_on), default=-1)
    return max(list(level.values()).count(n) for n in set(level.values()))


def ideal_makespan(tasks: list[TaskSpec], durations: dict[str, float], cap: int) -> float:
    """List scheduling with the plan's own order and no dispatch delay."""
    statuses = [TaskStatus(spec=t) for t in tasks]
    by_id = {s.spec.id: s for s in statuses}
    now, running, done = 0.0, [], set()
    while len(done) < len(tasks):
        for s in statuses:
            if s.state == TaskState.WAITING and all(d in done for d in s.spec.depends_on):
                s.state = TaskState.READY
        for task_id in start_order(statuses)[: cap - len(running)]:
            by_id[task_id].state = TaskState.RUNNING
            heapq.heappush(running, (now + durations[task_id], task_id))
        now, finished = heapq.heappop(running)
        by_id[finished].state = TaskState.SUCCEEDED
        done.add(finished)
    return now


async def one_plan(plans: Plans, engine, tasks: list[TaskSpec], cap: int) -> dict:
    request = PlanInput(plan_id=f"bench{uuid.uuid4().hex[:8]}", tasks=tasks, settings={"max_parallel": cap})
    began = time.perf_counter()
    summary = await (await plans.start(request)).result()
    wall = time.perf_counter() - began
    assert all(t.state == TaskState.SUCCEEDED for t in summary.tasks), summary.counts
    with Session(engine) as session:
        rows = list(session.exec(select(TaskRun).where(TaskRun.plan_id == request.plan_id)))
    durations = {r.task_id: (r.ended_at - r.started_at).total_seconds() for r in rows}
    return dict(wall=wall, durations=durations, ideal=ideal_makespan(tasks, durations, cap),
                most=summary.most_parallel)  # fmt: skip


async def measure(args: argparse.Namespace) -> list[dict]:
    env = await start_dev_server()
    try:
        with FakeOllama() as ollama, tempfile.TemporaryDirectory(prefix="daemonflow-bench-plans-") as tmp:
            ollama.responder = lambda request: "done"
            settings = Settings(_env_file=None, temporal_address=env.client.service_client.config.target_host,
                                task_queue=f"bench-plans-{uuid.uuid4().hex[:8]}", var_dir=Path(tmp) / "var",
                                database_url=f"sqlite:///{Path(tmp) / 'daemonflow.db'}", ollama_host=ollama.url)  # fmt: skip
            plans, engine = Plans(env.client, settings.task_queue, 60), make_engine(settings.effective_database_url)
            async with in_process_worker(env.client, settings):
                results = []
                for run in range(args.runs):
                    progress(f"  plan {run + 1}/{args.runs}: {args.tasks} tasks, at most {args.max_parallel} at once")
                    tasks = random_dag(args.tasks, random.Random(args.seed + run))
                    results.append({**await one_plan(plans, engine, tasks, args.max_parallel), "width": width(tasks)})
    finally:
        await env.shutdown()
    return results


def report(results: list[dict], args: argparse.Namespace, load_before: str) -> None:
    print(f"# bench.plans — {machine_info(temporal_binary())}")
    print(f"# 1-min load average {load_before} before, {load_average()} after; fake Ollama answering at once")
    print(f"# {args.tasks}-task random DAGs (seed {args.seed}+run), max_parallel {args.max_parallel}")
    print(f"{'run':>4}{'wall s':>9}{'ideal s':>9}{'overhead/task ms':>18}{'task p50 ms':>13}{'task p95 ms':>13}"
          f"{'achieved':>10}{'min(cap,width)':>16}{'most':>6}")  # fmt: skip
    for i, r in enumerate(results, 1):
        runs = sorted(r["durations"].values())
        p95 = runs[min(len(runs) - 1, round(0.95 * (len(runs) - 1)))]
        achieved = sum(runs) / r["wall"]
        print(f"{i:>4}{r['wall']:>9.2f}{r['ideal']:>9.2f}{(r['wall'] - r['ideal']) / args.tasks * 1000:>18.1f}"
              f"{statistics.median(runs) * 1000:>13.1f}{p95 * 1000:>13.1f}{achieved:>10.2f}"
              f"{min(args.max_parallel, r['width']):>16}{r['most']:>6}")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.plans", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--max-parallel", type=int, default=3)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load_before = load_average()
    progress("starting Temporal dev server, fake Ollama and a worker")
    report(asyncio.run(measure(args)), args, load_before)


if __name__ == "__main__":
    main()
    exit_without_finalization(0)  # temporalio/sdk-python#300: see workers/process_exit.py
