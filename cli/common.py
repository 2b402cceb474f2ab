"""What every conversation command shares: reaching the control client, and printing what it says.

Errors the user can act on are ``CliError`` (with the exit code to use) or the control client's
``ControlError``; ``cli.main`` prints either as one line without a traceback: exit code 1 for a
failure (unknown or ended conversation, a refused message or decision, no worker answering…),
2 for bad usage.
"""

from __future__ import annotations

import json

from temporalio.client import Client

from config.settings import Settings
from control.execution import Execution
from control.conversations import Conversations
from models.conversation import MessageView, Status
from workers.client import connect

EXIT_ERROR = 1
EXIT_USAGE = 2
ANSWER_TIMEOUT_S = 10.0
"""How long a command waits for a worker to answer a query, accept a message or a decision."""


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


async def conversations(settings: Settings) -> Conversations:
    """The control client on the configured Temporal server and task queue."""
    return Conversations(await connect_or_explain(settings), settings.task_queue, ANSWER_TIMEOUT_S)


# --- printing -----------------------------------------------------------------------------------


def format_status(status: Status, execution: Execution | None = None) -> str:
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
    if execution is not None and not execution.running:
        lines.append(f"workflow      {'archived (a new message revives it)' if execution.archived else execution.name}")
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
    where = "pending" if message.pending else message.seq
    return f"[{where}] {message.role}: {message.content}{more}"
