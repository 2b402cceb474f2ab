"""One-shot operator commands on a running conversation: status, pause, resume, inject, end, history.

Signals carry the same pydantic models the workflow declares, so what the CLI sends is exactly what
`temporal workflow signal --input` or the API would send.
"""

from __future__ import annotations

import argparse
import json

from config.settings import Settings
from models.conversation import End, Inject, Pause
from workflows.conversation import ConversationWorkflow

from cli.common import (
    connect_or_explain,
    conversation_id_of,
    find_conversation,
    format_message,
    format_status,
    query_history,
    query_status,
    send_signal,
)


async def status(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_or_explain(settings)
    handle, execution = await find_conversation(client, args.conversation)
    result = await query_status(handle)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        print(format_status(result, execution))
    return 0


async def pause(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_or_explain(settings)
    handle, _ = await find_conversation(client, args.conversation)
    await send_signal(handle, ConversationWorkflow.pause, Pause(reason=args.reason or ""))
    print(f"paused conversation {conversation_id_of(handle)}")
    return 0


async def resume(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_or_explain(settings)
    handle, _ = await find_conversation(client, args.conversation)
    await send_signal(handle, ConversationWorkflow.resume)
    print(f"resumed conversation {conversation_id_of(handle)}")
    return 0


async def inject(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_or_explain(settings)
    handle, _ = await find_conversation(client, args.conversation)
    message = Inject(content=args.text, role=args.role, priority=args.priority)
    await send_signal(handle, ConversationWorkflow.inject, message)
    print(f"injected a {args.role} message ({args.priority}) into conversation {conversation_id_of(handle)}")
    return 0


async def end(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_or_explain(settings)
    handle, _ = await find_conversation(client, args.conversation)
    await send_signal(handle, ConversationWorkflow.end, End(reason=args.reason or ""))
    print(f"ended conversation {conversation_id_of(handle)}")
    return 0


async def history(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_or_explain(settings)
    handle, _ = await find_conversation(client, args.conversation)
    messages = await query_history(handle, args.limit)
    if args.json:
        print(json.dumps([m.model_dump(mode="json") for m in messages], indent=2))
    else:
        print("\n".join(map(format_message, messages)) or "(no messages yet)")
    return 0
