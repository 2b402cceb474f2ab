"""Pattern analysis: turn statistics on a seeded history (SQLite and PostgreSQL), then
``PatternAnalysisWorkflow`` on the dev server storing every active agent's analytics, deleting
snapshots past ``history_max_days`` only, replaying its own history, and ``daemonflow patterns``."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import Session
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from activities.analytics import agent_analytics
from models.analytics import AgentAnalytics
from models.analytics_snapshots import PatternAnalysisInput, PatternAnalysisResult
from store.analytics_snapshots import AnalyticsSnapshotStore
from store.engine import make_engine
from store.tables import Action, Message, ModelUsage
from tests.monitoring_support import env_of, schedule_settings, schedule_worker
from tests.test_cli import daemonflow
from tests.turn_history import seed_turns
from workflows.pattern_analysis import PatternAnalysisWorkflow

SINCE = datetime(2025, 8, 3, 0, 0, tzinfo=UTC)
LOOPING = [(8, False)] * 4 + [(1, True), (2, True), (2, True)]
"""Four turns that ran out of their 8 steps, three that answered in 1, 2 and 2."""


def test_turn_statistics_of_a_seeded_history(database_url):
    engine = make_engine(database_url)
    seed_turns(engine, "looper", "loop-1", LOOPING, SINCE + timedelta(hours=9))
    with Session(engine) as session:  # a turn ended by final_answer answered, although its last reply called a tool
        session.add(Message(conversation_id="loop-1", seq=900, role="assistant", content="",
                            tool_calls=[{"id": "900-0", "name": "final_answer", "arguments": {"answer": "done"}}]))  # fmt: skip
        session.add(ModelUsage(conversation_id="loop-1", seq=900, turn=50, model="llama3.2", prompt_tokens=100,
                               completion_tokens=0, created_at=SINCE + timedelta(hours=10)))  # fmt: skip
        session.commit()
    turns = agent_analytics(engine, "looper", SINCE, SINCE + timedelta(days=1)).turns
    assert (turns.turns, turns.answered, turns.out_of_steps) == (8, 4, 4)
    assert (turns.max_answered_steps, turns.p50_answered_steps) == (2, 1.5)
    assert (turns.out_of_steps_tokens, turns.tokens) == (4 * 8 * 100, 4 * 8 * 100 + 6 * 100)
    assert turns.examples == ["loop-1/1", "loop-1/2", "loop-1/3", "loop-1/4"]
    assert agent_analytics(engine, "nobody", SINCE, SINCE + timedelta(days=1)).turns.turns == 0
    engine.dispose()


async def test_pattern_analysis_stores_each_agent_and_keeps_90_days(temporal_env, temporal_address, fake_ollama, tmp_path):
    settings = schedule_settings(tmp_path, temporal_address, fake_ollama.url)
    engine = make_engine(settings.effective_database_url)
    snapshots = AnalyticsSnapshotStore(engine)
    now = datetime.now(UTC)
    seed_turns(engine, "looper", f"loop-{uuid.uuid4().hex[:6]}", LOOPING, now - timedelta(hours=3))
    with Session(engine) as session:
        for k in range(3):
            session.add(Action(conversation_id="dev", tool_call_id=f"1-{k}", turn=1, agent="developer", tool="run_tests",
                               action_type="TEST_EXECUTION", args_hash="h", decision="allow", source="rule:x",
                               success=True, duration_ms=100, created_at=now - timedelta(hours=2, minutes=k)))  # fmt: skip
        session.add(Action(conversation_id="old", tool_call_id="1-0", turn=1, agent="retired", tool="x", action_type="X",
                           args_hash="h", decision="allow", source="rule:x", created_at=now - timedelta(days=3)))  # fmt: skip
        session.commit()
    for days in (100, 91, 89):
        aged = AgentAnalytics(agent="developer", since=now - timedelta(days=days + 1), until=now - timedelta(days=days),
                              actions=0, conversations=0)  # fmt: skip
        snapshots.save(f"aged-{days}", now - timedelta(days=days), aged)

    async with schedule_worker(temporal_env.client, settings):
        handle = await temporal_env.client.start_workflow(
            PatternAnalysisWorkflow.run,
            PatternAnalysisInput(frame_hours=24, history_max_days=90),
            id=f"{settings.schedule_id_prefix}patterns-{uuid.uuid4().hex[:6]}",
            task_queue=settings.task_queue,
            execution_timeout=timedelta(minutes=2),
        )
        result: PatternAnalysisResult = await handle.result()
        history = await handle.fetch_history()

    assert [s.agent for s in result.snapshots] == ["developer", "looper"]  # "retired" did nothing in 24 h
    assert result.pruned == 2
    kept = {s.run_id for s in snapshots.list(limit=100)}
    assert kept == {"aged-89", result.run_id}  # 100 and 91 days old: deleted; 89: kept
    looper = next(s for s in result.snapshots if s.agent == "looper")
    assert (looper.turns, looper.out_of_steps) == (7, 4)
    stored = snapshots.get(looper.id)
    assert stored is not None and stored.analytics.turns.out_of_steps == 4
    assert stored.analytics == agent_analytics(engine, "looper", result.since, result.until)
    developer = snapshots.get(next(s.id for s in result.snapshots if s.agent == "developer"))
    assert developer is not None and developer.analytics.actions == 3

    await Replayer(workflows=[PatternAnalysisWorkflow], data_converter=pydantic_data_converter).replay_workflow(history)

    env = env_of(settings)
    listed = await daemonflow(env, tmp_path, "patterns", "--json")
    assert listed.code == 0, listed.err
    assert {row["agent"] for row in json.loads(listed.out)} == {"developer", "looper"}
    shown = await daemonflow(env, tmp_path, "patterns", "--show", str(looper.id))
    assert shown.code == 0, shown.err
    assert "turns: 7, 4 ran out of steps" in shown.out and "answered turns took up to 2 steps" in shown.out
    missing = await daemonflow(env, tmp_path, "patterns", "--show", "999999")
    assert missing.code == 1 and "no analytics snapshot #999999" in missing.err


async def test_cli_runs_a_pattern_analysis_now(temporal_env, temporal_address, fake_ollama, tmp_path):
    settings = schedule_settings(tmp_path, temporal_address, fake_ollama.url)
    engine = make_engine(settings.effective_database_url)
    seed_turns(engine, "looper", "loop-cli", LOOPING, datetime.now(UTC) - timedelta(hours=1))
    env = env_of(settings)
    nothing = await daemonflow(env, tmp_path, "patterns")
    assert nothing.code == 0 and "no analytics snapshot yet" in nothing.out
    async with schedule_worker(temporal_env.client, settings):
        ran = await daemonflow(env, tmp_path, "patterns", "--run", "--agent", "looper")
    assert ran.code == 0, ran.err
    assert "pattern analysis: 1 agents analysed" in ran.out and "looper" in ran.out and "(4 ran out of steps)" in ran.out
