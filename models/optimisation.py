"""The optimisation review's contracts: per-agent hints it applies, the evidence it reads, and what
it decided (``workflows/optimisation_review.py``).

A hint is a safe, reversible setting the rest of the product reads: today one kind, the agent's
step budget (``max_steps_per_turn``), which only ever *lowers* the number of model steps a turn
may take. Every hint records when and why it was applied, on which evidence, what it replaced and
how to revert it; an operator lists and reverts them (``GET /optimisations``, ``POST
/optimisations/{id}/revert``, ``daemonflow optimisations``). Hints never touch the policy or
approvals: there is no hint kind that could.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from models.analytics import TurnStats
from models.contract import Contract


class HintKind(StrEnum):
    MAX_STEPS_PER_TURN = "max_steps_per_turn"
    """Most model steps a turn of the agent may take (read by ``transcript.open``)."""


class OptimisationReviewInput(Contract):
    """Input of ``OptimisationReviewWorkflow``; the schedule passes the settings."""

    hint_days: float | None = Field(default=None, gt=0)
    """A hint lapses this long after it was applied (7 days); a later review may apply it again."""
    cooldown_days: float | None = Field(default=None, ge=0)
    """After an operator reverts a hint, the review leaves that agent's kind alone this long (7 days)."""
    max_snapshot_age_minutes: float | None = Field(default=None, gt=0)
    """Analytics snapshots older than this are not evidence (120 min: four pattern analyses)."""


class InputsRequest(Contract):
    at: datetime
    max_snapshot_age_minutes: float
    cooldown_days: float


class HealthGlance(Contract):
    """The latest monitoring report, as much as the review needs."""

    at: datetime
    score: int
    status: str
    alerts: list[str] = Field(default_factory=list)
    """Keys of the open alerts."""


class AgentEvidence(Contract):
    """One agent's latest analytics snapshot, as much as the rules read."""

    agent: str
    snapshot_id: int
    snapshot_at: datetime
    since: datetime
    until: datetime
    turns: TurnStats
    template_budget: int | None = None
    """The template's own ``max_steps_per_turn``, if it sets one."""


class AgentHintView(Contract):
    id: int
    agent: str
    kind: HintKind
    value: int
    previous: int
    """The budget in force before (the template's, or the conversations' default)."""
    applied_at: datetime
    applied_by: str
    run_id: str = ""
    reason: str
    evidence: list[str] = Field(default_factory=list)
    revert: str = ""
    """How to revert it, spelled out (CLI and HTTP)."""
    expires_at: datetime
    reverted_at: datetime | None = None
    reverted_by: str | None = None
    revert_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.reverted_at is None


class ReviewInputs(Contract):
    at: datetime
    default_step_budget: int
    """``ConversationInput.max_steps_per_turn``'s default: what a conversation gets unless told."""
    agents: list[AgentEvidence] = Field(default_factory=list)
    active: list[AgentHintView] = Field(default_factory=list)
    recently_reverted: list[AgentHintView] = Field(default_factory=list)
    """Hints an operator reverted within the cooldown."""
    health: HealthGlance | None = None


class HintProposal(Contract):
    agent: str
    kind: HintKind
    value: int
    previous: int
    reason: str
    evidence: list[str] = Field(default_factory=list)
    expires_at: datetime


class ReviewPlan(Contract):
    """What the rules decided (pure, in the workflow)."""

    apply: list[HintProposal] = Field(default_factory=list)
    expire: list[int] = Field(default_factory=list)
    """Ids of active hints past their expiry."""
    skipped: list[str] = Field(default_factory=list)
    """Why agents with evidence got no hint, one line each."""


class ApplyRequest(Contract):
    at: datetime
    run_id: str
    apply: list[HintProposal] = Field(default_factory=list)
    expire: list[int] = Field(default_factory=list)


class ApplyOutcome(Contract):
    applied: list[AgentHintView] = Field(default_factory=list)
    expired: list[int] = Field(default_factory=list)
    conflicts: list[str] = Field(default_factory=list)
    """Proposals another review applied first (one active hint per agent and kind)."""


class OptimisationReviewResult(Contract):
    at: datetime
    run_id: str
    applied: list[str] = Field(default_factory=list)
    """``#id agent kind=value`` of each hint applied."""
    expired: list[int] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)


class RevertHint(Contract):
    """Body of ``POST /optimisations/{id}/revert``."""

    reason: str | None = Field(default=None, max_length=500)
