"""The optimisation review: its rules on known evidence (pure), then on the dev server the whole
chain — seeded looping turns, a pattern analysis, a review that applies a step-budget hint, a real
conversation whose turn stops at that budget, a revert by an operator (CLI) after which new
conversations get the full budget again, the cooldown that keeps the review from re-applying it —
and both workflows' histories replayed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, func, select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from models.analytics import TurnStats
from models.analytics_snapshots import PatternAnalysisInput, PatternAnalysisResult
from models.optimisation import (
    AgentEvidence,
    AgentHintView,
    HealthGlance,
    HintKind,
    HintProposal,
    OptimisationReviewInput,
    OptimisationReviewResult,
    ReviewInputs,
)
from store.agent_hints import AgentHintStore, HintAlreadyReverted, HintNotFound
from store.engine import make_engine
from store.tables import ModelUsage
from tests.fakes.ollama import Reply, ToolCall
from tests.test_cli import daemonflow
from tests.turn_history import seed_turns
from workflows.optimisation_review import OptimisationReviewWorkflow
from workflows.optimisation_rules import review
from workflows.pattern_analysis import PatternAnalysisWorkflow

AT = datetime(2025, 8, 3, 12, 0, tzinfo=UTC)
LOOPING = TurnStats(turns=7, answered=3, out_of_steps=4, max_answered_steps=2, p50_answered_steps=2.0,
                    out_of_steps_tokens=3200, tokens=3700, examples=["c/1", "c/2"])  # fmt: skip


def evidence(agent: str = "looper", turns: TurnStats = LOOPING, template_budget: int | None = None) -> AgentEvidence:
    return AgentEvidence(agent=agent, snapshot_id=7, snapshot_at=AT - timedelta(minutes=5), since=AT - timedelta(days=1),
                         until=AT - timedelta(minutes=5), turns=turns, template_budget=template_budget)  # fmt: skip


def inputs(*agents: AgentEvidence, **fields) -> ReviewInputs:
    return ReviewInputs(at=AT, default_step_budget=8, agents=list(agents), **fields)


def hint(agent: str = "looper", **fields) -> AgentHintView:
    values = dict(id=3, agent=agent, kind=HintKind.MAX_STEPS_PER_TURN, value=3, previous=8, applied_at=AT - timedelta(days=1),
                  applied_by="optimisation-review", reason="r", expires_at=AT + timedelta(days=6))  # fmt: skip
    return AgentHintView(**{**values, **fields})


# --- the rules ------------------------------------------------------------------------------------


def test_a_looping_agent_gets_a_budget_that_cuts_no_answered_turn():
    plan = review(inputs(evidence()), hint_days=7)
    assert plan.skipped == [] and plan.expire == []
    [proposal] = plan.apply
    assert (proposal.agent, proposal.kind, proposal.value, proposal.previous) == ("looper", HintKind.MAX_STEPS_PER_TURN, 3, 8)
    assert proposal.expires_at == AT + timedelta(days=7)
    assert "4 of 7 turns of looper ran out of their 8 steps" in proposal.reason
    assert "needed at most 2 steps" in proposal.reason and "86% of its tokens" in proposal.reason
    assert any("analytics snapshot #7 of looper" in line for line in proposal.evidence)
    assert "turn that ran out: c/1" in proposal.evidence
    # The budget never goes under 3, and follows the longest answered turn.
    longer = LOOPING.model_copy(update={"max_answered_steps": 5})
    assert review(inputs(evidence(turns=longer)), 7).apply[0].value == 6
    short = LOOPING.model_copy(update={"max_answered_steps": 1})
    assert review(inputs(evidence(turns=short)), 7).apply[0].value == 3


@pytest.mark.parametrize(
    ("agent_evidence", "extra", "words"),
    [
        (evidence(template_budget=3), {}, "3 would not lower the budget of 3"),
        (evidence(turns=LOOPING.model_copy(update={"out_of_steps": 2, "turns": 10})), {}, "2 of 10 turns ran out"),
        (evidence(turns=LOOPING.model_copy(update={"out_of_steps": 3, "turns": 20})), {}, "3 of 20 turns ran out"),
        (evidence(turns=LOOPING.model_copy(update={"answered": 0, "max_answered_steps": None})), {}, "no turn answered"),
        (evidence(turns=LOOPING.model_copy(update={"out_of_steps_tokens": 300, "tokens": 10_000})), {}, "3% of its tokens"),
        (evidence(), {"active": [hint()]}, "step budget hint #3 (3) in force"),
        (evidence(), {"recently_reverted": [hint(reverted_at=AT - timedelta(hours=1), reverted_by="api:ops")]},
         "an operator (api:ops) reverted step budget hint #3"),
    ],
)  # fmt: skip
def test_no_hint_without_enough_evidence_or_while_one_holds(agent_evidence, extra, words):
    plan = review(inputs(agent_evidence, **extra), hint_days=7)
    assert plan.apply == []
    assert len(plan.skipped) == 1 and words in plan.skipped[0], plan.skipped


def test_model_pressure_makes_a_small_waste_worth_a_hint_and_expired_hints_lapse():
    frugal = evidence(turns=LOOPING.model_copy(update={"out_of_steps_tokens": 300, "tokens": 10_000}))
    pressed = inputs(frugal, health=HealthGlance(at=AT, score=60, status="degraded", alerts=["llm:latency", "tools:failures"]))
    [proposal] = review(pressed, 7).apply
    assert "model server under pressure: llm:latency" in proposal.evidence[-1]

    lapsed = hint(expires_at=AT - timedelta(minutes=1))
    plan = review(inputs(evidence(), active=[lapsed]), 7)
    assert plan.expire == [3] and [p.agent for p in plan.apply] == ["looper"]  # fresh evidence: applied again


def test_the_store_keeps_one_hint_per_agent_and_kind(database_url):
    store = AgentHintStore(make_engine(database_url))
    proposal = HintProposal(agent="a", kind=HintKind.MAX_STEPS_PER_TURN, value=3, previous=8, reason="r",
                            evidence=["e"], expires_at=AT + timedelta(days=7))  # fmt: skip
    first = store.apply(proposal, AT, "run-1")
    assert first is not None and store.apply(proposal, AT, "run-1") == first  # a retried activity
    assert store.apply(proposal, AT, "run-2") is None  # another review: one in force per agent and kind
    assert store.step_budget("a", AT) == 3 and store.step_budget("a", AT + timedelta(days=8)) is None
    assert store.step_budget("b", AT) is None
    reverted = store.revert(first.id, by="cli:ops", reason="needs more", at=AT + timedelta(hours=1))
    assert (reverted.reverted_by, reverted.revert_reason, reverted.active) == ("cli:ops", "needs more", False)
    assert store.step_budget("a", AT) is None
    with pytest.raises(HintAlreadyReverted, match="already reverted .* by cli:ops"):
        store.revert(first.id, by="cli:other")
    with pytest.raises(HintNotFound):
        store.revert(999_999, by="cli:ops")
    assert store.expire(first.id, AT) is False  # a person reverted it first
    assert [h.id for h in store.reverted_by_operators(AT)] == [first.id]
    again = store.apply(proposal, AT + timedelta(hours=2), "run-3")
    assert again is not None and store.expire(again.id, AT + timedelta(days=8))
    assert store.get(again.id).revert_reason.startswith("expired") and store.list(active_only=True) == []


# --- the whole chain on the dev server ------------------------------------------------------------


def turn_steps(engine, conversation_id: str, turn: int = 1) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count()).where(col(ModelUsage.conversation_id) == conversation_id, col(ModelUsage.turn) == turn)
        ).one()


async def run_workflow(daemon, run, arg, result_type):
    handle = await daemon.client.start_workflow(
        run, arg, id=f"wf-{uuid.uuid4().hex[:8]}", task_queue=daemon.task_queue, execution_timeout=timedelta(minutes=2)
    )
    result = await handle.result()
    assert isinstance(result, result_type)
    return result, await handle.fetch_history()


async def test_review_applies_a_step_budget_conversations_obey_until_an_operator_reverts_it(daemon, fake_ollama, tmp_path):
    engine = daemon.store.engine
    seed_turns(engine, "assistant", "seeded-loops", [(8, False)] * 4 + [(1, True), (2, True), (2, True)],
               datetime.now(UTC) - timedelta(hours=2))  # fmt: skip
    patterns, pattern_history = await run_workflow(daemon, PatternAnalysisWorkflow.run, PatternAnalysisInput(), PatternAnalysisResult)
    assert [(s.agent, s.out_of_steps) for s in patterns.snapshots] == [("assistant", 4)]
    reviewed, review_history = await run_workflow(
        daemon, OptimisationReviewWorkflow.run, OptimisationReviewInput(), OptimisationReviewResult
    )
    hints = AgentHintStore(engine)
    [applied] = hints.list(active_only=True)
    assert reviewed.applied == [f"#{applied.id} assistant max_steps_per_turn=3 (was 8)"]
    assert applied.run_id == reviewed.run_id and "4 of 7 turns of assistant" in applied.reason
    assert f"daemonflow optimisations revert {applied.id}" in applied.revert

    # A model that never stops asking for tools: the new conversation's turn stops after 3 steps.
    fake_ollama.responder = lambda request: Reply(tool_calls=[ToolCall(name="imaginary", arguments={})])
    hinted = await daemon.start()
    result = await daemon.send(hinted, "loop, please")
    assert len(result.tool_calls) == 3
    assert turn_steps(engine, hinted.id.removeprefix("conversation-")) == 3

    env = daemon.env()
    listed = await daemonflow(env, tmp_path, "optimisations", "list")
    assert listed.code == 0 and f"#{applied.id} assistant: max_steps_per_turn = 3 (was 8)" in listed.out
    reverted = await daemonflow(env, tmp_path, "optimisations", "revert", str(applied.id), "--reason", "needs its steps")
    assert reverted.code == 0, reverted.err
    assert "assistant's max_steps_per_turn is 8 again" in reverted.out
    twice = await daemonflow(env, tmp_path, "optimisations", "revert", str(applied.id))
    assert twice.code == 1 and "already reverted" in twice.err
    journal = json.loads((await daemonflow(env, tmp_path, "optimisations", "list", "--all", "--json")).out)
    assert journal[0]["reverted_by"].startswith("cli:") and journal[0]["revert_reason"] == "needs its steps"

    full = await daemon.start()
    assert len((await daemon.send(full, "loop again")).tool_calls) == 8
    assert turn_steps(engine, full.id.removeprefix("conversation-")) == 8
    # The running conversation keeps the budget it opened with.
    assert len((await daemon.send(hinted, "and once more")).tool_calls) == 3

    # The evidence still holds, but an operator said no: the review leaves it alone (cooldown).
    await run_workflow(daemon, PatternAnalysisWorkflow.run, PatternAnalysisInput(), PatternAnalysisResult)
    again, _ = await run_workflow(daemon, OptimisationReviewWorkflow.run, OptimisationReviewInput(), OptimisationReviewResult)
    assert again.applied == [] and any("an operator (cli:" in line for line in again.skipped)
    assert hints.list(active_only=True) == []

    replayer = Replayer(workflows=[PatternAnalysisWorkflow, OptimisationReviewWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(pattern_history)
    await replayer.replay_workflow(review_history)
