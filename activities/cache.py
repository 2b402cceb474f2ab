"""Cache cleanup activities: index what conversations left behind, plan, delete, reap containers.

- ``cache.index`` rebuilds the index (``store.cache``) from what exists: artifact files under
  ``<var_dir>/artifacts/<conversation>/``, stored tool outputs (``tool_runs`` rows and
  ``payloads``: long tool-call arguments and full outputs; one entry per conversation) and
  Daemonflow workspace volumes (``daemonflow-ws-<conversation>``).
- ``cache.plan`` decides what goes, in this order: workspaces of conversations that are not running
  (``ended``); entries unused for ``max_age_days`` (``age``); and, when the total passes the
  threshold, everything but the newest ``keep_newest`` of what is left (``size``). Entries of a
  running conversation are taken out first: they are never candidates and do not count among the
  newest kept.
- ``cache.delete`` asks Temporal again, right before each deletion, whether the conversation is
  running (it may have been started again since the plan), deletes, and records every deletion.
- ``cache.reap_containers`` removes the sandbox containers of conversations that are not running
  (idle containers of running ones are the worker's reaper's business, which keeps their volume).

"Running" means: ``describe`` of workflow ``conversation-<id>`` says RUNNING. When Temporal cannot
tell (unreachable, any error but not-found), the conversation counts as running: fail safe.
Only conversations this store knows are touched in Docker, unless ``cache_reap_unknown_volumes``:
several installations (or test runs) may share one Docker engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, delete, select
from temporalio import activity
from temporalio.client import Client

from config.settings import Settings
from control.conversations import Conversations
from control.errors import ControlError
from models.cache import (
    CacheEntryView,
    CacheKind,
    CleanupPlan,
    DeleteRequest,
    DeletionOutcome,
    DeletionReason,
    IndexSummary,
    PlannedDeletion,
    PlanRequest,
)
from store.cache import CacheStore
from store.tables import Conversation, Payload, ToolRun

log = logging.getLogger("daemonflow.cache")

LABEL_CONVERSATION = "daemonflow.conversation"
LABEL_CREATED_BY = "daemonflow.created-by"
CREATED_BY = "daemonflow"
MAX_DELETIONS_PER_RUN = 500
PREVIEW_CHARS = 200


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    with contextlib.suppress(ValueError):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


class ScheduledActivities:
    """What the schedules' activity classes (cache cleanup here, monitoring in ``activities.health``) share."""

    def __init__(
        self, settings: Settings, engine: Engine, docker_client: Any | None = None, client: Client | None = None
    ) -> None:
        self._given_client = client
        self._settings = settings
        self._engine = engine
        self._docker = docker_client
        self._cache = CacheStore(engine)

    @property
    def _client(self) -> Client:
        """The worker's own client inside an activity (``activity.client()``), unless one was given."""
        return self._given_client or activity.client()


class CacheActivities(ScheduledActivities):
    def __init__(
        self, settings: Settings, engine: Engine, docker_client: Any | None = None, client: Client | None = None
    ) -> None:
        super().__init__(settings, engine, docker_client, client)
        self.artifacts_dir = settings.var_dir / "artifacts"

    # -- running or not --

    async def is_running(self, conversation_id: str) -> bool:
        """True when the conversation's workflow runs, or when Temporal cannot say (fail safe)."""
        try:
            return await Conversations(self._client, self._settings.task_queue).is_running(conversation_id)
        except ControlError as err:
            log.warning("cannot tell whether %s runs (%s): keeping its cache", conversation_id, err)
            return True

    async def _running(self, conversation_ids: set[str]) -> set[str]:
        ids = sorted(conversation_ids)
        answers = await asyncio.gather(*(self.is_running(c) for c in ids))
        return {c for c, running in zip(ids, answers) if running}

    # -- cache.index --

    @activity.defn(name="cache.index")
    async def index(self, at: datetime) -> IndexSummary:
        entries = await asyncio.to_thread(self._scan)
        await asyncio.to_thread(self._cache.replace_index, entries, at)
        by_kind: dict[str, int] = defaultdict(int)
        for entry in entries:
            by_kind[entry.kind.value] += entry.size_bytes
        return IndexSummary(entries=len(entries), total_bytes=sum(by_kind.values()), by_kind=dict(by_kind))

    def _scan(self) -> list[CacheEntryView]:
        agents = self._agents()
        return [*self._artifacts(agents), *self._outputs(agents), *self._workspaces(agents)]

    def _agents(self) -> dict[str, str]:
        with Session(self._engine) as session:
            return {cid: agent for cid, agent in session.exec(select(Conversation.id, Conversation.agent))}

    def _artifacts(self, agents: dict[str, str]) -> list[CacheEntryView]:
        if not self.artifacts_dir.is_dir():
            return []
        entries = []
        for path in sorted(self.artifacts_dir.rglob("*")):
            if not path.is_file():
                continue
            relative = path.relative_to(self.artifacts_dir)
            conversation = relative.parts[0] if len(relative.parts) > 1 else None
            stat = path.stat()
            modified = datetime.fromtimestamp(stat.st_mtime, UTC)
            entries.append(
                CacheEntryView(
                    key=f"artifact:{relative.as_posix()}",
                    kind=CacheKind.ARTIFACT,
                    conversation_id=conversation,
                    agent=agents.get(conversation or ""),
                    size_bytes=stat.st_size,
                    created_at=min(modified, datetime.fromtimestamp(stat.st_ctime, UTC)),
                    last_used_at=modified,
                    preview=_preview(path),
                )
            )
        return entries

    def _outputs(self, agents: dict[str, str]) -> list[CacheEntryView]:
        groups: dict[str, list[ToolRun]] = defaultdict(list)
        with Session(self._engine) as session:
            for row in session.exec(select(ToolRun).order_by(col(ToolRun.id))):
                groups[row.conversation_id].append(row)
            stored = {row[0]: row[1:] for row in session.exec(
                select(Payload.conversation_id, func.count(), func.sum(Payload.bytes), func.min(Payload.created_at),
                       func.max(Payload.created_at)).group_by(Payload.conversation_id))}
        entries = []
        for conversation in sorted(set(groups) | set(stored)):
            rows = groups.get(conversation, [])
            count, size, first, last = stored.get(conversation, (0, 0, None, None))
            times = [r.created_at for r in rows] + [t for t in (first, last) if t is not None]
            entries.append(CacheEntryView(
                key=f"output:{conversation}",
                kind=CacheKind.OUTPUT,
                conversation_id=conversation,
                agent=agents.get(conversation),
                size_bytes=sum(len(json.dumps(r.result, default=str)) for r in rows) + int(size or 0),
                created_at=min(times),
                last_used_at=max(times),
                preview=f"{len(rows)} tool results, {count} stored payloads: "
                        + ", ".join(sorted({r.tool for r in rows})),
            ))
        return entries

    def _workspaces(self, agents: dict[str, str]) -> list[CacheEntryView]:
        if self._docker is None:
            return []
        volumes = self._docker.volumes.list(filters={"label": f"{LABEL_CREATED_BY}={CREATED_BY}"})
        if not volumes:
            return []
        sizes: dict[str, int] = {}
        with contextlib.suppress(Exception):  # sizes are nice to have; an engine may refuse df
            for volume in self._docker.df().get("Volumes") or []:
                size = ((volume.get("UsageData") or {}).get("Size")) or 0
                sizes[volume.get("Name", "")] = max(0, int(size))
        updated = self._updated_at()
        entries = []
        for volume in volumes:
            conversation = (volume.attrs.get("Labels") or {}).get(LABEL_CONVERSATION)
            if not conversation or (conversation not in agents and not self._settings.cache_reap_unknown_volumes):
                continue
            created = _parse_time(volume.attrs.get("CreatedAt")) or datetime.now(UTC)
            entries.append(
                CacheEntryView(
                    key=f"workspace:{volume.name}",
                    kind=CacheKind.WORKSPACE,
                    conversation_id=conversation,
                    agent=agents.get(conversation),
                    size_bytes=sizes.get(volume.name, 0),
                    created_at=created,
                    last_used_at=max(created, updated.get(conversation, created)),
                    preview=f"workspace volume of conversation {conversation}",
                )
            )
        return entries

    def _updated_at(self) -> dict[str, datetime]:
        with Session(self._engine) as session:
            return {cid: at for cid, at in session.exec(select(Conversation.id, Conversation.updated_at))}

    # -- cache.plan --

    @activity.defn(name="cache.plan")
    async def plan(self, request: PlanRequest) -> CleanupPlan:
        entries = await asyncio.to_thread(self._cache.entries)
        running = await self._running({e.conversation_id for e in entries if e.conversation_id})
        protected = [e.key for e in entries if e.conversation_id in running]
        candidates = [e for e in entries if e.conversation_id not in running]  # newest first
        chosen: dict[str, DeletionReason] = {}
        for entry in candidates:
            if entry.kind == CacheKind.WORKSPACE:
                chosen[entry.key] = DeletionReason.ENDED
            elif entry.last_used_at < request.at - timedelta(days=request.max_age_days):
                chosen[entry.key] = DeletionReason.AGE
        total = sum(e.size_bytes for e in entries)
        if total > request.threshold_bytes:
            for entry in candidates[request.keep_newest :]:
                chosen.setdefault(entry.key, DeletionReason.SIZE)
        deletions = [
            PlannedDeletion(
                key=e.key, kind=e.kind, conversation_id=e.conversation_id, size_bytes=e.size_bytes, reason=chosen[e.key]
            )
            for e in reversed(candidates)  # oldest first
            if e.key in chosen
        ]
        return CleanupPlan(
            at=request.at,
            dry_run=request.dry_run,
            deletions=deletions[:MAX_DELETIONS_PER_RUN],
            protected=protected,
            truncated=len(deletions) > MAX_DELETIONS_PER_RUN,
        )

    # -- cache.delete --

    @activity.defn(name="cache.delete")
    async def delete(self, request: DeleteRequest) -> list[DeletionOutcome]:
        outcomes: list[DeletionOutcome] = []
        running: dict[str, bool] = {}
        for planned in request.deletions:
            activity.heartbeat(planned.key)
            conversation = planned.conversation_id
            if conversation:
                if conversation not in running:
                    running[conversation] = await self.is_running(conversation)
                if running[conversation]:
                    outcomes.append(DeletionOutcome(key=planned.key, deleted=False, error="conversation is running"))
                    continue
            try:
                containers = await asyncio.to_thread(self._delete_one, planned)
            except Exception as err:  # noqa: BLE001 - one stubborn entry must not stop the others
                log.warning("could not delete %s: %s", planned.key, err)
                outcomes.append(DeletionOutcome(key=planned.key, deleted=False, error=str(err)[:300]))
                continue
            await asyncio.to_thread(self._cache.record_deletion, planned, request.run_id, request.at)
            await self._record_containers(containers, conversation, request)
            outcomes.append(DeletionOutcome(key=planned.key, deleted=True))
        return outcomes

    async def _record_containers(self, names: list[str], conversation: str | None, request: DeleteRequest) -> None:
        for name in names:
            planned = PlannedDeletion(
                key=f"container:{name}", kind=CacheKind.CONTAINER, conversation_id=conversation, reason=DeletionReason.ENDED
            )
            await asyncio.to_thread(self._cache.record_deletion, planned, request.run_id, request.at)

    def _delete_one(self, planned: PlannedDeletion) -> list[str]:
        """Delete one entry; returns the containers removed with it (a workspace's stopped holders)."""
        kind, _, ref = planned.key.partition(":")
        removed: list[str] = []
        if kind == CacheKind.ARTIFACT.value:
            path = (self.artifacts_dir / ref).resolve()
            if self.artifacts_dir.resolve() not in path.parents:
                raise ValueError(f"{path} is outside {self.artifacts_dir}")
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the conversation's directory, once empty
                path.parent.rmdir()
        elif kind == CacheKind.OUTPUT.value:
            with Session(self._engine) as session:
                session.exec(delete(ToolRun).where(ToolRun.conversation_id == ref))
                session.exec(delete(Payload).where(Payload.conversation_id == ref))
                session.commit()
        elif kind == CacheKind.WORKSPACE.value:
            if self._docker is None:
                raise RuntimeError("no Docker engine on this worker")
            import docker.errors

            if planned.conversation_id:  # a stopped container still holds the volume
                removed = self._remove_containers(planned.conversation_id)
            with contextlib.suppress(docker.errors.NotFound):
                self._docker.volumes.get(ref).remove(force=True)
        else:
            raise ValueError(f"unknown cache entry kind in {planned.key!r}")
        return removed

    def _remove_containers(self, conversation_id: str) -> list[str]:
        import docker.errors

        labels = [f"{LABEL_CREATED_BY}={CREATED_BY}", f"{LABEL_CONVERSATION}={conversation_id}"]
        removed = []
        for container in self._docker.containers.list(all=True, filters={"label": labels}):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
                removed.append(container.name)
        return removed

    # -- cache.reap_containers --

    @activity.defn(name="cache.reap_containers")
    async def reap_containers(self, request: DeleteRequest) -> list[str]:
        """Remove the sandbox containers of conversations that are not running; ``deletions`` is unused."""
        if self._docker is None:
            return []
        containers = await asyncio.to_thread(
            self._docker.containers.list, all=True, filters={"label": f"{LABEL_CREATED_BY}={CREATED_BY}"}
        )
        known = await asyncio.to_thread(self._agents)
        conversations = {
            c.labels.get(LABEL_CONVERSATION)
            for c in containers
            if c.labels.get(LABEL_CONVERSATION)
            and (c.labels.get(LABEL_CONVERSATION) in known or self._settings.cache_reap_unknown_volumes)
        }
        removed: list[str] = []
        for conversation in sorted(conversations):
            if await self.is_running(conversation):
                continue
            names = await asyncio.to_thread(self._remove_containers, conversation)
            await self._record_containers(names, conversation, request)
            removed.extend(names)
        return removed

    def all(self) -> list[Callable[..., Any]]:
        return [self.index, self.plan, self.delete, self.reap_containers]


def _preview(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(PREVIEW_CHARS * 2).decode("utf-8", errors="replace")[:PREVIEW_CHARS]
    except OSError:
        return ""
