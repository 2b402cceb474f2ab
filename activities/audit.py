"""The action registry activity: one audit row per tool call and decision."""

from __future__ import annotations

import asyncio

from temporalio import activity

from models.tools import ActionRecord
from store.actions import ActionStore
from store.tables import Action


class AuditActivities:
    def __init__(self, actions: ActionStore) -> None:
        self._actions = actions

    @activity.defn(name="audit.record")
    async def record(self, record: ActionRecord) -> None:
        await asyncio.to_thread(self._actions.record, Action(**record.model_dump()))
