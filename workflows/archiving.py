"""The archive record's two round trips, shared by ``ConversationWorkflow`` and ``ChannelWorkflow``:
``write`` when one archives (its input and carried state go to the store with the record), and
``reopen`` when a new run with ``revive`` reads them back (``activities/archive.py``)."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.archive import ArchiveActivities
    from models.archive import ArchivedQuery, ArchiveKind, ArchiveRecord, ArchiveRequest, Reopened, ReopenRequest
    from workflows.activity_config import STORE_CALL
    from workflows.idle_clock import IdleClock


async def write(kind: ArchiveKind, subject_id: str, turns: int, clock: IdleClock, input: BaseModel,
                carried: BaseModel) -> ArchiveRecord:  # fmt: skip
    info = workflow.info()
    assert clock.last is not None
    request = ArchiveRequest(
        kind=kind, subject_id=subject_id, workflow_id=info.workflow_id, run_id=info.run_id, turns=turns,
        last_activity_at=clock.last, archived_at=workflow.now(), idle_s=clock.after_s,
        input=input.model_dump(mode="json", exclude={"carried", "revive"}), carried=carried.model_dump(mode="json"),
    )  # fmt: skip
    return await workflow.execute_activity_method(
        ArchiveActivities.write, request, summary=f"archive {kind.value} {subject_id} after {clock.idle_s()}s idle",
        **STORE_CALL,
    )  # fmt: skip


async def archived(kind: ArchiveKind, workflow_id: str) -> bool:
    """Whether another workflow's last run archived (an agent's conversation, for its channel)."""
    return await workflow.execute_activity_method(
        ArchiveActivities.archived, ArchivedQuery(kind=kind, workflow_id=workflow_id),
        summary=f"is {workflow_id} archived", **STORE_CALL,
    )  # fmt: skip


async def reopen(kind: ArchiveKind, agents: list[str]) -> Reopened:
    """This workflow id's latest archive (marked revived by this run)."""
    info = workflow.info()
    request = ReopenRequest(kind=kind, workflow_id=info.workflow_id, run_id=info.run_id, agents=agents)
    return await workflow.execute_activity_method(
        ArchiveActivities.reopen, request, summary=f"reopen the archived {kind.value}", **STORE_CALL
    )
