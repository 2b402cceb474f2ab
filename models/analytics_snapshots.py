"""Stored analytics: what ``PatternAnalysisWorkflow`` keeps of each agent's analytics every run.

A snapshot is one agent's ``AgentAnalytics`` for a frame, written by ``analytics.snapshot`` and read
back by ``GET /analytics/snapshots…``, ``daemonflow patterns`` and the optimisation review.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.analytics import AgentAnalytics
from models.contract import Contract


class PatternAnalysisInput(Contract):
    """Input of ``PatternAnalysisWorkflow``; the schedule passes the settings, a bare start uses the defaults."""

    frame_hours: float | None = Field(default=None, gt=0, le=24 * 366)
    """Each agent's frame ends at the run's time and lasts this long (24 h)."""
    history_max_days: float | None = Field(default=None, gt=0)
    """Snapshots older than this are deleted at the end of the run (90 days, seed 001)."""


class AgentsRequest(Contract):
    since: datetime
    until: datetime


class SnapshotRequest(Contract):
    run_id: str
    at: datetime
    agent: str
    since: datetime
    until: datetime


class RetentionRequest(Contract):
    at: datetime
    max_days: float


class SnapshotSummary(Contract):
    """A stored snapshot without its analytics (listings; the workflow's result)."""

    id: int
    run_id: str
    at: datetime
    agent: str
    since: datetime
    until: datetime
    actions: int
    conversations: int
    anomalies: int
    suggestions: int
    turns: int
    out_of_steps: int


class SnapshotView(SnapshotSummary):
    analytics: AgentAnalytics


class PatternAnalysisResult(Contract):
    at: datetime
    run_id: str
    since: datetime
    until: datetime
    snapshots: list[SnapshotSummary] = Field(default_factory=list)
    agents_left_out: int = 0
    """Agents past the per-run cap, analysed at a later run once others fall out of the frame."""
    pruned: int = 0
    """Snapshots older than ``history_max_days`` deleted by this run."""
