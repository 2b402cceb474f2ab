"""One-shot operator commands on a running conversation: status, pause, resume, inject, end, history.

Signals carry the same pydantic models the workflow declares, so what the CLI sends is exactly what
`temporal workflow signal --input` or the API would send.
"""

from __future__ import annotations

import argparse
import getpass
import json

from config.settings import Settings
from models.conversation import Approve, End, Inject, Pause
from workflows.conversation import ConversationWorkflow

from cli.common import (
    CliError,
    EXIT_USAGE,
    connect_or_explain,
    conversation_id_of,
    find_conversation,
    format_message,
    format_status,
    query_history,
    query_status,
    send_signal,
)


async def _conversation(args: argparse.Namespace, settings: Settings):
    return await find_conversation(await connect_or_explain(settings), args.conversation)


async def status(args: argparse.Namespace, settings: Settings) -> int:
    handle, execution = await _conversation(args, settings)
    result = await query_status(handle)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        print(format_status(result, execution))
    return 0


async def pause(args: argparse.Namespace, settings: Settings) -> int:
    handle, _ = await _conversation(args, settings)
    await send_signal(handle, ConversationWorkflow.pause, Pause(reason=args.reason or ""))
    print(f"paused conversation {conversation_id_of(handle)}")
    return 0


async def resume(args: argparse.Namespace, settings: Settings) -> int:
    handle, _ = await _conversation(args, settings)
    await send_signal(handle, ConversationWorkflow.resume)
    print(f"resumed conversation {conversation_id_of(handle)}")
    return 0


async def inject(args: argparse.Namespace, settings: Settings) -> int:
    handle, _ = await _conversation(args, settings)
    message = Inject(content=args.text, role=args.role, priority=args.priority)
    await send_signal(handle, ConversationWorkflow.inject, message)
    print(f"injected a {args.role} message ({args.priority}) into conversation {conversation_id_of(handle)}")
    return 0


async def end(args: argparse.Namespace, settings: Settings) -> int:
    handle, _ = await _conversation(args, settings)
    await send_signal(handle, ConversationWorkflow.end, End(reason=args.reason or ""))
    print(f"ended conversation {conversation_id_of(handle)}")
    return 0


async def history(args: argparse.Namespace, settings: Settings) -> int:
    handle, _ = await _conversation(args, settings)
    messages = await query_history(handle, args.limit)
    if args.json:
        print(json.dumps([m.model_dump(mode="json") for m in messages], indent=2))
    else:
        print("\n".join(map(format_message, messages)) or "(no messages yet)")
    return 0


async def approve(args: argparse.Namespace, settings: Settings) -> int:
    decision, arguments = ("approve_always" if args.always else "approve"), None
    if args.edit:
        try:
            arguments = json.loads(args.edit)
        except json.JSONDecodeError as err:
            raise CliError(f"--edit is not valid JSON: {err}", EXIT_USAGE) from err
        if not isinstance(arguments, dict):
            raise CliError("--edit must be a JSON object of arguments", EXIT_USAGE)
        decision = "edit"
    return await _decide(args, settings, decision, arguments)


async def deny(args: argparse.Namespace, settings: Settings) -> int:
    return await _decide(args, settings, "deny", None)


async def _decide(args: argparse.Namespace, settings: Settings, decision: str, arguments: dict | None) -> int:
    handle, _ = await _conversation(args, settings)
    pending = {p.tool_call_id: p for p in (await query_status(handle)).pending_approvals}
    if args.call not in pending:
        waiting = ", ".join(pending) or "none"
        raise CliError(f"no tool call {args.call!r} waits for approval (waiting: {waiting})")
    signal = Approve(
        tool_call_id=args.call,
        decision=decision,
        arguments=arguments,
        arguments_hash=pending[args.call].args_hash,
        reason=args.reason,
        approver=args.approver or getpass.getuser(),
    )
    await send_signal(handle, ConversationWorkflow.approve, signal)
    print(f"{decision}: {pending[args.call].tool} (call {args.call}) in conversation {conversation_id_of(handle)}")
    return 0
