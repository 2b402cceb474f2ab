"""The control client: the one way code outside workers and workflows reaches conversations.

``Conversations`` starts them (update-with-start when there is a first message), finds them by id,
lists them from visibility, and gathers what waits for a person across them; each one is then a
``control.conversation.Conversation``. The API, the CLI, the monitoring round and the cache
cleanup use it; none of them holds a workflow handle, builds a visibility query or unwraps a
Temporal failure. It is scoped to one task queue: listings only see conversations started there,
and starts put conversations there.

Id conflicts, one policy for every start: ``WorkflowIDConflictPolicy.FAIL`` on a running workflow
with the id and ``WorkflowIDReusePolicy.REJECT_DUPLICATE`` on a closed one. A start never joins a
running conversation nor revives an ended one under the same id; an id in use is
``ConversationExists``. To talk to an existing conversation, ``find`` it and ``send``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateHandle, WorkflowUpdateStage
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from control.conversation import Conversation, new_turn_id
from control.errors import ControlError, ConversationExists, ConversationNotFound, TemporalUnavailable
from control.failures import answered
from control.turns import Outcome
from control.visibility import WORKFLOW_TYPE, ConversationFilter, ConversationItem
from models.conversation import (
    WORKFLOW_ID_PREFIX,
    ConversationInput,
    PendingApproval,
    SendMessage,
    TurnResult,
    conversation_workflow_id,
)
from workflows.conversation import ConversationWorkflow

QUERY_CONCURRENCY = 8
"""Conversations asked at once when gathering pending approvals across many."""


@dataclass
class Started:
    conversation: Conversation
    turn_id: str | None = None
    """The first message's turn (its ``send_message`` update id), when there was one."""
    outcome: Outcome | None = None


@dataclass
class AwaitingApproval:
    conversation: ConversationItem
    pending: list[PendingApproval]


class Conversations:
    def __init__(self, client: Client, task_queue: str, timeout_s: float = 10.0) -> None:
        """``timeout_s``: how long a worker (or Temporal) may take to answer a query, accept a
        message or a decision, or take a signal, before the call fails with ``NoWorker``."""
        self._client = client
        self._task_queue = task_queue
        self._timeout = timedelta(seconds=timeout_s)

    @property
    def task_queue(self) -> str:
        return self._task_queue

    def get(self, conversation_id: str) -> Conversation:
        """The conversation ``conversation_id`` (workflow ``conversation-<id>``), not looked up."""
        return self.of_workflow(conversation_workflow_id(conversation_id))

    def of_workflow(self, workflow_id: str) -> Conversation:
        return Conversation(self._client, workflow_id, self._timeout, self._task_queue)

    async def find(self, ref: str) -> Conversation:
        """The conversation ``ref`` names, described (so it knows whether it still runs).

        ``ref`` is a conversation id (workflow ``conversation-<id>``), or a workflow id as is:
        conversations started with the plain `temporal` CLI may have any id. Only a
        ``ConversationWorkflow`` counts; anything else is ``ConversationNotFound``.
        """
        candidates = [ref] if ref.startswith(WORKFLOW_ID_PREFIX) else [conversation_workflow_id(ref), ref]
        for workflow_id in candidates:
            conversation = self.of_workflow(workflow_id)
            try:
                execution = await conversation.describe()
            except ConversationNotFound:
                continue
            if execution.workflow_type == WORKFLOW_TYPE:
                return conversation
        raise ConversationNotFound(ref, candidates)

    async def is_running(self, conversation_id: str) -> bool:
        """False for an ended or unknown conversation; a ``ControlError`` when Temporal cannot say."""
        try:
            return (await self.get(conversation_id).describe()).running
        except ConversationNotFound:
            return False

    # --- starting -----------------------------------------------------------------------------

    async def start(
        self, request: ConversationInput, summary: str, message: str | None = None, wait_s: float | None = None
    ) -> Started:
        """Start ``request`` (its ``conversation_id`` set); with ``message``, in the same call as its
        first turn, whose outcome comes back as ``Conversation.send``'s does."""
        assert request.conversation_id, "the caller names the conversation"
        conversation = self.get(request.conversation_id)
        options = dict(
            id=conversation.workflow_id, task_queue=self._task_queue, static_summary=summary,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )  # fmt: skip
        if message is None:
            started = self._client.start_workflow(ConversationWorkflow.run, request, **options)
            await self._unless_taken(request.conversation_id, started)
            return Started(conversation)
        turn_id = new_turn_id()
        start = WithStartWorkflowOperation(ConversationWorkflow.run, request, **options)
        starting = self._client.start_update_with_start_workflow(
            ConversationWorkflow.send_message, SendMessage(content=message), start_workflow_operation=start,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED, id=turn_id,
        )  # fmt: skip
        try:
            update: WorkflowUpdateHandle[TurnResult] = await conversation.accepted(
                self._unless_taken(request.conversation_id, starting)
            )
        except BaseException:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await start.workflow_handle()  # collects the start's own error, which asyncio would report
            raise
        return Started(conversation, turn_id, await conversation.outcome(update, wait_s))

    async def _unless_taken(self, conversation_id: str, call: Awaitable[object]) -> object:
        try:
            return await answered(call, "starting the conversation", needs_worker=False)
        except WorkflowAlreadyStartedError:
            raise ConversationExists(conversation_id) from None
        except ControlError as err:
            if isinstance(err.__cause__, RPCError) and err.__cause__.status == RPCStatusCode.ALREADY_EXISTS:
                raise ConversationExists(conversation_id) from None
            raise

    # --- listing ------------------------------------------------------------------------------

    async def list(
        self, matching: ConversationFilter, page_size: int, page_token: bytes | None = None
    ) -> tuple[list[ConversationItem], bytes | None]:
        """One page, newest first, of this task queue's conversations; and the next page's token."""
        pages = self._client.list_workflows(
            self._scoped(matching).query(), page_size=page_size, next_page_token=page_token, rpc_timeout=self._timeout
        )
        await answered(pages.fetch_next_page(), "listing conversations", needs_worker=False)
        return [ConversationItem.of(e) for e in pages.current_page or []], pages.next_page_token

    async def matching(self, matching: ConversationFilter, limit: int) -> list[ConversationItem]:
        """Up to ``limit`` of this task queue's conversations, newest first."""
        pages = self._client.list_workflows(self._scoped(matching).query(), limit=limit, rpc_timeout=self._timeout)

        async def collect() -> list[ConversationItem]:
            return [ConversationItem.of(e) async for e in pages]

        return await answered(collect(), "listing conversations", needs_worker=False)

    async def awaiting_approval(self, limit: int = 500) -> list[AwaitingApproval]:
        """Every running conversation waiting for a person, with what waits in it (asked
        ``QUERY_CONCURRENCY`` at a time; one that cannot answer any more is left out)."""
        listed = await self.matching(ConversationFilter(running=True, awaiting_approval=True), limit)
        gate = asyncio.Semaphore(QUERY_CONCURRENCY)

        async def pending_in(item: ConversationItem) -> AwaitingApproval:
            async with gate:
                try:
                    return AwaitingApproval(item, await self.of_workflow(item.workflow_id).pending_approvals())
                except ControlError:  # closed or unanswerable since visibility listed it
                    return AwaitingApproval(item, [])

        found = await asyncio.gather(*(pending_in(item) for item in listed))
        return [waiting for waiting in found if waiting.pending]

    # --- can conversations be served -----------------------------------------------------------

    async def check_temporal(self) -> None:
        """``TemporalUnavailable`` unless the frontend says its workflow service is serving."""
        serving = self._client.service_client.check_health(timeout=self._timeout)
        if not await answered(serving, "Temporal health", needs_worker=False):
            raise TemporalUnavailable("Temporal answers but reports the workflow service is not serving")

    async def workflow_pollers(self) -> int:
        """Workers polling this task queue for workflow tasks (a conversation needs one to move)."""
        request = DescribeTaskQueueRequest(
            namespace=self._client.namespace,
            task_queue=TaskQueue(name=self._task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
        describing = self._client.workflow_service.describe_task_queue(request, timeout=self._timeout)
        described = await answered(describing, "describing the task queue", needs_worker=False)
        return len(described.pollers)

    def _scoped(self, matching: ConversationFilter) -> ConversationFilter:
        return dataclasses.replace(matching, task_queue=self._task_queue)
