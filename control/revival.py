"""Reviving an archived conversation or channel: a new run under the same workflow id, which reads
its input and state back from its archive record (``models/archive.py``).

Id policy, for this start only: ``WorkflowIDReusePolicy.ALLOW_DUPLICATE`` (the last run completed
by archiving; an *ended* one is never revived — callers check ``Execution.archived`` first) and
``WorkflowIDConflictPolicy.USE_EXISTING`` (two callers reviving at once share one new run). The
message that revives it is then sent to that run as usual (start, then update): the update always
reaches a running workflow, so it is never lost nor stuck on a completed one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from control.failures import answered

ARCHIVED = "archived"
"""The ``DaemonflowState`` an archived run leaves behind (``ConversationState``/``ChannelState``)."""


async def revive(client: Client, run: Any, request: BaseModel, workflow_id: str, task_queue: str,
                 timeout: timedelta, what: str) -> None:  # fmt: skip
    starting = client.start_workflow(
        run, request, id=workflow_id, task_queue=task_queue, static_summary=f"{what} (revived)",
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        rpc_timeout=timeout,
    )  # fmt: skip
    await answered(starting, f"reviving {what}", needs_worker=False)
