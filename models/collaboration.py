"""The collaboration tracker's views: who messages whom, what became of it, how long it took.

Built from the ``private_messages`` table (``store/private_messages.py``), one row per message,
written by the ``PrivateMessageWorkflow`` at each step of its lifecycle.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from models.private_messages import MessageStatus


class Counts(BaseModel):
    sent: int = 0
    accepted: int = 0
    """Accepted at some point (including those completed or failed since)."""
    refused: int = 0
    completed: int = 0
    failed: int = 0
    open: int = 0
    mean_duration_ms: float | None = None
    """From submission to completion, over the completed messages."""


class PairStats(Counts):
    sender: str
    recipient: str
    trust: float | None = None
    """``relationship_trust`` of the recipient towards this sender (``trust_of``)."""


class AgentStats(BaseModel):
    agent: str
    sent: Counts = Field(default_factory=Counts)
    received: Counts = Field(default_factory=Counts)


class CollaborationReport(BaseModel):
    since: datetime | None = None
    until: datetime | None = None
    pairs: list[PairStats] = Field(default_factory=list)
    agents: list[AgentStats] = Field(default_factory=list)


class MessagePage(BaseModel):
    items: list[MessageStatus]
    next_before: int | None = None
    """Pass as ``before`` for the next (older) page; ``None`` on the last page."""


def trust_of(completed: int, refused: int, failed: int) -> float | None:
    """How far an agent can be counted on to take and finish what a sender asks: completed over
    everything decided, with one success and one miss assumed beforehand (Laplace), so one message
    moves it from 0.5 to 0.67 or 0.33, never to certainty. ``None`` before anything was decided
    (the relevance factor then uses its ``unknown`` value). Refusals by the hop budget are not
    counted: the recipient was never asked."""
    decided = completed + refused + failed
    if decided == 0:
        return None
    return round((completed + 1) / (decided + 2), 4)
