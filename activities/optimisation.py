"""Optimisation review activities: gather the evidence, apply and expire hints.

``optimisation.inputs`` reads each agent's latest analytics snapshot (only agents with turns that
ran out of steps, and only snapshots younger than ``max_snapshot_age_minutes``: stale analytics are
no evidence), the hints in force, the hints operators reverted within the cooldown and the latest
monitoring report (if under an hour old). ``optimisation.apply`` expires, then applies, and sets
the ``daemonflow_optimisation_hints_active`` gauge. The rules in between run in the workflow.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import Engine
from temporalio import activity

from activities import monitoring_metrics
from config.settings import Settings
from config.templates import InvalidAgentError, UnknownAgentError, load_template
from models.conversation import ConversationInput
from models.optimisation import (
    AgentEvidence,
    ApplyOutcome,
    ApplyRequest,
    HealthGlance,
    InputsRequest,
    ReviewInputs,
)
from store.agent_hints import AgentHintStore
from store.analytics_snapshots import AnalyticsSnapshotStore
from store.monitoring import MonitoringStore

REPORT_MAX_AGE = timedelta(hours=1)
MAX_LISTED_HINTS = 1000


def default_step_budget() -> int:
    """What a conversation gets unless its start says otherwise (``ConversationInput``)."""
    return int(ConversationInput.model_fields["max_steps_per_turn"].default)


class OptimisationActivities:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self._settings = settings
        self._snapshots = AnalyticsSnapshotStore(engine)
        self._hints = AgentHintStore(engine)
        self._monitoring = MonitoringStore(engine)

    def _template_budget(self, agent: str) -> int | None:
        try:
            return load_template(agent, self._settings.agents_dir).max_steps_per_turn
        except (UnknownAgentError, InvalidAgentError):
            return None

    def _inputs(self, request: InputsRequest) -> ReviewInputs:
        at = request.at
        snapshots = self._snapshots.latest_per_agent(at - timedelta(minutes=request.max_snapshot_age_minutes))
        agents = [
            AgentEvidence(
                agent=snapshot.agent,
                snapshot_id=snapshot.id,
                snapshot_at=snapshot.at,
                since=snapshot.since,
                until=snapshot.until,
                turns=snapshot.analytics.turns,
                template_budget=self._template_budget(snapshot.agent),
            )
            for snapshot in snapshots
            if snapshot.analytics.turns.out_of_steps
        ]
        report = self._monitoring.latest_report()
        health = None
        if report is not None and report.at >= at - REPORT_MAX_AGE:
            health = HealthGlance(at=report.at, score=report.score, status=report.status.value, alerts=[a.key for a in report.alerts])
        return ReviewInputs(
            at=at,
            default_step_budget=default_step_budget(),
            agents=agents,
            active=self._hints.list(active_only=True, limit=MAX_LISTED_HINTS),
            recently_reverted=self._hints.reverted_by_operators(at - timedelta(days=request.cooldown_days)),
            health=health,
        )

    @activity.defn(name="optimisation.inputs")
    async def inputs(self, request: InputsRequest) -> ReviewInputs:
        return await asyncio.to_thread(self._inputs, request)

    def _apply(self, request: ApplyRequest) -> ApplyOutcome:
        outcome = ApplyOutcome(expired=[hint_id for hint_id in request.expire if self._hints.expire(hint_id, request.at)])
        for proposal in request.apply:
            applied = self._hints.apply(proposal, request.at, request.run_id)
            if applied is None:
                outcome.conflicts.append(f"{proposal.agent}: another review applied a {proposal.kind.value} hint first")
            else:
                outcome.applied.append(applied)
        monitoring_metrics.update_hints(len(self._hints.list(active_only=True, limit=MAX_LISTED_HINTS)))
        return outcome

    @activity.defn(name="optimisation.apply")
    async def apply(self, request: ApplyRequest) -> ApplyOutcome:
        """Expire, then apply (one hint in force per agent and kind); idempotent per review run."""
        return await asyncio.to_thread(self._apply, request)

    def all(self) -> list:
        return [self.inputs, self.apply]
