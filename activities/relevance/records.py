"""``relevance.record`` and ``relevance.outcome``: the engine's decisions into the records store.

Both are idempotent (unique per channel, message and agent), so Temporal may retry them freely:
a post's scores are written once, and an outcome set twice is the same outcome.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from models.relevance_records import RecordOutcome, RecordRelevance
from store.relevance import RelevanceStore


class RelevanceRecordActivities:
    def __init__(self, store: RelevanceStore) -> None:
        self._store = store

    def all(self) -> list:
        return [self.record, self.outcome]

    @activity.defn(name="relevance.record")
    async def record(self, request: RecordRelevance) -> list[int]:
        """The score ids, in ``request.post.scores`` order."""
        return await asyncio.to_thread(self._store.record_post, request.post, request.at)

    @activity.defn(name="relevance.outcome")
    async def outcome(self, request: RecordOutcome) -> bool:
        """``False`` when the post was never recorded for that agent."""
        return await asyncio.to_thread(
            self._store.set_outcome, request.channel_id, request.message_id, request.agent, request.outcome, request.at
        )
