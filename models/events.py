"""What happens in a conversation, as a stream an operator can follow live.

``ConversationWorkflow`` keeps the latest events in memory (and carries them across
continue-as-new) and serves them through the ``events`` query; the API turns them into
Server-Sent Events. Ids grow by one per event for the whole life of a conversation, so a client
that reconnects with ``Last-Event-ID: 41`` asks for ``events {after: 41}`` and misses nothing that
is still kept. Events carry previews, never whole bodies: the store has those.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

EVENTS_KEPT = 200
"""How many of the latest events a conversation keeps (and serves to a reconnecting client)."""
EVENT_PREVIEW_CHARS = 500


class EventType(StrEnum):
    STATE = "state"
    """``{state, details}``: the conversation's state changed (idle, thinking, awaiting_approval…)."""
    MESSAGE = "message"
    """``{seq, role, content, truncated}``: a message entered the transcript (content is a preview)."""
    TOOL_CALL = "tool_call"
    """``{tool_call_id, tool, arguments_hash, decision, source}``: the policy judged a call."""
    APPROVAL_REQUESTED = "approval_requested"
    """A ``PendingApproval``: a person must decide."""
    APPROVAL_DECIDED = "approval_decided"
    """``{tool_call_id, decision, approver, reason}``: a person decided (or the wait timed out)."""
    TOOL_RESULT = "tool_result"
    """``{tool_call_id, tool, decision, success, exit_code, duration_ms, error}``."""
    TURN_COMPLETED = "turn_completed"
    """``{turn, tool_calls, usage}``: the model answered without asking for more tools."""
    MEMORY_RECALLED = "memory_recalled"
    """``{turn, count, error}``: memories placed in the prompt for this turn."""
    MEMORY_STORED = "memory_stored"
    """``{turn, added, updated, skipped}``: what extraction kept after the turn."""
    TURN_REQUESTED = "turn_requested"
    """``{request_id, author}``: another workflow asked for a turn (``request_turn``)."""
    TURN_REPORTED = "turn_reported"
    """``{request_id, outcome, to}``: the requester was told how its turn went."""
    INJECT_REFUSED = "inject_refused"
    """``{chars, reason}``: an injected message was dropped: the waiting messages are at their bound
    (``workflows/queue_bound.py``)."""
    REVIVED = "revived"
    """``{archived_at}``: a new run took an archived conversation up again (``models/archive.py``)."""


class ConversationEvent(BaseModel):
    id: int
    """1, 2, 3… for the whole conversation, across continue-as-new."""
    type: EventType
    at: datetime
    """``workflow.now()`` when it happened."""
    data: dict[str, Any] = Field(default_factory=dict)


class EventsQuery(BaseModel):
    after: int = Field(default=0, ge=0)
    """Return events whose id is greater than this (a client's ``Last-Event-ID``)."""
    limit: int = Field(default=EVENTS_KEPT, ge=1, le=EVENTS_KEPT)
