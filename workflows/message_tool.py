"""A conversation's side of private messages: the ``send_private_message`` and
``answer_private_message`` tools, and what it hears.

The tool is judged by the policy like any tool (``config/policy.yaml`` asks a person by default),
then starts a ``PrivateMessageWorkflow`` (``workflows/private_message.py``; a child abandoned when
the conversation moves on, id ``message-<agent>-<12 hex>``, a deterministic ``workflow.uuid4()``),
so a replay issues the same start and a crash never sends it twice. ``wait=true`` holds the tool call
until the message ends or asks for input, at most ``timeout_s`` (≤ ``MAX_WAIT_S``), and the reply
is the tool's result; otherwise (and after a timeout) the tool returns the message id and the
outcome arrives later as a system note injected into the conversation (``Inject`` priority
``next``: it is in the history at once, and the model reads it at its next step).

When a recipient asks for input, the update (signal ``private_message_update``) reaches only the
sender's conversation, which keeps the question in its carried state (``messages_asking``, message
id → question). ``answer_private_message {message_id, content}`` answers one of *those* — any other
id is refused without a signal — by the message workflow's ``sender_input`` signal (a workflow
cannot send an update); the message works again and its outcome comes back the same way (a waiting
call or a note). An answer is not a new message: the hop stays, and the message workflow bounds the
rounds (``MAX_INPUT_ROUNDS``). Both tools are judged by the policy (``ask-agent-messages``).

The message's hop is the hop of the private message this turn answers, plus one: nothing the model
writes sets it (``MAX_HOPS`` in ``models/private_messages.py``). Pure bookkeeping plus one child
start or one signal; no I/O of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from models.conversation import Inject
    from models.private_messages import (
        MessageState,
        MessageUpdate,
        PrivateMessageInput,
        ProvideInput,
        message_workflow_id,
    )
    from models.tools import ToolResult

MAX_WAIT_S = 600
DEFAULT_WAIT_S = 300
WORKFLOW_TYPE = "PrivateMessageWorkflow"
"""Started by name: ``workflows/private_message.py`` imports the conversation, not the reverse."""
INPUT_SIGNAL = "sender_input"
"""``PrivateMessageWorkflow.sender_input``: the sender conversation's answer to a question."""
MAX_ASKING = 20
"""Questions a conversation keeps (the oldest dropped first); a recipient holds at most 3 open messages."""


class MessageTool:
    def __init__(self, asking: dict[str, str]) -> None:
        """``asking``: the carried ``messages_asking`` (message id → question), changed in place."""
        self._asking = asking
        self._waiting: set[str] = set()
        self._heard: dict[str, MessageUpdate] = {}

    async def send(self, sender: str, notify: str, arguments: dict, hops: int, llm_queue: str | None,
                   ended: Callable[[], bool]) -> ToolResult:  # fmt: skip
        """``ended``: the conversation was ended meanwhile (a waiting call stops waiting at once)."""
        message_id = f"{sender}-{workflow.uuid4().hex[:12]}"
        request = PrivateMessageInput(
            message_id=message_id, sender=sender, sender_kind="agent", recipient=str(arguments["to"]),
            content=str(arguments["content"]), hops=hops + 1, notify=notify,
            deepthink=bool(arguments.get("deepthink", False)), llm_queue=llm_queue,
        )  # fmt: skip
        wait = bool(arguments.get("wait", False))
        if wait:
            self._waiting.add(message_id)
        await workflow.start_child_workflow(
            WORKFLOW_TYPE, request, id=message_workflow_id(message_id),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            static_summary=f"private message from {sender} to {request.recipient}",
        )  # fmt: skip
        if not wait:
            return ToolResult(success=True, output=f"private message {message_id} sent to {request.recipient}; "
                                                   "its outcome will arrive as a note")  # fmt: skip
        return await self._outcome(message_id, request.recipient, arguments, ended)

    async def answer(self, sender: str, arguments: dict, ended: Callable[[], bool]) -> ToolResult:
        """Answer the question of a message this conversation sent (and only such a message)."""
        message_id = str(arguments["message_id"])
        if message_id not in self._asking:
            asking = ", ".join(self._asking) or "none"
            return ToolResult(success=False, error=f"private message {message_id} is not waiting for your input "
                                                   f"(messages that are: {asking})")  # fmt: skip
        del self._asking[message_id]
        wait = bool(arguments.get("wait", False))
        if wait:
            self._waiting.add(message_id)
        answer = ProvideInput(content=str(arguments["content"]), author=sender)
        try:
            await workflow.get_external_workflow_handle(message_workflow_id(message_id)).signal(INPUT_SIGNAL, answer)
        except FailureError as err:
            self._waiting.discard(message_id)
            return ToolResult(success=False, error=f"private message {message_id} cannot take an answer: {err}")
        if not wait:
            return ToolResult(success=True, output=f"answer sent for private message {message_id}; "
                                                   "its outcome will arrive as a note")  # fmt: skip
        return await self._outcome(message_id, "the recipient", arguments, ended)

    async def _outcome(self, message_id: str, recipient: str, arguments: dict, ended: Callable[[], bool]) -> ToolResult:
        """The message's next update (input asked, or its end) as the waiting call's result, within
        ``timeout_s`` (≤ ``MAX_WAIT_S``); later updates arrive as notes."""
        timeout_s = min(int(arguments.get("timeout_s", DEFAULT_WAIT_S)), MAX_WAIT_S)
        try:
            await workflow.wait_condition(lambda: message_id in self._heard or ended(), timeout=timedelta(seconds=timeout_s))
        except TimeoutError:
            pass
        self._waiting.discard(message_id)
        update = self._heard.pop(message_id, None)
        if update is None:
            return ToolResult(success=True, output=f"no answer from {recipient} within {timeout_s}s; private "
                                                   f"message {message_id} goes on and its outcome will arrive as a note")  # fmt: skip
        return ToolResult(success=update.state == MessageState.COMPLETED, output=describe(update),
                          error=None if update.state != MessageState.FAILED else update.reason)  # fmt: skip

    def heard(self, update: MessageUpdate) -> Inject | None:
        """A waiting tool call takes the update; otherwise it becomes a note for the conversation.
        A question is kept (``messages_asking``) until the message works again or ends."""
        if update.state == MessageState.INPUT_REQUIRED and update.question:
            self._asking[update.message_id] = update.question
            for oldest in list(self._asking)[:-MAX_ASKING]:
                del self._asking[oldest]
            return self._deliver(update)
        self._asking.pop(update.message_id, None)
        if update.state == MessageState.WORKING:  # its question was answered (maybe by a person): no note
            return None
        return self._deliver(update)

    def _deliver(self, update: MessageUpdate) -> Inject | None:
        if update.message_id in self._waiting and update.message_id not in self._heard:
            self._heard[update.message_id] = update
            return None
        return Inject(content=describe(update), role="system", priority="next")


def describe(update: MessageUpdate) -> str:
    head = f"Private message {update.message_id} to {update.recipient}: {update.state.value.replace('_', ' ')}"
    if update.state == MessageState.COMPLETED:
        cut = " […]" if update.reply_chars > len(update.reply) else ""
        return f"{head}. {update.recipient} answered:\n{update.reply}{cut}"
    if update.state == MessageState.INPUT_REQUIRED:
        return (f"{head}. {update.recipient} asks: {update.question}\n(Answer it with the answer_private_message "
                f"tool, message_id {update.message_id}; a person can answer with "
                f"`daemonflow message reply {update.message_id} …` or POST /messages/{update.message_id}/input.)")
    return f"{head}: {update.reason or 'no reason given'}"
