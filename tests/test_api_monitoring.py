"""Monitoring and analytics over HTTP, against a real ``daemonflow api`` process and the dev server.

The report test runs its own API process on a fresh store, so "no run yet" is really the state it
sees: a 404 that says how to get a run, then a real MonitoringWorkflow run (fake Ollama down) that
the very same endpoints then show — score, the open alert, the seeded usage in the trend buckets —
and a second run (Ollama back) whose resolution shows in the alert history. The analytics test
seeds an action history in the session stack's store, in a frame no other test writes to, and
checks the HTTP answer against the same read function the CLI uses, plus figures counted by hand.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlmodel import Session

from activities.analytics import agent_analytics
from models.analytics import AgentAnalytics
from models.monitoring import AlertView, HealthReport, UsageTrends
from store.engine import make_engine
from store.tables import Action, Conversation, ModelUsage
from tests.fixtures.api import ApiStack, api_env, free_port, launch, role_keys, stop, wait_for_http
from tests.monitoring_support import monitoring_round, schedule_settings, schedule_worker

PROBLEM = "application/problem+json"


async def test_report_alerts_and_trends_before_and_after_monitoring_runs(temporal_env, temporal_address, fake_ollama, tmp_path: Path):
    settings = schedule_settings(tmp_path, temporal_address, fake_ollama.url)
    keys = role_keys()
    port = free_port()
    env = {**api_env(settings, keys, port), "DAEMONFLOW_SCHEDULE_ID_PREFIX": settings.schedule_id_prefix}
    process = launch(env, tmp_path / "api.log")
    try:
        await wait_for_http(f"http://127.0.0.1:{port}", process, tmp_path / "api.log")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                     headers={"Authorization": f"Bearer {keys['viewer']}"}) as http:  # fmt: skip
            # Before any run: a 404 that says which schedule produces reports and how to run one now.
            missing = await http.get("/monitoring/report")
            assert missing.status_code == 404, missing.text
            assert missing.headers["content-type"].startswith(PROBLEM)
            problem = missing.json()
            assert problem["type"] == "urn:daemonflow:problem:no-monitoring-report"
            assert f"{settings.schedule_id_prefix}daemonflow-monitoring runs every 5 min" in problem["detail"]
            assert "`daemonflow schedules trigger monitoring` runs one now" in problem["detail"]
            assert (await http.get("/monitoring/alerts")).json() == []

            # Usage to chart: 300 + 200 tokens five minutes ago.
            engine = make_engine(settings.effective_database_url)
            with Session(engine) as session:
                for seq, (model, tokens) in enumerate((("llama3.2", 300), ("qwen", 200)), start=1):
                    session.add(ModelUsage(conversation_id="trend", seq=seq, turn=1, model=model, prompt_tokens=tokens,
                                           created_at=datetime.now(UTC) - timedelta(minutes=5)))  # fmt: skip
                session.commit()

            fake_ollama.down()
            async with schedule_worker(temporal_env.client, settings):
                down = await monitoring_round(temporal_env.client, settings)
                report = HealthReport.model_validate((await http.get("/monitoring/report")).json())
                alerts = [AlertView.model_validate(a) for a in (await http.get("/monitoring/alerts")).json()]
                trends_answer = await http.get("/monitoring/trends", params={"bucket_minutes": 30})

                fake_ollama.up()
                up = await monitoring_round(temporal_env.client, settings)
                open_after = (await http.get("/monitoring/alerts")).json()
                history = (await http.get("/monitoring/alerts", params={"include_resolved": "true"})).json()
                latest = HealthReport.model_validate((await http.get("/monitoring/report")).json())

        assert (report.score, report.status) == (down.score, down.status)
        assert next(c for c in report.checks if c.name == "ollama").status == "down"
        assert 0 <= report.breakdown.dependencies < 1
        ollama_alert = next(a for a in alerts if a.key == "dependency:ollama")
        assert ollama_alert.severity == "critical" and ollama_alert.resolved_at is None
        assert {a.key for a in alerts} == {a.key for a in report.alerts}

        assert trends_answer.status_code == 200, trends_answer.text
        trends = UsageTrends.model_validate(trends_answer.json())
        assert trends.bucket_minutes == 30 and len(trends.buckets) == 3  # the 90-minute window
        assert sum(b.tokens for b in trends.buckets) == 500
        assert trends.buckets[-1].tokens_by_model == {"llama3.2": 300, "qwen": 200}
        assert trends.buckets[-1].avg_score == down.score

        assert "dependency:ollama" in up.resolved
        assert "dependency:ollama" not in {a["key"] for a in open_after}
        resolved = [a for a in history if a["key"] == "dependency:ollama"]
        assert len(resolved) == 1 and resolved[0]["resolved_at"] is not None
        assert (latest.score, latest.at) == (up.score, up.at)
    finally:
        await asyncio.to_thread(stop, process)


async def test_query_parameters_are_bounded(api: ApiStack):
    http = api.http("viewer")
    for path, params in [
        ("/monitoring/alerts", {"limit": 0}),
        ("/monitoring/alerts", {"limit": 100_000}),
        ("/monitoring/trends", {"bucket_minutes": 0}),
        ("/monitoring/trends", {"bucket_minutes": 10_000}),
    ]:
        answer = await http.get(path, params=params)
        assert answer.status_code == 422, (path, params, answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM)
    clamped = await http.get("/monitoring/trends", params={"bucket_minutes": 1440})
    assert clamped.status_code == 200 and clamped.json()["bucket_minutes"] == 90  # one bucket: the whole window


SINCE = datetime(2024, 3, 4, 0, 0, tzinfo=UTC)
"""A day no other test writes actions to: the session store is shared."""


def seed_history(engine, agent: str) -> list[str]:
    """Two conversations of ``agent`` reading then running, and a failing deploy; returns their ids."""
    tag = uuid.uuid4().hex[:8]
    c1, c2 = f"an-{tag}-1", f"an-{tag}-2"
    rows = []
    for conversation, start in ((c1, SINCE + timedelta(hours=9)), (c2, SINCE + timedelta(hours=10))):
        for k, tool in enumerate(("read_file", "run_command", "read_file", "run_command")):
            rows.append((conversation, tool, start + timedelta(minutes=k), True, None))
    for k in range(4):
        rows.append((c2, "deploy", SINCE + timedelta(hours=15, minutes=k), k == 3, None if k == 3 else "exit 1: refused"))
    with Session(engine) as session:
        for n, (conversation, tool, at, success, error) in enumerate(rows):
            session.add(Action(conversation_id=conversation, tool_call_id=f"1-{n}", turn=1, agent=agent, tool=tool,
                               action_type="READ" if tool == "read_file" else "TERMINAL_COMMAND", args_hash=f"h{n}",
                               decision="allow", source="rule:test", success=success, duration_ms=100.0, error=error,
                               created_at=at))  # fmt: skip
        session.add_all([Conversation(id=c, agent=agent, model="llama3.2") for c in (c1, c2)])
        session.commit()
    return [c1, c2]


async def test_agent_analytics_of_a_seeded_history(api: ApiStack):
    engine = api.store.engine
    seed_history(engine, "developer")
    retired = f"retired-{uuid.uuid4().hex[:6]}"
    seed_history(engine, retired)
    http = api.http("viewer")
    frame = {"since": SINCE.isoformat(), "until": (SINCE + timedelta(days=1)).isoformat()}

    answer = await http.get("/analytics/agents/developer", params=frame)
    assert answer.status_code == 200, answer.text
    result = AgentAnalytics.model_validate(answer.json())
    assert result == await asyncio.to_thread(agent_analytics, engine, "developer", SINCE, SINCE + timedelta(days=1))
    assert (result.actions, result.conversations) == (12, 2)
    assert {c.name: c.count for c in result.frequency} == {"read_file": 4, "run_command": 4, "deploy": 4}
    assert any(s.tools == ["read_file", "run_command"] and s.count == 4 for s in result.sequences)
    assert result.time_patterns.peak_hours[0] in ("09:00", "10:00", "15:00")
    deploy = next(o for o in result.outcomes if o.tool == "deploy")
    assert (deploy.runs, deploy.failures) == (4, 3)
    assert any(s.kind == "failing_tool" and "deploy" in s.message for s in result.suggestions)
    assert any(a.kind == "failure_burst" for a in result.anomalies)

    # An agent whose template is gone still has its history; a name nobody knows is a 404.
    assert (await http.get(f"/analytics/agents/{retired}", params=frame)).json()["actions"] == 12
    unknown = await http.get("/analytics/agents/nobody-at-all")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith(PROBLEM)
    assert unknown.json()["type"] == "urn:daemonflow:problem:unknown-agent"
    assert "developer" in unknown.json()["detail"] and "assistant" in unknown.json()["detail"]

    # Default frame: the last 7 days up to now.
    recent = (await http.get("/analytics/agents/developer")).json()
    since, until = datetime.fromisoformat(recent["since"]), datetime.fromisoformat(recent["until"])
    assert until - since == timedelta(days=7)

    for params, words in [
        ({"since": "2024-03-05T00:00:00Z", "until": "2024-03-04T00:00:00Z"}, "the frame is empty"),
        ({"since": "2023-01-01T00:00:00Z", "until": "2024-03-04T00:00:00Z"}, "at most 366 days"),
        ({"since": "1900-01-01T00:00:00Z", "until": "1900-01-02T00:00:00Z"}, "must lie between"),
        ({"until": "0001-01-01T00:00:00+05:00"}, "out of range"),
        ({"since": "yesterday"}, "since"),
    ]:
        bad = await http.get("/analytics/agents/developer", params=params)
        assert bad.status_code == 422, (params, bad.text)
        assert bad.headers["content-type"].startswith(PROBLEM)
        assert words in bad.json()["detail"], bad.json()
