"""``daemonflow chat``: talk to an agent from the terminal.

The REPL itself is synchronous (``input()`` on the main thread, so Ctrl-C and Ctrl-D behave as in
any shell) and runs each call on one ``asyncio.Runner``. Ctrl-C while a turn runs only stops
waiting: the conversation is a workflow and answers anyway.

A new conversation exists only once its first message is sent, by update-with-start; an existing
one (``--conversation``) is continued with plain updates. Everything goes through the ``control``
client: a turn that waits for a person comes back at once as ``TurnWaiting`` with the calls to
decide, the chat asks right here and sends each decision with the ``decide`` update, then follows
the turn again — no polling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import sys
import uuid
from dataclasses import dataclass

from cli.common import EXIT_ERROR, EXIT_USAGE, CliError, conversations, format_message, format_status
from cli.streaming import TokenPrinter, start_printer
from config.settings import Settings
from config.templates import InvalidAgentError, UnknownAgentError, load_template
from control.conversation import Conversation
from control.conversations import Conversations
from control.errors import ControlError, ConversationExists, DecisionRejected
from control.turns import Outcome, TurnWaiting, WaitReason
from models.conversation import Approve, ConversationInput, ConversationState, PendingApproval, TurnResult

DEFAULT_AGENT = "assistant"
RECENT_ON_RESUME = 10
SUMMARY_CHARS = 80
APPROVAL_PROMPT = "approve? [y]es / [a]lways / [e]dit {json args} / anything else denies: "

HELP = """\
commands:
  /pause [reason]  pause the conversation (nothing is answered until /resume)
  /resume          resume it
  /status          show its state
  /history [N]     show the last N messages (default 10)
  /end [reason]    end the conversation for good and leave
  /quit            leave; the conversation keeps running (continue it with --conversation)
  /help            this help
anything else is sent to the agent; Ctrl-D quits like /quit.
When a tool call needs a person, the chat asks: y approves, a approves it for the rest of the
conversation, e {"command": "..."} runs edited arguments, anything else denies."""


@dataclass
class ChatSession:
    """One conversation as seen from the terminal."""

    conversations: Conversations
    settings: Settings
    conversation: Conversation
    agent: str
    model: str | None = None
    user: str | None = None
    started: bool = False
    paused_turn: str | None = None
    """A turn that was paused while the chat waited for it: shown after ``/resume``."""
    stream: bool = True
    """Print replies as the model writes them (``cli/streaming.py``); ``--no-stream``: once stored."""
    double_texting: str | None = None
    printer: TokenPrinter | None = None

    @property
    def conversation_id(self) -> str:
        return self.conversation.id

    async def send(self, text: str) -> None:
        try:
            if self.started:
                status = await self.conversation.status()
                if status.paused:
                    reason = f" ({status.pause_reason})" if status.pause_reason else ""
                    print(f"the conversation is paused{reason}; /resume first", file=sys.stderr)
                    return
            if self.stream:
                await self._streaming(text)
            else:
                await self._see_through(await (self._send_later(text) if self.started else self._send_first(text)))
        except ConversationExists:
            print("error: this conversation id was used by a conversation that has ended", file=sys.stderr)
        except ControlError as err:
            print(f"error: {err}", file=sys.stderr)

    async def _streaming(self, text: str) -> None:
        """The turn with its tokens printed as they come; the stored reply printed only if it
        differs from what was printed (a retried call, a reply cut by the printer's lateness)."""
        self.printer, following = await start_printer(self.conversation.stream(), self.agent, self.started)
        try:
            await self._see_through(await (self._send_later(text) if self.started else self._send_first(text)))
        finally:
            following.cancel()
            self.printer = None

    async def _see_through(self, outcome: Outcome) -> None:
        """Until the turn is answered: ask for each call that waits for a person, right here."""
        while isinstance(outcome, TurnWaiting):
            if outcome.reason != WaitReason.AWAITING_APPROVAL:
                self.paused_turn = outcome.turn_id
                print(f"({outcome.detail}; /resume to go on)", flush=True)
                return
            for pending in outcome.pending_approvals:
                await self._ask_approval(pending)
            outcome = await self.conversation.follow(outcome.turn_id, wait_s=None)
        printer = self.printer
        if printer is not None:
            await printer.settle()
        if printer is not None and printer.printed and printer.text == outcome.reply:
            print("\n".join(["", *turn_notes(outcome)]))  # the reply is on screen already
        else:
            print(("\n" if printer is not None and printer.printed else "") + format_turn(self.agent, outcome))

    async def _ask_approval(self, pending: PendingApproval) -> None:
        print(f"approval needed: {pending.tool} {json.dumps(pending.arguments, ensure_ascii=False)}"
              f"\n  ({pending.reason or 'the policy asks'}; call {pending.tool_call_id})", flush=True)
        answer = await asyncio.to_thread(read_line, APPROVAL_PROMPT)
        choice = (answer or "").strip()
        decision, arguments = {"y": "approve", "a": "approve_always", "e": "edit"}.get(choice[:1].lower(), "deny"), None
        if decision == "edit":
            try:
                arguments = json.loads(choice[1:].strip() or "null")
            except json.JSONDecodeError as err:
                print(f"not JSON ({err}); denied", file=sys.stderr)
                decision = "deny"
            if not isinstance(arguments, dict):
                decision, arguments = "deny", None
        try:
            applied = await self.conversation.decide(Approve(
                tool_call_id=pending.tool_call_id, decision=decision, arguments=arguments,
                arguments_hash=pending.args_hash, approver=self.user or getpass.getuser(),
                reason=None if decision != "deny" else "denied from daemonflow chat",
            ))  # fmt: skip
        except DecisionRejected as err:
            print(f"  decision refused: {err.rejection.detail}", file=sys.stderr, flush=True)
            return
        print(f"  → {applied.decision}", flush=True)

    async def _send_first(self, text: str) -> Outcome:
        request = ConversationInput(
            conversation_id=self.conversation_id,
            agent=self.agent,
            model=self.model,
            user_id=self.user,
            double_texting=self.double_texting or "enqueue",
            max_message_chars=self.settings.max_message_chars,
            turns_per_run=self.settings.turns_per_run,
        )
        try:
            started = await self.conversations.start(request, summary(self.agent, self.user, text), text, wait_s=None)
        except (Exception, asyncio.CancelledError):
            self.started = await self._exists()  # the start may have happened though the turn failed
            raise
        self.started = True
        assert started.outcome is not None
        return started.outcome

    async def _send_later(self, text: str) -> Outcome:
        return await self.conversation.send(text, wait_s=None)

    async def _exists(self) -> bool:
        with contextlib.suppress(ControlError, asyncio.CancelledError):
            await self.conversation.describe()
            return True
        return False

    async def command(self, line: str) -> bool:
        """Run a ``/command``; ``False`` means leave the REPL."""
        name, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        if name in ("quit", "exit", "q"):
            return False
        if name == "help":
            print(HELP)
            return True
        if name not in ("pause", "resume", "status", "history", "end"):
            print(f"unknown command /{name}; /help lists them", file=sys.stderr)
            return True
        if not self.started:
            print("the conversation starts with your first message; send one first", file=sys.stderr)
            return True
        try:
            return await self._run(name, rest)
        except ControlError as err:
            print(f"error: {err}", file=sys.stderr)
            return True

    async def _run(self, name: str, rest: str) -> bool:
        if name == "pause":
            await self.conversation.pause(rest)
            print("paused")
        elif name == "resume":
            await self.conversation.resume()
            print("resumed")
            if self.paused_turn:
                turn, self.paused_turn = self.paused_turn, None
                await self._see_through(await self.conversation.follow(turn, wait_s=None))
        elif name == "status":
            print(format_status(await self.conversation.status()))
        elif name == "history":
            limit = int(rest) if rest.isdigit() and 1 <= int(rest) <= 200 else RECENT_ON_RESUME
            print("\n".join(map(format_message, await self.conversation.history(limit))) or "(no messages yet)")
        elif name == "end":
            await self.conversation.end(rest)
            print(f"conversation {self.conversation_id} ended")
            return False
        return True


def summary(agent: str, user: str | None, first_message: str) -> str:
    """The Web UI's one-line description of the conversation, fixed at start."""
    text = " ".join(first_message.split())
    if len(text) > SUMMARY_CHARS:
        text = text[: SUMMARY_CHARS - 1] + "…"
    who = f" with {user}" if user else ""
    return f"{agent} chat{who}: {text}"


def format_turn(agent: str, result: TurnResult) -> str:
    return "\n".join([f"{agent}> {result.reply}", *turn_notes(result)])


def turn_notes(result: TurnResult) -> list[str]:
    """What follows a reply: the tool calls of the turn, and a note if the reply was cut."""
    lines: list[str] = []
    for call in result.tool_calls:
        outcome = {True: "ok", False: "failed", None: ""}[call.success]
        lines.append(f"  · tool {call.tool}: {call.decision} {outcome}".rstrip())
    if result.reply_truncated:
        lines.append("  (reply cut for workflow history; the whole text is in the transcript store)")
    return lines


# --- setting up -----------------------------------------------------------------------------------


def check_agent(name: str, settings: Settings) -> None:
    try:
        load_template(name, settings.agents_dir)
    except UnknownAgentError as err:
        raise CliError(str(err), EXIT_USAGE) from err
    except InvalidAgentError as err:
        raise CliError(str(err), EXIT_ERROR) from err


async def open_session(args: argparse.Namespace, settings: Settings) -> ChatSession:
    """A new session (nothing started yet) or one attached to an existing conversation."""
    if args.conversation is None:
        agent = args.agent or DEFAULT_AGENT
        check_agent(agent, settings)
        client = await conversations(settings)
        conversation = client.get(uuid.uuid4().hex[:12])
        session = ChatSession(client, settings, conversation, agent, args.model, args.user,
                              stream=not args.no_stream, double_texting=args.double_texting)  # fmt: skip
        print(f"conversation {session.conversation_id} · agent {agent} (starts with your first message)")
        return session

    client = await conversations(settings)
    conversation = await client.find(args.conversation)
    if args.agent or args.model:
        print("note: --agent and --model only apply to new conversations; ignored", file=sys.stderr)
    status = await conversation.status()
    print(format_status(status, conversation.execution))
    recent = await conversation.history(RECENT_ON_RESUME)
    if recent:
        print("recent messages:")
        print("\n".join(map(format_message, recent)))
    if not (conversation.execution and conversation.execution.running) or status.state == ConversationState.ENDED:
        raise CliError("this conversation has ended; start a new one with `daemonflow chat`")
    return ChatSession(client, settings, conversation, status.agent, user=args.user, started=True,
                       stream=not args.no_stream)  # fmt: skip


def read_line(prompt: str) -> str | None:
    """One line from stdin; ``None`` at EOF."""
    try:
        return input(prompt)
    except EOFError:
        return None


def run_chat(args: argparse.Namespace, settings: Settings) -> int:
    prompt = ""
    if sys.stdin.isatty():
        import readline  # noqa: F401 - gives input() line editing and history

        prompt = "you> "
    with asyncio.Runner() as runner:
        session = runner.run(open_session(args, settings))
        print("type /help for commands", flush=True)
        while True:
            try:
                line = read_line(prompt)
            except KeyboardInterrupt:
                print()
                line = None
            if line is None:
                break
            line = line.strip()
            if not line:
                continue
            try:
                if line.startswith("/"):
                    if not runner.run(session.command(line)):
                        return 0 if line.startswith("/end") else _leave(session)
                else:
                    runner.run(session.send(line))
            except KeyboardInterrupt:  # Ctrl-C cancels the call; the conversation goes on
                print("\n(stopped waiting; the conversation still answers: /status, /history)", file=sys.stderr)
            except CliError as err:
                print(f"error: {err}", file=sys.stderr)
            sys.stdout.flush()
    return _leave(session)


def _leave(session: ChatSession) -> int:
    if session.started:
        print(
            f"left conversation {session.conversation_id}; it keeps running. "
            f"Continue with: daemonflow chat --conversation {session.conversation_id}"
        )
    return 0
