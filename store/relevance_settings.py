"""Relevance settings changed at run time: the thresholds ``PUT /relevance/thresholds`` sets.

One row per setting in ``relevance_settings`` (today only ``thresholds``), in the records store so
that every worker and API process sees the same value. A channel reads it with each message it
scores (``channel.append`` returns it), so a change applies to the next post of every channel, new
or running; ``config/relevance.yaml`` stays the default underneath, and a channel's own
``relevance`` overrides stay on top.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Engine
from sqlmodel import Field, Session, SQLModel

from models.relevance import Thresholds
from store.tables import UTCDateTime, utcnow

THRESHOLDS = "thresholds"


class RelevanceSettingRow(SQLModel, table=True):
    __tablename__ = "relevance_settings"

    key: str = Field(primary_key=True)
    value: dict[str, Any] = Field(sa_type=JSON)
    updated_by: str | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RelevanceSettingsStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def thresholds(self) -> tuple[Thresholds, str | None, datetime] | None:
        """The thresholds set at run time, who set them and when; None while nobody has."""
        with Session(self._engine) as session:
            row = session.get(RelevanceSettingRow, THRESHOLDS)
            return (Thresholds.model_validate(row.value), row.updated_by, row.updated_at) if row else None

    def set_thresholds(self, thresholds: Thresholds, by: str, at: datetime | None = None) -> None:
        with Session(self._engine) as session:
            row = session.get(RelevanceSettingRow, THRESHOLDS) or RelevanceSettingRow(key=THRESHOLDS, value={})
            row.value = thresholds.model_dump(mode="json")
            row.updated_by, row.updated_at = by, at or utcnow()
            session.add(row)
            session.commit()


__all__ = ["RelevanceSettingRow", "RelevanceSettingsStore"]
