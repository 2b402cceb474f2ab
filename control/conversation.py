"""One conversation, as the API and the CLI drive it: read it, steer it, talk to it, decide for it.

A ``Conversation`` wraps the workflow handle so nothing else has to: every call is typed by the
workflow's own methods (``ConversationWorkflow.status``, ``.send_message``, ``.decide``…), bounded
by the client's answer timeout, and fails with a ``control.errors`` domain error. Found through
``Conversations.find`` it also knows whether the workflow still runs, so steering an ended
conversation is refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio.client import (
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.service import RPCError, RPCStatusCode

from control.errors import (
    ControlError,
    ConversationEnded,
    ConversationNotFound,
    NoWorker,
    RunEnding,
    TurnNotFound,
)
from control.failures import again_while, answered, decision_failure, rpc_failure, turn_failure, until_ready
from control.turns import Outcome, turn_outcome
from control.workflow_client import WorkflowClient
from models.conversation import (
    HISTORY_LIMIT_MAX,
    WORKFLOW_ID_PREFIX,
    Approve,
    ConversationInput,
    DecisionApplied,
    DelegatedSettings,
    End,
    HistoryQuery,
    Inject,
    MessageView,
    Pause,
    PendingApproval,
    SendMessage,
    SetAutoAccept,
    Status,
    TurnProgress,
    TurnResult,
    WatchTurn,
)
from models.events import ConversationEvent, EventsQuery
from models.streaming import DoubleTexting, SetDoubleTexting
from control.conversation_stream import ConversationStream
from workflows.conversation import ConversationWorkflow

TURN_POLL = timedelta(seconds=1)
"""How long ``turn()`` waits for a result that is not there yet before saying "not done"."""


def new_turn_id() -> str:
    """A turn's id is its ``send_message`` update id: its result can be fetched by it later."""
    return f"turn-{uuid.uuid4().hex}"


class Conversation(WorkflowClient):
    RUN = ConversationWorkflow.run
    PREFIX = WORKFLOW_ID_PREFIX
    NOUN = "conversation"
    REVIVED_BY = "a new message"
    NOT_FOUND = ConversationNotFound
    ENDED = ConversationEnded

    def _revival_input(self) -> ConversationInput:
        return ConversationInput(revive=True)

    # --- reading ------------------------------------------------------------------------------

    async def status(self) -> Status:
        return await self._query(self._handle.query(ConversationWorkflow.status, rpc_timeout=self._timeout))

    async def history(self, limit: int, timeout: timedelta | None = None) -> list[MessageView]:
        """Recent messages, then those the model has not seen yet (``pending``), oldest first."""
        asking = self._handle.query(ConversationWorkflow.history, HistoryQuery(limit=limit),
                                    rpc_timeout=timeout or self._timeout)  # fmt: skip
        return await self._query(asking)

    async def pending_messages(self, timeout: timedelta | None = None) -> list[MessageView]:
        """Injected notes and queued messages the model has not seen yet, in transcript order."""
        return [m for m in await self.history(HISTORY_LIMIT_MAX, timeout) if m.pending]

    async def events(self, after: int, limit: int | None = None) -> list[ConversationEvent]:
        request = EventsQuery(after=after, limit=limit) if limit else EventsQuery(after=after)
        return await self._query(self._handle.query(ConversationWorkflow.events, request, rpc_timeout=self._timeout))

    async def pending_approvals(self) -> list[PendingApproval]:
        return await self._query(self._handle.query(ConversationWorkflow.pending_approvals, rpc_timeout=self._timeout))

    async def delegated_settings(self) -> DelegatedSettings:
        """What work it delegates inherits (``models.conversation.DelegatedSettings``)."""
        return await self._query(self._handle.query(ConversationWorkflow.delegated_settings, rpc_timeout=self._timeout))

    async def _query(self, call: Awaitable[Any]) -> Any:
        return await answered(call, f"query on conversation {self.id}")

    def stream(self) -> ConversationStream:
        """Its Workflow Stream: events and token batches by offset (``control/conversation_stream.py``)."""
        return ConversationStream(self._client, self.workflow_id, self._timeout)

    async def set_double_texting(self, policy: DoubleTexting) -> DoubleTexting:
        """The ``set_double_texting`` update: the policy now in force (``models/streaming.py``)."""
        self.ensure_running()
        update = self._handle.execute_update(ConversationWorkflow.set_double_texting, SetDoubleTexting(policy=policy),
                                             rpc_timeout=self._timeout)  # fmt: skip
        try:
            return await answered(update, f"setting double-texting on conversation {self.id}")
        except WorkflowUpdateFailedError as err:
            raise turn_failure(err) from err

    # --- steering (signals: delivered, applied at the workflow's next step boundary) -----------

    async def pause(self, reason: str = "") -> None:
        await self._signal(ConversationWorkflow.pause, Pause(reason=reason))

    async def resume(self) -> None:
        await self._signal(ConversationWorkflow.resume)

    async def inject(self, note: Inject) -> None:
        await self.revive_if_archived()  # a note to an archived conversation revives it
        await self._signal(ConversationWorkflow.inject, note)

    async def end(self, reason: str = "") -> None:
        await self._signal(ConversationWorkflow.end, End(reason=reason))

    async def set_auto_accept(self, enabled: bool) -> None:
        await self._signal(ConversationWorkflow.set_auto_accept, SetAutoAccept(enabled=enabled))

    async def _signal(self, signal: Callable[..., None], *args: Any) -> None:
        self.ensure_running()
        sent = self._handle.signal(signal, *args, rpc_timeout=self._timeout)
        await answered(sent, f"signalling conversation {self.id}")

    # --- talking ------------------------------------------------------------------------------

    async def send(self, content: str, wait_s: float | None, turn_id: str | None = None) -> Outcome:
        """Send a message; its ``TurnResult``, or ``TurnWaiting`` (a person, a pause, the budget).
        An archived conversation is revived first; one that archives just as the message goes out
        is revived and sent to again (the update never reached a run that could take it)."""
        turn_id = turn_id or new_turn_id()
        await self.revive_if_archived()
        self.ensure_running()
        return await again_while(lambda: self._send_once(content, wait_s, turn_id), lambda e: isinstance(e, RunEnding))

    async def _send_once(self, content: str, wait_s: float | None, turn_id: str) -> Outcome:
        """A run that hands over refuses messages (``RunEnding``) until the next run takes them."""
        try:
            update = await self.accepted(self._start_turn(content, turn_id))
        except ControlError:
            await self.describe()
            if not await self.revive_if_archived():
                raise
            update = await self.accepted(self._start_turn(content, turn_id))
        return await self.outcome(update, wait_s)

    def _start_turn(self, content: str, turn_id: str) -> Awaitable[WorkflowUpdateHandle[TurnResult]]:
        return until_ready(lambda: self._handle.start_update(
            ConversationWorkflow.send_message, SendMessage(content=content), id=turn_id,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED))  # fmt: skip

    async def follow(self, turn_id: str, wait_s: float | None) -> Outcome:
        """Go on waiting for a turn that answered ``TurnWaiting`` (after a decision, say)."""
        update = self._handle.get_update_handle_for(ConversationWorkflow.send_message, turn_id)
        return await self.outcome(update, wait_s)

    async def outcome(self, update: WorkflowUpdateHandle[TurnResult], wait_s: float | None) -> Outcome:
        """An accepted turn's result, or ``TurnWaiting`` (see ``control.turns``)."""
        return await turn_outcome(self._handle, update, wait_s, self.status)

    async def turn(self, turn_id: str) -> TurnResult | None:
        """A turn's result if it is over, None while it runs."""
        update = self._handle.get_update_handle_for(ConversationWorkflow.send_message, turn_id)
        try:
            return await update.result(rpc_timeout=TURN_POLL)
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            return None
        except WorkflowUpdateFailedError as err:
            raise turn_failure(err) from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise TurnNotFound(self.id, turn_id) from None
            raise rpc_failure(err, "reading the turn") from err

    async def watch(self, turn_id: str) -> TurnProgress:
        """The ``watch_turn`` update: returns once the turn (a message's update id, or a requested
        turn's request id) is over, or the conversation waits for a person, is paused, or ended."""
        self.ensure_running("its turns are over")
        try:
            return await answered(self._handle.execute_update(ConversationWorkflow.watch_turn, WatchTurn(turn_id=turn_id)),
                                  f"watching turn {turn_id}")  # fmt: skip
        except WorkflowUpdateFailedError as err:
            raise turn_failure(err) from err

    async def accepted(self, starting: Awaitable[WorkflowUpdateHandle[TurnResult]]) -> WorkflowUpdateHandle[TurnResult]:
        """Wait (the answer timeout) for the workflow to accept the message: its validator's
        rejection is a ``MessageRejected`` here, and no answer a ``NoWorker``."""
        try:
            return await asyncio.wait_for(starting, self._timeout.total_seconds())
        except TimeoutError:
            raise NoWorker(
                f"no worker accepted the message within {self._timeout.total_seconds():g}s; is a worker running on "
                f"task queue {self._task_queue!r}? (the message may still be answered later)"
            ) from None
        except WorkflowUpdateFailedError as err:
            raise turn_failure(err) from err
        except RPCError as err:
            raise rpc_failure(err, "sending the message") from err

    # --- deciding -----------------------------------------------------------------------------

    async def decide(self, decision: Approve) -> DecisionApplied:
        """The ``decide`` update: the decision as the workflow applied it, or ``DecisionRejected``."""
        self.ensure_running("nothing in it waits for a decision")
        try:
            return await answered(
                self._handle.execute_update(ConversationWorkflow.decide, decision, rpc_timeout=self._timeout),
                f"deciding tool call {decision.tool_call_id}",
            )
        except WorkflowUpdateFailedError as err:
            raise decision_failure(err) from err
