"""Which conversations exist, as Temporal visibility knows them: the one place a list query is built.

The API's listing and approvals, the monitoring round (``activities/health.py``) and the worker's
state gauges all filter conversations on the same few things: the workflow type, the task queue,
running or not, and the search attributes the workflow upserts (``workflows/search_attributes.py``).
``ConversationFilter.query()`` writes that query; values are quoted, and a value a query could not
carry safely (a quote, a backslash) is refused rather than escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus

from models.conversation import WORKFLOW_ID_PREFIX, ConversationState
from workflows import search_attributes

WORKFLOW_TYPE = "ConversationWorkflow"


@dataclass(frozen=True)
class ConversationFilter:
    task_queue: str | None = None
    """Only conversations started on this task queue (the API and monitoring are scoped to theirs)."""
    running: bool | None = None
    """True: running only; False: finished only (completed, failed, terminated…); None: both."""
    state: ConversationState | None = None
    agent: str | None = None
    awaiting_approval: bool | None = None

    def query(self) -> str:
        clauses = [f"WorkflowType = {_quoted(WORKFLOW_TYPE)}"]
        if self.task_queue is not None:
            clauses.append(f"TaskQueue = {_quoted(self.task_queue)}")
        if self.running is not None:
            clauses.append(f"ExecutionStatus {'=' if self.running else '!='} 'Running'")
        if self.state is not None:
            clauses.append(f"{search_attributes.STATE.name} = {_quoted(self.state.value)}")
        if self.agent is not None:
            clauses.append(f"{search_attributes.AGENT.name} = {_quoted(self.agent)}")
        if self.awaiting_approval is not None:
            clauses.append(f"{search_attributes.AWAITING_APPROVAL.name} = {str(self.awaiting_approval).lower()}")
        return " AND ".join(clauses)


class ConversationItem(BaseModel):
    """One conversation as visibility lists it (no worker needed to answer)."""

    conversation_id: str
    workflow_id: str
    execution: str
    """Temporal's execution status: running, completed, failed, terminated, …"""
    state: str | None = None
    agent: str | None = None
    awaiting_approval: bool = False
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
            started_at=execution.start_time,
            closed_at=execution.close_time,
        )


def execution_name(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status else "unknown"


def _quoted(value: str) -> str:
    if "'" in value or '"' in value or "\\" in value:
        raise ValueError(f"{value!r} cannot be used in a visibility query (quotes and backslashes are refused)")
    return f"'{value}'"
