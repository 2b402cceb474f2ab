"""Analytics over the action registry (``actions``) and model usage, per agent and time frame.

``agent_analytics(engine, agent, since, until)`` reads the rows and ``analyze`` does the rest as a
pure function, so the rules below are testable on a seeded history:

- **Frequency**: by tool, action type and decision, with shares of the frame.
- **Sequences**: 2- and 3-grams of consecutive tool calls within one conversation, kept when seen
  at least twice.
- **Time patterns**: actions per UTC hour, the (up to 3) busiest hours, durations per tool
  (mean, median, 95th percentile).
- **Outcomes and failure patterns**: success rate per tool, denials, commonest error messages
  (numbers masked so "exit 1"/"exit 2" group together).
- **Anomalies**: *duration outliers* (a run of a tool with ≥5 timed runs lasting more than
  Q3 + 3·IQR and more than twice the median); *unusual tools* (not used in the 30 days before the
  frame when that baseline has ≥10 actions; otherwise used once among ≥20 actions of the frame);
  *bursts* of ≥3 failures, or of ≥3 denials/timeouts, within 5 minutes.
- **Performance**: hourly (frames up to 48 h) or daily buckets; success and duration trends compare
  the later half of the frame's actions with the earlier half (±10 points of success rate, ±20 %
  of mean duration, at least 10 actions); per-model latency of the agent's conversations.
- **Turns**: model steps per turn and the turns that ran out of steps (``activities/turn_stats.py``).
- **Suggestions**, each with its evidence: the same read repeated within a turn; a tool failing
  more than half of ≥4 runs; a model more than twice as slow as the median of its peers (≥3 calls
  each); a tool denied in most of ≥3 decisions; a tool approved by hand ≥5 times and never denied.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models.analytics import (
    AgentAnalytics,
    Anomaly,
    Count,
    ModelPerformance,
    PerformanceBucket,
    PerformanceReport,
    Sequence,
    Suggestion,
    TimePatterns,
    ToolOutcome,
    ToolTiming,
)
from activities.turn_stats import turn_stats
from store.tables import Action, Conversation, Message, ModelUsage

DENIED = frozenset({"deny", "timeout"})
APPROVED_BY_HAND = frozenset({"approve", "approve_always", "edit"})
BASELINE_DAYS = 30
MIN_BASELINE = 10
MIN_FRAME_FOR_RARE = 20
OUTLIER_MIN_RUNS = 5
BURST_WINDOW = timedelta(minutes=5)
BURST_MIN = 3
TOP = 10
_NUMBER = re.compile(r"\d+")


def agent_analytics(
    engine: Engine, agent: str, since: datetime, until: datetime, baseline_days: int = BASELINE_DAYS
) -> AgentAnalytics:
    """``GET /analytics/agents/{agent}`` and ``daemonflow analytics AGENT``: the frame [since, until)."""
    with Session(engine, expire_on_commit=False) as session:
        frame = list(
            session.exec(
                select(Action)
                .where(Action.agent == agent, col(Action.created_at) >= since, col(Action.created_at) < until)
                .order_by(col(Action.created_at), col(Action.id))
            )
        )
        baseline = list(
            session.exec(
                select(Action.tool).where(
                    Action.agent == agent,
                    col(Action.created_at) >= since - timedelta(days=baseline_days),
                    col(Action.created_at) < since,
                )
            )
        )
        agents = {cid: a for cid, a in session.exec(select(Conversation.id, Conversation.agent))}
        usage = list(
            session.exec(select(ModelUsage).where(col(ModelUsage.created_at) >= since, col(ModelUsage.created_at) < until))
        )
        mine = [u for u in usage if agents.get(u.conversation_id) == agent]
        last_replies = _last_replies(session, mine)
    result = analyze(agent, since, until, frame, baseline, mine, usage)
    result.turns = turn_stats(mine, last_replies)
    return result


def _last_replies(session: Session, usage: list[Any]) -> dict[tuple[str, int], list[dict[str, Any]] | None]:
    """The tool calls of the assistant message each turn's last model call wrote, by (conversation, seq)."""
    last: dict[tuple[str, int], int] = {}
    for row in usage:
        key = (row.conversation_id, row.turn)
        last[key] = max(last.get(key, row.seq), row.seq)
    wanted = {(conversation, seq) for (conversation, _), seq in last.items()}
    found: dict[tuple[str, int], list[dict[str, Any]] | None] = {}
    conversations = sorted({conversation for conversation, _ in wanted})
    for start in range(0, len(conversations), 500):
        rows = session.exec(
            select(Message.conversation_id, Message.seq, Message.tool_calls).where(
                col(Message.conversation_id).in_(conversations[start : start + 500]),
                col(Message.seq).in_(sorted({seq for _, seq in wanted})),
                Message.role == "assistant",
            )
        )
        found.update({(c, q): calls for c, q, calls in rows if (c, q) in wanted})
    return found


def _counts(values: Iterable[str], total: int, limit: int | None = None) -> list[Count]:
    ranked = sorted(Counter(values).items(), key=lambda item: (-item[1], item[0]))
    return [Count(name=name, count=count, share=round(count / total, 4) if total else 0.0) for name, count in ranked[:limit]]


def _error_pattern(error: str) -> str:
    """Numbers masked, so that "exit 1" and "exit 2" count as one failure pattern."""
    return _NUMBER.sub("#", error.strip())[:120]


def _ref(action: Any) -> str:
    return f"{action.conversation_id}/{action.tool_call_id}"


def analyze(
    agent: str,
    since: datetime,
    until: datetime,
    actions: list[Any],
    baseline_tools: list[str],
    usage: list[Any],
    peer_usage: list[Any] | None = None,
) -> AgentAnalytics:
    """Everything above from rows (anything with ``Action``'s / ``ModelUsage``'s attributes)."""
    total = len(actions)
    ran = [a for a in actions if a.success is not None]
    result = AgentAnalytics(
        agent=agent,
        since=since,
        until=until,
        actions=total,
        conversations=len({a.conversation_id for a in actions}),
        frequency=_counts((a.tool for a in actions), total),
        by_action_type=_counts((a.action_type for a in actions), total),
        by_decision=_counts((a.decision for a in actions), total),
        sequences=_sequences(actions),
        time_patterns=_time_patterns(actions),
        success_rate=round(sum(a.success is True for a in ran) / len(ran), 4) if ran else None,
        outcomes=_outcomes(actions),
        failure_patterns=_counts(
            (_error_pattern(a.error) for a in actions if a.success is False and a.error), total, TOP
        ),
    )
    result.anomalies = [*_duration_outliers(actions), *_unusual_tools(actions, baseline_tools), *_bursts(actions)]
    models = _model_performance(usage)
    peers = _model_performance(peer_usage if peer_usage is not None else usage)
    result.performance = _performance(actions, since, until, models)
    result.suggestions = _suggestions(actions, result.outcomes, models, peers)
    return result


def _sequences(actions: list[Any]) -> list[Sequence]:
    by_conversation: dict[str, list[str]] = defaultdict(list)
    for action in actions:
        by_conversation[action.conversation_id].append(action.tool)
    grams: Counter[tuple[str, ...]] = Counter()
    for tools in by_conversation.values():
        for n in (2, 3):
            grams.update(tuple(tools[i : i + n]) for i in range(len(tools) - n + 1))
    ranked = sorted(((g, c) for g, c in grams.items() if c >= 2), key=lambda item: (-item[1], -len(item[0]), item[0]))
    return [Sequence(tools=list(g), count=c) for g, c in ranked[:TOP]]


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def _time_patterns(actions: list[Any]) -> TimePatterns:
    by_hour = Counter(a.created_at.hour for a in actions)
    peaks = sorted(by_hour.items(), key=lambda item: (-item[1], item[0]))[:3]
    durations: dict[str, list[float]] = defaultdict(list)
    for action in actions:
        if action.duration_ms is not None:
            durations[action.tool].append(action.duration_ms)
    every = [d for values in durations.values() for d in values]
    return TimePatterns(
        by_hour=dict(sorted(by_hour.items())),
        peak_hours=[f"{hour:02d}:00" for hour, _ in peaks],
        avg_duration_ms=round(sum(every) / len(every), 1) if every else None,
        durations=[
            ToolTiming(
                tool=tool,
                runs=len(values),
                avg_ms=round(sum(values) / len(values), 1),
                p50_ms=round(statistics.median(values), 1),
                p95_ms=round(_percentile(values, 95), 1),
            )
            for tool, values in sorted(durations.items())
        ],
    )


def _outcomes(actions: list[Any]) -> list[ToolOutcome]:
    by_tool: dict[str, list[Any]] = defaultdict(list)
    for action in actions:
        by_tool[action.tool].append(action)
    outcomes = []
    for tool, rows in sorted(by_tool.items()):
        ran = [a for a in rows if a.success is not None]
        failed = [a for a in ran if a.success is False]
        outcomes.append(
            ToolOutcome(
                tool=tool,
                runs=len(ran),
                failures=len(failed),
                failure_rate=round(len(failed) / len(ran), 4) if ran else None,
                denied=sum(a.decision in DENIED for a in rows),
                top_errors=_counts((_error_pattern(a.error) for a in failed if a.error), len(failed), 3),
            )
        )
    return outcomes


def _duration_outliers(actions: list[Any]) -> list[Anomaly]:
    by_tool: dict[str, list[Any]] = defaultdict(list)
    for action in actions:
        if action.duration_ms is not None:
            by_tool[action.tool].append(action)
    found = []
    for tool, rows in sorted(by_tool.items()):
        if len(rows) < OUTLIER_MIN_RUNS:
            continue
        values = [a.duration_ms for a in rows]
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        median = statistics.median(values)
        limit = max(q3 + 3 * (q3 - q1), 2 * median)
        for action in rows:
            if action.duration_ms > limit:
                found.append(
                    Anomaly(
                        kind="duration_outlier",
                        tool=tool,
                        at=action.created_at,
                        message=f"{tool} took {action.duration_ms:.0f} ms (median {median:.0f} ms over {len(rows)} runs)",
                        evidence=[_ref(action)],
                    )
                )
    return found


def _unusual_tools(actions: list[Any], baseline_tools: list[str]) -> list[Anomaly]:
    counts = Counter(a.tool for a in actions)
    first = {}
    for action in actions:
        first.setdefault(action.tool, action)
    if len(baseline_tools) >= MIN_BASELINE:
        known = set(baseline_tools)
        return [
            Anomaly(
                kind="unusual_tool",
                tool=tool,
                at=first[tool].created_at,
                count=count,
                message=f"{tool} used {count}× but never in the {len(baseline_tools)} actions before this frame",
                evidence=[_ref(first[tool])],
            )
            for tool, count in sorted(counts.items())
            if tool not in known
        ]
    if len(actions) < MIN_FRAME_FOR_RARE:
        return []
    return [
        Anomaly(
            kind="unusual_tool",
            tool=tool,
            at=first[tool].created_at,
            message=f"{tool} used once among {len(actions)} actions",
            evidence=[_ref(first[tool])],
        )
        for tool, count in sorted(counts.items())
        if count == 1
    ]


def _bursts(actions: list[Any]) -> list[Anomaly]:
    found = []
    for kind, label, events in (
        ("failure_burst", "failures", [a for a in actions if a.success is False]),
        ("denial_burst", "denials or approval timeouts", [a for a in actions if a.decision in DENIED]),
    ):
        i = 0
        while i < len(events):
            j = i
            while j + 1 < len(events) and events[j + 1].created_at - events[i].created_at <= BURST_WINDOW:
                j += 1
            if j - i + 1 >= BURST_MIN:
                burst = events[i : j + 1]
                tools = Counter(a.tool for a in burst)
                found.append(
                    Anomaly(
                        kind=kind,
                        tool=tools.most_common(1)[0][0],
                        at=burst[0].created_at,
                        until=burst[-1].created_at,
                        count=len(burst),
                        message=f"{len(burst)} {label} within {BURST_WINDOW.seconds // 60} min ("
                        + ", ".join(f"{t} ×{c}" for t, c in tools.most_common())
                        + ")",
                        evidence=[_ref(a) for a in burst[:10]],
                    )
                )
                i = j + 1
            else:
                i += 1
    return found


def _model_performance(usage: list[Any]) -> list[ModelPerformance]:
    by_model: dict[str, list[Any]] = defaultdict(list)
    for row in usage:
        by_model[row.model].append(row)
    result = []
    for model, rows in sorted(by_model.items()):
        totals = [r.total_duration_ms for r in rows if r.total_duration_ms]
        tokens = sum(r.completion_tokens or 0 for r in rows if r.eval_duration_ms)
        eval_ms = sum(r.eval_duration_ms or 0 for r in rows if r.eval_duration_ms)
        result.append(
            ModelPerformance(
                model=model,
                calls=len(rows),
                avg_total_ms=round(sum(totals) / len(totals), 1) if totals else None,
                tokens_per_s=round(tokens / (eval_ms / 1000), 1) if eval_ms else None,
            )
        )
    return result


def _trend(earlier: float | None, later: float | None, tolerance: float, higher_is_better: bool, relative: bool) -> str:
    if earlier is None or later is None:
        return "insufficient data"
    delta = (later - earlier) / earlier if relative and earlier else later - earlier
    if abs(delta) <= tolerance:
        return "stable"
    return "improving" if (delta > 0) == higher_is_better else "degrading"


def _performance(actions: list[Any], since: datetime, until: datetime, models: list[ModelPerformance]) -> PerformanceReport:
    hourly = until - since <= timedelta(hours=48)
    size = timedelta(hours=1) if hourly else timedelta(days=1)
    start = since.replace(minute=0, second=0, microsecond=0)
    if not hourly:
        start = start.replace(hour=0)
    buckets: list[PerformanceBucket] = []
    rows_by_bucket: dict[int, list[Any]] = defaultdict(list)
    for action in actions:
        rows_by_bucket[int((action.created_at - start) / size)].append(action)
    cursor, index = start, 0
    while cursor < until:
        rows = rows_by_bucket.get(index, [])
        buckets.append(PerformanceBucket(start=cursor, actions=len(rows), **_rates(rows)))
        cursor, index = cursor + size, index + 1
    report = PerformanceReport(bucket="hour" if hourly else "day", buckets=buckets, models=models)
    if len(actions) >= 10:
        half = len(actions) // 2
        earlier, later = _rates(actions[:half]), _rates(actions[half:])
        report.success_trend = _trend(earlier["success_rate"], later["success_rate"], 0.10, True, relative=False)
        report.duration_trend = _trend(earlier["avg_duration_ms"], later["avg_duration_ms"], 0.20, False, relative=True)
    return report


def _rates(rows: list[Any]) -> dict[str, float | None]:
    ran = [a for a in rows if a.success is not None]
    timed = [a.duration_ms for a in rows if a.duration_ms is not None]
    return {
        "success_rate": round(sum(a.success is True for a in ran) / len(ran), 4) if ran else None,
        "avg_duration_ms": round(sum(timed) / len(timed), 1) if timed else None,
    }


def _suggestions(
    actions: list[Any], outcomes: list[ToolOutcome], models: list[ModelPerformance], peers: list[ModelPerformance]
) -> list[Suggestion]:
    found: list[Suggestion] = []
    repeats: dict[tuple[str, int, str, str], list[Any]] = defaultdict(list)
    for action in actions:
        if action.action_type == "READ" or action.tool.startswith("read"):
            repeats[(action.conversation_id, action.turn, action.tool, action.args_hash)].append(action)
    repeated = {key: rows for key, rows in repeats.items() if len(rows) >= 2}
    if repeated:
        worst = max(repeated.values(), key=len)
        found.append(
            Suggestion(
                kind="repeated_read",
                impact="medium",
                message=f"the same read was repeated within a turn {len(repeated)} time(s), up to {len(worst)}× "
                f"({worst[0].tool}); keep what was read in the conversation instead of reading it again",
                evidence=[
                    f"conversation {c} turn {t}: {tool} ×{len(rows)} with identical arguments"
                    for (c, t, tool, _), rows in sorted(repeated.items(), key=lambda item: -len(item[1]))[:5]
                ],
            )
        )
    for outcome in outcomes:
        if outcome.runs >= 4 and outcome.failure_rate is not None and outcome.failure_rate > 0.5:
            error = outcome.top_errors[0].name if outcome.top_errors else "no error message"
            found.append(
                Suggestion(
                    kind="failing_tool",
                    impact="high",
                    message=f"{outcome.tool} fails {outcome.failures} of {outcome.runs} runs; check its arguments "
                    f"or environment (commonest error: {error})",
                    evidence=[f"{outcome.tool}: {outcome.failures}/{outcome.runs} failed", *(f"error ×{e.count}: {e.name}" for e in outcome.top_errors)],
                )
            )
    for outcome in outcomes:
        decisions = [a for a in actions if a.tool == outcome.tool]
        denied = outcome.denied
        if len(decisions) >= 3 and denied / len(decisions) > 0.5:
            found.append(
                Suggestion(
                    kind="often_denied",
                    impact="medium",
                    message=f"{outcome.tool} was denied or timed out in {denied} of {len(decisions)} calls; tell the agent "
                    "(template or system prompt) not to ask for it, or adjust the policy",
                    evidence=[_ref(a) for a in decisions if a.decision in DENIED][:5],
                )
            )
        by_hand = [a for a in decisions if a.decision in APPROVED_BY_HAND]
        if len(by_hand) >= 5 and not denied:
            found.append(
                Suggestion(
                    kind="always_approved",
                    impact="low",
                    message=f"{outcome.tool} was approved by hand {len(by_hand)} times and never denied; an allow rule "
                    "in the policy would save the waits",
                    evidence=[f"{_ref(a)}: {a.decision} by {a.source}" for a in by_hand[:5]],
                )
            )
    peer_speed = {p.model: p.avg_total_ms for p in peers if p.avg_total_ms is not None and p.calls >= 3}
    for model in models:
        others = [ms for name, ms in peer_speed.items() if name != model.model]
        if model.model not in peer_speed or not others:
            continue
        median = statistics.median(others)
        if peer_speed[model.model] > 2 * median:
            found.append(
                Suggestion(
                    kind="slow_model",
                    impact="medium",
                    message=f"{model.model} averages {peer_speed[model.model]:.0f} ms per call, over twice its peers' "
                    f"median of {median:.0f} ms; a smaller or better-placed model may serve this agent",
                    evidence=[f"{p.model}: {p.avg_total_ms:.0f} ms over {p.calls} calls" for p in peers if p.avg_total_ms],
                )
            )
    return found
