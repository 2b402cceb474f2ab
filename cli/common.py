"""What every conversation command shares: connecting, finding a conversation, explaining failures.

Errors the user can act on are raised as ``CliError`` with the exit code to use; ``cli.main``
prints them without a traceback.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from config.settings import Settings
from models.conversation import WORKFLOW_ID_PREFIX, HistoryQuery, MessageView, Status, conversation_workflow_id
from workers.client import connect
from workflows.conversation import ConversationWorkflow

EXIT_ERROR = 1
EXIT_USAGE = 2
QUERY_TIMEOUT = timedelta(seconds=10)


class CliError(Exception):
    """A failure explained in words; ``code`` is the process exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


async def connect_or_explain(settings: Settings) -> Client:
    try:
        return await connect(settings)
    except RuntimeError as err:
        raise CliError(
            f"cannot reach Temporal at {settings.temporal_address}: is `daemonflow dev` running? "
            f"(DAEMONFLOW_TEMPORAL_ADDRESS={settings.temporal_address})\n  {err}"
        ) from err


def is_not_found(err: RPCError) -> bool:
    return err.status == RPCStatusCode.NOT_FOUND


async def find_conversation(client: Client, ref: str) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionStatus | None]:
    """The conversation's workflow handle (latest run) and its execution status.

    ``ref`` is a conversation id (workflow ``conversation-<id>``), or a workflow id as is: workflows
    started with the plain `temporal` CLI may have any id.
    """
    candidates = [ref] if ref.startswith(WORKFLOW_ID_PREFIX) else [conversation_workflow_id(ref), ref]
    for workflow_id in candidates:
        handle = client.get_workflow_handle(workflow_id)
        try:
            description = await handle.describe()
        except RPCError as err:
            if is_not_found(err):
                continue
            raise
        return handle, description.status
    raise CliError(f"no conversation {ref!r} (looked for workflow id {' or '.join(map(repr, candidates))})")


def conversation_id_of(handle: WorkflowHandle[Any, Any]) -> str:
    return handle.id.removeprefix(WORKFLOW_ID_PREFIX)


async def query_status(handle: WorkflowHandle[Any, Any]) -> Status:
    return await _query(handle, lambda: handle.query(ConversationWorkflow.status, rpc_timeout=QUERY_TIMEOUT))


async def query_history(handle: WorkflowHandle[Any, Any], limit: int) -> list[MessageView]:
    return await _query(
        handle,
        lambda: handle.query(ConversationWorkflow.history, HistoryQuery(limit=limit), rpc_timeout=QUERY_TIMEOUT),
    )


async def _query(handle: WorkflowHandle[Any, Any], call: Any) -> Any:
    """Queries are answered by a worker; say so when none does."""
    try:
        return await call()
    except (RPCTimeoutOrCancelledError, WorkflowQueryFailedError, WorkflowQueryRejectedError, RPCError) as err:
        if isinstance(err, RPCTimeoutOrCancelledError) or (
            isinstance(err, RPCError) and err.status == RPCStatusCode.DEADLINE_EXCEEDED
        ):
            raise CliError(
                f"no worker answered a query on {handle.id}: is `daemonflow dev` or `daemonflow worker` running "
                "on this task queue?"
            ) from err
        raise CliError(f"query on {handle.id} failed: {err}") from err


async def send_signal(handle: WorkflowHandle[Any, Any], signal: Any, *args: Any) -> None:
    try:
        await handle.signal(signal, *args)
    except RPCError as err:
        if is_not_found(err):
            raise CliError(f"conversation {conversation_id_of(handle)} is not running any more ({err.message})") from err
        raise CliError(f"signal failed: {err.message}") from err


def update_failure_reason(err: Exception) -> str:
    """Why an update was rejected or failed, in the workflow's own words."""
    if isinstance(err, WorkflowUpdateFailedError):
        cause = err.cause
        while isinstance(cause, FailureError) and not isinstance(cause, ApplicationError) and cause.cause:
            cause = cause.cause
        return cause.message if isinstance(cause, FailureError) else str(cause)
    if isinstance(err, RPCError):
        return err.message
    return str(err)


# --- printing -----------------------------------------------------------------------------------


def format_status(status: Status, execution: WorkflowExecutionStatus | None = None) -> str:
    state = status.state.value
    if status.pause_reason:
        state += f" ({status.pause_reason})"
    if status.ended_reason:
        state += f" ({status.ended_reason})"
    lines = [
        f"conversation  {status.conversation_id}",
        f"state         {state}",
        f"agent         {status.agent} · model {status.model or 'default'}",
        f"turns         {status.turn} · {status.queued} queued",
        f"auto-accept   {'on' if status.auto_accept else 'off'}",
    ]
    if execution is not None and execution != WorkflowExecutionStatus.RUNNING:
        lines.append(f"workflow      {execution.name.lower()}")
    for approval in status.pending_approvals:
        arguments = json.dumps(approval.arguments, ensure_ascii=False)
        lines.append(f"awaiting      {approval.tool} {arguments}  (call {approval.tool_call_id}; {approval.reason or 'policy asks'})")
        for stored in approval.payloads:  # long arguments travel by reference: where to read them whole
            lines.append(f"              {stored.bytes} bytes sha256={stored.digest}: "
                         f"`daemonflow payload {status.conversation_id} {stored.digest}`")
    if status.last_error:
        lines.append(f"last error    {status.last_error}")
    return "\n".join(lines)


def format_message(message: MessageView) -> str:
    more = " […]" if message.truncated else ""
    return f"[{message.seq}] {message.role}: {message.content}{more}"
