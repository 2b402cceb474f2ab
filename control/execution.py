"""What Temporal says of a workflow's latest run (a conversation's, a channel's, a plan's):
``describe`` translated into the domain's errors, with the archived state read back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import RPCTimeoutOrCancelledError, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from control.errors import ControlError, TemporalUnavailable
from control.failures import rpc_failure
from control.revival import ARCHIVED
from control.visibility import execution_name
from workflows import search_attributes


@dataclass(frozen=True)
class Execution:
    """The conversation's latest run as Temporal describes it."""

    workflow_id: str
    workflow_type: str
    status: WorkflowExecutionStatus | None
    state: str | None = None
    """``DaemonflowState`` as the run left it (``archived`` for one archived after inactivity)."""

    @property
    def archived(self) -> bool:
        """Completed after inactivity: a new message revives it (``control/revival.py``)."""
        return self.status == WorkflowExecutionStatus.COMPLETED and self.state == ARCHIVED

    @property
    def running(self) -> bool:
        return self.status == WorkflowExecutionStatus.RUNNING

    @property
    def name(self) -> str:
        """running, completed, failed, terminated, …"""
        return execution_name(self.status)


async def described(handle: WorkflowHandle[Any, Any], timeout: timedelta, what: str,
                    not_found: Callable[[], ControlError]) -> Execution:  # fmt: skip
    """The workflow's latest run as Temporal describes it (a conversation's, a channel's)."""
    try:
        description = await handle.describe(rpc_timeout=timeout)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise not_found() from None
        raise rpc_failure(err, f"describing {what}", needs_worker=False) from err
    except RPCTimeoutOrCancelledError:
        raise TemporalUnavailable(f"describing {what}: Temporal did not answer in time") from None
    state = description.typed_search_attributes.get(search_attributes.STATE)
    return Execution(description.id, description.workflow_type, description.status, state)
