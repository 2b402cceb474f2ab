"""One-shot operator commands on a conversation: status, history, pause, resume, inject, end, approve, deny.

Each goes through the ``control`` client, so what the CLI sends is exactly what the API would
send, and ``approve``/``deny`` print the decision as the workflow applied it (the ``decide``
update) — or why it was refused, with exit code 1.
"""

from __future__ import annotations

import argparse
import getpass
import json

from cli.common import EXIT_USAGE, CliError, conversations, format_message, format_status
from config.settings import Settings
from control.conversation import Conversation
from models.conversation import Approve, Inject


async def _conversation(args: argparse.Namespace, settings: Settings) -> Conversation:
    return await (await conversations(settings)).find(args.conversation)


async def status(args: argparse.Namespace, settings: Settings) -> int:
    conversation = await _conversation(args, settings)
    result = await conversation.status()
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        print(format_status(result, conversation.execution))
    return 0


async def pause(args: argparse.Namespace, settings: Settings) -> int:
    conversation = await _conversation(args, settings)
    await conversation.pause(args.reason or "")
    print(f"paused conversation {conversation.id}")
    return 0


async def resume(args: argparse.Namespace, settings: Settings) -> int:
    conversation = await _conversation(args, settings)
    await conversation.resume()
    print(f"resumed conversation {conversation.id}")
    return 0


async def inject(args: argparse.Namespace, settings: Settings) -> int:
    conversation = await _conversation(args, settings)
    await conversation.inject(Inject(content=args.text, role=args.role, priority=args.priority))
    print(f"injected a {args.role} message ({args.priority}) into conversation {conversation.id}")
    return 0


async def end(args: argparse.Namespace, settings: Settings) -> int:
    conversation = await _conversation(args, settings)
    await conversation.end(args.reason or "")
    print(f"ended conversation {conversation.id}")
    return 0


async def history(args: argparse.Namespace, settings: Settings) -> int:
    conversation = await _conversation(args, settings)
    messages = await conversation.history(args.limit)
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
    conversation = await _conversation(args, settings)
    applied = await conversation.decide(Approve(
        tool_call_id=args.call, decision=decision, arguments=arguments, reason=args.reason,
        approver=args.approver or getpass.getuser(),
    ))  # fmt: skip
    runs = "" if applied.arguments is None else f" {json.dumps(applied.arguments, ensure_ascii=False)}"
    judged = " (judged again by the policy before it runs)" if applied.decision == "edit" else ""
    print(f"{applied.decision} applied: {applied.tool}{runs} (call {applied.tool_call_id}) "
          f"in conversation {conversation.id}{judged}")  # fmt: skip
    return 0
