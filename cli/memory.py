"""``daemonflow memory list|search|forget``: what the agents remember, for an operator.

The command opens the memory store itself when it can. The embedded store (Qdrant Edge, the
default) admits one process at a time; while a worker holds it, the command runs the same request
through that worker (``MemoryAdminWorkflow``), so it works the same with or without
``daemonflow dev`` running.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import timedelta

from pydantic import ValidationError

from cli.common import EXIT_USAGE, CliError, connect_or_explain
from config.settings import Settings
from models.memory import MemoryAdminRequest, MemoryAdminResult, MemoryKind, MemoryScope

THROUGH_WORKER_TIMEOUT = timedelta(seconds=60)


def add_parser(sub: argparse._SubParsersAction) -> None:
    memory = sub.add_parser("memory", help="list, search and forget what agents remember")
    actions = memory.add_subparsers(dest="memory_command", required=True, metavar="ACTION")

    def filters(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--scope", choices=[s.value for s in MemoryScope],
                            help="only this scope: agent, user or conversation")
        parser.add_argument("--id", dest="scope_id", metavar="SCOPE_ID",
                            help="with --scope: the agent name, user id or conversation id")
        parser.add_argument("--user", metavar="USER_ID", help="shorthand for --scope user --id USER_ID")
        parser.add_argument("--agent", metavar="NAME", help="shorthand for --scope agent --id NAME")
        parser.add_argument("--kind", choices=[k.value for k in MemoryKind], help="only this kind")
        parser.add_argument("--json", action="store_true", help="print JSON")

    listing = actions.add_parser("list", help="list memories, newest first")
    filters(listing)
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50)")
    search = actions.add_parser("search", help="memories closest in meaning to TEXT, ranked as recall ranks them")
    search.add_argument("text", help="what to look for")
    filters(search)
    search.add_argument("-k", type=int, default=10, metavar="K", help="how many (default 10)")
    forget = actions.add_parser("forget", help="delete memories for good: by id, or all of a scope")
    forget.add_argument("ids", nargs="*", metavar="ID", help="memory ids (from list or search)")
    filters(forget)
    forget.add_argument("--all", action="store_true", help="every memory matching --scope/--id/--kind")


def run(args: argparse.Namespace, settings: Settings) -> int:
    request = _request(args)
    result = asyncio.run(_run(request, settings))
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(_render(request, result))
    return 0


def _request(args: argparse.Namespace) -> MemoryAdminRequest:
    scope, scope_id = args.scope, args.scope_id
    for name, value in (("user", args.user), ("agent", args.agent)):
        if value:
            if scope and scope != name:
                raise CliError(f"--{name} contradicts --scope {scope}", EXIT_USAGE)
            scope, scope_id = name, value
    action = args.memory_command
    if action == "forget" and bool(args.ids) == bool(args.all):
        raise CliError("forget takes memory ids, or --all with --scope/--user/--agent (not both)", EXIT_USAGE)
    try:
        return MemoryAdminRequest(
            action=action, scope=scope, scope_id=scope_id, kind=args.kind,
            query=getattr(args, "text", None), ids=getattr(args, "ids", None) or [],
            limit=getattr(args, "limit", None) or getattr(args, "k", None) or 50,
        )
    except ValidationError as err:
        raise CliError(err.errors()[0]["msg"].removeprefix("Value error, "), EXIT_USAGE) from err


async def _run(request: MemoryAdminRequest, settings: Settings) -> MemoryAdminResult:
    from activities.memory import EmbeddingError, MemoryService, MemoryStoreError
    from activities.memory.admin import administer
    from activities.memory.store import StoreLocked

    memory = MemoryService.from_settings(settings)
    try:
        return await administer(memory, request)
    except StoreLocked:
        return await _through_worker(request, settings)
    except (EmbeddingError, MemoryStoreError) as err:
        raise CliError(str(err)) from err
    finally:
        await memory.close()


async def _through_worker(request: MemoryAdminRequest, settings: Settings) -> MemoryAdminResult:
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import TimeoutError as TemporalTimeout

    from workflows.failures import failure_message
    from workflows.memory_admin import MemoryAdminWorkflow

    client = await connect_or_explain(settings)
    try:
        return await client.execute_workflow(
            MemoryAdminWorkflow.run,
            args=[request, settings.llm_task_queue or None],
            id=f"memory-admin-{uuid.uuid4().hex[:12]}",
            task_queue=settings.task_queue,
            execution_timeout=THROUGH_WORKER_TIMEOUT,
        )
    except WorkflowFailureError as err:
        if isinstance(err.cause, TemporalTimeout):  # the execution timeout: nobody picked it up
            raise CliError(
                f"no worker answered on task queue {settings.task_queue!r} within "
                f"{THROUGH_WORKER_TIMEOUT.seconds}s: is the worker that holds the memory store running?"
            ) from err
        raise CliError(f"memory {request.action} failed: {failure_message(err.cause)}") from err


def _render(request: MemoryAdminRequest, result: MemoryAdminResult) -> str:
    if request.action == "forget":
        return f"forgot {result.forgotten} memor{'y' if result.forgotten == 1 else 'ies'}"
    if not result.memories:
        return "no memories match"
    lines = []
    for m in result.memories:
        r = m.record
        score = f" score {m.score:.2f} (similarity {m.similarity:.2f})" if request.action == "search" else ""
        lines.append(f"{r.id}  {r.scope.value}:{r.scope_id}  {r.kind.value}  importance {r.importance:.2f}{score}\n"
                     f"    {r.text}\n    created {r.created_at:%Y-%m-%d %H:%M} · last used {r.last_used_at:%Y-%m-%d %H:%M}"
                     + (f" · from conversation {r.source_conversation} turn {r.source_turn}" if r.source_conversation else ""))
    if request.action == "list" and result.total > len(result.memories):
        lines.append(f"({len(result.memories)} of {result.total}; use --limit to see more)")
    return "\n".join(lines)
