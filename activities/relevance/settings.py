"""``relevance.configuration``: the relevance configuration as it stands now, for a hypothetical
message's scoring — ``config/relevance.yaml`` (or ``DAEMONFLOW_RELEVANCE_FILE``) and the thresholds
``PUT /relevance/thresholds`` set. A file that no longer loads is a clear non-retryable error."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from config.relevance import RelevanceConfigError, load_relevance
from config.settings import Settings
from models.relevance_calculation import CurrentRelevance
from store.relevance_settings import RelevanceSettingsStore


class RelevanceSettingsActivities:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self._settings = settings
        self._store = RelevanceSettingsStore(engine)

    def all(self) -> list:
        return [self.configuration]

    @activity.defn(name="relevance.configuration")
    async def configuration(self) -> CurrentRelevance:
        try:
            defaults = await asyncio.to_thread(load_relevance, self._settings.relevance_file)
        except RelevanceConfigError as err:
            raise ApplicationError(str(err), type="InvalidRelevance", non_retryable=True) from err
        set_at_run_time = await asyncio.to_thread(self._store.thresholds)
        return CurrentRelevance(defaults=defaults, thresholds=set_at_run_time[0] if set_at_run_time else None)
