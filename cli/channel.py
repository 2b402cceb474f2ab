"""``daemonflow channel …``: create a channel of agents and people, post to it, watch it, end it.

Everything goes through the ``control`` channel client, so the CLI sends what the API would.
Members come from flags (``--agent developer --agent analyst --person alice``) or a YAML/JSON file
with the fields of ``ChannelInput`` (flags add to the file's). A post prints who spoke and why,
and, quietly, who observed or ignored it; a post whose agent waits for a person prints what to
approve and returns (``watch`` follows the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import uuid
from datetime import timedelta
from pathlib import Path

import yaml
from pydantic import ValidationError

from cli.common import ANSWER_TIMEOUT_S, EXIT_USAGE, CliError, connect_or_explain
from cli.streaming import AgentsWriting
from config.settings import Settings
from control.channel import Channel
from control.channels import Channels
from control.conversation_stream import ConversationStream
from control.posts import PostWaiting
from control.visibility import ChannelFilter
from models.channel import ChannelInput, ChannelNote, ChannelState, MemberScore, Post, PostResult, check_name
from models.channel_events import ChannelEvent
from models.channel_state import ChannelStatus
from models.conversation import conversation_workflow_id

WATCH_POLL_S = 0.5


def add_parser(sub: argparse._SubParsersAction) -> None:
    channel = sub.add_parser("channel", help="channels of agents and people: create, post, watch, end")
    actions = channel.add_subparsers(dest="channel_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a channel (its agents' conversations start with it)")
    create.add_argument("channel", nargs="?", metavar="ID", help="channel id (default: generated)")
    create.add_argument("--agent", action="append", default=[], metavar="NAME", help="an agent member (repeat)")
    create.add_argument("--person", action="append", default=[], metavar="NAME", help="a person member (repeat)")
    create.add_argument("--file", type=Path, help="YAML or JSON with ChannelInput fields (agents, people, budgets…)")
    create.add_argument("--title", help="the channel's title")
    create.add_argument("--topic", help="what the channel is about (agents read it)")
    create.add_argument("--user", help="user id of the agents' conversations and memories")
    create.add_argument("--replies-per-post", type=int, metavar="N", help="agent replies one post may bring (6)")
    create.add_argument("--token-budget", type=int, metavar="N", help="model tokens the agents may use in all")
    listing = actions.add_parser("list", help="list channels, newest first")
    listing.add_argument("--member", metavar="NAME", help="only channels with this agent or person")
    listing.add_argument("--all", action="store_true", help="ended channels too")
    listing.add_argument("--json", action="store_true")

    def of_channel(name: str, help: str) -> argparse.ArgumentParser:
        command = actions.add_parser(name, help=help)
        command.add_argument("channel", metavar="ID", help="channel id (or its workflow id)")
        return command

    of_channel("status", "the channel's agents, what each does, budgets").add_argument("--json", action="store_true")
    post = of_channel("post", "post a message; prints who answered and why")
    post.add_argument("text", metavar="TEXT")
    post.add_argument("--as", dest="author", metavar="NAME", help="who posts (default: $USER)")
    post.add_argument("--mention", action="append", default=[], metavar="NAME", help="ask this member (repeat)")
    post.add_argument("--reply-to", metavar="NAME", help="the member this answers")
    post.add_argument("--json", action="store_true", help="print the PostResult as JSON")
    of_channel("watch", "follow the channel live (Ctrl-C stops)").add_argument("--after", type=int, default=0, metavar="N",
                                                                            help="start after event N")  # fmt: skip
    history = of_channel("history", "the latest messages")
    history.add_argument("--limit", type=int, default=20, metavar="N", help="1-200 (default 20)")
    history.add_argument("--json", action="store_true")
    of_channel("pause", "pause the channel and its agents").add_argument("--reason", default="")
    of_channel("resume", "resume a paused channel")
    of_channel("inject", "write a note agents read with their next turn").add_argument("text", metavar="TEXT")
    of_channel("end", "end the channel and its agents' conversations").add_argument("--reason", default="")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(ACTIONS[args.channel_command](args, settings))


async def _channels(settings: Settings) -> Channels:
    return Channels(await connect_or_explain(settings), settings.task_queue, ANSWER_TIMEOUT_S)


async def _channel(args: argparse.Namespace, settings: Settings) -> Channel:
    return await (await _channels(settings)).find(args.channel)


# --- create and list ------------------------------------------------------------------------------


def channel_input(args: argparse.Namespace, settings: Settings) -> ChannelInput:
    """The file's fields, then the flags' (members added, the rest replaced)."""
    data = _read(args.file) if args.file else {}
    data["agents"] = [*data.get("agents", []), *args.agent]
    data["people"] = [*data.get("people", []), *args.person]
    for field, value in (("title", args.title), ("topic", args.topic), ("user_id", args.user)):
        if value is not None:
            data[field] = value
    budgets = data.setdefault("budgets", {})
    if args.replies_per_post is not None:
        budgets["replies_per_post"] = args.replies_per_post
    if args.token_budget is not None:
        budgets["tokens"] = args.token_budget
    data["channel_id"] = args.channel or data.get("channel_id") or f"ch{uuid.uuid4().hex[:10]}"
    data.setdefault("max_message_chars", settings.max_message_chars)
    if not data["agents"]:
        raise CliError("a channel needs at least one agent: --agent NAME (or agents: in --file)", EXIT_USAGE)
    try:
        return ChannelInput.model_validate(data)
    except ValidationError as err:
        raise CliError(f"invalid channel: {err}", EXIT_USAGE) from err


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except (OSError, yaml.YAMLError) as err:
        raise CliError(f"cannot read {path}: {err}", EXIT_USAGE) from err
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a mapping of channel fields (agents, people, budgets…)", EXIT_USAGE)
    return data


async def create(args: argparse.Namespace, settings: Settings) -> int:
    request = channel_input(args, settings)
    channel = await (await _channels(settings)).start(request, f"#{request.channel_id} · created with daemonflow")
    agents = ", ".join(member.agent for member in request.agents)
    people = f"; people: {', '.join(request.people)}" if request.people else ""
    print(f"created channel {channel.id} (agents: {agents}{people}); post with `daemonflow channel post {channel.id} TEXT`")
    return 0


async def list_channels(args: argparse.Namespace, settings: Settings) -> int:
    matching = ChannelFilter(running=None if args.all else True, member=args.member)
    items, _ = await (await _channels(settings)).list(matching, page_size=100)
    if args.json:
        print(json.dumps([item.model_dump(mode="json") for item in items], indent=2))
        return 0
    for item in items:
        print(f"{item.channel_id:24} {item.state or item.execution:18} {', '.join(item.members)}")
    if not items:
        print("(no channels)")
    return 0


# --- one channel ----------------------------------------------------------------------------------


async def status(args: argparse.Namespace, settings: Settings) -> int:
    found = await (await _channel(args, settings)).status()
    print(found.model_dump_json(indent=2) if args.json else format_status(found))
    return 0


def format_status(found: ChannelStatus) -> str:
    budget = f" of {found.token_budget}" if found.token_budget else ""
    lines = [f"channel       {found.channel_id}{f' · {found.title}' if found.title else ''}",
             f"state         {found.state.value}{'' if found.state == ChannelState.IDLE else f' · {found.details}'}",
             f"posts         {found.posts} · {found.queued} queued · tokens {found.tokens_used}{budget} · "
             f"{found.replies_per_post} replies per post", f"people        {', '.join(found.people) or '-'}"]
    for member in found.agents:
        waits = "".join(f"; awaiting {c.tool} (call {c.tool_call_id}): `daemonflow approve {member.conversation_id} "
                        f"{c.tool_call_id}`" for c in member.waiting)
        lines.append(f"agent         {member.agent:12} {member.state:18} {member.replies} replies{waits}")
    return "\n".join(lines)


def _me(fallback: str) -> str:
    """$USER when it can be a member's name, else ``fallback``."""
    try:
        return check_name(getpass.getuser(), "author")
    except (ValueError, OSError, KeyError):
        return fallback


async def post(args: argparse.Namespace, settings: Settings) -> int:
    author = args.author or getpass.getuser()
    try:
        check_name(author, "author")
    except ValueError as err:
        raise CliError(f"{err}; choose one with --as NAME", EXIT_USAGE) from None
    channel = await _channel(args, settings)
    outcome = await channel.post(Post(author=author, content=args.text, mentions=args.mention, reply_to=args.reply_to),
                                 wait_s=None)  # fmt: skip
    if isinstance(outcome, PostWaiting):
        print(f"post {outcome.post_id}: {outcome.detail}")
        for member in outcome.waiting:
            for call in member.waiting:
                print(f"  daemonflow approve {member.conversation_id} {call.tool_call_id}   (or deny)")
        print(f"  follow it with `daemonflow channel watch {channel.id}`")
        return 0
    print(outcome.model_dump_json(indent=2) if args.json else format_result(outcome, author, args.text))
    return 0


def format_result(result: PostResult, author: str, text: str) -> str:
    lines = [f"[#{result.seq}] {author}: {text}"]
    for reply in result.replies:
        lines.append(f"[#{reply.seq}] {reply.agent} ({reply.reason}): {reply.preview}")
    quiet = [_quiet(score) for score in result.scores if score.decision.value not in ("intervene", "reflect")]
    if quiet:
        lines.append("  " + "; ".join(quiet))
    for missing in result.not_answered:
        lines.append(f"  {missing.agent} did not answer: {missing.reason}")
    if result.stopped:
        lines.append(f"  stopped: {result.stopped}")
    elif result.nobody:
        lines.append(f"  {result.nobody}")
    return "\n".join(lines)


def _quiet(score: MemberScore) -> str:
    return f"{score.agent} {score.explanation}"


async def watch(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_or_explain(settings)
    channel = await Channels(client, settings.task_queue, ANSWER_TIMEOUT_S).find(args.channel)
    writing = AgentsWriting()
    members = (await channel.status()).agents
    followers = [asyncio.create_task(writing.follow(ConversationStream(client, conversation_workflow_id(m.conversation_id),
                                                                       timedelta(seconds=ANSWER_TIMEOUT_S)), m.agent))
                 for m in members]  # fmt: skip  (issue 16: the agents' tokens as they write)
    after = args.after
    try:
        while True:
            for event in await channel.events(after=after):
                writing.end_line()
                print(format_event(event), flush=True)
                after = event.id
                if event.type == "state" and event.data.get("state") == ChannelState.ENDED.value:
                    return 0
            await asyncio.sleep(WATCH_POLL_S)
    except KeyboardInterrupt:
        return 0
    finally:
        for follower in followers:
            follower.cancel()


def format_event(event: ChannelEvent) -> str:
    data = event.data
    at = event.at.strftime("%H:%M:%S")
    if event.type == "message":
        return f"{at} [#{data['seq']}] {data['author']}: {data['content']}{' […]' if data.get('truncated') else ''}"
    if event.type == "scored":
        decided = ", ".join(f"{s['agent']} {s['decision']} {s['score']:.2f}" for s in data["scores"])
        return f"{at} scored #{data['seq']}: {decided}"
    if event.type == "state":
        return f"{at} {data['state']}: {data['details']}"
    detail = data.get("detail") or data.get("reason") or json.dumps(data, ensure_ascii=False)
    return f"{at} {event.type.value}: {detail}"


async def history(args: argparse.Namespace, settings: Settings) -> int:
    messages = await (await _channel(args, settings)).history(max(1, min(args.limit, 200)))
    if args.json:
        print(json.dumps([m.model_dump(mode="json") for m in messages], indent=2))
        return 0
    for message in messages:
        kind = "" if message.kind.value in ("person", "agent") else f" ({message.kind.value})"
        print(f"[#{message.seq}] {message.author}{kind}: {message.content}{' […]' if message.truncated else ''}")
    if not messages:
        print("(no messages yet)")
    return 0


async def steer(args: argparse.Namespace, settings: Settings) -> int:
    """pause, resume, inject, end: a signal, and a line saying it was sent."""
    channel = await _channel(args, settings)
    action = args.channel_command
    if action == "pause":
        await channel.pause(args.reason)
    elif action == "resume":
        await channel.resume()
    elif action == "inject":
        await channel.inject(ChannelNote(content=args.text, author=_me("operator")))
    else:
        await channel.end(args.reason)
    said = {"pause": "paused channel {} and its agents", "resume": "resumed channel {}",
            "inject": "noted in channel {}", "end": "ended channel {} and its agents' conversations"}  # fmt: skip
    print(said[action].format(channel.id))
    return 0


ACTIONS = {
    "create": create, "list": list_channels, "status": status, "post": post, "watch": watch, "history": history,
    "pause": steer, "resume": steer, "inject": steer, "end": steer,
}
