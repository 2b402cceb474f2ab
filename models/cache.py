"""The contracts of the cache cleanup: what is indexed, what a run plans, deletes and reports.

The cache is what conversations leave behind that can be rebuilt or is only worth keeping for a
while: tool output artifacts (``var/artifacts/<conversation>/…``), stored tool outputs (the
``tool_runs`` rows that make tool retries idempotent) and workspace volumes
(``daemonflow-ws-<conversation>``). Nothing of a running conversation is ever deleted.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from models.monitoring import Contract


class CacheKind(StrEnum):
    ARTIFACT = "artifact"
    OUTPUT = "output"
    WORKSPACE = "workspace"
    CONTAINER = "container"
    """Not indexed (a container is not data); listed here so that its removal is recorded too."""


class DeletionReason(StrEnum):
    AGE = "age"
    """Unused for longer than ``cache_max_age_days``."""
    SIZE = "size"
    """The cache passed its threshold and this entry is not among the newest ``cache_keep_newest``."""
    ENDED = "ended"
    """A workspace volume or sandbox container whose conversation is not running any more."""


class CacheEntryView(Contract):
    key: str
    """``artifact:<conversation>/<file>``, ``output:<conversation>``, ``workspace:<volume>``."""
    kind: CacheKind
    conversation_id: str | None = None
    agent: str | None = None
    size_bytes: int = 0
    created_at: datetime
    last_used_at: datetime
    preview: str = ""


class CleanupInput(Contract):
    """Input of ``CacheCleanupWorkflow``. The schedule and the CLI fill it from the settings; an unset
    field takes the workflow's default (the same as the settings' defaults)."""

    dry_run: bool | None = None
    threshold_mb: float | None = None
    keep_newest: int | None = Field(default=None, ge=0)
    max_age_days: float | None = Field(default=None, gt=0)


class IndexSummary(Contract):
    entries: int
    total_bytes: int
    by_kind: dict[str, int] = Field(default_factory=dict)
    """Bytes per kind."""


class PlannedDeletion(Contract):
    key: str
    kind: CacheKind
    conversation_id: str | None = None
    size_bytes: int = 0
    reason: DeletionReason


class CleanupPlan(Contract):
    at: datetime
    dry_run: bool
    deletions: list[PlannedDeletion] = Field(default_factory=list)
    protected: list[str] = Field(default_factory=list)
    """Keys left alone because their conversation is running (or its state could not be told)."""
    truncated: bool = False
    """More candidates than one run handles; the next run continues."""


class PlanRequest(Contract):
    at: datetime
    dry_run: bool
    threshold_bytes: int
    keep_newest: int
    max_age_days: float


class DeleteRequest(Contract):
    at: datetime
    run_id: str = ""
    deletions: list[PlannedDeletion]


class DeletionOutcome(Contract):
    key: str
    deleted: bool
    error: str | None = None


class CleanupResult(Contract):
    """What ``CacheCleanupWorkflow`` returns (and ``daemonflow`` prints)."""

    at: datetime
    dry_run: bool
    index: IndexSummary
    planned: list[PlannedDeletion] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    failed: list[DeletionOutcome] = Field(default_factory=list)
    protected: list[str] = Field(default_factory=list)
    freed_bytes: int = 0
    containers_removed: list[str] = Field(default_factory=list)
    """Sandbox containers of conversations that are not running any more."""
