"""Archiving after inactivity: what a conversation or a channel stores when it archives, and what
a new run reads back to revive it (``activities/archive.py``, ``workflows/idle_clock.py``).

An archived workflow has *completed*: its history stays readable (`temporal workflow show`), the
store keeps its transcript, approvals and audit rows, and one ``archives`` row holds what the next
run needs to go on — the input it was started with and its carried state — so revival does not
depend on Temporal's retention of the closed run.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

ARCHIVE_PATCH = "archive-after-idle"
"""Runs with this marker start the inactivity timer; histories recorded before it replay without."""


class ArchiveKind(StrEnum):
    CONVERSATION = "conversation"
    CHANNEL = "channel"


class ArchiveRequest(BaseModel):
    kind: ArchiveKind
    subject_id: str
    """The conversation id or channel id."""
    workflow_id: str
    run_id: str
    turns: int
    """Turns answered (a conversation) or posts handled (a channel), over its whole life."""
    last_activity_at: datetime
    archived_at: datetime
    idle_s: int
    """The inactivity period that archived it."""
    input: dict[str, Any]
    """The workflow's input, without ``carried``."""
    carried: dict[str, Any]
    """Its carried state (``CarriedState`` / ``CarriedChannel``), as continue-as-new would hand it on."""


class ArchiveRecord(BaseModel):
    """One archiving, as the store, the API and the workflow result show it (no input, no state)."""

    id: int
    kind: ArchiveKind
    subject_id: str
    workflow_id: str
    run_id: str
    turns: int
    last_activity_at: datetime
    archived_at: datetime
    idle_s: int
    revived_at: datetime | None = None
    revived_run_id: str | None = None


class ArchivedQuery(BaseModel):
    kind: ArchiveKind
    workflow_id: str


class ReopenRequest(BaseModel):
    kind: ArchiveKind
    workflow_id: str
    """Looked up by workflow id: a reviving client knows only that."""
    run_id: str
    """The run that reopens it (recorded on the archive row)."""
    agents: list[str] = Field(default_factory=list)
    """Agents whose pause flag the run should know (a conversation's agent)."""


class Reopened(BaseModel):
    """What a reviving run reads back: None fields when nothing was archived under this id."""

    record: ArchiveRecord | None = None
    input: dict[str, Any] | None = None
    carried: dict[str, Any] | None = None
    paused_agents: dict[str, str] = Field(default_factory=dict)
    """Agents paused by an operator (``POST /agents/{agent}/pause``), with the reason."""
