"""What the optimisation review applies, decided from its inputs alone (pure: runs in the workflow).

One kind of hint today, the agent's **step budget** (``HintKind.MAX_STEPS_PER_TURN``). It is
proposed for an agent when, in its latest analytics snapshot:

1. at least ``MIN_TURNS`` turns, at least ``MIN_OUT_OF_STEPS`` of which ran out of steps (the last
   model reply still asked for tools), and those are at least ``MIN_OUT_OF_STEPS_SHARE`` of them;
2. at least one turn answered — the proposed budget is the most steps an answered turn needed,
   plus one (never below ``MIN_STEP_BUDGET``), so no turn that answered in the frame would have
   been cut — and that is lower than the budget in force (the template's, else the
   conversations' default);
3. it is worth it: the turns that ran out spent at least ``WASTE_SHARE`` of the agent's tokens, or
   the latest monitoring report shows the model server under pressure (an open ``llm:latency``,
   ``budget:…`` or ``regression:model:…`` alert);
4. the agent has no step-budget hint in force, and no operator reverted one within the cooldown.

A hint only ever lowers a bound (nothing here can raise a budget, touch the policy or an
approval) and lapses after ``hint_days``; hints past their expiry are expired by the same review.
"""

from __future__ import annotations

from datetime import timedelta

from models.optimisation import AgentEvidence, AgentHintView, HintKind, HintProposal, ReviewInputs, ReviewPlan

MIN_TURNS = 5
MIN_OUT_OF_STEPS = 3
MIN_OUT_OF_STEPS_SHARE = 0.25
MIN_STEP_BUDGET = 3
WASTE_SHARE = 0.20
PRESSURE_ALERTS = ("llm:latency", "budget:", "regression:model:")
STEPS = HintKind.MAX_STEPS_PER_TURN


def _evidence_lines(evidence: AgentEvidence, inputs: ReviewInputs, pressure: list[str]) -> list[str]:
    t = evidence.turns
    lines = [
        f"analytics snapshot #{evidence.snapshot_id} of {evidence.agent} taken {evidence.snapshot_at:%Y-%m-%d %H:%M} UTC "
        f"over {evidence.since:%Y-%m-%d %H:%M} → {evidence.until:%Y-%m-%d %H:%M} UTC",
        f"{t.turns} turns: {t.answered} answered (steps p50 {t.p50_answered_steps:g}, max {t.max_answered_steps}), "
        f"{t.out_of_steps} ran out of steps",
        f"{t.out_of_steps_tokens} of the agent's {t.tokens} tokens were spent by turns that ran out",
        *(f"turn that ran out: {example}" for example in t.examples),
    ]
    if inputs.health is not None:
        health = inputs.health
        lines.append(
            f"monitoring report {health.at:%Y-%m-%d %H:%M} UTC: score {health.score} ({health.status})"
            + (f", model server under pressure: {', '.join(pressure)}" if pressure else "")
        )
    return lines


def _step_budget(
    evidence: AgentEvidence, inputs: ReviewInputs, active: dict[str, AgentHintView],
    cooling: dict[str, AgentHintView], pressure: list[str], hint_days: float,
) -> HintProposal | str:  # fmt: skip
    """A proposal, or one line saying why there is none."""
    agent, t = evidence.agent, evidence.turns
    if agent in active:
        hint = active[agent]
        return f"{agent}: step budget hint #{hint.id} ({hint.value}) in force until {hint.expires_at:%Y-%m-%d %H:%M} UTC"
    if agent in cooling:
        hint = cooling[agent]
        return f"{agent}: an operator ({hint.reverted_by}) reverted step budget hint #{hint.id} at {hint.reverted_at:%Y-%m-%d %H:%M} UTC"
    if t.turns < MIN_TURNS or t.out_of_steps < MIN_OUT_OF_STEPS or t.out_of_steps / t.turns < MIN_OUT_OF_STEPS_SHARE:
        return f"{agent}: {t.out_of_steps} of {t.turns} turns ran out of steps (a hint needs {MIN_OUT_OF_STEPS}+ and {MIN_OUT_OF_STEPS_SHARE:.0%}+ of {MIN_TURNS}+)"
    if not t.answered or t.max_answered_steps is None:
        return f"{agent}: no turn answered in the frame, so nothing shows how many steps suffice"
    current = min(inputs.default_step_budget, evidence.template_budget or inputs.default_step_budget)
    value = max(MIN_STEP_BUDGET, t.max_answered_steps + 1)
    if value >= current:
        return f"{agent}: answered turns needed up to {t.max_answered_steps} steps; {value} would not lower the budget of {current}"
    waste = t.out_of_steps_tokens / t.tokens if t.tokens else 0.0
    if waste < WASTE_SHARE and not pressure:
        return f"{agent}: turns that ran out spent {waste:.0%} of its tokens and the model server is not under pressure"
    reason = (
        f"{t.out_of_steps} of {t.turns} turns of {agent} ran out of their {current} steps without an answer, spending "
        f"{t.out_of_steps_tokens} tokens ({waste:.0%} of its tokens); the {t.answered} turns that answered needed at most "
        f"{t.max_answered_steps} steps. A budget of {value} stops runaway turns sooner and cuts no turn that answered."
    )
    return HintProposal(
        agent=agent, kind=STEPS, value=value, previous=current, reason=reason,
        evidence=_evidence_lines(evidence, inputs, pressure), expires_at=inputs.at + timedelta(days=hint_days),
    )  # fmt: skip


def review(inputs: ReviewInputs, hint_days: float) -> ReviewPlan:
    plan = ReviewPlan(expire=[h.id for h in inputs.active if h.expires_at <= inputs.at])
    active = {h.agent: h for h in inputs.active if h.kind == STEPS and h.expires_at > inputs.at}
    cooling = {h.agent: h for h in inputs.recently_reverted if h.kind == STEPS}
    alerts = inputs.health.alerts if inputs.health is not None else []
    pressure = [key for key in alerts if key.startswith(PRESSURE_ALERTS)]
    for evidence in inputs.agents:
        decided = _step_budget(evidence, inputs, active, cooling, pressure, hint_days)
        if isinstance(decided, HintProposal):
            plan.apply.append(decided)
        else:
            plan.skipped.append(decided)
    return plan
