"""Stored analytics snapshots, optimisation hints and the 7-day trends over real HTTP (the session's
``daemonflow api`` process and its store): listing, reading, reverting as an operator, and the
problems — 404 unknown, 409 already reverted (saying by whom), 403 for a viewer, 422 out of range."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from models.analytics import AgentAnalytics, TurnStats
from models.analytics_snapshots import SnapshotSummary, SnapshotView
from models.optimisation import AgentHintView, HintKind, HintProposal
from models.weekly_trends import WeeklyTrends
from store.agent_hints import AgentHintStore
from store.analytics_snapshots import AnalyticsSnapshotStore
from tests.fixtures.api import ApiStack

PROBLEM = "application/problem+json"


async def test_hints_are_listed_and_an_operator_reverts_one(api: ApiStack):
    agent = f"api-hint-{uuid.uuid4().hex[:6]}"  # the session's store is shared: an agent of its own
    now = datetime.now(UTC)
    proposal = HintProposal(agent=agent, kind=HintKind.MAX_STEPS_PER_TURN, value=4, previous=8,
                            reason="loops", evidence=["snapshot #1"], expires_at=now + timedelta(days=7))  # fmt: skip
    applied = AgentHintStore(api.store.engine).apply(proposal, now, f"run-{agent}")
    assert applied is not None
    viewer, operator = api.http("viewer"), api.http("operator")

    listed = [AgentHintView.model_validate(h) for h in (await viewer.get("/optimisations", params={"agent": agent})).json()]
    assert [h.id for h in listed] == [applied.id] and listed[0].value == 4 and listed[0].evidence == ["snapshot #1"]
    one = await viewer.get(f"/optimisations/{applied.id}")
    assert one.status_code == 200 and one.json()["revert"].startswith(f"daemonflow optimisations revert {applied.id}")

    forbidden = await viewer.post(f"/optimisations/{applied.id}/revert", json={"reason": "no"})
    assert forbidden.status_code == 403 and forbidden.headers["content-type"].startswith(PROBLEM)
    reverted = await operator.post(f"/optimisations/{applied.id}/revert", json={"reason": "it needs its steps"})
    assert reverted.status_code == 200, reverted.text
    body = AgentHintView.model_validate(reverted.json())
    assert (body.active, body.reverted_by, body.revert_reason) == (False, "api:operator-key", "it needs its steps")
    assert AgentHintStore(api.store.engine).step_budget(agent) is None

    again = await operator.post(f"/optimisations/{applied.id}/revert")
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)
    assert again.json()["type"] == "urn:daemonflow:problem:already-reverted" and "by api:operator-key" in again.json()["detail"]
    assert (await viewer.get("/optimisations", params={"agent": agent})).json() == []
    journal = (await viewer.get("/optimisations", params={"agent": agent, "include_reverted": "true"})).json()
    assert [h["id"] for h in journal] == [applied.id]

    for path in ("/optimisations/2147483647", "/optimisations/2147483647/revert"):
        missing = await (operator.post(path) if path.endswith("revert") else viewer.get(path))
        assert missing.status_code == 404 and missing.json()["type"] == "urn:daemonflow:problem:optimisation-not-found"
    for bad in ("/optimisations/0", "/optimisations/2147483648", "/optimisations?limit=0"):
        assert (await viewer.get(bad)).status_code == 422, bad


async def test_stored_snapshots_and_weekly_trends(api: ApiStack):
    agent = f"api-snap-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    analytics = AgentAnalytics(agent=agent, since=now - timedelta(days=1), until=now, actions=5, conversations=2,
                               turns=TurnStats(turns=4, answered=3, out_of_steps=1))  # fmt: skip
    store = AnalyticsSnapshotStore(api.store.engine)
    first = store.save(f"run-1-{agent}", now - timedelta(minutes=30), analytics)
    second = store.save(f"run-2-{agent}", now, analytics.model_copy(update={"actions": 6}))
    http = api.http("viewer")

    listed = [SnapshotSummary.model_validate(s) for s in (await http.get("/analytics/snapshots", params={"agent": agent})).json()]
    assert [s.id for s in listed] == [second.id, first.id]  # newest first
    assert (listed[0].actions, listed[0].turns, listed[0].out_of_steps) == (6, 4, 1)
    paged = (await http.get("/analytics/snapshots", params={"agent": agent, "before": second.id})).json()
    assert [s["id"] for s in paged] == [first.id]
    view = SnapshotView.model_validate((await http.get(f"/analytics/snapshots/{first.id}")).json())
    assert view.analytics == analytics and view.run_id == f"run-1-{agent}"
    missing = await http.get("/analytics/snapshots/2147483647")
    assert missing.status_code == 404 and missing.json()["type"] == "urn:daemonflow:problem:snapshot-not-found"
    assert (await http.get("/analytics/snapshots", params={"agent": "not an agent!"})).status_code == 422

    weekly = await http.get("/monitoring/trends/7d")
    assert weekly.status_code == 200, weekly.text
    trends = WeeklyTrends.model_validate(weekly.json())
    assert len(trends.days) == 7 and trends.until - trends.since == timedelta(days=7)
    assert [line.metric for line in trends.lines] == ["latency", "prompt_cache", "parallelism", "error_rate"]
    assert all(line.rule for line in trends.lines)
