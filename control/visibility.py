"""Which conversations and channels exist, as Temporal visibility knows them: the one place a list
query is built.

The API's listings and approvals, the monitoring round (``activities/health.py``) and the worker's
state gauges all filter workflows on the same few things: the workflow type, the task queue,
running or not, and the search attributes the workflows upsert (``workflows/search_attributes.py``).
``ConversationFilter.query()`` and ``ChannelFilter.query()`` write that query; values are quoted,
and a value a query could not carry safely (a quote, a backslash) is refused rather than escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus

from models.channel import CHANNEL_WORKFLOW_PREFIX, ChannelState
from models.conversation import WORKFLOW_ID_PREFIX, ConversationState
from workflows import search_attributes

WORKFLOW_TYPE = "ConversationWorkflow"
CHANNEL_TYPE = "ChannelWorkflow"


@dataclass(frozen=True)
class ConversationFilter:
    task_queue: str | None = None
    """Only conversations started on this task queue (the API and monitoring are scoped to theirs)."""
    running: bool | None = None
    """True: running only; False: finished only (completed, failed, terminated…); None: both."""
    state: ConversationState | None = None
    agent: str | None = None
    awaiting_approval: bool | None = None
    channel: str | None = None
    """Only the agents' conversations of this channel."""

    def query(self) -> str:
        clauses = _common(WORKFLOW_TYPE, self.task_queue, self.running, self.state)
        if self.agent is not None:
            clauses.append(f"{search_attributes.AGENT.name} = {_quoted(self.agent)}")
        return " AND ".join(clauses + _awaiting(self.awaiting_approval) + _named(search_attributes.CHANNEL.name, self.channel))


@dataclass(frozen=True)
class ChannelFilter:
    task_queue: str | None = None
    running: bool | None = None
    state: ChannelState | None = None
    member: str | None = None
    """Only channels with this agent or person among their members."""
    awaiting_approval: bool | None = None

    def query(self) -> str:
        clauses = _common(CHANNEL_TYPE, self.task_queue, self.running, self.state)
        clauses += _named(search_attributes.MEMBERS.name, self.member) + _awaiting(self.awaiting_approval)
        return " AND ".join(clauses)


def _common(workflow_type: str, task_queue: str | None, running: bool | None, state: StrEnum | None) -> list[str]:
    clauses = [f"WorkflowType = {_quoted(workflow_type)}"]
    if task_queue is not None:
        clauses.append(f"TaskQueue = {_quoted(task_queue)}")
    if running is not None:
        clauses.append(f"ExecutionStatus {'=' if running else '!='} 'Running'")
    return clauses + _named(search_attributes.STATE.name, state.value if state is not None else None)


def _named(attribute: str, value: str | None) -> list[str]:
    return [f"{attribute} = {_quoted(value)}"] if value is not None else []


def _awaiting(awaiting_approval: bool | None) -> list[str]:
    if awaiting_approval is None:
        return []
    return [f"{search_attributes.AWAITING_APPROVAL.name} = {str(awaiting_approval).lower()}"]


class ConversationItem(BaseModel):
    """One conversation as visibility lists it (no worker needed to answer)."""

    conversation_id: str
    workflow_id: str
    execution: str
    """Temporal's execution status: running, completed, failed, terminated, …"""
    state: str | None = None
    agent: str | None = None
    awaiting_approval: bool = False
    channel: str | None = None
    """The channel this conversation is an agent of, if any."""
    started_at: datetime | None = None
    closed_at: datetime | None = None

    @classmethod
    def of(cls, execution: WorkflowExecution) -> ConversationItem:
        attributes = execution.typed_search_attributes
        return cls(
            conversation_id=execution.id.removeprefix(WORKFLOW_ID_PREFIX),
            workflow_id=execution.id,
            execution=execution_name(execution.status),
            state=attributes.get(search_attributes.STATE),
            agent=attributes.get(search_attributes.AGENT),
            awaiting_approval=bool(attributes.get(search_attributes.AWAITING_APPROVAL)),
            channel=attributes.get(search_attributes.CHANNEL),
            started_at=execution.start_time,
            closed_at=execution.close_time,
        )


class ChannelItem(BaseModel):
    """One channel as visibility lists it."""

    channel_id: str
    workflow_id: str
    execution: str
    state: str | None = None
    members: list[str] = Field(default_factory=list)
    awaiting_approval: bool = False
    started_at: datetime | None = None
    closed_at: datetime | None = None

    @classmethod
    def of(cls, execution: WorkflowExecution) -> ChannelItem:
        attributes = execution.typed_search_attributes
        return cls(
            channel_id=execution.id.removeprefix(CHANNEL_WORKFLOW_PREFIX),
            workflow_id=execution.id,
            execution=execution_name(execution.status),
            state=attributes.get(search_attributes.STATE),
            members=list(attributes.get(search_attributes.MEMBERS) or []),
            awaiting_approval=bool(attributes.get(search_attributes.AWAITING_APPROVAL)),
            started_at=execution.start_time,
            closed_at=execution.close_time,
        )


def execution_name(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status else "unknown"


def _quoted(value: str) -> str:
    if "'" in value or '"' in value or "\\" in value:
        raise ValueError(f"{value!r} cannot be used in a visibility query (quotes and backslashes are refused)")
    return f"'{value}'"


# --- task plans (issue 15) ---------------------------------------------------------------------

PLAN_TYPE = "TaskPlanWorkflow"


@dataclass(frozen=True)
class PlanFilter:
    task_queue: str | None = None
    running: bool | None = None

    def query(self) -> str:
        return " AND ".join(_common(PLAN_TYPE, self.task_queue, self.running, None))
