"""``daemonflow plan …``: start a task plan from a YAML/JSON file, follow it, change it, stop it.

The file holds ``PlanInput``'s fields (``title``, ``tasks``, ``settings``); the plan is validated
before it starts (a cycle, an unknown dependency or agent is refused with what is wrong, exit 2).
``status`` prints each task with its state, dependencies and the start of its result; ``watch``
prints the plan's line whenever it changes, until the plan is over (exit 1 if it failed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from pathlib import Path

import yaml
from pydantic import ValidationError

from cli.common import ANSWER_TIMEOUT_S, EXIT_USAGE, CliError, connect_or_explain
from config.settings import Settings
from config.templates import template_names
from control.plan_errors import PlanInvalid
from control.plans import Plan, Plans
from models.plan import PlanInput, PlanProgress, PlanState

WATCH_POLL_S = 0.5


def add_parser(sub: argparse._SubParsersAction) -> None:
    plan = sub.add_parser("plan", help="task plans: create from a file, status, watch, cancel, pause, resume")
    actions = plan.add_subparsers(dest="plan_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="start a plan from a YAML or JSON file (title, tasks, settings)")
    create.add_argument("file", type=Path, metavar="FILE")
    create.add_argument("--id", dest="plan_id", help="plan id (default: the file's, else generated)")
    create.add_argument("--watch", action="store_true", help="then follow it until it is over")
    listing = actions.add_parser("list", help="list plans, newest first")
    listing.add_argument("--all", action="store_true", help="finished plans too")
    for name, help in (("status", "each task: state, dependencies, attempts, result"), ("watch", "follow until over"),
                       ("pause", "no task starts until resume"), ("resume", "resume a paused plan")):  # fmt: skip
        command = actions.add_parser(name, help=help)
        command.add_argument("plan", metavar="ID")
        if name == "status":
            command.add_argument("--json", action="store_true")
    cancel = actions.add_parser("cancel", help="end the plan, or cancel one task (--task)")
    cancel.add_argument("plan", metavar="ID")
    cancel.add_argument("--task", help="cancel only this task (its dependents are skipped)")
    cancel.add_argument("--reason", default="", help="why")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(ACTIONS[args.plan_command](args, settings))


async def _plans(settings: Settings) -> Plans:
    return Plans(await connect_or_explain(settings), settings.task_queue, ANSWER_TIMEOUT_S)


def plan_input(path: Path, plan_id: str | None, settings: Settings) -> PlanInput:
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as err:
        raise CliError(f"cannot read {path}: {err}", code=EXIT_USAGE) from err
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold an object with `tasks` (and `title`, `settings`)", code=EXIT_USAGE)
    data["plan_id"] = plan_id or data.get("plan_id") or uuid.uuid4().hex[:12]
    try:
        request = PlanInput.model_validate(data)
    except ValidationError as err:
        raise CliError(f"invalid plan in {path}:\n{err}", code=EXIT_USAGE) from err
    known = template_names(settings.agents_dir)
    unknown = sorted({t.agent for t in request.tasks if t.agent not in known})
    if unknown:
        raise CliError(f"unknown agent template(s) {', '.join(unknown)}; known: {', '.join(known)}", code=EXIT_USAGE)
    return request


async def create(args: argparse.Namespace, settings: Settings) -> int:
    request = plan_input(args.file, args.plan_id, settings)
    try:
        plan = await (await _plans(settings)).start(request, f"{request.title or args.file.name} · from the CLI")
    except PlanInvalid as err:
        raise CliError(str(err), code=EXIT_USAGE) from err
    print(f"plan {plan.id} started ({len(request.tasks)} tasks): daemonflow plan watch {plan.id}")
    return await _watch(plan) if args.watch else 0


async def list_plans(args: argparse.Namespace, settings: Settings) -> int:
    items, _ = await (await _plans(settings)).list(None if args.all else True, 50)
    for item in items:
        print(f"{item.plan_id}\t{item.execution}\t{item.state or '-'}\t{item.started_at:%Y-%m-%d %H:%M}")
    return 0


async def status(args: argparse.Namespace, settings: Settings) -> int:
    progress = await (await (await _plans(settings)).find(args.plan)).progress()
    print(progress.model_dump_json(indent=2) if args.json else format_progress(progress))
    return 0


def format_progress(progress: PlanProgress) -> str:
    lines = [f"plan {progress.plan_id}{f' — {progress.title}' if progress.title else ''}: {progress.details}"]
    for task in progress.tasks:
        after = f" after {', '.join(task.spec.depends_on)}" if task.spec.depends_on else ""
        said = task.result if task.result else task.error or ""
        attempts = f" (attempt {task.attempts})" if task.attempts > 1 else ""
        lines.append(f"  {task.spec.id:<16} {task.state.value:<17} {task.spec.priority.value:<8}{after}{attempts}"
                     f"{'  ' + said[:120].replace(chr(10), ' ') if said else ''}")  # fmt: skip
    return "\n".join(lines)


async def watch(args: argparse.Namespace, settings: Settings) -> int:
    return await _watch(await (await _plans(settings)).find(args.plan))


async def _watch(plan: Plan) -> int:
    """Prints the plan's line each time it changes; 0 when it succeeded, 1 when it failed or was ended."""
    last = None
    while True:
        progress = await plan.progress()
        if progress.details != last:
            print(progress.details, flush=True)
            last = progress.details
        if progress.state in (PlanState.SUCCEEDED, PlanState.FAILED, PlanState.ENDED) and not (await plan.describe()).running:
            return 0 if progress.state == PlanState.SUCCEEDED else 1
        await asyncio.sleep(WATCH_POLL_S)


async def cancel(args: argparse.Namespace, settings: Settings) -> int:
    plan = await (await _plans(settings)).find(args.plan)
    if args.task:
        task = await plan.cancel_task(args.task, args.reason)
        print(f"task {task.spec.id} of plan {plan.id}: {task.state.value}")
    else:
        await plan.end(args.reason or "cancelled from the CLI")
        print(f"plan {plan.id}: end sent")
    return 0


async def pause(args: argparse.Namespace, settings: Settings) -> int:
    await (await (await _plans(settings)).find(args.plan)).pause()
    print(f"plan {args.plan}: paused")
    return 0


async def resume(args: argparse.Namespace, settings: Settings) -> int:
    await (await (await _plans(settings)).find(args.plan)).resume()
    print(f"plan {args.plan}: resumed")
    return 0


ACTIONS = {"create": create, "list": list_plans, "status": status, "watch": watch, "cancel": cancel,
           "pause": pause, "resume": resume}  # fmt: skip
