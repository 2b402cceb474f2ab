"""Cache cleanup on the dev server: keeps the newest N, removes by age, records every deletion,
deletes nothing in dry-run, and never touches a running conversation's files or workspace."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker.errors
from sqlmodel import Session

from models.cache import CleanupInput, CleanupResult, DeletionReason
from store.cache import CacheStore
from store.engine import make_engine
from store.tables import Conversation, ToolRun
from tests.monitoring_support import schedule_settings, schedule_worker
from tests.test_conversation import status_of, wait_for
from workflows.cache_cleanup import CacheCleanupWorkflow

KB = 1_000
DAY = 86_400


def artifact(var_dir: Path, conversation: str, name: str, size: int, age_s: float) -> Path:
    path = var_dir / "artifacts" / conversation / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = time.time() - age_s
    os.utime(path, (when, when))
    return path


async def clean(client, settings, **options) -> CleanupResult:
    return await client.execute_workflow(
        CacheCleanupWorkflow.run,
        CleanupInput(**options),
        id=f"{settings.schedule_id_prefix}cleanup-{uuid.uuid4().hex[:6]}",
        task_queue=settings.task_queue,
        execution_timeout=timedelta(minutes=2),
    )


async def test_dry_run_deletes_nothing_then_cleanup_keeps_newest_and_removes_old(
    temporal_env, temporal_address, fake_ollama, tmp_path
):
    settings = schedule_settings(tmp_path, temporal_address, fake_ollama.url)
    engine = make_engine(settings.effective_database_url)
    var = settings.var_dir
    recent = [artifact(var, "ended-a", f"exec-{i}.log", 300 * KB, age_s=3600 * (i + 1)) for i in range(8)]
    old = artifact(var, "ended-b", "exec-old.log", 1 * KB, age_s=40 * DAY)
    with Session(engine) as session:
        session.add(ToolRun(conversation_id="ended-c", tool_call_id="1-0", tool="read_file", result={"output": "x"},
                            created_at=datetime.now(UTC) - timedelta(days=40)))
        session.commit()  # fmt: skip
    options = dict(threshold_mb=1.0, keep_newest=3, max_age_days=30)

    async with schedule_worker(temporal_env.client, settings):
        preview = await clean(temporal_env.client, settings, dry_run=True, **options)
        assert preview.dry_run and not preview.deleted
        reasons = {p.key: p.reason for p in preview.planned}
        assert reasons == {
            "artifact:ended-b/exec-old.log": DeletionReason.AGE,
            "output:ended-c": DeletionReason.AGE,
            **{f"artifact:ended-a/exec-{i}.log": DeletionReason.SIZE for i in range(3, 8)},
        }
        assert all(p.exists() for p in [*recent, old])
        assert CacheStore(engine).deletions() == []
        assert preview.index.entries == 10 and preview.index.total_bytes > 2_400 * KB

        result = await clean(temporal_env.client, settings, dry_run=False, **options)

    assert set(result.deleted) == set(reasons)
    assert [p.exists() for p in recent] == [True, True, True, False, False, False, False, False]
    assert not old.exists()
    with Session(engine) as session:
        assert session.get(ToolRun, 1) is None
    recorded = {d.key: d.reason for d in CacheStore(engine).deletions()}
    assert recorded == {key: reason.value for key, reason in reasons.items()}
    assert result.freed_bytes == 5 * 300 * KB + 1 * KB + len('{"output": "x"}')
    assert {e.key for e in CacheStore(engine).entries()} == {f"artifact:ended-a/exec-{i}.log" for i in range(3)}


async def test_under_the_threshold_only_old_entries_go(temporal_env, temporal_address, fake_ollama, tmp_path):
    settings = schedule_settings(tmp_path, temporal_address, fake_ollama.url)
    fresh = [artifact(settings.var_dir, "c1", f"exec-{i}.log", KB, age_s=DAY * i) for i in range(3)]
    stale = artifact(settings.var_dir, "c1", "exec-stale.log", KB, age_s=31 * DAY)
    async with schedule_worker(temporal_env.client, settings):
        result = await clean(temporal_env.client, settings, threshold_mb=500, keep_newest=1, max_age_days=30)
    assert result.deleted == ["artifact:c1/exec-stale.log"]
    assert all(p.exists() for p in fresh) and not stale.exists()


async def test_a_running_conversation_keeps_its_workspace_and_artifacts(daemon, docker_client, new_conversation_id):
    """Everything of an ended conversation goes (volume, container, artifacts); nothing of a running one."""
    running, ended = new_conversation_id("running"), new_conversation_id("ended")
    handle = await daemon.start(conversation_id=running)
    await wait_for(lambda: status_of(handle))  # the conversation row is written, the workflow runs
    engine = make_engine(daemon.settings.effective_database_url)
    with Session(engine) as session:
        session.add(Conversation(id=ended, agent="developer", model="llama3.2", ended_at=datetime.now(UTC)))
        session.commit()
    labels = {"daemonflow.created-by": "daemonflow"}
    for conversation in (running, ended):
        docker_client.volumes.create(f"daemonflow-ws-{conversation}", labels={**labels, "daemonflow.conversation": conversation})
    docker_client.containers.create(
        daemon.settings.sandbox_image, name=f"daemonflow-{ended}", command=["true"],
        labels={**labels, "daemonflow.conversation": ended},
        mounts=[docker.types.Mount(target="/workspace", source=f"daemonflow-ws-{ended}", type="volume")],
    )  # fmt: skip
    mine = artifact(daemon.settings.var_dir, running, "exec-big.log", 2_000 * KB, age_s=60 * DAY)
    theirs = artifact(daemon.settings.var_dir, ended, "exec-big.log", 2_000 * KB, age_s=60 * DAY)

    result = await clean(daemon.client, daemon.settings, dry_run=False, threshold_mb=0.001, keep_newest=0, max_age_days=1)

    assert mine.exists() and not theirs.exists()
    docker_client.volumes.get(f"daemonflow-ws-{running}")  # still there
    try:
        docker_client.volumes.get(f"daemonflow-ws-{ended}")
        raise AssertionError("the ended conversation's workspace was kept")
    except docker.errors.NotFound:
        pass
    assert f"workspace:daemonflow-ws-{running}" in result.protected
    assert f"artifact:{running}/exec-big.log" in result.protected
    assert {f"workspace:daemonflow-ws-{ended}", f"artifact:{ended}/exec-big.log"} <= set(result.deleted)
    assert f"daemonflow-{ended}" not in {c.name for c in docker_client.containers.list(all=True)}
    recorded = {d.key for d in CacheStore(engine).deletions()}
    assert {f"workspace:daemonflow-ws-{ended}", f"container:daemonflow-{ended}"} <= recorded
    assert not any(running in key for key in recorded)
    assert (await handle.describe()).status.name == "RUNNING"
