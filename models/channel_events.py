"""What happens in a channel, as a stream an operator can follow live (``events`` query, SSE).

Kept like a conversation's events (``models.events``): the latest ``EVENTS_KEPT`` in the workflow's
state, carried across continue-as-new, ids growing by one for the channel's whole life. Events
carry previews and names, never whole bodies.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class ChannelEventType(StrEnum):
    STATE = "state"
    """``{state, details}``: e.g. ``answering`` with "developer answering; analyst observing"."""
    MESSAGE = "message"
    """``{seq, author, kind, content, truncated, reply_to}``: a message entered the channel (a preview)."""
    SCORED = "scored"
    """``{seq, author, speakers, observers, scores: [{agent, score, decision, explanation}]}``."""
    OBSERVED = "observed"
    """``{seq, agent, stored, skipped}``: the message went to the agent's memory (or why not)."""
    TURN_REQUESTED = "turn_requested"
    """``{agent, request_id, answers}``: an agent was asked to answer message ``answers``."""
    WAITING = "waiting"
    """``{agent, state, waiting: [{tool_call_id, tool}], pause_reason}``: an agent's turn waits for a
    person (``awaiting_approval``) or a resume, or goes on (``thinking``)."""
    NOT_ANSWERED = "not_answered"
    """``{agent, reason}``: an agent that was to answer could not."""
    BUDGET_REACHED = "budget_reached"
    """``{budget, detail, skipped}``: a budget ended the chain of a post."""
    NOBODY = "nobody"
    """``{seq, detail}``: no agent found a person's post relevant enough to answer."""
    MEMBER_JOINED = "member_joined"
    """``{person}``: someone new posted."""


class ChannelEvent(BaseModel):
    id: int
    type: ChannelEventType
    at: datetime
    data: dict[str, Any] = Field(default_factory=dict)
