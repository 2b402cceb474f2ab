"""Action analytics on a seeded history (SQLite and PostgreSQL): frequencies, sequences, peak hours,
anomalies and suggestions with their evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlmodel import Session

from activities.analytics import agent_analytics
from store.engine import make_engine
from store.tables import Action, Conversation, ModelUsage

SINCE = datetime(2025, 8, 3, 0, 0, tzinfo=UTC)
UNTIL = SINCE + timedelta(hours=24)
TYPES = {"read_file": "READ", "write_file": "FILE_WRITE", "run_tests": "TEST_EXECUTION", "git_push": "TERMINAL_COMMAND",
         "run_command": "TERMINAL_COMMAND", "docker_restart": "HOST"}  # fmt: skip


@pytest.fixture
def history(database_url):
    engine = make_engine(database_url)
    ids = count()
    rows = []

    def act(conversation, turn, tool, at, *, success=True, duration=100.0, decision="allow", args="h", error=None,
            agent="developer"):  # fmt: skip
        rows.append(Action(
            conversation_id=conversation, tool_call_id=f"{turn}-{next(ids)}", turn=turn, agent=agent, tool=tool,
            action_type=TYPES[tool], args_hash=args, decision=decision, source="rule:test",
            success=success if decision in ("allow", "approve") else None,
            duration_ms=duration if decision in ("allow", "approve") else None, error=error, created_at=at,
        ))  # fmt: skip

    # Baseline: the 30 days before the frame.
    for i, tool in enumerate(["read_file", "write_file", "run_tests", "git_push", "run_command"] * 3):
        act("old", 1, tool, SINCE - timedelta(days=2, minutes=i))
    # Three conversations doing read → write → test at 09:00; the first reads the same file twice.
    for n in (1, 2, 3):
        at = SINCE + timedelta(hours=9, minutes=10 * n)
        tools = ["read_file", "read_file", "write_file", "run_tests"] if n == 1 else ["read_file", "write_file", "run_tests"]
        for k, tool in enumerate(tools):
            act(f"c{n}", 1, tool, at + timedelta(seconds=k))
    # Tests at 14:00, one of them very slow.
    for k, duration in enumerate([100.0, 100.0, 100.0, 9_000.0]):
        act("c4", 1, "run_tests", SINCE + timedelta(hours=14, minutes=k), duration=duration)
    # git_push failing 4 of 5 times within a few minutes, then run_command denied 3 times, at 16:00.
    for k in range(5):
        act("c5", 2, "git_push", SINCE + timedelta(hours=16, minutes=k), success=k == 4,
            error=None if k == 4 else f"exit status {128 + k}: remote rejected")  # fmt: skip
    for k in range(3):
        act("c5", 3, "run_command", SINCE + timedelta(hours=16, minutes=10 + k), decision="deny")
    # A tool never used before.
    act("c6", 1, "docker_restart", SINCE + timedelta(hours=20))
    # Someone else's action and one outside the frame: not counted.
    act("x", 1, "read_file", SINCE + timedelta(hours=9), agent="analyst")
    act("c7", 1, "read_file", UNTIL + timedelta(minutes=1))

    with Session(engine) as session:
        session.add_all(rows)
        for conversation in ["c1", "c2", "c3", "c4", "c5", "c6"]:
            session.add(Conversation(id=conversation, agent="developer", model="llama3.2"))
        session.add(Conversation(id="x", agent="analyst", model="qwen"))
        seq = count(1)
        for conversation, model, ms in [("c1", "llama3.2", 1_000.0)] * 3 + [("x", "qwen", 1_200.0)] * 3 + [("c2", "huge", 9_000.0)] * 3:
            session.add(ModelUsage(conversation_id=conversation, seq=next(seq), turn=1, model=model, completion_tokens=100,
                                   total_duration_ms=ms, eval_duration_ms=ms / 2, created_at=SINCE + timedelta(hours=10)))  # fmt: skip
        session.commit()
    yield engine
    engine.dispose()


def test_frequencies_sequences_and_time_patterns(history):
    result = agent_analytics(history, "developer", SINCE, UNTIL)
    assert result.actions == 4 + 3 + 3 + 4 + 5 + 3 + 1
    assert result.conversations == 6
    assert {c.name: c.count for c in result.frequency} == {
        "read_file": 4, "write_file": 3, "run_tests": 7, "git_push": 5, "run_command": 3, "docker_restart": 1,
    }  # fmt: skip
    assert result.frequency[0].name == "run_tests" and result.frequency[0].share == pytest.approx(7 / 23, abs=1e-4)
    assert {c.name: c.count for c in result.by_decision} == {"allow": 20, "deny": 3}

    sequences = {tuple(s.tools): s.count for s in result.sequences}
    assert sequences[("read_file", "write_file")] == 3
    assert sequences[("write_file", "run_tests")] == 3
    assert sequences[("read_file", "write_file", "run_tests")] == 3
    assert sequences[("git_push", "git_push")] == 4
    assert ("read_file", "read_file") not in sequences  # seen once only

    assert result.time_patterns.peak_hours == ["09:00", "16:00", "14:00"]
    assert result.time_patterns.by_hour == {9: 10, 14: 4, 16: 8, 20: 1}
    timing = {t.tool: t for t in result.time_patterns.durations}
    assert timing["run_tests"].p50_ms == 100.0 and timing["run_tests"].runs == 7

    outcomes = {o.tool: o for o in result.outcomes}
    assert (outcomes["git_push"].runs, outcomes["git_push"].failures) == (5, 4)
    assert outcomes["git_push"].top_errors[0].name == "exit status #: remote rejected"
    assert outcomes["run_command"].denied == 3
    assert result.failure_patterns[0].count == 4


def test_anomalies(history):
    anomalies = agent_analytics(history, "developer", SINCE, UNTIL).anomalies
    by_kind = {}
    for anomaly in anomalies:
        by_kind.setdefault(anomaly.kind, []).append(anomaly)
    assert set(by_kind) == {"duration_outlier", "unusual_tool", "failure_burst", "denial_burst"}
    [slow] = by_kind["duration_outlier"]
    assert slow.tool == "run_tests" and "9000 ms" in slow.message and slow.evidence[0].startswith("c4/")
    assert [a.tool for a in by_kind["unusual_tool"]] == ["docker_restart"]
    [failures] = by_kind["failure_burst"]
    assert (failures.tool, failures.count) == ("git_push", 4)
    [denials] = by_kind["denial_burst"]
    assert (denials.tool, denials.count) == ("run_command", 3)


def test_suggestions_cite_their_evidence(history):
    result = agent_analytics(history, "developer", SINCE, UNTIL)
    suggestions = {s.kind: s for s in result.suggestions}
    assert set(suggestions) == {"repeated_read", "failing_tool", "often_denied", "slow_model"}
    assert suggestions["repeated_read"].evidence == ["conversation c1 turn 1: read_file ×2 with identical arguments"]
    assert "git_push fails 4 of 5 runs" in suggestions["failing_tool"].message
    assert "huge" in suggestions["slow_model"].message
    assert any("qwen: 1200 ms over 3 calls" == e for e in suggestions["slow_model"].evidence)
    assert len(suggestions["often_denied"].evidence) == 3
    models = {m.model: m for m in result.performance.models}
    assert set(models) == {"llama3.2", "huge"}  # the analyst's qwen is a peer, not this agent's
    assert result.performance.bucket == "hour" and len(result.performance.buckets) == 24


def test_an_agent_without_actions(history):
    result = agent_analytics(history, "nobody", SINCE, UNTIL)
    assert result.actions == 0 and result.anomalies == [] and result.suggestions == []
