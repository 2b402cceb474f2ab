"""Archive activities: write the archive record when a conversation or a channel archives, and
read it back when a new run revives it (``models/archive.py``). Both are idempotent."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine
from temporalio import activity

from models.archive import ArchivedQuery, ArchiveRecord, ArchiveRequest, Reopened, ReopenRequest
from store.agent_pauses import AgentPauseStore
from store.archives import ArchiveStore
from store.tables import utcnow


class ArchiveActivities:
    def __init__(self, engine: Engine) -> None:
        self._archives = ArchiveStore(engine)
        self._pauses = AgentPauseStore(engine)

    @activity.defn(name="archive.write")
    async def write(self, request: ArchiveRequest) -> ArchiveRecord:
        return await asyncio.to_thread(self._archives.archive, request)

    @activity.defn(name="archive.reopen")
    async def reopen(self, request: ReopenRequest) -> Reopened:
        """The latest archive of the subject (marked revived by this run), and which of
        ``request.agents`` an operator paused; an empty answer when it never archived."""
        row = await asyncio.to_thread(self._archives.revive, request.kind, request.workflow_id, request.run_id, utcnow())
        agents = request.agents or ([row.input["agent"]] if row is not None and "agent" in row.input else [])
        paused = await asyncio.to_thread(self._pauses.paused, agents) if agents else {}
        if row is None:
            return Reopened(paused_agents=paused)
        return Reopened(record=row.record(), input=row.input, carried=row.carried, paused_agents=paused)

    @activity.defn(name="archive.archived")
    async def archived(self, query: ArchivedQuery) -> bool:
        """Whether the workflow's last run archived (and no run revived it since): a channel asks
        before it revives an agent's conversation, so one an operator *ended* stays ended."""
        return await asyncio.to_thread(self._archives.archived, query.kind, query.workflow_id)

    def all(self) -> list:
        return [self.write, self.reopen, self.archived]
