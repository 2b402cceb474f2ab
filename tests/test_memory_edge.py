"""What only the embedded engine (Qdrant Edge, ``activities/memory/edge_backend.py``) does: one
process at a time with a clear error, no stale lock and nothing lost when its process is killed,
payload indexes on the filtered fields, and the one-time copy of an old ``var/qdrant`` written by
qdrant-client's local mode. The behaviour every store shares is in ``tests/test_memory.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient

from activities.memory import MemoryService
from activities.memory.edge_backend import EdgeMemoryStore
from activities.memory.edge_migration import PAGE
from activities.memory.points import FLOAT_FIELDS, KEYWORD_FIELDS
from activities.memory.qdrant_backend import QdrantMemoryStore
from activities.memory.store import MemoryStoreError, StoreLocked
from config.settings import Settings
from models.memory import MemoryKind, MemoryQuery, MemoryRecord, MemoryScope, visible_scopes
from tests.fakes.ollama import FakeOllama

ROOT = Path(__file__).resolve().parent.parent
PI = "my deployment target is a Raspberry Pi 5"

HOLDER = """
import asyncio, sys
from activities.memory.edge_backend import EdgeMemoryStore
from models.memory import MemoryRecord

async def main():
    store = EdgeMemoryStore(sys.argv[1])
    record = MemoryRecord(id=sys.argv[2], text="written just before the crash", scope="user", scope_id="alice")
    await store.add([record], [[0.1, 0.2, 0.3, 0.4]])
    print("ready", flush=True)
    sys.stdin.readline()  # killed while waiting: never closes, never flushes

asyncio.run(main())
"""


@pytest.fixture(autouse=True)
def _remove_sandboxes_the_test_made() -> None:
    """Memory tests make no sandboxes (see tests/test_memory.py)."""


@pytest.fixture
def settings(tmp_path: Path, fake_ollama: FakeOllama) -> Settings:
    return Settings(_env_file=None, var_dir=tmp_path / "var", ollama_host=fake_ollama.url, embed_model="all-minilm",
                    qdrant_url="", database_url="", memory_backend="qdrant")


def record(text: str, scope: MemoryScope = MemoryScope.USER, scope_id: str = "alice", **fields: object) -> MemoryRecord:
    return MemoryRecord(text=text, scope=scope, scope_id=scope_id, **fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- one process


async def test_a_second_process_gets_store_locked_and_a_killed_holder_leaves_its_writes_and_no_lock(
    tmp_path: Path,
) -> None:
    root = tmp_path / "qdrant-edge"
    written = str(uuid.uuid4())
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root), written], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        store = EdgeMemoryStore(root)
        with pytest.raises(StoreLocked) as caught:
            await store.count()
        message = str(caught.value)
        assert f"pid {holder.pid}" in message and "DAEMONFLOW_QDRANT_URL" in message and str(root) in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    try:  # the kernel dropped the dead holder's lock; its write is in the WAL
        assert await store.count() == 1
        [found] = await store.get_many([written])
        assert found.text == "written just before the crash"
        unit = np.array([0.1, 0.2, 0.3, 0.4]) / np.linalg.norm([0.1, 0.2, 0.3, 0.4])  # cosine: stored normalised
        assert (await store.vectors([written]))[written] == pytest.approx(unit.tolist(), abs=1e-6)
        assert (root / ".lock").read_text().strip() == str(os.getpid())
    finally:
        await store.close()
    assert (root / ".lock").read_text() == ""  # released on close


async def test_a_second_store_in_the_same_process_waits_for_the_first_to_close(tmp_path: Path) -> None:
    first, second = EdgeMemoryStore(tmp_path), EdgeMemoryStore(tmp_path)
    try:
        await first.ensure(4)
        with pytest.raises(StoreLocked, match="open in another process"):
            await second.count()
        await first.close()
        assert await second.count() == 0
        with pytest.raises(StoreLocked):
            await first.count()
    finally:
        await first.close()
        await second.close()


# --------------------------------------------------------------------------- layout and indexes


async def test_one_shard_per_collection_with_payload_indexes_on_the_filtered_fields(settings: Settings) -> None:
    async with MemoryService.from_settings(settings) as memory:
        await memory.remember(PI, "user", "alice")
        other = MemoryService.from_settings(settings.model_copy(update={"memory_collection": "notes"}))
        with pytest.raises(StoreLocked):  # one process owns the whole folder, every collection
            await other.count()
    async with MemoryService.from_settings(settings.model_copy(update={"memory_collection": "notes"})) as notes:
        await notes.remember("the notes collection", "agent", "assistant")

    root = settings.embedded_memory_dir
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["memories", "notes"]
    meta = json.loads((root / "memories" / "daemonflow.json").read_text())
    assert meta == {"dimension": 384, "embed_model": "all-minilm"}
    shard = qe.EdgeShard.load(str(root / "memories"))
    try:
        schema = shard.info().payload_schema
        assert {name: info.data_type for name, info in schema.items()} == {
            **{name: qe.PayloadSchemaType.Keyword for name in KEYWORD_FIELDS},
            **{name: qe.PayloadSchemaType.Float for name in FLOAT_FIELDS},
        }
        assert shard.count(qe.CountRequest(exact=True)) == 1
    finally:
        shard.close()


async def test_filtered_recall_among_thousands_finds_each_target(tmp_path: Path) -> None:
    """3,000 random 384-d memories, half the agent's and half spread over 50 users; a noisy copy of
    a stored vector must bring it back first when the target's scope is visible, and never when
    it is not. Exact search makes this hold at any size (see the module's docstring)."""
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((3000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records = [record(f"fact {i}", *((MemoryScope.AGENT, "assistant") if i % 2 else (MemoryScope.USER, f"u{i % 50}")))
               for i in range(3000)]
    store = EdgeMemoryStore(tmp_path)
    try:
        await store.add(records, vectors.tolist())
        for target in range(0, 3000, 97):
            noisy = vectors[target] + rng.standard_normal(384).astype(np.float32) * 0.05
            for user in (records[target].scope_id, "u-nobody"):
                query = MemoryQuery(text="q", k=5, scopes=visible_scopes("assistant", user), min_similarity=-1.0)
                found = [r.id for r, _ in await store.search(noisy.tolist(), query, limit=5)]
                visible = records[target].scope is MemoryScope.AGENT or records[target].scope_id == user
                assert (found[0] == records[target].id) if visible else (records[target].id not in found)
                assert all(r.scope is MemoryScope.AGENT or r.scope_id == user
                           for r in await store.get_many(found))
    finally:
        await store.close()


# --------------------------------------------------------------------------- the copy of an old var/qdrant


OLD_POINTS = 2 * PAGE + 3
"""Three pages of the copy: 3 remembered memories (one expired) and random ones."""


@pytest.fixture(scope="module")
def old_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An old ``var/qdrant`` written by qdrant-client's local mode through the old store class,
    once per module (local mode writes only 60–900 points/s); each test copies it."""
    var = tmp_path_factory.mktemp("old") / "var"

    async def write() -> None:
        with FakeOllama() as fake:
            settings = Settings(_env_file=None, var_dir=var, ollama_host=fake.url, embed_model="all-minilm")
            old = MemoryService.from_settings(settings)  # for its embedder; the store is replaced
            await old.store.close()
            old.store = QdrantMemoryStore(path=var / "qdrant")
            try:
                await old.remember(PI, "user", "alice", MemoryKind.SEMANTIC, 0.8, agent="assistant",
                                   source_conversation="c1", source_turn=3)
                await old.remember("the office printer jams on A3 paper", "agent", "assistant", MemoryKind.EPISODIC)
                await old.remember("the staging password rotates", "user", "bob",
                                   expires_at=datetime.now(UTC) - timedelta(days=1))
                vectors = np.random.default_rng(3).standard_normal((OLD_POINTS - 3, 384)).astype(np.float32)
                await old.store.add([record(f"random fact {i}", scope_id=f"u{i % 7}") for i in range(OLD_POINTS - 3)],
                                    vectors.tolist())
            finally:
                await old.close()

    asyncio.run(write())
    return var


def _old_store(old_var: Path, settings: Settings) -> dict[str, tuple[list[float], dict]]:
    """The old store copied into this test's ``var``; returns every point as qdrant-client reads
    it back (id → vector, payload)."""
    shutil.copytree(old_var / "qdrant", settings.var_dir / "qdrant")
    client = QdrantClient(path=str(settings.var_dir / "qdrant"))
    try:
        points, _ = client.scroll("memories", limit=OLD_POINTS + 1, with_payload=True, with_vectors=True)
    finally:
        client.close()
    assert len(points) == OLD_POINTS
    return {str(p.id): (list(p.vector), dict(p.payload)) for p in points}  # type: ignore[arg-type]


def _edge_points(path: Path, ids: list[str]) -> dict[str, tuple[list[float], dict]]:
    shard = qe.EdgeShard.load(str(path))
    try:
        return {str(p.id): (list(p.vector), dict(p.payload)) for p in shard.retrieve(ids, True, True)}
    finally:
        shard.close()


def _assert_same_points(copied: dict, source: dict) -> None:
    """Same ids, same payloads, same vectors — as unit vectors: a cosine collection of the Qdrant
    engine (Edge or server) keeps vectors normalised, while local mode returns them as given."""
    assert copied.keys() == source.keys()
    for point_id, (vector, payload) in source.items():
        assert copied[point_id][1] == payload
        assert copied[point_id][0] == pytest.approx((np.array(vector) / np.linalg.norm(vector)).tolist(), abs=1e-6)


async def test_an_old_local_mode_store_is_copied_once_without_loss(old_var: Path, settings: Settings) -> None:
    source = _old_store(old_var, settings)

    async with MemoryService.from_settings(settings) as memory:
        assert await memory.count() == len(source)  # the first open copied everything
        found = await memory.recall(MemoryQuery(text="what should I compile for my Raspberry Pi?", k=1,
                                                scopes=visible_scopes("assistant", "alice")))
        assert found[0].record.text == PI and found[0].record.source_turn == 3
        expired = await memory.recall(MemoryQuery(text="staging password", k=5, scopes=visible_scopes(user_id="bob")))
        assert expired == []  # expiry survives the copy
        gone = found[0].record.id
        assert await memory.forget([gone]) == 1

    path = settings.embedded_memory_dir / "memories"
    copied = _edge_points(path, list(source))
    assert gone not in copied
    _assert_same_points(copied, {k: v for k, v in source.items() if k != gone})
    meta = json.loads((path / "daemonflow.json").read_text())
    assert meta["dimension"] == 384 and meta["embed_model"] == "all-minilm"
    assert meta["migrated_from"]["points"] == len(source)
    assert meta["migrated_from"]["path"] == str(settings.var_dir / "qdrant")

    async with MemoryService.from_settings(settings) as memory:  # once: the forgotten one stays gone
        assert await memory.count() == len(source) - 1
        assert await memory.get(gone) is None

    client = QdrantClient(path=str(settings.var_dir / "qdrant"))  # the old folder is left as it was
    try:
        assert client.count("memories", exact=True).count == len(source)
    finally:
        client.close()


class _DiesAfterOnePage(EdgeMemoryStore):
    """Stands for a worker killed in the middle of the copy (fault injection in our own code)."""

    def write(self, points: list) -> None:
        super().write(points)
        raise KeyboardInterrupt("killed during the copy")


async def test_an_interrupted_copy_is_completed_at_the_next_open(old_var: Path, settings: Settings) -> None:
    source = _old_store(old_var, settings)
    root, legacy = settings.embedded_memory_dir, settings.var_dir / "qdrant"
    dying = _DiesAfterOnePage(root, legacy_path=legacy)
    with pytest.raises(KeyboardInterrupt):
        await dying.count()
    await dying.close()
    assert "migrated_from" not in json.loads((root / "memories" / "daemonflow.json").read_text())

    store = EdgeMemoryStore(root, legacy_path=legacy)  # the lock was released; the copy starts over
    try:
        assert await store.count() == len(source)
    finally:
        await store.close()
    _assert_same_points(_edge_points(root / "memories", list(source)), source)
    assert json.loads((root / "memories" / "daemonflow.json").read_text())["migrated_from"]["points"] == len(source)


async def test_an_old_store_still_held_by_an_old_worker_is_a_clear_error(old_var: Path, settings: Settings) -> None:
    _old_store(old_var, settings)
    old_worker = QdrantMemoryStore(path=settings.var_dir / "qdrant")
    store = EdgeMemoryStore(settings.embedded_memory_dir, legacy_path=settings.var_dir / "qdrant")
    try:
        assert await old_worker.count() == OLD_POINTS  # holds var/qdrant
        with pytest.raises(StoreLocked, match="earlier Daemonflow version"):
            await store.count()
        await old_worker.close()
        assert await store.count() == OLD_POINTS
    finally:
        await old_worker.close()
        await store.close()


async def test_an_old_collection_of_another_size_is_refused_not_mixed(old_var: Path, settings: Settings) -> None:
    _old_store(old_var, settings)  # 384-d
    root = settings.embedded_memory_dir
    store = EdgeMemoryStore(root)  # no legacy path: makes a 4-d collection first
    await store.ensure(4)
    await store.close()
    store = EdgeMemoryStore(root, legacy_path=settings.var_dir / "qdrant")
    try:
        with pytest.raises(MemoryStoreError, match="384-dimensional vectors.*4-dimensional.*move"):
            await store.count()
    finally:
        await store.close()
