"""``daemonflow chat``: talk to an agent from the terminal.

The REPL itself is synchronous (``input()`` on the main thread, so Ctrl-C and Ctrl-D behave as in
any shell) and runs each Temporal call on one ``asyncio.Runner``. Ctrl-C while a turn runs only
stops waiting: the conversation is a workflow and answers anyway.

A new conversation exists only once its first message is sent, by update-with-start; an existing
one (``--conversation``) is continued with plain updates.
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
from typing import Any

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from config.settings import Settings
from config.templates import InvalidAgentError, UnknownAgentError, load_template
from models.conversation import (
    Approve,
    ConversationInput,
    ConversationState,
    End,
    Pause,
    PendingApproval,
    SendMessage,
    TurnResult,
    conversation_workflow_id,
)
from workflows.conversation import ConversationWorkflow

from cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    CliError,
    connect_or_explain,
    conversation_id_of,
    find_conversation,
    format_message,
    format_status,
    query_history,
    query_status,
    send_signal,
    update_failure_reason,
)

DEFAULT_AGENT = "assistant"
RECENT_ON_RESUME = 10
SUMMARY_CHARS = 80
APPROVAL_POLL_S = 0.5
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

    client: Client
    settings: Settings
    workflow_id: str
    agent: str
    model: str | None = None
    user: str | None = None
    started: bool = False

    @property
    def conversation_id(self) -> str:
        return conversation_id_of(self.handle)

    @property
    def handle(self) -> WorkflowHandle[Any, Any]:
        # No run id: the handle follows the conversation across continue-as-new.
        return self.client.get_workflow_handle(self.workflow_id)

    async def send(self, text: str) -> None:
        if self.started:
            status = await query_status(self.handle)
            if status.paused:
                reason = f" ({status.pause_reason})" if status.pause_reason else ""
                print(f"the conversation is paused{reason}; /resume first", file=sys.stderr)
                return
        turn = asyncio.ensure_future(self._send_later(text) if self.started else self._send_first(text))
        try:
            result = await self._answer_approvals_until_done(turn)
        except WorkflowAlreadyStartedError:
            print("error: this conversation id was used by a conversation that has ended", file=sys.stderr)
            return
        except (WorkflowUpdateFailedError, RPCError) as err:
            print(f"error: {update_failure_reason(err)}", file=sys.stderr)
            return
        print(format_turn(self.agent, result))

    async def _answer_approvals_until_done(self, turn: asyncio.Future) -> TurnResult:
        """While the turn runs, offer each tool call that waits for a person, right here."""
        asked: set[str] = set()
        try:
            while not turn.done():
                await asyncio.wait([turn], timeout=APPROVAL_POLL_S)
                if turn.done() or not self.started and not await self._exists():
                    continue
                self.started = True
                for pending in (await query_status(self.handle)).pending_approvals:
                    if pending.tool_call_id not in asked:
                        asked.add(pending.tool_call_id)
                        await self._ask_approval(pending)
        except BaseException:
            turn.cancel()
            raise
        return turn.result()

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
        await send_signal(self.handle, ConversationWorkflow.approve, Approve(
            tool_call_id=pending.tool_call_id, decision=decision, arguments=arguments,
            arguments_hash=pending.args_hash, approver=self.user or getpass.getuser(),
            reason=None if decision != "deny" else "denied from daemonflow chat",
        ))
        print(f"  → {decision}", flush=True)

    async def _send_first(self, text: str) -> TurnResult:
        start = WithStartWorkflowOperation(
            ConversationWorkflow.run,
            ConversationInput(
                conversation_id=self.conversation_id,
                agent=self.agent,
                model=self.model,
                user_id=self.user,
                max_message_chars=self.settings.max_message_chars,
                turns_per_run=self.settings.turns_per_run,
            ),
            id=self.workflow_id,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # Never revive a conversation that was ended meanwhile under the same id.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            task_queue=self.settings.task_queue,
            static_summary=summary(self.agent, self.user, text),
        )
        try:
            result = await self.client.execute_update_with_start_workflow(
                ConversationWorkflow.send_message, SendMessage(content=text), start_workflow_operation=start
            )
        except (Exception, asyncio.CancelledError):
            # The start may have happened even though the update failed or was cancelled.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await start.workflow_handle()  # collects its error, else asyncio warns it was never retrieved
            self.started = await self._exists()
            raise
        self.started = True
        return result

    async def _send_later(self, text: str) -> TurnResult:
        return await self.handle.execute_update(ConversationWorkflow.send_message, SendMessage(content=text))

    async def _exists(self) -> bool:
        try:
            await self.handle.describe()
        except RPCError:
            return False
        return True

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
        if name == "pause":
            await send_signal(self.handle, ConversationWorkflow.pause, Pause(reason=rest))
            print("paused")
        elif name == "resume":
            await send_signal(self.handle, ConversationWorkflow.resume)
            print("resumed")
        elif name == "status":
            print(format_status(await query_status(self.handle)))
        elif name == "history":
            limit = int(rest) if rest.isdigit() and 1 <= int(rest) <= 200 else RECENT_ON_RESUME
            print("\n".join(map(format_message, await query_history(self.handle, limit))) or "(no messages yet)")
        elif name == "end":
            await send_signal(self.handle, ConversationWorkflow.end, End(reason=rest))
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
    lines = [f"{agent}> {result.reply}"]
    for call in result.tool_calls:
        outcome = {True: "ok", False: "failed", None: ""}[call.success]
        lines.append(f"  · tool {call.tool}: {call.decision} {outcome}".rstrip())
    if result.reply_truncated:
        lines.append("  (reply cut for workflow history; the whole text is in the transcript store)")
    return "\n".join(lines)


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
        client = await connect_or_explain(settings)
        session = ChatSession(
            client, settings, conversation_workflow_id(uuid.uuid4().hex[:12]), agent, args.model, args.user
        )
        print(f"conversation {session.conversation_id} · agent {agent} (starts with your first message)")
        return session

    client = await connect_or_explain(settings)
    handle, execution = await find_conversation(client, args.conversation)
    if args.agent or args.model:
        print("note: --agent and --model only apply to new conversations; ignored", file=sys.stderr)
    status = await query_status(handle)
    print(format_status(status, execution))
    recent = await query_history(handle, RECENT_ON_RESUME)
    if recent:
        print("recent messages:")
        print("\n".join(map(format_message, recent)))
    if execution != WorkflowExecutionStatus.RUNNING or status.state == ConversationState.ENDED:
        raise CliError("this conversation has ended; start a new one with `daemonflow chat`")
    return ChatSession(client, settings, handle.id, status.agent, user=args.user, started=True)


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
            except (KeyboardInterrupt, RPCTimeoutOrCancelledError):
                # Ctrl-C cancels the call; the client reports a cancelled update as its own error.
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
