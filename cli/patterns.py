"""``daemonflow patterns``: the analytics snapshots the pattern analysis stored (``--run``: one now).

Reads the store directly (no worker needed to list or show); ``--run`` starts
``PatternAnalysisWorkflow`` with the schedule's input and waits (it needs a worker).
"""

from __future__ import annotations

import argparse
import json

from cli.common import CliError
from cli.monitor import format_analytics
from cli.run_now import run_now
from config.settings import Settings
from models.analytics_snapshots import PatternAnalysisResult, SnapshotSummary
from store.analytics_snapshots import AnalyticsSnapshotStore
from store.engine import make_engine
from workers.schedules import PATTERN_ANALYSIS, pattern_analysis_input
from workflows.pattern_analysis import PatternAnalysisWorkflow


def _line(s: SnapshotSummary) -> str:
    hours = (s.until - s.since).total_seconds() / 3600
    return (
        f"#{s.id:<5} {s.at:%Y-%m-%d %H:%M} UTC  {s.agent:<14} {hours:g} h  actions {s.actions:<5} "
        f"conversations {s.conversations:<4} anomalies {s.anomalies:<3} suggestions {s.suggestions:<3} "
        f"turns {s.turns} ({s.out_of_steps} ran out of steps)"
    )


async def patterns(args: argparse.Namespace, settings: Settings) -> int:
    if args.run:
        result: PatternAnalysisResult = await run_now(
            settings, PatternAnalysisWorkflow.run, pattern_analysis_input(settings), PATTERN_ANALYSIS, "pattern analysis"
        )
        if not args.json:
            print(f"pattern analysis: {len(result.snapshots)} agents analysed, {result.pruned} old snapshots deleted")
    store = AnalyticsSnapshotStore(make_engine(settings.effective_database_url))
    if args.show is not None:
        view = store.get(args.show)
        if view is None:
            raise CliError(f"no analytics snapshot #{args.show} (`daemonflow patterns` lists them)")
        print(view.model_dump_json(indent=2) if args.json else f"snapshot #{view.id} of run {view.run_id}\n"
              + format_analytics(view.analytics))  # fmt: skip
        return 0
    rows = store.list(agent=args.agent, limit=args.limit)
    if args.json:
        print(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))
    elif not rows:
        print("no analytics snapshot yet: the pattern analysis runs every "
              f"{settings.pattern_analysis_interval_s / 60:g} min; `daemonflow patterns --run` runs it now")  # fmt: skip
    else:
        print("\n".join(_line(row) for row in rows))
    return 0
