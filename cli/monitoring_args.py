"""Arguments of ``schedules``, ``monitor``, ``analytics``, ``patterns``, ``optimisations`` and
``cache``, and their dispatch.

Kept apart from ``cli/schedules.py`` and ``cli/monitor.py`` so that building the parser stays
cheap: those modules (store, activities, workflows) are imported only when their command runs.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from config.settings import Settings

SCHEDULE_NAMES = ("monitoring", "cache-cleanup", "pattern-analysis", "optimisation-review")


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from err
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    _schedules(sub)
    _monitor_and_analytics(sub)
    _patterns_and_optimisations(sub)
    cache = sub.add_parser("cache", help="the cache of artifacts, tool outputs and workspaces")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    clean = cache_sub.add_parser("clean", help="run the cache cleanup now and wait (needs a worker)")
    clean.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    clean.add_argument("--json", action="store_true")


def _schedules(sub: argparse._SubParsersAction) -> None:
    schedules = sub.add_parser(
        "schedules", help="the Temporal Schedules: monitoring, cache cleanup, pattern analysis, optimisation review"
    )
    actions = schedules.add_subparsers(dest="schedules_command", required=True, metavar="ACTION")
    actions.add_parser("apply", help="create the schedules, or update them to the settings (keeps a pause)")
    listing = actions.add_parser("list", help="show the schedules: interval, paused, next and recent runs")
    listing.add_argument("--json", action="store_true")
    for name, text in (("pause", "pause a schedule"), ("unpause", "resume a paused schedule")):
        command = actions.add_parser(name, help=text)
        command.add_argument("name", choices=[*SCHEDULE_NAMES, "all"], metavar="NAME", help=f"{', '.join(SCHEDULE_NAMES)} or all")
        command.add_argument("--note", default=None, help="shown in the Web UI")
    trigger = actions.add_parser("trigger", help="run a schedule's workflow now")
    trigger.add_argument("name", choices=SCHEDULE_NAMES, metavar="NAME", help=", ".join(SCHEDULE_NAMES))


def _monitor_and_analytics(sub: argparse._SubParsersAction) -> None:
    monitor = sub.add_parser("monitor", help="health score, checks, budgets, agents and alerts of the last monitoring run")
    monitor.add_argument("--run", action="store_true", help="run a monitoring round now and wait for it (needs a worker)")
    monitor.add_argument("--alerts", action="store_true", help="alert history (resolved ones too)")
    monitor.add_argument("--trends", action="store_true", help="usage over the trend window (DAEMONFLOW_MONITORING_TREND_MINUTES, default 90)")
    monitor.add_argument("--week", action="store_true", help="the last report's 7-day trends and daily figures")
    monitor.add_argument("--json", action="store_true")

    analytics = sub.add_parser("analytics", help="what an agent does, how well, anomalies and suggestions")
    analytics.add_argument("agent", metavar="AGENT")
    analytics.add_argument("--hours", type=float, default=24.0, help="frame: the last N hours (default 24)")
    analytics.add_argument("--since", type=_time, help="frame start, ISO 8601 (overrides --hours)")
    analytics.add_argument("--until", type=_time, help="frame end, ISO 8601 (default now)")
    analytics.add_argument("--json", action="store_true")


def _patterns_and_optimisations(sub: argparse._SubParsersAction) -> None:
    patterns = sub.add_parser("patterns", help="the analytics snapshots the pattern analysis stored (every 30 min)")
    patterns.add_argument("--agent", help="only this agent's snapshots")
    patterns.add_argument("--limit", type=int, default=20, help="how many, newest first (default 20)")
    patterns.add_argument("--show", type=int, metavar="ID", help="one snapshot's whole analytics")
    patterns.add_argument("--run", action="store_true", help="run a pattern analysis now and wait (needs a worker)")
    patterns.add_argument("--json", action="store_true")

    optimisations = sub.add_parser("optimisations", help="hints the optimisation review applied: list, revert, review now")
    optimisation_actions = optimisations.add_subparsers(dest="optimisations_command", required=True, metavar="ACTION")
    listing = optimisation_actions.add_parser("list", help="hints in force (--all: the whole journal), newest first")
    listing.add_argument("--all", action="store_true", help="reverted and expired hints too")
    listing.add_argument("--agent")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    revert = optimisation_actions.add_parser("revert", help="take a hint out of force now")
    revert.add_argument("id", type=int, metavar="ID")
    revert.add_argument("--reason", default=None, help="recorded with the revert")
    review = optimisation_actions.add_parser("review", help="run an optimisation review now and wait (needs a worker)")
    review.add_argument("--json", action="store_true")


def _run(module: str, name: str) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        import importlib

        return asyncio.run(getattr(importlib.import_module(module), name)(args, settings))

    return run


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "schedules": _run("cli.schedules", "run"),
    "monitor": _run("cli.monitor", "monitor"),
    "analytics": _run("cli.monitor", "analytics"),
    "cache": _run("cli.monitor", "cache"),
    "patterns": _run("cli.patterns", "patterns"),
    "optimisations": _run("cli.optimisations", "optimisations"),
}
