"""The control client of private messages: send one, read it, answer its question, list them, and
the collaboration tracker.

A message is a ``PrivateMessageWorkflow`` (``message-<id>``); sending the same id twice is refused
(``PrivateMessageExists``), so a client that retries with its own id never sends twice. What a
message is now comes from the store, where the workflow writes every step (the row outlives the
workflow's retention); a message so new that its first row is not written yet is asked directly.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from config.settings import Settings
from control.errors import ControlError, NotWaitingForInput, PrivateMessageExists, PrivateMessageNotFound, TurnFailed
from control.failures import answered
from models.collaboration import CollaborationReport, MessagePage
from models.private_messages import MessageStatus, PrivateMessageInput, ProvideInput, message_workflow_id
from store.private_messages import PrivateMessageStore
from workflows.failures import failure_message, failure_type
from workflows.private_message import PrivateMessageWorkflow


def new_message_id() -> str:
    return f"m{uuid.uuid4().hex[:12]}"


class Messages:
    def __init__(self, client: Client, settings: Settings, store: PrivateMessageStore, timeout_s: float = 10.0) -> None:
        self._client = client
        self._settings = settings
        self._store = store
        self._timeout = timedelta(seconds=timeout_s)

    def request(self, sender: str, recipient: str, content: str, **fields) -> PrivateMessageInput:
        """A person's message with the settings' accept rule, deepthink and timeouts."""
        s = self._settings
        return PrivateMessageInput(
            message_id=fields.pop("message_id", None) or new_message_id(), sender=sender, sender_kind="person",
            recipient=recipient, content=content, max_open=s.message_max_open, min_expertise=s.message_min_expertise,
            reply_timeout_s=s.message_reply_timeout_s, input_timeout_s=s.message_input_timeout_s,
            deepthink_steps=s.deepthink_steps, llm_queue=s.llm_task_queue or None, **fields,
        )  # fmt: skip

    async def send(self, request: PrivateMessageInput) -> MessageStatus:
        starting = self._client.start_workflow(
            PrivateMessageWorkflow.run, request, id=message_workflow_id(request.message_id),
            task_queue=self._settings.task_queue, static_summary=f"private message to {request.recipient}",
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )  # fmt: skip
        try:
            await answered(starting, "sending the private message", needs_worker=False)
        except WorkflowAlreadyStartedError:
            raise PrivateMessageExists(request.message_id) from None
        except ControlError as err:
            if isinstance(err.__cause__, RPCError) and err.__cause__.status == RPCStatusCode.ALREADY_EXISTS:
                raise PrivateMessageExists(request.message_id) from None
            raise
        return MessageStatus(message_id=request.message_id, sender=request.sender, sender_kind=request.sender_kind,
                             recipient=request.recipient, hops=request.hops)  # fmt: skip

    async def status(self, message_id: str) -> MessageStatus:
        stored = await asyncio.to_thread(self._store.get, message_id)
        if stored is not None:
            return stored
        handle = self._client.get_workflow_handle(message_workflow_id(message_id))
        try:
            return await answered(handle.query(PrivateMessageWorkflow.status, rpc_timeout=self._timeout),
                                  f"reading private message {message_id}")  # fmt: skip
        except ControlError as err:
            if isinstance(err.__cause__, RPCError) and err.__cause__.status == RPCStatusCode.NOT_FOUND:
                raise PrivateMessageNotFound(message_id) from None
            raise

    async def provide_input(self, message_id: str, answer: ProvideInput) -> MessageStatus:
        """The sender's answer to the recipient's question (the message must be input_required)."""
        await self.status(message_id)  # PrivateMessageNotFound
        handle = self._client.get_workflow_handle(message_workflow_id(message_id))
        try:
            return await answered(handle.execute_update(PrivateMessageWorkflow.provide_input, answer,
                                                        rpc_timeout=self._timeout), f"answering message {message_id}")  # fmt: skip
        except WorkflowUpdateFailedError as err:
            if failure_type(err.cause) == "NotWaitingForInput":
                raise NotWaitingForInput(failure_message(err.cause)) from None
            raise TurnFailed(failure_message(err.cause)) from None
        except ControlError as err:
            if isinstance(err.__cause__, RPCError) and err.__cause__.status == RPCStatusCode.NOT_FOUND:
                raise NotWaitingForInput(f"message {message_id} is over") from None
            raise

    async def result(self, message_id: str) -> MessageStatus:
        """Waits for the message's end (tests, ``daemonflow message send --wait``)."""
        handle = self._client.get_workflow_handle(message_workflow_id(message_id), result_type=MessageStatus)
        return await handle.result()

    async def page(self, agent: str | None, limit: int, before: int | None) -> MessagePage:
        return await asyncio.to_thread(self._store.page, agent, limit, before)

    async def collaboration(self, since: datetime | None, until: datetime | None) -> CollaborationReport:
        return await asyncio.to_thread(self._store.collaboration, since, until)
