"""``daemonflow agents``: one agent across all its conversations and channel seats at once —
pause, resume, a priority task, and archives — through the same ``control.agents`` the API uses."""

from __future__ import annotations

import argparse
import asyncio
import json

from cli.common import CliError, conversations
from config.settings import Settings
from config.templates import template_names
from control.agents import AgentControl
from models.agent_control import AgentControlResult, AgentTaskRequest
from models.archive import ArchiveKind
from store.agent_pauses import AgentPauseStore
from store.archives import ArchiveStore
from store.engine import make_engine


def add_parser(sub: argparse._SubParsersAction) -> None:
    agents = sub.add_parser("agents", help="control one agent everywhere: pause, resume, task; list archives")
    actions = agents.add_subparsers(dest="agents_command", required=True, metavar="ACTION")
    pause = actions.add_parser("pause", help="pause the agent in every conversation and channel (and those it starts)")
    pause.add_argument("agent", metavar="AGENT")
    pause.add_argument("--reason", default="")
    actions.add_parser("resume", help="lift the agent's pause everywhere").add_argument("agent", metavar="AGENT")
    task = actions.add_parser("task", help="give the agent a priority task (its active conversation, or a new one)")
    task.add_argument("agent", metavar="AGENT")
    task.add_argument("text", metavar="TEXT")
    task.add_argument("--conversation", metavar="ID", help="this conversation (revived if archived, started if new)")
    archives = actions.add_parser("archives", help="archive records of conversations and channels, newest first")
    archives.add_argument("--kind", choices=[k.value for k in ArchiveKind])
    archives.add_argument("--id", dest="subject_id", help="one conversation or channel id")
    for command in (pause, task, archives):
        command.add_argument("--json", action="store_true", help="print the answer as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.agents_command == "archives":
        return _archives(args, settings)
    names = template_names(settings.agents_dir)
    if args.agent not in names:
        raise CliError(f"no agent template {args.agent!r}; known: {', '.join(names)}")
    return asyncio.run(_control(args, settings))


async def _control(args: argparse.Namespace, settings: Settings) -> int:
    control = AgentControl(await conversations(settings), AgentPauseStore(make_engine(settings.effective_database_url)))
    if args.agents_command == "task":
        done = await control.task(args.agent, AgentTaskRequest(content=args.text, conversation_id=args.conversation))
        print(done.model_dump_json(indent=2) if args.json else
              f"task {done.delivered} ({done.priority}) in conversation {done.conversation_id}")  # fmt: skip
        return 0
    result = await (control.pause(args.agent, args.reason) if args.agents_command == "pause" else control.resume(args.agent))
    print(result.model_dump_json(indent=2) if getattr(args, "json", False) else _line(result))
    return 0


def _line(result: AgentControlResult) -> str:
    verb = "paused" if result.action == "pause" else "resumed"
    lines = [f"{verb} agent {result.agent}: {result.reached} running conversations reached "
             f"({result.in_channels} in channels)"]  # fmt: skip
    lines += [f"  not reached: {c.conversation_id}: {c.error}" for c in result.conversations if c.error]
    return "\n".join(lines)


def _archives(args: argparse.Namespace, settings: Settings) -> int:
    kind = ArchiveKind(args.kind) if args.kind else None
    records = ArchiveStore(make_engine(settings.effective_database_url)).records(kind, args.subject_id)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        return 0
    for r in records:
        revived = f" · revived {r.revived_at:%Y-%m-%d %H:%M}" if r.revived_at else ""
        print(f"{r.kind.value} {r.subject_id} · archived {r.archived_at:%Y-%m-%d %H:%M} after {r.idle_s}s idle · "
              f"{r.turns} {'turns' if r.kind == ArchiveKind.CONVERSATION else 'posts'}{revived}")  # fmt: skip
    return 0
