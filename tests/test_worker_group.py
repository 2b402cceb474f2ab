"""A worker of several processes (``daemonflow worker --processes N``, ``workers/worker_group.py``):
its helpers take workflow tasks and their local model steps, recall through the first process's
embedded store, and never outlive it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from activities.memory import MemoryService
from activities.memory.shared_store import ShareAddress, SharedMemoryStore, StoreShare
from activities.memory.store import DimensionMismatch, MemoryStoreError
from models.conversation import ConversationInput, SendMessage, conversation_workflow_id
from models.events import ConversationEvent, EventsQuery, EventType
from models.memory import MemoryQuery, MemoryScope, visible_scopes
from tests.fixtures.temporal import daemon_settings
from tests.test_observability import daemonflow_worker
from workflows.conversation import ConversationWorkflow

LYON = "The user lives in Lyon."
HANG_GUARD_S = 300
"""How long a wait may last before the test fails instead of hanging: a guard, not a timing under test."""


def worker_env(settings) -> dict[str, str]:
    return {
        "DAEMONFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "DAEMONFLOW_TASK_QUEUE": settings.task_queue,
        "DAEMONFLOW_DATABASE_URL": settings.effective_database_url,
        "DAEMONFLOW_VAR_DIR": str(settings.var_dir),
        "OLLAMA_HOST": settings.ollama_host,
        "DAEMONFLOW_METRICS_PORT": "0",
        "DAEMONFLOW_TEMPORAL_METRICS_PORT": "0",
        "DAEMONFLOW_SCHEDULES": "off",
    }


def children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def until(condition: Callable[[], Any], what: str) -> Any:
    """``condition()`` once it is true; fails after ``HANG_GUARD_S`` saying ``what`` never happened."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what} (a guard against hanging, not a timing)"
        await asyncio.sleep(0.2)
    return found


async def helpers_of(worker: subprocess.Popen, count: int, log: Path) -> set[int]:
    """The worker's helper processes, once it says all ``count`` poll."""

    def polling() -> set[int]:
        assert worker.poll() is None, f"the worker exited ({worker.returncode})"
        found = {pid for pid in children(worker.pid) if b"workers.worker_group" in Path(f"/proc/{pid}/cmdline").read_bytes()}
        return found if len(found) == count and f"{count} helper process(es) polling" in log.read_text() else set()

    return await until(polling, "the worker did not start its helpers")


async def local_steps_by_identity(handle) -> dict[str, int]:
    """How many local activities (markers) each worker identity's workflow tasks recorded."""
    counts: dict[str, int] = {}
    identity = ""
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_task_completed_event_attributes"):
            identity = event.workflow_task_completed_event_attributes.identity
        elif event.HasField("marker_recorded_event_attributes"):
            counts[identity] = counts.get(identity, 0) + 1
    return counts


async def test_helpers_answer_turns_with_memories_and_stop_with_the_worker(temporal_env, temporal_address, fake_ollama,
                                                                           tmp_path):  # fmt: skip
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url)
    async with MemoryService.from_settings(settings) as memory:
        await memory.remember(LYON, "user", "ines")  # then closed: the worker's first process takes the store
    worker = daemonflow_worker(worker_env(settings), tmp_path / "worker.log", "--processes", "3")
    try:
        helpers = await helpers_of(worker, 2, tmp_path / "worker.log")

        async def converse(n: int):
            conversation_id = f"group-{uuid.uuid4().hex[:8]}-{n}"
            handle = await temporal_env.client.start_workflow(
                ConversationWorkflow.run, ConversationInput(conversation_id=conversation_id, user_id="ines"),
                id=conversation_workflow_id(conversation_id), task_queue=settings.task_queue)  # fmt: skip
            replies = [(await handle.execute_update(ConversationWorkflow.send_message, SendMessage(content=f"where do I live? {t}"))).reply
                       for t in range(4)]  # fmt: skip
            return handle, replies

        conversations = await asyncio.wait_for(asyncio.gather(*(converse(n) for n in range(12))), HANG_GUARD_S)
        steps: dict[str, int] = {}
        for handle, replies in conversations:
            assert all(reply.startswith("echo:") for reply in replies), replies
            events = await handle.query(ConversationWorkflow.events, EventsQuery(), result_type=list[ConversationEvent])
            recalled = [e.data for e in events if e.type == EventType.MEMORY_RECALLED]
            assert recalled == [{"turn": t, "count": 1, "error": None} for t in range(1, 5)]  # every process recalled
            for identity, count in (await local_steps_by_identity(handle)).items():
                steps[identity] = steps.get(identity, 0) + count
        pids = {int(identity.split("@")[0]) for identity in steps}
        assert pids & helpers and pids <= helpers | {worker.pid}, steps  # helpers ran model steps, with memories
        assert all(LYON in request["messages"][0]["content"] for request in fake_ollama.chat_requests())
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(60)
    assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert not any(alive(pid) for pid in helpers), "helpers outlived the worker"  # it waits for them before it exits


async def test_helpers_stop_when_the_first_process_is_killed(temporal_address, fake_ollama, tmp_path):
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url)
    worker = daemonflow_worker(worker_env(settings), tmp_path / "worker.log", "--processes", "2")
    try:
        helpers = await helpers_of(worker, 1, tmp_path / "worker.log")
    finally:
        worker.kill()  # no clean-up of its own: the helper sees its stdin close
        worker.wait(30)
    await until(lambda: not any(alive(pid) for pid in helpers), "a helper went on polling after its worker was killed")


async def test_a_helper_that_dies_is_started_again(temporal_address, fake_ollama, tmp_path):
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url)
    log = tmp_path / "worker.log"
    worker = daemonflow_worker(worker_env(settings), log, "--processes", "2")
    try:
        [first] = await helpers_of(worker, 1, log)
        os.kill(first, signal.SIGKILL)
        await until(lambda: children(worker.pid) - {first}, "no new helper")
        assert f"helper process {first} exited (code -9); starting it again in 1 s" in log.read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0


@pytest.mark.parametrize(("args", "says"), [
    (["--processes", "0"], "--processes must be from 1 to 64 (got 0)"),
    (["--processes", "1000"], "--processes must be from 1 to 64 (got 1000)"),
    (["--processes", "2", "--queues", "llm"], "needs the main role"),
])  # fmt: skip
def test_the_cli_refuses_processes_it_cannot_run(args, says):
    done = subprocess.run([sys.executable, "-m", "cli.main", "worker", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and says in done.stderr


async def test_the_shared_store_is_the_owners_store_errors_included(fake_ollama, tmp_path):
    settings = daemon_settings(tmp_path, "127.0.0.1:1", fake_ollama.url)
    async with MemoryService.from_settings(settings) as owner, StoreShare(owner.store) as share:
        assert share.address is not None
        mode = os.stat(Path(share.address.socket).parent).st_mode & 0o777
        assert mode == 0o700  # the socket's folder is this user's alone (and a peer must know the key)
        shared = MemoryService.from_settings(settings, SharedMemoryStore(share.address))
        record, created = await shared.remember(LYON, "user", "ines")
        assert created and [r.text for r in await owner.store.get_many([record.id])] == [LYON]
        found = await shared.recall(MemoryQuery(text="where do I live?", scopes=visible_scopes("assistant", "ines", "c")))
        assert [m.record.id for m in found] == [record.id]
        assert await shared.store.count(MemoryScope.USER, "ines") == 1 and shared.store.dimension == owner.store.dimension
        with pytest.raises(DimensionMismatch, match="holds"):
            await shared.store.search([1.0, 0.0], MemoryQuery(text="x", scopes=None), 1)
        wrong = SharedMemoryStore(ShareAddress(share.address.socket, b"not the key", "memories"))
        with pytest.raises(Exception, match="digest|key|authentication"):
            await wrong.count()
        again = SharedMemoryStore(share.address)  # a new connection: the share still accepts after a wrong key
        assert await asyncio.wait_for(again.count(MemoryScope.USER, "ines"), HANG_GUARD_S) == 1
        await shared.close()  # its embedder's connections; the owner's store stays open
    with pytest.raises(MemoryStoreError, match="not reachable"):
        await SharedMemoryStore(share.address).count()
