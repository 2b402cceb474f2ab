"""What a conversation reports on a requested turn (``models.turn_requests``): ``TurnDone`` once per
request, and ``TurnProgressNote`` while the turn waits for a person or a resume. Small on purpose:
they cross two histories (the conversation's command, the requester's signal), so the reply is a
preview and the sequence number of the stored reply, never its body.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from models.conversation import Contract, ConversationState, Usage

REPLY_PREVIEW_CHARS = 500
"""How much of the reply a ``TurnDone`` carries; the whole reply is in the store at ``reply_seq``."""


class TurnOutcome(StrEnum):
    ANSWERED = "answered"
    FAILED = "failed"
    """The turn ran and failed (the model stayed unreachable, refused…); ``error`` says why."""
    ENDED = "ended"
    """The conversation ended before or during the turn."""
    REJECTED = "rejected"
    """The request was not accepted (too long, blank…); ``error`` says why. Nothing was queued."""


class TurnDone(Contract):
    """What the requester's ``reply_to.signal`` receives once per request."""

    request_id: str
    conversation_id: str
    outcome: TurnOutcome
    turn: int | None = None
    reply_seq: int | None = None
    """Where the reply is stored: ``(conversation_id, reply_seq)`` in the transcript."""
    reply: str = ""
    """The start of the reply (``REPLY_PREVIEW_CHARS``)."""
    reply_chars: int = 0
    usage: Usage = Field(default_factory=Usage)
    tool_calls: int = 0
    error: str | None = None


class WaitingCall(Contract):
    """A tool call of the requested turn that waits for a person (the arguments stay with the
    conversation: ``GET /approvals`` shows them to approvers)."""

    tool_call_id: str
    tool: str
    args_hash: str


class TurnProgressNote(Contract):
    """What ``reply_to.progress_signal`` receives when the requested turn starts or stops waiting."""

    request_id: str
    conversation_id: str
    state: ConversationState
    waiting: list[WaitingCall] = Field(default_factory=list)
    pause_reason: str | None = None
