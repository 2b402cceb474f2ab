"""Running a scheduled workflow now and waiting for it (``monitor --run``, ``cache clean``,
``patterns --run``, ``optimisations review``): the schedule's workflow and input, a manual id
beside the schedule's (``<schedule id>-manual-<8 hex>``), a failure said in one line."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowFailureError

from cli.common import CliError, connect_or_explain
from config.settings import Settings
from workers.schedules import schedule_id

RUN_TIMEOUT = timedelta(minutes=5)


async def run_now(settings: Settings, run: Callable[..., Any], arg: Any, schedule: str, what: str) -> Any:
    """Start ``run(arg)`` on the task queue and return its result; it needs a worker there."""
    client = await connect_or_explain(settings)
    try:
        return await client.execute_workflow(
            run,
            arg,
            id=f"{schedule_id(settings, schedule)}-manual-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
            execution_timeout=RUN_TIMEOUT,
        )
    except WorkflowFailureError as err:
        raise CliError(f"the {what} failed: {err.cause or err}") from err
