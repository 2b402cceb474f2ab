"""What an agent of a channel reads: the note in its system prompt, and the text of each turn.

Pure functions of the channel's members and stored messages. An agent's turn shows it the channel
since its last turn, each message headed by its author, then asks it to answer the last one; its
own messages are left out (they are in its own transcript already). Earlier messages are cut to
``QUOTED_CHARS`` and the one to answer to ``ANSWERED_CHARS``, so one turn's text stays within what
a model's context can take; the store keeps them whole.
"""

from __future__ import annotations

from models.channel import AgentMember, AuthorKind
from models.excerpt import excerpt
from store.channels import StoredChannelMessage

QUOTED_CHARS = 2_000
ANSWERED_CHARS = 20_000


def channel_note(channel_id: str, title: str, topic: str, agent: str, agents: list[AgentMember],
                 people: list[str]) -> str:  # fmt: skip
    others = [member.agent for member in agents if member.agent != agent]
    about = "; ".join(part for part in (f'"{title}"' if title else "", f"topic: {topic}" if topic else "") if part)
    members = ", ".join(filter(None, [
        f"{', '.join(others)} (agents)" if others else "", f"{', '.join(people)} (people)" if people else ""]))
    return (
        f"## Channel #{channel_id}\n"
        f'You are "{agent}", one of the agents of channel #{channel_id}{f" ({about})" if about else ""}. '
        f"Other members: {members or 'none yet'}.\n"
        "Each message you receive shows what was said in the channel since your last answer, each "
        "entry headed by its author in brackets; answer the last one. The others answer their own "
        "part: stay within your expertise, be brief, and do not repeat what someone already said. "
        "To ask a member, write @name."
    )


def system_prompt(base: str, note: str) -> str:
    return f"{base.strip()}\n\n{note}"


def _cut(text: str, keep: int) -> str:
    return excerpt(text, keep, lambda omitted: f"\n[... {omitted} characters left out ...]\n")


def _heading(message: StoredChannelMessage, agent: str) -> str:
    if message.kind == AuthorKind.NOTE:
        return f"[note from {message.author}]"
    to = f" to @{message.reply_to}" if message.reply_to and message.kind == AuthorKind.AGENT else ""
    return f"[{message.author}{to}]"


def turn_text(channel_id: str, agent: str, messages: list[StoredChannelMessage], answering: int,
              left_out: int) -> str:  # fmt: skip
    """The message of ``agent``'s turn: ``messages`` (the channel since its last turn, oldest first,
    the one to answer last), minus its own and the channel's notices."""
    shown = [m for m in messages if m.author != agent and m.kind != AuthorKind.NOTICE]
    earlier = f" ({left_out} earlier ones left out)" if left_out else ""
    lines = [f"#{channel_id} — messages since your last answer, oldest first{earlier}:"]
    target = next((m for m in shown if m.seq == answering), None)
    for message in shown:
        keep = ANSWERED_CHARS if message is target else QUOTED_CHARS
        lines.append(f"{_heading(message, agent)} {_cut(message.content, keep)}")
    if target is not None:
        lines.append(f"\nAnswer the last message, from {target.author}.")
    return "\n".join(lines)
