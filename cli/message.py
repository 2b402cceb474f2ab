"""``daemonflow message send|status|list|reply`` and ``daemonflow collaboration``: private messages
from a person to an agent, and the collaboration tracker — through ``control.messages``, so the
CLI sends what ``POST /messages`` would. ``send --wait`` follows the message to its end (or its
question); a deepthink's reasoning is read with ``daemonflow history <deepthink conversation>``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass

from cli.common import ANSWER_TIMEOUT_S, connect_or_explain
from config.settings import Settings
from control.messages import Messages
from models.collaboration import CollaborationReport, Counts
from models.private_messages import MessageState, MessageStatus, ProvideInput
from store.engine import make_engine
from store.private_messages import PrivateMessageStore

FOLLOW_POLL_S = 0.5


def add_parsers(sub: argparse._SubParsersAction) -> None:
    message = sub.add_parser("message", help="private messages to agents: send, status, list, reply")
    actions = message.add_subparsers(dest="message_command", required=True, metavar="ACTION")
    send = actions.add_parser("send", help="send a private message to an agent")
    send.add_argument("to", metavar="AGENT")
    send.add_argument("text", metavar="TEXT")
    send.add_argument("--as", dest="sender", help="who sends it (default: your login)")
    send.add_argument("--id", dest="message_id", help="your id for it (sending it again is refused)")
    send.add_argument("--deepthink", action="store_true", help="the agent reasons in private steps first")
    send.add_argument("--wait", action="store_true", help="follow it until it ends or asks you something")
    send.add_argument("--json", action="store_true")
    status = actions.add_parser("status", help="a message's state, reason, question or reply")
    status.add_argument("message_id", metavar="ID")
    status.add_argument("--json", action="store_true")
    listing = actions.add_parser("list", help="messages, newest first")
    listing.add_argument("--agent", help="only those this agent sent or received")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true")
    reply = actions.add_parser("reply", help="answer the agent's question (a message in input_required)")
    reply.add_argument("message_id", metavar="ID")
    reply.add_argument("text", metavar="TEXT")
    reply.add_argument("--as", dest="sender", help="who answers (default: your login)")
    collaboration = sub.add_parser("collaboration", help="who messages whom, and how it went")
    collaboration.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(ACTIONS[args.message_command](args, settings))


def run_collaboration(args: argparse.Namespace, settings: Settings) -> int:
    report = PrivateMessageStore(make_engine(settings.effective_database_url)).collaboration()
    print(report.model_dump_json(indent=2) if args.json else format_report(report))
    return 0


async def _messages(settings: Settings) -> Messages:
    store = PrivateMessageStore(make_engine(settings.effective_database_url))
    return Messages(await connect_or_explain(settings), settings, store, ANSWER_TIMEOUT_S)


async def send(args: argparse.Namespace, settings: Settings) -> int:
    messages = await _messages(settings)
    request = messages.request(args.sender or getpass.getuser(), args.to, args.text, message_id=args.message_id,
                               deepthink=args.deepthink)  # fmt: skip
    status = await messages.send(request)
    while args.wait and not (status.state.final or status.state == MessageState.INPUT_REQUIRED):
        await asyncio.sleep(FOLLOW_POLL_S)
        status = await messages.status(status.message_id)
    _show(status, args.json)
    return 0


async def show_status(args: argparse.Namespace, settings: Settings) -> int:
    _show(await (await _messages(settings)).status(args.message_id), args.json)
    return 0


async def list_messages(args: argparse.Namespace, settings: Settings) -> int:
    page = await (await _messages(settings)).page(args.agent, args.limit, None)
    if args.json:
        print(page.model_dump_json(indent=2))
    for status in [] if args.json else page.items:
        print(f"{status.message_id}  {status.sender} → {status.recipient}  {status.state.value:<14} {_gist(status)}")
    return 0


async def reply(args: argparse.Namespace, settings: Settings) -> int:
    answer = ProvideInput(content=args.text, author=args.sender or getpass.getuser())
    status = await (await _messages(settings)).provide_input(args.message_id, answer)
    print(f"answered; message {status.message_id} to {status.recipient} is working again")
    return 0


def _show(status: MessageStatus, as_json: bool) -> None:
    if as_json:
        print(status.model_dump_json(indent=2))
        return
    print(f"message {status.message_id}: {status.sender} → {status.recipient} · {status.state.value}")
    if status.reason:
        print(f"reason: {status.reason}" + (f" ({status.decided_by})" if status.decided_by else ""))
    if status.question:
        print(f"question: {status.question}\n(answer with `daemonflow message reply {status.message_id} TEXT`)")
    if status.reply:
        print(f"reply: {status.reply}")
    if status.deepthink_conversation_id:
        print(f"deepthink: `daemonflow history {status.deepthink_conversation_id}`")


def _gist(status: MessageStatus) -> str:
    text = status.question or status.reply or status.reason or ""
    return text.replace("\n", " ")[:80]


def format_report(report: CollaborationReport) -> str:
    lines = [f"{'sender → recipient':<32} sent accepted refused completed failed open  mean s  trust"]
    for pair in report.pairs:
        trust = f"{pair.trust:.2f}" if pair.trust is not None else "—"
        lines.append(f"{pair.sender + ' → ' + pair.recipient:<32} {_counts(pair)}  {trust}")
    lines.append("")
    lines.append(f"{'agent':<32} {'sent':>4} {'received':>8} {'completed (received)':>21} {'refused (received)':>19}")
    for agent in report.agents:
        received = agent.received
        lines.append(f"{agent.agent:<32} {agent.sent.sent:>4} {received.sent:>8} {received.completed:>21} {received.refused:>19}")
    return "\n".join(lines) if report.pairs else "no private messages yet"


def _counts(counts: Counts) -> str:
    mean = f"{counts.mean_duration_ms / 1000:.1f}" if counts.mean_duration_ms is not None else "—"
    return (f"{counts.sent:>4} {counts.accepted:>8} {counts.refused:>7} {counts.completed:>9} {counts.failed:>6} "
            f"{counts.open:>4} {mean:>7}")


ACTIONS = {"send": send, "status": show_status, "list": list_messages, "reply": reply}
