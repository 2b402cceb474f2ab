"""Pattern analysis activities: which agents were active, each agent's analytics stored, retention.

``PatternAnalysisWorkflow`` (every 30 min, seed 004's "analyse patterns") calls them: the
analytics themselves are ``activities.analytics.agent_analytics`` — the same function as
``GET /analytics/agents/{agent}`` and ``daemonflow analytics`` — so a stored snapshot is exactly
what those would have shown at that time. Snapshots go to ``analytics_snapshots``; only a small
summary crosses workflow history.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio import activity

from activities.analytics import agent_analytics
from models.analytics_snapshots import AgentsRequest, RetentionRequest, SnapshotRequest, SnapshotSummary
from store.analytics_snapshots import AnalyticsSnapshotStore
from store.tables import Action, Conversation, ModelUsage


def active_agents(engine: Engine, request: AgentsRequest) -> list[str]:
    """Agents with a tool call or a model call in ``[since, until)``, by name."""
    with Session(engine) as session:
        acting = session.exec(
            select(Action.agent)
            .where(col(Action.created_at) >= request.since, col(Action.created_at) < request.until)
            .distinct()
        )
        talking = session.exec(
            select(Conversation.agent)
            .join(ModelUsage, col(ModelUsage.conversation_id) == col(Conversation.id))
            .where(col(ModelUsage.created_at) >= request.since, col(ModelUsage.created_at) < request.until)
            .distinct()
        )
        return sorted({*acting, *talking})


class PatternActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._snapshots = AnalyticsSnapshotStore(engine)

    @activity.defn(name="analytics.agents")
    async def agents(self, request: AgentsRequest) -> list[str]:
        return await asyncio.to_thread(active_agents, self._engine, request)

    @activity.defn(name="analytics.snapshot")
    async def snapshot(self, request: SnapshotRequest) -> SnapshotSummary:
        """One agent's analytics for the frame, stored once per run (a retry returns the stored one)."""

        def run() -> SnapshotSummary:
            analytics = agent_analytics(self._engine, request.agent, request.since, request.until)
            return self._snapshots.save(request.run_id, request.at, analytics)

        return await asyncio.to_thread(run)

    @activity.defn(name="analytics.retention")
    async def retention(self, request: RetentionRequest) -> int:
        """Delete snapshots older than ``max_days`` (``history_max_days``); how many went."""
        cutoff = request.at - timedelta(days=request.max_days)
        return await asyncio.to_thread(self._snapshots.delete_before, cutoff)

    def all(self) -> list:
        return [self.agents, self.snapshot, self.retention]
