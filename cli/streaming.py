"""Live tokens in the terminal, and the ``double-texting`` command (issue 16).

``TokenPrinter`` follows a conversation's Workflow Stream (``control/conversation_stream.py``,
one subscription per chat process) and prints what the model writes as it arrives: each model
step's reply starts a line ``agent> ``; a retried call prints a note and starts over (the text
already printed cannot be taken back from a terminal; the note says it is void). ``daemonflow chat
--no-stream`` prints only the stored reply, as before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import TextIO

from cli.common import conversations
from config.settings import Settings
from control.conversation_stream import ConversationStream, until_following
from control.errors import ControlError
from models.streaming import DoubleTexting, TOKENS_TOPIC

FOLLOW_RETRY_S = 0.2
SETTLE_S = 2.0
"""How long the chat waits, once the turn's result is in, for the printer to catch up with it."""


class TokenPrinter:
    def __init__(self, stream: ConversationStream, agent: str, out: TextIO = sys.stdout) -> None:
        self._stream = stream
        self._agent = agent
        self._out = out
        self._seq: int | None = None
        self.text = ""
        """What was printed for the latest model step (since its last reset)."""
        self.settled = asyncio.Event()
        """Set once the stream shows the turn completed (or failed)."""
        self.following = asyncio.Event()
        """Set once the conversation counts this printer as watching (its first poll accepted)."""

    async def follow(self, offset: int) -> None:
        """Print from ``offset`` until cancelled; waits for a conversation that does not exist yet."""
        while True:
            try:
                async for item in self._stream.follow(offset, self.following.set):
                    offset = item.offset + 1
                    self._show(item.topic, item.data)
                return
            except (ControlError, Exception):  # noqa: BLE001 - not started yet, or a worker restarts
                await asyncio.sleep(FOLLOW_RETRY_S)

    def _show(self, topic: str, data: dict) -> None:
        if topic != TOKENS_TOPIC:
            if data.get("type") in ("turn_completed",) or (data.get("type") == "state" and data.get("data", {}).get("state") == "idle"):
                self.settled.set()
            return
        if data.get("kind") == "reset":
            self._write(f"\n  (the model call is retried: the text above is void)\n{self._agent}> ")
            self.text = ""
            return
        if data["seq"] != self._seq:
            self._write(("\n" if self._seq is not None else "") + f"{self._agent}> ")
            self._seq, self.text = data["seq"], ""
        self.text += data["text"]
        self._write(data["text"])

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    @property
    def printed(self) -> bool:
        return self._seq is not None

    async def settle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.settled.wait(), SETTLE_S)


async def start_printer(stream: ConversationStream, agent: str, known: bool) -> tuple[TokenPrinter, asyncio.Task[None]]:
    """A printer from where the stream is now (``known``: the conversation exists; then it returns
    once the conversation counts it as watching, so the next reply streams from its first token)
    or from its start (a new conversation: its first reply streams once the model's check finds it)."""
    offset = 0
    if known:
        with contextlib.suppress(ControlError):
            offset = await stream.offset()
    printer = TokenPrinter(stream, agent)
    following = asyncio.create_task(printer.follow(offset))
    if known:
        await until_following(printer.following)
    return printer, following


def add_parser(sub: argparse._SubParsersAction) -> None:
    command = sub.add_parser("double-texting", help="what a message sent while a turn runs does")
    command.add_argument("conversation", metavar="CONVERSATION", help="conversation id or workflow id")
    command.add_argument("policy", choices=[p.value for p in DoubleTexting],
                         help="enqueue (wait for its turn), reject (refused while a turn runs), "
                              "interrupt (cancel the running generation, answer the new message)")  # fmt: skip


def run(args: argparse.Namespace, settings: Settings) -> int:
    async def set_policy() -> int:
        conversation = await (await conversations(settings)).find(args.conversation)
        applied = await conversation.set_double_texting(DoubleTexting(args.policy))
        print(f"double-texting of conversation {conversation.id}: {applied.value}")
        return 0

    with asyncio.Runner() as runner:
        return runner.run(set_policy())


class AgentsWriting:
    """A channel's agents' tokens in ``daemonflow channel watch``: ``agent> text`` while each writes;
    the channel's own event lines start on a line of their own (``end_line``)."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self._out = out
        self._writing: tuple[str, int] | None = None
        """The (agent, seq) whose line is open."""
        self._last: tuple[str, int] | None = None

    async def follow(self, stream: ConversationStream, agent: str) -> None:
        """Print ``agent``'s tokens from now on, until cancelled."""
        while True:
            try:
                async for item in self._stream_from_now(stream):
                    if item.topic == TOKENS_TOPIC:
                        self._show(agent, item.data)
                return
            except (ControlError, Exception):  # noqa: BLE001 - a worker restarts: follow again
                await asyncio.sleep(FOLLOW_RETRY_S)

    @staticmethod
    async def _stream_from_now(stream: ConversationStream):  # noqa: ANN205 - an async iterator of StreamItem
        async for item in stream.follow(await stream.offset()):
            yield item

    def _show(self, agent: str, data: dict) -> None:
        if data.get("kind") == "reset":
            self.end_line()
            self._out.write(f"  ({agent}'s model call is retried: its text above is void)\n")
            return
        if self._writing != (agent, data["seq"]):
            self.end_line()
            going_on = self._last == (agent, data["seq"])  # an event line came in between
            self._out.write(f"{agent}> {'…' if going_on else ''}")
            self._writing = self._last = (agent, data["seq"])
        self._out.write(data["text"])
        self._out.flush()

    def end_line(self) -> None:
        if self._writing is not None:
            self._out.write("\n")
            self._out.flush()
            self._writing = None
