"""``daemonflow schedules apply|list|pause|unpause|trigger``: the four Temporal Schedules.

The same operations work from the Web UI's Schedules page and ``temporal schedule …`` (backfill
too: ``temporal schedule backfill --schedule-id daemonflow-monitoring --start-time … --end-time …``).
"""

from __future__ import annotations

import argparse
import json

from temporalio.client import Client, ScheduleActionExecutionStartWorkflow
from temporalio.service import RPCError, RPCStatusCode

from cli.common import CliError, connect_or_explain
from config.settings import Settings
from workers.schedules import (
    CACHE_CLEANUP,
    MONITORING,
    OPTIMISATION_REVIEW,
    PATTERN_ANALYSIS,
    apply_schedules,
    schedule_id,
    schedule_ids,
)

NAMES = {
    "monitoring": MONITORING,
    "cache-cleanup": CACHE_CLEANUP,
    "pattern-analysis": PATTERN_ANALYSIS,
    "optimisation-review": OPTIMISATION_REVIEW,
}
WHERE_TO_LOOK = {
    "monitoring": "daemonflow monitor",
    "cache-cleanup": "daemonflow schedules list",
    "pattern-analysis": "daemonflow patterns",
    "optimisation-review": "daemonflow optimisations list",
}


def _ids(settings: Settings, name: str) -> list[str]:
    return schedule_ids(settings) if name == "all" else [schedule_id(settings, NAMES[name])]


async def run(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_or_explain(settings)
    command = args.schedules_command
    if command == "apply":
        for applied in await apply_schedules(client, settings):
            verb = "created" if applied.created else "updated"
            print(f"{verb} {applied.id}: every {applied.every}, task queue {settings.task_queue}, overlap skip")
        return 0
    if command == "list":
        return await _list(client, settings, args.json)
    for sid in _ids(settings, args.name):
        handle = client.get_schedule_handle(sid)
        try:
            if command == "pause":
                await handle.pause(note=args.note or "paused with daemonflow schedules pause")
            elif command == "unpause":
                await handle.unpause(note=args.note or "unpaused with daemonflow schedules unpause")
            else:
                await handle.trigger()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise CliError(f"no schedule {sid!r}: run `daemonflow schedules apply` first") from err
            raise CliError(f"{command} {sid} failed: {err.message}") from err
        print(f"{command}d {sid}" if command != "trigger" else f"triggered {sid}: a run starts now (see `{WHERE_TO_LOOK[args.name]}`)")
    return 0


async def _list(client: Client, settings: Settings, as_json: bool) -> int:
    rows = []
    for sid in schedule_ids(settings):
        try:
            description = await client.get_schedule_handle(sid).describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise CliError(f"describing {sid} failed: {err.message}") from err
            rows.append({"id": sid, "exists": False})
            continue
        schedule, info = description.schedule, description.info
        recent = []
        for result in info.recent_actions[-3:]:
            action = result.action
            workflow_id = action.workflow_id if isinstance(action, ScheduleActionExecutionStartWorkflow) else ""
            recent.append({"started_at": result.started_at.isoformat(), "workflow_id": workflow_id})
        rows.append(
            {
                "id": sid,
                "exists": True,
                "every_s": [i.every.total_seconds() for i in schedule.spec.intervals],
                "paused": schedule.state.paused,
                "note": schedule.state.note,
                "overlap": schedule.policy.overlap.name,
                "actions": info.num_actions,
                "skipped_overlap": info.num_actions_skipped_overlap,
                "next": [t.isoformat() for t in info.next_action_times[:1]],
                "recent": recent,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        if not row["exists"]:
            print(f"{row['id']:<34} not created (run `daemonflow schedules apply`)")
            continue
        every = ", ".join(f"{s:g}s" for s in row["every_s"])
        state = "PAUSED" + (f" ({row['note']})" if row["note"] else "") if row["paused"] else "active"
        last = row["recent"][-1]["started_at"] if row["recent"] else "never"
        print(
            f"{row['id']:<34} every {every:<8} {state:<10} runs {row['actions']} (skipped {row['skipped_overlap']})"
            f"  last {last}  next {row['next'][0] if row['next'] else '-'}"
        )
    return 0
