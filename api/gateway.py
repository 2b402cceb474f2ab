"""The one place the API talks to Temporal and the store, turning their failures into problems.

Handlers ask for a conversation and get a handle or a 404 / 409 that says why; a query no worker
answers is a 503 that says to start one. Store calls are synchronous (SQLAlchemy) and run in a
thread so they never block the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError, RPCStatusCode

from api.auth import KeyRing
from api.errors import ApiError, temporal_problem
from config.settings import Settings
from models.conversation import WORKFLOW_ID_PREFIX, conversation_workflow_id
from models.events import ConversationEvent, EventsQuery
from store.actions import ActionStore
from store.transcript import TranscriptStore

T = TypeVar("T")


@dataclass
class ApiContext:
    """Everything a request needs, built once at start and kept on ``app.state.daemonflow``."""

    settings: Settings
    client: Client
    keys: KeyRing
    transcripts: TranscriptStore
    actions: ActionStore
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the server begins to stop, so live event streams end instead of holding it up."""

    @property
    def engine(self) -> Engine:
        """The store's engine, for read functions that take one (monitoring, analytics)."""
        return self.transcripts.engine

    @property
    def query_timeout(self) -> timedelta:
        return timedelta(seconds=self.settings.api_query_timeout_s)

    def handle(self, conversation_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(conversation_workflow_id(conversation_id))

    async def describe(self, conversation_id: str) -> WorkflowExecutionDescription:
        """The conversation's latest run, or 404."""
        try:
            return await self.handle(conversation_id).describe(rpc_timeout=self.query_timeout)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise not_found(conversation_id) from None
            raise temporal_problem(err, "describing the conversation") from err

    async def running(self, conversation_id: str) -> WorkflowHandle[Any, Any]:
        """A handle on a conversation that can still take signals: 404 if unknown, 409 if over."""
        description = await self.describe(conversation_id)
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise ended(conversation_id, description.status)
        return self.handle(conversation_id)

    async def query(self, handle: WorkflowHandle[Any, Any], query: Any, *args: Any, result_type: type | None = None) -> Any:
        try:
            if result_type is not None:
                return await handle.query(query, *args, result_type=result_type, rpc_timeout=self.query_timeout)
            return await handle.query(query, *args, rpc_timeout=self.query_timeout)
        except (RPCTimeoutOrCancelledError, RPCError) as err:
            raise temporal_problem(err, f"query on conversation {conversation_of(handle)}") from err
        except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
            raise ApiError(503, "query-failed", "The workflow could not answer",
                           f"query on conversation {conversation_of(handle)} failed: {err}") from err  # fmt: skip

    async def events(self, handle: WorkflowHandle[Any, Any], after: int, limit: int | None = None) -> list[ConversationEvent]:
        query = EventsQuery(after=after, limit=limit) if limit else EventsQuery(after=after)
        return await self.query(handle, "events", query, result_type=list[ConversationEvent])

    async def signal(self, handle: WorkflowHandle[Any, Any], signal: Any, *args: Any) -> None:
        try:
            await handle.signal(signal, *args, rpc_timeout=self.query_timeout)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise ended(conversation_of(handle), None) from None
            raise temporal_problem(err, "sending the signal") from err

    async def in_thread(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(call, *args)


def conversation_of(handle: WorkflowHandle[Any, Any]) -> str:
    return handle.id.removeprefix(WORKFLOW_ID_PREFIX)


def not_found(conversation_id: str) -> ApiError:
    return ApiError(404, "conversation-not-found", "Unknown conversation",
                    f"there is no conversation {conversation_id!r} (workflow {conversation_workflow_id(conversation_id)})")  # fmt: skip


def ended(conversation_id: str, status: WorkflowExecutionStatus | None) -> ApiError:
    how = status.name.lower() if status else "not running"
    return ApiError(409, "conversation-ended", "Conversation is over",
                    f"conversation {conversation_id!r} is {how}; start a new one")  # fmt: skip


def execution_name(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status else "unknown"
