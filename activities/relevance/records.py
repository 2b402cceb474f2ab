"""``relevance.record``, ``relevance.outcome`` and ``relevance.outcomes``: the engine's decisions
into the records store.

Both are idempotent (unique per channel, message and agent), so Temporal may retry them freely:
a post's scores are written once, and an outcome set twice is the same outcome.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from models.relevance_records import RecordOutcome, RecordOutcomes, RecordRelevance
from store.relevance import RelevanceStore


class RelevanceRecordActivities:
    def __init__(self, store: RelevanceStore) -> None:
        self._store = store

    def all(self) -> list:
        return [self.record, self.outcome, self.outcomes]

    @activity.defn(name="relevance.record")
    async def record(self, request: RecordRelevance) -> list[int]:
        """The score ids, in ``request.post.scores`` order; then ``request.outcomes`` are set."""
        ids = await asyncio.to_thread(self._store.record_post, request.post, request.at)
        if request.outcomes:
            await asyncio.to_thread(self._store.set_outcomes, request.outcomes)
        return ids

    @activity.defn(name="relevance.outcome")
    async def outcome(self, request: RecordOutcome) -> bool:
        """``False`` when the post was never recorded for that agent."""
        return await asyncio.to_thread(
            self._store.set_outcome, request.channel_id, request.message_id, request.agent, request.outcome, request.at
        )

    @activity.defn(name="relevance.outcomes")
    async def outcomes(self, request: RecordOutcomes) -> int:
        """Several outcomes in one call (a channel writes a post's once it is over): how many found
        their score."""
        return await asyncio.to_thread(self._store.set_outcomes, request.outcomes)
